// The chat widget (dist/confab-widget.js + its lazily loaded panel) in Debian's Chromium, against a
// real confab-server, on pages whose CSP is the strict one the README promises:
//   default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self';
//   require-trusted-types-for 'script'; trusted-types confab; connect-src 'self' <api>
// Every test fails on any CSP/Trusted Types violation or console error of the page.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { distDir, repoDir, serverBin, launchChromium } from './helpers.mjs';
import { startServer as startConfabServer, token } from '../../tests/server/helpers.mjs';


const WS = 'widget';
const SECRET = 'widget-test-secret-0123456789';
const ARTIFACTS = join(repoDir, 'test-artifacts');
const T = { timeout: 30000 };

// Script a fake OpenAI-compatible upstream streams as the reply of the "xss" agent: markup that
// would run script if any of it reached the DOM unescaped, split across chunks at awkward places.
const XSS_REPLY = [
  '# Payloads\n\n',
  '<script>window.__pwned = "script"</script>\n\n',
  '<img src=x onerror="window.__pwned=\'img\'">\n\n',
  'Inline <svg onload="window.__pwned=\'svg\'"></svg> and <iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>\n\n',
  '[click me](javascript:window.__pwned=\'link\') and [entity](jav&#x61;script&#58;window.__pwned=\'ent\')\n\n',
  '[spaced]( java\tscript:window.__pwned=\'tab\') <javascript:window.__pwned=\'auto\'>\n\n',
  '![img](javascript:window.__pwned=\'imgsrc\') ![data](data:text/html,<script>parent.__pwned=1</script>)\n\n',
  '<a href="javascript:window.__pwned=\'a\'">raw a</a> <div onclick="window.__pwned=\'div\'">x</div>\n\n',
  '**bold <b onmouseover="window.__pwned=1">x</b>** `<script>code</script>` [ok](https://example.com/safe)\n\n',
  '| a | b |\n|---|---|\n| <img src=x onerror=window.__pwned=1> | <style>*{display:none}</style> |\n',
].join('');

let api;
let upstream;
let site;
let siteOrigin;
let browser;
const panelRequests = [];

// The fake LLM upstream: model "flaky" fails its first request (HTTP 500) and then answers; any
// other model streams XSS_REPLY in 7-byte chunks.
let flakyCalls = 0;
let midfailCalls = 0;
let midfailHeld = null;
async function startUpstream() {
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const model = JSON.parse(body || '{}').model;
      if (model === 'flaky' && flakyCalls++ === 0) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'upstream hiccup' } }));
        return;
      }
      if (model === 'midfail' && midfailCalls++ === 0) {
        // Two tokens, then the connection stays open until the test destroys it (no [DONE]).
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: 'Half a ' } }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: 'reply' } }] })}\n\n`);
        midfailHeld = res;  // the test ends it (no [DONE]) once the page has reloaded
        return;
      }
      const reply = model === 'flaky' ? 'Recovered **fine**.' : model === 'midfail' ? 'Second time **lucky**.' : XSS_REPLY;
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      for (let i = 0; i < reply.length; i += 7) {
        res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: reply.slice(i, i + 7) } }] })}\n\n`);
      }
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) };
}

const HOSTILE_CSS = `
* { font-family: "Courier New", serif !important; color: #f0f !important; line-height: 3 !important;
    letter-spacing: 3px !important; box-sizing: content-box !important; text-transform: uppercase !important; }
button, textarea, div, h2, header, form { background: lime !important; border: 6px dashed red !important;
    padding: 30px !important; margin: 20px !important; display: block !important; width: 300px !important; }
confab-chat { font-size: 40px; color: red; position: absolute; display: none; transform: scale(.5); }
svg { display: none !important; }
`;

// The ESM build, mounted by page code: `import { mount } from '.../confab-widget.mjs'`.
const ESM_PAGE_JS = `
import { mount } from '/confab-widget.mjs';
const p = new URL(import.meta.url).searchParams;
window.__chat = mount({ host: p.get('host'), appId: 'assistant', workspaceId: '${WS}', identityUrl: p.get('identityUrl'),
  title: 'ESM chat', color: 'rebeccapurple', position: 'left', preload: 'open' });
`;

