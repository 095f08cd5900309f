// GET /v1/executions/{id} of a finished execution answers from memory (--execution-cache-bytes,
// native-server/src/execution_cache.hpp): a running one is never frozen in its running state,
// another caller's stays 404, and a cache too small for them all still answers every one right.
// /metrics' confab_execution_cache_* figures show which GETs the cache answered.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { SERVER_BIN, WS, getJson, idHeaders, postJson, sleep, startServer } from './helpers.mjs';

const T = { timeout: 30000 };
const alice = () => idHeaders(WS.demo, 'alice');
const bob = () => idHeaders(WS.demo, 'bob');

async function metric(srv, name) {
  const r = await getJson(`${srv.url}/metrics`);
  assert.equal(r.status, 200);
  const escaped = name.replace(/[{}]/g, '\\$&');
  const m = new RegExp(`^${escaped} (\\d+)$`, 'm').exec(r.text);
  assert.ok(m, `${name} not in /metrics:\n${r.text}`);
  return Number(m[1]);
}
const hits = (srv) => metric(srv, 'confab_execution_cache_lookups_total{result="hit"}');
const misses = (srv) => metric(srv, 'confab_execution_cache_lookups_total{result="miss"}');

// The answer to an id nobody has: what another caller must get for an execution that is not theirs.
function notFound(id) {
  return { error: `execution '${id}' not found`, code: 'execution_not_found' };
}

describe('a server with the default cache', () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => {
    if (!srv) return;
    const { code } = await srv.stop();
    srv.cleanup();
    assert.equal(code, 0);
  });

  test('a running execution reads as running on every GET, then as finished, then from memory', T, async () => {
    // sleepy: 4 chunks 300 ms apart, so well over a second of GETs see it unfinished.
    const start = await postJson(`${srv.url}/v1/apps/sleepy/executions`, { inputs: {} }, alice());
    assert.equal(start.status, 202);
    const id = start.json.executionId;
    const seen = [];
    let last;
    const deadline = Date.now() + 15000;
    for (;;) {
      const r = await getJson(`${srv.url}/v1/executions/${id}`, alice());
      assert.equal(r.status, 200);
      last = r.json;
      if (seen.at(-1) !== last.status) seen.push(last.status);
      if (last.status === 'success') break;
      assert.ok(['queued', 'running'].includes(last.status), last.status);
      assert.ok(Date.now() < deadline, `did not finish: ${JSON.stringify(seen)}`);
      await sleep(25);
    }
    assert.ok(seen.includes('running'), `never seen running: ${JSON.stringify(seen)}`);
    assert.equal(last.output, 'one two three');
    assert.equal(last.error, undefined);
    // Read again: the same body, answered by the cache (the hit count grows with each GET).
    const before = await hits(srv);
    for (let i = 0; i < 3; i++) {
      const again = await getJson(`${srv.url}/v1/executions/${id}`, alice());
      assert.equal(again.status, 200);
      assert.deepEqual(again.json, last);
    }
    assert.equal(await hits(srv), before + 3);
  });

  test('a cancelled execution reads as cancelled (not as the running state GETs saw before)', T, async () => {
    const start = await postJson(`${srv.url}/v1/apps/idle/executions`, { inputs: {} }, alice());
    assert.equal(start.status, 202);
    const id = start.json.executionId;
    for (let i = 0; i < 5; i++) {
      const r = await getJson(`${srv.url}/v1/executions/${id}`, alice());
      assert.ok(['queued', 'running'].includes(r.json.status), r.json.status);
    }
    const c = await postJson(`${srv.url}/v1/executions/${id}/cancel`, {}, alice());
    assert.equal(c.status, 200);
    assert.equal(c.json.status, 'cancelled');
    for (let i = 0; i < 3; i++) {
      const r = await getJson(`${srv.url}/v1/executions/${id}`, alice());
      assert.equal(r.status, 200);
      assert.equal(r.json.status, 'cancelled');
    }
  });

  test("another user's, another workspace's or an anonymous GET of a cached execution is 404", T, async () => {
    const run = await postJson(`${srv.url}/v1/apps/welcome/executions?wait=true`, { inputs: { name: 'Ada' } }, alice());
    assert.equal(run.status, 200);
    const id = run.json.id;
    const own = await getJson(`${srv.url}/v1/executions/${id}`, alice());
    assert.equal(own.status, 200);
    assert.equal(own.text, run.text);  // the ?wait=true body is the GET body, byte for byte
    const h = await hits(srv);
    assert.ok(h >= 1);
    const strangers = [bob(), idHeaders(WS.acme, 'alice'), { 'X-Confab-Workspace': WS.demo.id }];
    for (const headers of strangers) {
      const r = await getJson(`${srv.url}/v1/executions/${id}`, headers);
      assert.equal(r.status, 404);
      assert.deepEqual(r.json, notFound(id));  // the answer for an id that does not exist
    }
    const nobody = 'ex_00000000000000000000000000000000';
    assert.deepEqual((await getJson(`${srv.url}/v1/executions/${nobody}`, bob())).json, notFound(nobody));
    assert.equal(await hits(srv), h, 'no stranger was answered from the cache');
    // An anonymous run of a public app is the anonymous caller's only.
    const anon = await postJson(`${srv.url}/v1/apps/welcome/executions?wait=true`, { inputs: { name: 'Anon' } },
      { 'X-Confab-Workspace': WS.demo.id });
    assert.equal(anon.status, 200);
    const mine = await getJson(`${srv.url}/v1/executions/${anon.json.id}`, { 'X-Confab-Workspace': WS.demo.id });
    assert.equal(mine.status, 200);
    assert.equal(mine.text, anon.text);
    assert.equal((await getJson(`${srv.url}/v1/executions/${anon.json.id}`, alice())).status, 404);
    // And the owner still reads it after the strangers' misses.
    assert.equal((await getJson(`${srv.url}/v1/executions/${id}`, alice())).text, run.text);
  });
});

