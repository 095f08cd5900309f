// The server side of the chat widget (issue 15) over real HTTP: Idempotency-Key per chat turn,
// regenerate and edit-last, how each turn ended in the session's history (error, cancelled,
// interrupted by kill -9), feedback with its server-to-server list and metrics, the app info the
// widget reads, and upstream failures that never show the upstream's address to a client.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { startFakeUpstream } from './fake_upstream.mjs';
import {
  WS, freePorts, getJson, idHeaders, makeDataDir, postJson, readSse, startServer, streamText, takenOver,
} from './helpers.mjs';

const T = { timeout: 30000 };
const NO_LLM_ENV = { CONFAB_LLM_BASE_URL: '', CONFAB_LLM_API_KEY: '', CONFAB_LLM_MODEL: '' };
const alice = (extra = {}) => idHeaders(WS.demo, 'alice', extra);
const bob = (extra = {}) => idHeaders(WS.demo, 'bob', extra);
const s2s = { Authorization: `Bearer ${WS.demo.apiKey}` };

// A port nothing listens on (bound, then released).
function config(llmBaseUrl) {
  return {
    workspaces: [{
      id: WS.demo.id,
      secrets: [WS.demo.secret],
      apiKeys: [WS.demo.apiKey],
      allowedOrigins: ['http://allowed.test'],
      rateLimit: { perSecond: 1000, burst: 1000 },
      apps: [
        {
          id: 'assistant', type: 'agent', model: 'echo', chunkChars: 6, delayMs: 2, name: 'Helper',
          starters: ['What can you do?', 'Summarise my last order'],
          imageHosts: ['images.example.com', '*.cdn.example.org'],
          avatarUrl: 'https://example.com/bot.png',
        },
        { id: 'ponder', type: 'agent', model: 'echo', chunkChars: 2, delayMs: 40 },
        { id: 'plain', type: 'template', template: 'hi', chunkChars: 2, delayMs: 1 },
        { id: 'talker', type: 'llm', model: 'fake-stream' },
        { id: 'broken', type: 'llm', model: 'fake-error' },
      ],
    }],
    llm: { baseUrl: llmBaseUrl, model: 'fake-stream', connectTimeoutMs: 2000, idleTimeoutMs: 2000 },
  };
}

async function chat(srv, body, headers = alice(), opts = {}) {
  return readSse(`${srv.url}/v1/apps/${opts.app ?? 'assistant'}/chat`, { method: 'POST', headers, body, ...opts });
}

const history = async (srv, sessionId, headers = alice()) => (await getJson(`${srv.url}/v1/sessions/${sessionId}`, headers)).json;

