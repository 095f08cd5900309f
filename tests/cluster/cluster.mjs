// The cluster harness: PostgreSQL (scripts/pg.sh, its folder in build/test-cluster/pg), several
// confab-server instances on one database of it, and nginx round-robin over them on a free port,
// as the README's "Operating several instances" describes. nginx adds `X-Upstream:
// $upstream_addr` to every answer, so a test knows which instance served it and can assert that
// it really crossed instances. Everything is stopped by stop(), and killed at exit if a test failed.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import {
  REPO, checkResponsesFrom, freePorts, psql, sleep, startServer, withDatabase,
} from '../server/helpers.mjs';

export const NGINX = process.env.CONFAB_NGINX_BIN ?? '/usr/sbin/nginx';
const BASE = path.join(REPO, 'build/test-cluster');
const PG_ENV = { ...process.env, CONFAB_PG_DIR: path.join(BASE, 'pg') };

// scripts/pg.sh with the tests' own folder: `make test-server-pg` stopping build/pg, or a
// `make demo-cluster` running in build/cluster, leave it alone.
export function pg(command) {
  const r = spawnSync(path.join(REPO, 'scripts/pg.sh'), [command], { env: PG_ENV, encoding: 'utf8', timeout: 90000 });
  if (r.status !== 0 && command !== 'status') throw new Error(`scripts/pg.sh ${command} failed: ${r.stderr}`);
  return { ok: r.status === 0, out: r.stdout.trim() };
}

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
});

function nginxConf(dir, port, upstreamPorts) {
  return `# tests/cluster/cluster.mjs: nginx round-robin over the instances under test
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  fastcgi_temp_path ${dir}/tmp-fastcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  scgi_temp_path ${dir}/tmp-scgi;
  upstream confab {
${upstreamPorts.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=1s;`).join('\n')}
    keepalive 16;
  }
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen 127.0.0.1:${port};
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    add_header X-Upstream $upstream_addr always;
    location / {
      proxy_pass http://confab;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
    }
    location /app/ {
      proxy_pass http://confab;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 1h;
    }
  }
}
`;
}

// Starts PostgreSQL (if it is not running), a fresh database, `instances` servers on it with
// `args` (e.g. a short --instance-lease-ms) and nginx in front. Resolves
// { url, servers, databaseUrl, adminUrl, instanceOf(res), others(i), stop() }.
export async function startCluster({ instances = 3, config, args = [], readyTimeoutMs = 20000 } = {}) {
  if (!existsSync(NGINX)) throw new Error(`${NGINX} not found: install Debian's nginx package (scripts/bootstrap.sh does)`);
  mkdirSync(BASE, { recursive: true });
  const adminUrl = pg('start').out;
  const dbName = `confab_cluster_${randomBytes(5).toString('hex')}`;
  await psql(adminUrl, `CREATE DATABASE ${dbName}`);
  const databaseUrl = withDatabase(adminUrl, dbName);
  const servers = [];
  let nginx;
  let uncheck = () => {};
  const dir = mkdtempSync(path.join(BASE, 'nginx-'));
  const stop = async () => {
    uncheck();
    if (nginx && nginx.exitCode === null && nginx.signalCode === null) {
      nginx.kill('SIGQUIT');
      const t = setTimeout(() => nginx.kill('SIGKILL'), 5000);
      await new Promise((r) => nginx.once('exit', r));
      clearTimeout(t);
    }
    await Promise.all(servers.map(async (s) => {
      await s.stop().catch(() => {});
      s.cleanup();
    }));
    if (pg('status').ok) await psql(adminUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    pg('stop');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // The first instance migrates the schema; the others start together.
    servers.push(await startServer({ config, databaseUrl, args, readyTimeoutMs }));
    servers.push(...await Promise.all(Array.from({ length: instances - 1 },
      () => startServer({ config, databaseUrl, args, readyTimeoutMs }))));
    const [port] = await freePorts(1);
    writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir, port, servers.map((s) => s.port)));
    nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(nginx);
    let nginxErr = '';
    nginx.stderr.on('data', (d) => { nginxErr += d; });
    nginx.on('exit', () => live.delete(nginx));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10000;
    for (;;) {
      if (nginx.exitCode !== null) throw new Error(`nginx exited: ${nginxErr}`);
      try {
        if ((await fetch(`${url}/readyz`)).status === 200) break;
      } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error(`nginx did not answer in time: ${nginxErr}`);
      await sleep(20);
    }
    uncheck = checkResponsesFrom(url);
    const byPort = new Map(servers.map((s, i) => [String(s.port), i]));
    return {
      url, servers, databaseUrl, adminUrl, stop,
      // The index of the instance that answered `res` (the last one nginx tried).
      instanceOf(res) {
        const addr = res.headers.get('x-upstream');
        if (!addr) throw new Error('no X-Upstream header: the answer did not come through nginx');
        const last = addr.split(',').pop().trim();
        const i = byPort.get(last.split(':').pop());
        if (i === undefined) throw new Error(`X-Upstream ${addr} names no instance of this cluster`);
        return i;
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

// Makes the next request through nginx land on an instance not in `avoid`: round-robin hands
// requests to the instances in their order, so once GET /healthz was answered by instance i, the
// next request goes to i+1 (of those alive). For requests that must not be sent twice (a POST).
export async function steer(cluster, avoid, tries = 12) {
  const n = cluster.servers.length;
  for (let k = 0; k < tries; k++) {
    const res = await fetch(`${cluster.url}/healthz`);
    await res.arrayBuffer();
    const next = (cluster.instanceOf(res) + 1) % n;
    if (!avoid.includes(next) && cluster.servers[next].proc.exitCode === null && cluster.servers[next].proc.signalCode === null) return next;
  }
  throw new Error(`could not steer away from ${avoid}`);
}

// Calls `request()` (a request through nginx) until the instance that answered satisfies
// `want(i)`; round-robin makes that the next few calls. Resolves { res, instance }.
export async function until(cluster, request, want, tries = 12) {
  for (let n = 0; n < tries; n++) {
    const res = await request();
    const instance = cluster.instanceOf(res);
    if (want(instance)) return { res, instance };
  }
  throw new Error(`no answer from the wanted instance in ${tries} tries`);
}
