// Storage faults end runs cleanly (issue 12, defect 4). The data directory sits on a small tmpfs;
// filling it mid-run must give the run's live reader an `error` event (code storage_unavailable)
// and the end of the stream, make /readyz 503 and new runs 503 storage_unavailable; once space is
// freed the run's final state is stored (status error, never running) with exactly the terminal
// events the reader was sent, and the server is ready again.
// Mounting needs root (or CAP_SYS_ADMIN): elsewhere the test is skipped with the reason printed.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { STORE, WS, getJson, idHeaders, postJson, readSse, sleep, startServer } from './helpers.mjs';
import { KEY, bearer, createWorkflow, s2sConfig } from './s2s_helpers.mjs';

const T = { timeout: 60000 };
const mnt = mkdtempSync(path.join(tmpdir(), 'confab-tmpfs-'));
let mounted = false;
let skipReason = '';
if (STORE !== 'sqlite') {
  // PostgreSQL's disk is the database server's: database.test.mjs stops the server under a run instead.
  skipReason = 'sqlite only: the full disk is the tmpfs under --data-dir';
} else if (process.getuid?.() !== 0) {
  skipReason = 'not root: cannot mount a tmpfs for the data directory';
} else {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (r.status === 0) mounted = true;
  else skipReason = `mount -t tmpfs failed (${(r.stderr || r.error?.message || '').trim()})`;
}
if (skipReason) console.log(`# storage_full: skipped: ${skipReason}`);

after(() => {
  if (mounted) spawnSync('umount', ['-l', mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

// Writes until the file system says ENOSPC: big chunks first, then single pages.
function fillDisk(file) {
  const fd = openSync(file, 'w');
  try {
    for (const size of [256 * 1024, 4096, 512]) {
      const buf = Buffer.alloc(size, 0x61);
      for (;;) {
        try { writeSync(fd, buf); } catch (e) { if (e.code === 'ENOSPC') break; throw e; }
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe('storage full mid-run', { skip: skipReason || false }, () => {
  let srv;
  const filler = path.join(mnt, 'filler');
  before(async () => {
    const config = s2sConfig();
    config.workspaces[0].apps.push({
      id: 'long', type: 'template', inputs: [{ name: 'hero', type: 'string', required: true }],
      template: '{{hero}} ' + 'and then the story went on, '.repeat(40), chunkChars: 3, delayMs: 25,
    });
    srv = await startServer({ config, dataDir: mnt });
  });
  after(async () => {
    if (srv) await srv.stop();
    try { unlinkSync(filler); } catch { /* gone */ }
  });

  test('the reader gets error storage_unavailable and the end; the final state is stored once space is back', T, async () => {
    const h = idHeaders(WS.demo, 'disk-user');
    const live = readSse(`${srv.url}/v1/apps/long/executions`, {
      method: 'POST', headers: h, body: { inputs: { hero: 'Ada' } }, timeoutMs: 30000,
    });
    await sleep(500);  // some events are stored and sent
    fillDisk(filler);
    const res = await live;
    assert.equal(res.status, 200);
    const id = res.headers.get('x-confab-execution-id');
    const types = res.events.map((e) => e.type);
    assert.ok(types.filter((t) => t === 'delta').length > 0, `some deltas before the fault: ${types.join(',')}`);
    assert.deepEqual(types.slice(-2), ["error", "completed"], `the stream ends with error + completed: ${types.slice(-5)}\n${srv.logs()}`);
    assert.equal(res.events.at(-2).json.code, 'storage_unavailable');
    assert.equal(res.events.at(-1).json.status, 'error');
    res.events.forEach((e, i) => assert.equal(e.id, String(i + 1), 'dense seqs'));
    assert.ok(!JSON.stringify(res.events.at(-2).json).includes(mnt), 'no path in a client-visible error');

    // While writes fail: not ready, and new runs are refused with a clear 503.
    const ready = await getJson(`${srv.url}/readyz`);
    assert.equal(ready.status, 503, ready.text);
    assert.equal(ready.json.code, 'storage_unavailable');
    const refused = await postJson(`${srv.url}/v1/apps/welcome/executions`, { inputs: { name: 'x' } }, h);
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.json.code, 'storage_unavailable');
    assert.ok(!refused.text.includes(mnt), 'no path in a client-visible error');

    unlinkSync(filler);
    // Retried with backoff (at most 5 s apart): the stored state becomes error, never stays running.
    let rec;
    for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(100)) {
      rec = await getJson(`${srv.url}/v1/executions/${id}`, h);
      if (rec.json?.status !== 'running') break;
    }
    assert.equal(rec.json.status, 'error', rec.text);
    assert.match(rec.json.error, /storage/);
    // A resume from the start reads exactly what the live reader was sent, terminal events included.
    const again = await readSse(`${srv.url}/v1/executions/${id}/events`, { headers: { ...h, 'Last-Event-ID': '0' } });
    assert.deepEqual(again.events.map((e) => [e.id, e.type, e.data]), res.events.map((e) => [e.id, e.type, e.data]));
    let ok;
    for (const deadline = Date.now() + 10000; Date.now() < deadline; await sleep(100)) {
      ok = await getJson(`${srv.url}/readyz`);
      if (ok.status === 200) break;
    }
    assert.equal(ok.status, 200, ok.text);
    const after = await postJson(`${srv.url}/v1/apps/welcome/executions`, { inputs: { name: 'x' } }, h);
    assert.equal(after.status, 202, after.text);
  });

  test('a workflow run whose storage fails reads FAILED once space is back, never RUNNING', T, async () => {
    const h = bearer(KEY.demo);
    const wf = await createWorkflow(srv.url, h, { name: 'disk', steps: [{ agentId: 'slowpoke', action: 'Tell a long story:', stepOrder: 1 }] });
    const run = await postJson(`${srv.url}/v1/workflows/${wf.id}/run`, { input: 'x'.repeat(60) }, h);
    assert.equal(run.status, 202, run.text);
    await sleep(400);  // the step is streaming
    fillDisk(filler);
    // The step's execution ends storage_unavailable and the run's final write fails: the store says
    // so (readyz 503) before space comes back, whatever the machine's speed.
    let ready;
    for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(50)) {
      ready = await getJson(`${srv.url}/readyz`);
      if (ready.status === 503) break;
    }
    assert.equal(ready.json?.code, 'storage_unavailable', ready.text);
    const during = await getJson(`${srv.url}/v1/jobs/${run.json.jobId}`, h);
    assert.equal(during.json.status, 'RUNNING', 'while storage refuses the final state the run is still live');
    unlinkSync(filler);
    let job;
    for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(100)) {
      job = await getJson(`${srv.url}/v1/jobs/${run.json.jobId}`, h);
      if (job.json?.status !== 'RUNNING' && job.json?.status !== 'QUEUED') break;
    }
    assert.equal(job.json.status, 'FAILED', job.text);
    assert.match(JSON.stringify(job.json), /storage/);
  });
});
