// The unmodified @airops/airops-js SDK (its UMD build, as published on npm) in Debian's Chromium,
// against a real confab-server: the page loads dist/confab-airops.js first, which sends the SDK's
// Pusher socket to the server's /app/{key}. Every call the SDK makes goes to /sdk_api/*.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { startServer, testConfig, distDir, SECRET, hmacHex, launchChromium, storyText } from './helpers.mjs';

const require = createRequire(import.meta.url);
const sdkDir = join(require.resolve('@airops/airops-js/package.json'), '..');

const pageScript = `
const report = (o) => { document.getElementById('status').textContent = JSON.stringify(o); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (f) => { for (let i = 0; i < 200 && !f(); i++) await sleep(25); };
async function run() {
  const p = new URLSearchParams(location.hash.slice(1));
  const host = p.get('host');
  const AirOps = window.AirOps.default;
  const airops = AirOps.identify({ userId: p.get('user'), workspaceId: 'sdk', hashedUserId: p.get('hash'), host });
  const r = { sockets: [] };
  r.wrapped = typeof ConfabAirOps === 'object' && ConfabAirOps.host === host;

  const app = await airops.apps.get('story');
  r.app = { public: app.public, type: app.type };

  const plain = await airops.apps.execute({ appId: 'story', payload: { inputs: { hero: 'Ada', topic: 'wasm' } } });
  const plainResult = await plain.result();
  r.plain = { id: plain.executionId, status: plainResult.status, output: plainResult.output, uuid: plainResult.uuid };
  const got = await airops.apps.getResults({ appId: 'story', executionId: plain.executionId });
  r.getResults = { status: got.status, output: got.output, uuid: got.uuid };

  let chunks = '';
  let completed = null;
  const streamed = await airops.apps.execute({ appId: 'versioned', version: 2, payload: { inputs: {} }, stream: true,
    streamCallback: ({ content }) => { chunks += content; }, streamCompletedCallback: (d) => { completed = d; } });
  const streamedResult = await streamed.result();
  await until(() => completed);
  r.streamed = { chunks, completed, output: streamedResult.output, status: streamedResult.status };

  const slow = await airops.apps.execute({ appId: 'slow', payload: { inputs: {} } });
  await slow.cancel();
  await slow.cancel();  // a second cancel of a finished run is not an error
  r.cancelled = (await airops.apps.getResults({ executionId: slow.executionId })).status;

  const chatTurn = async (message, sessionId) => {
    let tokens = '';
    let done = null;
    const actions = new Set();
    const chat = await airops.apps.chatStream({ appId: 'assistant', message, sessionId,
      streamCallback: (e) => { actions.add(e.action); if (e.action === 'agent-response') tokens += e.token; },
      streamCompletedCallback: (d) => { done = d; } });
    const result = await chat.result();
    await until(() => done);
    return { tokens, done, output: result.output, status: result.status, sessionId: chat.sessionId, actions: [...actions] };
  };
  r.chat1 = await chatTurn('first turn');
  r.chat2 = await chatTurn('second turn', r.chat1.sessionId);

  const anonymous = new AirOps({ host });
  let anonChunks = '';
  const anon = await anonymous.apps.execute({ appId: 'hello', payload: { inputs: { name: 'Anon' } }, stream: true,
    streamCallback: ({ content }) => { anonChunks += content; } });
  const anonResult = await anon.result();
  await until(() => anonChunks === anonResult.output);
  r.anonymous = { chunks: anonChunks, output: anonResult.output, status: anonResult.status };

  try {
    await AirOps.identify({ userId: 'mallory', workspaceId: 'sdk', hashedUserId: 'ab'.repeat(32), host }).apps.get('story');
    r.badHash = 'no error';
  } catch (e) { r.badHash = { message: e.message, status: e.status }; }
  try {
    await airops.apps.execute({ appId: 'story', payload: { inputs: { hero: 'Ada' } } });
    r.missing = 'no error';
  } catch (e) { r.missing = { message: e.message, status: e.status }; }

  let wfChunks = '';
  const wf = await airops.apps.execute({ appId: 'briefing', payload: { inputs: { topic: 'rates' } }, stream: true,
    streamCallback: ({ content }) => { wfChunks += content; } });
  const wfResult = await wf.result();
  await until(() => wfChunks === wfResult.output);
  r.workflow = { status: wfResult.status, output: wfResult.output, chunks: wfChunks };
  r.wrapperInstalled = WebSocket.confabAirOps === true;
  report({ ok: true, ...r });
}
run().catch((e) => report({ ok: false, error: String(e && e.stack || e) }));
`;

let api;
let page;
let browser;
let pageOrigin;
const wsUrls = [];

