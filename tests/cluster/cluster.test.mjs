// Several confab-server instances on one PostgreSQL database behind nginx round-robin: what a
// client sees does not depend on which instance answers. Every assertion that a request crossed
// instances reads nginx's X-Upstream header.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { STORY, WS, getJson, idHeaders, postJson, readSse, streamText } from '../server/helpers.mjs';
import { KEY, bearer, createWorkflow, waitJob } from '../server/s2s_helpers.mjs';
import { startCluster, steer } from './cluster.mjs';
import { clusterConfig, dense, openStream } from './streams.mjs';

const LEASE_MS = 1500;
const T = { timeout: 30000 };
let c;

before(async () => {
  c = await startCluster({ config: clusterConfig(), args: ['--instance-lease-ms', String(LEASE_MS)] });
});
after(async () => { if (c) await c.stop(); });

const sse = (body, headers) => ({
  method: 'POST',
  headers: { ...headers, Accept: 'text/event-stream', 'Content-Type': 'application/json' },
  body: JSON.stringify(body),
});

test('a chat turn started on one instance is read live on another and continued on a third', T, async () => {
  const h = idHeaders(WS.demo, 'cluster-chat');
  const turn1 = await openStream(c, `${c.url}/v1/apps/chatty/chat`, sse({ message: 'First question, asked of instance A' }, h));
  const a = turn1.instance;
  const id1 = turn1.res.headers.get('x-confab-execution-id');
  const session = turn1.res.headers.get('x-confab-session-id');
  assert.match(id1, /^ex_/);
  await turn1.waitFor((evs) => evs.length >= 2);
  // The same turn read on another instance while A still streams it: the same events, to the end.
  const live = await openStream(c, `${c.url}/v1/executions/${id1}/events`, { headers: h }, [a]);
  assert.notEqual(live.instance, a);
  await Promise.all([turn1.done, live.done]);
  assert.equal(turn1.events.at(-1).type, 'completed');
  assert.equal(turn1.events.at(-1).json.status, 'success');
  assert.ok(dense(live.events), 'the reader on B gets 1..N');
  assert.deepEqual(live.events.map((e) => [e.id, e.type, e.data]), turn1.events.map((e) => [e.id, e.type, e.data]));

  // The second turn of the session on an instance other than A and B.
  const turn2 = await openStream(c, `${c.url}/v1/apps/chatty/chat`,
    sse({ message: 'Second one, on instance C', sessionId: session }, h), [a, live.instance]);
  await turn2.done;
  assert.equal(turn2.res.headers.get('x-confab-session-id'), session);
  assert.equal(turn2.events.at(-1).json.status, 'success');
  const reply1 = streamText(turn1.events);
  const reply2 = streamText(turn2.events);
  // The whole session, read through each of the three instances.
  const seen = new Set();
  for (let n = 0; n < 6 && seen.size < 3; n++) {
    const got = await getJson(`${c.url}/v1/sessions/${session}`, h);
    seen.add(c.instanceOf(got));
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.json.messages.map((m) => [m.role, m.content]), [
      ['user', 'First question, asked of instance A'], ['assistant', reply1],
      ['user', 'Second one, on instance C'], ['assistant', reply2],
    ]);
  }
  assert.equal(seen.size, 3, 'the session was read on every instance');
});

