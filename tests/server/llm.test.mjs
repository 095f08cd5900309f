// confab-server against a fake OpenAI-compatible upstream: streamed llm output, chat with history,
// upstream errors, time-outs, malformed streams, cancellation and the "not configured" error.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startFakeUpstream } from './fake_upstream.mjs';
import { WS, getJson, idHeaders, postJson, readSse, sleep, startServer, streamText } from './helpers.mjs';

const T = { timeout: 20000 };
const API_KEY = 'sk-fake-upstream';
// Neither the developer's environment nor CI may point the server elsewhere.
const NO_LLM_ENV = { CONFAB_LLM_BASE_URL: '', CONFAB_LLM_API_KEY: '', CONFAB_LLM_MODEL: '' };

function llmConfig(llm) {
  return {
    workspaces: [{
      id: WS.demo.id,
      secrets: [WS.demo.secret],
      apiKeys: [WS.demo.apiKey],
      rateLimit: { perSecond: 1000, burst: 1000 },
      apps: [
        {
          id: 'writer', type: 'llm',
          inputs: [{ name: 'topic', type: 'string', required: true }],
          systemPrompt: 'You write about {{topic}}.',
          prompt: 'Write about {{topic}}.',
        },
        { id: 'broken', type: 'llm', model: 'fake-error' },
        { id: 'stalled', type: 'llm', model: 'fake-stall' },
        { id: 'garbled', type: 'llm', model: 'fake-malformed' },
        { id: 'chatty', type: 'agent', model: 'llm', systemPrompt: 'Be brief.' },
        { id: 'clock', type: 'agent', model: 'clock', delayMs: 1, inputs: [{ name: 'message', type: 'string' }] },
      ],
    }],
    ...(llm ? { llm } : {}),
  };
}

const alice = () => idHeaders(WS.demo, 'alice');

function lastChatRequest(up) {
  return up.requests.filter((r) => r.url === '/v1/chat/completions').at(-1);
}