function page({ user, app = 'assistant', preload = 'open', hostile = false, identity = 'hash', attrs = '', esm = '', sdk = '' }) {
  const identityUrl = `/identity?user=${encodeURIComponent(user)}&kind=${identity}`;
  if (esm) {
    return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>esm</title><script src="/page.js"></script></head>' +
      `<body><h1>ESM</h1><script type="module" src="/esm-page.js?${new URLSearchParams({ host: api.url, identityUrl })}"></script></body></html>`;
  }
  return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>host page</title>' +
    (hostile ? '<link rel="stylesheet" href="/hostile.css">' : '') +
    '<script src="/page.js"></script></head><body>' +
    '<h1 id="h">Host page</h1><p id="p">Some host text.</p><button id="pagebtn" type="button">Page button</button>' +
    `<script src="/confab-widget.js" data-host="${api.url}" data-app-id="${app}" data-workspace-id="${WS}" ` +
    `data-identity-url="${identityUrl}" data-title="Help" data-greeting="Hi! Ask me anything." ` +
    `data-placeholder="Ask away" data-preload="${preload}" ${attrs}></script>` +
    (sdk ? '<script src="/confab.global.js"></script>' : '') + '</body></html>';
}

// Collected by the page before anything else runs, read by every test.
const PAGE_JS = `
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) =>
  window.__violations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));
`;

before(async () => {
  serverBin();
  mkdirSync(ARTIFACTS, { recursive: true });
  upstream = await startUpstream();
  site = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const csp = `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; ` +
      `require-trusted-types-for 'script'; trusted-types confab; connect-src 'self' ${api.url}`;
    const send = (type, body, extra = {}) => {
      res.writeHead(200, { 'Content-Type': type, 'Content-Security-Policy': csp, 'Cache-Control': 'no-store', ...extra });
      res.end(body);
    };
    if (url.pathname === '/page.html') {
      const p = Object.fromEntries(url.searchParams);
      return send('text/html; charset=utf-8', page({ ...p, hostile: p.hostile === '1' }));
    }
    if (url.pathname === '/favicon.ico') return res.writeHead(204).end();
    if (url.pathname === '/page.js') return send('text/javascript', PAGE_JS);
    if (url.pathname === '/esm-page.js') return send('text/javascript', ESM_PAGE_JS);
    if (url.pathname === '/confab.global.js') return send('text/javascript', readFileSync(join(distDir, 'confab.global.js')));
    if (url.pathname === '/confab-widget.mjs') return send('text/javascript', readFileSync(join(distDir, 'confab-widget.mjs')));
    if (url.pathname === '/hostile.css') return send('text/css', HOSTILE_CSS);
    if (url.pathname === '/identity') {
      // The site's backend vouching for its user (here: from the query, in a real site: its session).
      const userId = url.searchParams.get('user');
      const hashedUserId = url.searchParams.get('kind') === 'token'
        ? token(SECRET, WS, userId, Math.floor(Date.now() / 1000) + 600)
        : createHmac('sha256', SECRET).update(userId).digest('hex');
      return send('application/json', JSON.stringify({ userId, workspaceId: WS, hashedUserId }));
    }
    if (url.pathname === '/confab-widget.js' || url.pathname === '/confab-widget-panel.js') {
      if (url.pathname === '/confab-widget-panel.js') panelRequests.push(Date.now());
      return send('text/javascript', readFileSync(join(distDir, url.pathname.slice(1))));
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  siteOrigin = `http://127.0.0.1:${site.address().port}`;
  api = await startConfabServer({
    config: {
      workspaces: [{
        id: WS, name: 'Widget tests', secrets: [SECRET], apiKeys: ['widget-api-key-0123456789'],
        allowedOrigins: [siteOrigin], rateLimit: { perSecond: 1000, burst: 1000 },
        apps: [
          { id: 'assistant', name: 'Assistant', type: 'agent', model: 'echo', chunkChars: 3, delayMs: 4 },
          { id: 'slowchat', name: 'Slow', type: 'agent', model: 'echo', chunkChars: 2, delayMs: 30 },
          { id: 'xss', name: 'XSS', type: 'agent', model: 'llm' },
          { id: 'flaky', name: 'Flaky', type: 'llm', model: 'flaky', inputs: [], prompt: 'answer' },
          { id: 'midfail', name: 'Fails mid-reply', type: 'llm', model: 'midfail', inputs: [], prompt: 'answer' },
        ],
      }],
      llm: { baseUrl: upstream.url, model: 'fake', connectTimeoutMs: 2000, idleTimeoutMs: 5000 },
    },
    args: ['--no-access-log'],
    env: { CONFAB_LLM_BASE_URL: '', CONFAB_LLM_API_KEY: '', CONFAB_LLM_MODEL: '' },
  });
  browser = await launchChromium();  // fails (never skips) without Chromium
});

after(async () => {
  await browser?.close();
  if (api) {
    await api.stop();
    api.cleanup();
  }
  await upstream?.close();
  if (site) await new Promise((r) => site.close(r));
});

const idHeaders = (user) => ({
  'X-Confab-Workspace': WS, 'X-Confab-User': user,
  'X-Confab-User-Hash': createHmac('sha256', SECRET).update(user).digest('hex'),
});

/** A fresh browser context on the test page; `check()` asserts no CSP violation and no console error. */
async function open(params, { viewport } = {}) {
  const ctx = await browser.newContext(viewport ? { viewport } : {});
  const tab = await ctx.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  tab.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text()); });
  const chats = [];  // execution ids of chat turns the page started
  tab.on('response', (r) => {
    if (r.url().endsWith('/chat')) chats.push(r.headers()['x-confab-execution-id']);
  });
  const go = () => tab.goto(`${siteOrigin}/page.html?${new URLSearchParams(params)}`, { timeout: 20000 });
  await go();
  await tab.locator('.launcher').waitFor({ timeout: 10000 });
  return {
    ctx, tab, errors, chats, go,
    async check() {
      const v = await tab.evaluate(() => window.__violations);
      assert.deepEqual(v, [], 'no CSP / Trusted Types violation');
      assert.deepEqual(errors, [], 'no console error or warning');
      assert.equal(await tab.evaluate(() => window.__pwned), undefined);
    },
    close: () => ctx.close(),
  };
}

