// Test helpers: start/stop a real confab-server process on 127.0.0.1, sign identities, read SSE.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SseScanner, checkBody, checkEvent, locate } from './openapi_check.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../..');
export const SERVER_BIN =
  process.env.CONFAB_SERVER_BIN ?? path.join(REPO, 'build/native-release/confab-server');

export const WS = {
  demo: { id: 'demo', secret: 'test-demo-secret-1', oldSecret: 'test-demo-secret-0', apiKey: 'test-demo-key' },
  acme: { id: 'acme', secret: 'test-acme-secret-1', apiKey: 'test-acme-key' },
};

// A story long enough (about 60 events) that a test can interrupt its stream.
export const STORY =
  'Once upon a time a small server kept every event it ever sent, numbered one by one, ' +
  'so that no reader who lost the thread would ever miss a word or read one twice. ' +
  'The end.';

export function testConfig({ acmeRate = { perSecond: 0.2, burst: 3 } } = {}) {
  return {
    workspaces: [
      {
        id: WS.demo.id,
        name: 'Demo',
        secrets: [WS.demo.secret, WS.demo.oldSecret],
        apiKeys: [WS.demo.apiKey],
        allowedOrigins: ['http://allowed.test'],
        rateLimit: { perSecond: 1000, burst: 1000 },
        apps: [
          {
            id: 'welcome', type: 'template', public: true,
            inputs: [{ name: 'name', type: 'string', required: true }],
            template: 'Hello, {{name}}! Welcome aboard.', chunkChars: 5, delayMs: 1,
          },
          {
            id: 'story', type: 'template',
            versions: [
              {
                version: '1', inputs: [{ name: 'hero', type: 'string', required: true }],
                template: '{{hero}}: ' + STORY, chunkChars: 3, delayMs: 4,
              },
              {
                version: '2',
                inputs: [
                  { name: 'hero', type: 'string', required: true },
                  { name: 'count', type: 'integer', required: true },
                ],
                template: '{{hero}} x{{count}}', chunkChars: 4, delayMs: 1,
              },
            ],
          },
          {
            id: 'slow', type: 'template', inputs: [{ name: 'hero', type: 'string', required: true }],
            template: '{{hero}} ' + STORY + ' ' + STORY, chunkChars: 2, delayMs: 40,
          },
          { id: 'assistant', type: 'agent', model: 'echo', chunkChars: 6, delayMs: 3 },
          { id: 'sleepy', type: 'template', template: 'one two three', chunkChars: 4, delayMs: 300 },
          { id: 'burst', type: 'template', template: `${STORY} ${STORY}`, chunkChars: 1, delayMs: 0 },
          { id: 'idle', type: 'template', template: 'hello world', chunkChars: 6, delayMs: 60000 },
        ],
      },
      {
        id: WS.acme.id,
        name: 'Acme',
        secrets: [WS.acme.secret],
        apiKeys: [WS.acme.apiKey],
        allowedOrigins: ['http://acme.test'],
        rateLimit: acmeRate,
        apps: [
          { id: 'assistant', type: 'agent', model: 'echo', chunkChars: 6, delayMs: 3 },
          {
            id: 'summary', type: 'template', inputs: [{ name: 'title', type: 'string', required: true }],
            template: 'Summary of {{title}}', chunkChars: 8, delayMs: 1,
          },
        ],
      },
    ],
  };
}

// ---- Every response a test gets from a server started here is checked against docs/openapi.json
// (openapi_check.mjs): route, status, media type, required headers, the JSON body and each SSE
// event. A mismatch rejects the fetch() (or errors the stream) of the test that received it and
// fails the test file at exit even if the test swallowed the error. Exempt: requests over raw
// sockets (rawRequest, net.connect, pusher_client.mjs), which test malformed HTTP and the WebSocket.
// web/test imports this file too, so the SDK's node-side fetches are checked as well.
// CONFAB_OPENAPI_CHECK=0 turns the check off (to tell a document gap from another failure).
const checkedOrigins = new Set();
const checking = process.env.CONFAB_OPENAPI_CHECK !== '0';
export const openapiViolations = [];
// Checks the responses from `origin` too (a load balancer in front of servers started here:
// tests/cluster); the returned function stops checking it.
export function checkResponsesFrom(origin) {
  if (!checking) return () => {};
  checkedOrigins.add(origin);
  return () => checkedOrigins.delete(origin);
}
const realFetch = globalThis.fetch;

