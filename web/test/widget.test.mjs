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
import { distDir, repoDir, webDir, serverBin, launchChromium } from './helpers.mjs';
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

// What the "rich" agent answers: a wide table, a long code line, links and images from an allowed
// host, a host not allowed (an exfiltration URL) and a missing image named twice.
const richReply = () => [
  'Here you go.\n\n',
  '| Option | Latency | Throughput | Description |\n|---|---|---|---|\n',
  '| Optional | Latency-sensitive | Throughput-oriented | Configuration parameters interpreted differently |\n',
  '| Asynchronous | Unpredictable | Extraordinary | Internationalization considerations everywhere |\n\n',
  '```js\nconst longLine = ["' + 'abcdefghij'.repeat(12) + '"].map((x) => x.toUpperCase());\n```\n\n',
  'See [the docs](https://example.com/docs) and https://example.org/auto.\n\n',
  `![logo](${siteOrigin}/img/ok.png) ![leak](http://localhost:${siteOrigin.split(':')[2]}/img/leak.png?q=secret)\n\n`,
  `![broken](${siteOrigin}/img/missing.png)\n\nOnce more: ![broken again](${siteOrigin}/img/missing.png)\n\n`,
  'A claim with a source.[^1]\n\n[^1]: The source of the claim.\n',
].join('');
const LONG_REPLY = Array.from({ length: 40 }, (_, i) => `Paragraph ${i + 1}: some text to scroll through.`).join('\n\n');
// A 1x1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
const imageRequests = [];

let api;
let upstream;
let site;
let siteOrigin;
let deadHost;  // a port nothing listens on: "the server is down"
let browser;
const panelRequests = [];
const wasmRequests = [];
let wasmType = 'application/wasm';  // what the site serves the widget's .wasm as

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
      if (model === 'down') {
        // An upstream that fails every time, naming its internal address (which must not reach a visitor).
        res.writeHead(502, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'bad gateway at 10.1.2.3:8799' } }));
        return;
      }
      const reply = model === 'flaky' ? 'Recovered **fine**.' : model === 'midfail' ? 'Second time **lucky**.'
        : model === 'rich' ? richReply() : model === 'long' ? LONG_REPLY : XSS_REPLY;
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

