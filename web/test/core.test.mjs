// The wasm core's JS facade (dist build): the transcript's exactly-once rule and state as JS sees
// them, strings across the boundary, use after delete(), and the FinalizationRegistry backstop
// that frees handles dropped without delete().
import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { importEsm } from './helpers.mjs';

let core;
before(async () => {
  const { default: Confab } = await importEsm();
  core = await Confab._wasmCore();
});

// Applies events given as [seq, type, data] and returns the verdicts.
const applyAll = (t, events) => events.map(([seq, type, data]) => t.apply(seq, type, data));

it('a transcript applies each seq once, reports duplicates and gaps, and assembles the reply', () => {
  const t = core.transcript();
  try {
    assert.equal(t.lastSeq(), 0);
    assert.equal(t.status(), 'streaming');
    assert.deepEqual(applyAll(t, [
      [1, 'delta', { content: 'Hel' }],
      [2, 'delta', { content: 'lo' }],
      [1, 'delta', { content: 'Hel' }],
      [4, 'delta', { content: '!' }],
    ]), ['applied', 'applied', 'duplicate', 'gap']);
    assert.equal(t.lastSeq(), 2, 'a gap changes nothing: resume from 2');
    assert.equal(t.text(), 'Hello');
    assert.deepEqual(applyAll(t, [
      [3, 'error', { error: 'upstream failed', code: 'upstream_error' }],
      [4, 'completed', { status: 'error', output: null }],
      [4, 'completed', { status: 'error', output: null }],
    ]), ['applied', 'applied', 'duplicate']);
    assert.equal(t.done(), true);
    assert.equal(t.status(), 'error');
    assert.equal(t.result(), 'Hello', 'no string output: the streamed text');
    assert.equal(t.error(), 'upstream failed');
    assert.equal(t.errorCode(), 'upstream_error');
    assert.equal(t.sessionId(), undefined);
  } finally {
    t.delete();
  }
});

it('a transcript continues after events shown before a reload (non-ASCII text kept), only when fresh', () => {
  const t = core.transcript();
  try {
    t.continueAfter(3, 'Grüße 🐉 ');
    assert.equal(t.lastSeq(), 3, 'a reconnection resumes after event 3');
    assert.deepEqual(applyAll(t, [
      [2, 'agent-response', { token: 'old' }],
      [5, 'agent-response', { token: 'later' }],
      [4, 'agent-response', { token: 'und mehr' }],
    ]), ['duplicate', 'gap', 'applied']);
    assert.equal(t.text(), 'Grüße 🐉 und mehr');
    assert.throws(() => t.continueAfter(9, 'x'), (e) => e.code === 'invalid_argument' && /before any event/.test(e.message));
    const fresh = core.transcript();
    try {
      assert.throws(() => fresh.continueAfter(-1, ''), (e) => e.code === 'invalid_argument');
    } finally {
      fresh.delete();
    }
    assert.equal(t.text(), 'Grüße 🐉 und mehr', 'nothing changed');
  } finally {
    t.delete();
  }
});

it('invalid events throw invalid_response with the reason, and change nothing', () => {
  const t = core.transcript();
  try {
    t.apply(1, 'delta', { content: 'a' });
    const bad = (seq, type, data, re) => assert.throws(() => t.apply(seq, type, data),
      (e) => e.code === 'invalid_response' && re.test(e.message));
    bad(2, 'delta', { content: 42 }, /^event 2 \(delta\): no "content" string$/);
    bad(2, 'agent-action', { tool_input: {} }, /no "tool" string/);
    bad(2, 'completed', { status: 'running' }, /status "running" is not success, error or cancelled/);
    bad(0, 'delta', { content: 'x' }, /sequence numbers start at 1/);
    bad(1.5, 'delta', { content: 'x' }, /sequence numbers start at 1/);
    assert.equal(t.lastSeq(), 1);
    assert.equal(t.text(), 'a');
    t.apply(2, 'completed', { status: 'success', output: 'a' });
    bad(3, 'delta', { content: 'late' }, /after the completed event 2/);
  } finally {
    t.delete();
  }
});