// Runs fn(shadowRoot, arg) in the page (no eval: the page's CSP forbids it).
async function inWidget(tab, fn, arg) {
  const root = await tab.evaluateHandle(() => document.querySelector('confab-chat').shadowRoot);
  try {
    return await root.evaluate(fn, arg);
  } finally {
    await root.dispose();
  }
}

// Opens the panel (the element's open(): after a reload the widget may already be reopening itself).
async function openPanel(tab) {
  await tab.evaluate(() => document.querySelector('confab-chat').open());
  await tab.locator('textarea').waitFor({ state: 'visible', timeout: 10000 });
  await tab.waitForFunction(() => performance.getEntriesByName('confab-widget:panel-ready').length > 0, null, { timeout: 10000 });
}

const replies = (tab) => inWidget(tab, (root) =>
  [...root.querySelectorAll('.msg.assistant:not(.greeting)')].map((m) => ({
    html: (m.querySelector('.md') || m).innerHTML, text: m.textContent, busy: m.hasAttribute('aria-busy'),
    note: m.querySelector('.note')?.textContent || '',
  })));

async function waitReplies(tab, n, timeout = 15000) {
  await tab.waitForFunction((count) => {
    const root = document.querySelector('confab-chat').shadowRoot;
    const done = [...root.querySelectorAll('.msg.assistant:not(.greeting)')].filter((m) => !m.hasAttribute('aria-busy'));
    return done.length >= count;
  }, n, { timeout });
  return replies(tab);
}

