// confab-server happy path over real HTTP: identity, apps, executions (async, sync, streamed),
// polling, cancel mid-stream, chat with sessions, operations endpoints.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  SseReader, WS, STORY, getJson, idHeaders, postJson, readSse, startServer, streamText, token, userHash, sleep,
} from './helpers.mjs';

const T = { timeout: 20000 };
let srv;
before(async () => { srv = await startServer(); });
after(async () => {
  if (!srv) return;
  const { code } = await srv.stop();
  srv.cleanup();
  assert.equal(code, 0, 'graceful shutdown exits 0');
});

const alice = () => idHeaders(WS.demo, 'alice');

async function waitTerminal(id, headers) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const r = await getJson(`${srv.url}/v1/executions/${id}`, headers);
    assert.equal(r.status, 200);
    if (['success', 'error', 'cancelled'].includes(r.json.status)) return r.json;
    assert.ok(Date.now() < deadline, 'execution did not finish in time');
    await sleep(20);
  }
}

describe('identity', () => {
  test('POST /v1/identity issues the user hash with the workspace API key', T, async () => {
    const r = await postJson(`${srv.url}/v1/identity`, { userId: 'alice' },
      { Authorization: `Bearer ${WS.demo.apiKey}` });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { workspaceId: 'demo', userId: 'alice', hashedUserId: userHash(WS.demo.secret, 'alice') });
  });

  test('with ttlSeconds it issues an expiring token that the API accepts', T, async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await postJson(`${srv.url}/v1/identity`, { userId: 'bob', ttlSeconds: 120 },
      { Authorization: `Bearer ${WS.acme.apiKey}` });
    assert.equal(r.status, 200);
    assert.equal(r.json.workspaceId, 'acme');
    assert.ok(r.json.expiresAt >= before + 120 && r.json.expiresAt <= before + 122);
    assert.equal(r.json.hashedUserId, token(WS.acme.secret, 'acme', 'bob', r.json.expiresAt));
    const app = await getJson(`${srv.url}/v1/apps/summary`, {
      'X-Confab-Workspace': 'acme', 'X-Confab-User': 'bob', 'X-Confab-User-Hash': r.json.hashedUserId,
    });
    assert.equal(app.status, 200);
  });

  test('a hash made with a rotated-out (second) secret is still accepted', T, async () => {
    const r = await getJson(`${srv.url}/v1/apps/story`, {
      'X-Confab-Workspace': 'demo', 'X-Confab-User': 'carol',
      'X-Confab-User-Hash': userHash(WS.demo.oldSecret, 'carol'),
    });
    assert.equal(r.status, 200);
  });
});