function page({ user, app = 'assistant', preload = 'open', hostile = false, identity = 'hash', attrs = '', esm = '', sdk = '',
  ws = '', host = '', lang = 'en', dir = '', bg = '', greeting = 'Hi! Ask me anything.' }) {
  const identityUrl = `/identity?user=${encodeURIComponent(user)}&kind=${identity}${ws ? `&ws=${ws}` : ''}`;
  if (esm) {
    return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>esm</title><script src="/page.js"></script></head>' +
      `<body><h1>ESM</h1><script type="module" src="/esm-page.js?${new URLSearchParams({ host: api.url, identityUrl })}"></script></body></html>`;
  }
  return `<!doctype html><html lang="${lang}"${dir ? ` dir="${dir}"` : ''}><head><meta charset="utf-8"><title>host page</title>` +
    (hostile ? '<link rel="stylesheet" href="/hostile.css">' : '') + (bg ? `<link rel="stylesheet" href="/bg.css?c=${bg}">` : '') +
    '<script src="/page.js"></script></head><body>' +
    '<h1 id="h">Host page</h1><p id="p">Some host text.</p><button id="pagebtn" type="button">Page button</button>' +
    `<script src="/confab-widget.js" data-host="${host || api.url}" data-app-id="${app}" data-workspace-id="${WS}" ` +
    `data-identity-url="${identityUrl}" data-title="Help" ${greeting ? `data-greeting="${greeting}" ` : ''}` +
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
      `require-trusted-types-for 'script'; trusted-types confab; connect-src 'self' ${api.url} ${deadHost}`;
    const send = (type, body, extra = {}) => {
      res.writeHead(200, { 'Content-Type': type, 'Content-Security-Policy': csp, 'Cache-Control': 'no-store', ...extra });
      res.end(body);
    };
    if (url.pathname === '/page.html') {
      const p = Object.fromEntries(url.searchParams);
      return send('text/html; charset=utf-8', page({ ...p, hostile: p.hostile === '1' }));
    }
    if (url.pathname === '/favicon.ico') return res.writeHead(204).end();
    if (url.pathname.startsWith('/img/')) {
      imageRequests.push(url.pathname);
      if (url.pathname === '/img/ok.png') return send('image/png', PNG);
      return res.writeHead(404).end();
    }
    if (url.pathname === '/confab-widget-core.wasm') {
      wasmRequests.push(Date.now());
      return send(wasmType, readFileSync(join(distDir, 'confab-widget-core.wasm')));
    }
    if (url.pathname.startsWith('/confab-widget-lang-')) return send('application/json', readFileSync(join(distDir, url.pathname.slice(1))));
    if (url.pathname === '/axe.js') return send('text/javascript', readFileSync(join(webDir, 'node_modules/axe-core/axe.min.js')));
    if (url.pathname === '/page.js') return send('text/javascript', PAGE_JS);
    if (url.pathname === '/esm-page.js') return send('text/javascript', ESM_PAGE_JS);
    if (url.pathname === '/confab.global.js') return send('text/javascript', readFileSync(join(distDir, 'confab.global.js')));
    if (url.pathname === '/confab-widget.mjs') return send('text/javascript', readFileSync(join(distDir, 'confab-widget.mjs')));
    if (url.pathname === '/hostile.css') return send('text/css', HOSTILE_CSS);
    if (url.pathname === '/bg.css') {
      const c = url.searchParams.get('c');
      return send('text/css', c === 'scheme-dark' ? ':root { color-scheme: dark; }' : `html, body { background: #${c}; }`);
    }
    if (url.pathname === '/identity' && url.searchParams.get('kind') === 'missing') return res.writeHead(404).end('no such route');
    if (url.pathname === '/identity') {
      // The site's backend vouching for its user (here: from the query, in a real site: its session).
      const userId = url.searchParams.get('user');
      const hashedUserId = url.searchParams.get('kind') === 'token'
        ? token(SECRET, WS, userId, Math.floor(Date.now() / 1000) + 600)
        : createHmac('sha256', SECRET).update(userId).digest('hex');
      return send('application/json', JSON.stringify({ userId, workspaceId: url.searchParams.get('ws') || WS, hashedUserId }));
    }
    if (url.pathname === '/confab-widget.js' || url.pathname === '/confab-widget-panel.js') {
      if (url.pathname === '/confab-widget-panel.js') panelRequests.push(Date.now());
      return send('text/javascript', readFileSync(join(distDir, url.pathname.slice(1))));
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  siteOrigin = `http://127.0.0.1:${site.address().port}`;
  const dead = createServer();
  await new Promise((r) => dead.listen(0, '127.0.0.1', r));
  deadHost = `http://127.0.0.1:${dead.address().port}`;
  await new Promise((r) => dead.close(r));
  api = await startConfabServer({
    config: {
      workspaces: [{
        id: WS, name: 'Widget tests', secrets: [SECRET], apiKeys: ['widget-api-key-0123456789'],
        allowedOrigins: [siteOrigin], rateLimit: { perSecond: 1000, burst: 1000 },
        apps: [
          { id: 'assistant', name: 'Assistant', type: 'agent', model: 'echo', chunkChars: 3, delayMs: 4,
            starters: ['What can you do?', 'Show me a table'] },
          { id: 'rich', name: 'Rich', type: 'llm', model: 'rich', inputs: [], prompt: 'answer', imageHosts: ['127.0.0.1'] },
          { id: 'long', name: 'Long', type: 'llm', model: 'long', inputs: [], prompt: 'answer' },
          { id: 'down', name: 'Down', type: 'llm', model: 'down', inputs: [], prompt: 'answer' },
          { id: 'slowchat', name: 'Slow', type: 'agent', model: 'echo', chunkChars: 2, delayMs: 30 },
          { id: 'xss', name: 'XSS', type: 'agent', model: 'llm' },
          { id: 'flaky', name: 'Flaky', type: 'llm', model: 'flaky', inputs: [], prompt: 'answer' },
          { id: 'midfail', name: 'Fails mid-reply', type: 'llm', model: 'midfail', inputs: [], prompt: 'answer' },
        ],
      }, {
        id: 'tight', name: 'Rate-limited', secrets: [SECRET], allowedOrigins: [siteOrigin],
        rateLimit: { perSecond: 0.05, burst: 2 },
        apps: [{ id: 'assistant', name: 'Assistant', type: 'agent', model: 'echo' }],
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
async function open(params, { viewport, colorScheme } = {}) {
  const ctx = await browser.newContext({ ...(viewport ? { viewport } : {}), ...(colorScheme ? { colorScheme } : {}) });
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
    // `expected`: the developer warnings this test provokes (each must have been logged).
    async check(expected = []) {
      const v = await tab.evaluate(() => window.__violations);
      assert.deepEqual(v, [], 'no CSP / Trusted Types violation');
      for (const re of expected) assert.ok(errors.some((e) => re.test(e)), `a console warning matching ${re}: ${errors}`);
      assert.deepEqual(errors.filter((e) => !expected.some((re) => re.test(e))), [], 'no other console error or warning');
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
    assert.match(reply.html, /<pre[^>]*><code class="language-text">Hello \*\*widget\*\*!\n- one\n- two\n<\/code><\/pre>/);
    const stable = await p.tab.evaluate(() => window.__stable);
    assert.equal(stable.headings, 1, 'the finished heading was inserted once');
    assert.equal(stable.removed, 0, 'no finished block was removed or replaced');
    assert.equal(stable.added, 4, 'h2, ul, p, code block: each appended once');
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

// The panel fetches the widget's wasm core as its own file (confab-widget-core.wasm, next to the panel
// script): compiled while it downloads when served as application/wasm, compiled from the bytes when
// a server sends another type. Either way the reply is rendered by the wasm Markdown renderer.
it('the wasm core is a separate same-origin file, fetched once; a server that does not know .wasm still works', T, async () => {
  for (const type of ['application/wasm', 'application/octet-stream', 'application/wasm; charset=utf-8']) {
    wasmType = type;
    const before = wasmRequests.length;
    const p = await open({ user: `wasm-${type.length}` });
    try {
      await openPanel(p.tab);
      await p.tab.locator('textarea').fill('wasm **served** as ' + type);
      await p.tab.locator('textarea').press('Enter');
      const [reply] = await waitReplies(p.tab, 1);
      assert.match(reply.html, /^<h2>Echo<\/h2>/, `rendered by the wasm core served as ${type}`);
      assert.equal(wasmRequests.length, before + 1, `the .wasm is fetched once (served as ${type})`);
      const wasm = await p.tab.evaluate(() => performance.getEntriesByType('resource')
        .filter((e) => e.name.includes('/confab-widget-core.wasm')).map((e) => e.name));
      assert.deepEqual(wasm, [`${siteOrigin}/confab-widget-core.wasm`], 'fetched from next to the panel script');
      await p.check();
    } finally {
      wasmType = 'application/wasm';
      await p.close();
    }
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
    assert.match(resumed.html, /Resume me after a reload, with every token exactly once: (abcdefghij){12}\n<\/code><\/pre><\/div>\n$/);
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
        // (the widget's own boxes around tables and code blocks aside)
        tags: [...new Set(all.filter((e) => !e.matches('div.scroll, div.code, div.bar, span.lang, button.act, button.act *'))
          .map((e) => e.tagName.toLowerCase()))].sort(),
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
    assert.match(failed.note, /^The reply failed\. Retry$/, 'a short message for the visitor');
    await p.tab.locator('.msg.failed .retry').click();
    const [ok] = await waitReplies(p.tab, 1);
    assert.equal(ok.html, '<p>Recovered <strong>fine</strong>.</p>\n');
    assert.equal(ok.note, '');
    // Retry was the same turn on the server: after a reload, one message and its reply.
    await p.go();
    await openPanel(p.tab);
    assert.deepEqual(await inWidget(p.tab, (root) => [...root.querySelectorAll('.msg.user')].map((m) => m.textContent)), ['try me']);
    assert.deepEqual((await replies(p.tab)).map((r) => r.html), ['<p>Recovered <strong>fine</strong>.</p>\n']);

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
    await p.check([/\[confab widget\] the reply failed on the server/]);
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
    assert.match(failed.note, /^The reply failed\. Retry$/);
    await p.tab.locator('.msg.failed .retry').click();
    const [ok] = await waitReplies(p.tab, 1);
    assert.equal(ok.html, '<p>Second time <strong>lucky</strong>.</p>\n');
    assert.equal(await inWidget(p.tab, (root) => root.querySelectorAll('.msg.user').length), 1, 'Retry does not repeat the user bubble');
    // Whether the page saw the failure live (a warning for the developer) or in the history after
    // the reload depends on which came first; both are right.
    p.errors.splice(0, p.errors.length, ...p.errors.filter((e) => !/\[confab widget\] the reply failed on the server/.test(e)));
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

// ---- issue 15: the widget on real sites ----

const send = async (tab, text) => {
  await tab.locator('textarea').fill(text);
  await tab.locator('textarea').press('Enter');
};

it('Retry stays only on the last turn: a new turn removes it from older failed replies (live and from the history)', T, async () => {
  const p = await open({ user: 'old-retry', app: 'down' });
  const retries = () => inWidget(p.tab, (root) => [...root.querySelectorAll('.log .retry, .row .retry')].map((b) => {
    const rows = [...b.closest('.row').parentNode.children].filter((e) => e.classList.contains('row'));
    return rows.indexOf(b.closest('.row')) === rows.length - 1 ? 'last' : 'older';
  }));
  try {
    await openPanel(p.tab);
    await send(p.tab, 'one');
    await waitReplies(p.tab, 1);
    await send(p.tab, 'two');
    await waitReplies(p.tab, 2);
    assert.deepEqual(await retries(), ['last'], 'the first failed reply lost its Retry when the second turn started');
    await p.go();
    await openPanel(p.tab);
    await waitReplies(p.tab, 2);
    assert.deepEqual(await retries(), ['last'], 'from the history: Retry on the last reply only');
    await send(p.tab, 'three');
    await waitReplies(p.tab, 3);
    assert.deepEqual(await retries(), ['last'], 'the history reply lost its Retry when a new turn started');
    const posts = [];
    p.tab.on('request', (r) => { if (r.url().endsWith('/chat') && r.method() === 'POST') posts.push(JSON.parse(r.postData() || '{}')); });
    await p.tab.locator('.msg.failed .retry').click();
    await p.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelectorAll('.msg.failed .retry').length === 1
      && !document.querySelector('confab-chat').shadowRoot.querySelector('.msg.assistant[aria-busy]'), null, { timeout: 10000 });
    assert.equal(posts.length, 1, 'one turn');
    assert.deepEqual(await inWidget(p.tab, (root) => [...root.querySelectorAll('.msg.user')].map((m) => m.textContent)), ['one', 'two', 'three']);
    await p.check([/\[confab widget\] the reply failed on the server/]);
  } finally {
    await p.close();
  }
});

it('a rich reply on a phone: tables keep words whole and scroll in their own box, long code scrolls or wraps, links open a new tab, images only from allowed hosts and never asked for twice', T, async () => {
  const p = await open({ user: 'rich', app: 'rich' }, { viewport: { width: 390, height: 760 } });
  try {
    await p.ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: siteOrigin });
    await openPanel(p.tab);
    imageRequests.length = 0;
    await send(p.tab, 'show me everything');
    await waitReplies(p.tab, 1);
    await p.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelectorAll('.md a[href$="missing.png"]').length === 2,
      null, { timeout: 5000 });
    const r = await inWidget(p.tab, (root) => {
      const msg = root.querySelector('.msg.assistant:not(.greeting)');
      const box = msg.querySelector('.scroll');
      // A word is whole when all of it sits on one line (one client rect).
      const broken = [];
      for (const cell of msg.querySelectorAll('td, th')) {
        const text = cell.firstChild;
        // Between break opportunities (spaces, after a hyphen) nothing may break.
        for (const m of cell.textContent.matchAll(/[^\s-]+-?/g)) {
          const range = document.createRange();
          range.setStart(text, m.index);
          range.setEnd(text, m.index + m[0].length);
          if (range.getClientRects().length !== 1) broken.push(m[0]);
        }
      }
      const pre = msg.querySelector('.code pre');
      return {
        broken,
        tableScrolls: box.scrollWidth > box.clientWidth, boxOverflow: getComputedStyle(box).overflowX,
        msgFits: msg.scrollWidth <= msg.clientWidth + 1,
        preScrolls: pre.scrollWidth > pre.clientWidth, lang: msg.querySelector('.code .lang').textContent,
        links: [...msg.querySelectorAll('.md a')].map((a) => [a.getAttribute('href'), a.target, a.rel]),
        imgs: [...msg.querySelectorAll('.md img')].map((i) => [i.getAttribute('src'), i.complete && i.naturalWidth]),
      };
    });
    assert.deepEqual(r.broken, [], 'no word in a table cell is split across lines');
    assert.equal(r.tableScrolls, true, 'the wide table scrolls sideways ...');
    assert.equal(r.boxOverflow, 'auto', '... in its own box');
    assert.equal(r.msgFits, true, 'the message itself does not overflow (nothing clipped)');
    assert.equal(r.preScrolls, true, 'the long code line scrolls');
    assert.equal(r.lang, 'js', 'the code block is labelled with its language');
    for (const [href, target, rel] of r.links) {
      if (href.startsWith('#')) continue;  // footnotes: below
      assert.equal(target, '_blank', `${href} opens in a new tab`);
      assert.equal(rel, 'nofollow noopener noreferrer', `${href}: the core's rel (and the same on images shown as links)`);
    }
    // Footnote links stay in the reply: no new tab, and the host page's URL never changes.
    const notes = r.links.filter(([h]) => h.startsWith('#'));
    assert.ok(notes.length >= 2, `a footnote reference and its back link: ${JSON.stringify(r.links)}`);
    for (const [href, target] of notes) assert.equal(target, '', `${href} stays in the reply`);
    await p.tab.locator('.md sup a[href^="#fn"]').first().click();
    assert.equal(await p.tab.evaluate(() => location.hash), '', 'the host page\'s URL is unchanged');
    // ... by the panel's one click handler: no listener on each '#' link (the live tail is rebuilt per token).
    const cdp = await p.ctx.newCDPSession(p.tab);
    const { result: { objectId } } = await cdp.send('Runtime.evaluate', {
      expression: 'document.querySelector("confab-chat").shadowRoot.querySelector(\'.md a[href^="#"]\')' });
    const { listeners } = await cdp.send('DOMDebugger.getEventListeners', { objectId });
    assert.deepEqual(listeners.map((l) => l.type), [], 'no listener on a footnote link');
    await cdp.detach();
    assert.ok(r.links.some(([h]) => h === 'https://example.com/docs'));
    assert.ok(r.links.some(([h]) => h.startsWith('http://localhost:') && h.includes('leak.png')), 'the image of a host not allowed is a link');
    assert.deepEqual(r.imgs.map(([src]) => src), [`${siteOrigin}/img/ok.png`], 'only the allowed, working image is an <img>');
    assert.ok(r.imgs[0][1] > 0, 'and it loaded');
    assert.equal(imageRequests.filter((x) => x === '/img/missing.png').length, 1, 'the failing image was requested once');
    assert.equal(imageRequests.filter((x) => x.includes('leak')).length, 0, 'the image of a host not allowed was never requested');

    // Wrap toggle: the long line wraps instead of scrolling; copy puts the code on the clipboard.
    await p.tab.locator('.code [data-act="wrap"]').click();
    const wrapped = await inWidget(p.tab, (root) => {
      const pre = root.querySelector('.code pre');
      return pre.scrollWidth <= pre.clientWidth + 1;
    });
    assert.equal(wrapped, true, 'wrapped lines fit');
    await p.tab.locator('.code [data-act="copy-code"]').click();
    assert.match(await p.tab.evaluate(() => navigator.clipboard.readText()), /^const longLine = \["(abcdefghij){12}"\]/);
    await p.tab.locator('.row.assistant [data-act="copy-msg"]').last().click();
    assert.match(await p.tab.evaluate(() => navigator.clipboard.readText()), /^Here you go\.\n\n\| Option \| Latency/, 'copy message: the Markdown');
    await p.tab.screenshot({ path: join(ARTIFACTS, 'widget-rich-phone.png') });
    await p.check([/Failed to load resource.*404/]);
  } finally {
    await p.close();
  }
});

it('visitors get a short message and Retry; the console names the fix (origin not allowed, server down, bad identity URL, upstream down)', T, async () => {
  const cases = [
    // A page origin missing from allowedOrigins (localhost is another origin than 127.0.0.1).
    { params: { user: 'origin' }, origin: siteOrigin.replace('127.0.0.1', 'localhost'),
      dev: /\[confab widget\] the server .* is up, but the browser blocked its answer: this page's origin http:\/\/localhost:\d+ is most likely missing from allowedOrigins/,
      also: [/CORS|Failed to load resource/] },
    { params: { user: 'dead', host: deadHost }, dev: /\[confab widget\] the server http:\/\/127\.0\.0\.1:\d+ cannot be reached/,
      also: [/Failed to load resource|ERR_CONNECTION_REFUSED/] },
    { params: { user: 'noid', identity: 'missing' }, dev: /\[confab widget\] the identity URL \/identity\?.* answered HTTP 404: it must answer JSON \{userId, workspaceId, hashedUserId\}/,
      also: [/Failed to load resource.*404/] },
  ];
  for (const c of cases) {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    const logged = [];
    tab.on('console', (m) => logged.push(m.text()));
    try {
      await tab.goto(`${c.origin || siteOrigin}/page.html?${new URLSearchParams(c.params)}`);
      await tab.evaluate(() => document.querySelector('confab-chat').open());
      await tab.locator('.banner.error').waitFor({ timeout: 10000 });
      const banner = await tab.locator('.banner.error').textContent();
      assert.equal(banner, 'Chat is unavailable right now. Please try again later.Retry', `the visitor's message (${c.params.user})`);
      const all = [c.dev, ...c.also];
      for (let i = 0; i < 50 && !all.every((re) => logged.some((l) => re.test(l))); i++) await tab.waitForTimeout(100);
      assert.ok(logged.some((l) => c.dev.test(l)), `console for the developer: ${c.dev} in ${JSON.stringify(logged)}`);
      for (const re of c.also) assert.ok(logged.some((l) => re.test(l)), `the browser's own console line: ${re} in ${JSON.stringify(logged)}`);
    } finally {
      await ctx.close();
    }
  }
  // The upstream fails (and names an internal address): the visitor sees neither it nor a code.
  const p = await open({ user: 'upstream-down', app: 'down' });
  try {
    await openPanel(p.tab);
    await send(p.tab, 'hello?');
    const [failed] = await waitReplies(p.tab, 1);
    assert.equal(failed.note, 'The reply failed. Retry');
    assert.doesNotMatch(failed.text, /10\.1\.2\.3|8799|upstream|http/i);
    await p.check([/\[confab widget\] the reply failed on the server/]);
    assert.ok(!p.errors.some((e) => /10\.1\.2\.3/.test(e)), `the server never hands out the upstream's address: ${p.errors}`);
  } finally {
    await p.close();
  }
});

it('rate limited: "Too many messages, try again in N s" counts down, and Cancel keeps the message as not sent', { timeout: 60000 }, async () => {
  const p = await open({ user: 'hasty', ws: 'tight' });
  try {
    await openPanel(p.tab);  // the app's info takes one of the two requests the workspace allows now
    await send(p.tab, 'first');
    await waitReplies(p.tab, 1);
    const posts = [];
    p.tab.on('request', (r) => { if (r.url().endsWith('/chat') && r.method() === 'POST') posts.push(r.headers()['idempotency-key']); });
    await send(p.tab, 'second');
    await p.tab.locator('.banner.wait').waitFor({ timeout: 10000 });
    const first = await p.tab.locator('.banner.wait span').textContent();
    const n = Number(/try again in (\d+) s/.exec(first)[1]);
    assert.ok(n >= 2 && n <= 20, first);
    await p.tab.waitForFunction((before) => {
      const s = document.querySelector('confab-chat').shadowRoot.querySelector('.banner.wait span');
      return s && s.textContent !== before;
    }, first, { timeout: 5000 });
    assert.match(await p.tab.locator('.banner.wait span').textContent(), /Too many messages, try again in \d+ s\./, 'it counts down');
    await p.tab.locator('.banner.wait .retry').click();  // Cancel
    await p.tab.locator('.msg.user.failed').waitFor({ timeout: 5000 });
    assert.match(await p.tab.locator('.msg.user.failed .note').textContent(), /Not sent\. Retry/);
    assert.equal(await p.tab.locator('.banner').isVisible(), false);
    await p.tab.waitForTimeout((n + 1) * 1000);  // past the countdown: the SDK's retry would have gone by now
    assert.equal(posts.length, 1, 'no further attempt after Cancel');
    assert.match(posts[0], /^[\w-]{16,}$/, 'the turn carried an Idempotency-Key');
    await p.check([/Failed to load resource.*429/]);
  } finally {
    await p.close();
  }
});

it('after a reload: the greeting stays, a failed turn stays failed (once), a stopped reply keeps "Stopped"; Retry is the same turn', T, async () => {
  const p = await open({ user: 'reload-states', app: 'down' });
  try {
    await openPanel(p.tab);
    await send(p.tab, 'will fail');
    await waitReplies(p.tab, 1);
    const keys = [];
    p.tab.on('request', (r) => { if (r.url().endsWith('/chat') && r.method() === 'POST') keys.push(r.headers()['idempotency-key']); });
    await p.tab.locator('.msg.failed .retry').click();  // fails again (the upstream is down): same turn
    await p.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelector('.msg.failed .retry'), null, { timeout: 10000 });
    await p.go();
    await openPanel(p.tab);
    const state = await inWidget(p.tab, (root) => ({
      greeting: root.querySelector('.msg.greeting')?.textContent,
      users: [...root.querySelectorAll('.msg.user')].map((m) => m.textContent),
      failed: [...root.querySelectorAll('.msg.assistant.failed .note')].map((n) => n.textContent),
    }));
    assert.equal(state.greeting, 'Hi! Ask me anything.', 'the greeting is still there');
    assert.deepEqual(state.users, ['will fail'], 'the retried message is stored once');
    assert.deepEqual(state.failed, ['The reply failed. Retry'], 'the failed turn is still shown as failed');
    assert.equal(keys.length, 1);
    await p.check([/\[confab widget\] the reply failed on the server/]);
  } finally {
    await p.close();
  }
  const s = await open({ user: 'reload-stopped', app: 'slowchat' });
  try {
    await openPanel(s.tab);
    await send(s.tab, 'Please write a long answer about stopping streams mid-way');
    await s.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelector('.msg.assistant[aria-busy] .md').textContent.length > 10,
      null, { timeout: 10000 });
    const mdText = () => inWidget(s.tab, (root) => root.querySelector('.msg.assistant:not(.greeting) .md').textContent);
    const shown = await mdText();  // what the visitor saw when clicking Stop (a token or two may still land)
    await s.tab.locator('.stop').click();
    const [stopped] = await waitReplies(s.tab, 1, 5000);
    await s.go();
    await openPanel(s.tab);
    const [after] = await waitReplies(s.tab, 1);
    assert.match(after.note, /^Stopped$/, 'the stopped mark survives a reload');
    const kept = await mdText();
    assert.ok(kept.startsWith(shown), `the reloaded reply keeps what was shown at Stop: ${JSON.stringify(shown)} in ${JSON.stringify(kept)}`);
    assert.ok(stopped.html.length > 0);
    await s.check();
  } finally {
    await s.close();
  }
});

it('Enter while a reply streams keeps the text and sends it when the reply ends; composer text is 16px', T, async () => {
  const p = await open({ user: 'eager', app: 'slowchat' });
  try {
    await openPanel(p.tab);
    assert.equal(await inWidget(p.tab, (root) => getComputedStyle(root.querySelector('textarea')).fontSize), '16px', 'no zoom on focus in iOS');
    await send(p.tab, 'one');
    await p.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelector('.msg.assistant[aria-busy]'), null, { timeout: 5000 });
    await send(p.tab, 'two, typed while the first reply streams');
    assert.equal(await p.tab.locator('textarea').inputValue(), 'two, typed while the first reply streams', 'kept');
    const two = await waitReplies(p.tab, 2, 20000);
    assert.match(two[1].html, /two, typed while the first reply streams/);
    assert.equal(await p.tab.locator('textarea').inputValue(), '');
    await p.check();
  } finally {
    await p.close();
  }
});

it('starters in the empty state; feedback up/down with a comment reaches the server; regenerate and edit-and-resend replace the last turn', T, async () => {
  const p = await open({ user: 'starter' });
  try {
    await openPanel(p.tab);
    await p.tab.locator('.starter').first().waitFor({ timeout: 5000 });
    assert.deepEqual(await p.tab.locator('.starter').allTextContents(), ['What can you do?', 'Show me a table']);
    await p.tab.locator('.starter').first().click();
    const [reply] = await waitReplies(p.tab, 1);
    assert.match(reply.html, /What can you do\?/);
    assert.equal(await p.tab.locator('.starter').count(), 0, 'the starters go once the conversation began');
    const exec = p.chats[0];
    // Thumbs down with a comment, then changed to up.
    await p.tab.locator('.row.assistant [data-act="down"]').click();
    await p.tab.locator('.fb input').fill('too terse');
    await p.tab.locator('.fb input').press('Enter');
    await p.tab.locator('.fb .note').waitFor({ timeout: 5000 });
    const fb = async () => (await fetch(`${api.url}/v1/feedback?appId=assistant`, { headers: { Authorization: 'Bearer widget-api-key-0123456789' } })).json();
    let list = await fb();
    const mine = (l) => l.content.filter((f) => f.executionId === exec);
    assert.deepEqual(mine(list).map((f) => [f.rating, f.comment]), [['down', 'too terse']]);
    await p.tab.locator('.row.assistant [data-act="up"]').click();
    await p.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelector('[data-act="up"]').getAttribute('aria-pressed') === 'true');
    list = await fb();
    assert.deepEqual(mine(list).map((f) => f.rating), ['up'], 'changed, not added');

    // Regenerate: the server re-runs the last message; still one user message, one reply.
    await p.tab.locator('.row.assistant [data-act="regen"]').click();
    let all = await waitReplies(p.tab, 1);
    assert.equal(all.length, 1);
    // Edit-and-resend the last message.
    await p.tab.locator('.row.user [data-act="edit"]').click();
    assert.equal(await p.tab.locator('textarea').inputValue(), 'What can you do?');
    await send(p.tab, 'Edited question');
    all = await waitReplies(p.tab, 1);
    assert.match(all[0].html, /Edited question/);
    await p.go();
    await openPanel(p.tab);
    const users = await inWidget(p.tab, (root) => [...root.querySelectorAll('.msg.user')].map((m) => m.textContent));
    assert.deepEqual(users, ['Edited question'], 'the server replaced the turn');
    assert.equal((await replies(p.tab)).length, 1);
    await p.check();
  } finally {
    await p.close();
  }
});

it('timestamps, avatar and bot name, unread badge, scroll-to-bottom with "New messages", conversation history', T, async () => {
  const p = await open({ user: 'features', app: 'slowchat', attrs: 'data-avatar="/img/ok.png"' }, { viewport: { width: 1000, height: 520 } });
  try {
    // Counts the timestamp formatters the page builds (one of each per locale, not one per message).
    await p.tab.addInitScript(() => {
      const n = window.__formatters = { rel: 0, date: 0 };
      const R = Intl.RelativeTimeFormat;
      const D = Intl.DateTimeFormat;
      Intl.RelativeTimeFormat = class extends R { constructor(...a) { super(...a); n.rel++; } };
      Intl.DateTimeFormat = class extends D { constructor(...a) { super(...a); n.date++; } };
    });
    await p.go();
    await openPanel(p.tab);
    assert.equal(await inWidget(p.tab, (root) => root.querySelector('header .avatar').getAttribute('src')), '/img/ok.png');
    await send(p.tab, 'first conversation');
    await waitReplies(p.tab, 1);
    const time = await inWidget(p.tab, (root) => { const t = root.querySelector('.row.user time'); return { text: t.textContent, title: t.title, dt: t.dateTime }; });
    assert.equal(time.text, 'now');
    assert.ok(time.title.length > 8 && !Number.isNaN(Date.parse(time.dt)), `exact time on hover: ${time.title}`);
    await inWidget(p.tab, (root) => root.host._panel?.refreshTimes?.());
    const made = await p.tab.evaluate(() => window.__formatters);
    assert.ok(made.rel <= 2 && made.date <= 2, `formatters made once per locale, not per <time>: ${JSON.stringify(made)}`);
    // Scrolled up while a reply streams: a "New messages" button, which goes to the bottom.
    await send(p.tab, 'second\n' + 'line\n'.repeat(24));
    await p.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelector('.msg.assistant[aria-busy] .md')?.textContent.length > 5,
      null, { timeout: 10000 });
    await inWidget(p.tab, (root) => {
      root.querySelector('.log').scrollTop = 0;
      // Counts the writes to the button while tokens arrive: once when it appears, not once per token.
      window.__jumpWrites = 0;
      new MutationObserver((records) => { window.__jumpWrites += records.length; })
        .observe(root.querySelector('.jump'), { childList: true, characterData: true, subtree: true });
    });
    await p.tab.locator('.jump').waitFor({ timeout: 5000 });
    await waitReplies(p.tab, 2);
    const writes = await p.tab.evaluate(() => window.__jumpWrites);
    assert.ok(writes <= 2, `the "New messages" text is written when it changes, not per token (${writes} writes)`);
    assert.equal(await p.tab.locator('.jump').textContent(), 'New messages');
    await p.tab.screenshot({ path: join(ARTIFACTS, 'widget-new-messages.png') });
    await p.tab.locator('.jump').click();
    assert.equal(await inWidget(p.tab, (root) => { const l = root.querySelector('.log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 2; }), true);
    assert.equal(await p.tab.locator('.jump').isVisible(), false);
    // Unread: a reply that ends while the panel is closed.
    await send(p.tab, 'third');
    await p.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelector('.msg.assistant[aria-busy]'));
    await p.tab.evaluate(() => document.querySelector('confab-chat').close());
    await p.tab.locator('.badge').waitFor({ timeout: 10000 });
    assert.equal(await p.tab.locator('.badge').textContent(), '1');
    assert.match(await p.tab.locator('.launcher').getAttribute('aria-label'), /1 unread/);
    await p.tab.screenshot({ path: join(ARTIFACTS, 'widget-unread.png') });
    await openPanel(p.tab);
    assert.equal(await p.tab.locator('.badge').isVisible(), false);
    // History: a new conversation keeps the old one in the list; reopen it.
    await p.tab.locator('button[aria-label="New conversation"]').click();
    await send(p.tab, 'second conversation');
    await waitReplies(p.tab, 1);
    await p.tab.locator('button[aria-label="Conversations"]').click();
    await p.tab.locator('.history button').nth(1).waitFor({ timeout: 5000 });
    const titles = await p.tab.locator('.history .t').allTextContents();
    assert.deepEqual(titles.slice(0, 2), ['second conversation', 'first conversation']);
    await p.tab.screenshot({ path: join(ARTIFACTS, 'widget-history.png') });
    await p.tab.locator('.history button').nth(1).click();
    await p.tab.locator('textarea').waitFor({ state: 'visible' });
    const users = await inWidget(p.tab, (root) => [...root.querySelectorAll('.msg.user')].map((m) => m.textContent.split('\n')[0]));
    assert.deepEqual(users, ['first conversation', 'second', 'third']);
    await p.check();
  } finally {
    await p.close();
  }
});

it('data-theme light|dark|auto (the page, then the OS), RTL pages mirror the layout, data-lang picks bundled strings (ar is RTL)', T, async () => {
  const look = async (params, opts) => {
    const p = await open(params, opts);
    try {
      await openPanel(p.tab);
      return await inWidget(p.tab, (root) => {
        const box = root.querySelector('.root');
        const r = (s) => root.querySelector(s)?.getBoundingClientRect().toJSON();
        return { dark: box.classList.contains('dark'), dir: box.getAttribute('dir'), bg: getComputedStyle(root.querySelector('.panel')).backgroundColor,
          launcher: r('.launcher'), newLabel: root.querySelector('[data-label="newChat"]').getAttribute('aria-label'),
          lang: root.querySelector('.panel').lang, msgDir: root.querySelector('.msg.greeting').getAttribute('dir'),
          inputDir: root.querySelector('textarea').getAttribute('dir') };
      });
    } finally {
      await p.check();
      await p.close();
    }
  };
  assert.equal((await look({ user: 'th1' })).dark, false, 'a light page: light');
  assert.equal((await look({ user: 'th2', bg: '101418' })).dark, true, 'auto: a dark page background');
  assert.equal((await look({ user: 'th3', bg: 'scheme-dark' })).dark, true, 'auto: the page says color-scheme: dark');
  const forced = await look({ user: 'th4', attrs: 'data-theme="dark"' });
  assert.equal(forced.dark, true, 'data-theme="dark" on a light page');
  assert.equal(forced.bg, 'rgb(29, 31, 36)');
  assert.equal((await look({ user: 'th5', bg: '101418', attrs: 'data-theme="light"' })).dark, false, 'data-theme="light" on a dark page');
  const osDark = await look({ user: 'th6' }, { colorScheme: 'dark' });
  assert.equal(osDark.dark, true, 'a page that says nothing: the OS');
  const rtl = await look({ user: 'rtl', dir: 'rtl' });
  assert.equal(rtl.dir, 'rtl');
  assert.ok(rtl.launcher.x < 100, `the launcher moves to the left under dir=rtl (x ${rtl.launcher.x})`);
  assert.equal(rtl.msgDir, 'auto');
  assert.equal(rtl.inputDir, 'auto');
  const de = await look({ user: 'de', attrs: 'data-lang="de"' });
  assert.equal(de.newLabel, 'Neues Gespräch');
  assert.equal(de.lang, 'de');
  const ar = await look({ user: 'ar', attrs: 'data-lang="ar"' });
  assert.equal(ar.newLabel, 'محادثة جديدة');
  assert.equal(ar.dir, 'rtl', 'Arabic strings lay out right to left');
});

it('the page\'s look is followed while mounted, and nothing runs for a removed widget (a SPA unmounting it)', T, async () => {
  const p = await open({ user: 'unmount', preload: 'idle' });
  try {
    await p.tab.evaluate(() => {
      window.__looks = { attached: 0, detached: 0 };
      const proto = customElements.get('confab-chat').prototype;
      const apply = proto._applyLook;
      proto._applyLook = function spy() {
        window.__looks[this.isConnected ? 'attached' : 'detached']++;
        return apply.call(this);
      };
      document.documentElement.style.background = '#101418';  // the page turns dark
    });
    await p.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelector('.root.dark'), null, { timeout: 5000 });
    const frames = () => p.tab.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await p.tab.evaluate(() => { window.__chatEl = document.querySelector('confab-chat'); window.__chatEl.remove(); });
    await p.tab.evaluate(() => {
      const de = document.documentElement;
      de.classList.add('theme-light');
      de.style.background = '#ffffff';
      de.dir = 'rtl';
    });
    await p.tab.emulateMedia({ colorScheme: 'dark' });
    await frames();
    const looks = await p.tab.evaluate(() => window.__looks);
    assert.ok(looks.attached >= 1, `the mounted widget followed the page: ${JSON.stringify(looks)}`);
    assert.equal(looks.detached, 0, 'no _applyLook for the removed widget');
    // Mounted again: it follows the page again.
    await p.tab.evaluate(() => { document.documentElement.dir = 'ltr'; document.body.append(window.__chatEl); });
    await p.tab.evaluate(() => { document.documentElement.style.background = '#101418'; });
    await p.tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelector('.root.dark'), null, { timeout: 5000 });
    await p.check();
  } finally {
    await p.close();
  }
});

// axe-core in the page (a context that bypasses the test page's CSP: axe is not what the CSP tests).
async function axeViolations(tab) {
  if (await tab.evaluate(() => typeof window.axe === 'undefined')) await tab.addScriptTag({ url: '/axe.js' });
  const res = await tab.evaluate(async () => {
    const r = await window.axe.run(document.querySelector('confab-chat'), { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' > ') + ' ' + (n.failureSummary || '').split('\n').slice(1, 2).join('')).join(' | ')}`);
  });
  return res;
}

it('accessibility (axe-core): no serious or critical violation closed, open, streaming, failed and in the history; light, dark and RTL; screenshots of each', { timeout: 120000 }, async () => {
  const variants = [
    { name: 'light', params: {} },
    { name: 'dark', params: { attrs: 'data-theme="dark"' } },
    { name: 'rtl', params: { dir: 'rtl', attrs: 'data-lang="ar"' } },
  ];
  const viewports = [{ name: 'desktop', width: 1200, height: 800 }, { name: 'phone', width: 390, height: 760 }];
  const found = [];
  for (const v of variants) {
    for (const vp of viewports) {
      const ctx = await browser.newContext({ bypassCSP: true, viewport: { width: vp.width, height: vp.height } });
      const tab = await ctx.newPage();
      const shot = (state) => tab.screenshot({ path: join(ARTIFACTS, `widget-${v.name}-${vp.name}-${state}.png`) });
      const audit = async (state) => {
        const bad = await axeViolations(tab);
        for (const b of bad) found.push(`${v.name}/${vp.name}/${state}: ${b}`);
        await shot(state);
      };
      try {
        const user = `axe-${v.name}-${vp.name}`;
        await tab.goto(`${siteOrigin}/page.html?${new URLSearchParams({ user, app: 'rich', ...v.params })}`);
        await tab.locator('.launcher').waitFor();
        await audit('closed');
        await openPanel(tab);
        await audit('open');
        await send(tab, 'show me everything');
        await waitReplies(tab, 1);
        await audit('reply');
        // Streaming: a slow reply in another app, caught mid-way.
        await tab.goto(`${siteOrigin}/page.html?${new URLSearchParams({ user, app: 'slowchat', ...v.params })}`);
        await openPanel(tab);
        await send(tab, 'Please write a long answer so that it streams for a while');
        await tab.waitForFunction(() => document.querySelector('confab-chat').shadowRoot.querySelector('.msg.assistant[aria-busy] .md')?.textContent.length > 10,
          null, { timeout: 10000 });
        await audit('streaming');
        await waitReplies(tab, 1);
        await tab.goto(`${siteOrigin}/page.html?${new URLSearchParams({ user, app: 'down', ...v.params })}`);
        await openPanel(tab);
        await send(tab, 'this one fails');
        await waitReplies(tab, 1);
        await audit('failed');
        await tab.locator('[data-label="history"]').click();
        await tab.locator('.history button').first().waitFor({ timeout: 5000 });
        await audit('history');
      } finally {
        await ctx.close();
      }
    }
  }
  assert.deepEqual(found, []);
});
