// Shared setup of the server-to-server API tests: a config with echo agents, API clients and the
// Daily Market Briefing seed, bearer headers, and polling a run until it reaches a status.
import assert from 'node:assert/strict';

import { WS, getJson, postJson, sleep, testConfig } from './helpers.mjs';

export const KEY = { demo: WS.demo.apiKey, acme: WS.acme.apiKey, tiny: 'test-tiny-key' };
export const CLIENT = {
  backend: { client_id: 'backend', client_secret: 'backend-secret-1' },
  short: { client_id: 'short-lived', client_secret: 'short-secret-1' },
  revoked: { client_id: 'retired', client_secret: 'retired-secret-1' },
  acme: { client_id: 'acme-backend', client_secret: 'acme-backend-secret-1' },
};

export const BRIEFING = {
  id: 'daily-market-briefing',
  name: 'Daily Market Briefing',
  description: 'fetch, then summarize',
  steps: [
    { agentId: 'fetcher', action: 'Fetch the market news for:', stepOrder: 1 },
    { agentId: 'summarizer', action: 'Summarize:', stepOrder: 2 },
  ],
};

// revoked: which clients are revoked (a restart with another config revokes a client).
export function s2sConfig({ revoked = ['retired'] } = {}) {
  const cfg = testConfig({ acmeRate: { perSecond: 1000, burst: 1000 } });
  const [demo, acme] = cfg.workspaces;
  demo.apps.push(
    { id: 'fetcher', type: 'agent', model: 'echo', chunkChars: 64, delayMs: 1 },
    { id: 'summarizer', type: 'agent', model: 'echo', chunkChars: 64, delayMs: 1 },
    // About 4 s per step: long enough to cancel it or kill the server mid-run.
    { id: 'slowpoke', type: 'agent', model: 'echo', chunkChars: 2, delayMs: 40 },
    // No llm upstream is configured in the tests, so this agent always fails: a failing step.
    { id: 'broken', type: 'agent', model: 'llm' },
  );
  const clients = [
    { clientId: 'backend', clientSecret: 'backend-secret-1' },
    { clientId: 'short-lived', clientSecret: 'short-secret-1', tokenTtlSeconds: 1 },
    { clientId: 'retired', clientSecret: 'retired-secret-1' },
  ];
  demo.clients = clients.map((c) => (revoked.includes(c.clientId) ? { ...c, revoked: true } : c));
  demo.workflows = [BRIEFING];
  acme.clients = [{ clientId: 'acme-backend', clientSecret: 'acme-backend-secret-1' }];
  cfg.workspaces.push({
    id: 'tiny', secrets: ['test-tiny-secret'], apiKeys: [KEY.tiny],
    rateLimit: { perSecond: 0.2, burst: 3 }, apps: [],
  });
  return cfg;
}

export const bearer = (token) => ({ Authorization: `Bearer ${token}` });

export async function send(method, url, body, headers = {}) {
  if (method === 'POST') return postJson(url, body ?? '', headers);
  if (body === undefined) return getJson(url, headers, method);
  const res = await fetch(url, { method, headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : null; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

export function assertError(r, status, code, pattern) {
  assert.equal(r.status, status, r.text);
  assert.equal(typeof r.json?.error, 'string', `JSON error body: ${r.text}`);
  if (code) assert.equal(r.json.code, code, r.text);
  if (pattern) assert.match(r.json.error, pattern);
}

// Polls GET /v1/jobs/{id} until `done(job)` (default: the status is one of `statuses`).
export async function waitJob(url, id, headers, statuses, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await getJson(`${url}/v1/jobs/${id}`, headers);
    assert.equal(r.status, 200, r.text);
    if (statuses.includes(r.json.status)) return r.json;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${r.json.status}: ${r.text}`);
    await sleep(25);
  }
}

export async function createWorkflow(url, headers, body) {
  const r = await postJson(`${url}/v1/workflows`, body, headers);
  assert.equal(r.status, 201, r.text);
  return r.json;
}
