// Workflows over real HTTP: CRUD, steps, clone, paging, runs (the two-step Daily Market Briefing,
// a human-approval pause and resume, cancel mid-run), executions, validation and tenant isolation.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { getJson, postJson, startServer } from './helpers.mjs';
import {
  BRIEFING, KEY, assertError, bearer, createWorkflow, s2sConfig, send, waitJob,
} from './s2s_helpers.mjs';

const T = { timeout: 20000 };
let srv;
const demo = bearer(KEY.demo);
const acme = bearer(KEY.acme);
before(async () => { srv = await startServer({ config: s2sConfig() }); });
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

describe('workflow definitions', () => {
  test('create (201), get, patch only the given fields, list steps in order, delete (204) with its steps', T, async () => {
    const created = await postJson(`${srv.url}/v1/workflows`, {
      name: 'Ordered', description: 'd1',
      steps: [
        { agentId: 'summarizer', action: 'second', stepOrder: 20 },
        { agentId: 'fetcher', action: 'first', stepOrder: 10 },
      ],
    }, demo);
    assert.equal(created.status, 201, created.text);
    const wf = created.json;
    assert.match(wf.id, /^wf_[0-9a-f]{32}$/);
    assert.equal(created.headers.get('location'), `/v1/workflows/${wf.id}`);
    assert.deepEqual(wf.steps.map((s) => s.action), ['first', 'second']);

    const got = await getJson(`${srv.url}/v1/workflows/${wf.id}`, demo);
    assert.equal(got.status, 200);
    assert.equal(got.json.name, 'Ordered');
    assert.equal(got.json.description, 'd1');

    const patched = await send('PATCH', `${srv.url}/v1/workflows/${wf.id}`, { name: 'Renamed' }, demo);
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.name, 'Renamed');
    assert.equal(patched.json.description, 'd1', 'fields not given stay');
    assert.equal(patched.json.steps.length, 2, 'steps not given stay');
    assert.ok(patched.json.updatedAt >= wf.updatedAt);
    const cleared = await send('PATCH', `${srv.url}/v1/workflows/${wf.id}`, { description: null }, demo);
    assert.equal(cleared.json.description, null);
    assert.equal(cleared.json.name, 'Renamed');

    const steps = await getJson(`${srv.url}/v1/workflows/${wf.id}/steps`, demo);
    assert.equal(steps.status, 200);
    assert.deepEqual(steps.json.map((s) => s.stepOrder), [10, 20]);

    const del = await send('DELETE', `${srv.url}/v1/workflows/${wf.id}`, undefined, demo);
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assertError(await getJson(`${srv.url}/v1/workflows/${wf.id}`, demo), 404, 'workflow_not_found');
    assertError(await getJson(`${srv.url}/v1/workflows/${wf.id}/steps`, demo), 404, 'workflow_not_found');
    assertError(await send('DELETE', `${srv.url}/v1/workflows/${wf.id}`, undefined, demo), 404, 'workflow_not_found');
    assertError(await send('PATCH', `${srv.url}/v1/workflows/${wf.id}`, { name: 'x' }, demo), 404, 'workflow_not_found');
  });

  test('add a step (201) keeps the order; duplicate stepOrder 409; delete a step (204), unknown step 404', T, async () => {
    const wf = await createWorkflow(srv.url, demo, { name: 'Steps' });
    assert.deepEqual(wf.steps, []);
    const a = await postJson(`${srv.url}/v1/workflows/${wf.id}/steps`, { agentId: 'summarizer', action: 'b', stepOrder: 2 }, demo);
    assert.equal(a.status, 201, a.text);
    assert.match(a.json.id, /^st_/);
    const b = await postJson(`${srv.url}/v1/workflows/${wf.id}/steps`, { agentId: 'fetcher', action: 'a', stepOrder: 1 }, demo);
    assert.equal(b.status, 201);
    const c = await postJson(`${srv.url}/v1/workflows/${wf.id}/steps`, { agentId: 'human_approval', action: 'ok?', stepOrder: 3 }, demo);
    assert.equal(c.status, 201);
    assertError(await postJson(`${srv.url}/v1/workflows/${wf.id}/steps`, { agentId: 'fetcher', action: 'dup', stepOrder: 2 }, demo),
      409, 'step_order_taken', /stepOrder/);
    let steps = (await getJson(`${srv.url}/v1/workflows/${wf.id}/steps`, demo)).json;
    assert.deepEqual(steps.map((s) => s.action), ['a', 'b', 'ok?']);

    const del = await send('DELETE', `${srv.url}/v1/workflows/${wf.id}/steps/${a.json.id}`, undefined, demo);
    assert.equal(del.status, 204);
    steps = (await getJson(`${srv.url}/v1/workflows/${wf.id}/steps`, demo)).json;
    assert.deepEqual(steps.map((s) => s.action), ['a', 'ok?']);
    assertError(await send('DELETE', `${srv.url}/v1/workflows/${wf.id}/steps/${a.json.id}`, undefined, demo), 404, 'step_not_found');
    assertError(await postJson(`${srv.url}/v1/workflows/wf_nope/steps`, { agentId: 'fetcher', action: 'a', stepOrder: 1 }, demo),
      404, 'workflow_not_found');
  });

  test('clone (201) is a deep copy named "<name> (Copy)"', T, async () => {
    const wf = await createWorkflow(srv.url, demo, { name: 'Original', description: 'keep', steps: BRIEFING.steps });
    const r = await postJson(`${srv.url}/v1/workflows/${wf.id}/clone`, '', demo);
    assert.equal(r.status, 201, r.text);
    assert.notEqual(r.json.id, wf.id);
    assert.equal(r.json.name, 'Original (Copy)');
    assert.equal(r.json.description, 'keep');
    assert.deepEqual(r.json.steps.map((s) => [s.agentId, s.action, s.stepOrder]), wf.steps.map((s) => [s.agentId, s.action, s.stepOrder]));
    for (let i = 0; i < wf.steps.length; i++) assert.notEqual(r.json.steps[i].id, wf.steps[i].id, 'steps are copies');
    // Editing the copy leaves the original alone.
    await send('DELETE', `${srv.url}/v1/workflows/${r.json.id}/steps/${r.json.steps[0].id}`, undefined, demo);
    assert.equal((await getJson(`${srv.url}/v1/workflows/${wf.id}/steps`, demo)).json.length, 2);
    assertError(await postJson(`${srv.url}/v1/workflows/wf_nope/clone`, '', demo), 404, 'workflow_not_found');
  });

  test('validation: 400 naming the field, unknown fields rejected, 405 for wrong methods', T, async () => {
    const url = `${srv.url}/v1/workflows`;
    assertError(await postJson(url, {}, demo), 400, 'invalid_request', /^name/);
    assertError(await postJson(url, { name: '' }, demo), 400, 'invalid_request', /^name/);
    assertError(await postJson(url, { name: 5 }, demo), 400, 'invalid_request', /^name/);
    assertError(await postJson(url, { name: 'x', description: 7 }, demo), 400, 'invalid_request', /^description/);
    assertError(await postJson(url, { name: 'x', steps: {} }, demo), 400, 'invalid_request', /^steps/);
    assertError(await postJson(url, { name: 'x', steps: [{ agentId: 'nobody', action: 'a', stepOrder: 1 }] }, demo),
      400, 'invalid_request', /^steps\[0\]\.agentId/);
    assertError(await postJson(url, { name: 'x', steps: [{ agentId: 'welcome', action: 'a', stepOrder: 1 }] }, demo),
      400, 'invalid_request', /agentId.*not an agent/);
    assertError(await postJson(url, { name: 'x', steps: [{ agentId: 'fetcher', stepOrder: 1 }] }, demo),
      400, 'invalid_request', /^steps\[0\]\.action/);
    assertError(await postJson(url, { name: 'x', steps: [{ agentId: 'fetcher', action: 'a', stepOrder: -1 }] }, demo),
      400, 'invalid_request', /^steps\[0\]\.stepOrder/);
    assertError(await postJson(url, { name: 'x', steps: [{ agentId: 'fetcher', action: 'a', stepOrder: 1 }, { agentId: 'fetcher', action: 'b', stepOrder: 1 }] }, demo),
      400, 'invalid_request', /^steps\[1\]\.stepOrder/);
    assertError(await postJson(url, { name: 'x', colour: 'red' }, demo), 400, 'invalid_request', /^colour/);
    assertError(await postJson(url, '{"name":', demo), 400, 'invalid_json');
    const wf = await createWorkflow(srv.url, demo, { name: 'v' });
    assertError(await send('PATCH', `${url}/${wf.id}`, { name: '' }, demo), 400, 'invalid_request', /^name/);
    assertError(await send('PATCH', `${url}/${wf.id}`, { steps: 'no' }, demo), 400, 'invalid_request', /^steps/);
    assertError(await postJson(`${url}/${wf.id}/steps`, { agentId: 'fetcher', action: 'a' }, demo), 400, 'invalid_request', /^stepOrder/);
    assertError(await postJson(`${url}/${wf.id}/run`, {}, demo), 400, 'invalid_request', /^input/);
    assertError(await postJson(`${url}/${wf.id}/run`, { input: 'x', sessionId: 5 }, demo), 400, 'invalid_request', /^sessionId/);
    assertError(await postJson(`${url}/${wf.id}/execute`, { inputs: 'x' }, demo), 400, 'invalid_request', /^inputs/);
    const put = await send('PUT', `${url}/${wf.id}`, { name: 'x' }, demo);
    assertError(put, 405, 'method_not_allowed');
    assert.match(put.headers.get('allow'), /PATCH/);
    assertError(await getJson(`${url}/${wf.id}/clone`, demo), 405, 'method_not_allowed');
  });

  test('auth: no, wrong or another kind of credential is 401', T, async () => {
    const r = await getJson(`${srv.url}/v1/workflows`);
    assertError(r, 401, 'api_key_missing');
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    assertError(await getJson(`${srv.url}/v1/workflows`, bearer('not-a-key')), 401, 'api_key_invalid');
    assertError(await getJson(`${srv.url}/v1/workflows`, { Authorization: `Basic ${KEY.demo}` }), 401, 'api_key_missing');
  });
});