it('the shell loads alone; the panel is fetched on first open (or when idle), timed with performance marks', T, async () => {
  const before = panelRequests.length;
  const p = await open({ user: 'lazy', preload: 'open' });
  try {
    await p.tab.waitForLoadState('load');
    await p.tab.waitForTimeout(300);
    assert.equal(panelRequests.length, before, 'no panel request before the chat is opened');
    const shell = await p.tab.evaluate(() => {
      const res = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/confab-widget.js'));
      const ready = performance.getEntriesByName('confab-widget:launcher-ready')[0];
      const script = performance.getEntriesByName('confab-widget:script')[0];
      return { scriptStart: res.startTime, responseEnd: res.responseEnd, run: script.startTime, ready: ready.startTime };
    });
    await p.tab.locator('.launcher').click();
    await p.tab.waitForFunction(() => performance.getEntriesByName('confab-widget:panel-ready').length > 0, null, { timeout: 10000 });
    assert.equal(panelRequests.length, before + 1, 'the panel is fetched once, on open');
    const panel = await p.tab.evaluate(() => {
      const o = performance.getEntriesByName('confab-widget:open')[0].startTime;
      return performance.getEntriesByName('confab-widget:panel-ready')[0].startTime - o;
    });
    const focused = await inWidget(p.tab, (root) => root.activeElement && root.activeElement.tagName);
    assert.equal(focused, 'TEXTAREA', 'opening focuses the message box');
    await p.check();
    console.log(`# widget: script tag request -> launcher interactive ${(shell.ready - shell.scriptStart).toFixed(1)} ms ` +
      `(download ${(shell.responseEnd - shell.scriptStart).toFixed(1)} ms, shell run to launcher ${(shell.ready - shell.run).toFixed(1)} ms; ` +
      `${shell.ready.toFixed(1)} ms after navigation start); ` +
      `click -> panel interactive (panel script + wasm + identity + history) ${panel.toFixed(1)} ms (loopback)`);

    // Default preload: the panel arrives when the page is idle, with no click.
    const idle = await open({ user: 'idle', preload: 'idle' });
    try {
      await idle.tab.waitForFunction(() => performance.getEntriesByName('confab-widget:panel-fetch').length > 0, null, { timeout: 10000 });
      assert.equal(await idle.tab.evaluate(() => document.querySelector('confab-chat').shadowRoot.querySelector('.panel')), null,
        'preloaded, not opened');
      await idle.check();
    } finally {
      await idle.close();
    }
  } finally {
    await p.close();
  }
});

it('sends a message, streams the Markdown reply (stable blocks appended once), and a reload finds the conversation', T, async () => {
  const p = await open({ user: 'alice' });
  try {
    await openPanel(p.tab);
    await p.tab.locator('textarea').fill('Hello **widget**!\n- one\n- two');
    // Watch the reply's finished blocks (the direct children of .md; the open block lives in .tail):
    // each is appended once and never removed or replaced while the reply streams.
    await inWidget(p.tab, (root) => {
      window.__stable = { added: 0, removed: 0, headings: 0, tailRenders: 0 };
      new MutationObserver((records) => {
        for (const r of records) {
          if (r.target.classList?.contains('tail')) window.__stable.tailRenders++;
          if (!r.target.classList?.contains('md') || r.target.classList.contains('tail')) continue;
          for (const n of r.addedNodes) {
            if (n.nodeType !== 1 || n.classList.contains('tail')) continue;
            window.__stable.added++;
            if (n.tagName === 'H2') window.__stable.headings++;
          }
          for (const n of r.removedNodes) if (n.nodeType === 1 && !n.classList.contains('tail')) window.__stable.removed++;
        }
      }).observe(root, { subtree: true, childList: true });
    });
    await p.tab.locator('textarea').press('Enter');
    const [reply] = await waitReplies(p.tab, 1);
    assert.match(reply.html, /^<h2>Echo<\/h2>/);
    assert.match(reply.html, /<li>Turn: 1<\/li>/);
    assert.match(reply.html, /<pre><code class="language-text">Hello \*\*widget\*\*!\n- one\n- two\n<\/code><\/pre>/);
    const stable = await p.tab.evaluate(() => window.__stable);
    assert.equal(stable.headings, 1, 'the finished heading was inserted once');
    assert.equal(stable.removed, 0, 'no finished block was removed or replaced');
    assert.equal(stable.added, 4, 'h2, ul, p, pre: each appended once');
    assert.ok(stable.tailRenders > 4, `the open block was redrawn as tokens came (${stable.tailRenders} times)`);
    const user = await inWidget(p.tab, (root) => root.querySelector('.msg.user').textContent);
    assert.equal(user, 'Hello **widget**!\n- one\n- two', 'the user message is text, not Markdown');
    await p.tab.screenshot({ path: join(ARTIFACTS, 'widget-reply.png') });
    await p.check();

    await p.go();
    await openPanel(p.tab);
    const after = await waitReplies(p.tab, 1);
    assert.equal(after.length, 1);
    assert.equal(after[0].html, reply.html, 'the reloaded history renders like the streamed reply');
    assert.equal(await inWidget(p.tab, (root) => root.querySelectorAll('.msg.user').length), 1);
    // The conversation continues in the same session: the echo counts turns.
    await p.tab.locator('textarea').fill('again');
    await p.tab.locator('textarea').press('Enter');
    const two = await waitReplies(p.tab, 2);
    assert.match(two[1].html, /<li>Turn: 2<\/li>/);
    await p.check();
  } finally {
    await p.close();
  }
});

