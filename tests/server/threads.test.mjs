// Many I/O threads: workflow runs started together on a server with --threads 8 all finish
// promptly (a lost wake-up between a run's step finishing and its workflow noticing stalled them 60 s).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { WS, readSse, startServer, streamText } from './helpers.mjs';
import { KEY, bearer, createWorkflow, s2sConfig } from './s2s_helpers.mjs';

const ROUNDS = 5;
const RUNS = 40;
// A liveness bound, not a timing claim: a stalled run waits 60 s for a wake-up that never comes.
// Sanitizer builds run several times slower; make test-tsan sets CONFAB_TEST_SLOWDOWN.
const ROUND_MS = 10000 * Number(process.env.CONFAB_TEST_SLOWDOWN ?? 1);

let srv;
const demo = bearer(KEY.demo);
before(async () => { srv = await startServer({ config: s2sConfig(), args: ['--threads', '8'] }); });
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

async function start(workflowId, input, signal) {
  try {
    const res = await fetch(`${srv.url}/v1/workflows/${workflowId}/run?wait=true`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...demo }, body: JSON.stringify({ input }), signal,
    });
    const text = await res.text();
    return { status: res.status, text, json: JSON.parse(text) };
  } catch (e) {
    return { status: 0, text: `${e.name}: ${e.message}` };
  }
}

describe('workflow runs on 8 I/O threads', () => {
  test(`${ROUNDS} rounds of ${RUNS} concurrent one-step runs each finish within the round's bound`,
    { timeout: ROUNDS * ROUND_MS + 30000 }, async () => {
      const wf = await createWorkflow(srv.url, demo, {
        name: 'One step', steps: [{ agentId: 'fetcher', action: 'Echo:', stepOrder: 1 }],
      });
      for (let round = 1; round <= ROUNDS; ++round) {
        const signal = AbortSignal.timeout(ROUND_MS);
        // ?wait=true answers 200 once the run has ended (202 only after 60 s with it still live).
        const runs = Array.from({ length: RUNS }, (_, i) => start(wf.id, `r${round}-${i}`, signal));
        const results = await Promise.all(runs);
        const late = results.filter((r) => r.status !== 200);
        assert.equal(late.length, 0,
          `round ${round}: ${late.length} of ${RUNS} runs not finished within ${ROUND_MS} ms; ` +
          `first: ${late[0]?.status} ${late[0]?.text}\n${srv.logs()}`);
        results.forEach((r, i) => {
          assert.equal(r.json.status, 'COMPLETED', r.text);
          assert.ok(r.json.output.includes(`r${round}-${i}`), `the run's output carries its own input: ${r.text}`);
        });
      }
    });
});

describe('live streams on 8 I/O threads', () => {
  test(`${RUNS} concurrent streamed executions each read every event once, in order, to completed`,
    { timeout: ROUND_MS + 30000 }, async () => {
      // Each stream's reader sleeps between events and is woken by the run publishing the next.
      const anon = { 'X-Confab-Workspace': WS.demo.id };
      const streams = await Promise.all(Array.from({ length: RUNS }, (_, i) => readSse(
        `${srv.url}/v1/apps/welcome/executions`,
        { method: 'POST', headers: anon, body: { inputs: { name: `n${i}` } }, timeoutMs: ROUND_MS },
      )));
      streams.forEach((s, i) => {
        assert.equal(s.status, 200);
        assert.deepEqual(s.events.map((e) => Number(e.id)), s.events.map((_, k) => k + 1), 'dense ids, none twice');
        assert.equal(s.events.at(-1).type, 'completed');
        assert.equal(s.events.at(-1).json.status, 'success');
        assert.equal(streamText(s.events), `Hello, n${i}! Welcome aboard.`);
      });
    });
});