describe('paging', () => {
  test('empty, full pages, the last page, past the end, size over the maximum, bad sort', T, async () => {
    // A workspace of its own so other tests' workflows do not count: acme starts empty.
    const empty = await getJson(`${srv.url}/v1/workflows?page=0&size=20`, acme);
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.json, { content: [], totalElements: 0, totalPages: 0, number: 0, size: 20 });
    const names = [];
    for (let i = 0; i < 5; i++) {
      names.push(`page-${i}`);
      await createWorkflow(srv.url, acme, { name: `page-${i}` });
    }
    const p0 = await getJson(`${srv.url}/v1/workflows?page=0&size=2&sort=createdAt,desc`, acme);
    assert.equal(p0.json.totalElements, 5);
    assert.equal(p0.json.totalPages, 3);
    assert.equal(p0.json.number, 0);
    assert.deepEqual(p0.json.content.map((w) => w.name), ['page-4', 'page-3']);
    const last = await getJson(`${srv.url}/v1/workflows?page=2&size=2&sort=createdAt,desc`, acme);
    assert.deepEqual(last.json.content.map((w) => w.name), ['page-0'], 'the last page holds the remainder');
    assert.equal(last.json.number, 2);
    const past = await getJson(`${srv.url}/v1/workflows?page=3&size=2`, acme);
    assert.equal(past.status, 200);
    assert.deepEqual(past.json.content, []);
    assert.equal(past.json.totalElements, 5);
    const asc = await getJson(`${srv.url}/v1/workflows?size=100&sort=createdAt,asc`, acme);
    assert.deepEqual(asc.json.content.map((w) => w.name), names);
    const byName = await getJson(`${srv.url}/v1/workflows?sort=name,desc`, acme);
    assert.deepEqual(byName.json.content.map((w) => w.name), [...names].reverse());
    assertError(await getJson(`${srv.url}/v1/workflows?size=101`, acme), 400, 'invalid_request', /^size/);
    assertError(await getJson(`${srv.url}/v1/workflows?size=0`, acme), 400, 'invalid_request', /^size/);
    assertError(await getJson(`${srv.url}/v1/workflows?page=-1`, acme), 400, 'invalid_request', /^page/);
    assertError(await getJson(`${srv.url}/v1/workflows?page=x`, acme), 400, 'invalid_request', /^page/);
    assertError(await getJson(`${srv.url}/v1/workflows?sort=colour,asc`, acme), 400, 'invalid_request', /^sort/);
    assertError(await getJson(`${srv.url}/v1/workflows?sort=name,sideways`, acme), 400, 'invalid_request', /^sort/);
    // Runs of a workflow page the same way.
    const wf = (await getJson(`${srv.url}/v1/workflows?size=1`, acme)).json.content[0];
    const runs = await getJson(`${srv.url}/v1/workflows/${wf.id}/runs`, acme);
    assert.deepEqual(runs.json, { content: [], totalElements: 0, totalPages: 0, number: 0, size: 20 });
    assertError(await getJson(`${srv.url}/v1/workflows/${wf.id}/runs?size=1000`, acme), 400, 'invalid_request', /^size/);
  });
});

