// examples/signing/ in Node, Python, Ruby and Go produce exactly the core's user hashes and v1
// tokens (`confab-server sign`), and a server accepts what they sign. A missing toolchain fails.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { getJson, REPO, SERVER_BIN, startServer, WS } from './helpers.mjs';

const T = { timeout: 60000 };
const EX = path.join(REPO, 'examples/signing');
const dir = mkdtempSync(path.join(tmpdir(), 'confab-signing-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Keys: ASCII; UTF-8 multibyte; longer than the 64-byte HMAC block (hashed first, RFC 2104).
const SECRETS = ['test-secret-1', 'sécret-ключ-🔑', 'k'.repeat(100)];
// Users: ASCII, punctuation and spaces, Latin-1 range, CJK, 4-byte emoji, long.
const USERS = ['alice', 'CN=Eve Doe, O=Example <eve@example.com>', 'Zoë Ångström', '用户-42', '🙂 smile', 'u'.repeat(300)];
const WORKSPACES = ['demo', 'acme-prod_2'];

const TOOLCHAIN_HINT = 'run scripts/bootstrap.sh (apt-get install ruby golang-go python3)';

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000, env: { ...process.env, ...env } });
  if (r.error?.code === 'ENOENT') assert.fail(`${cmd} is not installed: ${TOOLCHAIN_HINT}`);
  if (r.error) throw r.error;
  return r;
}