it('a chat turn: history, tool actions, the final result and the session id', () => {
  const t = core.transcript();
  try {
    t.addMessage('system', 'be brief');
    t.setSessionId('se_header');
    t.beginTurn('What is 🐉 in ünïcödé?');
    applyAll(t, [
      [1, 'agent-response', { token: 'Let me check. ' }],
      [2, 'agent-action', { tool: 'lookup', tool_input: { char: '🐉', n: [1, 2] } }],
      [3, 'agent-action-error', { error: 'lookup is down' }],
      [4, 'agent-response', { token: 'It is U+1F409 🐉.' }],
    ]);
    assert.deepEqual(t.messages(), [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'What is 🐉 in ünïcödé?' },
    ]);
    assert.equal(t.text(), 'Let me check. It is U+1F409 🐉.');
    assert.deepEqual(t.actions(), [
      { kind: 'call', seq: 2, tool: 'lookup', tool_input: { char: '🐉', n: [1, 2] } },
      { kind: 'error', seq: 3, error: 'lookup is down' },
    ]);
    assert.equal(t.sessionId(), 'se_header');
    t.apply(5, 'completed', { result: 'It is U+1F409 🐉.', sessionId: 'se_final' });
    assert.equal(t.status(), 'success', 'no status in a chat completion: success');
    assert.equal(t.result(), 'It is U+1F409 🐉.');
    assert.equal(t.sessionId(), 'se_final');
    assert.deepEqual(t.messages().at(-1), { role: 'assistant', content: 'It is U+1F409 🐉.' });
    // The next turn is a new run: seq 1 again.
    t.beginTurn('thanks');
    assert.equal(t.lastSeq(), 0);
    assert.equal(t.apply(1, 'agent-response', { token: 'ok' }), 'applied');
    assert.throws(() => t.addMessage('robot', 'x'), (e) => e.code === 'invalid_argument' && /^role:/.test(e.message));
  } finally {
    t.delete();
  }
});

it('strings cross the boundary intact: empty, NUL, lone surrogates (as U+FFFD), large', () => {
  const t = core.transcript();
  try {
    const pieces = ['', 'a\u0000b', '\ud800', 'x'.repeat(1 << 20), '日本語'];
    pieces.forEach((content, i) => t.apply(i + 1, 'delta', { content }));
    assert.equal(t.text(), 'a\u0000b\ufffd' + 'x'.repeat(1 << 20) + '日本語');
    t.beginTurn('');
    assert.equal(t.messages()[0].content, '');
  } finally {
    t.delete();
  }
});

it('a deleted transcript refuses use; delete() twice is safe', () => {
  const t = core.transcript();
  t.delete();
  t.delete();
  assert.throws(() => t.apply(1, 'delta', { content: 'x' }), (e) => e.code === 'deleted');
  assert.throws(() => t.text(), (e) => e.code === 'deleted');
});

// The SSE facade against a byte-level transcription of the spec: lines split at CR, LF or CRLF
// bytes, each field decoded on its own with TextDecoder (invalid UTF-8 -> U+FFFD, a U+FEFF inside
// a field kept), as an EventSource would.
function referenceEvents(bytes) {
  const dec = new TextDecoder('utf-8', { ignoreBOM: true });
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const out = [];
  let data = null;
  let type = [];
  let id = [];
  let lastId = [];
  for (;;) {
    let j = i;
    while (j < bytes.length && bytes[j] !== 10 && bytes[j] !== 13) j++;
    if (j === bytes.length) break;
    const line = Array.from(bytes.subarray(i, j));
    i = j + 1;
    if (bytes[j] === 13 && bytes[i] === 10) i++;
    if (line.length === 0) {
      lastId = id;
      if (data) out.push({ type: type.length ? dec.decode(new Uint8Array(type)) : 'message', data: dec.decode(new Uint8Array(data.slice(0, -1))), id: dec.decode(new Uint8Array(lastId)) });
      data = null;
      type = [];
      continue;
    }
    if (line[0] === 58) continue;
    const colon = line.indexOf(58);
    const field = String.fromCharCode(...(colon < 0 ? line : line.slice(0, colon)));
    let value = colon < 0 ? [] : line.slice(colon + 1);
    if (value[0] === 32) value = value.slice(1);
    if (field === 'data') data = [...(data || []), ...value, 10];
    else if (field === 'event') type = value;
    else if (field === 'id' && !value.includes(0)) id = value;
  }
  return out;
}

function feedAll(p, bytes, cuts) {
  const events = [];
  let start = 0;
  for (const end of [...cuts, bytes.length]) {
    // A copy that is then clobbered: the facade must not keep views into what it was given.
    const chunk = bytes.slice(start, end);
    events.push(...p.feed(chunk));
    chunk.fill(0x3a);
    start = end;
  }
  p.finish();
  return events;
}

