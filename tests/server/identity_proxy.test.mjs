// GET /v1/identity/proxy over real HTTP: the trusted reverse-proxy identity mode (issue 5).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { getJson, makeDataDir, rawRequest, sleep, startServer, testConfig, token, WS } from './helpers.mjs';

const T = { timeout: 20000 };
const HEADER = 'Remote-User';

// demo: tokens for 10 minutes; acme: 1 s (the expiry test). Both opt in.
function proxyConfig(extra = {}) {
  const cfg = testConfig({ acmeRate: { perSecond: 1000, burst: 1000 } });
  cfg.trustedUserHeader = HEADER;
  cfg.workspaces[0].proxyIdentity = { ttlSeconds: 600 };
  cfg.workspaces[1].proxyIdentity = { ttlSeconds: 1 };
  return { ...cfg, ...extra };
}

function proxyGet(server, workspace, headers = {}, method = 'GET') {
  const q = workspace === undefined ? '' : `?workspace=${encodeURIComponent(workspace)}`;
  return getJson(`${server.url}/v1/identity/proxy${q}`, headers, method);
}

// What the widget does with the answer: present it on an end-user route.
function useIdentity(server, id, appId) {
  return getJson(`${server.url}/v1/apps/${appId}`, {
    'X-Confab-Workspace': id.workspaceId,
    'X-Confab-User': id.userId,
    'X-Confab-User-Hash': id.hashedUserId,
  });
}

// Sends one request with exact header bytes (fetch would refuse or merge some of these).
async function rawGet(server, workspace, headerLines) {
  const head = [`GET /v1/identity/proxy?workspace=${workspace} HTTP/1.1`, `Host: 127.0.0.1:${server.port}`,
    'Connection: close', ...headerLines].join('\r\n');
  const { text } = await rawRequest(server.port, Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from('\r\n\r\n')]));
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  let json;
  try { json = JSON.parse(body); } catch { json = undefined; }
  return { status, json, text };
}

describe('identity proxy: not configured', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); server?.cleanup(); });

  test('without trustedUserHeader the route does not exist, whatever the headers say', T, async () => {
    const r = await proxyGet(server, 'demo', { [HEADER]: 'alice' });
    assert.equal(r.status, 404);
    assert.equal(r.json.code, 'not_found');
    assert.equal(r.json.hashedUserId, undefined);
  });
});