describe('apps and executions', () => {
  test('GET /v1/apps/{id} describes the app, its versions and inputs', T, async () => {
    const r = await getJson(`${srv.url}/v1/apps/story`, alice());
    assert.equal(r.status, 200);
    assert.equal(r.json.id, 'story');
    assert.equal(r.json.type, 'template');
    assert.equal(r.json.version, '2');
    assert.deepEqual(r.json.versions, ['1', '2']);
    assert.deepEqual(r.json.inputs.map((i) => i.name), ['hero', 'count']);
  });

  test('async execution: 202 with an id, then poll until success', T, async () => {
    const r = await postJson(`${srv.url}/v1/apps/story/executions`,
      { version: '1', inputs: { hero: 'Ada' } }, alice());
    assert.equal(r.status, 202);
    assert.match(r.json.executionId, /^ex_[0-9a-f]{32}$/);
    assert.equal(r.headers.get('x-confab-execution-id'), r.json.executionId);
    const done = await waitTerminal(r.json.executionId, alice());
    assert.equal(done.status, 'success');
    assert.equal(done.output, `Ada: ${STORY}`);
    assert.equal(done.appId, 'story');
    assert.equal(done.version, '1');
    assert.deepEqual(done.inputs, { hero: 'Ada' });
  });

  test('sync execution (?wait=true) answers with the finished execution', T, async () => {
    const r = await postJson(`${srv.url}/v1/apps/story/executions?wait=true`,
      { inputs: { hero: 'Bo', count: 3 } }, alice());
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'success');
    assert.equal(r.json.output, 'Bo x3');
    assert.equal(r.json.version, '2', 'latest version by default');
  });

  test('streamed execution: one round trip, dense ids, deltas then completed', T, async () => {
    const s = await readSse(`${srv.url}/v1/apps/story/executions`, {
      method: 'POST', headers: alice(), body: { version: '1', inputs: { hero: 'Cy' } },
    });
    assert.equal(s.status, 200);
    assert.equal(s.headers.get('cache-control'), 'no-cache');
    const id = s.headers.get('x-confab-execution-id');
    assert.match(id, /^ex_/);
    assert.deepEqual(s.events.map((e) => Number(e.id)), s.events.map((_, i) => i + 1));
    const last = s.events.at(-1);
    assert.equal(last.type, 'completed');
    assert.equal(last.json.status, 'success');
    assert.equal(streamText(s.events), `Cy: ${STORY}`);
    assert.equal(last.json.output, `Cy: ${STORY}`);
    const polled = await getJson(`${srv.url}/v1/executions/${id}`, alice());
    assert.equal(polled.json.status, 'success', 'finished before the completed event was sent');
  });

  // Tokens are queued by the hub's token path (no JSON object is built for them): each event's
  // data must still be exactly the JSON of its text, live, replayed, as execution and as chat.
  test('streamed text with quotes, escapes, control characters and non-ASCII: each data is the JSON of its text', T, async () => {
    const hero = 'Q"\\\n\t\u0001\u001f\u007f </script> é 😀 \u2028';
    const s = await readSse(`${srv.url}/v1/apps/story/executions`, {
      method: 'POST', headers: alice(), body: { version: '1', inputs: { hero } },
    });
    assert.equal(s.status, 200);
    const deltas = s.events.filter((e) => e.type === 'delta');
    assert.ok(deltas.length > 10);
    for (const e of deltas) assert.equal(e.data, JSON.stringify({ content: e.json.content }));
    assert.equal(streamText(s.events), `${hero}: ${STORY}`);
    assert.equal(s.events.at(-1).json.output, `${hero}: ${STORY}`);
    const id = s.headers.get('x-confab-execution-id');
    const replay = await readSse(`${srv.url}/v1/executions/${id}/events`, { headers: alice() });
    assert.deepEqual(replay.events.map((e) => e.data), s.events.map((e) => e.data));

    const chat = await readSse(`${srv.url}/v1/apps/assistant/chat`, {
      method: 'POST', headers: alice(), body: { message: hero },
    });
    assert.equal(chat.status, 200);
    const tokens = chat.events.filter((e) => e.type === 'agent-response');
    assert.ok(tokens.length > 2);
    for (const e of tokens) assert.equal(e.data, JSON.stringify({ token: e.json.token }));
    assert.ok(streamText(chat.events).includes(hero), 'the echo carries the message');
  });

  test('GET /v1/executions/{id}/events replays a finished run completely', T, async () => {
    const r = await postJson(`${srv.url}/v1/apps/welcome/executions?wait=true`, { inputs: { name: 'Di' } }, alice());
    assert.equal(r.status, 200);
    const s = await readSse(`${srv.url}/v1/executions/${r.json.id}/events`, { headers: alice() });
    assert.equal(s.status, 200);
    assert.equal(streamText(s.events), 'Hello, Di! Welcome aboard.');
    assert.equal(s.events.at(-1).type, 'completed');
  });

  test('cancel mid-stream: the streamed POST ends with completed/cancelled', T, async () => {
    const res = await fetch(`${srv.url}/v1/apps/slow/executions`, {
      method: 'POST',
      headers: { ...alice(), Accept: 'text/event-stream', 'Content-Type': 'application/json' },
      body: JSON.stringify({ inputs: { hero: 'Ed' } }),
    });
    const id = res.headers.get('x-confab-execution-id');
    const reader = new SseReader();
    const decoder = new TextDecoder();
    let cancel;
    for await (const chunk of res.body) {
      reader.push(decoder.decode(chunk, { stream: true }));
      if (!cancel && reader.events.length >= 3) cancel = postJson(`${srv.url}/v1/executions/${id}/cancel`, {}, alice());
    }
    const c = await cancel;
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.status, 'cancelled');
    const last = reader.events.at(-1);
    assert.equal(last.type, 'completed');
    assert.equal(last.json.status, 'cancelled');
    assert.equal(reader.events.filter((e) => e.type === 'completed').length, 1);
    assert.ok(streamText(reader.events).length < `Ed ${STORY} ${STORY}`.length, 'stopped before the end');
    const polled = await getJson(`${srv.url}/v1/executions/${id}`, alice());
    assert.equal(polled.json.status, 'cancelled');
  });

  test('cancel: POST /cancel during a run ends it as cancelled, promptly', T, async () => {
    const r = await postJson(`${srv.url}/v1/apps/slow/executions`, { inputs: { hero: 'Fa' } }, alice());
    assert.equal(r.status, 202);
    const id = r.json.executionId;
    // Follow the stream while cancelling after a few events.
    const streamP = readSse(`${srv.url}/v1/executions/${id}/events`, { headers: alice() });
    await sleep(200);
    const c = await postJson(`${srv.url}/v1/executions/${id}/cancel`, {}, alice());
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.status, 'cancelled');
    const s = await streamP;
    const last = s.events.at(-1);
    assert.equal(last.type, 'completed');
    assert.equal(last.json.status, 'cancelled');
    const fullLength = `Fa ${STORY} ${STORY}`.length;
    assert.ok(streamText(s.events).length < fullLength, 'stopped before the end');
    const again = await postJson(`${srv.url}/v1/executions/${id}/cancel`, {}, alice());
    assert.equal(again.status, 409);
    assert.equal(again.json.code, 'conflict');
  });

  test('anonymous callers may run public apps, not private ones', T, async () => {
    const ok = await postJson(`${srv.url}/v1/apps/welcome/executions?wait=true`, { inputs: { name: 'anon' } },
      { 'X-Confab-Workspace': 'demo' });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.output, 'Hello, anon! Welcome aboard.');
    const no = await postJson(`${srv.url}/v1/apps/story/executions`, { inputs: { hero: 'x' } },
      { 'X-Confab-Workspace': 'demo' });
    assert.equal(no.status, 401);
    assert.equal(no.json.code, 'identity_missing');
    // An anonymous run is not visible to an identified user and vice versa.
    const other = await getJson(`${srv.url}/v1/executions/${ok.json.id}`, alice());
    assert.equal(other.status, 404);
  });
});

