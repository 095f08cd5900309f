// The chat widget on a site: serves a page with one <script src="/confab-widget.js" ...> tag and
// plays "your site's backend", which vouches for the signed-in user at /confab-identity.
// Usage: node examples/chat-embed/serve.mjs [--port 8082] [--api http://127.0.0.1:8787]
//        then open http://127.0.0.1:8082/ (make demo starts it)
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { identityToken } from '../signing/node/confab_sign.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const port = Number(arg('--port', 8082));
const api = arg('--api', 'http://127.0.0.1:8787');
const dist = join(repo, 'web/dist');
for (const f of ['confab-widget.js', 'confab-widget-panel.js', 'confab-widget-core.wasm']) {
  if (!existsSync(join(dist, f))) {
    console.error(`web/dist/${f} is missing: run \`make sdk\` (or cd web && npm run build) first`);
    process.exit(1);
  }
}
// The demo workspace and its secret (public, demo-only). A real site reads its secret from its
// own configuration and never sends it to the browser.
const demo = JSON.parse(readFileSync(join(repo, 'examples/config/demo.json'), 'utf8')).workspaces[0];
const TOKEN_TTL_S = 3600;

// The user is vouched for with an expiring identity token (identityToken from examples/signing):
// confab-server accepts it wherever a plain hash is, and it stops working at exp if it leaks.

// The page's CSP: the strict one the widget is built for. The only widget-specific allowances are
// the Trusted Types policy name `confab` and 'wasm-unsafe-eval' (the wasm core).
const csp = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' https: data:",
  `connect-src 'self' ${api}`,
  "require-trusted-types-for 'script'",
  'trusted-types confab',
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

const files = {
  '/': ['index.html', 'text/html; charset=utf-8', here],
  '/site.css': ['site.css', 'text/css; charset=utf-8', here],
  '/site.js': ['site.js', 'text/javascript; charset=utf-8', here],
  '/confab-widget.js': ['confab-widget.js', 'text/javascript; charset=utf-8', dist],
  '/confab-widget-panel.js': ['confab-widget-panel.js', 'text/javascript; charset=utf-8', dist],
  // The panel fetches it from next to itself; as application/wasm it compiles while downloading.
  '/confab-widget-core.wasm': ['confab-widget-core.wasm', 'application/wasm', dist],
};
// The widget's bundled locales (fetched by visitors whose language is one of them): whichever the build wrote.
const LOCALE = /^\/(confab-widget-lang-[a-z]{2,3}(?:-[a-z0-9]+)*\.json)$/i;

function cookies(req) {
  return Object.fromEntries((req.headers.cookie || '').split(';').map((c) => c.trim().split('=')).filter((p) => p.length === 2));
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  // The site's own sign-in, reduced to a cookie: a visitor gets an id on first visit, /login?user= picks one.
  const clean = (v) => (v || '').replace(/[^A-Za-z0-9_.@-]/g, '').slice(0, 64) || undefined;
  let user = clean(cookies(req).demo_user);
  const headers = {};
  if (url.pathname === '/login') user = clean(url.searchParams.get('user'));
  if (!user) user = 'visitor-' + randomBytes(4).toString('hex');
  headers['Set-Cookie'] = `demo_user=${user}; Path=/; HttpOnly; SameSite=Lax`;

  if (url.pathname === '/login') {
    res.writeHead(302, { ...headers, Location: '/' }).end();
    return;
  }
  if (url.pathname === '/confab-identity') {
    // What the widget's data-identity-url fetches: who the signed-in user is, vouched for.
    const exp = Math.floor(Date.now() / 1000) + TOKEN_TTL_S;
    res.writeHead(200, { ...headers, 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({ userId: user, workspaceId: demo.id, hashedUserId: identityToken(demo.secrets[0], demo.id, user, exp) }));
    return;
  }
  if (url.pathname === '/favicon.ico') {
    res.writeHead(204).end();
    return;
  }
  const locale = LOCALE.exec(url.pathname);
  const f = files[url.pathname] ||
    (locale && existsSync(join(dist, locale[1])) ? [locale[1], 'application/json; charset=utf-8', dist] : undefined);
  if (!f || req.method !== 'GET') {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    return;
  }
  let body = readFileSync(join(f[2], f[0]));
  if (f[0] === 'index.html') body = Buffer.from(body.toString('utf8').replaceAll('{{API}}', api).replaceAll('{{USER}}', user));
  res.writeHead(200, { ...headers, 'Content-Type': f[1], 'Content-Security-Policy': csp, 'Cache-Control': 'no-store' });
  res.end(body);
});
server.listen(port, '127.0.0.1', () => {
  // First line on stdout: the address (with --port 0, a test reads the port it got).
  console.log(`chat-embed example: http://127.0.0.1:${server.address().port}/  (API ${api})`);
});
