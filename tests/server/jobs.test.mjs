// Agents and jobs over real HTTP: list/execute/chat agents (JSON and SSE, context kept server-side),
// list/get/cancel jobs, bearer cancel of executions, rate limits and tenant isolation.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { getJson, idHeaders, postJson, readSse, startServer, streamText, WS } from './helpers.mjs';
import { KEY, assertError, bearer, createWorkflow, s2sConfig, send, waitJob } from './s2s_helpers.mjs';

const T = { timeout: 20000 };
let srv;
const demo = bearer(KEY.demo);
const acme = bearer(KEY.acme);
before(async () => { srv = await startServer({ config: s2sConfig() }); });
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

describe('agents', () => {
  test('GET /v1/agents lists only the workspace agent apps', T, async () => {
    const r = await getJson(`${srv.url}/v1/agents`, demo);
    assert.equal(r.status, 200);
    const ids = r.json.agents.map((a) => a.id).sort();
    assert.deepEqual(ids, ['assistant', 'broken', 'fetcher', 'slowpoke', 'summarizer']);
    assert.equal(r.json.agents.find((a) => a.id === 'fetcher').model, 'echo');
    const other = await getJson(`${srv.url}/v1/agents`, acme);
    assert.deepEqual(other.json.agents.map((a) => a.id), ['assistant']);
    assertError(await getJson(`${srv.url}/v1/agents`), 401, 'api_key_missing');
    assertError(await postJson(`${srv.url}/v1/agents`, {}, demo), 405, 'method_not_allowed');
  });

  test('execute: 202 with an execution id (a job), ?wait=true answers the finished execution', T, async () => {
    const r = await postJson(`${srv.url}/v1/agents/fetcher/execute`, { inputs: { message: 'ping' } }, demo);
    assert.equal(r.status, 202, r.text);
    const id = r.json.executionId;
    assert.match(id, /^ex_/);
    assert.equal(r.json.execution_id, id);
    const job = await waitJob(srv.url, id, demo, ['COMPLETED']);
    assert.match(job.output, /ping/);
    const w = await postJson(`${srv.url}/v1/agents/summarizer/execute?wait=true`, { inputs: { message: 'pong' } }, demo);
    assert.equal(w.status, 200, w.text);
    assert.equal(w.json.status, 'success');
    assert.match(w.json.output, /You said:[\s\S]*pong/);
    assertError(await postJson(`${srv.url}/v1/agents/fetcher/execute`, {}, demo), 400, 'invalid_request', /^inputs/);
    assertError(await postJson(`${srv.url}/v1/agents/fetcher/execute`, { inputs: [] }, demo), 400, 'invalid_request', /^inputs/);
    assertError(await postJson(`${srv.url}/v1/agents/nobody/execute`, { inputs: {} }, demo), 404, 'agent_not_found');
    assertError(await postJson(`${srv.url}/v1/agents/welcome/execute`, { inputs: { name: 'x' } }, demo), 404, 'agent_not_found',
      /welcome/);
  });

  test('chat: JSON reply, context kept server-side across turns (sessionId); SSE with Accept: text/event-stream', T, async () => {
    const first = await postJson(`${srv.url}/v1/agents/assistant/chat`, { message: 'my name is Ada' }, demo);
    assert.equal(first.status, 200, first.text);
    assert.match(first.json.sessionId, /^se_/);
    assert.match(first.json.reply, /Turn: 1/);
    assert.match(first.json.reply, /my name is Ada/);
    const second = await postJson(`${srv.url}/v1/agents/assistant/chat`, { message: 'who am I?', sessionId: first.json.sessionId }, demo);
    assert.equal(second.status, 200, second.text);
    assert.equal(second.json.sessionId, first.json.sessionId);
    assert.match(second.json.reply, /Turn: 2/, 'the server kept the first turn');
    const sse = await readSse(`${srv.url}/v1/agents/assistant/chat`, {
      method: 'POST', headers: demo, body: { message: 'stream it', sessionId: first.json.sessionId },
    });
    assert.equal(sse.status, 200);
    assert.equal(sse.headers.get('x-confab-session-id'), first.json.sessionId);
    assert.match(streamText(sse.events), /Turn: 3/);
    const done = sse.events.at(-1);
    assert.equal(done.type, 'completed');
    assert.equal(done.json.status, 'success');
    assertError(await postJson(`${srv.url}/v1/agents/assistant/chat`, {}, demo), 400, null, /message/);
    assertError(await postJson(`${srv.url}/v1/agents/assistant/chat`, { message: 'x', sessionId: 'se_nope' }, demo), 404, 'session_not_found');
    assertError(await postJson(`${srv.url}/v1/agents/welcome/chat`, { message: 'x' }, demo), 404, 'agent_not_found');
    // An end user's sessions are not the API's: acme cannot continue demo's session either.
    assertError(await postJson(`${srv.url}/v1/agents/assistant/chat`, { message: 'x', sessionId: first.json.sessionId }, acme),
      404, 'session_not_found');
  });
});

