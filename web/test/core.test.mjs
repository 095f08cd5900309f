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