describe('identity proxy: configured', () => {
  let server;
  before(async () => {
    const cfg = proxyConfig();
    cfg.workspaces.push({ id: 'closed', secrets: ['closed-secret'], apps: [] });  // did not opt in
    server = await startServer({ config: cfg });
  });
  after(async () => { await server?.stop(); server?.cleanup(); });

  test('answers {userId, workspaceId, hashedUserId, expiresAt}: a v1 token, not stored by caches', T, async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await proxyGet(server, 'demo', { [HEADER]: 'alice@example.com' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.match(r.headers.get('content-type'), /^application\/json/);
    assert.deepEqual(Object.keys(r.json).sort(), ['expiresAt', 'hashedUserId', 'userId', 'workspaceId']);
    assert.equal(r.json.userId, 'alice@example.com');
    assert.equal(r.json.workspaceId, 'demo');
    assert.ok(r.json.expiresAt >= before + 600 && r.json.expiresAt <= Math.ceil(Date.now() / 1000) + 600,
      `expiresAt ${r.json.expiresAt} is not about 600 s from now`);
    // The documented format, signed with the workspace's first secret (computed here independently).
    assert.equal(r.json.hashedUserId, token(WS.demo.secret, 'demo', 'alice@example.com', r.json.expiresAt));
  });

  test('the token is accepted as X-Confab-User-Hash, only for its user and workspace', T, async () => {
    const id = (await proxyGet(server, 'demo', { [HEADER]: 'bob' })).json;
    const ok = await useIdentity(server, id, 'story');  // a non-public app: needs a verified user
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.id, 'story');

    const otherUser = await useIdentity(server, { ...id, userId: 'mallory' }, 'story');
    assert.equal(otherUser.status, 401);
    assert.equal(otherUser.json.code, 'identity_bad_signature');
    const otherWs = await useIdentity(server, { ...id, workspaceId: 'acme' }, 'summary');
    assert.equal(otherWs.status, 401);
    assert.equal(otherWs.json.code, 'identity_bad_signature');
  });

  test('a token past its TTL (1 s here) is rejected as expired', T, async () => {
    const id = (await proxyGet(server, 'acme', { [HEADER]: 'carol' })).json;
    assert.ok(id.expiresAt - Math.floor(Date.now() / 1000) <= 1);
    // Accepted at once (unless the second already turned; then it is expired and that is shown below).
    const fresh = await useIdentity(server, id, 'summary');
    if (Math.floor(Date.now() / 1000) < id.expiresAt) assert.equal(fresh.status, 200, fresh.text);
    while (Math.floor(Date.now() / 1000) < id.expiresAt) await sleep(50);
    const stale = await useIdentity(server, id, 'summary');
    assert.equal(stale.status, 401);
    assert.equal(stale.json.code, 'identity_expired');
    // A new fetch gives a working token again: what the widget does on identity_expired.
    const again = (await proxyGet(server, 'acme', { [HEADER]: 'carol' })).json;
    assert.ok(again.expiresAt > id.expiresAt - 1);
    assert.equal((await useIdentity(server, again, 'summary')).status, 200);
  });

  test('a missing or empty header is 401 identity_missing', T, async () => {
    for (const headers of [{}, { [HEADER]: '' }]) {
      const r = await proxyGet(server, 'demo', headers);
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.json.code, 'identity_missing');
      assert.match(r.json.error, /Remote-User/);
      assert.equal(r.headers.get('cache-control'), 'no-store');
    }
  });

  test('the header name is matched case-insensitively', T, async () => {
    const r = await rawGet(server, 'demo', ['rEmOtE-uSeR: dave']);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.userId, 'dave');
  });

  test('values the widget could not send back are refused: too long, control bytes, non-ASCII', T, async () => {
    const max = 'u'.repeat(256);
    const okLong = await proxyGet(server, 'demo', { [HEADER]: max });
    assert.equal(okLong.status, 200);
    assert.equal(okLong.json.userId, max);
    const tooLong = await proxyGet(server, 'demo', { [HEADER]: `${max}x` });
    assert.equal(tooLong.status, 401);
    assert.equal(tooLong.json.code, 'identity_malformed');
    assert.match(tooLong.json.error, /256/);

    for (const value of ['a\tb', 'Zo\u00c3\u00ab']) {  // a tab; "Zoë" as its UTF-8 bytes
      const r = await rawGet(server, 'demo', [`${HEADER}: ${value}`]);
      assert.equal(r.status, 401, `${JSON.stringify(value)}: ${r.text}`);
      assert.equal(r.json.code, 'identity_malformed');
      assert.equal(r.json.hashedUserId, undefined);
    }
    // Spaces and punctuation inside a name are fine.
    const spaced = await proxyGet(server, 'demo', { [HEADER]: 'CN=Eve Doe, O=Example' });
    assert.equal(spaced.status, 200);
    assert.equal(spaced.json.userId, 'CN=Eve Doe, O=Example');
  });

  test('two header lines (a proxy that appends instead of replacing) are refused', T, async () => {
    const r = await rawGet(server, 'demo', [`${HEADER}: forged-by-client`, `${HEADER}: alice`]);
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json.code, 'identity_malformed');
    assert.match(r.json.error, /2 times/);
  });

  test('workspace: required, must exist, must have opted in', T, async () => {
    const none = await proxyGet(server, undefined, { [HEADER]: 'alice' });
    assert.equal(none.status, 400);
    assert.equal(none.json.code, 'invalid_request');
    const unknown = await proxyGet(server, 'nope', { [HEADER]: 'alice' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.code, 'unknown_workspace');
    const closed = await proxyGet(server, 'closed', { [HEADER]: 'alice' });
    assert.equal(closed.status, 404);
    assert.equal(closed.json.code, 'proxy_identity_disabled');
  });

  test('GET only; CORS follows the workspace\'s allowedOrigins like every route', T, async () => {
    const post = await proxyGet(server, 'demo', { [HEADER]: 'alice' }, 'POST');
    assert.equal(post.status, 405);
    assert.match(post.headers.get('allow'), /^GET/);

    const allowed = await proxyGet(server, 'demo', { [HEADER]: 'alice', Origin: 'http://allowed.test' });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'http://allowed.test');
    // acme's origin may not read a demo token, and a stranger gets nothing at all.
    for (const origin of ['http://acme.test', 'http://evil.test']) {
      const r = await proxyGet(server, 'demo', { [HEADER]: 'alice', Origin: origin });
      assert.equal(r.status, 403, origin);
      assert.equal(r.json.code, 'origin_not_allowed');
      assert.equal(r.json.hashedUserId, undefined);
      assert.equal(r.headers.get('access-control-allow-origin'), null);
    }
  });
});

