// Two confab-server processes on ONE PostgreSQL database, as behind a round-robin load balancer
// (issue 14): what one instance decides about a caller holds on the other. A rate limit of N
// allows N requests in all, whichever instance answers each; a Pusher channel authorised through
// one instance is subscribed on the other; an MCP session made on one is used on the other, and
// ended through the other it is gone on the first too, as is one left idle; a paused workflow
// run resumed through both at once is resumed exactly once, and one cancelled through the
// instance that is not driving it ends CANCELLED without running another step.
// SQLite belongs to one process, so these run on the PostgreSQL pass only (make test-server-pg).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import {
  STORE, WS, databaseUrlFor, getJson, idHeaders, postJson, psql, readSse, sleep, startServer, streamText, testConfig, userHash,
} from './helpers.mjs';
import { PusherSocket } from './pusher_client.mjs';
import { bearer, createWorkflow, waitJob } from './s2s_helpers.mjs';

const T = { timeout: 30000 };
const N = 6;  // the acme workspace's burst; it refills one token in 1000 s, i.e. not during a test
const IDLE_SECONDS = 2;

const skip = STORE !== 'postgres' &&
  'two instances share state only through a PostgreSQL database (CONFAB_TEST_STORE=postgres); a SQLite store belongs to one process';

const OTHER_KEY = 'test-other-key';  // a third workspace, whose rate limit the tests never reach

function config() {
  const c = testConfig({ acmeRate: { perSecond: 0.001, burst: N } });
  c.workspaces[0].apps.push(
    { id: 'fetcher', type: 'agent', model: 'echo', chunkChars: 64, delayMs: 1 },
    { id: 'summarizer', type: 'agent', model: 'echo', chunkChars: 64, delayMs: 1 },
    { id: 'slowpoke', type: 'agent', model: 'echo', chunkChars: 2, delayMs: 40 },  // about 4 s a step
  );
  c.workspaces.push({ id: 'other', secrets: ['test-other-secret'], apiKeys: [OTHER_KEY], rateLimit: { perSecond: 1000, burst: 1000 }, apps: [] });
  return c;
}

// POST /v1/mcp with the demo workspace's API key.
async function mcp(url, body, headers = {}, method = 'POST') {
  const res = await fetch(`${url}/v1/mcp`, {
    method,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...bearer(WS.demo.apiKey), ...headers },
    body: method === 'DELETE' ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null, text };
}

async function initialize(url, protocolVersion) {
  const r = await mcp(url, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'lb', version: '1' } } });
  assert.equal(r.status, 200, r.text);
  return r.headers.get('mcp-session-id');
}

const ping = (url, sid, id = 2) => mcp(url, { jsonrpc: '2.0', id, method: 'ping' }, { 'Mcp-Session-Id': sid });

