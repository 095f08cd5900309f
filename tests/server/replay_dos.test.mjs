// Last-Event-ID >= 2^63 pinned a core forever (issue 12, defect 1): the id, bound as int64, turned
// negative, every stored event matched, each was skipped as already sent, and with >= 256 events
// the replay loop fetched the same page forever, long after the client left. Now such an id is a
// 400 naming the header, storage is never asked for events after a value it cannot hold, a replay
// page that brings nothing new ends the replay, and a replay stops when its client is gone.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { WS, idHeaders, postJson, readSse, sleep, startServer, testConfig } from './helpers.mjs';

const T = { timeout: 60000 };

// Clock ticks per second of /proc's CPU times (USER_HZ).
const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
// Sanitizer builds run several times slower (make test-tsan sets this).
const SLOWDOWN = Number(process.env.CONFAB_TEST_SLOWDOWN ?? 1);

// User + system CPU seconds of a process, from /proc (Linux).
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;  // utime, stime
}

describe('Last-Event-ID at and beyond 2^63', () => {
  let srv;
  let id;
  const h = idHeaders(WS.demo, 'replay-user');
  before(async () => {
    const config = testConfig();
    config.workspaces[0].apps.push({ id: 'many', type: 'template', public: true, template: 'x'.repeat(320), chunkChars: 1, delayMs: 0 });
    srv = await startServer({ config });
    const r = await readSse(`${srv.url}/v1/apps/many/executions`, { method: 'POST', headers: h, body: { inputs: {} } });
    assert.equal(r.events.at(-1).type, 'completed');
    assert.ok(r.events.length > 300, `${r.events.length} events`);
    id = r.headers.get('x-confab-execution-id');
  });
  after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

  test('2^63 is a 400 naming the header (the old server replayed forever, long after the client left)', T, async () => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 2000);
    let status = 0;
    let body = '';
    try {
      const res = await fetch(`${srv.url}/v1/executions/${id}/events`, {
        headers: { ...h, Accept: 'text/event-stream', 'Last-Event-ID': '9223372036854775808' }, signal: ac.signal,
      });
      status = res.status;
      body = await res.text();
    } catch { /* the 2 s client timeout: the old server never answered */ }
    clearTimeout(timer);
    assert.equal(status, 400, `status ${status} ${body}`);
    assert.match(JSON.parse(body).error, /^Last-Event-ID: /);
  });

  test('the largest valid id (2^63 - 1) ends the stream at once with nothing to send', T, async () => {
    const r = await readSse(`${srv.url}/v1/executions/${id}/events`, {
      headers: { ...h, 'Last-Event-ID': '9223372036854775807' }, timeoutMs: 5000,
    });
    assert.equal(r.status, 200);
    assert.equal(r.events.length, 0);
  });

  test('a replay whose client leaves mid-way stops (the server is idle again)', T, async () => {
    // Many readers replay and drop after the first event; none may keep reading storage.
    for (let i = 0; i < 20; ++i) {
      await readSse(`${srv.url}/v1/executions/${id}/events`, { headers: h, stopAfter: () => true });
    }
    await sleep(300);
    const before = cpuSeconds(srv.proc.pid);
    await sleep(1000);
    const used = cpuSeconds(srv.proc.pid) - before;
    // An idle server uses a few ms; one replay loop left running would use the whole second.
    assert.ok(used < 0.5 * SLOWDOWN, `server used ${used.toFixed(2)} s of CPU while no client was connected`);
  });
});
