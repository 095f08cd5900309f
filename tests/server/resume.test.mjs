// Resuming streams: drop the connection mid-run, reconnect with Last-Event-ID, and get exactly the
// rest: the concatenation equals an uninterrupted run, no event is delivered twice.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { WS, STORY, idHeaders, postJson, readSse, startServer, streamText, getJson } from './helpers.mjs';

const T = { timeout: 20000 };
let srv;
before(async () => { srv = await startServer({ args: ['--heartbeat-ms', '100'] }); });
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

const h = () => idHeaders(WS.demo, 'resumer');

test('drop mid-stream, resume with Last-Event-ID: nothing lost, nothing twice', T, async () => {
  // Reference: an uninterrupted run of the same app and inputs.
  const full = await readSse(`${srv.url}/v1/apps/story/executions`, {
    method: 'POST', headers: h(), body: { version: '1', inputs: { hero: 'Zed' } },
  });
  assert.equal(full.events.at(-1).json.status, 'success');

  // The same run, interrupted after event 5 while it is still running.
  const first = await readSse(`${srv.url}/v1/apps/story/executions`, {
    method: 'POST', headers: h(), body: { version: '1', inputs: { hero: 'Zed' } },
    stopAfter: (e) => e.id === '5',
  });
  assert.ok(first.aborted);
  assert.equal(first.events.length, 5);
  const id = first.headers.get('x-confab-execution-id');
  const during = await getJson(`${srv.url}/v1/executions/${id}`, h());
  assert.ok(['queued', 'running'].includes(during.json.status), `still running (${during.json.status})`);

  const rest = await readSse(`${srv.url}/v1/executions/${id}/events`, {
    headers: { ...h(), 'Last-Event-ID': '5' },
  });
  assert.equal(rest.status, 200);
  assert.equal(rest.events[0].id, '6', 'resumes right after the last event seen');
  const all = [...first.events, ...rest.events];
  const ids = all.map((e) => Number(e.id));
  assert.deepEqual(ids, ids.map((_, i) => i + 1), 'dense, no duplicates, no gaps');
  assert.equal(streamText(all), streamText(full.events));
  assert.equal(streamText(all), `Zed: ${STORY}`);
  assert.equal(all.at(-1).type, 'completed');
  assert.deepEqual(all.at(-1).json, full.events.at(-1).json);
});

test('several drops in a row, resuming each time via ?lastEventId=', T, async () => {
  const r = await postJson(`${srv.url}/v1/apps/story/executions`, { version: '1', inputs: { hero: 'Q' } }, h());
  const id = r.json.executionId;
  const got = [];
  let last = 0;
  for (let round = 0; round < 50; round++) {
    const s = await readSse(`${srv.url}/v1/executions/${id}/events?lastEventId=${last}`, {
      headers: h(), stopAfter: (e) => Number(e.id) >= last + 4,
    });
    got.push(...s.events);
    if (s.events.length) last = Number(s.events.at(-1).id);
    if (got.at(-1)?.type === 'completed') break;
  }
  const ids = got.map((e) => Number(e.id));
  assert.deepEqual(ids, ids.map((_, i) => i + 1));
  assert.equal(streamText(got), `Q: ${STORY}`);
});

test('a chat turn can be resumed by its execution id', T, async () => {
  const first = await readSse(`${srv.url}/v1/apps/assistant/chat`, {
    method: 'POST', headers: h(), body: { message: 'resume me please' }, stopAfter: (e) => e.id === '3',
  });
  const id = first.headers.get('x-confab-execution-id');
  const rest = await readSse(`${srv.url}/v1/executions/${id}/events`, { headers: { ...h(), 'Last-Event-ID': '3' } });
  const all = [...first.events, ...rest.events];
  const done = all.at(-1);
  assert.equal(done.type, 'completed');
  assert.equal(streamText(all), done.json.result);
  assert.ok(done.json.result.includes('resume me please'));
});

test('Last-Event-ID at or past the end gives only what is left (nothing), then the stream ends', T, async () => {
  const r = await postJson(`${srv.url}/v1/apps/welcome/executions?wait=true`, { inputs: { name: 'x' } }, h());
  const s = await readSse(`${srv.url}/v1/executions/${r.json.id}/events`, { headers: { ...h(), 'Last-Event-ID': '1000' } });
  assert.equal(s.status, 200);
  assert.deepEqual(s.events, []);
  const bad = await getJson(`${srv.url}/v1/executions/${r.json.id}/events`, { ...h(), 'Last-Event-ID': 'abc' });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error, /Last-Event-ID/);
});

test('idle streams get heartbeat comments', T, async () => {
  // Events 300 ms apart, heartbeat every 100 ms of silence.
  const s = await readSse(`${srv.url}/v1/apps/sleepy/executions`, { method: 'POST', headers: h(), body: {} });
  assert.equal(s.events.at(-1).type, 'completed');
  assert.equal(streamText(s.events), 'one two three');
  assert.ok(s.comments >= 1, `heartbeats seen: ${s.comments}`);
});

test('a reader that falls behind its bounded queue catches up from storage, losing nothing', T, async (t) => {
  // A queue of one event per stream and a run that emits ~400 events back to back: the live
  // queue overflows, and the stream must fall back to storage without gaps or repeats.
  const tight = await startServer({ args: ['--stream-queue', '1'] });
  try {
    for (let i = 0; i < 3; i++) {
      const s = await readSse(`${tight.url}/v1/apps/burst/executions`, { method: 'POST', headers: h(), body: {} });
      const ids = s.events.map((e) => Number(e.id));
      assert.deepEqual(ids, ids.map((_, k) => k + 1));
      assert.equal(streamText(s.events), `${STORY} ${STORY}`);
      assert.equal(s.events.at(-1).type, 'completed');
    }
    const m = await getJson(`${tight.url}/metrics`);
    t.diagnostic(m.text.split('\n').find((l) => l.startsWith('confab_stream_catchups_total')));
  } finally {
    await tight.stop();
    tight.cleanup();
  }
});
