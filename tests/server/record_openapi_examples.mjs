// Records the examples of docs/openapi.json from a running confab-server: each request below is
// made against a fresh server (the s2s test config) and its response replaces the example of that
// operation and status. Run after changing a route: `node tests/server/record_openapi_examples.mjs`
// (CONFAB_SERVER_BIN as for the tests), then rebuild the server, which embeds the document.
// Responses pass through the checks of helpers.mjs on the way, so an example is never invalid.
import { readFileSync, writeFileSync } from 'node:fs';

import { WS, idHeaders, startServer, sleep, userHash } from './helpers.mjs';
import { DOC_PATH } from './openapi_check.mjs';
import { CLIENT, KEY, bearer, s2sConfig } from './s2s_helpers.mjs';

const cfg = s2sConfig();
cfg.trustedUserHeader = 'Remote-User';
cfg.workspaces[0].proxyIdentity = { ttlSeconds: 600 };
const srv = await startServer({ config: cfg });
const H = srv.url;
const out = {};
const requests = {};  // 'method template' -> the JSON bodies of requests that succeeded
const alice = idHeaders(WS.demo, 'alice');
const K = bearer(KEY.demo);
const J = { 'Content-Type': 'application/json' };

async function call(method, p, { headers = {}, body, sse = false } = {}) {
  const res = await fetch(H + p, {
    method,
    headers: { ...(body !== undefined ? J : {}), ...(sse ? { Accept: 'text/event-stream' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const media = (res.headers.get('content-type') ?? '').split(';')[0];
  return { status: res.status, media, text, json: media === 'application/json' ? JSON.parse(text) : undefined, headers: res.headers, sent: body };
}
// Stores the response as an example of (method, template, status, media) or of a component response.
function keep(where, name, summary, r) {
  const [method, template] = where.split(' ');
  const key = template.startsWith('components') ? `${template} ${r.media}` : `${method} ${template} ${r.status} ${r.media}`;
  out[key] ??= {};
  out[key][name] = { summary, value: r.media === 'application/json' ? r.json : r.text };
  if (r.status < 400 && r.sent !== null && typeof r.sent === 'object' && !template.startsWith('components')) {
    requests[`${method} ${template}`] ??= {};
    requests[`${method} ${template}`][name] = { summary, value: r.sent };
  }
  return r;
}

keep('get /healthz', 'ok', 'Alive', await call('GET', '/healthz'));
keep('get /readyz', 'ready', 'Ready', await call('GET', '/readyz'));
keep('post /v1/identity', 'token', 'An expiring token for alice', await call('POST', '/v1/identity', { headers: K, body: { userId: 'alice', ttlSeconds: 3600 } }));
keep('post /v1/identity', 'hash', 'The plain user hash', await call('POST', '/v1/identity', { headers: K, body: { userId: 'alice' } }));
keep('post /v1/identity', 'missing', 'userId missing', await call('POST', '/v1/identity', { headers: K, body: {} }));
keep('get /v1/identity/proxy', 'token', 'The proxy\'s user', await call('GET', '/v1/identity/proxy?workspace=demo', { headers: { 'Remote-User': 'alice' } }));
keep('get /v1/apps/{appId}', 'welcome', 'A public template app', await call('GET', '/v1/apps/welcome', { headers: alice }));
keep('get /v1/apps/{appId}', 'story', 'An app with two versions', await call('GET', '/v1/apps/story', { headers: alice }));
keep('get /v1/apps/{appId}', 'missing', 'No such app', await call('GET', '/v1/apps/nope', { headers: alice }));
keep('get components/responses/IdentityError', 'bad_signature', 'A hash made with another secret', await call('GET', '/v1/apps/story', { headers: { ...alice, 'X-Confab-User-Hash': userHash('wrong', 'alice') } }));
keep('get components/responses/IdentityError', 'anonymous', 'A private app called anonymously', await call('GET', '/v1/apps/story', { headers: { 'X-Confab-Workspace': 'demo' } }));
keep('get components/responses/OriginNotAllowed', 'origin', 'A page the workspace does not allow', await call('GET', '/v1/apps/welcome', { headers: { ...alice, Origin: 'https://elsewhere.example' } }));
keep('get components/responses/BearerError', 'invalid', 'A wrong API key', await call('GET', '/v1/agents', { headers: bearer('wrong-key') }));
const created = keep('post /v1/apps/{appId}/executions', 'started', 'Started', await call('POST', '/v1/apps/welcome/executions', { headers: alice, body: { inputs: { name: 'Ada' } } }));
keep('post /v1/apps/{appId}/executions', 'finished', 'With ?wait=true', await call('POST', '/v1/apps/welcome/executions?wait=true', { headers: alice, body: { inputs: { name: 'Ada' } } }));
keep('post /v1/apps/{appId}/executions', 'stream', 'Accept: text/event-stream', await call('POST', '/v1/apps/welcome/executions', { headers: alice, body: { inputs: { name: 'Ada' } }, sse: true }));
keep('post /v1/apps/{appId}/executions', 'missing_input', 'A required input is missing', await call('POST', '/v1/apps/welcome/executions', { headers: alice, body: { inputs: {} } }));
keep('post /v1/apps/{appId}/executions', 'no_version', 'No such version', await call('POST', '/v1/apps/story/executions', { headers: alice, body: { version: '9', inputs: { hero: 'Ada' } } }));
const chat = keep('post /v1/apps/{appId}/chat', 'turn', 'A chat turn of an echo agent', await call('POST', '/v1/apps/assistant/chat', { headers: alice, body: { message: 'Hello!' }, sse: true }));
const sessionId = chat.headers.get('x-confab-session-id');
const chatExec = chat.headers.get('x-confab-execution-id');
keep('post /v1/apps/{appId}/chat', 'not_chat', 'Not a chat app', await call('POST', '/v1/apps/welcome/chat', { headers: alice, body: { message: 'Hello!' } }));
const id = created.json.executionId;
await sleep(300);
keep('get /v1/executions/{executionId}', 'done', 'A finished execution', await call('GET', `/v1/executions/${id}`, { headers: alice }));
keep('get /v1/executions/{executionId}', 'missing', 'Not the caller\'s', await call('GET', '/v1/executions/ex_nope', { headers: alice }));
keep('get /v1/executions/{executionId}/events', 'resumed', 'Resumed after event 3 (Last-Event-ID: 3)', await call('GET', `/v1/executions/${id}/events`, { headers: { ...alice, 'Last-Event-ID': '3' }, sse: true }));
keep('post /v1/executions/{executionId}/cancel', 'ended', 'Already finished', await call('POST', `/v1/executions/${id}/cancel`, { headers: alice }));
const slow = await call('POST', '/v1/apps/slow/executions', { headers: alice, body: { inputs: { hero: 'Ada' } } });
keep('post /v1/executions/{executionId}/cancel', 'cancelled', 'Stopped mid-run', await call('POST', `/v1/executions/${slow.json.executionId}/cancel`, { headers: alice }));
keep('post /v1/executions/{executionId}/feedback', 'down', 'A thumbs down', await call('POST', `/v1/executions/${chatExec}/feedback`, { headers: alice, body: { rating: 'down', comment: 'missed the point' } }));
keep('post /v1/executions/{executionId}/feedback', 'bad', 'An unknown rating', await call('POST', `/v1/executions/${chatExec}/feedback`, { headers: alice, body: { rating: 'meh' } }));
keep('get /v1/sessions', 'list', 'alice\'s sessions', await call('GET', '/v1/sessions?appId=assistant', { headers: alice }));
keep('get /v1/sessions/{sessionId}', 'session', 'A session with one turn', await call('GET', `/v1/sessions/${sessionId}`, { headers: alice }));

// server-to-server
keep('post /v1/applications/token', 'token', 'A token for 10 minutes', await call('POST', '/v1/applications/token', { body: { ...CLIENT.backend, expires_in: 600 } }));
keep('post /v1/applications/token', 'wrong', 'A wrong secret', await call('POST', '/v1/applications/token', { body: { client_id: 'backend', client_secret: 'nope' } }));
keep('get /v1/agents', 'agents', 'The agents', await call('GET', '/v1/agents', { headers: K }));
const wf = keep('post /v1/workflows', 'created', 'Created', await call('POST', '/v1/workflows', { headers: K, body: {
  name: 'Reviewed briefing', description: 'fetch, approve, summarize',
  steps: [{ agentId: 'fetcher', action: 'Fetch:', stepOrder: 1 }, { agentId: 'human_approval', action: 'Approve', stepOrder: 2 }, { agentId: 'summarizer', action: 'Summarize:', stepOrder: 3 }],
} }));
keep('post /v1/workflows', 'bad_step', 'A step names no agent', await call('POST', '/v1/workflows', { headers: K, body: { name: 'x', steps: [{ agentId: 'nobody', action: 'x', stepOrder: 1 }] } }));
keep('get /v1/workflows', 'page', 'The first page', await call('GET', '/v1/workflows?page=0&size=1&sort=createdAt,asc', { headers: K }));
keep('get /v1/workflows/{workflowId}', 'workflow', 'A seeded workflow', await call('GET', '/v1/workflows/daily-market-briefing', { headers: K }));
keep('get /v1/workflows/{workflowId}', 'missing', 'Not in this workspace', await call('GET', '/v1/workflows/nope', { headers: K }));
keep('patch /v1/workflows/{workflowId}', 'patched', 'A new description', await call('PATCH', `/v1/workflows/${wf.json.id}`, { headers: K, body: { description: 'edited' } }));
keep('get /v1/workflows/{workflowId}/steps', 'steps', 'In stepOrder', await call('GET', '/v1/workflows/daily-market-briefing/steps', { headers: K }));
keep('post /v1/workflows/{workflowId}/steps', 'step', 'Added', await call('POST', `/v1/workflows/${wf.json.id}/steps`, { headers: K, body: { agentId: 'assistant', action: 'Translate:', stepOrder: 4 } }));
keep('post /v1/workflows/{workflowId}/steps', 'taken', 'stepOrder in use', await call('POST', `/v1/workflows/${wf.json.id}/steps`, { headers: K, body: { agentId: 'assistant', action: 'Again:', stepOrder: 4 } }));
keep('post /v1/workflows/{workflowId}/clone', 'copy', 'The copy', await call('POST', '/v1/workflows/daily-market-briefing/clone', { headers: K }));
keep('post /v1/workflows/{workflowId}/run', 'started', 'Started', await call('POST', '/v1/workflows/daily-market-briefing/run', { headers: K, body: { input: 'gold', sessionId: 'morning' } }));
keep('post /v1/workflows/{workflowId}/run', 'finished', 'With ?wait=true', await call('POST', '/v1/workflows/daily-market-briefing/run?wait=true', { headers: K, body: { input: 'semiconductors' } }));
const paused = keep('post /v1/workflows/{workflowId}/run', 'paused', 'Paused for approval (?wait=true)', await call('POST', `/v1/workflows/${wf.json.id}/run?wait=true`, { headers: K, body: { input: 'bonds' } }));
keep('get /v1/workflows/runs/{runId}', 'paused', 'A paused run', await call('GET', `/v1/workflows/runs/${paused.json.id}`, { headers: K }));
keep('post /v1/workflows/runs/{runId}/resume', 'resumed', 'Resumed (?wait=true)', await call('POST', `/v1/workflows/runs/${paused.json.id}/resume?wait=true`, { headers: K, body: { output: 'Bonds rallied.' } }));
keep('post /v1/workflows/runs/{runId}/resume', 'not_paused', 'The run is not paused', await call('POST', `/v1/workflows/runs/${paused.json.id}/resume`, { headers: K, body: { output: 'again' } }));
const ex = keep('post /v1/workflows/{workflowId}/execute', 'started', 'Started', await call('POST', '/v1/workflows/daily-market-briefing/execute', { headers: K, body: { inputs: { input: 'gold' } } }));
await sleep(500);
keep('get /v1/workflows/{workflowId}/executions/{runId}', 'done', 'Outputs and error trace', await call('GET', `/v1/workflows/daily-market-briefing/executions/${ex.json.jobId}`, { headers: K }));
keep('get /v1/workflows/{workflowId}/runs', 'runs', 'Newest first', await call('GET', '/v1/workflows/daily-market-briefing/runs?page=0&size=1', { headers: K }));
const ag = keep('post /v1/agents/{agentId}/execute', 'started', 'Started', await call('POST', '/v1/agents/assistant/execute', { headers: K, body: { inputs: { message: 'hi' } } }));
keep('post /v1/agents/{agentId}/execute', 'finished', 'With ?wait=true', await call('POST', '/v1/agents/assistant/execute?wait=true', { headers: K, body: { inputs: { message: 'hi' } } }));
keep('post /v1/agents/{agentId}/chat', 'reply', 'The reply (JSON)', await call('POST', '/v1/agents/assistant/chat', { headers: K, body: { message: 'Hello!' } }));
keep('post /v1/agents/{agentId}/chat', 'stream', 'The turn streamed', await call('POST', '/v1/agents/assistant/chat', { headers: K, body: { message: 'Hi' }, sse: true }));
keep('post /v1/agents/{agentId}/chat', 'failed', 'A failing agent', await call('POST', '/v1/agents/broken/chat', { headers: K, body: { message: 'Hello!' } }));
await sleep(200);
keep('get /v1/jobs', 'jobs', 'Two newest jobs', await call('GET', '/v1/jobs?size=2', { headers: K }));
keep('get /v1/jobs/{jobId}', 'execution', 'An execution as a job', await call('GET', `/v1/jobs/${ag.json.jobId}`, { headers: K }));
keep('get /v1/jobs/{jobId}', 'run', 'A workflow run as a job', await call('GET', `/v1/jobs/${paused.json.id}`, { headers: K }));
keep('delete /v1/jobs/{jobId}', 'ended', 'Already ended', await call('DELETE', `/v1/jobs/${paused.json.id}`, { headers: K }));
keep('get /v1/feedback', 'ratings', 'Thumbs down', await call('GET', '/v1/feedback?rating=down', { headers: K }));
keep('get /v1/feedback', 'bad', 'A bad size', await call('GET', '/v1/feedback?size=500', { headers: K }));

// AirOps edge
const ao = { workspace_id: 'demo', user_id: 'alice', user_id_hashed: userHash(WS.demo.secret, 'alice') };
keep('get /sdk_api/airops_app_bases/{appId}', 'app', 'The app', await call('GET', '/sdk_api/airops_app_bases/welcome', { headers: ao }));
const aex = keep('post /sdk_api/airops_apps/{appId}/async_execute', 'started', 'Started', await call('POST', '/sdk_api/airops_apps/welcome/async_execute', { headers: ao, body: { inputs: { name: 'Ada' }, stream_channel_id: 'b5f3c1d2' } }));
keep('post /sdk_api/airops_apps/{appId}/async_execute/v{version}', 'started', 'Version 2', await call('POST', '/sdk_api/airops_apps/story/async_execute/v2', { headers: ao, body: { inputs: { hero: 'Ada', count: 2 } } }));
await sleep(300);
keep('get /sdk_api/airops_apps/executions/{executionId}', 'done', 'The record', await call('GET', `/sdk_api/airops_apps/executions/${aex.json.airops_app_execution.uuid}`, { headers: ao }));
keep('patch /sdk_api/airops_apps/executions/{executionId}/cancel', 'ended', 'Already ended: its record', await call('PATCH', `/sdk_api/airops_apps/executions/${aex.json.airops_app_execution.uuid}/cancel`, { headers: ao }));
keep('post /sdk_api/agent_apps/{appId}/chat_stream', 'started', 'A turn', await call('POST', '/sdk_api/agent_apps/assistant/chat_stream', { headers: ao, body: { message: 'Hello!', session_id: 'c0ffee-1', stream_channel_id: 'c0ffee-chan' } }));
keep('post /sdk_api/pusher/auth', 'auth', 'A private channel', await call('POST', '/sdk_api/pusher/auth', { headers: { ...ao, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'socket_id=1234.5678&channel_name=private-c0ffee-chan' }));

await srv.stop();
srv.cleanup();
const doc = JSON.parse(readFileSync(DOC_PATH, 'utf8'));
for (const [key, examples] of Object.entries(out)) {
  const parts = key.split(' ');
  const media = parts[0].startsWith('components/')
    ? doc.components.responses[parts[0].split('/')[2]]?.content?.[parts[1]]
    : doc.paths[parts[1]]?.[parts[0]]?.responses?.[parts[2]]?.content?.[parts[3]];
  if (!media) throw new Error(`docs/openapi.json has no response for the example ${key}`);
  media.examples = examples;
}
for (const [key, examples] of Object.entries(requests)) {
  const [method, template] = key.split(' ');
  const media = doc.paths[template][method].requestBody?.content?.['application/json'];
  if (!media) throw new Error(`docs/openapi.json has no JSON request body for ${key}`);
  media.examples = examples;
}
const target = process.env.CONFAB_OPENAPI_OUT ?? DOC_PATH;  // another file, to compare first
writeFileSync(target, JSON.stringify(doc, null, 2) + '\n');
console.log(`${Object.keys(out).length} responses' examples recorded into ${target}`);