describe('runs', () => {
  test('Daily Market Briefing (config seed): fetch then summarize, each output feeding the next', T, async () => {
    const seeded = await getJson(`${srv.url}/v1/workflows/${BRIEFING.id}`, demo);
    assert.equal(seeded.status, 200, seeded.text);
    assert.equal(seeded.json.name, 'Daily Market Briefing');
    const start = await postJson(`${srv.url}/v1/workflows/${BRIEFING.id}/run`, { input: 'ACME Corp shares', sessionId: 'morning-1' }, demo);
    assert.equal(start.status, 202, start.text);
    assert.deepEqual(Object.keys(start.json).sort(), ['jobId', 'sessionId', 'status', 'workflowId']);
    assert.equal(start.json.workflowId, BRIEFING.id);
    assert.equal(start.json.sessionId, 'morning-1');
    const run = await waitJob(srv.url, start.json.jobId, demo, ['COMPLETED', 'FAILED']);
    assert.equal(run.status, 'COMPLETED', JSON.stringify(run));
    assert.equal(run.type, 'workflow_run');
    assert.equal(run.currentStepOrder, 2);
    assert.equal(run.steps.length, 2);
    const [fetch, summary] = run.steps;
    assert.equal(fetch.agentId, 'fetcher');
    // Step 1 got its action plus the run's input; step 2 got its action plus step 1's output.
    assert.match(fetch.output, /Fetch the market news for:\n\nACME Corp shares/);
    assert.ok(summary.output.includes('Summarize:'), summary.output);
    assert.ok(summary.output.includes(fetch.output.trim().split('\n')[0]), 'step 1 output is inside step 2 input');
    assert.ok(summary.output.includes('ACME Corp shares'));
    assert.equal(run.output, summary.output);
    // Each step is an execution of its agent, visible as a job.
    const stepJob = await getJson(`${srv.url}/v1/jobs/${fetch.executionId}`, demo);
    assert.equal(stepJob.json.type, 'execution');
    assert.equal(stepJob.json.appId, 'fetcher');
    assert.equal(stepJob.json.status, 'COMPLETED');

    const runs = await getJson(`${srv.url}/v1/workflows/${BRIEFING.id}/runs`, demo);
    assert.equal(runs.status, 200);
    const item = runs.json.content.find((r) => r.id === start.json.jobId);
    assert.equal(item.status, 'COMPLETED');
    for (const k of ['id', 'workflowId', 'sessionId', 'status', 'currentStepOrder', 'durationMs', 'createdAt', 'updatedAt']) {
      assert.ok(k in item, `run item has ${k}`);
    }
    assert.equal(typeof item.durationMs, 'number');
    assert.ok(item.durationMs >= 0);
    const one = await getJson(`${srv.url}/v1/workflows/runs/${start.json.jobId}`, demo);
    assert.equal(one.json.status, 'COMPLETED');
    assertError(await getJson(`${srv.url}/v1/workflows/runs/wr_nope`, demo), 404, 'run_not_found');
    assertError(await postJson(`${srv.url}/v1/workflows/wf_nope/run`, { input: 'x' }, demo), 404, 'workflow_not_found');
  });

  test('runs list newest first', T, async () => {
    const wf = await createWorkflow(srv.url, demo, { name: 'order', steps: [{ agentId: 'fetcher', action: 'a', stepOrder: 1 }] });
    const ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await postJson(`${srv.url}/v1/workflows/${wf.id}/run`, { input: `n${i}` }, demo)).json.jobId);
    }
    for (const id of ids) await waitJob(srv.url, id, demo, ['COMPLETED']);
    const runs = await getJson(`${srv.url}/v1/workflows/${wf.id}/runs?size=2`, demo);
    assert.equal(runs.json.totalElements, 3);
    assert.equal(runs.json.totalPages, 2);
    assert.deepEqual(runs.json.content.map((r) => r.id), [ids[2], ids[1]]);
    const page1 = await getJson(`${srv.url}/v1/workflows/${wf.id}/runs?size=2&page=1`, demo);
    assert.deepEqual(page1.json.content.map((r) => r.id), [ids[0]]);
    assertError(await getJson(`${srv.url}/v1/workflows/wf_nope/runs`, demo), 404, 'workflow_not_found');
  });

  test('execute {inputs} -> execution_id; GET executions/{id}: status, outputs, error trace', T, async () => {
    const r = await postJson(`${srv.url}/v1/workflows/${BRIEFING.id}/execute`, { inputs: { input: 'bonds' } }, demo);
    assert.equal(r.status, 202, r.text);
    const id = r.json.execution_id;
    assert.match(id, /^wr_/);
    await waitJob(srv.url, id, demo, ['COMPLETED']);
    const ex = await getJson(`${srv.url}/v1/workflows/${BRIEFING.id}/executions/${id}`, demo);
    assert.equal(ex.status, 200);
    assert.equal(ex.json.status, 'COMPLETED');
    assert.equal(ex.json.outputs.length, 2);
    assert.match(ex.json.outputs[0], /bonds/);
    assert.deepEqual(ex.json.errorTrace, []);
    assertError(await getJson(`${srv.url}/v1/workflows/${BRIEFING.id}/executions/wr_nope`, demo), 404, 'execution_not_found');
    // The run exists, but not under another workflow.
    const other = await createWorkflow(srv.url, demo, { name: 'other' });
    assertError(await getJson(`${srv.url}/v1/workflows/${other.id}/executions/${id}`, demo), 404, 'execution_not_found');

    // A failing step fails the run: FAILED, the error names the step, the trace has it, later steps never ran.
    const bad = await createWorkflow(srv.url, demo, {
      name: 'fails', steps: [{ agentId: 'fetcher', action: 'ok', stepOrder: 1 }, { agentId: 'broken', action: 'boom', stepOrder: 2 },
        { agentId: 'summarizer', action: 'never', stepOrder: 3 }],
    });
    const badRun = await postJson(`${srv.url}/v1/workflows/${bad.id}/execute`, { inputs: { input: 'x' } }, demo);
    await waitJob(srv.url, badRun.json.execution_id, demo, ['FAILED']);
    const failed = await getJson(`${srv.url}/v1/workflows/${bad.id}/executions/${badRun.json.execution_id}`, demo);
    assert.equal(failed.json.status, 'FAILED');
    assert.match(failed.json.error, /^step 2 \(broken\): /);
    assert.equal(failed.json.outputs.length, 1, 'the output of step 1 is kept');
    assert.equal(failed.json.errorTrace.length, 1);
    assert.equal(failed.json.errorTrace[0].stepOrder, 2);
    assert.equal(failed.json.errorTrace[0].agentId, 'broken');
    assert.equal(failed.json.currentStepOrder, 2);
    assert.equal(failed.json.steps.length, 2, 'step 3 never ran');

    const wf = await createWorkflow(srv.url, demo, { name: 'breaks', steps: [{ agentId: 'fetcher', action: 'a', stepOrder: 1 }] });
    const noInputs = await postJson(`${srv.url}/v1/workflows/${wf.id}/execute`, { inputs: { a: 1, b: 'two' } }, demo);
    const done = await waitJob(srv.url, noInputs.json.execution_id, demo, ['COMPLETED']);
    assert.match(done.steps[0].output, /\{"a":1,"b":"two"\}/, 'non-text inputs are fed as JSON');
  });

  test('human approval: PAUSED with currentStepOrder, listed PAUSED, resumed with the approved text, completed; resume again 409', T, async () => {
    const wf = await createWorkflow(srv.url, demo, {
      name: 'approval',
      steps: [
        { agentId: 'fetcher', action: 'Draft:', stepOrder: 1 },
        { agentId: 'human_approval', action: 'Approve the draft', stepOrder: 2 },
        { agentId: 'summarizer', action: 'Publish:', stepOrder: 3 },
      ],
    });
    const start = await postJson(`${srv.url}/v1/workflows/${wf.id}/run`, { input: 'quarterly numbers' }, demo);
    const runId = start.json.jobId;
    const paused = await waitJob(srv.url, runId, demo, ['PAUSED', 'COMPLETED', 'FAILED']);
    assert.equal(paused.status, 'PAUSED');
    assert.equal(paused.currentStepOrder, 2);
    const listed = await getJson(`${srv.url}/v1/workflows/${wf.id}/runs`, demo);
    assert.equal(listed.json.content[0].status, 'PAUSED');
    assert.equal(listed.json.content[0].currentStepOrder, 2);
    const pausedJobs = await getJson(`${srv.url}/v1/jobs?type=workflow_run&status=PAUSED`, demo);
    assert.ok(pausedJobs.json.content.some((j) => j.id === runId));

    assertError(await postJson(`${srv.url}/v1/workflows/runs/${runId}/resume`, {}, demo), 400, 'invalid_request', /^output/);
    const resumed = await postJson(`${srv.url}/v1/workflows/runs/${runId}/resume`, { output: 'APPROVED: numbers look good' }, demo);
    assert.equal(resumed.status, 202, resumed.text);
    assert.equal(resumed.json.runId, runId);
    assert.equal(resumed.json.jobId, runId);
    const done = await waitJob(srv.url, runId, demo, ['COMPLETED', 'FAILED']);
    assert.equal(done.status, 'COMPLETED');
    assert.equal(done.currentStepOrder, 3);
    assert.equal(done.steps.length, 3);
    assert.equal(done.steps[1].output, 'APPROVED: numbers look good');
    // The approved text, not the draft, fed step 3.
    assert.match(done.output, /Publish:\n\nAPPROVED: numbers look good/);
    assert.ok(!done.output.includes('quarterly numbers'));

    assertError(await postJson(`${srv.url}/v1/workflows/runs/${runId}/resume`, { output: 'again' }, demo), 409, 'conflict', /COMPLETED/);
    assertError(await postJson(`${srv.url}/v1/workflows/runs/wr_nope/resume`, { output: 'x' }, demo), 404, 'run_not_found');
  });

  test('cancel mid-run: the running step stops, the run ends CANCELLED; cancelling again is 409', T, async () => {
    const wf = await createWorkflow(srv.url, demo, {
      name: 'slow',
      steps: [{ agentId: 'slowpoke', action: 'take your time', stepOrder: 1 }, { agentId: 'fetcher', action: 'never', stepOrder: 2 }],
    });
    const start = await postJson(`${srv.url}/v1/workflows/${wf.id}/run`, { input: 'x'.repeat(40) }, demo);
    const runId = start.json.jobId;
    await waitJob(srv.url, runId, demo, ['RUNNING']);
    const c = await postJson(`${srv.url}/v1/executions/${runId}/cancel`, '', demo);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.status, 'CANCELLED');
    const job = await getJson(`${srv.url}/v1/jobs/${runId}`, demo);
    assert.equal(job.json.status, 'CANCELLED');
    assert.equal(job.json.steps.length, 1, 'step 2 never ran');
    assert.equal(job.json.steps[0].status, 'CANCELLED');
    const step = await getJson(`${srv.url}/v1/jobs/${job.json.steps[0].executionId}`, demo);
    assert.equal(step.json.status, 'CANCELLED');
    // The step (about 4 s of output) stopped mid-way: what it had produced is not its whole reply.
    assert.ok(!String(step.json.output ?? '').includes('x'.repeat(40)), `stopped before the end: ${step.json.output}`);
    assertError(await postJson(`${srv.url}/v1/executions/${runId}/cancel`, '', demo), 409, 'conflict');
    assertError(await postJson(`${srv.url}/v1/workflows/runs/${runId}/resume`, { output: 'x' }, demo), 409, 'conflict');
  });

  test('?wait=true answers the finished or paused run (200); PATCH steps replaces them for later runs', T, async () => {
    const wf = await createWorkflow(srv.url, demo, { name: 'waits', steps: [{ agentId: 'fetcher', action: 'one', stepOrder: 1 }] });
    const done = await postJson(`${srv.url}/v1/workflows/${wf.id}/run?wait=true`, { input: 'in' }, demo);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.json.status, 'COMPLETED');
    assert.match(done.json.output, /one\n\nin/);
    const patched = await send('PATCH', `${srv.url}/v1/workflows/${wf.id}`, {
      steps: [{ agentId: 'human_approval', action: 'check', stepOrder: 5 }, { agentId: 'summarizer', action: 'two', stepOrder: 6 }],
    }, demo);
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.json.steps.map((st) => st.stepOrder), [5, 6]);
    assert.equal(patched.json.name, 'waits');
    const paused = await postJson(`${srv.url}/v1/workflows/${wf.id}/run?wait=true`, { input: 'in' }, demo);
    assert.equal(paused.status, 200);
    assert.equal(paused.json.status, 'PAUSED');
    assert.equal(paused.json.currentStepOrder, 5);
    const resumed = await postJson(`${srv.url}/v1/workflows/runs/${paused.json.id}/resume?wait=true`, { output: 'checked' }, demo);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.json.status, 'COMPLETED');
    assert.match(resumed.json.output, /two\n\nchecked/);
    // The first run kept the steps it started with.
    assert.equal((await getJson(`${srv.url}/v1/jobs/${done.json.id}`, demo)).json.steps.length, 1);
    assertError(await postJson(`${srv.url}/v1/workflows/wf_nope/execute`, { inputs: {} }, demo), 404, 'workflow_not_found');
  });

  test('a paused run can be cancelled (DELETE /v1/jobs/{id})', T, async () => {
    const wf = await createWorkflow(srv.url, demo, { name: 'gate', steps: [{ agentId: 'human_approval', action: 'ok?', stepOrder: 1 }] });
    const runId = (await postJson(`${srv.url}/v1/workflows/${wf.id}/run`, { input: 'x' }, demo)).json.jobId;
    await waitJob(srv.url, runId, demo, ['PAUSED']);
    const del = await send('DELETE', `${srv.url}/v1/jobs/${runId}`, undefined, demo);
    assert.equal(del.status, 200, del.text);
    assert.equal(del.json.status, 'CANCELLED');
    assertError(await send('DELETE', `${srv.url}/v1/jobs/${runId}`, undefined, demo), 409, 'conflict');
  });
});