it('stop cancels the run on the server and keeps the partial reply', T, async () => {
  const p = await open({ user: 'stopper', app: 'slowchat' });
  try {
    await openPanel(p.tab);
    await p.tab.locator('textarea').fill('Please write a long answer about stopping streams mid-way');
    await p.tab.locator('textarea').press('Enter');
    await p.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelector('.msg.assistant[aria-busy] .md').textContent.length > 10,
      null, { timeout: 10000 });
    await p.tab.screenshot({ path: join(ARTIFACTS, 'widget-streaming.png') });
    await p.tab.locator('.stop').click();
    const [reply] = await waitReplies(p.tab, 1, 5000);
    assert.match(reply.note, /Stopped/);
    assert.ok(!reply.text.includes('mid-way'), 'the reply stopped before its end');
    const exec = await (await fetch(`${api.url}/v1/executions/${p.chats[0]}`, { headers: idHeaders('stopper') })).json();
    assert.equal(exec.status, 'cancelled', 'the server cancelled the run');
    assert.equal(await p.tab.locator('.send').first().isVisible(), true, 'the send button is back');
    await p.check();
  } finally {
    await p.close();
  }
});

it('a reload mid-reply resumes it from the stored events: no token lost or repeated', T, async () => {
  const p = await open({ user: 'reloader', app: 'slowchat' });
  const lastEventIds = [];
  p.tab.on('request', (r) => { if (r.url().endsWith('/events')) lastEventIds.push(r.headers()['last-event-id']); });
  try {
    await openPanel(p.tab);
    await p.tab.locator('textarea').fill('Resume me after a reload, with every token exactly once: ' + 'abcdefghij'.repeat(12));
    await p.tab.locator('textarea').press('Enter');
    await p.tab.waitForFunction(() => {
      const m = document.querySelector('confab-chat').shadowRoot.querySelector('.msg.assistant[aria-busy]');
      return m && m.textContent.length > 40;
    }, null, { timeout: 10000 });
    await p.go();
    // It was open: it reopens by itself (without taking the page's focus) and follows the reply.
    await p.tab.waitForFunction(() => performance.getEntriesByName('confab-widget:panel-ready').length > 0, null, { timeout: 10000 });
    assert.equal(await p.tab.evaluate(() => document.activeElement === document.body), true);
    const [resumed] = await waitReplies(p.tab, 1, 15000);
    assert.equal(lastEventIds.length >= 1, true, 'the reply was resumed from the events endpoint');
    assert.ok(Number(lastEventIds[0]) > 5, `resumed after the stored seq (Last-Event-ID ${lastEventIds[0]})`);
    assert.match(resumed.html, /Resume me after a reload, with every token exactly once: (abcdefghij){12}\n<\/code><\/pre>\n$/);
    // The server's stored reply, rendered at once after another reload, is the same HTML.
    await p.go();
    await openPanel(p.tab);
    const [stored] = await waitReplies(p.tab, 1);
    assert.equal(resumed.html, stored.html);
    await p.check();
  } finally {
    await p.close();
  }
});

