// The SDK (built dist/confab.mjs) against a real confab-server: every method, streaming and not,
// cancel, abort, sessions across instances, errors, 429 retries, resume after a cut connection.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, startCutProxy, importEsm, SECRET, TIGHT_SECRET, hmacHex, storyText,
} from './helpers.mjs';

let server;
let sdk;
let Confab;

const identify = (userId = 'alice', extra = {}) => Confab.identify({
  userId, workspaceId: 'sdk', hashedUserId: hmacHex(SECRET, userId), host: server.url, ...extra,
});

async function openStreams() {
  const text = await (await fetch(server.url + '/metrics')).text();
  const m = /^confab_open_streams (\d+)/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

// Waits (bounded) until `cond()` holds; used for effects that land asynchronously on the server.
async function eventually(cond, what, tries = 200) {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail('never happened: ' + what);
}

before(async () => {
  server = await startServer();
  sdk = await importEsm();
  Confab = sdk.default;
});
after(async () => {
  await server?.stop();
});

describe('identity and apps.get', () => {
  it('userHash matches HMAC-SHA256 from node:crypto', async () => {
    assert.equal(await Confab.userHash(SECRET, 'alice'), hmacHex(SECRET, 'alice'));
    assert.equal(await sdk.userHash('k', 'ünï 🐉'), hmacHex('k', 'ünï 🐉'));
  });

  it('identify() gets an app; new Confab({host, workspaceId}) gets a public one', async () => {
    const app = await identify().apps.get('story');
    assert.equal(app.id, 'story');
    assert.equal(app.type, 'template');
    assert.deepEqual(app.inputs.map((i) => i.name), ['hero', 'topic']);
    const anon = new Confab({ host: server.url, workspaceId: 'sdk' });
    const pub = await anon.apps.get({ appId: 'hello' });
    assert.equal(pub.public, true);
    await assert.rejects(anon.apps.get('story'), (e) => e instanceof sdk.IdentityError && e.status === 401);
  });

  it('a wrong hash is an IdentityError (401) with the server code', async () => {
    const bad = Confab.identify({ userId: 'alice', workspaceId: 'sdk', hashedUserId: hmacHex('wrong', 'alice'), host: server.url });
    await assert.rejects(bad.apps.get('story'), (e) => {
      assert.ok(e instanceof sdk.IdentityError);
      assert.ok(e instanceof sdk.ApiError);
      assert.ok(e instanceof sdk.ConfabError);
      assert.equal(e.status, 401);
      assert.equal(e.code, 'identity_bad_signature');
      return true;
    });
    const garbage = identify('alice', { hashedUserId: 'not-a-hash' });
    await assert.rejects(garbage.apps.get('story'), (e) => e instanceof sdk.IdentityError && e.code === 'identity_malformed');
  });

  it('an unknown app is an ApiError 404', async () => {
    await assert.rejects(identify().apps.get('nope'), (e) => e instanceof sdk.ApiError && e.status === 404 && e.code === 'app_not_found');
    await assert.rejects(identify().apps.execute({ appId: 'nope', stream: true }),
      (e) => e instanceof sdk.ApiError && e.status === 404);
  });
});

describe('apps.execute', () => {
  it('without stream: result() polls to the output; getResults returns it', async () => {
    const c = identify();
    const run = await c.apps.execute({ appId: 'story', payload: { inputs: { hero: 'Ada', topic: 'wasm' } } });
    assert.match(run.executionId, /^ex_/);
    const r = await run.result();
    assert.equal(r.status, 'success');
    assert.equal(r.output, storyText('Ada', 'wasm'));
    assert.equal(r.executionId, run.executionId);
    assert.equal(await run.result(), r, 'result() is memoised');
    const again = await c.apps.getResults({ appId: 'story', executionId: run.executionId });
    assert.equal(again.output, r.output);
    assert.equal(again.status, 'success');
  });

  it('with stream: callbacks see every delta once, in order, in one request', async () => {
    const calls = [];
    const run = await identify().apps.execute({
      appId: 'story', payload: { inputs: { hero: 'Grace', topic: 'streams' } }, stream: true,
      streamCallback: ({ content }) => calls.push(['delta', content]),
      streamCompletedCallback: ({ content }) => calls.push(['done', content]),
    });
    assert.match(run.executionId, /^ex_/);
    const r = await run.result();
    const want = storyText('Grace', 'streams');
    assert.equal(r.status, 'success');
    assert.equal(r.output, want);
    assert.deepEqual(calls.at(-1), ['done', want]);
    const deltas = calls.slice(0, -1);
    assert.ok(deltas.length > 10, 'streamed in many chunks');
    assert.ok(deltas.every(([k]) => k === 'delta'));
    assert.equal(deltas.map(([, c]) => c).join(''), want);
    const stored = await identify().apps.getResults({ appId: 'story', executionId: run.executionId });
    assert.equal(stored.output, want);
  });

  it('maxEventBytes: an event over the caller\'s limit fails the stream, naming the limit and the option', async () => {
    const run = await identify('alice', { maxEventBytes: 40 }).apps.execute({
      appId: 'story', payload: { inputs: { hero: 'Grace', topic: 'streams' } }, stream: true });
    await assert.rejects(run.result(), (e) => {
      assert.equal(e.code, 'sse_event_too_large');
      assert.match(e.message, /over the limit of 40 bytes .*maxEventBytes/);
      return true;
    });
  });

  it('picks the requested version (string or number)', async () => {
    const c = identify();
    const v1 = await (await c.apps.execute({ appId: 'versioned', version: 1 })).result();
    const v2 = await (await c.apps.execute({ appId: 'versioned', version: '2', stream: true })).result();
    const latest = await (await c.apps.execute({ appId: 'versioned', stream: true })).result();
    assert.deepEqual([v1.output, v2.output, latest.output], ['version one', 'version two', 'version two']);
    await assert.rejects(c.apps.execute({ appId: 'versioned', version: '9' }),
      (e) => e instanceof sdk.ApiError && e.status === 404 && e.code === 'version_not_found');
  });

  it('a missing required input is an ApiError 400 naming it', async () => {
    await assert.rejects(identify().apps.execute({ appId: 'story', payload: { inputs: { hero: 'x' } }, stream: true }),
      (e) => e instanceof sdk.ApiError && e.status === 400 && /topic/.test(e.message));
  });

  it('a failed run resolves with status error, its message and code', async () => {
    let completed = null;
    const run = await identify().apps.execute({ appId: 'broken', stream: true,
      streamCompletedCallback: (d) => { completed = d; } });
    const r = await run.result();
    assert.equal(r.status, 'error');
    assert.equal(typeof r.error, 'string');
    assert.ok(r.error.length > 0);
    assert.equal(typeof r.errorCode, 'string');
    assert.notEqual(completed, null, 'streamCompletedCallback runs for failed runs too');
    const polled = await (await identify().apps.execute({ appId: 'broken' })).result();
    assert.equal(polled.status, 'error');
    assert.equal(polled.error, r.error);
  });

  it('a public app runs without a user', async () => {
    const anon = new Confab({ host: server.url, workspaceId: 'sdk' });
    let text = '';
    const run = await anon.apps.execute({ appId: 'hello', payload: { inputs: { name: 'you' } }, stream: true,
      streamCallback: ({ content }) => { text += content; } });
    assert.equal((await run.result()).output, 'Hello, you!');
    assert.equal(text, 'Hello, you!');
  });

  it('cancel() stops the run on the server; the stream ends with status cancelled', async () => {
    const c = identify();
    let deltas = 0;
    let first;
    const gotFirst = new Promise((r) => { first = r; });
    const run = await c.apps.execute({ appId: 'slow', stream: true, streamCallback: () => { deltas++; first(); } });
    await gotFirst;
    await run.cancel();
    const r = await run.result();
    assert.equal(r.status, 'cancelled');
    const stored = await c.apps.getResults({ appId: 'slow', executionId: run.executionId });
    assert.equal(stored.status, 'cancelled');
    assert.ok(deltas < 400, 'stopped before the end');
    await run.cancel();  // already cancelled: resolves (409 is not an error for cancel)
  });

  it('cancel() of a non-streamed run ends it; result() sees cancelled', async () => {
    const c = identify();
    const run = await c.apps.execute({ appId: 'slow' });
    await run.cancel();
    assert.equal((await run.result()).status, 'cancelled');
  });

  it('an AbortSignal stops the local stream (AbortError), closes the connection, and leaves the run alone', async () => {
    const c = identify();
    const ac = new AbortController();
    let seen = 0;
    const run = await c.apps.execute({ appId: 'slow', stream: true, signal: ac.signal,
      streamCallback: () => { if (++seen === 3) ac.abort(); } });
    await assert.rejects(run.result(), (e) => e instanceof sdk.AbortError && e.code === 'aborted');
    assert.equal(seen, 3, 'no callback after the abort');
    await eventually(async () => (await openStreams()) === 0, 'the server saw the stream close');
    const stored = await c.apps.getResults({ appId: 'slow', executionId: run.executionId });
    assert.ok(['running', 'queued'].includes(stored.status), 'abort is local: the run goes on');
    await run.cancel();
  });

  it('an already-aborted signal rejects at once; abort also stops result() polling', async () => {
    const c = identify();
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(c.apps.execute({ appId: 'story', signal: ac.signal, payload: { inputs: { hero: 'a', topic: 'b' } } }),
      (e) => e instanceof sdk.AbortError);
    const ac2 = new AbortController();
    const run = await c.apps.execute({ appId: 'slow', signal: ac2.signal });
    const pending = run.result();
    ac2.abort();
    await assert.rejects(pending, (e) => e instanceof sdk.AbortError);
    await run.cancel();
  });
});

describe('apps.chatStream and sessions', () => {
  it('streams tokens, continues the session from a second identify(), and manages sessions', async () => {
    const events = [];
    let completed;
    const a = identify('carol');
    const chat = await a.apps.chatStream({
      appId: 'assistant', message: 'Hello, **Confab**!',
      streamCallback: (e) => events.push(e),
      streamCompletedCallback: (d) => { completed = d; },
    });
    assert.match(chat.sessionId, /^se_/);
    assert.match(chat.executionId, /^ex_/);
    const r = await chat.result;
    assert.equal(r.status, 'success');
    assert.equal(r.sessionId, chat.sessionId);
    assert.ok(events.length > 5);
    assert.ok(events.every((e) => e.action === 'agent-response' && typeof e.token === 'string'));
    assert.equal(events.map((e) => e.token).join(''), r.result);
    assert.ok(r.result.includes('Hello, **Confab**!'), 'the echo model quotes the message');
    assert.deepEqual(completed, { action: 'completed', result: r.result });

    // Another instance (e.g. after a page reload) continues the same session.
    const b = identify('carol');
    const turn2 = await b.apps.chatStream({ appId: 'assistant', message: 'second turn', sessionId: chat.sessionId });
    assert.equal(turn2.sessionId, chat.sessionId);
    const r2 = await turn2.result;
    assert.ok(r2.result.includes('second turn'));
    assert.notEqual(r2.result, r.result);

    const list = await b.sessions.list({ appId: 'assistant' });
    assert.ok(list.some((s) => s.id === chat.sessionId));
    const s = await b.sessions.get(chat.sessionId);
    assert.deepEqual(s.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
    assert.equal(s.messages[0].content, 'Hello, **Confab**!');
    assert.equal(s.messages[3].content, r2.result);

    // Another user cannot see it.
    await assert.rejects(identify('mallory').sessions.get(chat.sessionId), (e) => e instanceof sdk.ApiError && e.status === 404);
    assert.ok(!(await identify('mallory').sessions.list()).some((x) => x.id === chat.sessionId));

    await b.sessions.delete(chat.sessionId);
    await assert.rejects(a.sessions.get(chat.sessionId), (e) => e instanceof sdk.ApiError && e.code === 'session_not_found');
    await assert.rejects(a.sessions.delete(chat.sessionId), (e) => e instanceof sdk.ApiError && e.status === 404);
  });

  it('chat cancel() ends the turn as cancelled; an unknown session is a 404', async () => {
    const c = identify('dave');
    let first;
    const gotFirst = new Promise((r) => { first = r; });
    const chat = await c.apps.chatStream({ appId: 'slowchat', message: 'a long one '.repeat(20), streamCallback: () => first() });
    await gotFirst;
    await chat.cancel();
    assert.equal((await chat.result).status, 'cancelled');
    await assert.rejects(c.apps.chatStream({ appId: 'assistant', message: 'hi', sessionId: 'se_doesnotexist' }),
      (e) => e instanceof sdk.ApiError && e.status === 404 && e.code === 'session_not_found');
  });
});

describe('chat turns: idempotency keys, regenerate, editLast, feedback', () => {
  it('the same Idempotency-Key is the same turn (stored once); regenerate and editLast replace the last turn', async () => {
    const sent = [];
    const c = Confab.identify({ userId: 'ida', workspaceId: 'sdk', hashedUserId: hmacHex(SECRET, 'ida'), host: server.url,
      fetch: (url, init) => { sent.push(init.headers); return fetch(url, init); } });
    const first = await c.apps.chatStream({ appId: 'assistant', message: 'once', idempotencyKey: 'turn-0001' });
    const r1 = await first.result;
    assert.equal(sent[0]['Idempotency-Key'], 'turn-0001');
    const again = await c.apps.chatStream({ appId: 'assistant', message: 'once', sessionId: first.sessionId, idempotencyKey: 'turn-0001' });
    assert.equal(again.executionId, first.executionId, 'the same turn, not a new one');
    assert.equal((await again.result).result, r1.result);
    let s = await c.sessions.get(first.sessionId);
    assert.deepEqual(s.messages.map((m) => [m.role, m.role === 'user' ? m.content : m.status]), [['user', 'once'], ['assistant', 'success']]);

    const regen = await c.apps.chatStream({ appId: 'assistant', sessionId: first.sessionId, regenerate: true, idempotencyKey: 'turn-0002' });
    assert.equal((await regen.result).status, 'success');
    const edited = await c.apps.chatStream({ appId: 'assistant', sessionId: first.sessionId, message: 'twice', editLast: true });
    assert.match((await edited.result).result, /twice/);
    s = await c.sessions.get(first.sessionId);
    assert.deepEqual(s.messages.map((m) => m.role), ['user', 'assistant']);
    assert.equal(s.messages[0].content, 'twice');

    // Feedback on the reply: one per user and execution, changeable, removable.
    const fb = await c.feedback.send({ executionId: edited.executionId, rating: 'down', comment: 'meh' });
    assert.deepEqual([fb.executionId, fb.rating, fb.comment], [edited.executionId, 'down', 'meh']);
    assert.equal((await c.feedback.send({ executionId: edited.executionId, rating: 'up' })).rating, 'up');
    await c.feedback.delete({ executionId: edited.executionId });
    await assert.rejects(identify('mallory').feedback.send({ executionId: edited.executionId, rating: 'up' }),
      (e) => e instanceof sdk.ApiError && e.status === 404);
  });

  it('bad arguments name the argument', async () => {
    const c = identify('ida');
    const bad = (p, re) => assert.rejects(p, (e) => e.code === 'invalid_argument' && re.test(e.message));
    await bad(c.apps.chatStream({ appId: 'assistant', message: 'x', idempotencyKey: 'has space' }), /^idempotencyKey: /);
    await bad(c.apps.chatStream({ appId: 'assistant', regenerate: true }), /^sessionId: required with regenerate/);
    await bad(c.apps.chatStream({ appId: 'assistant', message: 'x', sessionId: 's', regenerate: true, editLast: true }), /^regenerate\/editLast/);
    await bad(c.apps.chatStream({ appId: 'assistant', message: 'x', regenerate: 'yes' }), /^regenerate: expected true or false/);
    await bad(c.feedback.send({ executionId: 'ex_1', rating: 'meh' }), /^rating: expected "up" or "down"/);
    await bad(c.feedback.send({ executionId: 'ex_1', rating: 'up', comment: 'x'.repeat(2001) }), /^comment: at most 2000/);
    await bad(c.feedback.delete({}), /^executionId: /);
  });
});

describe('bad arguments', () => {
  const base = () => ({ workspaceId: 'sdk', hashedUserId: 'h', host: 'http://127.0.0.1:1' });
  const invalid = (re) => (e) => e instanceof sdk.ConfabError && e.code === 'invalid_argument' && re.test(e.message);

  it('identify() names the missing or wrong field', () => {
    assert.throws(() => Confab.identify({ ...base() }), invalid(/^userId: expected a non-empty string, got undefined/));
    assert.throws(() => Confab.identify({ ...base(), userId: '' }), invalid(/^userId: .*empty string/));
    assert.throws(() => Confab.identify({ ...base(), userId: 'u', workspaceId: undefined }), invalid(/^workspaceId:/));
    assert.throws(() => Confab.identify({ ...base(), userId: 'u', hashedUserId: 42 }), invalid(/^hashedUserId: .*number/));
    assert.throws(() => Confab.identify({ ...base(), userId: 'a\nb' }), invalid(/^userId: must not contain control/));
    assert.throws(() => Confab.identify({ ...base(), userId: 'u', host: 'ftp://x' }), invalid(/^host: must be an http/));
    assert.throws(() => Confab.identify({ ...base(), userId: 'u', host: 'not a url' }), invalid(/^host: not a URL/));
    assert.throws(() => Confab.identify({ ...base(), userId: 'u' , retries: -1 }), invalid(/^retries:/));
    assert.throws(() => Confab.identify({ ...base(), userId: 'u', timeoutMs: 0 }), invalid(/^timeoutMs:/));
    for (const maxEventBytes of [-1, 1.5, '1000', 2 ** 31]) {
      assert.throws(() => Confab.identify({ ...base(), userId: 'u', maxEventBytes }), invalid(/^maxEventBytes: expected an integer/));
    }
    assert.throws(() => Confab.identify({ ...base(), userId: 'u', fetch: 'no' }), invalid(/^fetch:/));
    assert.throws(() => Confab.identify({ ...base(), userId: 'u', headers: { a: 1 } }), invalid(/^headers\["a"\]/));
    assert.throws(() => Confab.identify(null), invalid(/^identify\(args\): expected an object, got null/));
    assert.throws(() => new Confab({ workspaceId: 'sdk' }), invalid(/^host: required outside a browser/));
  });

  it('apps and sessions methods reject with what is wrong', async () => {
    const c = identify();
    await assert.rejects(c.apps.execute({}), invalid(/^appId: expected a non-empty string, got undefined/));
    await assert.rejects(c.apps.execute({ appId: 'story', payload: { inputs: [] } }), invalid(/^payload\.inputs: expected an object, got an array/));
    await assert.rejects(c.apps.execute({ appId: 'story', payload: 'x' }), invalid(/^payload: expected an object/));
    await assert.rejects(c.apps.execute({ appId: 'story', stream: 'yes' }), invalid(/^stream: expected true or false/));
    await assert.rejects(c.apps.execute({ appId: 'story', streamCallback() {} }), invalid(/need stream: true/));
    await assert.rejects(c.apps.execute({ appId: 'story', stream: true, streamCallback: 'f' }), invalid(/^streamCallback: expected a function/));
    await assert.rejects(c.apps.execute({ appId: 'story', signal: {} }), invalid(/^signal: expected an AbortSignal/));
    await assert.rejects(c.apps.getResults({ appId: 'story' }), invalid(/^executionId:/));
    await assert.rejects(c.apps.chatStream({ appId: 'assistant' }), invalid(/^message: expected a non-empty string/));
    await assert.rejects(c.apps.chatStream({ appId: 'assistant', message: 'hi', inputs: 3 }), invalid(/^inputs: expected an object/));
    await assert.rejects(c.apps.get(''), invalid(/^appId: .*empty string/));
    await assert.rejects(c.sessions.get(), invalid(/^sessionId:/));
    await assert.rejects(c.sessions.list({ limit: 0 }), invalid(/^limit:/));
    await assert.rejects(new Confab({ host: server.url }).apps.get('hello'), invalid(/^workspaceId: required/));
  });

  it('getResults with the wrong appId is a 404', async () => {
    const c = identify();
    const run = await c.apps.execute({ appId: 'versioned' });
    await run.result();
    await assert.rejects(c.apps.getResults({ appId: 'story', executionId: run.executionId }),
      (e) => e instanceof sdk.ApiError && e.status === 404);
  });
});

describe('429: Retry-After is honoured', () => {
  it('without retries the 429 surfaces; with retries the calls succeed after waiting', async () => {
    const statuses = [];
    const counting = async (url, init) => {
      const r = await fetch(url, init);
      statuses.push(r.status);
      return r;
    };
    const mk = (retries, user) => Confab.identify({ userId: user, workspaceId: 'tight', hashedUserId: hmacHex(TIGHT_SECRET, user),
      host: server.url, retries, fetch: counting });
    // burst 2, one token per 2 s: calls in a row run into the limit with seconds of margin on a slow machine.
    const noRetry = mk(0, 'eve');
    let limited = null;
    for (let i = 0; i < 10 && !limited; i++) {
      try {
        await noRetry.apps.get('hi');
      } catch (e) {
        limited = e;
      }
    }
    assert.ok(limited instanceof sdk.ApiError, 'a 429 surfaced');
    assert.equal(limited.status, 429);
    assert.equal(limited.code, 'rate_limited');
    assert.ok(limited.retryAfterMs >= 1000);

    statuses.length = 0;
    const withRetry = mk(3, 'frank');
    for (let i = 0; i < 4; i++) assert.equal((await withRetry.apps.get('hi')).id, 'hi');
    assert.ok(statuses.includes(429), 'the limiter answered 429 and the SDK waited and retried');
    // A streamed start (a POST) is retried on 429 as well (nothing ran): empty the bucket first.
    const drain = mk(0, 'frank');
    for (let i = 0; i < 10; i++) {
      try { await drain.apps.get('hi'); } catch { break; }
    }
    statuses.length = 0;
    const run = await withRetry.apps.execute({ appId: 'hi', stream: true });
    assert.equal((await run.result()).output, 'hi');
    assert.equal(statuses[0], 429, 'the first POST was limited, then retried');
    // chatStream tells the caller before it waits (a widget shows the countdown).
    for (let i = 0; i < 10; i++) {
      try { await drain.apps.get('hi'); } catch { break; }
    }
    const waits = [];
    const tightChat = Confab.identify({ userId: 'frank', workspaceId: 'tight', hashedUserId: hmacHex(TIGHT_SECRET, 'frank'),
      host: server.url, retries: 3 });
    await assert.rejects(tightChat.apps.chatStream({ appId: 'hi', message: 'x', onRetry: (w) => waits.push(w) }),
      (e) => e instanceof sdk.ApiError);  // "hi" is not a chat app: after the wait, the server says so
    assert.ok(waits.length >= 1, 'onRetry was called');
    assert.equal(waits[0].attempt, 1);
    assert.equal(waits[0].error.status, 429);
    assert.ok(waits[0].delayMs >= 1000, `it says how long: ${waits[0].delayMs} ms`);
  });
});

describe('resume after a cut connection', () => {
  for (const [name, opts] of [['one cut mid-stream', { afterBytes: 300, cuts: 1 }], ['three cuts', { afterBytes: 150, cuts: 3 }]]) {
    it(`execute: ${name}: output identical to an uninterrupted run`, async () => {
      const proxy = await startCutProxy(server.port, opts);
      try {
        const inputs = { hero: 'Linus', topic: 'resumption' };
        const straight = [];
        await (await identify().apps.execute({ appId: 'story', payload: { inputs }, stream: true,
          streamCallback: ({ content }) => straight.push(content) })).result();
        const cut = [];
        let completed;
        const run = await identify('alice', { host: proxy.url }).apps.execute({ appId: 'story', payload: { inputs }, stream: true,
          streamCallback: ({ content }) => cut.push(content), streamCompletedCallback: ({ content }) => { completed = content; } });
        const r = await run.result();
        assert.equal(proxy.cuts, opts.cuts, 'the proxy did cut the stream');
        assert.equal(r.status, 'success');
        assert.deepEqual(cut, straight, 'same deltas, none lost, none repeated');
        assert.equal(cut.join(''), storyText('Linus', 'resumption'));
        assert.equal(completed, storyText('Linus', 'resumption'));
      } finally {
        await proxy.stop();
      }
    });
  }

  it('chatStream resumes too', async () => {
    const proxy = await startCutProxy(server.port, { afterBytes: 250, cuts: 1 });
    try {
      const tokens = [];
      const chat = await identify('gina', { host: proxy.url }).apps.chatStream({ appId: 'assistant', message: 'resume me please',
        streamCallback: (e) => tokens.push(e.token) });
      const r = await chat.result;
      assert.equal(proxy.cuts, 1);
      assert.equal(tokens.join(''), r.result);
      const s = await identify('gina').sessions.get(chat.sessionId);
      assert.equal(s.messages.at(-1).content, r.result, 'the reply is the stored one');
    } finally {
      await proxy.stop();
    }
  });

  it('gives up after `retries` failed reconnections with a stream_interrupted error', async () => {
    const proxy = await startCutProxy(server.port, { afterBytes: 100, cuts: 1, deadAfterCut: true });
    try {
      const run = await identify('alice', { host: proxy.url, retries: 2 }).apps.execute({ appId: 'slow', stream: true });
      await assert.rejects(run.result(), (e) => e instanceof sdk.ConfabError && e.code === 'stream_interrupted');
      assert.equal(proxy.refused, 2, 'exactly `retries` reconnection attempts');
      // The run itself goes on: cancel it directly (the proxy is dead).
      const res = await fetch(`${server.url}/v1/executions/${run.executionId}/cancel`, { method: 'POST', headers: {
        'X-Confab-Workspace': 'sdk', 'X-Confab-User': 'alice', 'X-Confab-User-Hash': hmacHex(SECRET, 'alice') } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    } finally {
      await proxy.stop();
    }
  });
});
