// examples/chat-embed end to end in Chromium: its site backend (serve.mjs) serves the page and the
// identity URL (an expiring v1 token), confab-server runs the demo config, and the widget answers.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoDir, serverBin, launchChromium } from './helpers.mjs';
import { startServer as startConfabServer } from '../../tests/server/helpers.mjs';


let api;
let site;
let browser;
let proc;

before(async () => {
  serverBin();
  // The demo config, allowing any origin (the example's site gets a free port, not 8082).
  const demo = JSON.parse(readFileSync(join(repoDir, 'examples/config/demo.json'), 'utf8'));
  demo.workspaces[0].allowedOrigins = ['*'];
  api = await startConfabServer({ config: demo, args: ['--no-access-log'] });
  proc = spawn(process.execPath, [join(repoDir, 'examples/chat-embed/serve.mjs'), '--port', '0', '--api', api.url],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  site = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/(http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`serve.mjs exited with ${code}`)));
  });
  browser = await launchChromium();  // fails (never skips) without Chromium
});

after(async () => {
  await browser?.close();
  proc?.kill('SIGTERM');
  if (api) {
    await api.stop();
    api.cleanup();
  }
});

it('examples/chat-embed: the tag mounts the widget, the site vouches for the user, the demo agent answers', { timeout: 30000 }, async () => {
  const ctx = await browser.newContext();
  const tab = await ctx.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  tab.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  try {
    await ctx.addInitScript(() => {
      window.__violations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));
    });
    await tab.goto(`${site}/login?user=embed-tester`);
    await tab.locator('#open-chat').click();  // page code opens it: chat.open()
    await tab.locator('textarea').waitFor({ state: 'visible', timeout: 10000 });
    await tab.locator('textarea').fill('Hello from the **embed** example');
    await tab.locator('textarea').press('Enter');
    await tab.waitForFunction(() => {
      const root = document.querySelector('confab-chat').shadowRoot;
      return [...root.querySelectorAll('.msg.assistant:not(.greeting)')].some((m) => !m.hasAttribute('aria-busy'));
    }, null, { timeout: 15000 });
    const html = await tab.evaluate(() => document.querySelector('confab-chat').shadowRoot
      .querySelector('.msg.assistant:not(.greeting) .md').innerHTML);
    assert.match(html, /<h2>Echo<\/h2>/);
    assert.match(html, /Hello from the \*\*embed\*\* example/);
    const identity = await tab.evaluate(async () => (await fetch('/confab-identity')).json());
    assert.equal(identity.userId, 'embed-tester');
    assert.match(identity.hashedUserId, /^v1\.\d+\.[0-9a-f]{64}$/, 'an expiring token');
    mkdirSync(join(repoDir, 'test-artifacts'), { recursive: true });
    await tab.screenshot({ path: join(repoDir, 'test-artifacts/widget-chat-embed.png') });
    assert.deepEqual(await tab.evaluate(() => window.__violations), []);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
