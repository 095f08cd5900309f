// Request heads a hostile client sends: framing that could smuggle a second request (RFC 9112
// section 6.3) and Last-Event-ID values outside the range of stored event seqs.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { WS, getJson, idHeaders, postJson, rawRequest, readSse, startServer } from './helpers.mjs';

const T = { timeout: 20000 };
let srv;
before(async () => { srv = await startServer(); });
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

// Status lines of every response in a raw reply.
const statuses = (text) => [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));

// A request to /healthz whose body, if the server took it for the next request, would be a
// request to /smuggled (answered 404 "no route for GET /smuggled").
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';

describe('request smuggling: bad framing is 400 and the connection is closed', () => {
  const cases = [
    ['Transfer-Encoding: gzip', 'HTTP/1.1', 'Transfer-Encoding: gzip\r\n'],
    ['Transfer-Encoding: xchunked', 'HTTP/1.1', 'Transfer-Encoding: xchunked\r\n'],
    ['Transfer-Encoding: identity', 'HTTP/1.1', 'Transfer-Encoding: identity\r\n'],
    ['Transfer-Encoding: chunked, identity', 'HTTP/1.1', 'Transfer-Encoding: chunked, identity\r\n'],
    ['Transfer-Encoding: chunked then identity (two lines)', 'HTTP/1.1',
      'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n'],
    ['empty Transfer-Encoding', 'HTTP/1.1', 'Transfer-Encoding: \r\n'],
    ['Transfer-Encoding: gzip with Content-Length', 'HTTP/1.1',
      `Transfer-Encoding: gzip\r\nContent-Length: ${SMUGGLED.length}\r\n`],
    ['Transfer-Encoding in HTTP/1.0', 'HTTP/1.0', 'Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n'],
  ];
  for (const [name, version, fields] of cases) {
    test(name, T, async () => {
      // For the HTTP/1.0 case the body is a valid empty chunked body, then the smuggled request.
      const body = version === 'HTTP/1.0' ? `0\r\n\r\n${SMUGGLED}` : SMUGGLED;
      const r = await rawRequest(srv.port, `POST /healthz ${version}\r\nHost: x\r\n${fields}\r\n${body}`);
      assert.ok(r.closedByServer, 'the server closes the connection');
      assert.deepEqual(statuses(r.text), [400], r.text);
      assert.match(r.text, /Transfer-Encoding/);
      assert.doesNotMatch(r.text, /smuggled/);
    });
  }

  test('Content-Length before Transfer-Encoding: chunked is 400 too', T, async () => {
    const r = await rawRequest(srv.port,
      `POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`);
    assert.ok(r.closedByServer);
    assert.deepEqual(statuses(r.text), [400], r.text);
    assert.doesNotMatch(r.text, /smuggled/);
  });

  test('a transfer coding the server does not decode (gzip, chunked) is 501 and closes', T, async () => {
    const r = await rawRequest(srv.port,
      `POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`);
    assert.ok(r.closedByServer);
    assert.deepEqual(statuses(r.text), [501], r.text);
    assert.doesNotMatch(r.text, /smuggled/);
  });

  test('a well-framed chunked request and a pipelined one are both answered', T, async () => {
    const body = JSON.stringify({ inputs: { name: 'x' } });
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const h = idHeaders(WS.demo, 'framer');
    const fields = Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const r = await rawRequest(srv.port,
      `POST /v1/apps/welcome/executions?wait=true HTTP/1.1\r\nHost: x\r\n${fields}Content-Type: application/json\r\n` +
      `Transfer-Encoding: Chunked\r\n\r\n${chunked}` +
      'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.deepEqual(statuses(r.text), [200, 200], r.text);
  });
});

// The server parses a request already in its buffer without an asynchronous read, and reads on
// only when the buffer holds part of one: every split point and any number of pipelined requests
// must frame exactly as one request at a time.
describe('requests split anywhere or pipelined in one write are answered in order', () => {
  const identity = (user) => {
    const body = JSON.stringify({ userId: user });
    return `POST /v1/identity HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WS.demo.apiKey}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };
  // Writes `pieces` with a pause between them; resolves with everything read until the server closes.
  const exchange = (pieces) => new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no close; got ${text.slice(0, 400)}`)); }, 15000);
    sock.setEncoding('utf8');
    sock.on('data', (d) => { text += d; });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('close', () => { clearTimeout(timer); resolve(text); });
    sock.on('connect', async () => {
      for (const p of pieces) {
        sock.write(p);
        await new Promise((r) => setTimeout(r, 15));
      }
    });
  });
  const users = (text) => [...text.matchAll(/"userId":"([^"]+)"/g)].map((m) => m[1]);
  const close = 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

  test('one request cut at every point of its head and body', T, async () => {
    const req = identity('split-user');
    // Every cut point of the head's first line, its fields, the blank line and the body.
    const cuts = [1, 5, 17, 18, req.indexOf('\r\n\r\n'), req.indexOf('\r\n\r\n') + 2, req.indexOf('\r\n\r\n') + 4, req.length - 3];
    for (const cut of cuts) {
      const text = await exchange([req.slice(0, cut), req.slice(cut) + close]);
      assert.deepEqual(statuses(text), [200, 200], `cut at ${cut}: ${text.slice(0, 300)}`);
      assert.deepEqual(users(text), ['split-user'], `cut at ${cut}`);
    }
  });

  test('forty requests in one write, then a whole one and half of the next, then the rest', T, async () => {
    const many = Array.from({ length: 40 }, (_, i) => identity(`u${i}`)).join('');
    const next = identity('after-the-pause');
    const text = await exchange([many + identity('whole') + next.slice(0, 30), next.slice(30) + close]);
    assert.deepEqual(statuses(text), [...Array(42).fill(200), 200], text.slice(-500));
    assert.deepEqual(users(text), [...Array.from({ length: 40 }, (_, i) => `u${i}`), 'whole', 'after-the-pause']);
  });
});

