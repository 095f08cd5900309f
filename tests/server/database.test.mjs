// The store's database as an operator meets it: --database-url / CONFAB_DATABASE_URL, a schema newer
// than the server, a database that cannot be reached at start, a second instance on one database,
// and (PostgreSQL runs) the database stopped and started again under a running server, which
// recovers without a restart. Passwords of database URLs never reach a log line or an error.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  REPO, SERVER_BIN, STORE, WS, databaseUrlFor, freePorts, getJson, idHeaders, makeDataDir, postJson, psql, readSse,
  sleep, startServer, withDatabase,
} from './helpers.mjs';
import { KEY, bearer, createWorkflow, s2sConfig } from './s2s_helpers.mjs';

const T = { timeout: 60000 };

// Runs `confab-server serve` with `args` until it exits (it must, within timeoutMs).
function runToExit(args, { env = {}, timeoutMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    const inherited = { ...process.env };
    delete inherited.CONFAB_DATABASE_URL;  // only what the test gives
    const proc = spawn(SERVER_BIN, ['serve', '--listen', '127.0.0.1:0', '--threads', '1', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...inherited, ...env },
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`still running after ${timeoutMs} ms\n${stderr}`)); }, timeoutMs);
    proc.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

// Where a test server's data lives, as flags for a server started by hand.
async function storeArgs(dataDir) {
  if (STORE === 'postgres') return ['--database-url', await databaseUrlFor(dataDir)];
  return ['--data-dir', path.join(dataDir, 'db')];
}

