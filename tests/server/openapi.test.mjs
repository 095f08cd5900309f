// The OpenAPI document (docs/openapi.json): valid OpenAPI 3.1, served unchanged at
// GET /v1/openapi.json, its examples as documented, and routes covered in both directions: every
// documented operation is served, and a method a path does not document is 405 naming exactly the
// documented ones. (Every response of the whole server suite is checked against the document by
// the fetch hook in helpers.mjs; this file also tests that checker.)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import SwaggerParser from '@apidevtools/swagger-parser';

import { REPO, WS, getJson, idHeaders, openapiViolations, startServer } from './helpers.mjs';
import { DOC_PATH, SseScanner, checkBody, checkEvent, checkRequestBody, deref, documentedMethods, locate, matchPath } from './openapi_check.mjs';
import { CLIENT, KEY, bearer, s2sConfig } from './s2s_helpers.mjs';

const T = { timeout: 30000 };
const source = readFileSync(DOC_PATH);
const doc = JSON.parse(source.toString('utf8'));
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

function operations() {
  const out = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of METHODS) if (item[m]) out.push({ path: p, method: m.toUpperCase(), op: item[m] });
  }
  return out;
}

describe('the document', () => {
  test('is valid OpenAPI 3.1 (swagger-parser)', T, async () => {
    const api = await SwaggerParser.validate(structuredClone(doc));
    assert.equal(api.openapi, '3.1.0');
  });

  test('info.version is the server\'s version (the CMake project version)', () => {
    const m = /project\(confab VERSION ([0-9.]+)/.exec(readFileSync(path.join(REPO, 'CMakeLists.txt'), 'utf8'));
    assert.ok(m, 'no project version in CMakeLists.txt');
    assert.equal(doc.info.version, m[1]);
  });

  test('every operation has a unique camelCase operationId, a summary, tags and a 2xx response', () => {
    const seen = new Set();
    for (const { path: p, method, op } of operations()) {
      const where = `${method} ${p}`;
      assert.match(op.operationId ?? '', /^[a-z][A-Za-z0-9]*$/, where);
      assert.ok(!seen.has(op.operationId), `${where}: operationId ${op.operationId} is used twice`);
      seen.add(op.operationId);
      assert.ok(op.summary, `${where}: no summary`);
      assert.ok(op.tags?.length, `${where}: no tag`);
      assert.ok(Object.keys(op.responses).some((s) => /^2/.test(s)), `${where}: no 2xx response`);
    }
    assert.ok(seen.size >= 45, `only ${seen.size} operations`);
  });

  test('every error response names its codes in an enum', () => {
    for (const { path: p, method, op } of operations()) {
      for (const [status, r] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        const schema = deref(r).content?.['application/json']?.schema;
        // An error body names its codes: `{error, code}`, or a JSON-RPC error's error.code (MCP);
        // a response that may be either (anyOf) names them in each.
        const codesOf = (s) => s?.allOf?.[1]?.properties?.code?.enum ??
          s?.allOf?.[1]?.properties?.error?.properties?.code?.enum;
        // The chat reply of a failed turn (502) is the reply's own shape, not an error body.
        if (status === '502') continue;
        for (const alt of schema?.anyOf ?? [schema]) {
          const codes = codesOf(alt);
          assert.ok(Array.isArray(codes) && codes.length > 0, `${method} ${p} ${status}: no code enum`);
        }
      }
    }
  });

  test('every example is an instance of its schema (they were recorded from a running server)', () => {
    let examples = 0;
    for (const { path: p, method, op } of operations()) {
      for (const [status, r] of Object.entries(op.responses)) {
        for (const [media, m] of Object.entries(deref(r).content ?? {})) {
          for (const [name, ex] of Object.entries(m.examples ?? {})) {
            examples++;
            // Examples are bodies: the required headers get a value their schema takes.
            const headers = new Headers({ 'content-type': media });
            for (const [h, spec] of Object.entries(deref(r).headers ?? {})) {
              const { required, schema } = deref(spec);
              if (required) headers.set(h, schema.const ?? (schema.pattern ? '1' : 'x'));
            }
            const url = `http://127.0.0.1${p.replace(/\{[^}]+\}/g, 'x')}`;
            const loc = locate(method, url, Number(status), headers);
            if (media === 'text/event-stream') {
              const problems = [];
              new SseScanner((ev) => { const e = checkEvent(loc, ev); if (e) problems.push(e); }).push(ex.value);
              assert.deepEqual(problems, [], `${method} ${p} ${status} example ${name}`);
            } else {
              const text = typeof ex.value === 'string' ? ex.value : JSON.stringify(ex.value);
              assert.deepEqual(checkBody(method, loc, Number(status), headers, text), [], `${method} ${p} ${status} example ${name}`);
            }
          }
        }
      }
    }
    assert.ok(examples >= 60, `only ${examples} examples`);
  });

  test('every request example is an instance of its request schema; the schemas refuse what the server refuses', () => {
    let examples = 0;
    for (const { path: p, method, op } of operations()) {
      for (const [name, ex] of Object.entries(op.requestBody?.content?.['application/json']?.examples ?? {})) {
        examples++;
        assert.equal(checkRequestBody(method, p, ex.value), null, `${method} ${p} request example ${name}`);
      }
    }
    assert.ok(examples >= 10, `only ${examples} request examples`);
    // Bodies the server answers 400: the request schemas say so too.
    const refused = [
      ['POST', '/v1/apps/{appId}/chat', {}],
      ['POST', '/v1/apps/{appId}/chat', { message: '' }],
      ['POST', '/v1/apps/{appId}/chat', { regenerate: true }],
      ['POST', '/v1/apps/{appId}/chat', { message: 'x', editLast: true }],
      ['POST', '/v1/apps/{appId}/chat', { sessionId: 's', regenerate: true, editLast: true }],
      ['POST', '/v1/identity', { userId: 'a\nb' }],
      ['POST', '/v1/identity', { userId: 'a', ttlSeconds: 0 }],
      ['POST', '/v1/executions/{executionId}/feedback', { rating: 'up', extra: 1 }],
      ['POST', '/v1/workflows', { name: 'x', stepOder: [] }],
      ['POST', '/v1/workflows/{workflowId}/steps', { agentId: 'a', action: 'b', stepOrder: -1 }],
      ['POST', '/v1/applications/token', { client_id: 'a', client_secret: 'b', grant_type: 'password' }],
    ];
    for (const [method, p, body] of refused) {
      assert.notEqual(checkRequestBody(method, p, body), null, `${method} ${p} ${JSON.stringify(body)} should not match`);
    }
    assert.equal(checkRequestBody('POST', '/v1/apps/{appId}/chat', { sessionId: 's', regenerate: true }), null);
    assert.equal(checkRequestBody('POST', '/v1/apps/{appId}/chat', { sessionId: 's', message: 'x', editLast: true }), null);
  });
});

describe('GET /v1/openapi.json', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { await srv?.stop(); srv?.cleanup(); });

  test('serves the bytes of docs/openapi.json, as JSON, without credentials', T, async () => {
    const res = await fetch(`${srv.url}/v1/openapi.json`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.ok(bytes.equals(source), 'the served document differs from docs/openapi.json (rebuild the server)');
    assert.match(res.headers.get('etag'), /^"[0-9a-f]{32}"$/);
    assert.match(res.headers.get('cache-control'), /max-age=\d+/);
  });

  test('If-None-Match with its ETag is 304 without a body; another tag gets the document', T, async () => {
    const first = await fetch(`${srv.url}/v1/openapi.json`);
    const etag = first.headers.get('etag');
    await first.arrayBuffer();
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const res = await fetch(`${srv.url}/v1/openapi.json`, { headers: { 'If-None-Match': inm } });
      assert.equal(res.status, 304, inm);
      assert.equal(res.headers.get('etag'), etag);
      assert.equal((await res.arrayBuffer()).byteLength, 0);
    }
    const other = await fetch(`${srv.url}/v1/openapi.json`, { headers: { 'If-None-Match': '"0123"' } });
    assert.equal(other.status, 200);
    assert.ok(Buffer.from(await other.arrayBuffer()).equals(source));
  });

  test('CORS as on other v1 routes: an allowed origin may read it, another is refused', T, async () => {
    const ok = await fetch(`${srv.url}/v1/openapi.json`, { headers: { Origin: 'http://allowed.test' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://allowed.test');
    await ok.arrayBuffer();
    const denied = await getJson(`${srv.url}/v1/openapi.json`, { Origin: 'http://evil.test' });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.code, 'origin_not_allowed');
    const pre = await fetch(`${srv.url}/v1/openapi.json`, {
      method: 'OPTIONS', headers: { Origin: 'http://allowed.test', 'Access-Control-Request-Method': 'GET' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://allowed.test');
  });

  test('POST is 405 naming GET', T, async () => {
    const r = await getJson(`${srv.url}/v1/openapi.json`, {}, 'POST');
    assert.equal(r.status, 405);
    assert.equal(r.json.code, 'method_not_allowed');
    assert.equal(r.headers.get('allow'), 'GET, OPTIONS');
  });
});

describe('routes, both directions', () => {
  let srv;
  let accessToken;
  before(async () => {
    const cfg = s2sConfig();
    cfg.trustedUserHeader = 'Remote-User';
    cfg.workspaces[0].proxyIdentity = { ttlSeconds: 600 };
    srv = await startServer({ config: cfg });
    const t = await getJson(`${srv.url}/v1/applications/token`, {}, 'GET');
    assert.equal(t.status, 405);
    const res = await fetch(`${srv.url}/v1/applications/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(CLIENT.backend),
    });
    accessToken = (await res.json()).access_token;
  });
  after(async () => { await srv?.stop(); srv?.cleanup(); });

  // The credentials an operation's security asks for (the first alternative).
  function credentials(op) {
    const sec = op.security ?? doc.security;
    const first = Object.keys(sec[0] ?? {});
    if (first.includes('userHashHeader')) return idHeaders(WS.demo, 'openapi-user');
    if (first.includes('apiKey')) return bearer(KEY.demo);
    if (first.includes('accessToken')) return bearer(accessToken);
    if (first.includes('airopsWorkspace')) {
      const h = idHeaders(WS.demo, 'openapi-user');
      return { workspace_id: h['X-Confab-Workspace'], user_id: h['X-Confab-User'], user_id_hashed: h['X-Confab-User-Hash'] };
    }
    if (first.includes('trustedProxyUser')) return { 'Remote-User': 'openapi-user' };
    return {};
  }

  test('every documented operation is served (neither 405 nor the router\'s 404)', T, async () => {
    for (const { path: p, method, op } of operations()) {
      // Ids nobody has: each route answers its own 404 (app_not_found ...) rather than running.
      const url = `${srv.url}${p.replace(/\{[^}]+\}/g, 'no-such-id')}${p === '/v1/identity/proxy' ? '?workspace=demo' : ''}`;
      const headers = { ...credentials(op) };
      let body;
      if (op.requestBody) {
        headers['Content-Type'] = 'application/json';
        body = '{}';
      }
      const res = await fetch(url, { method, headers, body });
      const text = await res.text();
      let code;
      try { code = JSON.parse(text).code; } catch { code = undefined; }
      assert.notEqual(res.status, 405, `${method} ${p}: ${text}`);
      assert.ok(!(res.status === 404 && code === 'not_found'), `${method} ${p} is not served: ${text}`);
    }
  });

  test('a method a path does not document is 405 with Allow naming exactly the documented ones', T, async () => {
    for (const p of Object.keys(doc.paths)) {
      const documented = documentedMethods(p);
      const url = `${srv.url}${p.replace(/\{[^}]+\}/g, 'no-such-id')}`;
      for (const m of METHODS.map((x) => x.toUpperCase())) {
        if (documented.includes(m)) continue;
        // The hook in helpers.mjs fails this fetch unless it is 405 with the documented Allow.
        const res = await fetch(url, { method: m, headers: bearer(KEY.demo) });
        assert.equal(res.status, 405, `${m} ${p}`);
        await res.arrayBuffer();
      }
    }
  });

  test('paths next to documented ones are 404 not_found', T, async () => {
    for (const p of ['/v1', '/v1/apps', '/v1/executions', '/v1/apps/x/y', '/v1/executions/x/y', '/v1/workflows/x/steps/y/z',
      '/v1/agents/x', '/v1/agents/x/y', '/v1/jobs/x/y', '/v1/feedback/x', '/v1/applications', '/v1/identity/x',
      '/sdk_api', '/sdk_api/airops_apps/x', '/sdk_api/pusher', '/v1/openapi.yaml', '/openapi.json', '/healthz/x']) {
      assert.equal(matchPath(p), undefined, p);
      const r = await getJson(`${srv.url}${p}`, bearer(KEY.demo));
      assert.equal(r.status, 404, `${p}: ${r.text}`);
      assert.equal(r.json.code, 'not_found', p);
    }
  });
});

describe('the response checker of helpers.mjs', () => {
  const json = (status, body, headers = {}) => ({
    status, headers: new Headers({ 'content-type': 'application/json', ...headers }), text: JSON.stringify(body),
  });
  const check = (method, p, r) => checkBody(method, locate(method, `http://127.0.0.1${p}`, r.status, r.headers), r.status, r.headers, r.text);

  test('passes a documented response', () => {
    assert.deepEqual(check('GET', '/healthz', json(200, { status: 'ok' })), []);
    assert.deepEqual(check('GET', '/v1/apps/x', json(404, { error: 'app x not found', code: 'app_not_found' })), []);
  });

  test('flags an undocumented route, status, code, body field and header', () => {
    assert.match(check('GET', '/v1/new-route', json(200, {})).join(), /not in the document/);
    assert.match(check('GET', '/v1/apps/x', json(418, { error: 'x', code: 'x' })).join(), /418 is not documented/);
    assert.match(check('GET', '/v1/apps/x', json(404, { error: 'x', code: 'nope' })).join(), /allowed values/);
    assert.match(check('GET', '/v1/executions/x', json(200, { id: 'x' })).join(), /must have required property 'appId'/);
    assert.match(check('GET', '/v1/apps/x', json(429, { error: 'x', code: 'rate_limited' })).join(), /Retry-After is missing/);
    assert.match(check('PUT', '/v1/apps/x', json(405, { error: 'x', code: 'method_not_allowed' }, { allow: 'GET, POST, OPTIONS' })).join(), /Allow/);
    assert.match(check('PUT', '/v1/apps/x', json(200, {})).join(), /not documented for/);
  });

  test('flags an undocumented SSE event type and a bad event payload', () => {
    const headers = new Headers({ 'content-type': 'text/event-stream', 'x-confab-execution-id': 'ex_1' });
    const loc = locate('GET', 'http://127.0.0.1/v1/executions/ex_1/events', 200, headers);
    assert.deepEqual(loc.problems, []);
    assert.equal(checkEvent(loc, { event: 'delta', id: '1', data: '{"content":"hi"}' }), null);
    assert.match(checkEvent(loc, { event: 'surprise', id: '2', data: '{}' }), /not documented/);
    assert.match(checkEvent(loc, { event: 'delta', id: '3', data: '{"text":"hi"}' }), /content/);
    assert.match(checkEvent(loc, { event: 'completed', id: '4', data: 'not json' }), /not JSON/);
  });

  test('no response of this file broke the document', () => {
    assert.deepEqual(openapiViolations, []);
  });
});