it('keyboard only: Tab to the launcher, Enter opens, Enter sends, Shift+Enter adds a line, focus is trapped, Escape closes', T, async () => {
  const p = await open({ user: 'keys', identity: 'token' });  // also: an expiring v1 token from the identity URL
  try {
    const tab = p.tab;
    const focusedIn = () => tab.evaluate(() => {
      const host = document.activeElement;
      if (!host || host.tagName !== 'CONFAB-CHAT') return host ? host.id || host.tagName : null;
      const a = host.shadowRoot.activeElement;
      return a ? (a.closest('.panel') ? 'panel:' : '') + (a.className || a.tagName) : 'host';
    });
    await tab.keyboard.press('Tab');
    assert.equal(await focusedIn(), 'pagebtn');
    await tab.keyboard.press('Tab');
    assert.equal(await focusedIn(), 'launcher');
    await tab.keyboard.press('Enter');
    await tab.waitForFunction(() => performance.getEntriesByName('confab-widget:panel-ready').length > 0, null, { timeout: 10000 });
    assert.equal(await focusedIn(), 'panel:TEXTAREA');
    assert.equal(await inWidget(tab, (root) => root.querySelector('.panel').getAttribute('role')), 'dialog');
    await tab.keyboard.type('first line');
    await tab.keyboard.press('Shift+Enter');
    await tab.keyboard.type('second line');
    assert.equal(await tab.locator('textarea').inputValue(), 'first line\nsecond line');
    await tab.keyboard.press('Enter');
    const [reply] = await waitReplies(tab, 1);
    assert.match(reply.html, /first line\nsecond line/);
    // Tab and Shift+Tab cycle inside the dialog, never out to the page.
    const seen = new Set();
    for (let i = 0; i < 8; i++) {
      await tab.keyboard.press('Tab');
      const f = await focusedIn();
      assert.match(f, /^panel:/, `Tab ${i + 1} stays in the panel (got ${f})`);
      seen.add(f);
    }
    assert.ok(seen.size >= 4, `Tab visits the dialog's controls: ${[...seen]}`);
    for (let i = 0; i < 5; i++) {
      await tab.keyboard.press('Shift+Tab');
      assert.match(await focusedIn(), /^panel:/);
    }
    await tab.keyboard.press('Escape');
    assert.equal(await inWidget(tab, (root) => root.querySelector('.panel').hidden), true);
    assert.equal(await focusedIn(), 'launcher', 'focus returns to the launcher');
    assert.equal(await inWidget(tab, (root) => root.querySelector('.launcher').getAttribute('aria-expanded')), 'false');
    await p.check();
  } finally {
    await p.close();
  }
});

it('a reply full of XSS payloads runs no script and yields no executable markup', T, async () => {
  const p = await open({ user: 'mallory', app: 'xss' });
  try {
    await openPanel(p.tab);
    await p.tab.locator('textarea').fill('show me payloads');
    await p.tab.locator('textarea').press('Enter');
    const [reply] = await waitReplies(p.tab, 1);
    assert.match(reply.text, /Payloads/);
    assert.match(reply.text, /<script>window.__pwned = "script"<\/script>/, 'raw HTML is shown as text');
    const dom = await inWidget(p.tab, (root) => {
      const md = root.querySelector('.msg.assistant:not(.greeting) .md');
      const all = [...md.querySelectorAll('*')];
      return {
        tags: [...new Set(all.map((e) => e.tagName.toLowerCase()))].sort(),
        handlers: all.flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name)).map((a) => a.name)),
        urls: all.flatMap((e) => ['href', 'src', 'srcdoc'].filter((n) => e.hasAttribute(n)).map((n) => e.getAttribute(n))),
      };
    });
    for (const bad of ['script', 'iframe', 'svg', 'style', 'div', 'b', 'object', 'embed']) {
      assert.ok(!dom.tags.includes(bad), `no <${bad}> element (tags: ${dom.tags})`);
    }
    assert.deepEqual(dom.handlers, []);
    for (const u of dom.urls) assert.match(u, /^https?:|^x$/, `only safe URLs: ${u}`);
    // Click every link the reply has: none may run script.
    for (const a of await p.tab.locator('.msg.assistant .md a').all()) await a.click({ modifiers: ['Control'] }).catch(() => {});
    await p.tab.waitForTimeout(200);
    await p.check();
  } finally {
    await p.close();
  }
});

