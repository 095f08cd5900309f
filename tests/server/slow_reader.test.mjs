// A reader that stops reading (docs/STREAMING.md): the run is not held back by it, the server drops
// it after its write deadline instead of buffering for it, and it resumes with Last-Event-ID
// without losing or repeating an event.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SseReader, WS, getJson, idHeaders, readSse, sleep, startServer, streamText, testConfig } from './helpers.mjs';

const HERO = 'abcdefghij'.repeat(60000);  // 600 KB: ~75k events of 8 characters, ~4 MB of SSE
// Sanitizer builds run several times slower; make test-tsan sets CONFAB_TEST_SLOWDOWN.
const SLOWDOWN = Number(process.env.CONFAB_TEST_SLOWDOWN ?? 1);

test('a reader that stops reading is dropped, the run goes on, and the reader resumes without loss', { timeout: 60000 * SLOWDOWN }, async () => {
  const config = testConfig();
  config.workspaces[0].apps.push({ id: 'flood', type: 'template', inputs: [{ name: 'hero', type: 'string', required: true }],
    template: '{{hero}}', chunkChars: 8, delayMs: 0 });
  const srv = await startServer({ config, args: ['--write-timeout-ms', '400', '--max-body-bytes', '2000000'] });
  try {
    const h = idHeaders(WS.demo, 'slow-reader');
    const res = await fetch(`${srv.url}/v1/apps/flood/executions`, {
      method: 'POST',
      headers: { ...h, Accept: 'text/event-stream', 'Content-Type': 'application/json' },
      body: JSON.stringify({ inputs: { hero: HERO } }),
    });
    assert.equal(res.status, 200);
    const id = res.headers.get('x-confab-execution-id');
    const body = res.body.getReader();
    const first = await body.read();  // the stream is flowing
    assert.ok(!first.done);

    // Stop reading. The run does not wait for this reader: it finishes while nothing is read.
    const deadline = Date.now() + 30000 * SLOWDOWN;
    let rec;
    for (;;) {
      rec = await getJson(`${srv.url}/v1/executions/${id}`, h);
      if (rec.json?.status === 'success' || Date.now() > deadline) break;
      await sleep(100);
    }
    assert.equal(rec.json?.status, 'success', 'the run finished while its reader read nothing');
    // The server gives up on this reader at its 400 ms write deadline: its stream closes while
    // the client still reads nothing (no fixed sleep: wait for the server to say so).
    const openStreams = async () => Number(/confab_open_streams (\d+)/.exec((await getJson(`${srv.url}/metrics`)).text)[1]);
    while ((await openStreams()) !== 0) {
      assert.ok(Date.now() < deadline, 'the stalled stream was never dropped');
      await sleep(100);
    }

    // Read what the connection still holds: it ends (dropped) before the end of the stream.
    const reader = new SseReader();
    const decoder = new TextDecoder();
    reader.push(decoder.decode(first.value, { stream: true }));
    try {
      for (;;) {
        const { done, value } = await body.read();
        if (done) break;
        reader.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // the connection was reset: what arrived before is what counts
    }
    const seen = reader.events;
    assert.ok(seen.length > 0);
    assert.notEqual(seen.at(-1).type, 'completed', 'the slow reader was dropped before the end');

    // Resume from the last event received: everything after it, once, dense, to the end.
    const lastId = Number(seen.at(-1).id);
    const rest = await readSse(`${srv.url}/v1/executions/${id}/events`, { headers: { ...h, 'Last-Event-ID': String(lastId) }, timeoutMs: 30000 });
    assert.equal(rest.status, 200);
    const all = [...seen, ...rest.events];
    all.forEach((ev, i) => assert.equal(Number(ev.id), i + 1, `event ${i + 1} once and in order`));
    assert.equal(all.at(-1).type, 'completed');
    assert.equal(streamText(all), HERO);
  } finally {
    await srv.stop();
  }
});
