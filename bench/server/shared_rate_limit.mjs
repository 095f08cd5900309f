// The cost of the shared rate limiter (issue 14): the same route (GET /v1/apps/{id}, which reads
// no storage, only the limiter runs) on two confab-servers with the same config, a rateLimit so
// high it never refuses: "postgres" (a shared store: every request takes its token with one upsert
// in the database, through the db thread) and "sqlite" (one process: the in-memory limiter).
// wrk drives each in turn; the CPU time of the server process and of the PostgreSQL cluster's
// processes (from /proc) is divided by the requests served. BENCH_USERS (default 1) spreads the
// requests over that many users (buckets).
//
//   CONFAB_SERVER_BIN=build/native-release/confab-server \
//   CONFAB_BENCH_DATABASE_URL=$(scripts/pg.sh url) PG_DATA=build/pg/data node bench/server/shared_rate_limit.mjs
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const BIN = process.env.CONFAB_SERVER_BIN ?? 'build/native-release/confab-server';
const ADMIN_URL = process.env.CONFAB_BENCH_DATABASE_URL;
const PG_DATA = process.env.PG_DATA ?? 'build/pg/data';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
// Users the requests rotate through: 1 puts every take on one bucket (the best case for
// gathering), many spread them over as many rows.
const USERS = Number(process.env.BENCH_USERS ?? 1);
if (!ADMIN_URL) throw new Error('CONFAB_BENCH_DATABASE_URL (scripts/pg.sh url) is required');

const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;  // utime + stime
}
// The postmaster of PG_DATA and its children (backends, WAL writer, checkpointer, ...).
function pgPids() {
  const master = Number(readFileSync(path.join(PG_DATA, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pids = [master];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === master) pids.push(Number(d));
    } catch { /* gone */ }
  }
  return pids;
}
function pgCpu() {
  let s = 0;
  for (const p of pgPids()) {
    try { s += cpuSeconds(p); } catch { /* gone */ }
  }
  return s;
}

const secret = 'bench-secret-0123456789abcdef';
const dir = mkdtempSync(path.join(tmpdir(), 'confab-bench-rl-'));
writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
  workspaces: [{ id: 'bench', secrets: [secret], rateLimit: { perSecond: 1e9, burst: 1e9 },
    apps: [{ id: 'hello', type: 'template', public: true, template: 'Hello' }] }],
}));
const dbName = `confab_bench_${randomBytes(4).toString('hex')}`;
execFileSync('psql', [ADMIN_URL, '-Atqc', `CREATE DATABASE ${dbName}`]);
const u = new URL(ADMIN_URL);
u.pathname = `/${dbName}`;

async function start(name, storeArgs) {
  const proc = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--config', path.join(dir, 'config.json'),
    '--data-dir', path.join(dir, name), ...storeArgs, '--threads', '1', '--no-access-log'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
  });
  return { name, proc, url };
}
const servers = [await start('sqlite', []), await start('postgres', ['--database-url', u.toString()])];

const users = Array.from({ length: USERS }, (_, i) => {
  const user = `bench-user-${i}`;
  return [user, createHmac('sha256', secret).update(user).digest('hex')];
});
const lua = path.join(dir, 'users.lua');
writeFileSync(lua, `local users = {${users.map(([u, h]) => `{"${u}","${h}"}`).join(',')}}
local i = 0
request = function()
  i = i + 1
  local u = users[(i % #users) + 1]
  return wrk.format("GET", "/v1/apps/hello", { ["X-Confab-Workspace"] = "bench", ["X-Confab-User"] = u[1], ["X-Confab-User-Hash"] = u[2] })
end
`);

function run(server) {
  const s0 = cpuSeconds(server.proc.pid);
  const p0 = pgCpu();
  const out = execFileSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', '-s', lua, server.url]).toString();
  const s1 = cpuSeconds(server.proc.pid);
  const p1 = pgCpu();
  const requests = Number(/(\d+) requests in/.exec(out)[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)[1];
  return {
    store: server.name, requests, non2xx, rps: Math.round(requests / SECONDS), p99,
    serverUsPerReq: ((s1 - s0) * 1e6 / requests).toFixed(1),
    pgUsPerReq: ((p1 - p0) * 1e6 / requests).toFixed(1),
  };
}

try {
  for (const srv of servers) run(srv);  // warm-up: connections, prepared statements, the bucket row
  const rows = [];
  for (let i = 0; i < ROUNDS; i++) for (const srv of servers) rows.push(run(srv));
  console.log('| store (limiter) | requests | non-2xx | req/s | p99 | server CPU us/req | PostgreSQL CPU us/req |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.store} | ${r.requests} | ${r.non2xx} | ${r.rps} | ${r.p99} | ${r.serverUsPerReq} | ${r.pgUsPerReq} |`);
  console.log(`users: ${USERS}, connections: ${CONNECTIONS}, ${SECONDS} s per run`);
  console.log(`rate_buckets rows: ${execFileSync('psql', [u.toString(), '-Atqc', 'SELECT count(*) FROM rate_buckets']).toString().trim()}`);
} finally {
  for (const srv of servers) {
    srv.proc.kill('SIGTERM');
    await new Promise((r) => srv.proc.on('exit', r));
  }
  execFileSync('psql', [ADMIN_URL, '-Atqc', `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`]);
  rmSync(dir, { recursive: true, force: true });
}