it('host page styles do not change the widget, and the widget does not change the page', T, async () => {
  const probe = (tab) => tab.evaluate(() => {
    const root = document.querySelector('confab-chat').shadowRoot;
    const props = ['font-family', 'font-size', 'color', 'line-height', 'letter-spacing', 'text-transform',
      'background-color', 'border-top-width', 'padding-top', 'margin-top', 'width', 'height', 'display', 'box-sizing', 'position'];
    const pick = (el) => { const s = getComputedStyle(el); return Object.fromEntries(props.map((k) => [k, s.getPropertyValue(k)])); };
    const out = {};
    for (const sel of ['.launcher', '.panel', 'header', 'h2', '.log', 'textarea', '.send', '.msg.greeting', '.launcher svg']) {
      out[sel] = { style: pick(root.querySelector(sel)), box: root.querySelector(sel).getBoundingClientRect().toJSON() };
    }
    return out;
  });
  const pageState = (tab) => tab.evaluate(() => {
    const props = ['font-family', 'color', 'line-height', 'background-color', 'padding-top', 'display', 'width'];
    const pick = (el) => { const s = getComputedStyle(el); return props.map((k) => s.getPropertyValue(k)).join('|'); };
    return {
      styles: ['body', '#h', '#p', '#pagebtn'].map((s) => pick(document.querySelector(s))),
      sheets: document.styleSheets.length, adopted: document.adoptedStyleSheets.length,
      bodyChildren: [...document.body.children].map((e) => e.tagName),
    };
  });
  const plain = await open({ user: 'styles-plain' });
  const hostile = await open({ user: 'styles-hostile', hostile: '1' });
  try {
    // The page as it is without the widget: same page, widget element removed before it was defined.
    const bare = await browser.newContext();
    const bareTab = await bare.newPage();
    await bareTab.route('**/confab-widget.js', (r) => r.fulfill({ status: 200, contentType: 'text/javascript', body: '' }));
    await bareTab.goto(`${siteOrigin}/page.html?${new URLSearchParams({ user: 'styles-bare', hostile: '1' })}`);
    const withoutWidget = await pageState(bareTab);
    await bare.close();

    await openPanel(plain.tab);
    await openPanel(hostile.tab);
    const a = await probe(plain.tab);
    const b = await probe(hostile.tab);
    assert.deepEqual(b, a, 'the widget looks the same under hostile page styles');
    const withWidget = await pageState(hostile.tab);
    assert.deepEqual(withWidget.styles, withoutWidget.styles, 'page elements keep their computed styles');
    assert.equal(withWidget.sheets, withoutWidget.sheets, 'no stylesheet added to the page');
    assert.equal(withWidget.adopted, 0);
    assert.deepEqual(withWidget.bodyChildren.filter((t) => !withoutWidget.bodyChildren.includes(t)), ['CONFAB-CHAT']);
    await hostile.tab.screenshot({ path: join(ARTIFACTS, 'widget-hostile-page.png') });
    await plain.check();
    await hostile.check();
  } finally {
    await plain.close();
    await hostile.close();
  }
});

it('on a phone-sized screen the open panel fills the screen; the CSP blocks what the widget avoids', T, async () => {
  const p = await open({ user: 'phone' }, { viewport: { width: 375, height: 700 } });
  try {
    await openPanel(p.tab);
    const box = await inWidget(p.tab, (root) => root.querySelector('.panel').getBoundingClientRect().toJSON());
    assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 375, 700]);
    await p.tab.locator('textarea').fill('small screen');
    await p.tab.locator('textarea').press('Enter');
    await waitReplies(p.tab, 1);
    await p.tab.screenshot({ path: join(ARTIFACTS, 'widget-phone.png') });
    await p.check();
    // The zero-violation results above mean something: this page does enforce Trusted Types.
    const blocked = await p.tab.evaluate(() => {
      try {
        document.body.insertAdjacentHTML('beforeend', '<b>raw</b>');
        return false;
      } catch (e) {
        return e instanceof TypeError;
      }
    });
    assert.equal(blocked, true, 'a string HTML sink throws on this page');
    assert.equal((await p.tab.evaluate(() => window.__violations)).length, 1);
  } finally {
    await p.close();
  }
});

