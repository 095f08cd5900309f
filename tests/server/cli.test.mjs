// The confab-server command line: `sign` against OpenSSL, usage errors, config errors.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { SERVER_BIN, testConfig } from './helpers.mjs';

const T = { timeout: 15000 };
const dir = mkdtempSync(path.join(tmpdir(), 'confab-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args, opts = {}) {
  return spawnSync(SERVER_BIN, args, { encoding: 'utf8', timeout: 10000, ...opts });
}

test('sign prints the same HMAC-SHA256 as `openssl dgst -sha256 -hmac`', T, async (t) => {
  const secretFile = path.join(dir, 'secret');
  writeFileSync(secretFile, 's3cr3t-key\n');  // the trailing newline is not part of the secret
  for (const user of ['alice', 'user@example.com', 'Zoë 42']) {
    const r = run(['sign', '--secret-file', secretFile, '--workspace', 'demo', '--user', user]);
    assert.equal(r.status, 0, r.stderr);
    let expected;
    try {
      const out = execFileSync('openssl', ['dgst', '-sha256', '-hmac', 's3cr3t-key'], { input: user, encoding: 'utf8' });
      expected = out.trim().split(/\s+/).at(-1);
    } catch {
      t.diagnostic('openssl not available, comparing with node:crypto');
      expected = createHmac('sha256', 's3cr3t-key').update(user).digest('hex');
    }
    assert.equal(r.stdout.trim(), expected);
  }
});

test('sign --ttl prints a v1 token that expires ttl seconds from now', T, () => {
  const secretFile = path.join(dir, 'secret2');
  writeFileSync(secretFile, 'k2');
  const before = Math.floor(Date.now() / 1000);
  const r = run(['sign', '--secret-file', secretFile, '--workspace', 'acme', '--user', 'bob', '--ttl', '300']);
  assert.equal(r.status, 0, r.stderr);
  const m = /^v1\.(\d+)\.([0-9a-f]{64})$/.exec(r.stdout.trim());
  assert.ok(m, r.stdout);
  const exp = Number(m[1]);
  assert.ok(exp >= before + 300 && exp <= before + 302);
  // Keyed with HMAC-SHA256(secret, "confab-key\0identity-token-v1"), not with the secret itself.
  const key = createHmac('sha256', 'k2').update('confab-key\0identity-token-v1').digest();
  assert.equal(m[2], createHmac('sha256', key).update(`v1\nacme\nbob\n${exp}`).digest('hex'));
});

test('usage errors exit 2 with a message naming the problem; --help exits 0', T, () => {
  const missing = run(['sign', '--workspace', 'w', '--user', 'u']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--secret-file/);
  const badTtl = run(['sign', '--secret-file', 'x', '--workspace', 'w', '--user', 'u', '--ttl', 'soon']);
  assert.equal(badTtl.status, 2);
  assert.match(badTtl.stderr, /--ttl/);
  const unknown = run(['serve', '--frobnicate']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /--frobnicate/);
  const badListen = run(['--listen', '127.0.0.1:99999']);
  assert.equal(badListen.status, 2);
  assert.match(badListen.stderr, /--listen/);
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /confab-server sign/);
  const noFile = run(['sign', '--secret-file', path.join(dir, 'nope'), '--workspace', 'w', '--user', 'u']);
  assert.equal(noFile.status, 1);
  assert.match(noFile.stderr, /secret-file/);
});

test('a bad config file stops the server with the file, field and reason', T, () => {
  const cfg = testConfig();
  cfg.workspaces[0].apps[0].type = 'wizard';
  const file = path.join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify(cfg));
  const r = run(['serve', '--listen', '127.0.0.1:0', '--config', file, '--data-dir', path.join(dir, 'db')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.json/);
  assert.match(r.stderr, /workspaces\[0\]\.apps\[0\]\.type/);
});
