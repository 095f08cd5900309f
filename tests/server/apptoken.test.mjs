// Client-credential access tokens (POST /v1/applications/token): issue, use, expiry, tampering,
// revocation (a restart with the client revoked voids its tokens); and restart durability of
// workflow definitions and runs (an in-flight run ends FAILED with a reason, a paused one resumes).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { getJson, makeDataDir, postJson, sleep, startServer, takenOver } from './helpers.mjs';
import { CLIENT, KEY, assertError, bearer, createWorkflow, s2sConfig, send, waitJob } from './s2s_helpers.mjs';

const T = { timeout: 30000 };

describe('access tokens', () => {
  let srv;
  before(async () => { srv = await startServer({ config: s2sConfig() }); });
  after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });
  const tokenUrl = () => `${srv.url}/v1/applications/token`;

  test('client credentials -> a Bearer token that works on every server-to-server route of its workspace', T, async () => {
    const r = await postJson(tokenUrl(), CLIENT.backend);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.token_type, 'Bearer');
    assert.equal(r.json.expires_in, 3600);
    assert.match(r.json.access_token, /^at1\.demo\.backend\.\d+\.[0-9a-f]{64}$/);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const h = bearer(r.json.access_token);
    const wf = await createWorkflow(srv.url, h, { name: 'by token', steps: [{ agentId: 'fetcher', action: 'a', stepOrder: 1 }] });
    assert.equal((await getJson(`${srv.url}/v1/workflows/${wf.id}`, bearer(KEY.demo))).status, 200, 'same workspace as its API key');
    assert.equal((await getJson(`${srv.url}/v1/agents`, h)).status, 200);
    const run = await postJson(`${srv.url}/v1/workflows/${wf.id}/run`, { input: 'x' }, h);
    await waitJob(srv.url, run.json.jobId, h, ['COMPLETED']);
    // Another workspace's client gets its own workspace only.
    const a = await postJson(tokenUrl(), CLIENT.acme);
    assert.equal(a.status, 200);
    assertError(await getJson(`${srv.url}/v1/workflows/${wf.id}`, bearer(a.json.access_token)), 404, 'workflow_not_found');
  });

  test('bad requests are 400 naming the field; wrong credentials 401', T, async () => {
    assertError(await postJson(tokenUrl(), {}), 400, 'invalid_request', /^client_id/);
    assertError(await postJson(tokenUrl(), { client_id: 'backend' }), 400, 'invalid_request', /^client_secret/);
    assertError(await postJson(tokenUrl(), { ...CLIENT.backend, expires_in: 0 }), 400, 'invalid_request', /^expires_in/);
    assertError(await postJson(tokenUrl(), { ...CLIENT.backend, expires_in: 3601 }), 400, 'invalid_request', /^expires_in/);
    assertError(await postJson(tokenUrl(), { ...CLIENT.backend, scope: 'all' }), 400, 'invalid_request', /^scope/);
    assertError(await postJson(tokenUrl(), { ...CLIENT.backend, grant_type: 'password' }), 400, 'invalid_request', /^grant_type/);
    assertError(await postJson(tokenUrl(), { client_id: 'backend', client_secret: 'wrong' }), 401, 'invalid_client');
    assertError(await postJson(tokenUrl(), { client_id: 'nobody', client_secret: 'x' }), 401, 'invalid_client');
    // The acme client's secret does not open demo's client of another name, nor the reverse.
    assertError(await postJson(tokenUrl(), { client_id: 'backend', client_secret: CLIENT.acme.client_secret }), 401, 'invalid_client');
    assertError(await getJson(tokenUrl()), 405, 'method_not_allowed');
  });

  test('a revoked client gets no token', T, async () => {
    assertError(await postJson(tokenUrl(), CLIENT.revoked), 401, 'client_revoked');
  });

  test('an expired token is 401 token_expired (1 s token)', T, async () => {
    const r = await postJson(tokenUrl(), { ...CLIENT.short });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.expires_in, 1);
    const h = bearer(r.json.access_token);
    assert.equal((await getJson(`${srv.url}/v1/workflows`, h)).status, 200);
    await sleep(1100);
    assertError(await getJson(`${srv.url}/v1/workflows`, h), 401, 'token_expired');
    // A shorter token on request from a long-lived client.
    const s = await postJson(tokenUrl(), { ...CLIENT.backend, expires_in: 1 });
    assert.equal(s.json.expires_in, 1);
  });

  test('tampered or malformed tokens are 401', T, async () => {
    const { access_token: t } = (await postJson(tokenUrl(), CLIENT.backend)).json;
    const parts = t.split('.');
    const later = [...parts.slice(0, 3), String(Number(parts[3]) + 86400000), parts[4]].join('.');
    assertError(await getJson(`${srv.url}/v1/workflows`, bearer(later)), 401, 'token_invalid');
    const otherWs = ['at1', 'acme', ...parts.slice(2)].join('.');
    assertError(await getJson(`${srv.url}/v1/workflows`, bearer(otherWs)), 401, 'token_invalid');
    const flipped = t.slice(0, -1) + (t.endsWith('0') ? '1' : '0');
    assertError(await getJson(`${srv.url}/v1/workflows`, bearer(flipped)), 401, 'token_invalid');
    assertError(await getJson(`${srv.url}/v1/workflows`, bearer('at1.demo.backend')), 401, 'token_malformed');
    assertError(await getJson(`${srv.url}/v1/workflows`, bearer('at1.demo.backend.soon.abc')), 401, 'token_malformed');
  });
});