describe('jobs', () => {
  test('list executions and workflow runs as jobs, filter by type and status, page', T, async () => {
    const wf = await createWorkflow(srv.url, demo, { name: 'jobs', steps: [{ agentId: 'fetcher', action: 'a', stepOrder: 1 }] });
    const runId = (await postJson(`${srv.url}/v1/workflows/${wf.id}/run`, { input: 'x' }, demo)).json.jobId;
    await waitJob(srv.url, runId, demo, ['COMPLETED']);
    const all = await getJson(`${srv.url}/v1/jobs?size=100`, demo);
    assert.equal(all.status, 200);
    const types = new Set(all.json.content.map((j) => j.type));
    assert.ok(types.has('execution') && types.has('workflow_run'), [...types].join());
    const created = all.json.content.map((j) => j.createdAt);
    assert.deepEqual(created, [...created].sort((a, b) => b - a), 'newest first');
    const runs = await getJson(`${srv.url}/v1/jobs?type=workflow_run&size=100`, demo);
    assert.ok(runs.json.content.length > 0);
    assert.ok(runs.json.content.every((j) => j.type === 'workflow_run'));
    assert.ok(runs.json.content.some((j) => j.id === runId));
    const execs = await getJson(`${srv.url}/v1/jobs?type=execution&status=completed&size=100`, demo);
    assert.ok(execs.json.content.length > 0);
    assert.ok(execs.json.content.every((j) => j.type === 'execution' && j.status === 'COMPLETED'));
    const page = await getJson(`${srv.url}/v1/jobs?size=1&page=1`, demo);
    assert.equal(page.json.content.length, 1);
    assert.equal(page.json.content[0].id, all.json.content[1].id);
    assert.equal(page.json.totalElements, all.json.totalElements);
    assertError(await getJson(`${srv.url}/v1/jobs?type=cron`, demo), 400, 'invalid_request', /^type/);
    assertError(await getJson(`${srv.url}/v1/jobs?status=DONE`, demo), 400, 'invalid_request', /^status/);
    assertError(await getJson(`${srv.url}/v1/jobs?size=500`, demo), 400, 'invalid_request', /^size/);
    const one = await getJson(`${srv.url}/v1/jobs/${runId}`, demo);
    assert.equal(one.json.id, runId);
    assertError(await getJson(`${srv.url}/v1/jobs/ex_nope`, demo), 404, 'job_not_found');
    assertError(await getJson(`${srv.url}/v1/jobs/wr_nope`, demo), 404, 'job_not_found');
  });

  test('DELETE /v1/jobs/{id} cancels a running execution; again is 409', T, async () => {
    const r = await postJson(`${srv.url}/v1/agents/slowpoke/execute`, { inputs: { message: 'long '.repeat(10) } }, demo);
    const id = r.json.executionId;
    await waitJob(srv.url, id, demo, ['RUNNING']);
    const del = await send('DELETE', `${srv.url}/v1/jobs/${id}`, undefined, demo);
    assert.equal(del.status, 200, del.text);
    assert.equal(del.json.status, 'CANCELLED');
    assertError(await send('DELETE', `${srv.url}/v1/jobs/${id}`, undefined, demo), 409, 'conflict');
    assertError(await send('DELETE', `${srv.url}/v1/jobs/ex_nope`, undefined, demo), 404, 'execution_not_found');
    assertError(await send('PUT', `${srv.url}/v1/jobs/${id}`, {}, demo), 405, 'method_not_allowed');
  });

  test('POST /v1/executions/{id}/cancel with a bearer key cancels any execution of the workspace, an end user\'s too', T, async () => {
    // Started by an end user (identity headers), cancelled by the site's backend.
    const user = idHeaders(WS.demo, 'carol');
    const r = await postJson(`${srv.url}/v1/apps/slow/executions`, { inputs: { hero: 'Zed' } }, user);
    assert.equal(r.status, 202);
    const id = r.json.executionId;
    assertError(await postJson(`${srv.url}/v1/executions/${id}/cancel`, '', acme), 404, 'execution_not_found');
    assertError(await postJson(`${srv.url}/v1/executions/${id}/cancel`, '', bearer('wrong')), 401, 'api_key_invalid');
    const c = await postJson(`${srv.url}/v1/executions/${id}/cancel`, '', demo);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.status, 'cancelled');
    const seen = await getJson(`${srv.url}/v1/executions/${id}`, user);
    assert.equal(seen.json.status, 'cancelled');
    assertError(await postJson(`${srv.url}/v1/executions/${id}/cancel`, '', demo), 409, 'conflict');
    assertError(await postJson(`${srv.url}/v1/executions/ex_nope/cancel`, '', demo), 404, 'execution_not_found');
  });

  test('tenant isolation: agents and jobs of another workspace are 404', T, async () => {
    const r = await postJson(`${srv.url}/v1/agents/fetcher/execute?wait=true`, { inputs: { message: 'mine' } }, demo);
    const id = r.json.id;
    assertError(await getJson(`${srv.url}/v1/jobs/${id}`, acme), 404, 'job_not_found');
    assertError(await send('DELETE', `${srv.url}/v1/jobs/${id}`, undefined, acme), 404);
    assertError(await postJson(`${srv.url}/v1/agents/fetcher/execute`, { inputs: {} }, acme), 404, 'agent_not_found');
    assertError(await postJson(`${srv.url}/v1/agents/fetcher/chat`, { message: 'x' }, acme), 404, 'agent_not_found');
    const list = await getJson(`${srv.url}/v1/jobs?size=100`, acme);
    assert.ok(!list.json.content.some((j) => j.id === id));
  });
});

describe('rate limits', () => {
  test('429 with Retry-After once the workspace bucket is empty', T, async () => {
    const tiny = bearer(KEY.tiny);
    const statuses = [];
    let limited;
    for (let i = 0; i < 5; i++) {
      const r = await getJson(`${srv.url}/v1/workflows`, tiny);
      statuses.push(r.status);
      if (r.status === 429) limited = r;
    }
    assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
    assert.ok(limited, `no 429 in ${statuses}`);
    assert.equal(limited.json.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    // Another workspace is not affected.
    assert.equal((await getJson(`${srv.url}/v1/workflows`, demo)).status, 200);
  });
});