describe('llm apps through a configured upstream', () => {
  let up;
  let srv;
  before(async () => {
    up = await startFakeUpstream({ apiKey: API_KEY });
    srv = await startServer({
      config: llmConfig({ baseUrl: up.url, apiKey: API_KEY, model: 'fake-stream', connectTimeoutMs: 2000, idleTimeoutMs: 400 }),
      env: NO_LLM_ENV,
    });
  });
  after(async () => {
    if (up) await up.close();
    if (srv) {
      const { code } = await srv.stop();
      srv.cleanup();
      assert.equal(code, 0, `graceful shutdown exits 0\n${srv.logs()}`);
    }
  });

  test('a streamed llm execution relays the upstream tokens and stores the output', T, async () => {
    const s = await readSse(`${srv.url}/v1/apps/writer/executions`, {
      method: 'POST', headers: alice(), body: { inputs: { topic: 'rain ☔' } },
    });
    assert.equal(s.status, 200);
    const expected = up.replyTo('Write about rain ☔.');
    assert.equal(streamText(s.events), expected);
    assert.ok(s.events.filter((e) => e.type === 'delta').length > 1, 'streamed in several deltas');
    const last = s.events.at(-1);
    assert.equal(last.type, 'completed');
    assert.equal(last.json.status, 'success');
    assert.equal(last.json.output, expected);

    const req = lastChatRequest(up);
    assert.equal(req.headers.authorization, `Bearer ${API_KEY}`);
    assert.equal(req.body.model, 'fake-stream');
    assert.equal(req.body.stream, true);
    assert.deepEqual(req.body.messages, [
      { role: 'system', content: 'You write about rain ☔.' },
      { role: 'user', content: 'Write about rain ☔.' },
    ]);

    const id = s.headers.get('x-confab-execution-id');
    const polled = await getJson(`${srv.url}/v1/executions/${id}`, alice());
    assert.equal(polled.json.status, 'success');
    assert.equal(polled.json.output, expected);
  });

  test('an agent with model "llm" sends the session history on the next turn', T, async () => {
    const t1 = await readSse(`${srv.url}/v1/apps/chatty/chat`, { method: 'POST', headers: alice(), body: { message: 'hello' } });
    assert.equal(t1.status, 200);
    assert.equal(t1.events.at(-1).json.status, 'success');
    assert.equal(streamText(t1.events), up.replyTo('hello'));
    assert.ok(t1.events.slice(0, -1).every((e) => e.type === 'agent-response'));
    const sessionId = t1.headers.get('x-confab-session-id');

    const t2 = await readSse(`${srv.url}/v1/apps/chatty/chat`, {
      method: 'POST', headers: alice(), body: { message: 'and again', sessionId },
    });
    assert.equal(t2.events.at(-1).json.result, up.replyTo('and again'));
    assert.deepEqual(lastChatRequest(up).body.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: up.replyTo('hello') },
      { role: 'user', content: 'and again' },
    ]);
  });

  // These runners keep no copy of their reply: the output is the text the run's log holds, so it
  // must be exactly what was streamed, in the completed event, the stored execution and the session.
  test('a run whose output is its streamed text reports and stores exactly that text', T, async () => {
    const chat = await readSse(`${srv.url}/v1/apps/chatty/chat`, { method: 'POST', headers: alice(), body: { message: 'once more ✓' } });
    const reply = streamText(chat.events);
    assert.equal(reply, up.replyTo('once more ✓'));
    assert.equal(chat.events.at(-1).json.result, reply);
    const sessionId = chat.headers.get('x-confab-session-id');
    const session = await getJson(`${srv.url}/v1/sessions/${sessionId}`, alice());
    assert.equal(session.json.messages.at(-1).content, reply);

    // The clock model (benchmarks): one token per character of the message, each its emit time.
    const clock = await readSse(`${srv.url}/v1/apps/clock/executions`, { method: 'POST', headers: alice(), body: { inputs: { message: 'ab☔d' } } });
    assert.equal(clock.status, 200, JSON.stringify(clock.events));
    const deltas = clock.events.filter((e) => e.type === 'delta');
    assert.equal(deltas.length, 4);
    const text = streamText(clock.events);
    assert.equal(text.length, 16);
    assert.equal(clock.events.at(-1).json.output, text);
    const id = clock.headers.get('x-confab-execution-id');
    assert.equal((await getJson(`${srv.url}/v1/executions/${id}`, alice())).json.output, text);
    const clockChat = await readSse(`${srv.url}/v1/apps/clock/chat`, { method: 'POST', headers: alice(), body: { message: 'xyz' } });
    assert.equal(clockChat.events.at(-1).json.result, streamText(clockChat.events));
    assert.equal(streamText(clockChat.events).length, 12);
  });

  test('an upstream 500 fails the execution with upstream_error', T, async () => {
    const s = await readSse(`${srv.url}/v1/apps/broken/executions`, { method: 'POST', headers: alice(), body: { inputs: {} } });
    const err = s.events.find((e) => e.type === 'error');
    assert.ok(err, 'an error event precedes completed');
    assert.equal(err.json.code, 'upstream_error');
    assert.match(err.json.error, /500/);
    // What the upstream said goes to the server log, not to clients (it may name internal hosts).
    assert.doesNotMatch(err.json.error, /fake upstream failure/);
    assert.match(srv.logs(), /fake upstream failure/);
    const last = s.events.at(-1);
    assert.equal(last.type, 'completed');
    assert.equal(last.json.status, 'error');
    const polled = await getJson(`${srv.url}/v1/executions/${s.headers.get('x-confab-execution-id')}`, alice());
    assert.equal(polled.json.status, 'error');
    assert.match(polled.json.error, /HTTP 500/);
  });

  test('an upstream that goes silent fails with upstream_timeout after the idle time-out', T, async () => {
    const s = await readSse(`${srv.url}/v1/apps/stalled/executions`, { method: 'POST', headers: alice(), body: { inputs: {} } });
    assert.equal(streamText(s.events), up.replyTo('{}').slice(0, 4), 'the token sent before the stall was relayed');
    const err = s.events.find((e) => e.type === 'error');
    assert.ok(err);
    assert.equal(err.json.code, 'upstream_timeout');
    assert.equal(s.events.at(-1).json.status, 'error');
  });

  test('a malformed upstream stream fails with upstream_error', T, async () => {
    const s = await readSse(`${srv.url}/v1/apps/garbled/executions`, { method: 'POST', headers: alice(), body: { inputs: {} } });
    const err = s.events.find((e) => e.type === 'error');
    assert.ok(err);
    assert.equal(err.json.code, 'upstream_error');
    assert.match(err.json.error, /malformed/);
    assert.equal(s.events.at(-1).json.status, 'error');
  });

  test('cancelling a run that waits on its upstream ends it as cancelled', T, async () => {
    const r = await postJson(`${srv.url}/v1/apps/stalled/executions`, { inputs: {} }, alice());
    assert.equal(r.status, 202);
    const id = r.json.executionId;
    // Wait until the first token arrived, i.e. the run now waits on the silent upstream.
    for (let i = 0; ; i++) {
      const e = await getJson(`${srv.url}/v1/executions/${id}`, alice());
      if (e.json.output || e.json.status !== 'queued') break;
      assert.ok(i < 200, 'the run did not start');
      await sleep(10);
    }
    const c = await postJson(`${srv.url}/v1/executions/${id}/cancel`, {}, alice());
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.status, 'cancelled');
    const s = await readSse(`${srv.url}/v1/executions/${id}/events`, { headers: alice() });
    assert.equal(s.events.at(-1).type, 'completed');
    assert.equal(s.events.at(-1).json.status, 'cancelled');
    assert.equal(s.events.filter((e) => e.type === 'error').length, 0, 'a cancel is not an upstream error');
  });
});