// The core's answers, from the real binary.
function coreSign(secret, workspace, user, ttl) {
  const file = path.join(dir, 'secret');
  writeFileSync(file, secret);
  const args = ['sign', '--secret-file', file, '--workspace', workspace, '--user', user];
  if (ttl) args.push('--ttl', String(ttl));
  const r = run(SERVER_BIN, args);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const goBin = path.join(dir, 'confab_sign_go');
// Each snippet is a library plus a small CLI. The cases go through the library functions in one
// process per language (a process per case made this test take half a minute); the CLI is run
// once per language on its own. Go's `main` package cannot be imported, so Go runs its CLI
// binary per case (a few ms each).
const PY_DRIVER = `
import json, sys
sys.path.insert(0, sys.argv[1])
import confab_sign as s
out = []
for c in json.load(sys.stdin):
    try:
        if c["op"] == "hash":
            out.append({"value": s.user_hash(c["secret"], c["user"])})
        else:
            out.append({"value": s.identity_token(c["secret"], c["workspace"], c["user"], c["exp"])})
    except ValueError as e:
        out.append({"error": str(e)})
print(json.dumps(out))
`;
const RB_DRIVER = `
require 'json'
require File.join(ARGV[0], 'confab_sign.rb')
out = JSON.parse($stdin.read).map do |c|
  if c['op'] == 'hash'
    { value: ConfabSign.user_hash(c['secret'], c['user']) }
  else
    { value: ConfabSign.identity_token(c['secret'], c['workspace'], c['user'], c['exp']) }
  end
rescue ArgumentError => e
  { error: e.message }
end
puts JSON.generate(out)
`;
let nodeLib;

const CLI = {
  node: { cmd: process.execPath, args: [path.join(EX, 'node/confab_sign.mjs')] },
  python: { cmd: 'python3', args: [path.join(EX, 'python/confab_sign.py')] },
  ruby: { cmd: 'ruby', args: [path.join(EX, 'ruby/confab_sign.rb')] },
  go: { cmd: goBin, args: [] },
};
const LANGS = Object.keys(CLI);

function cli(lang, secret, ...args) {
  const { cmd, args: pre } = CLI[lang];
  return run(cmd, [...pre, ...args], { CONFAB_SECRET: secret });
}

function driver(cmd, code, libDir, cases) {
  const r = spawnSync(cmd, [...code, libDir], { input: JSON.stringify(cases), encoding: 'utf8', timeout: 30000 });
  if (r.error?.code === 'ENOENT') assert.fail(`${cmd} is not installed: ${TOOLCHAIN_HINT}`);
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${cmd} driver failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

// cases: [{op: 'hash', secret, user} | {op: 'token', secret, workspace, user, exp}] -> [{value} | {error}]
function signAll(lang, cases) {
  switch (lang) {
    case 'node':
      return cases.map((c) => {
        try {
          return { value: c.op === 'hash' ? nodeLib.userHash(c.secret, c.user)
            : nodeLib.identityToken(c.secret, c.workspace, c.user, c.exp) };
        } catch (e) {
          return { error: e.message };
        }
      });
    case 'python': return driver('python3', ['-c', PY_DRIVER], path.join(EX, 'python'), cases);
    case 'ruby': return driver('ruby', ['-e', RB_DRIVER], path.join(EX, 'ruby'), cases);
    case 'go':
      return cases.map((c) => {
        const r = c.op === 'hash' ? cli('go', c.secret, 'hash', c.user)
          : cli('go', c.secret, 'token', c.workspace, c.user, String(c.exp));
        return r.status === 0 ? { value: r.stdout.trim() } : { error: r.stderr.trim() };
      });
    default: throw new Error(lang);
  }
}

const CONTROL_MSG = 'user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)';

test('confab-server sign refuses a user id with a control character, with the same message', T, () => {
  const file = path.join(dir, 'secret-ctl');
  writeFileSync(file, 'k');
  for (const user of ['v1\ndemo\nalice\n1767225600', 'tab\there', 'next-line\u0085']) {
    for (const ttl of [[], ['--ttl', '60']]) {
      const r = run(SERVER_BIN, ['sign', '--secret-file', file, '--workspace', 'demo', '--user', user, ...ttl]);
      assert.equal(r.status, 2, r.stdout);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim(), `confab-server: sign: ${CONTROL_MSG}`);
    }
  }
});

// Expected values, computed once by the core: hashes, and tokens whose exp the core chose.
const expected = [];
before(async () => {
  nodeLib = await import(path.join(EX, 'node/confab_sign.mjs'));
  // One build (about a second with a cold cache); never a toolchain download.
  const goEnv = { GOCACHE: path.join(dir, 'gocache'), GOPATH: path.join(dir, 'gopath'), GOTOOLCHAIN: 'local', GOFLAGS: '' };
  const r = run('go', ['build', '-o', goBin, path.join(EX, 'go/confab_sign.go')], goEnv);
  assert.equal(r.status, 0, `go build failed:\n${r.stderr}`);
  for (const secret of SECRETS) {
    for (const [i, user] of USERS.entries()) {
      const workspace = WORKSPACES[i % WORKSPACES.length];
      const tokenText = coreSign(secret, workspace, user, 3600);
      const exp = Number(/^v1\.(\d+)\./.exec(tokenText)?.[1]);
      assert.ok(exp > 0, tokenText);
      expected.push({ secret, user, workspace, hash: coreSign(secret, workspace, user), token: tokenText, exp });
    }
  }
});

for (const lang of LANGS) {
  describe(`signing example: ${lang}`, () => {
    test('user hashes and v1 tokens (same exp) equal the core\'s for every secret, workspace and user', T, () => {
      const cases = expected.flatMap((e) => [
        { op: 'hash', secret: e.secret, user: e.user },
        { op: 'token', secret: e.secret, workspace: e.workspace, user: e.user, exp: e.exp },
      ]);
      const got = signAll(lang, cases);
      assert.equal(got.length, cases.length);
      expected.forEach((e, i) => {
        const what = `${JSON.stringify(e.user)} with secret ${JSON.stringify(e.secret)}`;
        assert.deepEqual(got[2 * i], { value: e.hash }, `${lang} hash of ${what}`);
        assert.deepEqual(got[2 * i + 1], { value: e.token }, `${lang} token of ${what} in ${e.workspace}`);
      });
    });

    test('refuses what the server would refuse: an empty user, a newline in an id', T, () => {
      const cases = [{ op: 'hash', secret: 'k', user: '' },
        { op: 'token', secret: 'k', workspace: 'demo', user: '', exp: 100 },
        { op: 'token', secret: 'k', workspace: 'de\nmo', user: 'alice', exp: 100 }];
      const got = signAll(lang, cases);
      got.forEach((g, i) => {
        assert.equal(g.value, undefined, `${lang} ${JSON.stringify(cases[i])} should fail`);
        assert.match(g.error, /must not (be empty|contain a newline)/);
      });
    });

    // A user id with a control character is refused by every signer with the same words as
    // `confab-server sign`, POST /v1/identity and the SDK: such ids are how a user hash could be
    // made to equal a token (the derived keys' labels and the token messages all hold one).
    test('refuses user ids with control characters, with the message of every signer', T, () => {
      const users = ['v1\ndemo\nalice\n1767225600', 'at1\ndemo\nbackend\n1767225600000', 'tab\there',
        'del\x7f', 'next-line\u0085'];
      if (lang !== 'go') users.push('confab-key\0identity-token-v1');  // Go's CLI cannot take a NUL argument
      const cases = users.flatMap((user) => [{ op: 'hash', secret: 'k', user },
        { op: 'token', secret: 'k', workspace: 'demo', user, exp: 100 }]);
      const got = signAll(lang, cases);
      got.forEach((g, i) => {
        assert.equal(g.value, undefined, `${lang} ${JSON.stringify(cases[i])} should fail`);
        assert.match(g.error, new RegExp(`^(confab_sign: )?${CONTROL_MSG.replace(/[()+]/g, '\\$&')}$`));
      });
    });

    test('the CLI reads the secret from CONFAB_SECRET and prints the hash or token', T, () => {
      const e = expected.find((x) => x.user === 'Zoë Ångström');
      const hash = cli(lang, e.secret, 'hash', e.user);
      assert.equal(hash.status, 0, hash.stderr);
      assert.equal(hash.stdout, `${e.hash}\n`);
      const tok = cli(lang, e.secret, 'token', e.workspace, e.user, String(e.exp));
      assert.equal(tok.stdout, `${e.token}\n`);
      const noSecret = cli(lang, '', 'hash', 'alice');
      assert.equal(noSecret.status, 2);
      assert.match(noSecret.stderr, /CONFAB_SECRET/);
    });
  });
}

describe('signing examples against a running server', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); server?.cleanup(); });

  test('each language\'s hash and token open a non-public app; a past exp is refused', T, async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    for (const lang of LANGS) {
      const user = `${lang}-user@example.com`;
      const [hash, token, old] = signAll(lang, [
        { op: 'hash', secret: WS.demo.secret, user },
        { op: 'token', secret: WS.demo.secret, workspace: 'demo', user, exp },
        { op: 'token', secret: WS.demo.secret, workspace: 'demo', user, exp: exp - 3600 },
      ]).map((g) => g.value);
      for (const [value, status] of [[hash, 200], [token, 200], [old, 401]]) {
        const r = await getJson(`${server.url}/v1/apps/story`, {
          'X-Confab-Workspace': 'demo', 'X-Confab-User': user, 'X-Confab-User-Hash': value,
        });
        assert.equal(r.status, status, `${lang} ${value}: ${r.text}`);
        if (status === 401) assert.equal(r.json.code, 'identity_expired');
      }
    }
  });
});
