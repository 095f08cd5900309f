// The AirOps SDK edge over real HTTP and WebSocket: /sdk_api/* in the SDK's shapes, its underscore
// identity headers, client-chosen session ids bound to their user, idempotent cancel, and the
// Pusher endpoint (/app/{key}): private channels bound to the user who authorised them, refused
// signatures, runs nobody listens to, and the memory of 1,000 open channels.
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { WS, getJson, postJson, sleep, startServer, testConfig, userHash } from './helpers.mjs';
import { PusherSocket } from './pusher_client.mjs';

const PUSHER_SECRET = 'test-pusher-secret';

function config() {
  const c = testConfig();
  c.workspaces[0].pusher = { secret: PUSHER_SECRET };
  // 4 MiB of output in 64 KiB events: more than a stalled reader's socket buffers hold.
  c.workspaces[0].apps.push({ id: 'huge', type: 'template', public: true, template: 'x'.repeat(4 << 20),
    chunkChars: 65536, delayMs: 0 });
  return c;
}

// The headers the SDK sends when identified (underscores, no X-Confab-*).
function sdkHeaders(ws, user, extra = {}) {
  return { user_id: user, workspace_id: ws.id, user_id_hashed: userHash(ws.secret, user), ...extra };
}

async function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

async function waitStatus(base, id, headers, done = (s) => !['queued', 'running'].includes(s)) {
  for (let i = 0; i < 200; i++) {
    const r = await getJson(`${base}/sdk_api/airops_apps/executions/${id}`, headers);
    if (r.status === 200 && done(r.json.status)) return r.json;
    await sleep(50);
  }
  throw new Error('execution did not finish');
}