it('the SSE parser facade gives what the spec gives, at every split, non-ASCII and invalid UTF-8 included', () => {
  const enc = new TextEncoder();
  const cat = (...parts) => {
    const arrays = parts.map((x) => (typeof x === 'string' ? enc.encode(x) : Uint8Array.from(x)));
    const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of arrays) { out.set(a, at); at += a.length; }
    return out;
  };
  const streams = [
    cat('\ufeffevent: agent-response\nid: 1\ndata: {"token":"naïve café"}\n\n',
      'event: dé\r\nid: 2é\r\ndata: 日本語\r\ndata: 🐉 two lines\r\n\r\n',
      ': heartbeat\n\ndata: \ufeffkept BOM\rid: 3\r\rdata\n\nretry: 10\ndata: no id change\n\n'),
    // Invalid UTF-8: a truncated sequence ending one field before a continuation byte starting
    // the next must become U+FFFD in each, never one character across the two.
    cat('event: x', [0xe2, 0x82], '\nid: ', [0xac], '7\ndata: ok ', [0xff, 0xc0, 0xaf], ' ', [0xed, 0xa0, 0x80], '\n\n',
      'data: after the bad one é\n\n', 'data: ', [0xf0, 0x9f, 0x90], '\n\n', 'data: \ufeffy\n\n',
      // 4-byte leads with 3 continuation bytes that are not a code point: 4 U+FFFD each.
      'id: ', [0xf0, 0x80, 0x80, 0x80], '\ndata: ', [0xf4, 0x90, 0x80, 0x80], '🐉\n\n'),
    // U+FEFF starting the first field handed back: part of the type, not a BOM to drop.
    cat('event: \ufefftyped\ndata: \ufeffx\n\n'),
  ];
  for (const bytes of streams) {
    const expected = referenceEvents(bytes);
    assert.ok(expected.length >= 1);
    const p = core.sseParser();
    try {
      assert.deepEqual(feedAll(p, bytes, []), expected, 'whole');
      for (let i = 0; i <= bytes.length; i++) assert.deepEqual(feedAll(p, bytes, [i]), expected, `split at ${i}`);
      assert.deepEqual(feedAll(p, bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)), expected, 'byte by byte');
    } finally {
      p.delete();
    }
  }
  assert.deepEqual(referenceEvents(streams[1]).map((e) => e.data), ['ok \ufffd\ufffd\ufffd \ufffd\ufffd\ufffd', 'after the bad one é', '\ufffd', '\ufeffy', '\ufffd\ufffd\ufffd\ufffd🐉'],
    'the reference decodes as TextDecoder does');
});

it('the SSE parser facade hands back a batch of many events, and the events around a dropped one', () => {
  const p = core.sseParser(1 << 20);
  try {
    const enc = new TextEncoder();
    let body = '';
    for (let i = 1; i <= 2000; i++) body += `event: agent-response\nid: ${i}\ndata: {"token":"t${i} é🐉"}\n\n`;
    const events = p.feed(enc.encode(body));
    assert.equal(events.length, 2000);
    assert.deepEqual(events[1999], { type: 'agent-response', data: '{"token":"t2000 é🐉"}', id: '2000' });
    assert.equal(JSON.parse(events[41].data).token, 't42 é🐉');
    assert.throws(() => p.feed(enc.encode('data: before\n\nid: 9\ndata: ' + 'x'.repeat((1 << 20) + 1) + '\n\ndata: after\n\n')), (e) => {
      assert.equal(e.code, 'sse_event_too_large');
      assert.match(e.message, /event of 1048579 bytes .* limit of 1048576 bytes .*maxEventBytes/);
      // Only the oversized event is dropped: its id took effect, the next event came through.
      assert.deepEqual(e.events, [{ type: 'message', data: 'before', id: '2000' }, { type: 'message', data: 'after', id: '9' }]);
      return true;
    });
    // No sticky error: the parser goes on.
    assert.deepEqual(p.feed(enc.encode('data: next\n\n')), [{ type: 'message', data: 'next', id: '9' }]);
  } finally {
    p.delete();
  }
});

it('the default SSE limit is 16 MiB: a 2 MiB event passes, a comment of any length is skipped', () => {
  const p = core.sseParser();
  try {
    const enc = new TextEncoder();
    const big = 'y'.repeat(2 << 20);
    assert.deepEqual(p.feed(enc.encode(`data: ${big}\n\n`)).map((e) => e.data.length), [2 << 20]);
    const small = core.sseParser(64);
    try {
      assert.deepEqual(small.feed(enc.encode(`:${'c'.repeat(1 << 16)}\nx-extra: ${'z'.repeat(1 << 16)}\ndata: ok\n\n`)),
        [{ type: 'message', data: 'ok', id: '' }]);
    } finally {
      small.delete();
    }
  } finally {
    p.delete();
  }
});

it('handles dropped without delete() are freed by the FinalizationRegistry after GC', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  // Settle first: earlier tests' garbage (and their finalizers) must not count here.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  const baseline = core.heapUsed();

  // Some handles are deleted explicitly: delete() must unregister them, or the backstop would
  // free them a second time (emmalloc would then count less than the baseline, or abort).
  (() => {
    for (let i = 0; i < 200; i++) {
      const t = core.transcript();
      t.beginTurn('question ' + i);
      for (let s = 1; s <= 20; s++) t.apply(s, 'agent-response', { token: 'token '.repeat(10) });
      const p = core.sseParser();
      p.feed(new TextEncoder().encode('id: 1\ndata: partial event held in the parser'));
      if (i % 4 === 0) {
        t.delete();
        p.delete();
      }
    }
  })();
  const held = core.heapUsed();
  assert.ok(held > baseline + 100000, `dropped handles hold wasm memory (${held - baseline} bytes)`);

  let now = held;
  for (let i = 0; i < 100 && now !== baseline; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));  // finalizers run as tasks after a GC
    now = core.heapUsed();
  }
  assert.equal(now, baseline, 'the wasm heap is back where it was');
});
