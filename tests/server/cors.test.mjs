// CORS: preflights (which carry no X-Confab-* values) pass for any configured workspace's origin;
// the real request is checked against its own workspace.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { WS, idHeaders, startServer } from './helpers.mjs';

const T = { timeout: 15000 };
let srv;
before(async () => { srv = await startServer(); });
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

async function preflight(path, origin, method = 'POST') {
  return fetch(`${srv.url}${path}`, {
    method: 'OPTIONS',
    headers: {
      Origin: origin,
      'Access-Control-Request-Method': method,
      'Access-Control-Request-Headers': 'content-type,x-confab-workspace,x-confab-user,x-confab-user-hash,last-event-id',
    },
  });
}

test('preflight from an allowed origin: 204 with methods, headers and exposed headers', T, async () => {
  const r = await preflight('/v1/apps/story/executions', 'http://allowed.test');
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('access-control-allow-origin'), 'http://allowed.test');
  assert.match(r.headers.get('access-control-allow-methods'), /POST/);
  const allowed = r.headers.get('access-control-allow-headers').toLowerCase();
  for (const h of ['content-type', 'x-confab-workspace', 'x-confab-user', 'x-confab-user-hash', 'last-event-id', 'authorization']) {
    assert.ok(allowed.includes(h), `allows ${h}`);
  }
  assert.match(r.headers.get('access-control-expose-headers'), /X-Confab-Execution-Id/);
  assert.match(r.headers.get('vary'), /Origin/);
  // Another workspace's origin also passes the preflight (it cannot name its workspace)...
  assert.equal((await preflight('/v1/apps/summary/chat', 'http://acme.test')).status, 204);
});

test('preflight from an unknown origin is 403', T, async () => {
  const r = await preflight('/v1/apps/story/executions', 'http://evil.test');
  assert.equal(r.status, 403);
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  assert.equal((await r.json()).code, 'origin_not_allowed');
});

test('...but the real request is checked against its own workspace', T, async () => {
  const wrong = await fetch(`${srv.url}/v1/apps/summary`, { headers: { ...idHeaders(WS.acme, 'u'), Origin: 'http://allowed.test' } });
  assert.equal(wrong.status, 403);
  const right = await fetch(`${srv.url}/v1/apps/summary`, { headers: { ...idHeaders(WS.acme, 'u'), Origin: 'http://acme.test' } });
  assert.equal(right.status, 200);
  assert.equal(right.headers.get('access-control-allow-origin'), 'http://acme.test');
});

test('requests without Origin (server to server) need no CORS', T, async () => {
  const r = await fetch(`${srv.url}/v1/apps/summary`, { headers: idHeaders(WS.acme, 'v') });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), null);
});

test('errors before identity are readable by an allowed browser origin', T, async () => {
  const r = await fetch(`${srv.url}/v1/apps/summary`, { headers: { 'X-Confab-Workspace': 'acme', Origin: 'http://acme.test' } });
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('access-control-allow-origin'), 'http://acme.test');
});