function violation(message) {
  openapiViolations.push(message);
  return new Error(`response not as documented in docs/openapi.json:\n${message}`);
}

function withCheckedEvents(res, loc) {
  const decoder = new TextDecoder();
  let failed = null;
  const scanner = new SseScanner((ev) => { failed ??= checkEvent(loc, ev); });
  const checked = res.body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      scanner.push(decoder.decode(chunk, { stream: true }));
      if (failed) controller.error(violation(failed));
      else controller.enqueue(chunk);
    },
  }));
  return new Response(checked, { status: res.status, statusText: res.statusText, headers: res.headers });
}

globalThis.fetch = async function fetchCheckedAgainstOpenApi(input, init) {
  const res = await realFetch(input, init);
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  let origin;
  try { origin = new URL(url).origin; } catch { return res; }
  if (!checkedOrigins.has(origin)) return res;
  const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const loc = locate(method, url, res.status, res.headers);
  if (loc.ssePointer && loc.problems.length === 0) return withCheckedEvents(res, loc);
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    await res.body?.cancel();  // a stream never ends by itself: let the connection go
    throw violation((loc.problems.length ? loc.problems : [`${loc.where}: an event stream where the document has none`]).join('\n'));
  }
  const text = method === 'HEAD' ? '' : await res.clone().text();
  const problems = checkBody(method, loc, res.status, res.headers, text);
  if (problems.length) throw violation(problems.join('\n'));
  return res;
};

process.on('exit', () => {
  if (openapiViolations.length === 0) return;
  process.stderr.write(`responses not as documented in docs/openapi.json:\n${openapiViolations.join('\n')}\n`);
  process.exitCode = 1;
});

export function userHash(secret, user) {
  return createHmac('sha256', secret).update(user).digest('hex');
}

// The v1 token key and the access-token key: HMAC-SHA256(secret, "confab-key\0<purpose>"), raw bytes.
export function derivedKey(secret, purpose) {
  return createHmac('sha256', secret).update(`confab-key\0${purpose}`).digest();
}

export function token(secret, workspace, user, exp) {
  const mac = createHmac('sha256', derivedKey(secret, 'identity-token-v1'))
    .update(`v1\n${workspace}\n${user}\n${exp}`)
    .digest('hex');
  return `v1.${exp}.${mac}`;
}

// Identity headers for `user` in workspace `ws` (a WS entry).
export function idHeaders(ws, user, extra = {}) {
  return {
    'X-Confab-Workspace': ws.id,
    'X-Confab-User': user,
    'X-Confab-User-Hash': userHash(ws.secret, user),
    ...extra,
  };
}

// The store the servers of this run use: SQLite in their data dir (default), or PostgreSQL with
// CONFAB_TEST_STORE=postgres and CONFAB_TEST_DATABASE_URL naming an admin URL (make test-server-pg
// starts a cluster with scripts/pg.sh): then every data dir gets a database of its own, created
// at its first start, reused by restarts on the same data dir, dropped at cleanup or exit.
export const STORE = process.env.CONFAB_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';
export const ADMIN_DATABASE_URL = process.env.CONFAB_TEST_DATABASE_URL ?? '';
if (STORE === 'postgres' && !ADMIN_DATABASE_URL) {
  throw new Error('CONFAB_TEST_STORE=postgres needs CONFAB_TEST_DATABASE_URL (the admin URL: scripts/pg.sh url)');
}
const databases = new Map();  // data dir -> { name, url }

