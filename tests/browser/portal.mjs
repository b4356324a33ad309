// The portal clicked through as a person would, in headless Chromium: a developer signs up,
// browses the catalogue, adds a product to the cart and checks out; an admin signs in and
// approves; the developer reveals the credentials. Screenshots of the key pages land in
// $SCREENSHOTS. The last line of stdout is the credentials, as JSON, for the caller to use.
//
// With STEP=usage instead, the admin opens the app "Ledger" and waits until its usage chart
// shows successes and rejections; stdout's last line is then the chart's counts.
//
// Environment: PORTAL_URL, ADMIN_TOKEN, SCREENSHOTS, PRODUCT (title shown in the catalogue),
// STEP (flow or usage; default flow), CHROMIUM (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const portal = required("PORTAL_URL");
const adminToken = required("ADMIN_TOKEN");
const shots = required("SCREENSHOTS");
const product = required("PRODUCT");
mkdirSync(shots, { recursive: true });

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
let current;
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function signInAsAdmin() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const admin = await context.newPage();
  admin.setDefaultTimeout(15000);
  current = admin;
  await admin.goto(`${portal}/manage`);
  await admin.getByLabel("Admin token").fill(adminToken);
  await admin.getByRole("button", { name: "Sign in" }).click();
  await admin.getByRole("heading", { name: "Access requests" }).waitFor();
  return admin;
}

async function usage() {
  const admin = await signInAsAdmin();
  await admin.getByRole("link", { name: "Apps" }).click();
  await admin.getByRole("link", { name: "Ledger" }).click();
  // The nodes write their counts every few seconds.
  for (let i = 0; i < 40; i++) {
    const legend = admin.locator(".legend");
    if ((await legend.count()) > 0) {
      const text = await legend.textContent();
      const ok = Number(/(\d+) succeeded/.exec(text)?.[1] ?? 0);
      const rejected = Number(/(\d+) rejected/.exec(text)?.[1] ?? 0);
      if (ok > 0 && rejected > 0) {
        await admin.locator("svg.chart").waitFor();
        await shot(admin, "12-usage-chart");
        return { ok, rejected };
      }
    }
    await admin.waitForTimeout(500);
    await admin.reload();
  }
  throw new Error("the usage chart never showed successes and rejections");
}

try {
  if (process.env.STEP === "usage") {
    console.log(JSON.stringify(await usage()));
  } else {
    console.log(JSON.stringify(await flow()));
  }
} catch (e) {
  if (current) {
    await shot(current, "failure").catch(() => {});
    console.error(`failed on ${current.url()}`);
  }
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}

async function flow() {
  const developer = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const dev = await developer.newPage();
  dev.setDefaultTimeout(15000);
  current = dev;

  await dev.goto(`${portal}/`);
  await shot(dev, "01-catalogue");
  await dev.getByRole("link", { name: "Create account" }).click();
  await dev.getByLabel("Your name").fill("Ada Lovelace");
  await dev.getByLabel("Email").fill("ada@example.com");
  await dev.getByLabel("Password").fill("correct horse battery");
  await shot(dev, "02-sign-up");
  // Submitted from the keyboard.
  await dev.getByLabel("Password").press("Enter");
  await dev.waitForURL("**/dashboard");
  await dev.getByRole("heading", { name: "My dashboard" }).waitFor();

  await dev.getByRole("link", { name: "Catalogue" }).click();
  await dev.getByRole("link", { name: product, exact: true }).click();
  await dev.getByRole("heading", { name: product, exact: true }).waitFor();
  await shot(dev, "03-product");
  await dev.getByRole("button", { name: "Add to cart" }).click();
  await dev.waitForURL("**/cart");
  await dev.getByLabel("Plan").selectOption("gold");
  await dev.getByLabel("Client type").selectOption("backend");
  await dev.getByLabel("A new app").check();
  await dev.getByLabel("New app's name").fill("Ledger");
  await shot(dev, "04-checkout");
  await dev.getByRole("button", { name: "Request access" }).click();
  await dev.getByText("Access requested").waitFor();
  await dev.getByText("Pending approval").waitFor();
  await shot(dev, "05-requested");
  const appUrl = dev.url().split("?")[0];

  const admin = await signInAsAdmin();
  await admin.getByText("ada@example.com").first().waitFor();
  await shot(admin, "06-admin-queue");
  await admin.getByRole("button", { name: "Approve" }).first().click();
  await admin.getByText("The request was approved").waitFor();
  await shot(admin, "07-admin-approved");
  await admin.getByRole("link", { name: "Apps" }).click();
  await admin.getByRole("link", { name: "Ledger" }).click();
  await shot(admin, "08-admin-app");

  current = dev;
  await dev.goto(appUrl);
  await dev.getByText("Approved", { exact: true }).first().waitFor();
  const clientId = (await dev.locator("#client-id").textContent()).trim();
  if ((await dev.locator("#client-secret").count()) !== 0) {
    throw new Error("the client secret is on the page before it was revealed");
  }
  await shot(dev, "09-credentials");
  await dev.getByRole("button", { name: "Reveal secret" }).click();
  const clientSecret = (await dev.locator("#client-secret").textContent()).trim();
  const tokenEndpoint = (await dev.locator("#token-endpoint").textContent()).trim();
  const curl = await dev.locator("#curl").textContent();
  await shot(dev, "10-secret-revealed");

  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    storageState: await developer.storageState(),
  });
  const small = await phone.newPage();
  current = small;
  await small.goto(`${portal}/dashboard`);
  await shot(small, "11-dashboard-phone");

  return { clientId, clientSecret, tokenEndpoint, curl };
}
