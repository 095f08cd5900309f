// Wasm memory is freed: 10,000 streamed events through the SDK leave the wasm heap where it was.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, importEsm, SECRET, hmacHex, FLOOD_EVENTS } from './helpers.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

it(`${FLOOD_EVENTS} streamed events: wasm heap use back where it started`, async () => {
  const { default: Confab } = await importEsm();
  const c = Confab.identify({ userId: 'leak', workspaceId: 'sdk', hashedUserId: hmacHex(SECRET, 'leak'), host: server.url });
  // Warm-up: the first run loads the core and sizes its one-time buffers.
  await (await c.apps.execute({ appId: 'hello', payload: { inputs: { name: 'warm' } }, stream: true })).result();
  const before = await Confab._wasmHeapUsed();

  let events = 0;
  let text = '';
  const run = await c.apps.execute({ appId: 'flood', stream: true,
    streamCallback: ({ content }) => { events++; text += content; } });
  const during = await Confab._wasmHeapUsed();
  const r = await run.result();
  assert.equal(r.status, 'success');
  assert.equal(events, FLOOD_EVENTS);
  assert.equal(text, 'abcdefghij'.repeat(FLOOD_EVENTS / 10));
  assert.ok(during > before, 'a live stream holds a parser on the wasm heap (the probe measures something)');
  assert.equal(await Confab._wasmHeapUsed(), before);

  // A stream that ends by abort frees its parser too.
  const ac = new AbortController();
  let n = 0;
  const aborted = await c.apps.execute({ appId: 'flood', stream: true, signal: ac.signal,
    streamCallback: () => { if (++n === 500) ac.abort(); } });
  await assert.rejects(aborted.result(), (e) => e instanceof Confab.AbortError);
  assert.equal(await Confab._wasmHeapUsed(), before);
  await aborted.cancel();
});
