// The Node.js `http` baseline of the server-throughput benchmark: the same work as confab-server
// on POST /v1/identity (API-key check, JSON in, HMAC-SHA256, JSON out) and GET /v1/executions/{id}
// (identity headers verified with an HMAC per request, a token-bucket rate limit, an execution
// lookup - in memory here; in confab-server its cache of finished executions, filled from SQLite
// on the first read - and the same JSON body). One process, as a
// plain Node backend runs. Usage: node node-baseline.mjs [--port N] [--config FILE]; prints
// "LISTENING <port>".
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const config = JSON.parse(readFileSync(arg('--config', new URL('./bench-config.json', import.meta.url)), 'utf8'));
const workspaces = new Map(config.workspaces.map((w) => [w.id, w]));
const executions = new Map();
const buckets = new Map();
const MAX_BODY = 1 << 20;
// v1 tokens are MACed with a key derived from the secret (HMAC-SHA256(secret, "confab-key\0identity-token-v1")),
// computed once per workspace as confab-server does.
const tokenKeys = new Map();
const tokenKey = (ws) => {
  if (!tokenKeys.has(ws.id)) {
    tokenKeys.set(ws.id, createHmac('sha256', ws.secrets[0]).update('confab-key\0identity-token-v1').digest());
  }
  return tokenKeys.get(ws.id);
};

function send(res, status, obj, extra) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(body);
}
const fail = (res, status, code, error) => send(res, status, { code, error });

function safeEqual(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readBody(req, cb) {
  const parts = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= MAX_BODY) parts.push(c);
  });
  req.on('end', () => cb(size > MAX_BODY ? null : Buffer.concat(parts).toString('utf8'), size > MAX_BODY));
}

function parseObject(text) {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function takeToken(key, perSecond, burst) {
  const now = Date.now();
  let b = buckets.get(key);
  if (!b) {
    b = { tokens: burst, last: now };
    buckets.set(key, b);
  } else if (now > b.last) {
    b.tokens = Math.min(burst, b.tokens + ((now - b.last) / 1000) * perSecond);
    b.last = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return Math.max(1, Math.ceil((1 - b.tokens) / perSecond));
}

// X-Confab-Workspace / -User / -User-Hash: hex HMAC-SHA256(secret, user) under any workspace secret.
function identify(req, res) {
  const ws = workspaces.get(req.headers['x-confab-workspace'] ?? '');
  if (!ws) return fail(res, 401, 'unknown_workspace', 'unknown workspace');
  const user = req.headers['x-confab-user'];
  const hash = req.headers['x-confab-user-hash'];
  if (!user || !hash) return fail(res, 401, 'identity_missing', 'X-Confab-User and X-Confab-User-Hash are required');
  if (user.length > 256) return fail(res, 401, 'identity_malformed', 'X-Confab-User is longer than 256 bytes');
  const ok = ws.secrets.some((s) => safeEqual(createHmac('sha256', s).update(user).digest('hex'), hash));
  if (!ok) return fail(res, 401, 'identity_invalid', 'the user hash does not match');
  const rl = ws.rateLimit ?? { perSecond: 0, burst: 0 };
  const retry = rl.perSecond > 0 || rl.burst > 0 ? takeToken(`${ws.id}\x1fu:${user}`, rl.perSecond, rl.burst) : 0;
  if (retry) return send(res, 429, { code: 'rate_limited', error: `retry in ${retry} s` }, { 'Retry-After': String(retry) });
  return { ws, user };
}

function identity(req, res) {
  const auth = req.headers.authorization ?? '';
  if (!auth.startsWith('Bearer ')) return fail(res, 401, 'api_key_missing', 'Authorization: Bearer <workspace API key> is required');
  const key = auth.slice(7);
  let ws = null;
  for (const w of workspaces.values()) for (const k of w.apiKeys) if (safeEqual(k, key) && !ws) ws = w;
  if (!ws) return fail(res, 401, 'api_key_invalid', 'the API key is not valid');
  readBody(req, (text, tooLarge) => {
    if (tooLarge) return fail(res, 413, 'too_large', 'request body too large');
    const body = parseObject(text);
    if (!body) return fail(res, 400, 'invalid_json', 'body: a JSON object is required');
    const { userId, ttlSeconds } = body;
    if (typeof userId !== 'string' || userId === '') return fail(res, 400, 'invalid_request', 'userId: a non-empty string is required');
    if (Buffer.byteLength(userId) > 256) return fail(res, 400, 'invalid_request', 'userId must be at most 256 bytes');
    if (/[\x00-\x1f\x7f-\x9f]/.test(userId)) return fail(res, 400, 'invalid_request', 'userId must not contain control characters');
    const mac = createHmac('sha256', ws.secrets[0]);
    if (ttlSeconds === undefined) {
      return send(res, 200, { hashedUserId: mac.update(userId).digest('hex'), userId, workspaceId: ws.id });
    }
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 31536000) {
      return fail(res, 400, 'invalid_request', 'ttlSeconds: an integer from 1 to 31536000');
    }
    const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
    const tokenMac = createHmac('sha256', tokenKey(ws));  // the v1 token key, derived once per workspace
    const token = `v1.${exp}.${tokenMac.update(`v1\n${ws.id}\n${userId}\n${exp}`).digest('hex')}`;
    return send(res, 200, { expiresAt: exp, hashedUserId: token, userId, workspaceId: ws.id });
  });
}

// Only what the benchmark needs to seed an execution: a finished template run.
function execute(req, res, appId) {
  const who = identify(req, res);
  if (!who) return;
  const app = who.ws.apps.find((a) => a.id === appId);
  if (!app) return fail(res, 404, 'app_not_found', `app '${appId}' not found`);
  readBody(req, (text) => {
    const body = parseObject(text || '{}') ?? {};
    const inputs = body.inputs ?? {};
    const output = (app.template ?? '').replace(/\{\{(\w+)\}\}/g, (_, k) => String(inputs[k] ?? ''));
    const now = Date.now();
    const rec = {
      appId, createdAt: now, id: `ex_${randomBytes(16).toString('hex')}`, inputs, output,
      status: 'success', updatedAt: now, version: '1',
    };
    executions.set(rec.id, { ws: who.ws.id, user: who.user, rec });
    send(res, 200, rec, { 'X-Confab-Execution-Id': rec.id });
  });
}

function getExecution(req, res, id) {
  const who = identify(req, res);
  if (!who) return;
  const e = executions.get(id);
  if (!e || e.ws !== who.ws.id || e.user !== who.user) return fail(res, 404, 'execution_not_found', `execution '${id}' not found`);
  send(res, 200, e.rec);
}

const server = http.createServer((req, res) => {
  const [path] = req.url.split('?');
  const segs = path.split('/');
  if (req.method === 'POST' && path === '/v1/identity') return identity(req, res);
  if (req.method === 'GET' && segs.length === 4 && segs[1] === 'v1' && segs[2] === 'executions') return getExecution(req, res, segs[3]);
  if (req.method === 'POST' && segs.length === 5 && segs[2] === 'apps' && segs[4] === 'executions') return execute(req, res, segs[3]);
  if (req.method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
  return fail(res, 404, 'not_found', `no route for ${req.method} ${path}`);
});
server.keepAliveTimeout = 60000;
server.listen(Number(arg('--port', 0)), '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
