// Tests of the Embind module (wasm/bindings.cpp) under Node: identity against node:crypto and the
// native confab-server, SSE split at every byte, protocol errors, and that nothing leaks.
//
// Memory rule for users of the module: every Embind *class* instance (here only `SseParser`) owns
// C++ memory that JS's garbage collector cannot see. Call `.delete()` when done with it; after that
// any call on it throws. Plain results (strings, {ok, code, message, ...} objects, event arrays) are
// copies and need nothing. The "leaks" tests below prove both halves on the malloc heap.
//
// Run: node --test tests/web/   (module from build/wasm-release/wasm, or set CONFAB_WASM_DIR)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { loadCore, makeRandom, repoRoot } from './wasm-core.mjs';

let core;
before(async () => {
  core = await loadCore();
});

const hmacHex = (key, msg) => crypto.createHmac('sha256', key).update(msg).digest('hex');
const shaHex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const fill = (byte, n) => Buffer.alloc(n, byte);
const utf8 = (s) => new Uint8Array(Buffer.from(s, 'utf8'));

// ---------------------------------------------------------------------------------------------
describe('identity', () => {
  test('SHA-256 matches the NIST vectors and node:crypto', () => {
    const vectors = [
      ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
      ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
      [
        'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
        '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
      ],
      [
        'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
        'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
      ],
      ['a'.repeat(1_000_000), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0'],
    ];
    for (const [msg, want] of vectors) {
      assert.equal(core.sha256Hex(msg), want, `sha256 of ${msg.length} bytes`);
      assert.equal(shaHex(msg), want);
    }
  });

  test('HMAC-SHA256 matches the RFC 4231 vectors and node:crypto', () => {
    const key4 = Buffer.from(Array.from({ length: 25 }, (_, i) => i + 1));
    const vectors = [
      [fill(0x0b, 20), Buffer.from('Hi There'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
      [Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
      [fill(0xaa, 20), fill(0xdd, 50), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
      [key4, fill(0xcd, 50), '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'],
      // Test case 5 specifies only the first 128 bits.
      [fill(0x0c, 20), Buffer.from('Test With Truncation'), 'a3b6167473100ee06e0c796c2955552b', 32],
      [fill(0xaa, 131), Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
      [
        fill(0xaa, 131),
        Buffer.from('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
        '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
      ],
    ];
    for (const [key, msg, want, prefix = 64] of vectors) {
      // Binary keys and messages go in as Uint8Array (raw bytes, not UTF-8 of a string).
      const got = core.hmacSha256Hex(new Uint8Array(key), new Uint8Array(msg));
      assert.equal(got.slice(0, prefix), want);
      assert.equal(got, hmacHex(key, msg));
    }
  });

  test('2000 random keys and messages (0..1000 bytes, keys past the block size) agree with node:crypto', () => {
    const rnd = makeRandom(0xc0f4b);
    let longKeys = 0;
    for (let i = 0; i < 2000; i++) {
      const key = rnd.bytes(rnd.int(0, i % 4 === 0 ? 300 : 100));
      const msg = rnd.bytes(rnd.int(0, 1000));
      if (key.length > 64) longKeys++;
      assert.equal(core.hmacSha256Hex(key, msg), hmacHex(key, msg), `case ${i}: key ${key.length} B, msg ${msg.length} B`);
      assert.equal(core.sha256Hex(msg), shaHex(msg), `case ${i}: sha256 of ${msg.length} B`);
    }
    assert.ok(longKeys > 200, `only ${longKeys} keys were longer than a block`);
  });

  test('userHash and issueToken refuse control characters with the message of every signer', () => {
    for (const bad of ['a\nb', 'nul\0', 'tab\t', 'del\x7f', 'c1\u0085']) {
      const msg = 'user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)';
      assert.deepEqual(core.userHash('s', bad), { ok: false, value: '', code: 'user_id_invalid', message: msg });
      assert.equal(core.issueToken('s', 'ws', bad, 100).message, msg);
    }
    assert.equal(core.userHash('s', '').code, 'user_id_invalid');
  });

  test('userHash is HMAC-SHA256(secret, userId) over UTF-8 strings', () => {
    const cases = [
      ['demo-secret', 'alice'],
      ['sécret ☃', 'Zoë 👩‍💻'],
      ['k'.repeat(200), 'user-with-a-long-key'],
    ];
    for (const [secret, user] of cases) {
      assert.equal(core.userHash(secret, user).value, hmacHex(Buffer.from(secret), Buffer.from(user)));
      assert.match(core.userHash(secret, user).value, /^[0-9a-f]{64}$/);
    }
  });

  const serverBin = process.env.CONFAB_SERVER_BIN ?? path.join(repoRoot, 'build', 'native-release', 'confab-server');
  test('the native confab-server sign prints what the wasm module computes', () => {
    // `make test` builds the native preset first, so a missing binary is a failure, not a skip.
    assert.ok(fs.existsSync(serverBin), `${serverBin} is missing: build the native preset first or set CONFAB_SERVER_BIN`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'confab-wasm-sign-'));
    try {
      const cases = [
        ['demo-secret', 'demo', 'alice'],
        ['sécret ☃ with spaces', 'ws_1', 'Zoë 👩‍💻'],
        ['k'.repeat(100), 'acme', 'user@example.com'],
      ];
      cases.forEach(([secret, workspace, user], i) => {
        const file = path.join(dir, `secret-${i}`);
        fs.writeFileSync(file, secret);
        const run = (...extra) =>
          execFileSync(serverBin, ['sign', '--secret-file', file, '--workspace', workspace, '--user', user, ...extra], {
            encoding: 'utf8',
            timeout: 10_000,
          }).trim();
        assert.equal(run(), core.userHash(secret, user).value, `hash for case ${i}`);
        // A native token: the wasm module signs the same bytes for its expiry and accepts it.
        const token = run('--ttl', '3600');
        const m = /^v1\.(\d+)\.[0-9a-f]{64}$/.exec(token);
        assert.ok(m, `token format: ${token}`);
        const exp = Number(m[1]);
        assert.equal(core.issueToken(secret, workspace, user, exp).value, token);
        assert.deepEqual(core.verifyIdentity(workspace, secret, user, token, exp - 1), { ok: true, code: '', message: '' });
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('tokens', () => {
    const secret = 'tok-secret';
    const exp = 1_900_000_000;

    test('issueToken has the v1 format and MAC of DESIGN.md', () => {
      const r = core.issueToken(secret, 'ws', 'bob', exp);
      assert.equal(r.ok, true);
      // Keyed with the token key derived from the secret, never the secret itself (domain separation).
      const key = crypto.createHmac('sha256', Buffer.from(secret)).update('confab-key\0identity-token-v1').digest();
      const mac = crypto.createHmac('sha256', key).update(`v1\nws\nbob\n${exp}`).digest('hex');
      assert.equal(r.value, `v1.${exp}.${mac}`);
    });

    test('verifyIdentity: ok, expired, wrong user/workspace/key, malformed, rotation', () => {
      const token = core.issueToken(secret, 'ws', 'bob', exp).value;
      const verify = (...a) => core.verifyIdentity(...a);
      assert.deepEqual(verify('ws', secret, 'bob', token, exp - 1), { ok: true, code: '', message: '' });
      // Expired once now reaches exp.
      for (const now of [exp, exp + 1]) {
        const r = verify('ws', secret, 'bob', token, now);
        assert.equal(r.ok, false);
        assert.equal(r.code, 'identity_expired');
        assert.match(r.message, /expired/);
      }
      assert.equal(verify('ws', secret, 'mallory', token, exp - 1).code, 'identity_bad_signature');
      assert.equal(verify('other-ws', secret, 'bob', token, exp - 1).code, 'identity_bad_signature');
      assert.equal(verify('ws', 'wrong-key', 'bob', token, exp - 1).code, 'identity_bad_signature');
      for (const bad of ['v1.', 'v1.123', `v1.0${exp}.${'a'.repeat(64)}`, `v1.${exp}.zz`, `v1.-5.${'a'.repeat(64)}`, 'nope', '']) {
        const r = verify('ws', secret, 'bob', bad, exp - 1);
        assert.equal(r.code, 'identity_malformed', `presented ${JSON.stringify(bad)}`);
        assert.ok(r.message.length > 0);
      }
      // Rotation: a token of the old key still verifies while both secrets are active.
      assert.equal(verify('ws', ['new-key', secret], 'bob', token, exp - 1).ok, true);
      assert.equal(verify('ws', ['new-key'], 'bob', token, exp - 1).code, 'identity_bad_signature');
      assert.equal(verify('ws', [], 'bob', token, exp - 1).code, 'identity_no_secrets');
      // Legacy user hashes are accepted wherever a token is.
      assert.equal(verify('ws', secret, 'bob', core.userHash(secret, 'bob').value, exp).ok, true);
      assert.equal(verify('ws', secret, 'bob', core.userHash(secret, 'bob').value.toUpperCase(), exp).ok, true);
      assert.equal(verify('ws', secret, 'eve', core.userHash(secret, 'bob').value, exp).code, 'identity_bad_signature');
    });

    test('bad arguments give invalid_argument, not a thrown or silent result', () => {
      for (const x of [1.5, NaN, Infinity, 2 ** 60]) {
        const r = core.issueToken(secret, 'ws', 'bob', x);
        assert.equal(r.ok, false);
        assert.equal(r.code, 'invalid_argument');
        assert.match(r.message, /expiresAt/);
      }
      const token = core.issueToken(secret, 'ws', 'bob', exp).value;
      assert.equal(core.verifyIdentity('ws', secret, 'bob', token, 0.5).code, 'invalid_argument');
      assert.match(core.verifyIdentity('ws', [secret, 7], 'bob', token, 1).message, /secrets\[1\]/);
      assert.equal(core.verifyIdentity('ws', { secret }, 'bob', token, 1).code, 'invalid_argument');
    });
  });
});

// ---------------------------------------------------------------------------------------------
describe('SSE', () => {
  // Every rule at once: BOM, comment, CRLF/CR/LF, retry (valid and not), id (and one with NUL,
  // ignored), multi-line data, a field without colon, empty event type, an event with no data
  // (nothing dispatched), 2-, 3- and 4-byte UTF-8, and a trailing incomplete event.
  const stream =
    '\uFEFF: heartbeat\r\n' +
    'retry: 2500\r\n' +
    'retry: 12x\r\n' +
    'id: 1\r\n' +
    'event: greeting\r\n' +
    'data: hello\r\n' +
    'data: world 😀\r\n' +
    '\r\n' +
    'data: second\r\r' +
    'id: 2\n' +
    'data:no-space\n' +
    'data:  two spaces\n' +
    '\n' +
    'event: nothing\n\n' +
    'event: empty-data\n' +
    'data\n' +
    '\n' +
    'id: bad\0id\n' +
    'event:\n' +
    'data: é€𝄞\n' +
    '\n' +
    'data: trailing incomplete';
  const expected = [
    { type: 'greeting', data: 'hello\nworld 😀', id: '1' },
    { type: 'message', data: 'second', id: '1' },
    { type: 'message', data: 'no-space\n two spaces', id: '2' },
    { type: 'empty-data', data: '', id: '2' },
    { type: 'message', data: 'é€𝄞', id: '2' },
  ];
  const bytes = utf8(stream);

  // Feeds chunks to a fresh parser and returns every event, checking each feed succeeded.
  function parseChunks(chunks, maxEventBytes = 1 << 20) {
    const p = new core.SseParser(maxEventBytes);
    try {
      const events = [];
      for (const c of chunks) {
        const r = p.feed(c);
        assert.equal(r.ok, true, r.message);
        events.push(...r.events);
      }
      return { events, lastEventId: p.lastEventId(), retryMs: p.retryMs(), comments: p.commentsSeen() };
    } finally {
      p.delete();
    }
  }

  test('a whole stream gives the WHATWG events', () => {
    const r = parseChunks([stream]);
    assert.deepEqual(r.events, expected);
    assert.equal(r.lastEventId, '2');
    assert.equal(r.retryMs, 2500);
    assert.equal(r.comments, 1);
    assert.deepEqual(parseChunks([bytes]).events, expected, 'a Uint8Array gives the same as a string');
    assert.deepEqual(parseChunks([bytes.buffer]).events, expected, 'an ArrayBuffer too');
  });

  test('split at every byte boundary (Uint8Array chunks) gives identical events', () => {
    for (let i = 0; i <= bytes.length; i++) {
      const r = parseChunks([bytes.subarray(0, i), bytes.subarray(i)]);
      assert.deepEqual(r.events, expected, `split at byte ${i}`);
      assert.equal(r.lastEventId, '2');
      assert.equal(r.retryMs, 2500);
    }
    const oneByOne = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    assert.deepEqual(parseChunks(oneByOne).events, expected, 'one byte per chunk');
  });

  test('every pair of split points in a short CRLF + emoji stream', () => {
    const short = utf8('id: 9\r\ndata: a😀b\r\n\r\ndata: x\r\r');
    const want = [
      { type: 'message', data: 'a😀b', id: '9' },
      { type: 'message', data: 'x', id: '9' },
    ];
    for (let i = 0; i <= short.length; i++) {
      for (let j = i; j <= short.length; j++) {
        const r = parseChunks([short.subarray(0, i), short.subarray(i, j), short.subarray(j)]);
        assert.deepEqual(r.events, want, `splits at ${i}, ${j}`);
      }
    }
  });

  test('a 4-byte emoji split 1+3, 2+2 and 3+1 arrives whole', () => {
    const emoji = utf8('😀');
    assert.equal(emoji.length, 4);
    for (let k = 1; k < 4; k++) {
      const chunks = [utf8('data: <'), emoji.subarray(0, k), emoji.subarray(k), utf8('>\n\n')];
      const p = new core.SseParser(1024);
      try {
        const events = chunks.flatMap((c) => p.feed(c).events);
        assert.deepEqual(events, [{ type: 'message', data: '<😀>', id: '' }], `split after byte ${k}`);
      } finally {
        p.delete();
      }
    }
  });

  test('an event over maxEventBytes is an error for that event only; the stream goes on', () => {
    const p = new core.SseParser(64);
    try {
      const r = p.feed('data: small\n\ndata: ' + 'x'.repeat(100) + '\n\ndata: after\n\n');
      assert.equal(r.ok, false);
      assert.equal(r.code, 'sse_event_too_large');
      assert.match(r.message, /event of 101 bytes .*limit of 64 bytes/);
      assert.deepEqual(r.events, [{ type: 'message', data: 'small', id: '' }, { type: 'message', data: 'after', id: '' }],
        'the events around the dropped one are delivered');
      assert.deepEqual(p.feed('data: fine\n\n'), { ok: true, code: '', message: '', events: [{ type: 'message', data: 'fine', id: '' }] },
        'no sticky error');
      // A line that never ends is not buffered past the limit; its event fails when it ends.
      for (let i = 0; i < 20; i++) assert.equal(p.feed('data: 0123456789').ok, true);
      const end = p.feed('\n\ndata: next\n\n');
      assert.equal(end.code, 'sse_event_too_large');
      assert.deepEqual(end.events, [{ type: 'message', data: 'next', id: '' }]);
      // Comments and unknown fields are skipped whatever their length.
      assert.deepEqual(p.feed(':' + 'c'.repeat(1000) + '\nfoo: ' + 'z'.repeat(1000) + '\ndata: ok\n\n').events,
        [{ type: 'message', data: 'ok', id: '' }]);
    } finally {
      p.delete();
    }
  });

  test('finish() discards an incomplete event; reset() forgets id and retry', () => {
    const p = new core.SseParser(1024);
    try {
      assert.deepEqual(p.feed('id: 5\nretry: 10\ndata: partial').events, []);
      p.finish();
      assert.deepEqual(p.feed('\n\n').events, [], 'the partial event is gone');
      assert.equal(p.retryMs(), 10);
      p.reset();
      assert.equal(p.lastEventId(), '');
      assert.equal(p.retryMs(), -1);
      assert.deepEqual(p.feed('data: partial').events, []);
      assert.deepEqual(p.feed('\n\n').events, [{ type: 'message', data: 'partial', id: '' }]);
    } finally {
      p.delete();
    }
  });

  test('sseEncode round-trips through the parser', () => {
    const cases = [
      ['delta', '{"content":"hi"}', '1'],
      ['', 'line one\r\nline two\rline three\nend', '42'],
      ['agent-response', 'emoji 😀 and é', ''],
      ['completed', '', '7'],
    ];
    for (const [type, data, id] of cases) {
      const text = core.sseEncode(type, data, id);
      assert.match(text, /\n\n$/);
      const { events } = parseChunks([text]);
      assert.deepEqual(events, [{ type: type || 'message', data: data.replace(/\r\n|\r/g, '\n'), id }]);
    }
  });

  test('without an argument the parser takes the core default limit (16 MiB per event)', () => {
    const p = new core.SseParser();
    try {
      const big = 'x'.repeat(2 << 20);
      assert.deepEqual(p.feed(`data: ${big}\n\n`).events.map((e) => e.data.length), [big.length]);
      assert.equal(p.feed(`data: ${'y'.repeat(16 << 20)}\n\n`).code, 'sse_event_too_large');
    } finally {
      p.delete();
    }
  });

  test('calls on a deleted parser throw instead of touching freed memory', () => {
    const p = new core.SseParser(1024);
    p.delete();
    assert.throws(() => p.feed('data: x\n\n'));
    assert.throws(() => p.delete());
  });
});

// ---------------------------------------------------------------------------------------------
describe('protocol', () => {
  const decode = (kind, value) => core.decode(kind, typeof value === 'string' ? value : JSON.stringify(value));
  const ok = (kind, value) => {
    const r = decode(kind, value);
    assert.equal(r.ok, true, `${kind}: ${r.code} ${r.message}`);
    assert.equal(r.code, '');
    return JSON.parse(r.value);
  };
  const err = (kind, value, code, pattern) => {
    const r = decode(kind, value);
    assert.equal(r.ok, false, `${kind} should fail: ${JSON.stringify(value).slice(0, 80)}`);
    assert.equal(r.value, '');
    assert.equal(r.code, code, r.message);
    if (pattern) assert.match(r.message, pattern);
    return r;
  };

  test('every kind decodes and is re-encoded (normalised) by the core', () => {
    const exec = ok('execution', {
      id: 'ex_1', appId: 'app_1', version: 'v2', status: 'running', inputs: { topic: 'cats' },
      createdAt: 1700000000000, updatedAt: 1700000000500, unknownField: true,
    });
    assert.deepEqual(exec, {
      id: 'ex_1', appId: 'app_1', version: 'v2', status: 'running', inputs: { topic: 'cats' },
      output: null, createdAt: 1700000000000, updatedAt: 1700000000500,
    });
    assert.deepEqual(ok('executionCreated', { executionId: 'ex_1', status: 'queued' }), { executionId: 'ex_1', status: 'queued' });
    const app = ok('appInfo', { id: 'a', name: 'Poem', type: 'template', inputs: [{ name: 'topic' }] });
    assert.equal(app.type, 'template');
    assert.deepEqual(app.inputs, [{ name: 'topic', type: 'string', required: true }]);
    assert.equal(app.public, false);
    const session = ok('session', {
      id: 's1', appId: 'a', title: 'Hi', createdAt: 1, updatedAt: 2, messageCount: 2,
      messages: [{ role: 'user', content: 'Hi', createdAt: 1 }, { role: 'assistant', content: 'Hello', createdAt: 2 }],
    });
    assert.equal(session.messages[1].role, 'assistant');
    assert.deepEqual(ok('identityRequest', { userId: 'u1', ttlSeconds: 60 }), { userId: 'u1', ttlSeconds: 60 });
    assert.deepEqual(ok('identityResponse', { workspaceId: 'w', userId: 'u', hashedUserId: 'h', expiresAt: 5 }),
      { workspaceId: 'w', userId: 'u', hashedUserId: 'h', expiresAt: 5 });
    assert.deepEqual(ok('apiError', { error: 'Nope', code: 'not_found' }), { error: 'Nope', code: 'not_found' });
    assert.deepEqual(ok('executeRequest', {}), { inputs: {} });
    assert.deepEqual(ok('chatRequest', { message: 'hi', sessionId: null }), { message: 'hi' });
    assert.deepEqual(ok('delta', { content: 'tok' }), { content: 'tok' });
    assert.equal(ok('executionCompleted', { status: 'success', output: 'done' }).output, 'done');
    assert.deepEqual(ok('agentResponse', { token: 'He' }), { token: 'He' });
    assert.deepEqual(ok('agentAction', { tool: 'search', tool_input: { q: 'x' } }), { tool: 'search', tool_input: { q: 'x' } });
    assert.deepEqual(ok('agentActionError', { error: 'tool failed' }), { error: 'tool failed' });
    assert.equal(ok('chatCompleted', { result: 'Hello', sessionId: 's1' }).sessionId, 's1');
    assert.equal(ok('message', { role: 'system', content: 'be nice' }).role, 'system');
  });

  test('errors name the field', () => {
    err('execution', { id: 'e' }, 'invalid_request', /appId is required/);
    err('executionCreated', { executionId: 'e', status: 'bogus' }, 'invalid_request', /status must be one of .*queued/);
    err('executionCreated', { executionId: 5, status: 'queued' }, 'invalid_request', /executionId/);
    err('identityRequest', { userId: 'u', ttlSeconds: 0 }, 'invalid_request', /ttlSeconds/);
    err('identityRequest', { userId: '' }, 'invalid_request', /userId/);
    err('session', {
      id: 's', appId: 'a', title: '', createdAt: 1, updatedAt: 1, messageCount: 2,
      messages: [{ role: 'user', content: 'a' }, { role: 'robot', content: 'b' }],
    }, 'invalid_request', /messages\[1\]\.role/);
    err('appInfo', { id: 'a', name: 'n', type: 'template', inputs: [{ name: 'x', type: 'color' }] }, 'invalid_request', /inputs\[0\]\.type/);
    err('chatRequest', { message: 'hi', inputs: [] }, 'invalid_request', /inputs must be an object/);
    err('executionCompleted', { status: 'running' }, 'invalid_request', /status/);
    err('delta', [], 'invalid_request', /object/);
  });

  test('malformed JSON, huge numbers, size and depth limits never crash', () => {
    err('delta', '{"content": ', 'invalid_json', /byte \d+/);
    err('delta', '{"content": "a"} trailing', 'invalid_json', /byte/);
    err('delta', '', 'invalid_json');
    err('delta', '{"content":"a"}\0{}', 'invalid_json', /NUL/);
    err('execution', '{"id":"e","appId":"a","version":"1","status":"queued","createdAt":1e400,"updatedAt":1}', 'invalid_json', /1e400/);
    err('execution', '{"id":"e","appId":"a","version":"1","status":"queued","createdAt":99999999999999999999999,"updatedAt":1}', 'invalid_request', /createdAt/);
    err('delta', '['.repeat(100_000), 'too_deep', /deeper/);
    err('delta', '{"a":'.repeat(100_000), 'too_deep');
    err('delta', JSON.stringify({ content: 'x'.repeat(1 << 20) }), 'too_large');
    err('nonsense', '{}', 'invalid_argument', /unknown kind 'nonsense'.*execution/);
    // Still healthy afterwards.
    assert.deepEqual(ok('delta', { content: 'still fine' }), { content: 'still fine' });
  });

  test('validateInputs checks required, types and unknown names', () => {
    const specs = JSON.stringify([
      { name: 'topic', type: 'string' },
      { name: 'count', type: 'integer', required: false },
    ]);
    assert.deepEqual(core.validateInputs(specs, '{"topic":"cats","count":3}'), { ok: true, code: '', message: '' });
    const cases = [
      ['{}', /inputs\.topic is required/],
      ['{"topic":1}', /inputs\.topic must be a string/],
      ['{"topic":"t","count":1.5}', /inputs\.count must be an integer/],
      ['{"topic":"t","topc":"typo"}', /inputs\.topc is not an input/],
      ['[]', /inputs must be an object/],
    ];
    for (const [inputs, pattern] of cases) {
      const r = core.validateInputs(specs, inputs);
      assert.equal(r.ok, false, inputs);
      assert.equal(r.code, 'invalid_request');
      assert.match(r.message, pattern);
    }
    assert.equal(core.validateInputs(specs, '{"topic":"t","extra":1}', true).ok, true, 'allowUnknown');
    assert.match(core.validateInputs('{}', '{}').message, /specs must be an array/);
    assert.match(core.validateInputs('[{"type":"string"}]', '{}').message, /specs\[0\]\.name/);
    assert.equal(core.validateInputs(specs, '{"topic":').code, 'invalid_json');
  });
});

// ---------------------------------------------------------------------------------------------
describe('leaks', () => {
  // Grow the heap once up front, so the workloads below never move sbrk (whose bookkeeping would
  // otherwise show up as a few bytes of "use").
  before(() => {
    const p = new core.SseParser(8 << 20);
    p.feed('data: ' + 'x'.repeat(4 << 20) + '\n\n');
    p.delete();
    for (const kind of ['delta', 'execution']) core.decode(kind, '{"content":"x"}');
    core.verifyIdentity('w', ['a', 'b'], 'u', 'x', 1);
  });

  test('the heap measure sees undeleted parsers (so the checks below can fail)', () => {
    const start = core.heapUsedBytes();
    const parsers = Array.from({ length: 100 }, () => new core.SseParser(1024));
    for (const p of parsers) p.feed('data: keep me buffered');
    assert.ok(core.heapUsedBytes() > start + 100 * 16, 'live parsers use heap');
    for (const p of parsers) p.delete();
    assert.equal(core.heapUsedBytes(), start);
  });

  test('10,000 parsers created, fed and deleted leave the heap where it started', () => {
    const start = core.heapUsedBytes();
    for (let i = 0; i < 10_000; i++) {
      const p = new core.SseParser(4096);
      const r = p.feed(`id: ${i}\ndata: event ${i}\n\ndata: half`);
      assert.equal(r.events.length, 1);
      p.delete();
    }
    assert.equal(core.heapUsedBytes(), start);
  });

  test('10,000 events through one parser, one feed each and in one chunk', () => {
    const start = core.heapUsedBytes();
    const p = new core.SseParser(1 << 20);
    let n = 0;
    for (let i = 0; i < 10_000; i++) n += p.feed(`id: ${i}\nevent: delta\ndata: {"content":"token ${i}"}\n\n`).events.length;
    assert.equal(n, 10_000);
    let big = '';
    for (let i = 0; i < 10_000; i++) big += `data: ${i}\n\n`;
    const r = p.feed(big);
    assert.equal(r.events.length, 10_000);
    assert.equal(r.events[9999].data, '9999');
    p.delete();
    assert.equal(core.heapUsedBytes(), start);
  });

  test('functions (success and error paths) allocate nothing that outlives the call', () => {
    const start = core.heapUsedBytes();
    const token = core.issueToken('s', 'w', 'u', 100).value;
    for (let i = 0; i < 1000; i++) {
      core.userHash('secret', `user-${i}`);
      core.verifyIdentity('w', ['s', 'old'], 'u', token, i % 2 ? 50 : 500);
      core.verifyIdentity('w', ['s', 7], 'u', token, 50);
      core.decode('execution', '{"id":"e","appId":"a","version":"1","status":"queued","createdAt":1,"updatedAt":1}');
      core.decode('execution', '{"id":"e"}');
      core.decode('delta', '[[[[');
      core.validateInputs('[{"name":"t"}]', '{"x":1}');
      core.sseEncode('delta', 'a\nb', String(i));
    }
    assert.equal(core.heapUsedBytes(), start);
  });
});

after(() => {
  core = undefined;
});