describe('AirOps SDK edge: /sdk_api', () => {
  let server;
  let base;
  before(async () => { server = await startServer({ config: config() }); base = server.url; });
  after(async () => { await server.stop(); server.cleanup(); });

  test('a preflight allows the SDK\'s underscore identity headers and PATCH', async () => {
    const res = await fetch(`${base}/sdk_api/airops_apps/story/async_execute`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://allowed.test', 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,user_id,workspace_id,user_id_hashed' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://allowed.test');
    const allowed = res.headers.get('access-control-allow-headers').toLowerCase();
    for (const h of ['user_id', 'workspace_id', 'user_id_hashed', 'content-type']) assert.ok(allowed.includes(h), h);
    assert.match(res.headers.get('access-control-allow-methods'), /PATCH/);
  });

  test('apps.get, execute (with a version), the record in the SDK\'s shape', async () => {
    const h = sdkHeaders(WS.demo, 'ada');
    const app = await getJson(`${base}/sdk_api/airops_app_bases/story?methods=type`, h);
    assert.equal(app.status, 200);
    assert.equal(app.json.public, false);
    const ex = await postJson(`${base}/sdk_api/airops_apps/story/async_execute/v2`, { inputs: { hero: 'Ada', count: 3 } }, h);
    assert.equal(ex.status, 200, ex.text);
    const uuid = ex.json.airops_app_execution.uuid;
    assert.match(uuid, /^ex_/);
    const rec = await waitStatus(base, uuid, h);
    assert.equal(rec.uuid, uuid);
    assert.equal(rec.status, 'success');
    assert.equal(rec.output, 'Ada x3');
    assert.equal(rec.error_message, null);
    assert.equal(rec.version, '2');
  });

  test('errors are {error} naming the field; a bad hash is a 401', async () => {
    const h = sdkHeaders(WS.demo, 'ada');
    const missing = await postJson(`${base}/sdk_api/airops_apps/story/async_execute`, { inputs: {} }, h);
    assert.equal(missing.status, 400);
    assert.match(missing.json.error, /hero/);
    const bad = await getJson(`${base}/sdk_api/airop_app_bases/story`, { ...h, user_id_hashed: 'ab'.repeat(32) });
    assert.equal(bad.status, 401);
    assert.match(bad.json.error, /user_id_hashed/);
  });

  test('cancel is idempotent: a finished run answers 200 with its record, twice', async () => {
    const h = sdkHeaders(WS.demo, 'ada');
    const ex = await postJson(`${base}/sdk_api/airops_apps/idle/async_execute`, { inputs: {} }, h);
    const uuid = ex.json.airops_app_execution.uuid;
    for (let i = 0; i < 2; i++) {
      const c = await getJson(`${base}/sdk_api/airops_apps/executions/${uuid}/cancel`, h, 'PATCH');
      assert.equal(c.status, 200, c.text);
      assert.equal(c.json.status, 'cancelled');
      assert.equal(c.json.uuid, uuid);
    }
  });

  test('an anonymous call takes its workspace from the Origin; other users\' executions are 404', async () => {
    const ex = await postJson(`${base}/sdk_api/airops_apps/welcome/async_execute`, { inputs: { name: 'Bo' } },
      { Origin: 'http://allowed.test' });
    assert.equal(ex.status, 200, ex.text);
    assert.equal(ex.headers.get('access-control-allow-origin'), 'http://allowed.test');
    const rec = await waitStatus(base, ex.json.airops_app_execution.uuid, { Origin: 'http://allowed.test' });
    assert.equal(rec.output, 'Hello, Bo! Welcome aboard.');
    const nobody = await postJson(`${base}/sdk_api/airops_apps/welcome/async_execute`, { inputs: { name: 'Bo' } },
      { Origin: 'http://stranger.test' });
    assert.equal(nobody.status, 401);
    assert.match(nobody.json.error, /allowedOrigins/);
    const other = await getJson(`${base}/sdk_api/airops_apps/executions/${ex.json.airops_app_execution.uuid}`,
      sdkHeaders(WS.demo, 'eve'));
    assert.equal(other.status, 404);
  });

  test('chat_stream: the SDK\'s session id continues the conversation, and only for its user', async () => {
    const session = randomUUID();
    const h = sdkHeaders(WS.demo, 'ada');
    const one = await postJson(`${base}/sdk_api/agent_apps/assistant/chat_stream`,
      { definition: null, message: 'first', stream_channel_id: randomUUID(), session_id: session }, h);
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.session_id, session);
    const r1 = await waitStatus(base, one.json.airops_app_execution.uuid, h);
    assert.match(r1.output, /Turn: 1/);
    const two = await postJson(`${base}/sdk_api/agent_apps/assistant/chat_stream`,
      { message: 'second', stream_channel_id: randomUUID(), session_id: session }, h);
    const r2 = await waitStatus(base, two.json.airops_app_execution.uuid, h);
    assert.match(r2.output, /Turn: 2/);
    // Eve reusing Ada's session id starts a conversation of her own.
    const he = sdkHeaders(WS.demo, 'eve');
    const eve = await postJson(`${base}/sdk_api/agent_apps/assistant/chat_stream`,
      { message: 'mine?', stream_channel_id: randomUUID(), session_id: session }, he);
    assert.equal(eve.status, 200, eve.text);
    const r3 = await waitStatus(base, eve.json.airops_app_execution.uuid, he);
    assert.match(r3.output, /Turn: 1/);
  });
});