describe('tenant isolation: another workspace gets 404 on every workflow route', () => {
  test('every route', T, async () => {
    const wf = await createWorkflow(srv.url, demo, {
      name: 'private', steps: [{ agentId: 'fetcher', action: 'a', stepOrder: 1 }, { agentId: 'human_approval', action: 'ok', stepOrder: 2 }],
    });
    const runId = (await postJson(`${srv.url}/v1/workflows/${wf.id}/run`, { input: 'secret' }, demo)).json.jobId;
    await waitJob(srv.url, runId, demo, ['PAUSED']);
    const u = `${srv.url}/v1/workflows/${wf.id}`;
    const stepId = wf.steps[0].id;
    const checks = [
      ['GET', u], ['PATCH', u, { name: 'mine' }], ['DELETE', u],
      ['GET', `${u}/steps`], ['POST', `${u}/steps`, { agentId: 'assistant', action: 'a', stepOrder: 9 }],
      ['DELETE', `${u}/steps/${stepId}`], ['POST', `${u}/clone`, ''],
      ['POST', `${u}/run`, { input: 'x' }], ['POST', `${u}/execute`, { inputs: {} }],
      ['GET', `${u}/executions/${runId}`], ['GET', `${u}/runs`],
      ['GET', `${srv.url}/v1/workflows/runs/${runId}`], ['POST', `${srv.url}/v1/workflows/runs/${runId}/resume`, { output: 'x' }],
      ['GET', `${srv.url}/v1/jobs/${runId}`], ['DELETE', `${srv.url}/v1/jobs/${runId}`],
      ['POST', `${srv.url}/v1/executions/${runId}/cancel`, ''],
    ];
    for (const [method, url, body] of checks) {
      const r = await send(method, url, body, acme);
      assert.equal(r.status, 404, `${method} ${url} as acme: ${r.status} ${r.text}`);
    }
    const list = await getJson(`${srv.url}/v1/workflows?size=100`, acme);
    assert.ok(!list.json.content.some((w) => w.id === wf.id));
    const jobs = await getJson(`${srv.url}/v1/jobs?size=100`, acme);
    assert.ok(!jobs.json.content.some((j) => j.id === runId));
    // Nothing changed for the owner.
    const mine = await getJson(`${srv.url}/v1/jobs/${runId}`, demo);
    assert.equal(mine.json.status, 'PAUSED');
    assert.equal((await getJson(u, demo)).json.name, 'private');
    assert.equal((await getJson(`${u}/steps`, demo)).json.length, 2);
  });
});
