// Serves the script-tag example on http://127.0.0.1:8080 and plays "your site's backend": it signs
// the visitor's user id with the workspace secret (HMAC-SHA256), so the secret never reaches the page.
// Usage: node examples/script-tag/serve.mjs [--port 8080] [--api http://127.0.0.1:8787]
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const port = Number(arg('--port', 8080));
const api = arg('--api', 'http://127.0.0.1:8787');
const bundle = join(repo, 'web/dist/confab.global.js');
if (!existsSync(bundle)) {
  console.error('web/dist/confab.global.js is missing: run `cd web && npm run build` first');
  process.exit(1);
}
// The demo workspace and its (public, demo-only) secret.
const demo = JSON.parse(readFileSync(join(repo, 'examples/config/demo.json'), 'utf8')).workspaces[0];

const files = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
};

createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const csp = `default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; connect-src 'self' ${api}`;
  if (url.pathname === '/identity') {
    // A real site would take the user from its own session, never from the query string.
    const userId = (url.searchParams.get('user') || 'visitor').slice(0, 64);
    const hashedUserId = createHmac('sha256', demo.secrets[0]).update(userId).digest('hex');
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({ userId, workspaceId: demo.id, hashedUserId, host: api }));
    return;
  }
  if (url.pathname === '/confab.global.js') {
    res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Security-Policy': csp });
    res.end(readFileSync(bundle));
    return;
  }
  const f = files[url.pathname];
  if (!f) {
    res.writeHead(404).end('not found');
    return;
  }
  res.writeHead(200, { 'Content-Type': f[1], 'Content-Security-Policy': csp, 'Cache-Control': 'no-store' });
  res.end(readFileSync(join(here, f[0])));
}).listen(port, '127.0.0.1', () => {
  console.log(`script-tag example: http://127.0.0.1:${port}/  (API ${api})`);
});
