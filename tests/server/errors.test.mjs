// Bad input and hostile clients: each gets its status and a JSON {error, code}.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { WS, getJson, idHeaders, postJson, rawRequest, startServer, token, userHash, sleep } from './helpers.mjs';

const T = { timeout: 20000 };
let srv;
before(async () => {
  srv = await startServer({ args: ['--header-timeout-ms', '500', '--idle-timeout-ms', '2000'] });
});
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

const alice = () => idHeaders(WS.demo, 'alice');

function assertError(r, status, code, pattern) {
  assert.equal(r.status, status, r.text);
  assert.equal(typeof r.json?.error, 'string', `JSON error body: ${r.text}`);
  if (code) assert.equal(r.json.code, code);
  if (pattern) assert.match(r.json.error, pattern);
}

describe('request bodies', () => {
  test('malformed JSON is 400 invalid_json', T, async () => {
    assertError(await postJson(`${srv.url}/v1/apps/story/executions`, '{"inputs": {', alice()), 400, 'invalid_json');
  });
  test('wrong types are 400 and name the field', T, async () => {
    assertError(await postJson(`${srv.url}/v1/apps/story/executions`, { inputs: 'nope' }, alice()), 400, 'invalid_request', /inputs/);
    assertError(await postJson(`${srv.url}/v1/apps/story/executions`, { inputs: { hero: 5, count: 1 } }, alice()), 400, null, /hero/);
    assertError(await postJson(`${srv.url}/v1/apps/story/executions`, { inputs: { hero: 'x', count: 1.5 } }, alice()), 400, null, /count/);
    assertError(await postJson(`${srv.url}/v1/apps/assistant/chat`, { message: 42 }, alice()), 400, null, /message/);
    assertError(await postJson(`${srv.url}/v1/identity`, { userId: 7 }, { Authorization: `Bearer ${WS.demo.apiKey}` }), 400, null, /userId/);
  });
  test('a missing required input is 400 naming it', T, async () => {
    assertError(await postJson(`${srv.url}/v1/apps/story/executions`, { inputs: { hero: 'x' } }, alice()), 400, null, /count/);
  });
  test('a body over 1 MB is 413 with a JSON error', T, async () => {
    const big = JSON.stringify({ inputs: { hero: 'x'.repeat(1100000) } });
    assertError(await postJson(`${srv.url}/v1/apps/story/executions`, big, alice()), 413, 'too_large');
  });
  test('deeply nested JSON is rejected', T, async () => {
    const deep = '{"inputs":{"hero":' + '['.repeat(500) + ']'.repeat(500) + '}}';
    assertError(await postJson(`${srv.url}/v1/apps/story/executions`, deep, alice()), 400, 'too_deep');
  });
  test('header fields over 8 KB are 431', T, async () => {
    const r = await rawRequest(srv.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`);
    assert.match(r.text, /^HTTP\/1\.1 431 /);
  });
  test('garbage instead of HTTP is 400 and the connection is closed', T, async () => {
    const r = await rawRequest(srv.port, 'HELLO THERE\r\n\r\n');
    assert.match(r.text, /^HTTP\/1\.1 400 /);
    assert.ok(r.closedByServer);
  });
});

describe('identity', () => {
  test('missing identity on a private app is 401', T, async () => {
    assertError(await getJson(`${srv.url}/v1/apps/story`, { 'X-Confab-Workspace': 'demo' }), 401, 'identity_missing');
    assertError(await getJson(`${srv.url}/v1/apps/story`, {}), 401, 'identity_missing', /X-Confab-Workspace/);
    assertError(await getJson(`${srv.url}/v1/apps/story`, { 'X-Confab-Workspace': 'demo', 'X-Confab-User': 'alice' }), 401, 'identity_missing', /Hash/);
  });
  test('a wrong hash, another user\'s hash or another workspace\'s secret is 401', T, async () => {
    const bad = (hash, user = 'alice', ws = 'demo') =>
      getJson(`${srv.url}/v1/apps/story`, { 'X-Confab-Workspace': ws, 'X-Confab-User': user, 'X-Confab-User-Hash': hash });
    assertError(await bad(userHash(WS.demo.secret, 'bob')), 401, 'identity_bad_signature');
    assertError(await bad(userHash(WS.acme.secret, 'alice')), 401, 'identity_bad_signature');
    assertError(await bad('xyz'), 401, 'identity_malformed');
    assertError(await bad(userHash(WS.demo.secret, 'alice'), 'alice', 'nope'), 401, 'unknown_workspace');
  });
  test('an expired token is 401 identity_expired; a token for another workspace is rejected', T, async () => {
    const past = Math.floor(Date.now() / 1000) - 10;
    const h = { 'X-Confab-Workspace': 'demo', 'X-Confab-User': 'alice', 'X-Confab-User-Hash': token(WS.demo.secret, 'demo', 'alice', past) };
    assertError(await getJson(`${srv.url}/v1/apps/story`, h), 401, 'identity_expired');
    const future = Math.floor(Date.now() / 1000) + 600;
    h['X-Confab-User-Hash'] = token(WS.demo.secret, 'acme', 'alice', future);
    assertError(await getJson(`${srv.url}/v1/apps/story`, h), 401, 'identity_bad_signature');
  });
  test('POST /v1/identity needs a valid API key', T, async () => {
    assertError(await postJson(`${srv.url}/v1/identity`, { userId: 'a' }), 401, 'api_key_missing');
    assertError(await postJson(`${srv.url}/v1/identity`, { userId: 'a' }, { Authorization: 'Bearer wrong' }), 401, 'api_key_invalid');
  });
});

describe('tenancy and state', () => {
  test('another workspace\'s or user\'s execution is 404', T, async () => {
    const r = await postJson(`${srv.url}/v1/apps/story/executions?wait=true`, { inputs: { hero: 'a', count: 1 } }, alice());
    assert.equal(r.status, 200);
    const id = r.json.id;
    const eve = idHeaders(WS.acme, 'alice');  // same user id, other workspace
    assertError(await getJson(`${srv.url}/v1/executions/${id}`, eve), 404, 'execution_not_found');
    assertError(await getJson(`${srv.url}/v1/executions/${id}/events`, eve), 404);
    assertError(await postJson(`${srv.url}/v1/executions/${id}/cancel`, {}, eve), 404);
    assertError(await getJson(`${srv.url}/v1/executions/${id}`, idHeaders(WS.demo, 'bob')), 404);
    assertError(await getJson(`${srv.url}/v1/apps/summary`, alice()), 404, 'app_not_found');
  });
  test('unknown app or version is 404', T, async () => {
    assertError(await postJson(`${srv.url}/v1/apps/nope/executions`, { inputs: {} }, alice()), 404, 'app_not_found');
    assertError(await postJson(`${srv.url}/v1/apps/story/executions`, { version: '9', inputs: { hero: 'x' } }, alice()), 404, 'version_not_found');
    assertError(await getJson(`${srv.url}/v1/executions/ex_00000000000000000000000000000000`, alice()), 404);
  });
  test('cancel of a finished execution is 409', T, async () => {
    const r = await postJson(`${srv.url}/v1/apps/welcome/executions?wait=true`, { inputs: { name: 'z' } }, alice());
    assertError(await postJson(`${srv.url}/v1/executions/${r.json.id}/cancel`, {}, alice()), 409, 'conflict');
  });
  test('chat on a template app is 400', T, async () => {
    assertError(await postJson(`${srv.url}/v1/apps/story/chat`, { message: 'hi' }, alice()), 400, 'unsupported');
  });
  test('unknown routes are 404, wrong methods 405 with Allow', T, async () => {
    assertError(await getJson(`${srv.url}/v1/nothing`), 404, 'not_found');
    const r = await getJson(`${srv.url}/v1/identity`);
    assertError(r, 405, 'method_not_allowed');
    assert.match(r.headers.get('allow'), /POST/);
  });
});

describe('origins, rate limits, slow clients', () => {
  test('a disallowed Origin is 403; an allowed one gets CORS headers', T, async () => {
    assertError(await getJson(`${srv.url}/v1/apps/story`, { ...alice(), Origin: 'http://evil.test' }), 403, 'origin_not_allowed');
    // acme's origin is not demo's.
    assertError(await getJson(`${srv.url}/v1/apps/story`, { ...alice(), Origin: 'http://acme.test' }), 403, 'origin_not_allowed');
    const ok = await getJson(`${srv.url}/v1/apps/story`, { ...alice(), Origin: 'http://allowed.test' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://allowed.test');
    assert.match(ok.headers.get('access-control-expose-headers'), /X-Confab-Execution-Id/);
  });
  test('rate limit: 429 with Retry-After once the bucket is empty', T, async () => {
    const h = idHeaders(WS.acme, 'greedy');  // acme: burst 3, 0.2/s
    const statuses = [];
    let limited;
    for (let i = 0; i < 5; i++) {
      const r = await getJson(`${srv.url}/v1/apps/summary`, h);
      statuses.push(r.status);
      if (r.status === 429) limited = r;
    }
    assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
    assert.ok(limited, `statuses ${statuses}`);
    assertError(limited, 429, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    // Another user of the same workspace has their own bucket.
    assert.equal((await getJson(`${srv.url}/v1/apps/summary`, idHeaders(WS.acme, 'modest'))).status, 200);
  });
  test('a client that trickles its request head is dropped (slowloris)', T, async () => {
    const net = await import('node:net');
    const closed = await new Promise((resolve) => {
      const sock = net.connect(srv.port, '127.0.0.1');
      let n = 0;
      const timer = setInterval(() => { if (!sock.destroyed) sock.write(n++ === 0 ? 'GET /healthz HTTP/1.1\r\n' : 'X-A: b\r\n'); }, 100);
      const giveUp = setTimeout(() => { clearInterval(timer); sock.destroy(); resolve(false); }, 5000);
      sock.on('close', () => { clearInterval(timer); clearTimeout(giveUp); resolve(true); });
      sock.on('error', () => {});
    });
    assert.ok(closed, 'the server closed the connection before the client gave up');
    // The server still serves others.
    assert.equal((await getJson(`${srv.url}/healthz`)).status, 200);
  });
  test('an idle keep-alive connection is closed after the idle timeout', T, async () => {
    const r = await rawRequest(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 6000 });
    assert.match(r.text, /^HTTP\/1\.1 200 /);
    assert.ok(r.closedByServer);
  });
});
