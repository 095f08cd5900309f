// Transport edge cases the real server does not produce on demand, against a small local HTTP
// server speaking the same wire protocol: 5xx retries (GET yes, POST no), time-outs, refused
// connections, a silent stream resumed with Last-Event-ID, replayed events de-duplicated by seq,
// a stream with missing events resumed, malformed events, a throwing callback closing the
// connection, and the fetch/headers options.
import { it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { importEsm } from './helpers.mjs';

let sdk;
let Confab;
let srv;
let base;
let handler;
let log;

before(async () => {
  sdk = await importEsm();
  Confab = sdk.default;
  srv = createServer((req, res) => {
    log.push({ method: req.method, url: req.url, headers: req.headers, closed: false });
    const entry = log.at(-1);
    res.on('close', () => { entry.closed = true; });
    handler(req, res, entry);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${srv.address().port}`;
});
after(async () => {
  srv.closeAllConnections();
  await new Promise((r) => srv.close(r));
});
beforeEach(() => { log = []; });

// Bounded wait for the server side to notice a close.
async function eventually(cond) {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

const client = (opts = {}) => Confab.identify({ userId: 'u', workspaceId: 'w', hashedUserId: 'h', host: base, ...opts });
const json = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};
const sse = (res, id = 'ex_1') => res.writeHead(200, { 'Content-Type': 'text/event-stream', 'X-Confab-Execution-Id': id });
const ev = (seq, type, data) => `id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

it('GET is retried after 503; a streamed POST is not retried after 500', async () => {
  let n = 0;
  handler = (req, res) => {
    if (req.method === 'GET') return ++n < 3 ? json(res, 503, { error: 'busy', code: 'unavailable' }) : json(res, 200, { id: 'a' });
    json(res, 500, { error: 'boom', code: 'internal' });
  };
  assert.deepEqual(await client().apps.get('a'), { id: 'a' });
  assert.equal(log.length, 3);
  log.length = 0;
  await assert.rejects(client().apps.execute({ appId: 'a', stream: true }), (e) => e instanceof sdk.ApiError && e.status === 500 && e.code === 'internal');
  assert.equal(log.length, 1, 'a POST that may have started a run is not repeated');
});

it('no answer within timeoutMs is a TimeoutError, after the allowed retries', async () => {
  handler = () => {};  // never answers
  await assert.rejects(client({ timeoutMs: 100, retries: 1 }).apps.get('a'),
    (e) => e instanceof sdk.TimeoutError && e.code === 'timeout');
  assert.equal(log.length, 2);
  await eventually(() => log.every((l) => l.closed));
  assert.ok(log.every((l) => l.closed), 'each timed-out request was closed');
});

it('a refused connection is a network_error after retries', async () => {
  const closed = createServer();
  await new Promise((r) => closed.listen(0, '127.0.0.1', r));
  const port = closed.address().port;
  await new Promise((r) => closed.close(r));
  const c = Confab.identify({ userId: 'u', workspaceId: 'w', hashedUserId: 'h', host: `http://127.0.0.1:${port}`, retries: 1 });
  await assert.rejects(c.apps.get('a'), (e) => e instanceof sdk.ConfabError && e.code === 'network_error');
});

it('a silent stream is resumed with Last-Event-ID; replayed events are not delivered twice', async () => {
  let conn = 0;
  handler = (req, res) => {
    conn++;
    if (conn === 1) {
      assert.equal(req.headers.accept, 'text/event-stream');
      sse(res);
      res.write(ev(1, 'delta', { content: 'a' }) + ev(2, 'delta', { content: 'b' }) + 'id: 3\nevent: delta\nda');
      return;  // then silence: no heartbeat
    }
    assert.equal(req.url, '/v1/executions/ex_1/events');
    assert.equal(req.headers['last-event-id'], '2');
    sse(res);
    // A server that replays from the start: the SDK must skip what it already delivered.
    res.end(ev(1, 'delta', { content: 'a' }) + ev(2, 'delta', { content: 'b' }) + ev(3, 'delta', { content: 'c' }) +
      ev(4, 'completed', { status: 'success', output: 'abc' }));
  };
  const seen = [];
  const run = await client({ timeoutMs: 300 }).apps.execute({ appId: 'a', stream: true, streamCallback: ({ content }) => seen.push(content) });
  assert.equal(run.executionId, 'ex_1');
  const r = await run.result();
  assert.deepEqual(seen, ['a', 'b', 'c']);
  assert.equal(r.output, 'abc');
  assert.equal(log.length, 2);
  await eventually(() => log[0].closed);
  assert.ok(log[0].closed, 'the silent connection was closed');
});

it('a stream that skips events is resumed from the last applied one; nothing is delivered out of order', async () => {
  let conn = 0;
  handler = (req, res) => {
    conn++;
    sse(res);
    if (conn === 1) {
      // Event 3 is missing: the SDK must not deliver 4 before 3.
      res.write(ev(1, 'delta', { content: 'a' }) + ev(2, 'delta', { content: 'b' }) + ev(4, 'delta', { content: 'd' }));
      return;  // and stays open: the SDK closes it
    }
    assert.equal(req.headers['last-event-id'], '2');
    res.end(ev(3, 'delta', { content: 'c' }) + ev(4, 'delta', { content: 'd' }) +
      ev(5, 'completed', { status: 'success', output: 'abcd' }));
  };
  const seen = [];
  const run = await client().apps.execute({ appId: 'a', stream: true, streamCallback: ({ content }) => seen.push(content) });
  const r = await run.result();
  assert.deepEqual(seen, ['a', 'b', 'c', 'd']);
  assert.equal(r.output, 'abcd');
  assert.equal(log.length, 2);
  await eventually(() => log[0].closed);
  assert.ok(log[0].closed, 'the connection with the gap was closed');
});

it('a stream that keeps skipping gives up after `retries` with stream_interrupted', async () => {
  handler = (req, res) => {
    sse(res);
    res.end(ev(1, 'delta', { content: 'a' }) + ev(3, 'delta', { content: 'c' }));
  };
  const run = await client({ retries: 2 }).apps.execute({ appId: 'a', stream: true });
  await assert.rejects(run.result(), (e) => e instanceof sdk.ConfabError && e.code === 'stream_interrupted' &&
    /skipped from event 1 to 3/.test(e.message));
  assert.equal(log.length, 3, 'the first connection and `retries` resumptions');
});

it('events without a usable seq or with a bad payload are invalid_response errors naming the problem', async () => {
  const cases = [
    ['event: delta\ndata: {"content":"x"}\n\n', /has no sequence number \(id: ""\)/],
    ['id: abc\nevent: delta\ndata: {"content":"x"}\n\n', /has no sequence number \(id: "abc"\)/],
    ['id: 0\nevent: delta\ndata: {"content":"x"}\n\n', /has no sequence number \(id: "0"\)/],
    [ev(1, 'delta', { text: 'x' }), /execution ex_1: event 1 \(delta\): no "content" string/],
    [ev(1, 'delta', ['x']), /the payload is not a JSON object/],
    [ev(1, 'completed', { status: 'queued' }), /status "queued" is not success, error or cancelled/],
  ];
  for (const [body, re] of cases) {
    handler = (req, res) => { sse(res); res.end(body); };
    const run = await client().apps.execute({ appId: 'a', stream: true });
    await assert.rejects(run.result(), (e) => {
      assert.ok(e instanceof sdk.ConfabError);
      assert.equal(e.code, 'invalid_response');
      assert.match(e.message, re);
      return true;
    });
  }
});

it('chat: the error event and a completion without status make an error result; tool events reach the callback', async () => {
  handler = (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'X-Confab-Execution-Id': 'ex_2', 'X-Confab-Session-Id': 'se_h' });
    res.end(ev(1, 'agent-response', { token: 'Hi ' }) + ev(2, 'agent-action', { tool: 'search', tool_input: { q: 'x' } }) +
      ev(3, 'agent-action-error', { error: 'search failed' }) + ev(4, 'error', { error: 'model gone', code: 'upstream_error' }) +
      ev(5, 'completed', { result: 'Hi ' }));
  };
  const events = [];
  let completed;
  const chat = await client().apps.chatStream({ appId: 'a', message: 'hello', streamCallback: (e) => events.push(e),
    streamCompletedCallback: (d) => { completed = d; } });
  assert.equal(chat.sessionId, 'se_h');
  const r = await chat.result;
  assert.deepEqual(events, [
    { action: 'agent-response', token: 'Hi ', seq: 1 },
    { action: 'agent-action', tool: 'search', tool_input: { q: 'x' }, seq: 2 },
    // The AirOps shape: the failing tool (the last action's) and its error as tool_error.
    { action: 'agent-action-error', tool: 'search', tool_error: 'search failed', seq: 3 },
  ]);
  assert.deepEqual(completed, { action: 'completed', result: 'Hi ' });
  assert.deepEqual(await chat.result(), r, 'chat.result is also callable, as in the AirOps SDK');
  assert.deepEqual(r, { result: 'Hi ', sessionId: 'se_h', status: 'error', executionId: 'ex_2',
    error: 'model gone', errorCode: 'upstream_error' });
});

it('a callback that throws ends the stream with its error and closes the connection', async () => {
  handler = (req, res) => {
    sse(res);
    res.write(ev(1, 'delta', { content: 'x' }));  // and keeps the stream open
  };
  const boom = new Error('callback failed');
  const run = await client().apps.execute({ appId: 'a', stream: true, streamCallback: () => { throw boom; } });
  await assert.rejects(run.result(), (e) => e === boom);
  await eventually(() => log[0].closed);
  assert.ok(log[0].closed, 'the connection was released');
});

it('an event that is not JSON is an invalid_response error', async () => {
  handler = (req, res) => { sse(res); res.end('id: 1\nevent: delta\ndata: {oops\n\n'); };
  const run = await client().apps.execute({ appId: 'a', stream: true });
  await assert.rejects(run.result(), (e) => e instanceof sdk.ConfabError && e.code === 'invalid_response');
});

it('uses options.fetch and options.headers, and sends the identity headers', async () => {
  handler = (req, res) => json(res, 200, { id: 'a' });
  const calls = [];
  const c = client({ headers: { 'X-Trace': 't1' }, fetch: (url, init) => { calls.push(url); return fetch(url, init); } });
  await c.apps.get('a b');
  assert.deepEqual(calls, [`${base}/v1/apps/a%20b`]);
  const h = log[0].headers;
  assert.equal(h['x-trace'], 't1');
  assert.equal(h['x-confab-workspace'], 'w');
  assert.equal(h['x-confab-user'], 'u');
  assert.equal(h['x-confab-user-hash'], 'h');
});

it('a 429 without retries left carries retryAfterMs; an HTTP-date Retry-After works too', async () => {
  let n = 0;
  handler = (req, res) => (++n === 1
    ? json(res, 429, { error: 'slow down', code: 'rate_limited' }, { 'Retry-After': new Date(Date.now() + 1000).toUTCString() })
    : json(res, 200, { id: 'ok' }));
  assert.deepEqual(await client({ retries: 1 }).apps.get('a'), { id: 'ok' });
  assert.equal(log.length, 2);
  n = 0;
  await assert.rejects(client({ retries: 0 }).apps.get('a'), (e) => e instanceof sdk.ApiError && e.status === 429 && e.retryAfterMs <= 1000);
});
