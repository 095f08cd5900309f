// The MCP endpoint /v1/mcp with the official MCP TypeScript SDK as a real client (Client +
// StreamableHTTPClientTransport) against a started server: lifecycle, every tool, progress,
// cancellation, tenancy; and the transport's refusals (sessions, versions, malformed JSON-RPC,
// credentials, Origin, limits) by raw fetch.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { SERVER_BIN, getJson, sleep, startServer } from './helpers.mjs';
import { BRIEFING, KEY, bearer, createWorkflow, s2sConfig, waitJob } from './s2s_helpers.mjs';

const T = { timeout: 30000 };
const TOOLS = [
  'cancel_job', 'chat_with_agent', 'get_job', 'list_agents', 'list_apps', 'list_workflows', 'resume_workflow_run',
  'run_app', 'run_workflow',
];
let srv;
const clients = [];

before(async () => { srv = await startServer({ config: s2sConfig() }); });
after(async () => {
  for (const c of clients) await c.close().catch(() => {});
  if (srv) { await srv.stop(); srv.cleanup(); }
});

async function connect(url, key = KEY.demo) {
  const client = new Client({ name: 'confab-mcp-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/v1/mcp`), {
    requestInit: { headers: bearer(key) },
  });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

// One raw POST (or other method) to /v1/mcp; the body is JSON text or a value to encode.
async function raw(url, body, headers = {}, method = 'POST') {
  const res = await fetch(`${url}/v1/mcp`, {
    method,
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      ...bearer(KEY.demo),
      ...headers,
    },
    body: method === 'GET' || method === 'DELETE' ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : null; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

async function rawSession(url, protocolVersion = '2025-11-25', headers = {}) {
  const r = await raw(url, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  }, headers);
  assert.equal(r.status, 200, r.text);
  const sid = r.headers.get('mcp-session-id');
  assert.match(sid, /^mcp_[0-9a-f]{32}$/);
  return { sid, result: r.json.result };
}

const structured = (r) => r.structuredContent;
const text = (r) => r.content.map((c) => c.text).join('\n');

describe('lifecycle', () => {
  test('initialize: the latest protocol version, serverInfo confab + version, tools capability, a session id', T, async () => {
    const { client, transport } = await connect(srv.url);
    assert.equal(transport.protocolVersion, '2025-11-25');
    assert.match(transport.sessionId, /^mcp_[0-9a-f]{32}$/);
    assert.deepEqual(client.getServerVersion(), { name: 'confab', title: 'Confab', version: '0.1.0' });
    assert.ok(client.getServerCapabilities().tools, 'tools capability');
    assert.match(client.getInstructions(), /Demo/);
    assert.deepEqual(await client.ping(), {});
    await transport.terminateSession();
    assert.equal(transport.sessionId, undefined);
  });

  test('tools/list: every tool, each with an object inputSchema and outputSchema', T, async () => {
    const { client } = await connect(srv.url);
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS);
    for (const t of tools) {
      assert.equal(t.inputSchema.type, 'object', t.name);
      assert.equal(t.outputSchema.type, 'object', t.name);
      assert.ok(t.description.length > 20, t.name);
    }
    const run = tools.find((t) => t.name === 'run_workflow');
    assert.deepEqual(run.inputSchema.required, ['workflowId', 'input']);
    assert.equal(run.inputSchema.additionalProperties, false);
    assert.deepEqual(run.inputSchema.properties.waitSeconds, {
      type: 'integer', minimum: 0, maximum: 50, description: run.inputSchema.properties.waitSeconds.description,
    });
  });

  test('version negotiation: an earlier version the SDK accepts is kept; an unknown one gets the latest', T, async () => {
    for (const v of ['2025-06-18', '2025-03-26', '2024-11-05']) {
      const { result } = await rawSession(srv.url, v);
      assert.equal(result.protocolVersion, v);
    }
    const { result } = await rawSession(srv.url, '1999-01-01');
    assert.equal(result.protocolVersion, '2025-11-25');
    const bad = await raw(srv.url, { jsonrpc: '2.0', id: 7, method: 'initialize', params: { capabilities: {} } });
    assert.equal(bad.status, 200);
    assert.equal(bad.json.id, 7);
    assert.equal(bad.json.error.code, -32602);
    assert.match(bad.json.error.message, /protocolVersion/);
  });

  test('sessions: none is 400, an unknown one 404, one ended by DELETE 404; notifications get 202', T, async () => {
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    const none = await raw(srv.url, list);
    assert.equal(none.status, 400, none.text);
    assert.equal(none.json.error.code, -32000);
    assert.match(none.json.error.message, /Mcp-Session-Id/);
    const unknown = await raw(srv.url, list, { 'Mcp-Session-Id': 'mcp_00000000000000000000000000000000' });
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(unknown.json.error.code, -32001);

    const { sid } = await rawSession(srv.url);
    const note = await raw(srv.url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'Mcp-Session-Id': sid });
    assert.equal(note.status, 202);
    assert.equal(note.text, '');
    const ok = await raw(srv.url, list, { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-11-25' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.result.tools.length, TOOLS.length);
    // Another workspace's credential does not see the session.
    const other = await raw(srv.url, list, { 'Mcp-Session-Id': sid, ...bearer(KEY.acme) });
    assert.equal(other.status, 404, other.text);

    const del = await raw(srv.url, null, { 'Mcp-Session-Id': sid }, 'DELETE');
    assert.equal(del.status, 204, del.text);
    const after = await raw(srv.url, list, { 'Mcp-Session-Id': sid });
    assert.equal(after.status, 404, after.text);
    const delAgain = await raw(srv.url, null, { 'Mcp-Session-Id': sid }, 'DELETE');
    assert.equal(delAgain.status, 404);
  });

  test('an unsupported MCP-Protocol-Version header is 400', T, async () => {
    const { sid } = await rawSession(srv.url);
    const r = await raw(srv.url, { jsonrpc: '2.0', id: 3, method: 'ping' }, { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2099-01-01' });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /MCP-Protocol-Version/);
  });

  test('GET is 405 with Allow (no server-initiated stream); a non-JSON body is 415, an Accept of neither type 406', T, async () => {
    const { sid } = await rawSession(srv.url);
    const get = await raw(srv.url, null, { 'Mcp-Session-Id': sid, Accept: 'text/event-stream' }, 'GET');
    assert.equal(get.status, 405, get.text);
    assert.equal(get.headers.get('allow'), 'POST, DELETE, OPTIONS');
    const form = await raw(srv.url, 'a=b', { 'Mcp-Session-Id': sid, 'Content-Type': 'text/plain' });
    assert.equal(form.status, 415, form.text);
    const html = await raw(srv.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { 'Mcp-Session-Id': sid, Accept: 'text/html' });
    assert.equal(html.status, 406, html.text);
  });

  test('malformed JSON-RPC: parse error, invalid request, unknown method, bad params; the server keeps answering', T, async () => {
    const { sid } = await rawSession(srv.url);
    const h = { 'Mcp-Session-Id': sid };
    for (const init of [{ jsonrpc: 2, id: 1, method: 'initialize' }, { jsonrpc: '2.0', method: 'initialize' },
      { jsonrpc: '2.0', id: null, method: 'initialize', params: {} }]) {
      const r = await raw(srv.url, init);
      assert.equal(r.status, 400, `${JSON.stringify(init)}: ${r.text}`);
      assert.equal(r.json.error.code, -32600);
    }
    const parse = await raw(srv.url, '{"jsonrpc": "2.0", "id": 1, "method": ', h);
    assert.equal(parse.status, 400);
    assert.deepEqual([parse.json.id, parse.json.error.code], [null, -32700]);
    for (const bad of [{ jsonrpc: '1.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', id: 1, method: 5 },
      { jsonrpc: '2.0', id: { x: 1 }, method: 'ping' }, 42, { jsonrpc: '2.0', id: 1 }]) {
      const r = await raw(srv.url, bad, h);
      assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
      assert.equal(r.json.error.code, -32600, r.text);
    }
    const unknown = await raw(srv.url, { jsonrpc: '2.0', id: 'u1', method: 'resources/list' }, h);
    assert.equal(unknown.status, 200);
    assert.deepEqual([unknown.json.id, unknown.json.error.code], ['u1', -32601]);
    const noTool = await raw(srv.url, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'rm_rf', arguments: {} } }, h);
    assert.deepEqual([noTool.json.id, noTool.json.error.code], [9, -32602]);
    const badArgs = await raw(srv.url, { jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'get_job', arguments: [1] } }, h);
    assert.equal(badArgs.json.error.code, -32602);
    const ping = await raw(srv.url, { jsonrpc: '2.0', id: 11, method: 'ping' }, h);
    assert.deepEqual(ping.json, { jsonrpc: '2.0', id: 11, result: {} });
    assert.equal((await getJson(`${srv.url}/healthz`)).status, 200);
  });

  test('batches: answered in order where the version has them (2025-03-26), refused where it does not', T, async () => {
    const old = await rawSession(srv.url, '2025-03-26');
    const r = await raw(srv.url, [
      { jsonrpc: '2.0', id: 'a', method: 'ping' },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 'b', method: 'nope' },
      { jsonrpc: '2.0', id: 'c', method: 'tools/call', params: { name: 'list_agents', arguments: {} } },
    ], { 'Mcp-Session-Id': old.sid });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.map((m) => m.id), ['a', 'b', 'c']);
    assert.deepEqual(r.json[0].result, {});
    assert.equal(r.json[1].error.code, -32601);
    assert.ok(r.json[2].result.structuredContent.agents.length > 0);
    const empty = await raw(srv.url, [], { 'Mcp-Session-Id': old.sid });
    assert.equal(empty.status, 400);
    assert.equal(empty.json.error.code, -32600);

    const latest = await rawSession(srv.url);
    const refused = await raw(srv.url, [{ jsonrpc: '2.0', id: 'a', method: 'ping' }], { 'Mcp-Session-Id': latest.sid });
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.json.error.code, -32600);
    assert.match(refused.json.error.message, /2025-11-25/);
  });

  test('a bad or missing credential is 401 with WWW-Authenticate; the SDK client cannot connect', T, async () => {
    for (const headers of [bearer('not-a-key'), { Authorization: '' }]) {
      const r = await raw(srv.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, headers);
      assert.equal(r.status, 401, r.text);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer');
      assert.match(r.json.error, /Bearer|not valid/);
    }
    const client = new Client({ name: 'bad', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(`${srv.url}/v1/mcp`), { requestInit: { headers: bearer('wrong') } });
    await assert.rejects(client.connect(transport), (e) => e.code === 401 && /not valid/.test(e.message));
  });

  test('an access token works like the API key (POST /v1/applications/token)', T, async () => {
    const tok = await fetch(`${srv.url}/v1/applications/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ client_id: 'backend', client_secret: 'backend-secret-1' }),
    }).then((r) => r.json());
    const { client } = await connect(srv.url, tok.access_token);
    const r = await client.callTool({ name: 'list_workflows', arguments: {} });
    assert.equal(r.isError, false);
    assert.ok(structured(r).workflows.some((w) => w.id === BRIEFING.id));
  });

  test('Origin: another site is 403 before anything runs (DNS rebinding); an allowed one gets CORS headers', T, async () => {
    const init = {
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    };
    const before = await fetch(`${srv.url}/metrics`).then((r) => r.text());
    const evil = await raw(srv.url, init, { Origin: 'http://evil.test' });
    assert.equal(evil.status, 403, evil.text);
    assert.equal(evil.headers.get('mcp-session-id'), null, 'no session was made');
    // A tool call from another site's page is refused before it runs, not merely hidden after.
    const { sid } = await rawSession(srv.url);
    const t0 = Date.now();
    const run = await raw(srv.url, {
      jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'run_app', arguments: { appId: 'welcome', inputs: { name: 'Mallory' } } },
    }, { 'Mcp-Session-Id': sid, Origin: 'http://evil.test' });
    assert.equal(run.status, 403, run.text);
    const jobs = await getJson(`${srv.url}/v1/jobs?type=execution`, bearer(KEY.demo));
    assert.deepEqual(jobs.json.content.filter((j) => j.appId === 'welcome' && j.createdAt >= t0), [], 'nothing ran');
    // acme's origin is allowed for acme, not for demo's credential.
    const acmeSite = await raw(srv.url, init, { Origin: 'http://acme.test' });
    assert.equal(acmeSite.status, 403, acmeSite.text);
    const good = await raw(srv.url, init, { Origin: 'http://allowed.test' });
    assert.equal(good.status, 200, good.text);
    assert.equal(good.headers.get('access-control-allow-origin'), 'http://allowed.test');
    assert.match(good.headers.get('access-control-expose-headers'), /Mcp-Session-Id/);
    const pre = await fetch(`${srv.url}/v1/mcp`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://allowed.test', 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type, mcp-session-id, mcp-protocol-version' },
    });
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get('access-control-allow-headers'), /Mcp-Session-Id, MCP-Protocol-Version/);
    const after = await fetch(`${srv.url}/metrics`).then((r) => r.text());
    assert.match(after, /route="\/v1\/mcp",status="403"/);
    assert.notEqual(before, after);
  });
});

describe('limits', () => {
  let small;
  before(async () => {
    small = await startServer({ config: s2sConfig(), args: ['--mcp-max-sessions', '2', '--mcp-session-idle-seconds', '1'] });
  });
  after(async () => { if (small) { await small.stop(); small.cleanup(); } });

  test('the limits\' flags refuse values out of range, naming the flag', T, () => {
    for (const [flag, value] of [['--mcp-max-sessions', '0'], ['--mcp-session-idle-seconds', 'soon']]) {
      const r = spawnSync(SERVER_BIN, ['serve', flag, value], { encoding: 'utf8', timeout: 10000 });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(flag));
    }
  });

  test('past the cap per workspace, the least recently used session ends (404); other workspaces keep theirs', T, async () => {
    const acme = await rawSession(small.url, '2025-11-25', bearer(KEY.acme));
    const a = await rawSession(small.url);
    const b = await rawSession(small.url);
    const ping = (sid, key = KEY.demo) => raw(small.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { 'Mcp-Session-Id': sid, ...bearer(key) });
    assert.equal((await ping(a.sid)).status, 200);  // a is now the more recently used
    const c = await rawSession(small.url);
    assert.equal((await ping(b.sid)).status, 404, 'the least recently used one ended');
    assert.equal((await ping(a.sid)).status, 200);
    assert.equal((await ping(c.sid)).status, 200);
    assert.equal((await ping(acme.sid, KEY.acme)).status, 200);
  });

  test('at most 16 requests of a session in flight: the next is refused; cancelled JSON calls answer -32800', T, async () => {
    const { sid } = await rawSession(small.url);
    const h = { 'Mcp-Session-Id': sid };
    const call = (id) => raw(small.url, {
      jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'run_app', arguments: { appId: 'idle', waitSeconds: 20 } },
    }, h);
    const t0 = Date.now();
    const calls = Array.from({ length: 16 }, (_, i) => call(i));
    let running = [];
    for (let i = 0; i < 250 && running.length < 16; i++) {
      const jobs = await getJson(`${small.url}/v1/jobs?type=execution&size=100`, bearer(KEY.demo));
      running = jobs.json.content.filter((j) => j.appId === 'idle' && j.createdAt >= t0);
      if (running.length < 16) await sleep(20);
    }
    assert.equal(running.length, 16);
    const refused = await call(99);
    assert.equal(refused.status, 200);
    assert.equal(refused.json.error.code, -32000);
    assert.match(refused.json.error.message, /in flight/);
    for (let i = 0; i < 16; i++) {
      const n = await raw(small.url, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: i, reason: 'test' } }, h);
      assert.equal(n.status, 202);
    }
    for (const r of await Promise.all(calls)) {
      assert.equal(r.json.error.code, -32800, r.text);
    }
    const again = await raw(small.url, { jsonrpc: '2.0', id: 100, method: 'tools/call', params: { name: 'list_agents', arguments: {} } }, h);
    assert.equal(again.json.result?.isError, false, `room again once they ended: ${again.text}`);
    for (const j of running) {
      const job = await waitJob(small.url, j.id, bearer(KEY.demo), ['CANCELLED', 'COMPLETED', 'FAILED']);
      assert.equal(job.status, 'CANCELLED');
    }
  });

  test('an idle session expires (404)', T, async () => {
    const s = await rawSession(small.url);
    const ping = () => raw(small.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { 'Mcp-Session-Id': s.sid });
    assert.equal((await ping()).status, 200);
    await sleep(2100);
    const r = await ping();
    assert.equal(r.status, 404, r.text);
  });
});

describe('tools', () => {
  let client;
  let approvalWf;
  let slowWf;
  before(async () => {
    ({ client } = await connect(srv.url));
    approvalWf = await createWorkflow(srv.url, bearer(KEY.demo), {
      name: 'Reviewed', steps: [
        { agentId: 'fetcher', action: 'Fetch:', stepOrder: 1 },
        { agentId: 'human_approval', action: 'Check the news', stepOrder: 2 },
        { agentId: 'summarizer', action: 'Summarize:', stepOrder: 3 },
      ],
    });
    slowWf = await createWorkflow(srv.url, bearer(KEY.demo), {
      name: 'Slow', steps: [{ agentId: 'slowpoke', action: 'Take your time:', stepOrder: 1 }],
    });
  });

  test('list_workflows: the seeded and created workflows, paged', T, async () => {
    const r = await client.callTool({ name: 'list_workflows', arguments: { size: 100 } });
    assert.equal(r.isError, false);
    const ids = structured(r).workflows.map((w) => w.id);
    assert.ok(ids.includes(BRIEFING.id) && ids.includes(approvalWf.id), ids.join());
    assert.equal(structured(r).size, 100);
    assert.match(text(r), /Daily Market Briefing/);
  });

  test('run_workflow: waits for the run, reports each step as progress, answers the output', T, async () => {
    const progress = [];
    const r = await client.callTool(
      { name: 'run_workflow', arguments: { workflowId: BRIEFING.id, input: 'tech stocks' } },
      undefined, { onprogress: (p) => progress.push(p) });
    assert.equal(r.isError, false, text(r));
    const run = structured(r);
    assert.equal(run.status, 'COMPLETED');
    assert.equal(run.finished, true);
    assert.match(run.runId, /^wr_/);
    assert.match(run.output, /tech stocks/);
    assert.deepEqual(run.steps.map((s) => s.status), ['COMPLETED', 'COMPLETED']);
    assert.ok(progress.length >= 2, JSON.stringify(progress));
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].progress > progress[i - 1].progress);
    assert.deepEqual(progress.at(-1), { progress: 2, total: 2, message: progress.at(-1).message });
    assert.match(progress[0].message, new RegExp(run.runId));
    const job = await getJson(`${srv.url}/v1/jobs/${run.jobId}`, bearer(KEY.demo));
    assert.equal(job.json.status, 'COMPLETED');
  });

  test('run_workflow that pauses for approval says so; resume_workflow_run approves (with edited text) or rejects', T, async () => {
    const r = await client.callTool({ name: 'run_workflow', arguments: { workflowId: approvalWf.id, input: 'oil prices' } });
    assert.equal(r.isError, false, text(r));
    const paused = structured(r);
    assert.equal(paused.status, 'PAUSED');
    assert.equal(paused.finished, false);
    assert.equal(paused.waitingFor.type, 'human_approval');
    assert.equal(paused.waitingFor.stepOrder, 2);
    assert.equal(paused.waitingFor.action, 'Check the news');
    assert.match(paused.waitingFor.proposedOutput, /oil prices/);
    assert.match(text(r), /resume_workflow_run/);

    const done = await client.callTool({
      name: 'resume_workflow_run', arguments: { runId: paused.runId, decision: 'approve', output: 'APPROVED: oil is up' },
    });
    assert.equal(done.isError, false, text(done));
    assert.equal(structured(done).status, 'COMPLETED');
    assert.match(structured(done).output, /APPROVED: oil is up/);
    assert.doesNotMatch(structured(done).output, /oil prices/);

    const again = await client.callTool({
      name: 'resume_workflow_run', arguments: { runId: paused.runId, decision: 'approve' },
    });
    assert.equal(again.isError, true);
    assert.match(text(again), /COMPLETED, not PAUSED/);

    const second = structured(await client.callTool({ name: 'run_workflow', arguments: { workflowId: approvalWf.id, input: 'gold' } }));
    assert.equal(second.status, 'PAUSED');
    const kept = await client.callTool({ name: 'resume_workflow_run', arguments: { runId: second.runId, decision: 'approve' } });
    assert.match(structured(kept).output, /gold/, 'without output, the proposed text is approved');

    const third = structured(await client.callTool({ name: 'run_workflow', arguments: { workflowId: approvalWf.id, input: 'wheat' } }));
    const rejected = await client.callTool({ name: 'resume_workflow_run', arguments: { runId: third.runId, decision: 'reject' } });
    assert.equal(rejected.isError, false, text(rejected));
    assert.equal(structured(rejected).status, 'CANCELLED');
    assert.equal((await getJson(`${srv.url}/v1/jobs/${third.runId}`, bearer(KEY.demo))).json.status, 'CANCELLED');
  });

  test('run_workflow still going at waitSeconds answers its job id (its step\'s text streamed meanwhile); get_job and cancel_job follow it', T, async () => {
    const progress = [];
    const r = await client.callTool({ name: 'run_workflow', arguments: { workflowId: slowWf.id, input: 'x'.repeat(30), waitSeconds: 1 } },
      undefined, { onprogress: (p) => progress.push(p) });
    assert.equal(r.isError, false, text(r));
    const run = structured(r);
    // The running step's output streams as progress between the whole steps (0 < progress < 1).
    const streamed = progress.filter((p) => p.message.startsWith('step 1 of 1: '));
    assert.ok(streamed.length >= 2, JSON.stringify(progress));
    assert.match(streamed.at(-1).message, /^step 1 of 1: ## Echo\n\n- Turn: 1\n- Length: 47 characters/);
    assert.ok(streamed.every((p) => p.progress > 0 && p.progress < 1 && p.total === 1));
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].progress > progress[i - 1].progress);
    assert.equal(run.finished, false);
    assert.ok(['QUEUED', 'RUNNING'].includes(run.status), run.status);
    assert.match(text(r), /get_job/);
    const job = await client.callTool({ name: 'get_job', arguments: { jobId: run.jobId } });
    assert.equal(structured(job).type, 'workflow_run');
    assert.equal(structured(job).status, 'RUNNING');
    const cancelled = await client.callTool({ name: 'cancel_job', arguments: { jobId: run.jobId } });
    assert.equal(cancelled.isError, false, text(cancelled));
    assert.equal(structured(cancelled).status, 'CANCELLED');
    const twice = await client.callTool({ name: 'cancel_job', arguments: { jobId: run.jobId } });
    assert.equal(twice.isError, true);
    assert.match(text(twice), /already CANCELLED/);
    const missing = await client.callTool({ name: 'get_job', arguments: { jobId: 'wr_nope' } });
    assert.equal(missing.isError, true);
    assert.match(text(missing), /not found.*404/);
  });

  test('tool errors: another workspace\'s workflow is not found; invalid arguments name the argument', T, async () => {
    const { client: acme } = await connect(srv.url, KEY.acme);
    const other = await acme.callTool({ name: 'run_workflow', arguments: { workflowId: BRIEFING.id, input: 'x' } });
    assert.equal(other.isError, true);
    assert.match(text(other), /workflow 'daily-market-briefing' not found/);
    const none = await client.callTool({ name: 'run_workflow', arguments: { workflowId: 'wf_missing', input: 'x' } });
    assert.equal(none.isError, true);
    assert.match(text(none), /not found/);
    const cases = [
      [{ workflowId: BRIEFING.id }, /arguments\.input is required/],
      [{ workflowId: BRIEFING.id, input: 'x', waitSeconds: 99 }, /arguments\.waitSeconds: must be an integer from 0 to 50/],
      [{ workflowId: BRIEFING.id, input: 7 }, /arguments\.input: must be a string/],
      [{ workflowId: '../agents', input: 'x' }, /arguments\.workflowId: is not a valid id/],
      [{ workflowId: BRIEFING.id, input: 'x', inputs: {} }, /arguments\.inputs is not a known argument/],
    ];
    for (const [args, pattern] of cases) {
      const r = await client.callTool({ name: 'run_workflow', arguments: args });
      assert.equal(r.isError, true, JSON.stringify(args));
      assert.match(text(r), pattern);
    }
  });

  test('list_agents and chat_with_agent: the reply streams as progress (text so far); the session continues', T, async () => {
    const agents = structured(await client.callTool({ name: 'list_agents', arguments: {} })).agents.map((a) => a.id);
    assert.ok(agents.includes('fetcher') && agents.includes('slowpoke'), agents.join());
    const progress = [];
    const first = await client.callTool(
      { name: 'chat_with_agent', arguments: { agentId: 'fetcher', message: 'hello there, agent' } },
      undefined, { onprogress: (p) => progress.push(p) });
    assert.equal(first.isError, false, text(first));
    const turn = structured(first);
    assert.equal(turn.status, 'COMPLETED');
    assert.match(turn.reply, /Turn: 1[\s\S]*hello there, agent/);
    assert.match(turn.sessionId, /^se_/);
    assert.match(turn.executionId, /^ex_/);
    assert.ok(progress.length >= 1);
    assert.equal(progress.at(-1).message, turn.reply, 'the last progress carries the whole reply');
    for (let i = 1; i < progress.length; i++) {
      assert.ok(progress[i].message.startsWith(progress[i - 1].message), 'the text so far grows');
      assert.ok(progress[i].progress > progress[i - 1].progress);
    }
    const second = await client.callTool({ name: 'chat_with_agent', arguments: { agentId: 'fetcher', message: 'again', sessionId: turn.sessionId } });
    assert.equal(structured(second).sessionId, turn.sessionId);
    assert.match(structured(second).reply, /Turn: 2/);
    const lost = await client.callTool({ name: 'chat_with_agent', arguments: { agentId: 'fetcher', message: 'x', sessionId: 'se_nope' } });
    assert.equal(lost.isError, true);
    assert.match(text(lost), /session 'se_nope' not found/);
    const broken = await client.callTool({ name: 'chat_with_agent', arguments: { agentId: 'broken', message: 'x' } });
    assert.equal(broken.isError, true, 'a reply that failed is the tool\'s error');
    assert.equal(structured(broken).status, 'FAILED');
    assert.equal(typeof structured(broken).error, 'string');
    const notAgent = await client.callTool({ name: 'chat_with_agent', arguments: { agentId: 'welcome', message: 'x' } });
    assert.equal(notAgent.isError, true);
    assert.match(text(notAgent), /agent 'welcome' not found/);
  });

  test('list_apps and run_app: inputs as a schema, versions, streamed output, errors of the app route', T, async () => {
    const apps = structured(await client.callTool({ name: 'list_apps', arguments: {} })).apps;
    const welcome = apps.find((a) => a.id === 'welcome');
    assert.deepEqual(welcome.inputs, { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] });
    assert.deepEqual(apps.find((a) => a.id === 'story').versions, ['1', '2']);

    const progress = [];
    const r = await client.callTool({ name: 'run_app', arguments: { appId: 'welcome', inputs: { name: 'Ada' } } },
      undefined, { onprogress: (p) => progress.push(p) });
    assert.equal(r.isError, false, text(r));
    assert.equal(structured(r).status, 'COMPLETED');
    assert.equal(structured(r).output, 'Hello, Ada! Welcome aboard.');
    assert.equal(progress.at(-1).message, 'Hello, Ada! Welcome aboard.');
    const job = await client.callTool({ name: 'get_job', arguments: { jobId: structured(r).jobId } });
    assert.deepEqual([structured(job).type, structured(job).status, structured(job).appId], ['execution', 'COMPLETED', 'welcome']);

    const v2 = await client.callTool({ name: 'run_app', arguments: { appId: 'story', version: '2', inputs: { hero: 'Zed', count: 3 } } });
    assert.equal(structured(v2).output, 'Zed x3');
    const missing = await client.callTool({ name: 'run_app', arguments: { appId: 'welcome', inputs: {} } });
    assert.equal(missing.isError, true);
    assert.match(text(missing), /inputs\.name is required/);
    const noVersion = await client.callTool({ name: 'run_app', arguments: { appId: 'story', version: '9', inputs: { hero: 'x' } } });
    assert.equal(noVersion.isError, true);
    assert.match(text(noVersion), /no version '9'/);
    const noApp = await client.callTool({ name: 'run_app', arguments: { appId: 'nope' } });
    assert.equal(noApp.isError, true);
    assert.match(text(noApp), /app 'nope' not found/);
    const { client: acme } = await connect(srv.url, KEY.acme);
    const foreign = await acme.callTool({ name: 'get_job', arguments: { jobId: structured(r).jobId } });
    assert.equal(foreign.isError, true, 'another workspace\'s job is not found');
  });

  test('cancellation: aborting a run_workflow call cancels the run on the server', T, async () => {
    const ac = new AbortController();
    let runId;
    const call = client.callTool(
      { name: 'run_workflow', arguments: { workflowId: slowWf.id, input: 'y'.repeat(40) } },
      undefined, {
        signal: ac.signal,
        onprogress: (p) => {
          runId ??= /wr_[0-9a-f]+/.exec(p.message)?.[0];
          ac.abort('the user pressed stop');
        },
      });
    await assert.rejects(call, /stop/);
    assert.match(runId, /^wr_/);
    const job = await waitJob(srv.url, runId, bearer(KEY.demo), ['CANCELLED', 'COMPLETED', 'FAILED']);
    assert.equal(job.status, 'CANCELLED');
  });

  test('cancellation: aborting a streaming run_app call and a plain JSON one cancel their executions', T, async () => {
    for (const streaming of [true, false]) {
      const ac = new AbortController();
      let sawText = false;
      const opts = { signal: ac.signal };
      if (streaming) opts.onprogress = (p) => { sawText = p.message.length > 0; ac.abort('stop'); };
      const t0 = Date.now();
      const call = client.callTool({ name: 'run_app', arguments: { appId: 'slow', inputs: { hero: `h${streaming}` } } }, undefined, opts);
      call.catch(() => {});  // awaited below
      let exec;
      for (let i = 0; i < 200 && !exec; i++) {
        const jobs = await getJson(`${srv.url}/v1/jobs?type=execution`, bearer(KEY.demo));
        exec = jobs.json.content.find((j) => j.appId === 'slow' && j.createdAt >= t0);
        if (!exec) await sleep(20);
      }
      assert.ok(exec, 'the execution started');
      if (!streaming) ac.abort('stop');
      await assert.rejects(call, /stop/);
      if (streaming) assert.ok(sawText, 'progress carried text');
      const job = await waitJob(srv.url, exec.id, bearer(KEY.demo), ['CANCELLED', 'COMPLETED', 'FAILED']);
      assert.equal(job.status, 'CANCELLED', `streaming=${streaming}`);
    }
  });

  test('a client that only disconnects does not cancel: the run goes on (the spec: disconnection is not cancellation)', T, async () => {
    const { sid } = await rawSession(srv.url);
    const ac = new AbortController();
    const res = await fetch(`${srv.url}/v1/mcp`, {
      method: 'POST', signal: ac.signal,
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...bearer(KEY.demo), 'Mcp-Session-Id': sid },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call',
        params: { name: 'run_workflow', arguments: { workflowId: slowWf.id, input: 'z'.repeat(20) }, _meta: { progressToken: 'd' } } }),
    });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body.getReader();
    let first = '';
    while (!/wr_[0-9a-f]{32}/.test(first)) first += new TextDecoder().decode((await reader.read()).value);
    const runId = /wr_[0-9a-f]{32}/.exec(first)[0];
    ac.abort();
    await sleep(300);
    const job = await getJson(`${srv.url}/v1/jobs/${runId}`, bearer(KEY.demo));
    assert.equal(job.json.status, 'RUNNING');
    const ping = await raw(srv.url, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'Mcp-Session-Id': sid });
    assert.equal(ping.status, 200, 'the session and the server are fine');
    const c = await client.callTool({ name: 'cancel_job', arguments: { jobId: runId } });
    assert.equal(structured(c).status, 'CANCELLED');
  });

  test('run_app still going at waitSeconds answers its job id and the output so far', T, async () => {
    const r = await client.callTool({ name: 'run_app', arguments: { appId: 'slow', inputs: { hero: 'Bo' }, waitSeconds: 1 } });
    assert.equal(r.isError, false, text(r));
    const ex = structured(r);
    assert.equal(ex.finished, false);
    assert.equal(ex.status, 'RUNNING');
    assert.match(ex.output, /^Bo /);
    const c = await client.callTool({ name: 'cancel_job', arguments: { jobId: ex.jobId } });
    assert.equal(structured(c).status, 'CANCELLED');
  });
});
