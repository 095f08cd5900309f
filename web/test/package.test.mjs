// The package as users get it: npm pack, install the tarball into an empty folder, then import it
// from ESM and CJS in Node and call userHash and a streamed execute against a real server.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, webDir, SECRET, hmacHex, storyText } from './helpers.mjs';

let server;
let dir;
before(async () => {
  server = await startServer();
  dir = mkdtempSync(join(tmpdir(), 'confab-sdk-pack-'));
});
after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const npm = (args, cwd) => execFileSync('npm', args, {
  cwd, encoding: 'utf8', timeout: 120000, env: { ...process.env, npm_config_update_notifier: 'false' },
});

const program = (kind) => `
${kind === 'esm'
    ? "import Confab, { userHash, ApiError, IdentityError } from '@confab/sdk';"
    : "const Confab = require('@confab/sdk'); const { userHash, ApiError, IdentityError } = Confab;"}
(async () => {
  const [host, secret] = process.argv.slice(2);
  const hash = await userHash(secret, 'pack-user');
  const c = Confab.identify({ userId: 'pack-user', workspaceId: 'sdk', hashedUserId: hash, host });
  let streamed = '';
  const run = await c.apps.execute({ appId: 'story', payload: { inputs: { hero: '${kind}', topic: 'packages' } },
    stream: true, streamCallback: ({ content }) => { streamed += content; } });
  const r = await run.result();
  let errorOk = false;
  try { await Confab.identify({ userId: 'x', workspaceId: 'sdk', hashedUserId: 'bad', host }).apps.get('story'); }
  catch (e) { errorOk = e instanceof IdentityError && e instanceof ApiError && e.status === 401; }
  console.log(JSON.stringify({ hash, streamed, output: r.output, status: r.status, errorOk,
    isClass: typeof Confab === 'function', hasDefault: Confab.default === Confab || Confab.default === undefined }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

it('npm pack -> install -> import from ESM and CJS', () => {
  const out = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], webDir));
  const files = out[0].files.map((f) => f.path).sort();
  assert.deepEqual(files, ['README.md', 'dist/confab-airops.js', 'dist/confab-widget-core.wasm', 'dist/confab-widget-lang-ar.json', 'dist/confab-widget-lang-de.json',
    'dist/confab-widget-lang-es.json', 'dist/confab-widget-lang-fr.json',
    'dist/confab-widget-panel.js', 'dist/confab-widget.js', 'dist/confab-widget.mjs', 'dist/confab.cjs',
    'dist/confab.global.js', 'dist/confab.mjs', 'index.d.cts', 'index.d.ts', 'package.json', 'widget.d.ts'],
    'the tarball holds the bundles, the types and nothing else');
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  const app = join(dir, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-smoke', private: true, version: '1.0.0' }));
  npm(['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tgz)], app);
  writeFileSync(join(app, 'esm.mjs'), program('esm'));
  writeFileSync(join(app, 'cjs.cjs'), program('cjs'));
  for (const [file, hero] of [['esm.mjs', 'esm'], ['cjs.cjs', 'cjs']]) {
    const r = spawnSync(process.execPath, [file, server.url, SECRET], { cwd: app, encoding: 'utf8', timeout: 60000 });
    assert.equal(r.status, 0, `${file} failed: ${r.stderr}`);
    const got = JSON.parse(r.stdout.trim().split('\n').at(-1));
    assert.equal(got.hash, hmacHex(SECRET, 'pack-user'));
    assert.equal(got.status, 'success');
    assert.equal(got.streamed, storyText(hero, 'packages'));
    assert.equal(got.output, got.streamed);
    assert.equal(got.errorOk, true);
    assert.equal(got.isClass, true);
  }
});
