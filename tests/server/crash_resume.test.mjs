// The durability contract's crash clause (docs/STREAMING.md, clause 3), as clients see it: many
// streams are open when the server is killed with SIGKILL at a random moment; after a restart on
// the same data dir every client resumes from the last id it received and gets a dense sequence,
// each event once, ending in the run's own `completed` or in `error {code: "interrupted"}` then
// `completed`; and every event any client saw before the kill is stored byte for byte.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';

import { SseReader, WS, getJson, idHeaders, makeDataDir, readSse, startServer, streamText } from './helpers.mjs';

const ROUNDS = 3;
const STREAMS = 16;  // slow executions (a 2-character chunk every 40 ms, ~8 s each)
const CHATS = 6;     // chat turns of the echo agent (done in ~100 ms: some finish before the kill)
const h = () => idHeaders(WS.demo, 'crash-resume');

// Reads a stream until it ends or the connection breaks, keeping what arrived (parsed as it comes),
// as a client would. `head` resolves once the response head is in (or the request failed).
function followKeeping(url, init) {
  const out = { id: null, session: null, events: [], broken: false };
  const reader = new SseReader();
  out.events = reader.events;
  let gotHead;
  out.head = new Promise((r) => { gotHead = r; });
  out.done = (async () => {
    try {
      const res = await fetch(url, init);
      out.id = res.headers.get('x-confab-execution-id');
      out.session = res.headers.get('x-confab-session-id');
      gotHead();
      const decoder = new TextDecoder();
      for await (const chunk of res.body) reader.push(decoder.decode(chunk, { stream: true }));
    } catch {
      out.broken = true;
    }
    gotHead();
    return out;
  })();
  return out;
}

const post = (body) => ({
  method: 'POST',
  headers: { ...h(), Accept: 'text/event-stream', 'Content-Type': 'application/json' },
  body: JSON.stringify(body),
});

test('kill -9 at random moments during many streams: every client resumes exactly once, nothing it saw is lost', { timeout: 120000 }, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const dataDir = makeDataDir();
    try {
      // Runs compact every 16 events: a kill finds runs with events rows, journal rows and both.
      let srv = await startServer({ dataDir, args: ['--compact-every', '16'] });
      const clients = [];
      for (let i = 0; i < STREAMS; i++) {
        clients.push(followKeeping(`${srv.url}/v1/apps/slow/executions`, post({ inputs: { hero: `H${round}.${i}` } })));
      }
      for (let i = 0; i < CHATS; i++) {
        clients.push(followKeeping(`${srv.url}/v1/apps/assistant/chat`, post({ message: `turn ${round}.${i}` })));
      }
      // A random moment while the slow runs stream (they take ~8 s): once every run has started.
      await Promise.all(clients.map((c) => c.head));
      const wait = Math.floor(Math.random() * 1500);
      await new Promise((r) => setTimeout(r, wait));
      const { signal } = await srv.kill9();
      assert.equal(signal, 'SIGKILL');
      const seen = await Promise.all(clients.map((c) => c.done));

      srv = await startServer({ dataDir, args: ['--compact-every', '16'] });
      try {
        let interrupted = 0;
        for (const c of seen) {
          assert.ok(c.id, `round ${round}: every request got its head (and id) before the kill`);
          const ids = c.events.map((e) => Number(e.id));
          assert.deepEqual(ids, ids.map((_, k) => k + 1), `round ${round} ${c.id}: what the client saw is dense from 1`);
          const last = ids.length ? ids.at(-1) : 0;
          const resumed = await readSse(`${srv.url}/v1/executions/${c.id}/events`, {
            headers: { ...h(), ...(last ? { 'Last-Event-ID': String(last) } : {}) },
          });
          assert.equal(resumed.status, 200);
          const all = [...c.events, ...resumed.events];
          const allIds = all.map((e) => Number(e.id));
          assert.deepEqual(allIds, allIds.map((_, k) => k + 1), `round ${round} ${c.id}: seen + resumed is 1..N, each once`);
          const end = all.at(-1);
          assert.equal(end.type, 'completed', `round ${round} ${c.id}: the stream ends with completed`);
          if (end.json.status === 'error') {
            const before = all.at(-2);
            assert.equal(before.type, 'error');
            assert.equal(before.json.code, 'interrupted', `round ${round} ${c.id}: the cut-off run says why`);
            interrupted++;
          } else {
            assert.equal(end.json.status, 'success');
          }
          // Everything the client saw is what the store holds, byte for byte.
          const stored = await readSse(`${srv.url}/v1/executions/${c.id}/events`, { headers: h() });
          assert.deepEqual(stored.events.slice(0, c.events.length).map((e) => [e.id, e.type, e.data]),
            c.events.map((e) => [e.id, e.type, e.data]), `round ${round} ${c.id}: stored == seen`);
          assert.deepEqual(stored.events.map((e) => e.data), all.map((e) => e.data));
          if (c.session) {
            // A chat turn's reply is in its session, complete or marked interrupted, as streamed.
            const sess = await getJson(`${srv.url}/v1/sessions/${c.session}`, h());
            assert.equal(sess.status, 200);
            const reply = sess.json.messages.find((m) => m.role === 'assistant' && m.executionId === c.id) ??
              sess.json.messages.filter((m) => m.role === 'assistant').at(-1);
            assert.ok(reply, `round ${round} ${c.id}: the turn's reply is in the session`);
            assert.equal(reply.content, streamText(all));
          }
        }
        assert.ok(interrupted >= STREAMS, `round ${round}: the slow runs were cut off (${interrupted} interrupted)`);
      } finally {
        await srv.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
});