test('a schema newer than the server knows: it refuses to start and says why', T, async () => {
  const dataDir = makeDataDir();
  try {
    const srv = await startServer({ dataDir });
    await srv.stop();
    if (STORE === 'postgres') {
      await psql(await databaseUrlFor(dataDir), 'UPDATE confab_schema_version SET version = 99');
    } else {
      execFileSync('sqlite3', [path.join(dataDir, 'db', 'confab.db'), 'PRAGMA user_version = 99']);
    }
    const args = await storeArgs(dataDir);
    const r = await runToExit(args);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /schema version 99 is newer than this server knows \(\d+\)/);
    assert.doesNotMatch(r.stdout, /listening/);
    if (STORE === 'postgres') {
      const password = new URL(args[1]).password;
      assert.ok(password && !r.stderr.includes(password), `no password in:\n${r.stderr}`);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a database that cannot be reached at start: logged, then exit 1 after --database-connect-timeout-ms, no password shown', T, async () => {
  const [port] = await freePorts(1);  // nothing listens there
  const url = `postgresql://confab:s3cret-pw@127.0.0.1:${port}/confab_flag`;
  const r = await runToExit(['--database-url', url, '--database-connect-timeout-ms', '700']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /"msg":"waiting for the database","database":"postgresql:\/\/confab:\*\*\*@127\.0\.0\.1:\d+\/confab_flag"/);
  assert.match(r.stderr, new RegExp(`cannot open the database: cannot connect to the database postgresql://confab:\\*\\*\\*@127\\.0\\.0\\.1:${port}/confab_flag within 700 ms: .*refused`));
  assert.ok(!r.stderr.includes('s3cret-pw'), r.stderr);

  // CONFAB_DATABASE_URL does the same, and --database-url wins over it.
  const envUrl = `postgres://confab:env-pw@127.0.0.1:${port}/confab_env`;
  const fromEnv = await runToExit(['--database-connect-timeout-ms', '0'], { env: { CONFAB_DATABASE_URL: envUrl } });
  assert.equal(fromEnv.code, 1, fromEnv.stderr);
  assert.match(fromEnv.stderr, /confab:\*\*\*@127\.0\.0\.1:\d+\/confab_env/);
  assert.ok(!fromEnv.stderr.includes('env-pw'), fromEnv.stderr);
  const both = await runToExit(['--database-url', url, '--database-connect-timeout-ms', '0'], { env: { CONFAB_DATABASE_URL: envUrl } });
  assert.equal(both.code, 1, both.stderr);
  assert.match(both.stderr, /\/confab_flag/);
  assert.doesNotMatch(both.stderr, /confab_env/);
});

test('a database URL that is not PostgreSQL: a usage error naming the flag, password redacted', T, async () => {
  const r = await runToExit(['--database-url', 'mysql://app:hunter2@db.internal/confab']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--database-url: expected a postgresql:\/\/ or postgres:\/\/ URL, got 'mysql:\/\/app:\*\*\*@db\.internal\/confab'/);
  assert.ok(!r.stderr.includes('hunter2'));
});

test('a chat message holding U+0000: SQLite keeps it whole, PostgreSQL (which cannot store it) answers 400 and nothing else fails', T, async () => {
  const srv = await startServer();
  try {
    const h = idHeaders(WS.demo, 'nul-user');
    // A stream of another user runs meanwhile: its events share group commits with the bad request.
    const other = readSse(`${srv.url}/v1/apps/story/executions`, {
      method: 'POST', headers: idHeaders(WS.demo, 'other-user'), body: { version: '1', inputs: { hero: 'Bo' } },
    });
    const chat = await readSse(`${srv.url}/v1/apps/assistant/chat`, { method: 'POST', headers: h, body: { message: 'hi\u0000there' } });
    if (STORE === 'postgres') {
      assert.equal(chat.status, 400, chat.text);
      assert.equal(chat.json.code, 'invalid_request');
      assert.match(chat.json.error, /NUL character \(U\+0000\)/);
    } else {
      assert.equal(chat.status, 200);
      const sessionId = chat.headers.get('x-confab-session-id');
      const session = await getJson(`${srv.url}/v1/sessions/${sessionId}`, h);
      assert.equal(session.json.messages[0].content, 'hi\u0000there');
    }
    const story = await other;
    assert.equal(story.events.at(-1).json.status, 'success');
    story.events.forEach((e, i) => assert.equal(e.id, String(i + 1)));
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});

// The PostgreSQL twin of storage_full.test.mjs: the database goes away mid-run, on a cluster of this
// test's own (scripts/pg.sh with CONFAB_PG_DIR), and comes back on the same port.
describe('PostgreSQL stopped under a running server', { skip: STORE !== 'postgres' && 'postgres only: needs a database server to stop (make test-server-pg)' }, () => {
  const pgDir = STORE === 'postgres' ? mkdtempSync(path.join(tmpdir(), 'confab-pg-')) : '';
  const pg = (cmd) => execFileSync(path.join(REPO, 'scripts/pg.sh'), [cmd], {
    env: { ...process.env, CONFAB_PG_DIR: pgDir }, encoding: 'utf8', timeout: 120000,
  }).trim();
  let srv;
  before(async () => {
    const admin = pg('start');
    await psql(admin, 'CREATE DATABASE outage');
    srv = await startServer({ config: s2sConfig(), databaseUrl: withDatabase(admin, 'outage') });
  });
  after(async () => {
    if (srv) await srv.stop();
    pg('destroy');
    rmSync(pgDir, { recursive: true, force: true });
  });

  test('runs end storage_unavailable, /readyz is 503, then the server recovers by itself', { timeout: 90000 }, async () => {
    const h = idHeaders(WS.demo, 'outage-user');
    const live = readSse(`${srv.url}/v1/apps/slow/executions`, {
      method: 'POST', headers: h, body: { inputs: { hero: 'Ada' } }, timeoutMs: 30000,
    });
    await sleep(600);  // some events are committed and sent
    pg('stop');
    const res = await live;
    assert.equal(res.status, 200);
    const id = res.headers.get('x-confab-execution-id');
    const types = res.events.map((e) => e.type);
    assert.ok(types.filter((t) => t === 'delta').length > 0, `some deltas before the outage: ${types.join(',')}`);
    assert.deepEqual(types.slice(-2), ['error', 'completed'], `the stream ends with error + completed: ${types.slice(-5)}\n${srv.logs()}`);
    assert.equal(res.events.at(-2).json.code, 'storage_unavailable');
    assert.equal(res.events.at(-1).json.status, 'error');
    res.events.forEach((e, i) => assert.equal(e.id, String(i + 1), 'dense seqs'));
    assert.ok(!JSON.stringify(res.events).includes('confab-test'), 'no password in a client-visible error');

    // While the database is away: not ready, new runs refused with a clear 503.
    const ready = await getJson(`${srv.url}/readyz`);
    assert.equal(ready.status, 503, ready.text);
    assert.equal(ready.json.code, 'storage_unavailable');
    const refused = await postJson(`${srv.url}/v1/apps/welcome/executions`, { inputs: { name: 'x' } }, h);
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.json.code, 'storage_unavailable');

    pg('start');
    let ok;
    for (const deadline = Date.now() + 30000; Date.now() < deadline; await sleep(100)) {
      ok = await getJson(`${srv.url}/readyz`);
      if (ok.status === 200) break;
    }
    assert.equal(ok.status, 200, `ready again without a restart: ${ok.text}\n${srv.logs()}`);
    // The run's final state was retried until the database took it: error, never running.
    let rec;
    for (const deadline = Date.now() + 30000; Date.now() < deadline; await sleep(100)) {
      rec = await getJson(`${srv.url}/v1/executions/${id}`, h);
      if (rec.json?.status !== 'running') break;
    }
    assert.equal(rec.json.status, 'error', rec.text);
    assert.match(rec.json.error, /storage/);
    const again = await readSse(`${srv.url}/v1/executions/${id}/events`, { headers: { ...h, 'Last-Event-ID': '0' } });
    assert.deepEqual(again.events.map((e) => [e.id, e.type, e.data]), res.events.map((e) => [e.id, e.type, e.data]),
      'a resume reads exactly what the live reader was sent');
    const fresh = await readSse(`${srv.url}/v1/apps/welcome/executions`, { method: 'POST', headers: h, body: { inputs: { name: 'y' } } });
    assert.equal(fresh.events.at(-1).json.status, 'success');

    const logs = srv.logs();
    assert.equal(logs.match(/the database connection is lost/g)?.length, 1, `one line per outage:\n${logs}`);
    assert.match(logs, /the database connection is back/);
    assert.ok(!logs.includes('confab-test'), 'no password in the logs');
  });

  test('an idle server notices the database going away: /readyz 503, then 200 once it is back', { timeout: 90000 }, async () => {
    assert.equal((await getJson(`${srv.url}/readyz`)).status, 200);
    pg('stop');
    let ready;
    for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(100)) {
      ready = await getJson(`${srv.url}/readyz`);
      if (ready.status === 503) break;
    }
    assert.equal(ready.status, 503, `no run, no request touched the database: ${ready.text}`);
    assert.equal(ready.json.code, 'storage_unavailable');
    pg('start');
    for (const deadline = Date.now() + 30000; Date.now() < deadline; await sleep(100)) {
      ready = await getJson(`${srv.url}/readyz`);
      if (ready.status === 200) break;
    }
    assert.equal(ready.status, 200, ready.text);
  });

  test('a workflow run whose database goes away reads FAILED once it is back, never RUNNING', { timeout: 90000 }, async () => {
    const h = bearer(KEY.demo);
    const wf = await createWorkflow(srv.url, h, { name: 'outage', steps: [{ agentId: 'slowpoke', action: 'Tell a long story:', stepOrder: 1 }] });
    const run = await postJson(`${srv.url}/v1/workflows/${wf.id}/run`, { input: 'x'.repeat(60) }, h);
    assert.equal(run.status, 202, run.text);
    await sleep(400);  // the step is streaming
    pg('stop');
    let ready;
    for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(50)) {
      ready = await getJson(`${srv.url}/readyz`);
      if (ready.status === 503) break;
    }
    assert.equal(ready.json?.code, 'storage_unavailable', ready.text);
    pg('start');
    let job;
    for (const deadline = Date.now() + 30000; Date.now() < deadline; await sleep(100)) {
      job = await getJson(`${srv.url}/v1/jobs/${run.json.jobId}`, h);
      if (job.status === 200 && job.json?.status !== 'RUNNING' && job.json?.status !== 'QUEUED') break;
    }
    assert.equal(job.json?.status, 'FAILED', job.text);
    assert.match(JSON.stringify(job.json), /storage/);
  });
});