describe('llm apps without an upstream', () => {
  test('fail with not_configured and say how to configure one', T, async () => {
    const srv = await startServer({ config: llmConfig(null), env: NO_LLM_ENV });
    try {
      const s = await readSse(`${srv.url}/v1/apps/writer/executions`, {
        method: 'POST', headers: alice(), body: { inputs: { topic: 'x' } },
      });
      const err = s.events.find((e) => e.type === 'error');
      assert.ok(err, JSON.stringify(s.events));
      assert.equal(err.json.code, 'not_configured');
      assert.match(err.json.error, /CONFAB_LLM_BASE_URL/);
      assert.equal(s.events.at(-1).json.status, 'error');
    } finally {
      const { code } = await srv.stop();
      srv.cleanup();
      assert.equal(code, 0, srv.logs());
    }
  });

  test('CONFAB_LLM_BASE_URL configures the upstream without touching the config', T, async () => {
    const up = await startFakeUpstream();
    const srv = await startServer({
      config: llmConfig(null),
      env: { ...NO_LLM_ENV, CONFAB_LLM_BASE_URL: up.url, CONFAB_LLM_MODEL: 'fake-stream' },
    });
    try {
      const s = await readSse(`${srv.url}/v1/apps/writer/executions`, {
        method: 'POST', headers: alice(), body: { inputs: { topic: 'env' } },
      });
      assert.equal(s.events.at(-1).json.status, 'success');
      assert.equal(streamText(s.events), up.replyTo('Write about env.'));
      assert.equal(lastChatRequest(up).body.model, 'fake-stream');
    } finally {
      await up.close();
      const { code } = await srv.stop();
      srv.cleanup();
      assert.equal(code, 0, srv.logs());
    }
  });
});

describe('llm.maxEventBytes: the per-event limit on upstream streams', () => {
  test('an upstream event over the configured limit fails the run, naming the limit and the setting', T, async () => {
    const up = await startFakeUpstream({ apiKey: API_KEY });
    // Each of the fake's token events is ~150 bytes of JSON: over a 100-byte limit.
    const srv = await startServer({
      config: llmConfig({ baseUrl: up.url, apiKey: API_KEY, model: 'fake-stream', maxEventBytes: 100 }),
      env: NO_LLM_ENV,
    });
    try {
      const s = await readSse(`${srv.url}/v1/apps/writer/executions`, {
        method: 'POST', headers: alice(), body: { inputs: { topic: 'size' } },
      });
      const err = s.events.find((e) => e.type === 'error');
      assert.ok(err, JSON.stringify(s.events));
      assert.equal(err.json.code, 'upstream_error');
      assert.match(err.json.error, /event of \d+ bytes .*over the limit of 100 bytes.*llm\.maxEventBytes/);
      assert.equal(s.events.at(-1).json.status, 'error');
    } finally {
      await up.close();
      await srv.stop();
      srv.cleanup();
    }
  });

  test('a limit that is not an integer from 1 to 2^30 is a config error naming the field', T, async () => {
    for (const maxEventBytes of [0, 2 ** 31, '1000']) {
      await assert.rejects(
        startServer({ config: llmConfig({ baseUrl: 'http://127.0.0.1:9', maxEventBytes }), env: NO_LLM_ENV }),
        (e) => /llm\.maxEventBytes/.test(e.message),
      );
    }
  });
});