test('restart: definitions and runs survive, an in-flight run is FAILED with a reason, a paused run resumes; revoking a client voids its tokens', T, async () => {
  const dataDir = makeDataDir();
  const demo = bearer(KEY.demo);
  try {
    let srv = await startServer({ config: s2sConfig(), dataDir });
    const token = (await postJson(`${srv.url}/v1/applications/token`, CLIENT.backend)).json.access_token;
    const wf = await createWorkflow(srv.url, demo, {
      name: 'durable', description: 'kept',
      steps: [{ agentId: 'fetcher', action: 'a', stepOrder: 1 }, { agentId: 'human_approval', action: 'ok?', stepOrder: 2 },
        { agentId: 'summarizer', action: 'b', stepOrder: 3 }],
    });
    const paused = (await postJson(`${srv.url}/v1/workflows/${wf.id}/run`, { input: 'keep me' }, demo)).json.jobId;
    await waitJob(srv.url, paused, demo, ['PAUSED']);
    const slow = await createWorkflow(srv.url, demo, { name: 'slow', steps: [{ agentId: 'slowpoke', action: 'slow', stepOrder: 1 }] });
    const inflight = (await postJson(`${srv.url}/v1/workflows/${slow.id}/run`, { input: 'y'.repeat(40) }, demo)).json.jobId;
    await waitJob(srv.url, inflight, demo, ['RUNNING']);
    await srv.kill9();

    // Same data dir; the "backend" client is now revoked in the config.
    srv = await startServer({ config: s2sConfig({ revoked: ['retired', 'backend'] }), dataDir });
    try {
      await takenOver(srv);  // PostgreSQL: the killed instance's runs are closed once its lease ran out
      const got = await getJson(`${srv.url}/v1/workflows/${wf.id}`, demo);
      assert.equal(got.status, 200);
      assert.equal(got.json.description, 'kept');
      assert.equal(got.json.steps.length, 3);
      const failed = await getJson(`${srv.url}/v1/jobs/${inflight}`, demo);
      assert.equal(failed.json.status, 'FAILED');
      assert.match(failed.json.error, /interrupted: the server restarted/);
      const runs = await getJson(`${srv.url}/v1/workflows/${slow.id}/runs`, demo);
      assert.equal(runs.json.content[0].status, 'FAILED');
      assert.equal((await getJson(`${srv.url}/v1/jobs/${paused}`, demo)).json.status, 'PAUSED');
      const resumed = await postJson(`${srv.url}/v1/workflows/runs/${paused}/resume`, { output: 'approved after restart' }, demo);
      assert.equal(resumed.status, 202, resumed.text);
      const done = await waitJob(srv.url, paused, demo, ['COMPLETED', 'FAILED']);
      assert.equal(done.status, 'COMPLETED');
      assert.match(done.output, /approved after restart/);
      // The token was valid before; its client is revoked now.
      assertError(await getJson(`${srv.url}/v1/workflows`, bearer(token)), 401, 'client_revoked');
      assertError(await postJson(`${srv.url}/v1/applications/token`, CLIENT.backend), 401, 'client_revoked');

      // Graceful stop (SIGTERM) mid-run: also FAILED with a reason after the restart.
      const second = (await postJson(`${srv.url}/v1/workflows/${slow.id}/run`, { input: 'z'.repeat(40) }, demo)).json.jobId;
      await waitJob(srv.url, second, demo, ['RUNNING']);
      await srv.stop();
      srv = await startServer({ config: s2sConfig(), dataDir });
      const after = await getJson(`${srv.url}/v1/jobs/${second}`, demo);
      assert.equal(after.json.status, 'FAILED');
      assert.ok(after.json.error.length > 0, 'a reason is given');
    } finally {
      await srv.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
