// The SDK in Debian's Chromium: the script-tag bundle and the ESM build, each in a plain page with a
// strict CSP (script-src 'self' 'wasm-unsafe-eval'), identify a user and stream a reply from a
// real confab-server on another origin (CORS). Also reports the time from navigation start to the
// first streamed token.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, testConfig, distDir, SECRET, hmacHex, launchChromium } from './helpers.mjs';


// The page script, shared by both pages: `Confab` is the global or the ESM import.
const pageScript = `
const out = document.getElementById('out');
const report = (o) => { document.getElementById('status').textContent = JSON.stringify(o); };
const violations = [];
document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective + ' ' + e.blockedURI));
async function run(Confab) {
  const p = new URLSearchParams(location.hash.slice(1));
  const host = p.get('host');
  const confab = Confab.identify({ userId: p.get('user'), workspaceId: 'sdk', hashedUserId: p.get('hash'), host });
  let text = '';
  let firstTokenMs;
  const chat = await confab.apps.chatStream({ appId: 'assistant', message: 'Hello from ' + p.get('kind'),
    streamCallback: (e) => { if (firstTokenMs === undefined) firstTokenMs = performance.now(); text += e.token; out.textContent = text; } });
  const r = await chat.result;
  let streamed = '';
  const run = await confab.apps.execute({ appId: 'story', payload: { inputs: { hero: 'Browser', topic: 'CSP' } },
    stream: true, streamCallback: ({ content }) => { streamed += content; } });
  const ex = await run.result();
  let identityError = false;
  try { await Confab.identify({ userId: 'x', workspaceId: 'sdk', hashedUserId: 'bad', host }).apps.get('story'); }
  catch (e) { identityError = e instanceof Confab.IdentityError && e.status === 401; }
  const hash = await Confab.userHash('k', 'browser-user');
  report({ ok: true, text, result: r.result, status: r.status, sessionId: chat.sessionId, streamed, exStatus: ex.status,
    output: ex.output, identityError, hash, firstTokenMs, violations, isClass: typeof Confab === 'function' });
}
`;

const pages = {
  '/iife.html': '<!doctype html><meta charset="utf-8"><title>iife</title><pre id="out"></pre><pre id="status"></pre>' +
    '<script src="/confab.global.js"></script><script src="/iife.js"></script>',
  '/iife.js': pageScript + 'run(window.Confab).catch((e) => report({ ok: false, error: String(e && e.stack || e), violations }));',
  '/esm.html': '<!doctype html><meta charset="utf-8"><title>esm</title><pre id="out"></pre><pre id="status"></pre>' +
    '<script type="module" src="/esm.js"></script>',
  '/esm.js': "import Confab from '/confab.mjs';\n" + pageScript +
    'run(Confab).catch((e) => report({ ok: false, error: String(e && e.stack || e), violations }));',
};

let api;
let page;
let browser;
let pageOrigin;

before(async () => {
  page = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let body;
    let type;
    if (pages[url.pathname]) {
      body = pages[url.pathname];
      type = url.pathname.endsWith('.html') ? 'text/html; charset=utf-8' : 'text/javascript';
    } else if (url.pathname === '/confab.global.js' || url.pathname === '/confab.mjs') {
      body = readFileSync(join(distDir, url.pathname.slice(1)));
      type = 'text/javascript';  // deliberately no charset: the bundle must be pure ASCII
    } else {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Security-Policy': `default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src ${api.url}`,
      'Cache-Control': 'no-store',
    });
    res.end(body);
  });
  // The API server must know the page's origin (CORS), so the page server listens first.
  await new Promise((r) => page.listen(0, '127.0.0.1', r));
  pageOrigin = `http://127.0.0.1:${page.address().port}`;
  api = await startServer({ config: testConfig({ origins: [pageOrigin] }) });
  browser = await launchChromium();  // fails (never skips) without Chromium
});

after(async () => {
  await browser?.close();
  await api?.stop();
  if (page) await new Promise((r) => page.close(r));
});

for (const kind of ['iife', 'esm']) {
  it(`${kind} build streams a reply in Chromium under a strict CSP`, async () => {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    const errors = [];
    tab.on('pageerror', (e) => errors.push(String(e)));
    tab.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    try {
      const user = 'browser-' + kind;
      const hash = new URLSearchParams({ host: api.url, user, hash: hmacHex(SECRET, user), kind });
      await tab.goto(`${pageOrigin}/${kind}.html#${hash}`, { timeout: 20000 });
      await tab.waitForFunction(() => document.getElementById('status').textContent !== '', null, { timeout: 30000 });
      const got = JSON.parse(await tab.textContent('#status'));
      assert.equal(got.ok, true, got.error);
      assert.equal(got.isClass, true, 'window.Confab / the default export is the class itself');
      assert.equal(got.status, 'success');
      assert.equal(got.text, got.result);
      assert.ok(got.result.includes('Hello from ' + kind));
      assert.match(got.sessionId, /^se_/, 'X-Confab-Session-Id is readable cross-origin');
      assert.equal(got.exStatus, 'success');
      assert.equal(got.streamed, got.output);
      assert.equal(got.identityError, true);
      assert.equal(got.hash, hmacHex('k', 'browser-user'));
      assert.deepEqual(got.violations, []);
      assert.deepEqual(errors.filter((e) => !/401 \(Unauthorized\)/.test(e)), []);
      console.log(`# ${kind}: first streamed token ${got.firstTokenMs.toFixed(1)} ms after navigation start (loopback)`);
    } finally {
      await ctx.close();
    }
  });
}