describe('chat and sessions', () => {
  test('two turns in one session, then list, get and delete it', T, async () => {
    const h = idHeaders(WS.demo, 'dora');
    const t1 = await readSse(`${srv.url}/v1/apps/assistant/chat`, {
      method: 'POST', headers: h, body: { message: 'First *question*' },
    });
    assert.equal(t1.status, 200);
    const sessionId = t1.headers.get('x-confab-session-id');
    assert.match(sessionId, /^se_[0-9a-f]{32}$/);
    assert.match(t1.headers.get('x-confab-execution-id'), /^ex_/);
    const done1 = t1.events.at(-1);
    assert.equal(done1.type, 'completed');
    assert.equal(done1.json.sessionId, sessionId);
    assert.equal(done1.json.status, 'success');
    const reply1 = streamText(t1.events);
    assert.equal(done1.json.result, reply1);
    assert.ok(reply1.includes('First *question*'), 'the echo model quotes the message');

    const t2 = await readSse(`${srv.url}/v1/apps/assistant/chat`, {
      method: 'POST', headers: h, body: { message: 'Second one', sessionId },
    });
    assert.equal(t2.headers.get('x-confab-session-id'), sessionId);
    assert.equal(t2.events.at(-1).json.status, 'success');
    const reply2 = streamText(t2.events);

    const got = await getJson(`${srv.url}/v1/sessions/${sessionId}`, h);
    assert.equal(got.status, 200);
    assert.equal(got.json.appId, 'assistant');
    assert.deepEqual(got.json.messages.map((m) => [m.role, m.content]), [
      ['user', 'First *question*'], ['assistant', reply1], ['user', 'Second one'], ['assistant', reply2],
    ]);

    const list = await getJson(`${srv.url}/v1/sessions?appId=assistant`, h);
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.sessions.map((s) => s.id), [sessionId]);
    assert.equal(list.json.sessions[0].messageCount, 4);

    // The chat turn is an execution: it can be replayed by id.
    const replay = await readSse(`${srv.url}/v1/executions/${t2.headers.get('x-confab-execution-id')}/events`, { headers: h });
    assert.equal(streamText(replay.events), reply2);

    const del = await getJson(`${srv.url}/v1/sessions/${sessionId}`, h, 'DELETE');
    assert.equal(del.status, 204);
    assert.equal((await getJson(`${srv.url}/v1/sessions/${sessionId}`, h)).status, 404);
    assert.deepEqual((await getJson(`${srv.url}/v1/sessions`, h)).json.sessions, []);
    assert.equal((await getJson(`${srv.url}/v1/sessions/${sessionId}`, h, 'DELETE')).status, 404);
  });

  test('another user cannot see or continue a session', T, async () => {
    const h = idHeaders(WS.demo, 'erin');
    const t1 = await readSse(`${srv.url}/v1/apps/assistant/chat`, { method: 'POST', headers: h, body: { message: 'mine' } });
    const sessionId = t1.headers.get('x-confab-session-id');
    const mallory = idHeaders(WS.demo, 'mallory');
    assert.equal((await getJson(`${srv.url}/v1/sessions/${sessionId}`, mallory)).status, 404);
    const cont = await postJson(`${srv.url}/v1/apps/assistant/chat`, { message: 'hi', sessionId }, mallory);
    assert.equal(cont.status, 404);
    assert.equal(cont.json.code, 'session_not_found');
    assert.deepEqual((await getJson(`${srv.url}/v1/sessions`, mallory)).json.sessions, []);
  });

  test('anonymous users cannot list sessions', T, async () => {
    const r = await getJson(`${srv.url}/v1/sessions`, { 'X-Confab-Workspace': 'demo' });
    assert.equal(r.status, 401);
  });
});

