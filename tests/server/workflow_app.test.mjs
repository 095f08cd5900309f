// Workflow apps over real HTTP: an app of type "workflow" runs a workflow's agent steps as one
// execution that a browser can start and stream (apps.execute), each step's output feeding the next.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { WS, getJson, idHeaders, postJson, readSse, startServer, streamText } from './helpers.mjs';
import { BRIEFING, KEY, bearer, s2sConfig, send } from './s2s_helpers.mjs';

const T = { timeout: 20000 };
const demo = bearer(KEY.demo);
let srv;

before(async () => {
  const cfg = s2sConfig();
  const ws = cfg.workspaces[0];
  ws.workflows.push(
    { id: 'reviewed', name: 'Reviewed', steps: [
      { agentId: 'fetcher', action: 'Fetch:', stepOrder: 1 },
      { agentId: 'human_approval', action: 'Check it', stepOrder: 2 },
    ] },
    { id: 'editable', name: 'Editable', steps: [{ agentId: 'fetcher', action: 'One:', stepOrder: 1 }] },
  );
  ws.apps.push(
    { id: 'briefing', type: 'workflow', workflowId: BRIEFING.id, inputs: [{ name: 'topic', type: 'string' }] },
    { id: 'reviewed-app', type: 'workflow', workflowId: 'reviewed', inputs: [{ name: 'topic', type: 'string' }] },
    { id: 'editable-app', type: 'workflow', workflowId: 'editable', inputs: [{ name: 'message', type: 'string' }] },
  );
  srv = await startServer({ config: cfg });
});
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

const user = () => idHeaders(WS.demo, 'flow-user');

describe('workflow apps', () => {
  test('one streamed execution: a step announcement per step, the last step streams, each output feeds the next', T, async () => {
    const r = await readSse(`${srv.url}/v1/apps/briefing/executions`, {
      method: 'POST', headers: user(), body: { inputs: { topic: 'semiconductors' } },
    });
    assert.equal(r.status, 200, r.text);
    const types = r.events.map((e) => e.type);
    assert.deepEqual(types.filter((t) => t === 'agent-action').length, 2);
    assert.equal(types.at(-1), 'completed');
    const actions = r.events.filter((e) => e.type === 'agent-action').map((e) => e.json);
    assert.equal(actions[0].tool, 'fetcher');
    assert.equal(actions[0].tool_input, 'Fetch the market news for:\n\nsemiconductors');
    assert.equal(actions[1].tool, 'summarizer');
    assert.match(actions[1].tool_input, /^Summarize:\n\n## Echo[\s\S]*Fetch the market news for:\n\nsemiconductors/,
      'step 2 gets its action, then step 1\'s whole output');
    // Only the last step streams: the deltas after the second announcement are the output.
    const second = r.events.findIndex((e) => e.type === 'agent-action' && e.json.tool === 'summarizer');
    assert.equal(r.events.slice(0, second).some((e) => e.type === 'delta'), false, 'step 1 is announced, not streamed');
    const done = r.events.at(-1).json;
    assert.equal(done.status, 'success');
    assert.equal(streamText(r.events), done.output);
    assert.match(done.output, /You said:[\s\S]*Summarize:[\s\S]*semiconductors/);
    // The same execution as stored, through the end user's GET.
    const id = r.headers.get('x-confab-execution-id');
    const stored = await getJson(`${srv.url}/v1/executions/${id}`, user());
    assert.equal(stored.json.status, 'success');
    assert.equal(stored.json.output, done.output);
  });

  test('a workflow with an approval step is refused before any step runs, naming the route that can run it', T, async () => {
    const r = await readSse(`${srv.url}/v1/apps/reviewed-app/executions`, {
      method: 'POST', headers: user(), body: { inputs: { topic: 'bonds' } },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.events.some((e) => e.type === 'agent-action'), false, 'no step ran');
    const err = r.events.find((e) => e.type === 'error').json;
    assert.equal(err.code, 'unsupported');
    assert.match(err.error, /pauses for human approval at step 2: run it with POST \/v1\/workflows\/reviewed\/run/);
    assert.equal(r.events.at(-1).json.status, 'error');
  });

  test('the stored definition runs: edits through the API apply, a deleted workflow fails clearly', T, async () => {
    const added = await postJson(`${srv.url}/v1/workflows/editable/steps`,
      { agentId: 'summarizer', action: 'Two:', stepOrder: 2 }, demo);
    assert.equal(added.status, 201, added.text);
    const run = await postJson(`${srv.url}/v1/apps/editable-app/executions`, { inputs: { message: 'x' } }, user());
    assert.equal(run.status, 202, run.text);
    const r = await readSse(`${srv.url}/v1/executions/${run.json.executionId}/events`, { headers: user() });
    assert.deepEqual(r.events.filter((e) => e.type === 'agent-action').map((e) => e.json.tool), ['fetcher', 'summarizer']);
    assert.equal(r.events.at(-1).json.status, 'success');

    assert.equal((await send('DELETE', `${srv.url}/v1/workflows/editable`, undefined, demo)).status, 204);
    const gone = await readSse(`${srv.url}/v1/apps/editable-app/executions`, {
      method: 'POST', headers: user(), body: { inputs: { message: 'x' } },
    });
    const err = gone.events.find((e) => e.type === 'error').json;
    assert.equal(err.code, 'workflow_not_found');
    assert.match(err.error, /workflow 'editable' not found/);
  });

  test('chat is not offered for a workflow app', T, async () => {
    const r = await postJson(`${srv.url}/v1/apps/briefing/chat`, { message: 'hi' }, user());
    assert.equal(r.status, 400);
    assert.equal(r.json.code, 'unsupported');
  });
});
