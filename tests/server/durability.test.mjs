// Durability: kill -9 the server and restart it on the same data dir; everything acknowledged is
// still there and runs that were in flight end as `error` with a reason. Also graceful SIGTERM.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { WS, STORY, getJson, idHeaders, postJson, readSse, startServer, streamText, makeDataDir, takenOver } from './helpers.mjs';
import { rmSync } from 'node:fs';

const T = { timeout: 30000 };
const h = () => idHeaders(WS.demo, 'durable');

test('kill -9 after a finished execution and a chat turn: all there after restart', T, async () => {
  const dataDir = makeDataDir();
  try {
    let srv = await startServer({ dataDir });
    const ex = await postJson(`${srv.url}/v1/apps/story/executions?wait=true`, { version: '1', inputs: { hero: 'Kay' } }, h());
    assert.equal(ex.json.status, 'success');
    const exEvents = await readSse(`${srv.url}/v1/executions/${ex.json.id}/events`, { headers: h() });
    const chat = await readSse(`${srv.url}/v1/apps/assistant/chat`, { method: 'POST', headers: h(), body: { message: 'remember me' } });
    const sessionId = chat.headers.get('x-confab-session-id');
    const chatId = chat.headers.get('x-confab-execution-id');
    assert.equal(chat.events.at(-1).json.status, 'success');
    const reply = streamText(chat.events);

    // A run still going when the process dies.
    const inflight = await readSse(`${srv.url}/v1/apps/slow/executions`, {
      method: 'POST', headers: h(), body: { inputs: { hero: 'Lo' } }, stopAfter: (e) => e.id === '2',
    });
    const inflightId = inflight.headers.get('x-confab-execution-id');
    const { signal } = await srv.kill9();
    assert.equal(signal, 'SIGKILL');

    srv = await startServer({ dataDir });
    try {
      await takenOver(srv);  // PostgreSQL: the killed instance's runs are closed once its lease ran out
      const again = await getJson(`${srv.url}/v1/executions/${ex.json.id}`, h());
      assert.equal(again.status, 200);
      assert.equal(again.json.status, 'success');
      assert.equal(again.json.output, `Kay: ${STORY}`);
      const replay = await readSse(`${srv.url}/v1/executions/${ex.json.id}/events`, { headers: h() });
      assert.deepEqual(replay.events, exEvents.events, 'every stored event survives, same ids');

      const sess = await getJson(`${srv.url}/v1/sessions/${sessionId}`, h());
      assert.equal(sess.status, 200);
      assert.deepEqual(sess.json.messages.map((m) => [m.role, m.content]), [['user', 'remember me'], ['assistant', reply]]);
      assert.equal((await getJson(`${srv.url}/v1/executions/${chatId}`, h())).json.status, 'success');

      // The interrupted run is an error with a reason, and its stream ends.
      const lost = await getJson(`${srv.url}/v1/executions/${inflightId}`, h());
      assert.equal(lost.json.status, 'error');
      assert.match(lost.json.error, /interrupted/);
      const lostStream = await readSse(`${srv.url}/v1/executions/${inflightId}/events`, { headers: h() });
      assert.equal(lostStream.events.at(-1).type, 'completed');
      assert.equal(lostStream.events.at(-1).json.status, 'error');
      const ids = lostStream.events.map((e) => Number(e.id));
      assert.deepEqual(ids, ids.map((_, i) => i + 1));

      // The session goes on after the restart.
      const t2 = await readSse(`${srv.url}/v1/apps/assistant/chat`, { method: 'POST', headers: h(), body: { message: 'again', sessionId } });
      assert.equal(t2.events.at(-1).json.status, 'success');
    } finally {
      await srv.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('SIGTERM: open streams end with a final event, in-flight runs become errors, exit 0', T, async () => {
  const dataDir = makeDataDir();
  try {
    let srv = await startServer({ dataDir });
    const res = await fetch(`${srv.url}/v1/apps/slow/executions`, {
      method: 'POST',
      headers: { ...h(), Accept: 'text/event-stream', 'Content-Type': 'application/json' },
      body: JSON.stringify({ inputs: { hero: 'Term' } }),
    });
    const id = res.headers.get('x-confab-execution-id');
    const { SseReader } = await import('./helpers.mjs');
    const reader = new SseReader();
    const decoder = new TextDecoder();
    let stopping;
    for await (const chunk of res.body) {
      reader.push(decoder.decode(chunk, { stream: true }));
      if (!stopping && reader.events.length >= 2) stopping = srv.stop();
    }
    const { code } = await stopping;
    assert.equal(code, 0);
    const types = reader.events.map((e) => e.type);
    assert.equal(types.at(-1), 'completed');
    assert.equal(types.at(-2), 'error');
    assert.match(reader.events.at(-2).json.error, /shutting down/);
    assert.equal(reader.events.at(-1).json.status, 'error');

    srv = await startServer({ dataDir });
    try {
      const after = await getJson(`${srv.url}/v1/executions/${id}`, h());
      assert.equal(after.json.status, 'error');
      assert.equal(after.json.error, 'server shutting down');
    } finally {
      await srv.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