it('a failed reply offers Retry; offline blocks sending until back; New conversation starts afresh', T, async () => {
  const p = await open({ user: 'retrier', app: 'flaky' });
  try {
    await openPanel(p.tab);
    await p.tab.locator('textarea').fill('try me');
    await p.tab.locator('textarea').press('Enter');
    const [failed] = await waitReplies(p.tab, 1);
    assert.match(failed.note, /The reply failed: .*Retry/);
    await p.tab.locator('.msg.failed .retry').click();
    const [ok] = await waitReplies(p.tab, 1);
    assert.equal(ok.html, '<p>Recovered <strong>fine</strong>.</p>\n');
    assert.equal(ok.note, '');

    await p.ctx.setOffline(true);
    await p.tab.locator('.banner.offline').waitFor({ timeout: 5000 });
    await p.tab.locator('textarea').fill('sent later');
    await p.tab.locator('textarea').press('Enter');
    assert.equal(await p.tab.locator('textarea').inputValue(), 'sent later', 'not sent while offline');
    await p.ctx.setOffline(false);
    await p.tab.locator('.banner').waitFor({ state: 'hidden', timeout: 5000 });

    await p.tab.locator('button[aria-label="New conversation"]').click();
    assert.deepEqual(await replies(p.tab), []);
    assert.equal(await inWidget(p.tab, (root) => root.querySelector('.msg.greeting').textContent), 'Hi! Ask me anything.');
    await p.go();
    await openPanel(p.tab);
    assert.equal(await inWidget(p.tab, (root) => root.querySelectorAll('.msg.user').length), 0, 'the old session is forgotten');
    await p.check();
  } finally {
    await p.close();
  }
});

it('a reply resumed after a reload that then fails offers Retry, which asks again', T, async () => {
  const p = await open({ user: 'resume-retrier', app: 'midfail' });
  try {
    await openPanel(p.tab);
    await p.tab.locator('textarea').fill('hold on');
    await p.tab.locator('textarea').press('Enter');
    await p.tab.waitForFunction(() => {
      const m = document.querySelector('confab-chat').shadowRoot.querySelector('.msg.assistant[aria-busy]');
      return m && m.textContent.includes('reply');
    }, null, { timeout: 10000 });
    await p.go();  // reload while the upstream still holds the reply open ...
    midfailHeld.destroy();  // ... then the upstream dies mid-reply: the run ends in error
    const [failed] = await waitReplies(p.tab, 1, 15000);
    assert.match(failed.text, /Half a reply/, 'the resumed reply shows what had streamed');
    assert.match(failed.note, /The reply failed: .*Retry/);
    await p.tab.locator('.msg.failed .retry').click();
    const [ok] = await waitReplies(p.tab, 1);
    assert.equal(ok.html, '<p>Second time <strong>lucky</strong>.</p>\n');
    assert.equal(await inWidget(p.tab, (root) => root.querySelectorAll('.msg.user').length), 1, 'Retry does not repeat the user bubble');
    await p.check();
  } finally {
    await p.close();
  }
});

it('the ESM build: mount() from page code, with colour and position options', T, async () => {
  const p = await open({ user: 'esm-user', esm: '1' });
  try {
    await openPanel(p.tab);
    const look = await inWidget(p.tab, (root) => {
      const r = root.querySelector('.launcher').getBoundingClientRect();
      return { bg: getComputedStyle(root.querySelector('.launcher')).backgroundColor, left: r.left, title: root.querySelector('h2').textContent };
    });
    assert.equal(look.bg, 'rgb(102, 51, 153)', 'color sets the accent');
    assert.ok(look.left < 100, 'position left');
    assert.equal(look.title, 'ESM chat');
    assert.equal(await p.tab.evaluate(() => window.__chat.tagName), 'CONFAB-CHAT');
    await p.tab.locator('textarea').fill('from ESM');
    await p.tab.locator('textarea').press('Enter');
    const [reply] = await waitReplies(p.tab, 1);
    assert.match(reply.html, /from ESM/);
    await p.check();
  } finally {
    await p.close();
  }
});

it('the SDK script tag after the widget tag keeps Confab.widget; both work on one page', T, async () => {
  const p = await open({ user: 'both', sdk: '1' });
  try {
    const kinds = await p.tab.evaluate(() => [typeof Confab, typeof Confab.identify, typeof Confab.widget.mount]);
    assert.deepEqual(kinds, ['function', 'function', 'function']);
    await p.check();
  } finally {
    await p.close();
  }
});