test('a stream followed on instance B while A runs it: every event once, in order, to completed', T, async () => {
  const h = idHeaders(WS.demo, 'cluster-follow');
  const start = await postJson(`${c.url}/v1/apps/steady/executions`, { inputs: { hero: 'Follower' } }, h);
  assert.equal(start.status, 202, start.text);
  const a = c.instanceOf(start);
  const id = start.json.executionId;
  const b = await openStream(c, `${c.url}/v1/executions/${id}/events`, { headers: h }, [a]);
  assert.notEqual(b.instance, a);
  // Joined mid-run: a later reader on a third instance, resuming after event 5.
  await b.waitFor((evs) => evs.length >= 10);
  const third = await openStream(c, `${c.url}/v1/executions/${id}/events`,
    { headers: { ...h, 'Last-Event-ID': '5' } }, [a, b.instance]);
  await Promise.all([b.done, third.done]);
  const finished = await getJson(`${c.url}/v1/executions/${id}`, h);
  assert.equal(finished.json.status, 'success', finished.text);
  assert.ok(b.events.length > 20, `B followed the live run (${b.events.length} events)`);
  assert.ok(dense(b.events), `B's events are 1..N: ${b.events.map((e) => e.id)}`);
  assert.equal(b.events.at(-1).type, 'completed', 'B\'s stream ends with the run, not with what was stored when it joined');
  assert.equal(b.events.at(-1).json.status, 'success');
  assert.equal(streamText(b.events), `Follower: ${STORY}`);
  assert.deepEqual(third.events.map((e) => Number(e.id)), b.events.slice(5).map((e) => Number(e.id)));
  // A's own replay (the owner) agrees byte for byte.
  const stored = await readSse(`${c.servers[a].url}/v1/executions/${id}/events`, { headers: h });
  assert.deepEqual(stored.events.map((e) => [e.id, e.type, e.data]), b.events.map((e) => [e.id, e.type, e.data]));
});

test('a paused workflow run is resumed through another instance and completes', T, async () => {
  const k = { ...bearer(KEY.demo) };
  const wf = await createWorkflow(c.url, k, {
    name: 'cluster approval',
    steps: [
      { agentId: 'fetcher', action: 'Draft:', stepOrder: 1 },
      { agentId: 'human_approval', action: 'Approve the draft', stepOrder: 2 },
      { agentId: 'summarizer', action: 'Publish:', stepOrder: 3 },
    ],
  });
  const start = await postJson(`${c.url}/v1/workflows/${wf.id}/run`, { input: 'cluster numbers' }, k);
  assert.equal(start.status, 202, start.text);
  const a = c.instanceOf(start);
  const runId = start.json.jobId;
  const paused = await waitJob(c.url, runId, k, ['PAUSED', 'COMPLETED', 'FAILED']);
  assert.equal(paused.status, 'PAUSED');
  await steer(c, [a]);
  const resumed = await postJson(`${c.url}/v1/workflows/runs/${runId}/resume`, { output: 'APPROVED on another instance' }, k);
  assert.notEqual(c.instanceOf(resumed), a, 'resumed on another instance than the one that ran it');
  assert.equal(resumed.status, 202, resumed.text);
  const done = await waitJob(c.url, runId, k, ['COMPLETED', 'FAILED']);
  assert.equal(done.status, 'COMPLETED');
  assert.equal(done.steps[1].output, 'APPROVED on another instance');
  assert.match(done.output, /Publish:\n\nAPPROVED on another instance/);
  // Every instance reads the finished run the same.
  for (let n = 0; n < 3; n++) {
    const got = await getJson(`${c.url}/v1/jobs/${runId}`, k);
    assert.equal(got.json.status, 'COMPLETED', `instance ${c.instanceOf(got)}`);
  }
});

test('a rate limit holds across instances: the bucket is the workspace\'s, not an instance\'s', T, async () => {
  // Workspace `tiny`: 0.2 requests/s, burst 3. Each instance alone would let 3 through: 9 in all.
  const tiny = bearer(KEY.tiny);
  const statuses = [];
  const instances = new Set();
  for (let i = 0; i < 9; i++) {
    const r = await getJson(`${c.url}/v1/workflows`, tiny);
    statuses.push(r.status);
    instances.add(c.instanceOf(r));
    if (r.status === 429) {
      assert.equal(r.json.code, 'rate_limited');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
  }
  assert.equal(instances.size, 3, 'the requests went to every instance');
  const ok = statuses.filter((s) => s === 200).length;
  // 3 from the burst, plus at most one token refilled (0.2/s) while the 9 requests ran.
  assert.ok(ok >= 3 && ok <= 4, `3 (or 4) of 9 allowed across the cluster, got ${statuses}`);
  assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
});