describe('two instances on one database', { skip }, () => {
  let a;
  let b;
  before(async () => {
    a = await startServer({ config: config(), args: ['--mcp-session-idle-seconds', String(IDLE_SECONDS)] });
    b = await startServer({ config: config(), args: ['--mcp-session-idle-seconds', String(IDLE_SECONDS)], databaseUrl: await databaseUrlFor(a.dataDir) });
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    b?.cleanup();
    a?.cleanup();
  });

  // Requests alternate A, B, A, ...: with a limiter per instance 2N would pass.
  async function alternate(count, request) {
    const statuses = [];
    let retryAfter;
    for (let i = 0; i < count; i++) {
      const r = await request(i % 2 === 0 ? a.url : b.url);
      statuses.push(r.status);
      if (r.status === 429) retryAfter ??= r.headers.get('retry-after');
    }
    return { allowed: statuses.filter((s) => s === 200).length, refused: statuses.filter((s) => s === 429).length, retryAfter };
  }

  test('a replay through B, while A has claimed the Idempotency-Key but not stored the execution yet, waits for it: 202, not 503; a chat turn runs once', T, async () => {
    // A third instance whose every transaction waits 250 ms holds the window open: its claim of
    // the key is committed, the execution row comes one (delayed) transaction later, and the run
    // is not live on B. A replay used to answer 503 "still starting" there.
    const url = await databaseUrlFor(a.dataDir);
    const slow = await startServer({ config: config(), args: ['--commit-delay-ms', '250'], databaseUrl: url });
    const body = { inputs: { name: 'Ada' } };
    // The slow instance's first request with a new key (`start(headers)`), awaited until `find(key)`
    // names the run it claimed while its execution row is not stored yet. If the window closed
    // before that was seen (a slow psql on a busy machine), again with another key.
    const openWindow = async (prefix, start, find) => {
      for (let attempt = 0; attempt < 3; attempt++) {
        const key = `${prefix}-${randomUUID()}`;
        const alice = idHeaders(WS.demo, 'alice', { 'Idempotency-Key': key });
        const first = start(alice);
        let id = '';
        for (const deadline = Date.now() + 15000; !id && Date.now() < deadline;) {
          id = await find(key);
          if (!id) await sleep(5);
        }
        assert.ok(id, 'the slow instance claimed the key');
        if (await psql(url, `SELECT count(*) FROM executions WHERE id = '${id}'`) === '0') return { alice, first, id };
        await first;
      }
      assert.fail('the window between the claim and the execution row was never seen open');
    };
    const claim = () => openWindow('slow', (alice) => postJson(`${slow.url}/v1/apps/welcome/executions`, body, alice),
      (key) => psql(url, `SELECT execution_id FROM execution_keys WHERE key = '${key}'`));
    try {
      const one = await claim();
      const replay = await postJson(`${b.url}/v1/apps/welcome/executions`, body, one.alice);
      assert.equal(replay.status, 202, replay.text);
      assert.equal(replay.json.executionId, one.id);
      assert.equal(replay.headers.get('idempotency-replayed'), 'true');
      const original = await one.first;
      assert.equal(original.status, 202, original.text);
      assert.equal(original.json.executionId, one.id);

      // A stream asked through B in the window is the run told from its start, not an empty
      // stream replayed from a store that has nothing yet.
      const two = await claim();
      const streamed = await readSse(`${b.url}/v1/apps/welcome/executions`, { method: 'POST', headers: two.alice, body });
      assert.equal(streamed.status, 200);
      assert.equal(streamed.headers.get('x-confab-execution-id'), two.id);
      assert.equal(streamText(streamed.events), 'Hello, Ada! Welcome aboard.');
      assert.equal((await two.first).json.executionId, two.id);

      // A chat turn: the turn is stored with its execution's id, the execution one transaction
      // later. A replay in between took the turn for one that had failed and ran it again: two
      // runs (two model calls) for one key.
      const turn = { message: 'only once, please' };
      const { alice, first: firstTurn, id: execId } = await openWindow('slow-turn',
        (headers) => readSse(`${slow.url}/v1/apps/assistant/chat`, { method: 'POST', headers, body: turn }),
        (key) => psql(url, 'SELECT m.execution_id FROM idempotency_keys k JOIN messages m ON m.session_id = k.session_id ' +
          `WHERE k.key = '${key}' AND m.role = 'user'`));
      const again = await readSse(`${b.url}/v1/apps/assistant/chat`, { method: 'POST', headers: alice, body: turn });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.headers.get('x-confab-execution-id'), execId, 'the replay streams the first run');
      assert.equal(again.headers.get('idempotency-replayed'), 'true');
      const firstReply = await firstTurn;
      assert.equal(firstReply.headers.get('x-confab-execution-id'), execId);
      assert.equal(streamText(again.events), streamText(firstReply.events));
      const sessionId = firstReply.headers.get('x-confab-session-id');
      assert.equal(await psql(url, `SELECT count(*) FROM executions WHERE session_id = '${sessionId}'`), '1', 'one run for one key');

      // A turn whose first request never stored its run (it failed to start it) runs again once
      // the replay has waited for it.
      await psql(url, `UPDATE messages SET execution_id = 'ex_never_started' WHERE session_id = '${sessionId}' AND role = 'user'`);
      const rerun = await readSse(`${b.url}/v1/apps/assistant/chat`, { method: 'POST', headers: alice, body: turn });
      assert.equal(rerun.status, 200, rerun.text);
      assert.notEqual(rerun.headers.get('x-confab-execution-id'), 'ex_never_started');
      assert.equal(rerun.headers.get('x-confab-session-id'), sessionId);
      assert.equal(rerun.events.at(-1).json.status, 'success');
      assert.equal(streamText(rerun.events), streamText(firstReply.events));
    } finally {
      await slow.stop();
    }
  });

  test('an MCP session made on A answers on B (with the version A negotiated); deleted through B it is gone on A', T, async () => {
    const sid = await initialize(a.url, '2025-03-26');
    // 2025-03-26 allows JSON-RPC batches: B knows the session's version without having seen it.
    const batch = await mcp(b.url, [{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', id: 2, method: 'tools/list' }], { 'Mcp-Session-Id': sid });
    assert.equal(batch.status, 200, batch.text);
    assert.equal(batch.json.length, 2);
    assert.ok(batch.json[1].result.tools.length > 0);
    assert.equal((await ping(a.url, sid)).status, 200);

    const del = await mcp(b.url, null, { 'Mcp-Session-Id': sid }, 'DELETE');
    assert.equal(del.status, 204);
    const onA = await ping(a.url, sid);
    assert.equal(onA.status, 404);
    assert.equal(onA.json.error.code, -32001);
    assert.equal((await mcp(a.url, null, { 'Mcp-Session-Id': sid }, 'DELETE')).status, 404);
    // Another workspace's credential does not find it either (a live one of demo, asked as other).
    const live = await initialize(b.url, '2025-11-25');
    assert.equal((await mcp(a.url, { jsonrpc: '2.0', id: 3, method: 'ping' }, { 'Mcp-Session-Id': live, ...bearer(OTHER_KEY) })).status, 404);
  });

  test('an MCP session\'s idle time counts use on either instance; once idle past it, both refuse it', T, async () => {
    const sid = await initialize(a.url, '2025-11-25');
    await sleep(IDLE_SECONDS * 600);
    assert.equal((await ping(b.url, sid)).status, 200, 'used through B');
    await sleep(IDLE_SECONDS * 600);
    // A last saw it 1.2 idle periods ago, but B used it 0.6 ago: alive.
    assert.equal((await ping(a.url, sid)).status, 200, 'A counts B\'s use');
    await sleep(IDLE_SECONDS * 1000 + 500);
    assert.equal((await ping(b.url, sid)).status, 404);
    assert.equal((await ping(a.url, sid)).status, 404);
  });
  test('a paused workflow run resumed through A and B at once is resumed once: one 202, one 409', T, async () => {
    const demo = bearer(WS.demo.apiKey);
    const wf = await createWorkflow(a.url, demo, {
      name: 'approval',
      steps: [
        { agentId: 'fetcher', action: 'Draft:', stepOrder: 1 },
        { agentId: 'human_approval', action: 'Approve the draft', stepOrder: 2 },
        { agentId: 'summarizer', action: 'Publish:', stepOrder: 3 },
      ],
    });
    for (let round = 0; round < 3; round++) {
      const start = await postJson(`${a.url}/v1/workflows/${wf.id}/run`, { input: `numbers ${round}` }, demo);
      assert.equal(start.status, 202, start.text);
      const runId = start.json.jobId;
      // Paused on A, seen PAUSED through B.
      assert.equal((await waitJob(b.url, runId, demo, ['PAUSED', 'COMPLETED', 'FAILED'])).status, 'PAUSED');
      const [ra, rb] = await Promise.all([
        postJson(`${a.url}/v1/workflows/runs/${runId}/resume`, { output: `APPROVED by A ${round}` }, demo),
        postJson(`${b.url}/v1/workflows/runs/${runId}/resume`, { output: `APPROVED by B ${round}` }, demo),
      ]);
      assert.deepEqual([ra.status, rb.status].sort(), [202, 409], `${ra.text} / ${rb.text}`);
      const winner = ra.status === 202 ? 'A' : 'B';
      const done = await waitJob(a.url, runId, demo, ['COMPLETED', 'FAILED']);
      assert.equal(done.status, 'COMPLETED');
      assert.equal(done.steps.length, 3);
      assert.equal(done.steps[1].output, `APPROVED by ${winner} ${round}`);
      assert.match(done.output, new RegExp(`APPROVED by ${winner} ${round}`));
    }
  });

  test('a run driven by A, cancelled through B: 200 CANCELLED, and A runs no further step nor overwrites it', T, async () => {
    const demo = bearer(WS.demo.apiKey);
    const wf = await createWorkflow(a.url, demo, {
      name: 'slow',
      steps: [{ agentId: 'slowpoke', action: 'take your time', stepOrder: 1 }, { agentId: 'fetcher', action: 'never', stepOrder: 2 }],
    });
    const start = await postJson(`${a.url}/v1/workflows/${wf.id}/run`, { input: 'x'.repeat(40) }, demo);
    const runId = start.json.jobId;
    await waitJob(a.url, runId, demo, ['RUNNING']);
    const c = await postJson(`${b.url}/v1/executions/${runId}/cancel`, '', demo);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.status, 'CANCELLED');
    // A learns of it at the latest when its step ends (about 4 s) and stops there.
    let job;
    for (let i = 0; i < 150; i++) {
      job = (await getJson(`${a.url}/v1/jobs/${runId}`, demo)).json;
      if (job.steps.length >= 1) break;
      await sleep(100);
    }
    await sleep(500);
    job = (await getJson(`${b.url}/v1/jobs/${runId}`, demo)).json;
    assert.equal(job.status, 'CANCELLED', JSON.stringify(job));
    assert.equal(job.steps.length, 1, 'step 2 never ran');
  });

  test('a Pusher channel authorised through A is subscribed on B; a forged signature is refused there', T, async () => {
    const socket = await PusherSocket.connect(b.url);
    try {
      const socketId = await socket.established();
      const channel = `private-${randomUUID()}`;
      const headers = { user_id: 'ada', workspace_id: WS.demo.id, user_id_hashed: userHash(WS.demo.secret, 'ada') };
      const auth = async (url) => {
        const res = await fetch(`${url}/sdk_api/pusher/auth`, {
          method: 'POST', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
          body: `socket_id=${encodeURIComponent(socketId)}&channel_name=${encodeURIComponent(channel)}`,
        });
        assert.equal(res.status, 200);
        return (await res.json()).auth;
      };
      const fromA = await auth(a.url);
      assert.equal(fromA, await auth(b.url), 'both instances sign alike (no pusher.secret configured)');
      const forged = `${fromA.slice(0, -4)}0000`;
      const refused = await socket.subscribe(channel, forged === fromA ? `${fromA.slice(0, -4)}1111` : forged);
      assert.equal(refused.event, 'pusher:subscription_error');
      const sub = await socket.subscribe(channel, fromA);
      assert.equal(sub.event, 'pusher_internal:subscription_succeeded');
    } finally {
      socket.close();
    }
  });

  test('a user\'s rate limit of N holds across both: N requests allowed in all, the rest 429 with Retry-After', T, async () => {
    const user = `ada-${randomUUID()}`;
    const r = await alternate(2 * N + 2, async (url) => {
      const res = await fetch(`${url}/v1/apps/summary`, { headers: idHeaders(WS.acme, user) });
      await res.arrayBuffer();
      return res;
    });
    assert.deepEqual({ allowed: r.allowed, refused: r.refused }, { allowed: N, refused: N + 2 });
    assert.ok(Number(r.retryAfter) >= 1, `Retry-After ${r.retryAfter}`);
    // Another user of the workspace has a bucket of their own, on either instance.
    const other = await fetch(`${b.url}/v1/apps/summary`, { headers: idHeaders(WS.acme, `eve-${randomUUID()}`) });
    assert.equal(other.status, 200);
  });

  test('concurrent requests through both (gathered into shared takes) still get exactly N through', T, async () => {
    const user = `bob-${randomUUID()}`;
    const statuses = await Promise.all(Array.from({ length: 4 * N }, async (_, i) => {
      const res = await fetch(`${i % 2 === 0 ? a.url : b.url}/v1/apps/summary`, { headers: idHeaders(WS.acme, user) });
      await res.arrayBuffer();
      return res.status;
    }));
    assert.equal(statuses.filter((s) => s === 200).length, N, statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 429).length, 3 * N);
  });

  test('a server-to-server credential\'s rate limit of N holds across both too', T, async () => {
    const r = await alternate(2 * N, (url) => getJson(`${url}/v1/workflows`, bearer(WS.acme.apiKey)));
    assert.deepEqual({ allowed: r.allowed, refused: r.refused }, { allowed: N, refused: N });
  });
});