describe('identity proxy: trustedProxies', () => {
  test('a peer outside trustedProxies is refused even with the header', T, async () => {
    const server = await startServer({ config: proxyConfig({ trustedProxies: ['10.9.9.9', '192.168.0.0/16', 'fd00::/8'] }) });
    try {
      const r = await proxyGet(server, 'demo', { [HEADER]: 'alice' });
      assert.equal(r.status, 403);
      assert.equal(r.json.code, 'proxy_not_trusted');
      assert.equal(r.json.hashedUserId, undefined);
      assert.doesNotMatch(r.json.error, /10\.9\.9\.9|Remote-User/);  // tells a stranger nothing useful
      // The operator sees who tried, in the log (stderr may arrive after the response).
      const seen = /untrusted peer","peer":"127\.0\.0\.1"/;
      for (let i = 0; i < 100 && !seen.test(server.logs()); i++) await sleep(20);
      assert.match(server.logs(), seen);
    } finally {
      await server.stop();
      server.cleanup();
    }
  });

  test('a peer inside a listed network is served (127.0.0.1/32)', T, async () => {
    const server = await startServer({ config: proxyConfig({ trustedProxies: ['10.0.0.0/8', '127.0.0.1/32'] }) });
    try {
      const r = await proxyGet(server, 'demo', { [HEADER]: 'alice' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.userId, 'alice');
    } finally {
      await server.stop();
      server.cleanup();
    }
  });

  test('bad proxy-identity config is refused at startup, naming the field', T, async () => {
    const cases = [
      [proxyConfig({ trustedProxies: ['10.0.0.1/8'] }), /trustedProxies\[0\]: '10\.0\.0\.1\/8' has host bits set/],
      [proxyConfig({ trustedProxies: ['localhost'] }), /trustedProxies\[0\]: 'localhost' is not an IPv4 or IPv6 address/],
      [proxyConfig({ trustedProxies: ['::1/129'] }), /trustedProxies\[0\]: the prefix length/],
      [proxyConfig({ trustedProxies: [] }), /trustedProxies: must list at least one address/],
      [proxyConfig({ trustedUserHeader: 'X-Confab-User' }), /trustedUserHeader: must not be an X-Confab-\* header/],
      [proxyConfig({ trustedUserHeader: 'Authorization' }), /trustedUserHeader: must not be 'Authorization'/],
      [proxyConfig({ trustedUserHeader: 'Remote User' }), /trustedUserHeader: must be an HTTP header name/],
      [(() => { const c = proxyConfig(); delete c.trustedUserHeader; return c; })(),
        /workspaces\[0\]\.proxyIdentity: needs trustedUserHeader/],
      [(() => { const c = proxyConfig(); c.workspaces[0].proxyIdentity = { ttlSeconds: 0 }; return c; })(),
        /workspaces\[0\]\.proxyIdentity\.ttlSeconds: must be an integer between 1 and 86400/],
      [(() => { const c = proxyConfig(); c.workspaces[0].proxyIdentity = { ttl: 5 }; return c; })(),
        /workspaces\[0\]\.proxyIdentity\.ttl: is not a known field/],
    ];
    const dataDir = makeDataDir();
    try {
      for (const [config, message] of cases) {
        await assert.rejects(startServer({ config, dataDir, readyTimeoutMs: 5000 }), message);
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
