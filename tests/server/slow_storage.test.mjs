// Storage slower than the runners (`--commit-delay-ms` holds every transaction of the db thread):
// the contract's first clause (nothing is sent before it is committed) and backpressure (a run
// that emits faster than storage commits is throttled to storage's pace, its queue bounded).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';

import { SseReader, WS, idHeaders, makeDataDir, readSse, startServer } from './helpers.mjs';

const DELAY_MS = 60;
const MAX_QUEUED = 16;  // native-server/src/hub.cpp kMaxQueued
const h = () => idHeaders(WS.demo, 'slow-storage');

// Streams the `burst` app (~370 one-character events, no delay between them), recording when each
// event arrived; `onEvent(ev, all)` returning true drops the connection there.
async function burst(url, onEvent = () => false) {
  const ac = new AbortController();
  const res = await fetch(`${url}/v1/apps/burst/executions`, {
    method: 'POST', signal: ac.signal,
    headers: { ...h(), Accept: 'text/event-stream', 'Content-Type': 'application/json' }, body: '{"inputs":{}}',
  });
  const id = res.headers.get('x-confab-execution-id');
  const reader = new SseReader();
  const decoder = new TextDecoder();
  const arrivals = [];
  try {
    for await (const chunk of res.body) {
      const now = performance.now();
      for (const ev of reader.push(decoder.decode(chunk, { stream: true }))) {
        arrivals.push(now);
        if (onEvent(ev, reader.events)) {
          ac.abort();
          return { id, events: reader.events, arrivals };
        }
      }
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  }
  return { id, events: reader.events, arrivals };
}

// Events that arrived together (less than half a commit delay apart): for the failure message
// only. Whether two rounds arrive apart depends on the client's scheduling too, so the assertion
// below is one-sided: a throttled run needs one commit per MAX_QUEUED events at least, and
// slowness can only add to that.
function rounds(arrivals) {
  const out = [];
  let size = 0;
  for (let i = 0; i < arrivals.length; i++) {
    if (i > 0 && arrivals[i] - arrivals[i - 1] > DELAY_MS / 2) {
      out.push(size);
      size = 0;
    }
    size++;
  }
  if (size) out.push(size);
  return out;
}

test('slow storage throttles a fast run: at least one commit per 16 of its events', { timeout: 60000 }, async () => {
  const dataDir = makeDataDir();
  const srv = await startServer({ dataDir, args: ['--commit-delay-ms', String(DELAY_MS)] });
  try {
    const { events, arrivals } = await burst(srv.url);
    assert.equal(events.at(-1).type, 'completed');
    assert.equal(events.at(-1).json.status, 'success');
    const deltas = events.filter((e) => e.type === 'delta').length;
    assert.ok(deltas > 300, `the burst app streams many events (${deltas})`);
    // Without backpressure the runner queues everything while the first commit waits, and two or
    // three commits carry the whole run (seen: rounds 1 256 88, ~0.2 s). Throttled, it takes at
    // least one held commit per MAX_QUEUED events.
    const commits = Math.floor(deltas / MAX_QUEUED);
    const took = arrivals[deltas - 1] - arrivals[0];
    assert.ok(took >= 0.9 * (commits - 1) * DELAY_MS,
      `${deltas} events took ${Math.round(took)} ms, under ${commits - 1} commits of ${DELAY_MS} ms; ` +
      `rounds as they arrived: ${rounds(arrivals.slice(0, deltas)).join(' ')}`);
  } finally {
    await srv.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('nothing is sent before it is committed: kill -9 right after an event arrives, it is stored', { timeout: 60000 }, async () => {
  for (const at of [1, 17, 100]) {
    const dataDir = makeDataDir();
    try {
      let srv = await startServer({ dataDir, args: ['--commit-delay-ms', String(DELAY_MS)] });
      let killed;
      // The kill goes out the moment event `at` is parsed: rounds after it are mid-commit then.
      const seen = await burst(srv.url, (ev) => {
        if (Number(ev.id) === at) {
          killed = srv.kill9();
          return true;
        }
        return false;
      });
      await killed;
      srv = await startServer({ dataDir });
      try {
        const stored = await readSse(`${srv.url}/v1/executions/${seen.id}/events`, { headers: h() });
        assert.ok(stored.events.length >= seen.events.length);
        assert.deepEqual(stored.events.slice(0, seen.events.length).map((e) => [e.id, e.type, e.data]),
          seen.events.map((e) => [e.id, e.type, e.data]), `killed after event ${at}: every event seen is stored`);
        const end = stored.events.at(-1);
        assert.equal(end.type, 'completed');
        if (end.json.status !== 'success') assert.equal(stored.events.at(-2).json.code, 'interrupted');
      } finally {
        await srv.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
});