describe('chat turns for the widget', () => {
  let srv;
  let upPort;
  let up;
  before(async () => {
    upPort = (await freePorts(1))[0];
    srv = await startServer({ config: config(`http://127.0.0.1:${upPort}`), env: NO_LLM_ENV });
  });
  after(async () => {
    if (up) await up.close();
    if (srv) {
      await srv.stop();
      srv.cleanup();
    }
  });

  test('GET /v1/apps/{appId} serves starters, imageHosts and avatarUrl from the config', T, async () => {
    const r = await getJson(`${srv.url}/v1/apps/assistant`, alice());
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.starters, ['What can you do?', 'Summarise my last order']);
    assert.deepEqual(r.json.imageHosts, ['images.example.com', '*.cdn.example.org']);
    assert.equal(r.json.avatarUrl, 'https://example.com/bot.png');
    assert.equal(r.json.name, 'Helper');
    const plain = await getJson(`${srv.url}/v1/apps/plain`, alice());
    assert.deepEqual([plain.json.starters, plain.json.imageHosts, plain.json.avatarUrl], [[], [], undefined]);
  });

  test('a bad Idempotency-Key is a 400 naming the header; CORS allows and exposes the idempotency headers', T, async () => {
    for (const key of ['x'.repeat(201), 'caf\u00e9']) {
      const r = await postJson(`${srv.url}/v1/apps/assistant/chat`, { message: 'hi' }, alice({ 'Idempotency-Key': key }));
      assert.equal(r.status, 400);
      assert.equal(r.json.code, 'invalid_request');
      assert.match(r.json.error, /^Idempotency-Key: /);
    }
    const pre = await fetch(`${srv.url}/v1/apps/assistant/chat`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://allowed.test', 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'idempotency-key' },
    });
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get('access-control-allow-headers'), /Idempotency-Key/);
    assert.match(pre.headers.get('access-control-expose-headers'), /Idempotency-Replayed/);
  });

  test('the same key after a finished turn replays that turn; the message is stored once', T, async () => {
    const key = 'k-finished-1';
    const first = await chat(srv, { message: 'hello there' }, alice({ 'Idempotency-Key': key }));
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('idempotency-replayed'), null);
    const execId = first.headers.get('x-confab-execution-id');
    const sessionId = first.headers.get('x-confab-session-id');
    // The retry may know the session by now, or not: both are the same request.
    for (const body of [{ message: 'hello there' }, { message: 'hello there', sessionId }]) {
      const again = await chat(srv, body, alice({ 'Idempotency-Key': key }));
      assert.equal(again.status, 200);
      assert.equal(again.headers.get('idempotency-replayed'), 'true');
      assert.equal(again.headers.get('x-confab-execution-id'), execId);
      assert.equal(again.headers.get('x-confab-session-id'), sessionId);
      assert.deepEqual(again.events, first.events);
    }
    const h = await history(srv, sessionId);
    assert.equal(h.messageCount, 2);
    assert.deepEqual(h.messages.map((m) => [m.role, m.status, m.executionId]),
      [['user', undefined, execId], ['assistant', 'success', execId]]);
    assert.equal(h.messages[0].turnId, h.messages[1].turnId);
    assert.match(h.messages[0].turnId, /^tu_/);
    assert.equal(h.title, 'hello there');

    // Another user's identical key is another user's turn.
    const other = await chat(srv, { message: 'hello there' }, bob({ 'Idempotency-Key': key }));
    assert.equal(other.headers.get('idempotency-replayed'), null);
    assert.notEqual(other.headers.get('x-confab-execution-id'), execId);

    // The same key for another message, mode or session is a conflict.
    const conflicts = [
      { message: 'something else' },
      { message: 'hello there', sessionId: other.headers.get('x-confab-session-id') },
      { sessionId, regenerate: true },
    ];
    for (const body of conflicts) {
      const r = await postJson(`${srv.url}/v1/apps/assistant/chat`, body, alice({ 'Idempotency-Key': key }));
      assert.equal(r.status, 409, JSON.stringify(body));
      assert.equal(r.json.code, 'idempotency_conflict', JSON.stringify(body));
    }
  });

  test('the same key while the turn streams resumes the same turn from Last-Event-ID', T, async () => {
    const key = 'k-inflight-1';
    const cut = await chat(srv, { message: 'a long thought' }, alice({ 'Idempotency-Key': key }),
      { app: 'ponder', stopAfter: (e) => e.id === '2' });
    assert.ok(cut.aborted);
    const execId = cut.headers.get('x-confab-execution-id');
    const sessionId = cut.headers.get('x-confab-session-id');
    const rest = await chat(srv, { message: 'a long thought', sessionId }, alice({ 'Idempotency-Key': key, 'Last-Event-ID': '2' }),
      { app: 'ponder' });
    assert.equal(rest.headers.get('idempotency-replayed'), 'true');
    assert.equal(rest.headers.get('x-confab-execution-id'), execId);
    assert.equal(rest.events[0].id, '3');
    assert.equal(rest.events.at(-1).type, 'completed');
    assert.equal(rest.events.at(-1).json.status, 'success');
    const whole = streamText([...cut.events, ...rest.events]);
    assert.equal(whole, rest.events.at(-1).json.result);
    const h = await history(srv, sessionId);
    assert.deepEqual(h.messages.map((m) => m.role), ['user', 'assistant']);
  });

  test('a failed turn stays visible as failed; the same key runs it again and replaces the failure', T, async () => {
    const key = 'k-retry-1';
    const failed = await chat(srv, { message: 'are you there?' }, alice({ 'Idempotency-Key': key }), { app: 'talker' });
    const failedId = failed.headers.get('x-confab-execution-id');
    const sessionId = failed.headers.get('x-confab-session-id');
    const err = failed.events.find((e) => e.type === 'error');
    assert.equal(err.json.code, 'upstream_unavailable');
    assert.equal(failed.events.at(-1).json.status, 'error');

    let h = await history(srv, sessionId);
    assert.equal(h.messageCount, 2);
    assert.deepEqual(h.messages.map((m) => [m.role, m.content, m.status]),
      [['user', 'are you there?', undefined], ['assistant', '', 'error']]);
    assert.equal(h.messages[1].error.code, 'upstream_unavailable');
    assert.equal(h.messages[1].executionId, failedId);

    up = await startFakeUpstream({ port: upPort });  // the upstream comes back
    const retry = await chat(srv, { message: 'are you there?', sessionId }, alice({ 'Idempotency-Key': key }), { app: 'talker' });
    assert.equal(retry.headers.get('idempotency-replayed'), null, 'a failed turn is run again, not replayed');
    const retryId = retry.headers.get('x-confab-execution-id');
    assert.notEqual(retryId, failedId);
    assert.equal(retry.events.at(-1).json.status, 'success');
    assert.equal(streamText(retry.events), up.replyTo('are you there?'));

    h = await history(srv, sessionId);
    assert.equal(h.messageCount, 2, 'the user message is not stored twice');
    assert.deepEqual(h.messages.map((m) => [m.role, m.content, m.status, m.executionId]), [
      ['user', 'are you there?', undefined, retryId],
      ['assistant', up.replyTo('are you there?'), 'success', retryId],
    ]);
    // The model was not shown the failed turn twice: only the retried message.
    const sent = up.requests.at(-1).body.messages.filter((m) => m.role === 'user');
    assert.deepEqual(sent, [{ role: 'user', content: 'are you there?' }]);

    // Now it succeeded: the key replays it.
    const third = await chat(srv, { message: 'are you there?', sessionId }, alice({ 'Idempotency-Key': key }), { app: 'talker' });
    assert.equal(third.headers.get('idempotency-replayed'), 'true');
    assert.equal(third.headers.get('x-confab-execution-id'), retryId);
  });

  test('a stopped reply keeps status cancelled and its partial text in the history', T, async () => {
    let execId;
    const cut = await chat(srv, { message: 'tell me everything about everything' }, alice(), {
      app: 'ponder', stopAfter: (e) => e.id === '3',
    });
    execId = cut.headers.get('x-confab-execution-id');
    const sessionId = cut.headers.get('x-confab-session-id');
    const c = await postJson(`${srv.url}/v1/executions/${execId}/cancel`, {}, alice());
    assert.equal(c.status, 200);
    assert.equal(c.json.status, 'cancelled');
    const h = await history(srv, sessionId);
    assert.equal(h.messages.length, 2);
    const reply = h.messages[1];
    assert.equal(reply.status, 'cancelled');
    assert.equal(reply.executionId, execId);
    assert.ok(reply.content.length > 0, 'what was streamed is kept');
    const events = await readSse(`${srv.url}/v1/executions/${execId}/events`, { headers: alice() });
    assert.equal(reply.content, streamText(events.events));
  });

  test('regenerate re-runs the last message and replaces its reply; 409 while a reply runs; 400 naming the field', T, async () => {
    const first = await chat(srv, { message: 'one' });
    const sessionId = first.headers.get('x-confab-session-id');
    await chat(srv, { message: 'two', sessionId });
    const before = await history(srv, sessionId);
    const regen = await chat(srv, { sessionId, regenerate: true });
    assert.equal(regen.status, 200);
    const regenId = regen.headers.get('x-confab-execution-id');
    assert.equal(regen.events.at(-1).json.status, 'success');
    assert.match(streamText(regen.events), /Turn: 2/, 'the model sees the history before the regenerated turn');
    const h = await history(srv, sessionId);
    assert.equal(h.messageCount, 4);
    assert.deepEqual(h.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
    assert.deepEqual([h.messages[0].content, h.messages[2].content], ['one', 'two']);
    assert.equal(h.messages[3].content, streamText(regen.events));
    assert.equal(h.messages[2].turnId, before.messages[2].turnId, 'the same turn');
    assert.equal(h.messages[3].executionId, regenId);
    assert.notEqual(before.messages[3].executionId, regenId);

    // While a reply of the session streams, neither regenerate nor edit may replace it.
    const slow = await chat(srv, { message: 'slowly' }, alice(), { app: 'ponder', stopAfter: (e) => e.id === '1' });
    const slowSession = slow.headers.get('x-confab-session-id');
    for (const body of [{ sessionId: slowSession, regenerate: true }, { sessionId: slowSession, message: 'x', editLast: true }]) {
      const r = await postJson(`${srv.url}/v1/apps/ponder/chat`, body, alice());
      assert.equal(r.status, 409, JSON.stringify(r.json));
      assert.equal(r.json.code, 'conflict');
    }
    await postJson(`${srv.url}/v1/executions/${slow.headers.get('x-confab-execution-id')}/cancel`, {}, alice());

    const bad = [
      [{ regenerate: true }, /^sessionId is required with regenerate/],
      [{ message: 'x', editLast: true }, /^sessionId is required with editLast/],
      [{ sessionId, editLast: true }, /^message is required/],
      [{ sessionId, regenerate: true, editLast: true, message: 'x' }, /cannot both be true/],
      [{ sessionId, regenerate: 'yes' }, /^regenerate must be a boolean/],
    ];
    for (const [body, re] of bad) {
      const r = await postJson(`${srv.url}/v1/apps/assistant/chat`, body, alice());
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.json.error, re);
    }
  });

  test('editLast replaces the last user message and its reply with the new turn', T, async () => {
    const first = await chat(srv, { message: 'first question' });
    const sessionId = first.headers.get('x-confab-session-id');
    await chat(srv, { message: 'second qeustion', sessionId });
    const edited = await chat(srv, { message: 'second question', sessionId, editLast: true });
    assert.equal(edited.events.at(-1).json.status, 'success');
    assert.match(streamText(edited.events), /Turn: 2/);
    const h = await history(srv, sessionId);
    assert.equal(h.messageCount, 4);
    assert.deepEqual(h.messages.filter((m) => m.role === 'user').map((m) => m.content), ['first question', 'second question']);
    assert.equal(h.messages[3].executionId, edited.headers.get('x-confab-execution-id'));
    assert.equal(h.title, 'first question');

    // Editing the only turn renames the session after the new first message.
    const solo = await chat(srv, { message: 'typo heer' });
    const soloId = solo.headers.get('x-confab-session-id');
    await chat(srv, { message: 'typo here', sessionId: soloId, editLast: true });
    const list = (await getJson(`${srv.url}/v1/sessions?appId=assistant`, alice())).json.sessions;
    const entry = list.find((s) => s.id === soloId);
    assert.equal(entry.title, 'typo here');
    assert.equal(entry.messageCount, 2);
    assert.equal(list[0].id, soloId, 'newest first');
  });

  test('POST .../executions with an Idempotency-Key: a retry is the same execution, another request with it a 409', T, async () => {
    const url = `${srv.url}/v1/apps/plain/executions`;
    const key = { 'Idempotency-Key': 'exec-key-1' };
    const a = await postJson(url, { inputs: {} }, alice(key));
    assert.equal(a.status, 202);
    assert.equal(a.headers.get('idempotency-replayed'), null);
    const b = await postJson(url, { inputs: {} }, alice(key));
    assert.equal(b.status, 202);
    assert.equal(b.json.executionId, a.json.executionId);
    assert.equal(b.headers.get('idempotency-replayed'), 'true');
    const waited = await postJson(`${url}?wait=true`, { inputs: {} }, alice(key));
    assert.equal(waited.status, 200);
    assert.equal(waited.json.id, a.json.executionId);
    assert.equal(waited.json.status, 'success');
    const streamed = await readSse(url, { method: 'POST', headers: alice(key), body: { inputs: {} } });
    assert.equal(streamed.headers.get('x-confab-execution-id'), a.json.executionId);
    assert.equal(streamText(streamed.events), 'hi');
    const conflict = await postJson(url, { inputs: { extra: 1 } }, alice(key));
    assert.equal(conflict.status, 400, 'unknown inputs are checked first');
    const other = await postJson(`${srv.url}/v1/apps/talker/executions`, { inputs: {} }, alice(key));
    assert.equal(other.status, 409);
    assert.equal(other.json.code, 'idempotency_conflict');
    const bobs = await postJson(url, { inputs: {} }, bob(key));
    assert.notEqual(bobs.json.executionId, a.json.executionId, 'keys are per user');
    const bad = await postJson(url, { inputs: {} }, alice({ 'Idempotency-Key': 'x'.repeat(201) }));
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /^Idempotency-Key: /);
  });

  test('twenty requests at once with one Idempotency-Key start one execution (a double click, a retry after a timeout)', T, async () => {
    const url = `${srv.url}/v1/apps/plain/executions`;
    const h = alice({ 'Idempotency-Key': 'burst-key' });
    const count = async () => (await getJson(`${srv.url}/v1/jobs?type=execution&size=1`, s2s)).json.totalElements;
    const before = await count();
    const answers = await Promise.all(Array.from({ length: 20 }, () => postJson(url, { inputs: {} }, h)));
    for (const r of answers) {
      assert.equal(r.status, 202, r.text);
      assert.equal(r.headers.get('x-confab-execution-id'), r.json.executionId, 'every answer names its execution');
    }
    const ids = new Set(answers.map((r) => r.json.executionId));
    assert.equal(ids.size, 1, `one execution for one key: ${[...ids].join(', ')}`);
    assert.equal(answers.filter((r) => r.headers.get('idempotency-replayed') === 'true').length, 19);
    assert.equal(await count(), before + 1, 'one execution stored');
  });

  test('feedback: one per user and execution, changeable, deletable; listed server-to-server; counted', T, async () => {
    const t1 = await chat(srv, { message: 'rate me' });
    const ex1 = t1.headers.get('x-confab-execution-id');
    const t2 = await chat(srv, { message: 'rate me too' }, bob());
    const ex2 = t2.headers.get('x-confab-execution-id');
    const url = (id) => `${srv.url}/v1/executions/${id}/feedback`;
    const metric = async (rating) => {
      const text = await (await fetch(`${srv.url}/metrics`)).text();
      return Number(new RegExp(`^confab_feedback_total\\{rating="${rating}"\\} (\\d+)$`, 'm').exec(text)[1]);
    };
    const up0 = await metric('up');
    const down0 = await metric('down');

    const a = await postJson(url(ex1), { rating: 'up' }, alice());
    assert.equal(a.status, 200);
    assert.deepEqual([a.json.executionId, a.json.rating, a.json.comment], [ex1, 'up', '']);
    const b = await postJson(url(ex1), { rating: 'down', comment: 'too short' }, alice());
    assert.equal(b.status, 200);
    assert.deepEqual([b.json.rating, b.json.comment, b.json.createdAt], ['down', 'too short', a.json.createdAt]);
    assert.ok(b.json.updatedAt >= a.json.updatedAt);
    assert.equal((await postJson(url(ex2), { rating: 'up' }, bob())).status, 200);
    assert.equal(await metric('up'), up0 + 2);
    assert.equal(await metric('down'), down0 + 1);

    // Bad input names the field; another user's execution is not found.
    for (const [body, re] of [[{}, /^rating: /], [{ rating: 'meh' }, /^rating: /], [{ rating: 'up', comment: 5 }, /^comment: /],
      [{ rating: 'up', comment: 'x'.repeat(2001) }, /^comment: .*2000/], [{ rating: 'up', stars: 5 }, /^stars /]]) {
      const r = await postJson(url(ex1), body, alice());
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.json.error, re);
    }
    assert.equal((await postJson(url(ex1), { rating: 'up', comment: '\u00e9'.repeat(2000) }, alice())).status, 200,
      '2000 characters, not bytes');
    assert.equal((await postJson(url(ex2), { rating: 'up' }, alice())).status, 404);
    assert.equal((await postJson(url('ex_nope'), { rating: 'up' }, alice())).status, 404);

    // The site owner's list: newest first, filters, paging, bearer only.
    const list = async (q) => getJson(`${srv.url}/v1/feedback${q}`, s2s);
    let l = await list('');
    assert.equal(l.status, 200);
    assert.deepEqual(l.json.content.slice(0, 2).map((f) => [f.executionId, f.userId, f.rating]),
      [[ex1, 'alice', 'up'], [ex2, 'bob', 'up']]);
    assert.equal(l.json.content[0].appId, 'assistant');
    // The filter keeps exactly the down ratings (bob turns his to down for this).
    assert.equal((await postJson(url(ex2), { rating: 'down' }, bob())).status, 200);
    l = await list('?rating=down');
    assert.deepEqual(l.json.content.map((f) => [f.executionId, f.userId, f.rating]), [[ex2, 'bob', 'down']]);
    assert.equal(l.json.totalElements, 1);
    assert.equal((await list('?rating=up')).json.content.some((f) => f.executionId === ex2), false);
    l = await list(`?appId=assistant&size=1&page=1`);
    assert.equal(l.json.content.length, 1);
    assert.equal(l.json.size, 1);
    const now = Date.now();
    assert.equal((await list(`?from=${now + 60000}`)).json.totalElements, 0);
    assert.ok((await list(`?to=${now + 60000}&from=${now - 60000}`)).json.totalElements >= 2);
    for (const q of ['?rating=meh', '?from=yesterday', '?size=1000']) {
      const r = await list(q);
      assert.equal(r.status, 400, q);
      assert.match(r.json.error, new RegExp(`^${q.slice(1).split('=')[0]}: `));
    }
    assert.equal((await getJson(`${srv.url}/v1/feedback`, alice())).status, 401);

    const del = await fetch(url(ex1), { method: 'DELETE', headers: alice() });
    assert.equal(del.status, 204);
    l = await list('');
    assert.ok(!l.json.content.some((f) => f.executionId === ex1));
  });
});