describe('Last-Event-ID must be an event seq (0 .. 2^63-1)', () => {
  const h = () => idHeaders(WS.demo, 'resumer');
  let id;
  before(async () => {
    const r = await postJson(`${srv.url}/v1/apps/welcome/executions?wait=true`, { inputs: { name: 'x' } }, h());
    assert.equal(r.status, 200, r.text);
    id = r.json.id;
  });

  for (const bad of ['9223372036854775808', '18446744073709551615', '18446744073709551616', '-1', '+5', '1e3',
    '0x10', '5 5', '1'.repeat(20), '0'.repeat(25), '9'.repeat(5000)]) {
    test(`Last-Event-ID: ${bad.slice(0, 30)} is 400 naming the header`, T, async () => {
      const r = await getJson(`${srv.url}/v1/executions/${id}/events`, { ...h(), 'Last-Event-ID': bad });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.code, 'invalid_request');
      assert.match(r.json.error, /^Last-Event-ID: /);
    });
  }

  for (const bad of ['9223372036854775808', '-1', '1e3', ' 5', '5 ', '1.0', '9'.repeat(300)]) {
    test(`?lastEventId=${bad.slice(0, 30)} is 400 naming the parameter`, T, async () => {
      const r = await getJson(`${srv.url}/v1/executions/${id}/events?lastEventId=${encodeURIComponent(bad)}`, h());
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error, /^lastEventId: /);
    });
  }

  test('0 and 9223372036854775807 are accepted', T, async () => {
    const all = await readSse(`${srv.url}/v1/executions/${id}/events`, { headers: { ...h(), 'Last-Event-ID': '0' } });
    assert.equal(all.status, 200);
    assert.equal(all.events.at(-1).type, 'completed');
    const none = await readSse(`${srv.url}/v1/executions/${id}/events`,
      { headers: { ...h(), 'Last-Event-ID': '9223372036854775807' } });
    assert.equal(none.status, 200);
    assert.deepEqual(none.events, []);
    const q = await readSse(`${srv.url}/v1/executions/${id}/events?lastEventId=9223372036854775807`, { headers: h() });
    assert.equal(q.status, 200);
    assert.deepEqual(q.events, []);
  });
});
