"""Turns a bench/peers.sh run into the results table of docs/performance.md."""
import os
import platform
import re
import statistics
import subprocess
import sys
import time

work, doc = sys.argv[1], sys.argv[2]
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse(path):
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", text, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    total = re.search(r"(\d+) requests in", text)

    def ms(v):
        m = re.match(r"([\d.]+)(\w+)", v)
        return float(m.group(1)) * UNITS[m.group(2)]

    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": ms(lat["50"]) if "50" in lat else float("nan"),
        "p99": ms(lat["99"]) if "99" in lat else float("nan"),
        "rejected": int(non2xx.group(1)) / max(1, int(total.group(1))) if non2xx and total else 0.0,
    }


runs = {}
order = []
for line in open(os.path.join(work, "results.tsv")):
    name, _round, peer, path = line.rstrip("\n").split("\t")
    if name not in order:
        order.append(name)
    runs.setdefault(name, {}).setdefault(peer, []).append(parse(path))
rss = {}
for line in open(os.path.join(work, "rss.tsv")):
    name, _, kib = line.rstrip("\n").split("\t")
    rss[name] = int(kib) / 1024

med = lambda xs: statistics.median(xs)


def spread(xs):
    m = med(xs)
    return (max(xs) - min(xs)) / m * 100 if m else 0.0


rows = []
rows.append("| scenario | peer | requests/s (median) | spread | p50 ms | p99 ms | non-2xx | Portico/HAProxy | Portico/nginx | Portico peak RSS |")
rows.append("|---|---|---|---|---|---|---|---|---|---|")
for name in order:
    peers = runs[name]
    medians = {p: med([r["rps"] for r in rs]) for p, rs in peers.items()}
    for peer, rs in peers.items():
        ratio_h = ratio_n = rss_cell = ""
        if peer == "portico":
            if "haproxy" in medians:
                ratio_h = f"**{medians['portico'] / medians['haproxy']:.2f}×**"
            if "nginx" in medians:
                ratio_n = f"**{medians['portico'] / medians['nginx']:.2f}×**"
            rss_cell = f"{rss.get(name, float('nan')):.1f} MiB"
        rows.append(
            f"| {name} | {peer} | {medians[peer]:,.0f} | ±{spread([r['rps'] for r in rs]) / 2:.1f}% "
            f"| {med([r['p50'] for r in rs]):.2f} | {med([r['p99'] for r in rs]):.2f} "
            f"| {med([r['rejected'] for r in rs]) * 100:.0f}% | {ratio_h} | {ratio_n} | {rss_cell} |"
        )

# Two Portico instances, interleaved in one scenario: 10,000 APIs and 1.
apis = runs.get("RS256, one token, 10,000 APIs", {})
extra = []
if "portico" in apis and "portico-1-api" in apis:
    many = med([r["rps"] for r in apis["portico"]])
    one = med([r["rps"] for r in apis["portico-1-api"]])
    extra.append(
        f"- 10,000 APIs configured vs 1 (interleaved): {many:,.0f} vs {one:,.0f} requests/s "
        f"({(many / one - 1) * 100:+.1f}%)."
    )
# The Redis limiter and the in-process one, interleaved in one scenario.
limiter = runs.get("RS256, one token, Redis limiter", {})
if "portico" in limiter and "portico-local" in limiter:
    redis = med([r["rps"] for r in limiter["portico"]])
    local = med([r["rps"] for r in limiter["portico-local"]])
    extra.append(
        f"- Redis limiter vs in-process (interleaved): {redis:,.0f} vs {local:,.0f} requests/s "
        f"(**{redis / local:.2f}×**)."
    )
# An opaque token with its introspection answer cached, against the RS256 row of the same run.
cached = runs.get("cached introspection", {}).get("portico")
rs256 = runs.get("RS256, one token", {}).get("portico")
if cached and rs256:
    intro, jwt = med([r["rps"] for r in cached]), med([r["rps"] for r in rs256])
    calls = open(os.path.join(work, "introspection_calls.txt")).read().strip()
    extra.append(
        f"- Cached introspection vs RS256, one token: {intro:,.0f} vs {jwt:,.0f} requests/s "
        f"(**{intro / jwt:.2f}×**); {calls} introspection call(s) at the IdP for the whole scenario."
    )
sessions = open(os.path.join(work, "sessions.txt")).read().strip()
extra.append(f"- Identity sessions: {sessions}")

cpu = "unknown CPU"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
versions = []
for cmd in (["haproxy", "-v"], ["nginx", "-v"], ["wrk", "-v"]):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
        versions.append((out.stdout + out.stderr).strip().splitlines()[0])
    except OSError:
        pass
rounds = len(next(iter(next(iter(runs.values())).values())))
section = "\n".join(
    [
        f"Run on {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores ({cpu}), {platform.system()} "
        f"{platform.release()}; {rounds} rounds per peer, interleaved; peers: {'; '.join(versions)}.",
        "",
        *rows,
        "",
        *extra,
    ]
)
print(section)
text = open(doc).read()
start, end = "<!-- results:start -->", "<!-- results:end -->"
before, rest = text.split(start, 1)
_, after = rest.split(end, 1)
open(doc, "w").write(f"{before}{start}\n{section}\n{end}{after}")
