// Portico's test IdP: a real OpenID Provider (oidc-provider) on 127.0.0.1.
//
// Environment:
//   PORT       listen port (default 0: any free port)
//   KEYS_FILE  where to keep the signing keys (JWKS with private members), so a restarted IdP
//              signs with the same keys; created if missing
//
// On start it prints one JSON line to stdout: {"issuer": ..., "port": ...}.
//
// Features: client_credentials, introspection, revocation, dynamic client registration with an
// initial access token, RFC 7592 management, resource indicators. The resource
// "https://api.portico.test" gets JWT access tokens, "https://opaque.portico.test" opaque ones.
//
// A second client, "gateway-pkjwt", authenticates with private_key_jwt (RFC 7523); its private
// key is written as PEM next to KEYS_FILE (pkjwt-client.pem) for the tests to sign with. A
// third, "gateway-post", sends its secret in the form body (client_secret_post), as Tyk's
// external OAuth introspection does.
//
// Test-only control endpoints (never in a real IdP):
//   POST /__test/rotate   new signing key first in the JWKS (the old one stays, second)
//   GET  /__test/stats    {"introspections": n}: introspection requests received so far
import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const JWT_RESOURCE = 'https://api.portico.test';
const OPAQUE_RESOURCE = 'https://opaque.portico.test';
const SCOPES = 'orders:read orders:write billing:read gold silver';
export const INITIAL_ACCESS_TOKEN = 'portico-test-initial-access-token';

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

function loadKeys() {
  const file = process.env.KEYS_FILE;
  if (file && fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const keys = { keys: [newSigningKey()] };
  saveKeys(keys);
  return keys;
}

function saveKeys(keys) {
  if (process.env.KEYS_FILE) fs.writeFileSync(process.env.KEYS_FILE, JSON.stringify(keys));
}

// An unbounded in-memory adapter with expiry: the default LRU can evict registered clients.
const stores = new Map();
class MemoryAdapter {
  constructor(name) {
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = stores.get(name);
    this.name = name;
  }
  key(id) { return id; }
  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    this.store.set(id, { payload, expiresAt });
    if (payload.grantId) {
      const grants = stores.get('grants') ?? new Map();
      stores.set('grants', grants);
      const ids = grants.get(payload.grantId) ?? [];
      ids.push([this.name, id]);
      grants.set(payload.grantId, ids);
    }
    if (payload.userCode) (stores.get('userCodes') ?? stores.set('userCodes', new Map()).get('userCodes')).set(payload.userCode, id);
    if (payload.uid) (stores.get('uids') ?? stores.set('uids', new Map()).get('uids')).set(payload.uid, id);
  }
  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt && entry.expiresAt < Date.now()) { this.store.delete(id); return undefined; }
    return entry.payload;
  }
  async findByUserCode(code) { const id = stores.get('userCodes')?.get(code); return id && this.find(id); }
  async findByUid(uid) { const id = stores.get('uids')?.get(uid); return id && this.find(id); }
  async consume(id) { const e = this.store.get(id); if (e) e.payload.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { this.store.delete(id); }
  async revokeByGrantId(grantId) {
    for (const [name, id] of stores.get('grants')?.get(grantId) ?? []) stores.get(name)?.delete(id);
  }
}

// The private_key_jwt client's key pair: the public half is registered, the private half is
// for the tests.
function pkjwtClientKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  if (process.env.KEYS_FILE) {
    const dir = process.env.KEYS_FILE.replace(/[^/]*$/, '');
    fs.writeFileSync(`${dir}pkjwt-client.pem`, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  }
  return { ...publicKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'pkjwt-client' };
}
const PKJWT_CLIENT_JWK = pkjwtClientKey();

function buildProvider(issuer, jwks) {
  const provider = new Provider(issuer, {
    adapter: MemoryAdapter,
    jwks,
    clients: [{
      client_id: 'gateway-test',
      client_secret: 'gateway-test-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: SCOPES,
    }, {
      client_id: 'gateway-post',
      client_secret: 'gateway-post-secret',
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: SCOPES,
    }, {
      client_id: 'gateway-pkjwt',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'RS256',
      jwks: { keys: [PKJWT_CLIENT_JWK] },
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: SCOPES,
    }],
    scopes: ['openid', 'offline_access', ...SCOPES.split(' ')],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      registration: { enabled: true, initialAccessToken: INITIAL_ACCESS_TOKEN },
      registrationManagement: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => JWT_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== JWT_RESOURCE && resource !== OPAQUE_RESOURCE) {
            throw new Error('unknown resource');
          }
          return resource === JWT_RESOURCE
            ? { scope: SCOPES, audience: resource, accessTokenTTL: 600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }
            : { scope: SCOPES, audience: resource, accessTokenTTL: 600, accessTokenFormat: 'opaque' };
        },
      },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('idp server_error', err));
  return provider;
}

let jwks = loadKeys();
let handler = () => {};
let introspections = 0;
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/token/introspection')) introspections += 1;
  if (req.method === 'GET' && req.url === '/__test/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ introspections }));
    return;
  }
  if (req.method === 'POST' && req.url === '/__test/rotate') {
    jwks = { keys: [newSigningKey(), ...jwks.keys] };
    saveKeys(jwks);
    handler = buildProvider(issuer, jwks).callback();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: jwks.keys[0].kid }));
    return;
  }
  handler(req, res);
});

let issuer;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}`;
  handler = buildProvider(issuer, jwks).callback();
  process.stdout.write(JSON.stringify({ issuer, port }) + '\n');
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
