// scripts/cluster.sh, what `make demo-cluster` runs: start brings up PostgreSQL, three instances
// and nginx (idempotently), the demo config's chat streams through nginx, the Pusher WebSocket is
// upgraded at /app/, every instance answers, and stop leaves nothing running. Its own folder,
// PostgreSQL and free ports, so a `make demo-cluster` running meanwhile is not touched.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { PusherSocket } from '../server/pusher_client.mjs';
import { REPO, checkResponsesFrom, freePorts, readSse, streamText } from '../server/helpers.mjs';

const base = path.join(REPO, 'build/test-cluster');
mkdirSync(base, { recursive: true });
const dir = mkdtempSync(path.join(base, 'script-'));
chmodSync(dir, 0o755);  // as root, PostgreSQL runs as the postgres user: it must reach dir/pg
const [port, page, core, widget] = await freePorts(4);
const env = {
  ...process.env, CONFAB_CLUSTER_DIR: dir, CONFAB_CLUSTER_PORT: String(port), CONFAB_DEMO_PAGE_PORT: String(page),
  CONFAB_DEMO_CORE_PORT: String(core), CONFAB_DEMO_WIDGET_PORT: String(widget),
};
const cluster = (cmd) => spawnSync(path.join(REPO, 'scripts/cluster.sh'), [cmd], { env, encoding: 'utf8', timeout: 120000 });
const pids = () => [1, 2, 3].map((n) => Number(readFileSync(path.join(dir, `i${n}/pid`), 'utf8')));
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

after(() => {
  cluster('stop');
  rmSync(dir, { recursive: true, force: true });
});

test('scripts/cluster.sh: start (twice), three instances behind nginx, a chat stream and the WebSocket through it, stop', { timeout: 120000 }, async () => {
  const started = cluster('start');
  assert.equal(started.status, 0, started.stderr);
  const url = started.stdout.trim().split('\n').at(-1);
  assert.equal(url, `http://127.0.0.1:${port}`);
  const uncheck = checkResponsesFrom(url);
  try {
    const first = pids();
    const again = cluster('start');
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(pids(), first, 'a second start leaves the running instances alone');
    const status = cluster('status');
    assert.equal(status.status, 0, status.stdout);
    assert.match(status.stdout, /nginx\s+running/);

    // Round-robin: every instance answers within a few requests.
    const upstreams = new Set();
    for (let i = 0; i < 9 && upstreams.size < 3; i++) {
      const r = await fetch(`${url}/readyz`);
      assert.equal(r.status, 200);
      upstreams.add(r.headers.get('x-upstream'));
    }
    assert.equal(upstreams.size, 3, [...upstreams].join(' '));

    // The demo config's chat app, streamed through nginx (unbuffered: the stream ends with completed).
    const demo = JSON.parse(readFileSync(path.join(REPO, 'examples/config/demo.json'), 'utf8')).workspaces[0];
    const hash = createHmac('sha256', demo.secrets[0]).update('alice').digest('hex');
    const chat = await readSse(`${url}/v1/apps/assistant/chat`, {
      method: 'POST', body: { message: 'Hello from the cluster' },
      headers: { 'X-Confab-Workspace': demo.id, 'X-Confab-User': 'alice', 'X-Confab-User-Hash': hash },
    });
    assert.equal(chat.status, 200);
    assert.equal(chat.events.at(-1).type, 'completed');
    assert.equal(chat.events.at(-1).json.status, 'success');
    assert.ok(streamText(chat.events).includes('Hello from the cluster'));

    // The Pusher-compatible WebSocket is upgraded through nginx's /app/ location.
    const ws = await PusherSocket.connect(url);
    assert.equal(ws.status, 101);
    assert.match(await ws.established(), /^\d+\.\d+$/);
    ws.sock.destroy();

    const stopped = cluster('stop');
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.deepEqual(first.map(alive), [false, false, false], 'the instances are stopped');
    assert.notEqual(cluster('status').status, 0);
    await assert.rejects(fetch(`${url}/readyz`), 'nginx no longer listens');
  } finally {
    uncheck();
  }
});
