// Failures under a cluster of instances on one PostgreSQL database behind nginx: the owner of a
// run killed with SIGKILL mid-stream, and PostgreSQL restarted under the running instances.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { WS, getJson, idHeaders, postJson, readSse, sleep, streamText } from '../server/helpers.mjs';
import { pg, startCluster } from './cluster.mjs';
import { clusterConfig, dense, openStream } from './streams.mjs';

const LEASE_MS = 1500;
let c;

before(async () => {
  c = await startCluster({ config: clusterConfig(), args: ['--instance-lease-ms', String(LEASE_MS)] });
});
after(async () => { if (c) await c.stop(); });

test('kill -9 of the owner mid-stream: the reader on B gets 1..N ending in interrupted within the lease, all of it stored', { timeout: 40000 }, async (t) => {
  const h = idHeaders(WS.demo, 'cluster-kill');
  const start = await postJson(`${c.url}/v1/apps/long/executions`, { inputs: { hero: 'Doomed' } }, h);
  assert.equal(start.status, 202, start.text);
  const a = c.instanceOf(start);
  const id = start.json.executionId;
  const b = await openStream(c, `${c.url}/v1/executions/${id}/events`, { headers: h }, [a]);
  await b.waitFor((evs) => evs.length >= 8);
  const { signal } = await c.servers[a].kill9();
  assert.equal(signal, 'SIGKILL');
  const killedAt = Date.now();
  const seenAtKill = b.events.length;
  await b.done;
  const took = b.endedAt - killedAt;
  t.diagnostic(`the reader on B got its terminal events ${took} ms after the kill (lease ${LEASE_MS} ms)`);
  assert.ok(!b.broken, 'B\'s own connection is not cut: B is alive');
  assert.ok(dense(b.events), `1..N, each once: ${b.events.map((e) => e.id)}`);
  assert.ok(b.events.length >= seenAtKill + 2);
  const [err, done] = b.events.slice(-2);
  assert.equal(err.type, 'error');
  assert.equal(err.json.code, 'interrupted', err.data);
  assert.equal(done.type, 'completed');
  assert.equal(done.json.status, 'error');
  // The lease runs out LEASE_MS after A's last renewal; another instance notices on its next scan
  // (a fraction of the lease). Bound: two leases, plus slack for two shared cores.
  assert.ok(took <= 2 * LEASE_MS + 1500, `terminal events ${took} ms after the kill (lease ${LEASE_MS} ms)`);

  // Every event B saw is stored, byte for byte, read through the instances still alive.
  for (let n = 0; n < 2; n++) {
    const stored = await readSse(`${c.url}/v1/executions/${id}/events`, { headers: h });
    assert.notEqual(c.instanceOf(stored), a);
    assert.deepEqual(stored.events.map((e) => [e.id, e.type, e.data]), b.events.map((e) => [e.id, e.type, e.data]));
  }
  const ex = await getJson(`${c.url}/v1/executions/${id}`, h);
  assert.equal(ex.status, 200);
  assert.notEqual(ex.json.status, 'running', ex.text);
  assert.ok(streamText(b.events).startsWith('Doomed '));
  // The survivors serve new runs as before.
  const after = await readSse(`${c.url}/v1/apps/chatty/chat`, { method: 'POST', headers: h, body: { message: 'still here?' } });
  assert.equal(after.events.at(-1).json.status, 'success');
});

test('PostgreSQL restarted under the instances: /readyz 503 while it is down, then every instance recovers by itself', { timeout: 60000 }, async () => {
  const alive = c.servers.filter((s) => s.proc.exitCode === null && s.proc.signalCode === null);
  assert.ok(alive.length >= 2);
  const pids = alive.map((s) => s.proc.pid);
  pg('stop');
  const stoppedAt = Date.now();
  try {
    for (const s of alive) {
      let status = 0;
      for (let n = 0; n < 100 && status !== 503; n++) {
        status = (await fetch(`${s.url}/readyz`)).status;
        if (status !== 503) await sleep(50);
      }
      assert.equal(status, 503, `${s.url}/readyz while the database is down`);
    }
    // Down for longer than a lease: every instance's lease runs out on the database's clock while
    // none can renew it. The first one back must not take the others over for it.
    await sleep(Math.max(0, stoppedAt + 2 * LEASE_MS - Date.now()));
  } finally {
    pg('start');
  }
  const downMs = Date.now() - stoppedAt;
  // Back by themselves (reconnect with backoff up to 5 s): the same processes, all ready again.
  for (const s of alive) {
    let status = 0;
    const deadline = Date.now() + 20000;
    while (status !== 200 && Date.now() < deadline) {
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) {
        assert.fail(`${s.url} exited (code ${s.proc.exitCode}; 75 = fenced) after the database came back ` +
          `(down ${downMs} ms, lease ${LEASE_MS} ms): it had to be restarted\n${s.logs().split('\n').slice(-4).join('\n')}`);
      }
      status = await fetch(`${s.url}/readyz`).then((r) => r.status, () => 0);
      if (status !== 200) await sleep(100);
    }
    assert.equal(status, 200, `${s.url} ready again after the database came back (down ${downMs} ms)`);
  }
  // And they stay up: a lease that ran out while the database was down fences nobody for good.
  await sleep(2 * LEASE_MS);
  assert.deepEqual(alive.map((s) => s.proc.exitCode === null && s.proc.signalCode === null), alive.map(() => true),
    `no instance exited (the database was down ${downMs} ms, lease ${LEASE_MS} ms): ${alive.map((s) => s.proc.exitCode)}`);
  assert.deepEqual(alive.map((s) => s.proc.pid), pids);
  // Each of them runs a chat turn through nginx again.
  const h = idHeaders(WS.demo, 'cluster-pg-restart');
  const seen = new Set();
  for (let n = 0; n < 2 * alive.length && seen.size < alive.length; n++) {
    const r = await readSse(`${c.url}/v1/apps/chatty/chat`, { method: 'POST', headers: h, body: { message: `after ${n}` } });
    assert.equal(r.status, 200);
    assert.equal(r.events.at(-1).json.status, 'success', JSON.stringify(r.events.at(-1)));
    seen.add(c.instanceOf(r));
  }
  assert.equal(seen.size, alive.length, 'every instance served a turn');
});
