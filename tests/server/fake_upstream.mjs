// A tiny OpenAI-compatible /v1/chat/completions server for tests: stream, error, stall, malformed.
//
// The request's `model` picks the behaviour, so one upstream serves several apps:
//   "fake-stream"    (default) streams "Echo: <last user message>" as SSE tokens, then [DONE]
//   "fake-error"     HTTP 500 with {"error": {"message": "fake upstream failure"}}
//   "fake-stall"     sends the SSE head and one token, then nothing (the connection stays open)
//   "fake-malformed" one good token, then `data: {not json`
// Use as a module (`startFakeUpstream()`), or run `node fake_upstream.mjs [port]` by hand.
import http from 'node:http';

const TOKEN_CHARS = 4;

function sse(obj) {
  return `data: ${JSON.stringify(obj)}\n\n`;
}

function chunk(content, model) {
  return sse({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', model,
    choices: [{ index: 0, delta: { content }, finish_reason: null }] });
}

export async function startFakeUpstream({ apiKey = '', host = '127.0.0.1', port = 0, tokenDelayMs = 5 } = {}) {
  const requests = [];  // {method, url, headers, body} of each request, in order
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { raw += d; });
    req.on('end', () => {
      let body = null;
      try { body = JSON.parse(raw); } catch { body = null; }
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
        return;
      }
      if (apiKey && req.headers.authorization !== `Bearer ${apiKey}`) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'bad api key' } }));
        return;
      }
      if (!body || !Array.isArray(body.messages) || body.stream !== true) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'expected {model, stream: true, messages}' } }));
        return;
      }
      const model = typeof body.model === 'string' ? body.model : 'fake-stream';
      const lastUser = [...body.messages].reverse().find((m) => m.role === 'user');
      const reply = `Echo: ${lastUser ? lastUser.content : ''}`;
      if (model === 'fake-error') {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'fake upstream failure' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (model === 'fake-stall') {
        res.write(chunk(reply.slice(0, TOKEN_CHARS), model));
        return;  // never ends; close() destroys the socket
      }
      if (model === 'fake-malformed') {
        res.write(chunk(reply.slice(0, TOKEN_CHARS), model));
        res.end('data: {not json\n\n');
        return;
      }
      const tokens = [];
      for (const ch of reply) {  // by code point
        if (tokens.length === 0 || [...tokens[tokens.length - 1]].length >= TOKEN_CHARS) tokens.push('');
        tokens[tokens.length - 1] += ch;
      }
      let i = 0;
      const next = () => {
        if (res.destroyed) return;
        if (i < tokens.length) {
          res.write(chunk(tokens[i++], model));
          setTimeout(next, tokenDelayMs);
          return;
        }
        res.write(sse({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', model,
          choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
        res.end('data: [DONE]\n\n');
      };
      next();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    requests,
    // The reply the "fake-stream" model gives to `message`.
    replyTo: (message) => `Echo: ${message}`,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const up = await startFakeUpstream({ port: Number(process.argv[2] ?? 0) });
  console.log(`fake upstream listening on ${up.url}`);
  const stop = () => up.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