describe('upstream failures never show the upstream address', () => {
  test('refused, HTTP 500: error events, execution records and history carry a generic message; the log has the details', T, async () => {
    const downPort = (await freePorts(1))[0];
    const srv = await startServer({ config: config(`http://127.0.0.1:${downPort}`), env: NO_LLM_ENV });
    const up = await startFakeUpstream();
    const srv500 = await startServer({ config: config(up.url), env: NO_LLM_ENV });
    try {
      const cases = [[srv, 'talker', downPort, 'upstream_unavailable'], [srv500, 'broken', up.port, 'upstream_error']];
      for (const [server, app, port, code] of cases) {
        const leaks = (text) => text.includes('127.0.0.1') || text.includes(String(port)) || /https?:\/\//.test(text) ||
          text.includes('fake upstream failure');
        const c = await chat(server, { message: 'hi' }, alice(), { app });
        const ex = await readSse(`${server.url}/v1/apps/${app}/executions`, { method: 'POST', headers: alice(), body: { inputs: {} } });
        for (const s of [c, ex]) {
          const err = s.events.find((e) => e.type === 'error');
          assert.equal(err.json.code, code);
          assert.ok(!leaks(JSON.stringify(s.events)), JSON.stringify(s.events));
          const rec = await getJson(`${server.url}/v1/executions/${s.headers.get('x-confab-execution-id')}`, alice());
          assert.equal(rec.json.status, 'error');
          assert.ok(!leaks(rec.text), rec.text);
        }
        const h = await getJson(`${server.url}/v1/sessions/${c.headers.get('x-confab-session-id')}`, alice());
        assert.equal(h.json.messages[1].error.code, code);
        assert.ok(!leaks(h.text), h.text);
        const sync = await postJson(`${server.url}/v1/apps/${app}/executions?wait=true`, { inputs: {} }, alice());
        assert.ok(!leaks(sync.text), sync.text);
        assert.ok(server.logs().includes(`127.0.0.1:${port}`), 'the operator finds the upstream in the log');
      }
      assert.match(srv500.logs(), /fake upstream failure/);
    } finally {
      await up.close();
      for (const s of [srv, srv500]) {
        await s.stop();
        s.cleanup();
      }
    }
  });
});