// Reads have connections of their own on PostgreSQL (--database-read-connections, default 2): a
// lookup, a replay or a follower's catch-up never queues behind the write path. Shown with
// --commit-delay-ms, which holds every job of the writing thread: lookups answered by a reader do
// not wait for it, lookups on the writer (--database-read-connections 0) each wait the delay.
// --execution-cache-bytes 0: every lookup of the finished execution reads the store (the cache
// would answer all but the first from memory, on neither connection).
test('PostgreSQL: reads are served by read connections, not behind the write path', {
  ...T, skip: STORE !== 'postgres' && 'postgres only: SQLite reads and writes on one connection',
}, async () => {
  const dataDir = makeDataDir();
  const h = idHeaders(WS.demo, 'reader-user');
  const first = await startServer({ dataDir });
  let id;
  try {
    const run = await readSse(`${first.url}/v1/apps/story/executions`, {
      method: 'POST', headers: h, body: { version: '1', inputs: { hero: 'Rea' } },
    });
    assert.equal(run.events.at(-1).json.status, 'success');
    id = run.headers.get('x-confab-execution-id');
  } finally {
    await first.stop();
  }
  const DELAY_MS = 1000;
  const lookups = async (extra) => {
    const srv = await startServer({ dataDir, args: ['--commit-delay-ms', String(DELAY_MS), '--execution-cache-bytes', '0', ...extra] });
    try {
      const started = Date.now();
      for (let i = 0; i < 3; i++) {
        const r = await getJson(`${srv.url}/v1/executions/${id}`, h);
        assert.equal(r.status, 200);
        assert.equal(r.json.status, 'success');
      }
      return Date.now() - started;
    } finally {
      await srv.stop();
    }
  };
  const pooled = await lookups([]);
  const onWriter = await lookups(['--database-read-connections', '0']);
  assert.ok(pooled < DELAY_MS, `three lookups on read connections took ${pooled} ms (the writer's delay is ${DELAY_MS} ms)`);
  assert.ok(onWriter >= 3 * DELAY_MS, `three lookups on the writer took ${onWriter} ms: each waits its delay`);
  first.cleanup();
});
