// The Node.js `http` baseline of the streams benchmark: POST /v1/apps/{appId}/chat verifies the
// identity headers (HMAC), then streams confab-server's clock model: one SSE event per character
// of the message, each token the emit time (microseconds of CLOCK_MONOTONIC mod 2^24 as 4
// base64url characters, native-server/src/runners.hpp clock_stamp), with the same frames as
// confab-server (`event: agent-response`, `id: <seq>`, `data: {"token":...}`), pausing delayMs
// after each event, then `event: completed`. Nothing is stored (confab-server commits every event
// to SQLite before sending it). Usage: node node-sse-baseline.mjs [--port N] [--delay-ms 50];
// prints "LISTENING <port>".
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
const delayMs = Number(arg('--delay-ms', 50));

function fail(res, status, code, error) {
  const body = JSON.stringify({ code, error });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function safeEqual(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
// clock_stamp: process.hrtime is CLOCK_MONOTONIC, as confab-server's steady_clock.
function clockStamp() {
  const us = Number((process.hrtime.bigint() / 1000n) & 0xffffffn);
  return DIGITS[(us >> 18) & 63] + DIGITS[(us >> 12) & 63] + DIGITS[(us >> 6) & 63] + DIGITS[us & 63];
}

function chat(req, res) {
  const ws = workspaces.get(req.headers['x-confab-workspace'] ?? '');
  const user = req.headers['x-confab-user'];
  const hash = req.headers['x-confab-user-hash'];
  if (!ws || !user || !hash) return fail(res, 401, 'identity_missing', 'identity headers are required');
  if (!ws.secrets.some((s) => safeEqual(createHmac('sha256', s).update(user).digest('hex'), hash))) {
    return fail(res, 401, 'identity_invalid', 'the user hash does not match');
  }
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch {
      return fail(res, 400, 'invalid_json', 'body: a JSON object is required');
    }
    if (typeof body?.message !== 'string') return fail(res, 400, 'invalid_request', 'message: a string is required');
    const count = [...body.message].length;
    let reply = '';
    res.writeHead(200, {
      'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no',
      'X-Confab-Execution-Id': `ex_${randomBytes(16).toString('hex')}`,
      'X-Confab-Session-Id': `se_${randomBytes(16).toString('hex')}`,
    });
    let seq = 0;
    let timer = null;
    let closed = false;
    res.on('close', () => {
      closed = true;
      clearTimeout(timer);
    });
    const next = () => {
      if (closed) return;
      if (seq < count) {
        seq += 1;
        const token = clockStamp();
        reply += token;
        res.write(`event: agent-response\nid: ${seq}\ndata: ${JSON.stringify({ token })}\n\n`);
        timer = setTimeout(next, delayMs);
      } else {
        seq += 1;
        res.end(`event: completed\nid: ${seq}\ndata: ${JSON.stringify({ result: reply })}\n\n`);
      }
    };
    next();
  });
}

const server = http.createServer((req, res) => {
  const segs = req.url.split('?')[0].split('/');
  if (req.method === 'POST' && segs.length === 5 && segs[1] === 'v1' && segs[2] === 'apps' && segs[4] === 'chat') {
    return chat(req, res);
  }
  return fail(res, 404, 'not_found', 'no such route');
});
server.keepAliveTimeout = 60000;
server.headersTimeout = 60000;
server.requestTimeout = 0;
server.maxConnections = Infinity;
server.listen({ port: Number(arg('--port', 0)), host: '127.0.0.1', backlog: 4096 }, () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