before(async () => {
  page = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const files = {
      '/airops.html': () => '<!doctype html><meta charset="utf-8"><title>airops</title><pre id="status"></pre>' +
        `<script src="/confab-airops.js" data-host="${api.url}"></script>` +
        '<script src="/airops.umd.js"></script><script src="/page.js"></script>',
      '/page.js': () => pageScript,
      '/confab-airops.js': () => readFileSync(join(distDir, 'confab-airops.js')),
      '/airops.umd.js': () => readFileSync(join(sdkDir, 'dist/index.umd.js')),
    };
    if (!files[url.pathname]) { res.writeHead(404).end(); return; }
    const type = url.pathname.endsWith('.html') ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8';
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    res.end(files[url.pathname]());
  });
  await new Promise((r) => page.listen(0, '127.0.0.1', r));
  pageOrigin = `http://127.0.0.1:${page.address().port}`;
  const config = testConfig({ origins: [pageOrigin] });
  // The anonymous call names its workspace by the page's origin: only one workspace may hold it.
  config.workspaces[1].allowedOrigins = ['http://tight.test'];
  config.workspaces[0].apps.push(
    { id: 'fetcher', type: 'agent', model: 'echo', chunkChars: 16, delayMs: 1 },
    { id: 'summarizer', type: 'agent', model: 'echo', chunkChars: 16, delayMs: 1 },
    { id: 'briefing', type: 'workflow', workflowId: 'brief', inputs: [{ name: 'topic', type: 'string' }] },
  );
  config.workspaces[0].workflows = [{ id: 'brief', name: 'Brief', steps: [
    { agentId: 'fetcher', action: 'Fetch the news for:', stepOrder: 1 },
    { agentId: 'summarizer', action: 'Summarize:', stepOrder: 2 },
  ] }];
  api = await startServer({ config });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await api?.stop();
  if (page) await new Promise((r) => page.close(r));
});

it('the unmodified AirOps SDK (UMD) runs against confab-server in Chromium, streams through confab-airops.js', async () => {
  const ctx = await browser.newContext();
  const tab = await ctx.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  tab.on('websocket', (ws) => wsUrls.push(ws.url()));
  // Nothing may leave for Pusher's hosts: the socket must come here.
  const outside = [];
  await ctx.route(/pusher(app)?\.com/, (route) => { outside.push(route.request().url()); return route.abort(); });
  try {
    const user = 'airops-user';
    const hash = new URLSearchParams({ host: api.url, user, hash: hmacHex(SECRET, user) });
    await tab.goto(`${pageOrigin}/airops.html#${hash}`, { timeout: 20000 });
    await tab.waitForFunction(() => document.getElementById('status').textContent !== '', null, { timeout: 60000 });
    const got = JSON.parse(await tab.textContent('#status'));
    assert.equal(got.ok, true, got.error);
    assert.equal(got.wrapped, true);
    assert.deepEqual(got.app, { public: false, type: 'template' });

    assert.match(got.plain.id, /^ex_/);
    assert.equal(got.plain.status, 'success');
    assert.equal(got.plain.output, storyText('Ada', 'wasm'));
    assert.equal(got.plain.uuid, got.plain.id);
    assert.deepEqual(got.getResults, { status: 'success', output: storyText('Ada', 'wasm'), uuid: got.plain.id });

    assert.equal(got.streamed.output, 'version two');
    assert.equal(got.streamed.chunks, 'version two', 'chunk events arrived over the Pusher socket');
    assert.equal(got.streamed.completed.content, 'version two');
    assert.equal(got.cancelled, 'cancelled');

    assert.equal(got.chat1.status, 'success');
    assert.match(got.chat1.output, /Turn: 1/);
    assert.match(got.chat1.output, /first turn/);
    assert.equal(got.chat1.tokens, got.chat1.output);
    assert.equal(got.chat1.done.action, 'completed');
    assert.equal(got.chat1.done.result, got.chat1.output);
    assert.deepEqual(got.chat1.actions, ['agent-response']);
    assert.equal(got.chat2.sessionId, got.chat1.sessionId);
    assert.match(got.chat2.output, /Turn: 2/, 'turn 2 sees turn 1');
    assert.equal(got.chat2.tokens, got.chat2.output);

    assert.deepEqual(got.anonymous, { chunks: 'Hello, Anon!', output: 'Hello, Anon!', status: 'success' });
    assert.equal(got.badHash.status, 401);
    assert.match(got.badHash.message, /user_id_hashed/);
    assert.equal(got.missing.status, 400);
    assert.match(got.missing.message, /topic/);
    assert.equal(got.workflow.status, 'success');
    assert.match(got.workflow.output, /Summarize:/);
    assert.equal(got.workflow.chunks, got.workflow.output);
    assert.equal(got.wrapperInstalled, true, 'window.WebSocket is the wrapper');

    assert.deepEqual(outside, []);
    assert.ok(wsUrls.length > 0 && wsUrls.every((u) => u.startsWith(api.url.replace('http:', 'ws:') + '/app/')), wsUrls.join(' '));
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
