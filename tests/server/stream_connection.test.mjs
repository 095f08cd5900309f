// The connection around an event stream: once the head is written a stream is a small object, not
// the connection's request loop, so what comes after it must still work: the next request on the
// same keep-alive connection (sent after the stream, or pipelined behind it and read before it
// began), and HTTP/1.0, whose stream ends by closing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { STORY, SseReader, WS, idHeaders, postJson, rawRequest, startServer } from './helpers.mjs';

const T = { timeout: 20000 };
let srv;
before(async () => { srv = await startServer(); });
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

const h = idHeaders(WS.demo, 'conn-user');
const fields = Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('');
const storyBody = JSON.stringify({ version: '1', inputs: { hero: 'Cy' } });
const postStory = (extra = '') =>
  `POST /v1/apps/story/executions HTTP/1.1\r\nHost: x\r\n${fields}Accept: text/event-stream\r\n` +
  `Content-Type: application/json\r\nContent-Length: ${storyBody.length}\r\n${extra}\r\n${storyBody}`;

// Splits a raw HTTP/1.1 reply into responses: {status, headers, body} with chunked bodies decoded.
function responses(text) {
  const out = [];
  let rest = text;
  while (rest.length > 0) {
    const headEnd = rest.indexOf('\r\n\r\n');
    assert.ok(headEnd > 0, `a response head in ${JSON.stringify(rest.slice(0, 80))}`);
    const [statusLine, ...lines] = rest.slice(0, headEnd).split('\r\n');
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    rest = rest.slice(headEnd + 4);
    let body = '';
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const lineEnd = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, lineEnd), 16);
        assert.ok(Number.isInteger(size), `a chunk size at ${JSON.stringify(rest.slice(0, 40))}`);
        body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
        assert.equal(rest.slice(lineEnd + 2 + size, lineEnd + 4 + size), '\r\n', 'a chunk ends with CRLF');
        rest = rest.slice(lineEnd + 4 + size);
        if (size === 0) break;
      }
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      body = rest.slice(0, n);
      rest = rest.slice(n);
    } else {
      body = rest;  // ends by closing
      rest = '';
    }
    out.push({ status: Number(statusLine.split(' ')[1]), headers, body });
  }
  return out;
}

function events(body) {
  const r = new SseReader();
  r.push(body);
  return r.events;
}

function assertWholeStory(evs) {
  assert.deepEqual(evs.map((e) => Number(e.id)), evs.map((_, i) => i + 1), 'dense ids');
  assert.equal(evs.at(-1).type, 'completed');
  assert.equal(evs.at(-1).json.output, `Cy: ${STORY}`);
}

test('a request pipelined behind a stream is answered after it, on the same connection', T, async () => {
  const r = await rawRequest(srv.port, postStory() + 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.ok(r.closedByServer);
  const rs = responses(r.text);
  assert.deepEqual(rs.map((x) => x.status), [200, 200]);
  assert.equal(rs[0].headers['content-type'], 'text/event-stream');
  assertWholeStory(events(rs[0].body));
  assert.match(rs[1].body, /ok/);
});

test('after a live stream and a replayed one the connection serves its next requests', T, async () => {
  const done = await postJson(`${srv.url}/v1/apps/story/executions?wait=true`, { version: '1', inputs: { hero: 'Cy' } }, h);
  assert.equal(done.json.status, 'success');
  const replay = `GET /v1/executions/${done.json.id}/events HTTP/1.1\r\nHost: x\r\n${fields}Accept: text/event-stream\r\n\r\n`;
  const net = await import('node:net');
  const sock = net.connect(srv.port, '127.0.0.1');
  let text = '';
  sock.on('data', (d) => { text += d.toString('utf8'); });
  const closed = new Promise((resolve) => sock.on('close', resolve));
  await new Promise((resolve) => sock.on('connect', resolve));
  // One request at a time, each sent once the previous response has ended.
  const waitFor = async (pred) => {
    const deadline = Date.now() + 10000;
    while (!pred()) {
      assert.ok(Date.now() < deadline, `timed out; got ${JSON.stringify(text.slice(-200))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  sock.write(postStory());
  await waitFor(() => text.endsWith('0\r\n\r\n'));
  sock.write(replay);
  await waitFor(() => (text.match(/\r\n0\r\n\r\n/g) ?? []).length === 2);
  sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await closed;
  const rs = responses(text);
  assert.deepEqual(rs.map((x) => x.status), [200, 200, 200]);
  assertWholeStory(events(rs[0].body));
  const replayed = events(rs[1].body);
  assert.deepEqual(replayed.map((e) => Number(e.id)), replayed.map((_, i) => i + 1), 'the replay: dense ids');
  assert.equal(replayed.at(-1).json.output, done.json.output);
  assert.match(rs[2].body, /ok/);
});

test('an HTTP/1.0 stream is the raw event bytes and ends by closing', T, async () => {
  const r = await rawRequest(srv.port, postStory().replace('HTTP/1.1', 'HTTP/1.0'));
  assert.ok(r.closedByServer);
  const rs = responses(r.text);
  assert.equal(rs.length, 1);
  assert.equal(rs[0].status, 200);
  assert.equal(rs[0].headers['transfer-encoding'], undefined);
  assertWholeStory(events(rs[0].body));
});