// Runs SQL with psql against `url`; resolves its output (unaligned, tuples only).
export function psql(url, sql) {
  return new Promise((resolve, reject) => {
    execFile('psql', [url, '-X', '-v', 'ON_ERROR_STOP=1', '-Atqc', sql], { timeout: 30000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`psql failed: ${stderr || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

function psqlSync(url, sql) {
  const r = spawnSync('psql', [url, '-X', '-Atqc', sql], { encoding: 'utf8', timeout: 30000 });
  return r.status === 0;
}

// `url` naming database `name` instead.
export function withDatabase(url, name) {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

// The database of a data dir (postgres runs): created on first use.
export async function databaseUrlFor(dataDir) {
  let db = databases.get(dataDir);
  if (!db) {
    const name = `confab_test_${randomBytes(6).toString('hex')}`;
    await psql(ADMIN_DATABASE_URL, `CREATE DATABASE ${name}`);
    db = { name, url: withDatabase(ADMIN_DATABASE_URL, name) };
    databases.set(dataDir, db);
  }
  return db.url;
}

function dropDatabase(dataDir) {
  const db = databases.get(dataDir);
  if (!db) return;
  databases.delete(dataDir);
  psqlSync(ADMIN_DATABASE_URL, `DROP DATABASE IF EXISTS ${db.name} WITH (FORCE)`);
}

const running = new Set();
process.on('exit', () => {
  for (const p of running) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const dir of [...databases.keys()]) dropDatabase(dir);
});

export function makeDataDir() {
  return mkdtempSync(path.join(tmpdir(), 'confab-server-test-'));
}

// Starts the server on a free port (--listen 127.0.0.1:0; the URL is read from its stdout) and
// waits for /readyz. I/O threads: 2, or CONFAB_TEST_THREADS (make test-tsan: 8). Options: config (object; null = the embedded demo config), dataDir (reused across restarts), args (extra flags),
// databaseUrl (PostgreSQL: this database instead of the data dir's own one on postgres runs).
export async function startServer({ config = testConfig(), dataDir, args = [], env = {}, readyTimeoutMs = 10000, databaseUrl } = {}) {
  const ownDir = !dataDir;
  dataDir ??= makeDataDir();
  // config null: no --config, i.e. the embedded demo config.
  const configArgs = [];
  if (config !== null) {
    const configPath = path.join(dataDir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config, null, 2));
    configArgs.push('--config', configPath);
  }
  const storeArgs = [];
  if (databaseUrl) storeArgs.push('--database-url', databaseUrl);
  else if (STORE === 'postgres') storeArgs.push('--database-url', await databaseUrlFor(dataDir));
  // A process killed with -9 leaves its runs to whoever takes its instance over once its lease ran
  // out (10 s by default): the tests restart with a shorter one (takenOver() waits for it).
  if (storeArgs.length && !args.includes('--instance-lease-ms')) storeArgs.push('--instance-lease-ms', '2000');
  // The store is the test's choice, not the shell's: a CONFAB_DATABASE_URL there is not inherited.
  const procEnv = { ...process.env };
  delete procEnv.CONFAB_DATABASE_URL;
  const proc = spawn(SERVER_BIN, ['serve', '--listen', '127.0.0.1:0', ...configArgs,
    '--data-dir', path.join(dataDir, 'db'), ...storeArgs, '--threads', process.env.CONFAB_TEST_THREADS ?? '2', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...procEnv, ...env },
  });
  running.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    running.delete(proc);
    // A sanitizer build (make test-tsan) ends the process at its first report: print it here,
    // where the failing test's output shows it; stop() and kill9() then fail with it too.
    if (sanitizerReport(stderr)) process.stderr.write(`confab-server (pid ${proc.pid}) exited with a sanitizer report:\n${stderr}\n`);
    resolve({ code, signal });
  }));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not print its URL in time\n${stderr}`)), readyTimeoutMs);
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = /listening on (http:\/\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        const origin = new URL(m[1]).origin;
        if (checking) checkedOrigins.add(origin);
        exited.then(() => checkedOrigins.delete(origin));
        resolve(m[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${signal})\n${stderr}`));
    });
  });
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`server not ready in time\n${stderr}`);
    await sleep(20);
  }
  const server = {
    url, proc, dataDir, exited,
    databaseUrl: storeArgs[0] === '--database-url' ? storeArgs[1] : undefined,
    port: Number(new URL(url).port),
    logs: () => stderr,
    async stop({ signal = 'SIGTERM', timeoutMs = 8000 } = {}) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        assertNoSanitizerReport(stderr);
        return exited;
      }
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(t);
      assertNoSanitizerReport(stderr);
      return r;
    },
    async kill9() {
      proc.kill('SIGKILL');
      const r = await exited;
      assertNoSanitizerReport(stderr);
      return r;
    },
    cleanup() {
      if (ownDir) {
        rmSync(dataDir, { recursive: true, force: true });
        dropDatabase(dataDir);
      }
    },
  };
  return server;
}

// PostgreSQL: resolves once every other instance registered on `srv`'s database is fenced, i.e.
// once `srv` (restarted after a kill -9) has taken over the runs of the process it replaced,
// which happens when that one's lease has run out (SQLite: at start, so at once).
export async function takenOver(srv, timeoutMs = 15000) {
  if (!srv.databaseUrl) return;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await psql(srv.databaseUrl, 'SELECT count(*) FROM confab_instances WHERE NOT fenced') === '1') return;
    if (Date.now() > deadline) throw new Error('the previous instance was not taken over in time');
    await sleep(50);
  }
}

// A ThreadSanitizer / AddressSanitizer / UBSan report in a server's stderr.
export function sanitizerReport(stderr) {
  return /WARNING: ThreadSanitizer|ERROR: (Address|Leak|Thread)Sanitizer|runtime error: /.test(stderr);
}

export function assertNoSanitizerReport(stderr) {
  if (sanitizerReport(stderr)) throw new Error(`confab-server reported a sanitizer error:\n${stderr}`);
}

// `n` distinct ports that were free a moment ago on 127.0.0.1 (all held open together, then released).
export async function freePorts(n) {
  const servers = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
    servers.push(s);
  }
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

export async function postJson(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? safeJson(text) : null };
}

export async function getJson(url, headers = {}, method = 'GET') {
  const res = await fetch(url, { method, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? safeJson(text) : null };
}

function safeJson(text) {
  try { return JSON.parse(text); } catch { return undefined; }
}

// Minimal SSE parser for tests (the server writes LF line ends).
export class SseReader {
  constructor() { this.buf = ''; this.events = []; this.comments = 0; this.cur = { data: [] }; }
  push(chunk) {
    this.buf += chunk;
    let nl;
    const out = [];
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      if (line === '') {
        if (this.cur.data.length) {
          const ev = { type: this.cur.type ?? 'message', id: this.cur.id, data: this.cur.data.join('\n') };
          ev.json = safeJson(ev.data);
          this.events.push(ev);
          out.push(ev);
        }
        this.cur = { data: [] };
      } else if (line.startsWith(':')) {
        this.comments++;
      } else {
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? '' : line.slice(i + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') this.cur.data.push(value);
        else if (field === 'event') this.cur.type = value;
        else if (field === 'id') this.cur.id = value;
      }
    }
    return out;
  }
}

// Opens an SSE request and reads events. `stopAfter(ev, all)` returning true aborts the
// connection right after that event (to simulate a dropped connection). Resolves with
// { status, headers, events, comments, aborted }.
export async function readSse(url, { method = 'GET', headers = {}, body, stopAfter, timeoutMs = 15000 } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error('SSE read timed out')), timeoutMs);
  try {
    const res = await fetch(url, {
      method,
      headers: { Accept: 'text/event-stream', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
      signal: ac.signal,
    });
    const reader = new SseReader();
    if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
      const text = await res.text();
      return { status: res.status, headers: res.headers, events: [], comments: 0, aborted: false, text, json: safeJson(text) };
    }
    const decoder = new TextDecoder();
    let aborted = false;
    try {
      for await (const chunk of res.body) {
        const evs = reader.push(decoder.decode(chunk, { stream: true }));
        const stopAt = stopAfter ? evs.find((e) => stopAfter(e)) : undefined;
        if (stopAt) {
          // Keep the events up to the one that triggered the stop, as a client that died there would.
          reader.events.length = reader.events.indexOf(stopAt) + 1;
          aborted = true;
          ac.abort();
          break;
        }
      }
    } catch (e) {
      if (!aborted) throw e;
    }
    return { status: res.status, headers: res.headers, events: reader.events, comments: reader.comments, aborted };
  } finally {
    clearTimeout(timer);
  }
}

// Raw TCP helper: sends `data` (string or Buffer) and collects the reply until the server closes
// or `timeoutMs` passes. Resolves { text, closedByServer }.
export function rawRequest(port, data, { timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; sock.destroy(); }, timeoutMs);
    sock.on('connect', () => { if (data) sock.write(data); });
    sock.on('data', (d) => { text += d.toString('utf8'); });
    sock.on('close', () => { clearTimeout(timer); resolve({ text, closedByServer: !timedOut }); });
    sock.on('error', () => {});
  });
}

// Concatenated text of a stream's delta / agent-response events.
export function streamText(events) {
  return events
    .filter((e) => e.type === 'delta' || e.type === 'agent-response')
    .map((e) => (e.type === 'delta' ? e.json.content : e.json.token))
    .join('');
}
