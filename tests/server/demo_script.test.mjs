// scripts/demo.sh (`make demo`) run twice: the second run finds the first, says so and exits 0,
// leaving the running server and its log alone.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { REPO, SERVER_BIN, freePorts, makeDataDir } from './helpers.mjs';

const T = { timeout: 60000 };

test('a second make demo while one runs says so, exits 0 and leaves the running demo and its log alone', T, async (t) => {
  // demo.sh runs build/native-release/confab-server; the tests may be pointed at another binary.
  if (path.resolve(SERVER_BIN) !== path.join(REPO, 'build/native-release/confab-server')) {
    t.skip(`demo.sh runs build/native-release/confab-server, not ${SERVER_BIN}`);
    return;
  }
  // The demo's pages serve the SDK bundles: without them (no `make sdk` yet) the demo cannot start.
  const missing = ['confab.global.js', 'confab-widget.js'].filter((f) => !existsSync(path.join(REPO, 'web/dist', f)));
  if (missing.length) {
    t.skip(`web/dist/${missing[0]} is missing: run make sdk`);
    return;
  }
  const dataDir = makeDataDir();
  const [api, page, core, widget] = await freePorts(4);
  const env = {
    ...process.env,
    CONFAB_DEMO_API_PORT: String(api), CONFAB_DEMO_PAGE_PORT: String(page),
    CONFAB_DEMO_CORE_PORT: String(core), CONFAB_DEMO_WIDGET_PORT: String(widget),
    CONFAB_DEMO_DATA_DIR: dataDir,
  };
  const first = spawn('bash', ['scripts/demo.sh'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => first.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    let out = '';
    first.stdout.setEncoding('utf8');
    first.stderr.setEncoding('utf8');
    first.stderr.on('data', (d) => { out += d; });
    await new Promise((resolve, reject) => {
      first.stdout.on('data', (d) => {
        out += d;
        if (out.includes('Press Ctrl-C to stop.')) resolve();
      });
      exited.then(() => reject(new Error(`the first demo ended early:\n${out}`)));
    });
    // Something in the log to lose.
    assert.equal((await fetch(`http://127.0.0.1:${api}/healthz`)).status, 200);
    const log = path.join(dataDir, 'server.log');
    const before = readFileSync(log, 'utf8');
    assert.ok(before.length > 0, 'the server has logged a request');

    const second = spawnSync('bash', ['scripts/demo.sh'], { cwd: REPO, env, encoding: 'utf8', timeout: 30000 });
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /already running \(pid \d+\)/);
    assert.match(second.stdout, new RegExp(`http://127\\.0\\.0\\.1:${api}`));
    assert.ok(readFileSync(log, 'utf8').startsWith(before), 'the running server\'s log is kept');
    assert.equal((await fetch(`http://127.0.0.1:${api}/readyz`)).status, 200, 'the running demo still serves');
    assert.equal(first.exitCode, null, 'the first demo still runs');
  } finally {
    first.kill('SIGTERM');
    const t0 = setTimeout(() => first.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(t0);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