describe('a cache of about two executions', () => {
  let srv;
  before(async () => { srv = await startServer({ args: ['--execution-cache-bytes', '1000'] }); });
  after(async () => {
    if (!srv) return;
    const { code } = await srv.stop();
    srv.cleanup();
    assert.equal(code, 0);
  });

  test('every GET of ten finished executions is right after evictions, within the bound', T, async () => {
    const runs = [];
    for (let i = 0; i < 10; i++) {
      const who = i % 2 ? alice() : bob();
      const r = await postJson(`${srv.url}/v1/apps/welcome/executions?wait=true`, { inputs: { name: `N${i}` } }, who);
      assert.equal(r.status, 200);
      assert.equal(r.json.output, `Hello, N${i}! Welcome aboard.`);
      runs.push({ id: r.json.id, text: r.text, who, other: i % 2 ? bob() : alice() });
    }
    const h0 = await hits(srv);
    const m0 = await misses(srv);
    // Forwards, backwards, each twice in a row (the second a hit): evictions all along.
    const order = [...runs, ...[...runs].reverse()];
    for (const run of order) {
      for (let k = 0; k < 2; k++) {
        const r = await getJson(`${srv.url}/v1/executions/${run.id}`, run.who);
        assert.equal(r.status, 200);
        assert.equal(r.text, run.text);
      }
      const x = await getJson(`${srv.url}/v1/executions/${run.id}`, run.other);
      assert.equal(x.status, 404);
      assert.deepEqual(x.json, notFound(run.id));
    }
    assert.ok(await hits(srv) - h0 >= order.length, 'each second GET in a row is a hit');
    // Misses: the strangers' (one per step) and the owners' first GETs of evicted ones (all but
    // the two kept at the turn, with room for two).
    assert.ok(await misses(srv) - m0 >= order.length + 10, 'the evicted ones were read from the store');
    assert.ok(await metric(srv, 'confab_execution_cache_evictions_total') > 0);
    const entries = await metric(srv, 'confab_execution_cache_entries');
    assert.ok(entries >= 1 && entries < 10, `entries ${entries}`);
    assert.ok(await metric(srv, 'confab_execution_cache_bytes') <= 1000);
    assert.equal(await metric(srv, 'confab_execution_cache_max_bytes'), 1000);
  });
});

describe('--execution-cache-bytes 0', () => {
  let srv;
  before(async () => { srv = await startServer({ args: ['--execution-cache-bytes', '0'] }); });
  after(async () => {
    if (!srv) return;
    const { code } = await srv.stop();
    srv.cleanup();
    assert.equal(code, 0);
  });

  test('turns the cache off: every GET reads the store and is right', T, async () => {
    const run = await postJson(`${srv.url}/v1/apps/welcome/executions?wait=true`, { inputs: { name: 'Off' } }, alice());
    assert.equal(run.status, 200);
    for (let i = 0; i < 3; i++) {
      const r = await getJson(`${srv.url}/v1/executions/${run.json.id}`, alice());
      assert.equal(r.text, run.text);
    }
    assert.equal((await getJson(`${srv.url}/v1/executions/${run.json.id}`, bob())).status, 404);
    assert.equal(await hits(srv), 0);
    assert.equal(await misses(srv), 0);
    assert.equal(await metric(srv, 'confab_execution_cache_entries'), 0);
    assert.equal(await metric(srv, 'confab_execution_cache_max_bytes'), 0);
  });
});

test('--execution-cache-bytes takes 0 to 1073741824 bytes, else a usage error', T, () => {
  for (const bad of ['-1', 'lots', '1073741825']) {
    const r = spawnSync(SERVER_BIN, ['serve', '--execution-cache-bytes', bad], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /--execution-cache-bytes/);
  }
  const help = spawnSync(SERVER_BIN, ['--help'], { encoding: 'utf8', timeout: 10000 });
  assert.match(help.stdout + help.stderr, /--execution-cache-bytes N/);
});