test('kill -9 mid-reply: after the restart the partial reply is the assistant message, marked interrupted', T, async () => {
  const dataDir = makeDataDir();
  try {
    let srv = await startServer({ config: config('http://127.0.0.1:9'), dataDir, env: NO_LLM_ENV });
    const cut = await chat(srv, { message: 'a story that will not end well' }, alice(), {
      app: 'ponder', stopAfter: (e) => e.id === '4',
    });
    const sessionId = cut.headers.get('x-confab-session-id');
    const execId = cut.headers.get('x-confab-execution-id');
    await srv.kill9();
    srv = await startServer({ config: config('http://127.0.0.1:9'), dataDir, env: NO_LLM_ENV });
    try {
      await takenOver(srv);  // PostgreSQL: the killed instance's runs are closed once its lease ran out
      const h = await history(srv, sessionId);
      assert.equal(h.messages.length, 2);
      const reply = h.messages[1];
      assert.equal(reply.role, 'assistant');
      assert.equal(reply.status, 'interrupted');
      assert.equal(reply.executionId, execId);
      assert.equal(reply.error.code, 'interrupted');
      const events = await readSse(`${srv.url}/v1/executions/${execId}/events`, { headers: alice() });
      const partial = streamText(events.events);
      assert.ok(partial.startsWith(streamText(cut.events)) && partial.length > 0, 'at least what the visitor saw');
      assert.equal(reply.content, partial);
      assert.equal(events.events.at(-1).json.result, partial);
      // The session goes on; the model sees the partial reply as the previous answer.
      const next = await chat(srv, { message: 'go on', sessionId }, alice(), { app: 'ponder' });
      assert.equal(next.events.at(-1).json.status, 'success');
      assert.match(streamText(next.events), /Turn: 2/);
    } finally {
      await srv.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