describe('streams', () => {
  test('a stream whose client went away is released at once, not at the next heartbeat', T, async () => {
    const openStreams = async () => Number(/confab_open_streams (\d+)/.exec((await getJson(`${srv.url}/metrics`)).text)[1]);
    const base = await openStreams();
    // `idle` emits "hello " and then waits 60 s; the default heartbeat is 15 s.
    const s = await readSse(`${srv.url}/v1/apps/idle/executions`, {
      method: 'POST', headers: alice(), body: {}, stopAfter: (e) => e.id === '1',
    });
    assert.ok(s.aborted);
    const deadline = Date.now() + 5000;
    while ((await openStreams()) > base) {
      assert.ok(Date.now() < deadline, 'stream still open 5 s after the client left');
      await sleep(20);
    }
    const id = s.headers.get('x-confab-execution-id');
    assert.equal((await postJson(`${srv.url}/v1/executions/${id}/cancel`, {}, alice())).json.status, 'cancelled');
  });
});

describe('operations', () => {
  test('/healthz, /readyz and /metrics', T, async () => {
    assert.equal((await getJson(`${srv.url}/healthz`)).status, 200);
    assert.equal((await getJson(`${srv.url}/readyz`)).status, 200);
    const m = await getJson(`${srv.url}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.text, /confab_http_requests_total\{route="\/v1\/identity",status="200"\} \d+/);
    assert.match(m.text, /confab_http_request_duration_seconds_bucket\{route="\/v1\/executions\/\{id\}",le="\+Inf"\} \d+/);
    assert.match(m.text, /confab_open_streams \d+/);
    assert.match(m.text, /confab_executions\{status="success"\} [1-9]\d*/);
  });

  test('one JSON access-log line per request on stderr', T, async () => {
    const appLines = () => srv.logs().split('\n').filter((l) => l.includes('"route":"/v1/apps/{appId}"'));
    const before = appLines().length;
    await getJson(`${srv.url}/v1/apps/story`, alice());
    // stderr arrives through a pipe after the response: wait for this request's line (bounded),
    // not a fixed time, so a slow machine does not fail the test.
    let lines = appLines();
    for (let i = 0; i < 250 && lines.length <= before; i++) {
      await sleep(20);
      lines = appLines();
    }
    assert.ok(lines.length > before, 'no access-log line for the request within 5 s');
    const entry = JSON.parse(lines.at(-1));
    assert.equal(entry.method, 'GET');
    assert.equal(entry.status, 200);
    assert.equal(entry.workspace, 'demo');
    assert.equal(typeof entry.ms, 'number');
  });
});