describe('AirOps SDK edge: the Pusher WebSocket', () => {
  let server;
  let base;
  before(async () => { server = await startServer({ config: config() }); base = server.url; });
  after(async () => { await server.stop(); server.cleanup(); });

  async function auth(socketId, channel, headers) {
    const res = await fetch(`${base}/sdk_api/pusher/auth`, {
      method: 'POST',
      // What pusher-js sends: a form, under the SDK's JSON content type.
      headers: { ...headers, 'content-type': 'application/json' },
      body: `socket_id=${encodeURIComponent(socketId)}&channel_name=${encodeURIComponent(channel)}`,
    });
    return { status: res.status, json: await res.json() };
  }

  test('connection established, ping/pong, a private channel streams the run in the SDK\'s events', async () => {
    const s = await PusherSocket.connect(base);
    assert.equal(s.status, 101);
    const socketId = await s.established();
    assert.match(socketId, /^\d+\.\d+$/);
    s.send({ event: 'pusher:ping', data: {} });
    await s.waitFor((m) => m.event === 'pusher:pong');

    const h = sdkHeaders(WS.demo, 'ada');
    const id = randomUUID();
    const a = await auth(socketId, `private-${id}`, h);
    assert.equal(a.status, 200);
    const expected = createHmac('sha256', PUSHER_SECRET).update(`${socketId}:private-${id}`).digest('hex');
    assert.equal(a.json.auth, `af9e46318302fccfc6db:${expected}`);
    const sub = await s.subscribe(`private-${id}`, a.json.auth);
    assert.equal(sub.event, 'pusher_internal:subscription_succeeded');

    await postJson(`${base}/sdk_api/airops_apps/story/async_execute/v2`,
      { inputs: { hero: 'Ada', count: 7 }, stream_channel_id: id }, h);
    const events = await s.untilCompleted(`private-${id}`);
    const chunks = events.filter((e) => e.event === 'chunk').map((e) => e.data.content).join('');
    assert.equal(chunks, 'Ada x7');
    assert.deepEqual(events.at(-1).data.content, 'Ada x7');

    // A chat turn: agent-response tokens, then completed {result}.
    const chatId = randomUUID();
    const a2 = await auth(socketId, `private-${chatId}`, h);
    await s.subscribe(`private-${chatId}`, a2.json.auth);
    await postJson(`${base}/sdk_api/agent_apps/assistant/chat_stream`,
      { message: 'hello', stream_channel_id: chatId, session_id: randomUUID() }, h);
    const chat = await s.untilCompleted(`private-${chatId}`);
    const tokens = chat.filter((e) => e.event === 'agent-response').map((e) => e.data.token).join('');
    assert.match(tokens, /You said/);
    assert.equal(chat.at(-1).data.result, tokens);
    s.close();
  });

  test('another user can neither authorise, subscribe to nor stream into a private channel', async () => {
    const ada = await PusherSocket.connect(base);
    const adaSocket = await ada.established();
    const eve = await PusherSocket.connect(base);
    const eveSocket = await eve.established();
    const id = randomUUID();
    const channel = `private-${id}`;
    const ha = sdkHeaders(WS.demo, 'ada');
    const he = sdkHeaders(WS.demo, 'eve');
    const a = await auth(adaSocket, channel, ha);
    assert.equal(a.status, 200);
    await ada.subscribe(channel, a.json.auth);

    // Eve asks to authorise Ada's channel for her own socket: refused.
    const e = await auth(eveSocket, channel, he);
    assert.equal(e.status, 403);
    assert.match(e.json.error, /another user/);
    // Ada's signature is for Ada's socket: replayed on Eve's socket it does not match.
    const stolen = await eve.subscribe(channel, a.json.auth);
    assert.equal(stolen.event, 'pusher:subscription_error');
    // Eve cannot run into it either.
    const run = await postJson(`${base}/sdk_api/airops_apps/story/async_execute/v2`,
      { inputs: { hero: 'Eve', count: 1 }, stream_channel_id: id }, he);
    assert.equal(run.status, 403);
    // Ada's own run arrives at Ada only.
    await postJson(`${base}/sdk_api/airops_apps/story/async_execute/v2`,
      { inputs: { hero: 'Ada', count: 2 }, stream_channel_id: id }, ha);
    await ada.untilCompleted(channel);
    assert.equal(eve.messages.filter((m) => m.channel === channel && !m.event.startsWith('pusher')).length, 0);
    ada.close();
    eve.close();
  });

  test('a bad signature, an unknown channel kind and an anonymous auth are refused', async () => {
    const s = await PusherSocket.connect(base);
    const socketId = await s.established();
    const id = randomUUID();
    const channel = `private-${id}`;
    const a = await auth(socketId, channel, sdkHeaders(WS.demo, 'ada'));
    const forged = `af9e46318302fccfc6db:${'0'.repeat(64)}`;
    const bad = await s.subscribe(channel, forged);
    assert.equal(bad.event, 'pusher:subscription_error');
    assert.equal(bad.data.status, 401);
    const wrongKey = await s.subscribe(channel, `otherkey:${a.json.auth.split(':')[1]}`);
    assert.equal(wrongKey.event, 'pusher:subscription_error');
    const presence = await s.subscribe(`presence-${id}`);
    assert.equal(presence.event, 'pusher:subscription_error');
    const anon = await auth(socketId, channel, { Origin: 'http://allowed.test' });
    assert.equal(anon.status, 401);
    s.close();
  });

  test('a run started with a channel nobody subscribed to is not held back', async () => {
    const h = sdkHeaders(WS.demo, 'ada');
    const ex = await postJson(`${base}/sdk_api/airops_apps/burst/async_execute`,
      { inputs: {}, stream_channel_id: randomUUID() }, h);
    assert.equal(ex.status, 200);
    const rec = await waitStatus(base, ex.json.airops_app_execution.uuid, h);
    assert.equal(rec.status, 'success');
    // And a subscriber that stopped reading does not hold it back either.
    const s = await PusherSocket.connect(base);
    await s.established();
    const id = randomUUID();
    await s.subscribe(`public-${id}`);
    s.pauseReading();
    const ex2 = await postJson(`${base}/sdk_api/airops_apps/welcome/async_execute`,
      { inputs: { name: 'Slow' }, stream_channel_id: id }, h);
    const rec2 = await waitStatus(base, ex2.json.airops_app_execution.uuid, h);
    assert.equal(rec2.status, 'success');
    s.close();
  });

  test('a subscriber that stops reading is dropped, not buffered without end; the runs finish', async () => {
    const slow = await PusherSocket.connect(base);
    await slow.established();
    const id = randomUUID();
    await slow.subscribe(`public-${id}`);
    slow.pauseReading();
    const ids = [];
    for (let i = 0; i < 4; i++) {
      const ex = await postJson(`${base}/sdk_api/airops_apps/huge/async_execute`, { inputs: {}, stream_channel_id: id },
        { Origin: 'http://allowed.test' });
      assert.equal(ex.status, 200, ex.text);
      ids.push(ex.json.airops_app_execution.uuid);
    }
    for (const uuid of ids) {
      const rec = await waitStatus(base, uuid, { Origin: 'http://allowed.test' });
      assert.equal(rec.status, 'success');
      // In the SDK's shape however large the output (4 MiB, over the 1 MiB request limit).
      assert.equal(rec.uuid, uuid);
      assert.equal(rec.output.length, 4 << 20);
    }
    // Reading again, it gets what its socket buffers held, then the end: the server let it go.
    slow.sock.resume();
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the stalled socket was not closed')), 10000);
      const check = () => { if (slow.closed) { clearTimeout(t); resolve(); } else slow.waiters.push(check); };
      check();
    });
    const completed = slow.messages.filter((m) => m.event === 'completed').length;
    assert.ok(completed < 4, `a dropped reader cannot have every run's end (got ${completed})`);
    slow.close();
  });

  test('an unknown app key is told so; a page no workspace allows cannot connect', async () => {
    const s = await PusherSocket.connect(base, { key: 'not-a-key' });
    const err = await s.waitFor((m) => m.event === 'pusher:error');
    assert.equal(err.data.code, 4001);
    s.close();
    const o = await PusherSocket.connect(base, { origin: 'http://stranger.test' });
    assert.equal(o.status, 403);
    o.close();
  });

  // The figure README.md states: 1,000 open connections, each subscribed to a channel, add less
  // than 48 MiB of resident memory to the server.
  test('malformed frames and auth bodies get an error or nothing; the connection and the server stay up', async () => {
    const s = await PusherSocket.connect(base);
    const socketId = await s.established();
    const bad = [
      'not json', '[1,2]', '{"event":5}', 'null', '"pusher:ping"', '{"event":"pusher:subscribe"}',
      '{"event":"pusher:subscribe","data":[1]}', '{"event":"pusher:subscribe","data":"{\\"channel\\":7}"}',
      '{"event":"pusher:subscribe","data":"not json either"}',
      '{"event":"pusher:subscribe","data":{"channel":{"a":1},"auth":5}}',
      `{"event":"pusher:subscribe","data":{"channel":"private-${'x'.repeat(5000)}","auth":"a:b"}}`,
      '{"event":"pusher:subscribe","data":{"channel":"private-\u0000\u00ff","auth":"::::"}}',
      '{"event":"pusher:unsubscribe","data":null}', '{"event":"pusher:unsubscribe","data":{"channel":"public-nope"}}',
      '['.repeat(20000), '{"event":"client-x","data":{}}', '{"event":"pusher:ping","data":' + '{"a":'.repeat(300) + '1' + '}'.repeat(300) + '}',
    ];
    for (const text of bad) s.sendFrame(text);
    s.sendFrame(Buffer.from([0xff, 0xfe, 0x00]), 0x2);  // a binary frame
    const from = s.messages.length;
    s.send({ event: 'pusher:ping', data: {} });
    await s.waitFor((m) => m.event === 'pusher:pong', { from });
    // Subscribing still works on the same connection after all that.
    const h = sdkHeaders(WS.demo, 'mallory');
    const id = randomUUID();
    const a = await auth(socketId, `private-${id}`, h);
    assert.equal(a.status, 200);
    const sub = await s.subscribe(`private-${id}`, a.json.auth);
    assert.equal(sub.event, 'pusher_internal:subscription_succeeded');
    s.close();

    // A message over the 64 KiB limit ends that connection, and only it.
    const big = await PusherSocket.connect(base);
    await big.established();
    big.sendFrame(JSON.stringify({ event: 'pusher:ping', data: { pad: 'x'.repeat(70000) } }));
    await big.waitFor(() => false, { ms: 5000 }).catch(() => {});
    assert.ok(big.closed, 'the oversized message closed its connection');
    big.close();

    for (const body of ['[]', '{"socket_id":[1],"channel_name":{}}', 'socket_id=%ZZ&channel_name=%', '{', '{"socket_id":"1.2"}',
      `socket_id=1.2&channel_name=private-${'y'.repeat(100000)}`]) {
      const res = await fetch(`${base}/sdk_api/pusher/auth`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body });
      assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(body.slice(0, 40))}: ${res.status}`);
      assert.equal(typeof (await res.json()).error, 'string');
    }
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
  });

  test('1,000 channels at once stay within 48 MiB of server memory', async () => {
    // A server of its own: the figure is not blurred by the heap the tests above grew.
    const fresh = await startServer({ config: config() });
    const base = fresh.url;
    const pid = fresh.proc.pid;
    const before = await rssKiB(pid);
    const sockets = [];
    for (let i = 0; i < 1000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, async () => {
        const s = await PusherSocket.connect(base);
        await s.established();
        const sub = await s.subscribe(`public-${randomUUID()}`);
        assert.equal(sub.event, 'pusher_internal:subscription_succeeded');
        return s;
      }));
      sockets.push(...batch);
    }
    const during = await rssKiB(pid);
    const deltaMiB = (during - before) / 1024;
    console.log(`# 1,000 Pusher connections + channels: server RSS ${before} KiB -> ${during} KiB (+${deltaMiB.toFixed(1)} MiB)`);
    // A sanitizer build (make test-tsan sets CONFAB_TEST_SLOWDOWN) keeps shadow memory per byte:
    // its figure says nothing about the server's own use, so only a plain build is held to it.
    if (Number(process.env.CONFAB_TEST_SLOWDOWN ?? 1) === 1) assert.ok(deltaMiB < 48, `RSS grew ${deltaMiB.toFixed(1)} MiB`);
    for (const s of sockets) s.close();
    await fresh.stop();
    fresh.cleanup();
  });
});
