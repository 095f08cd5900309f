// Several confab-server instances on one PostgreSQL database (issue 14), talked to directly (no load
// balancer): a run started on A is followed from B as if it were live there (the same bytes, dense,
// exactly once, resumable with Last-Event-ID), a cancel sent to B stops it on A, a reader on B of a
// run whose instance died (kill -9) gets the take-over's terminal events, and an instance stopped
// for longer than its lease is fenced: it commits nothing more and exits with status 75.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import {
  STORE, SseReader, WS, databaseUrlFor, getJson, idHeaders, makeDataDir, postJson, psql, sleep, startServer,
} from './helpers.mjs';
import { KEY, bearer, createWorkflow, s2sConfig, waitJob } from './s2s_helpers.mjs';

const T = { timeout: 90000 };
const LEASE_MS = 1500;
const EXIT_FENCED = 75;

// A chat agent whose reply streams for a while: ~4 characters every 40 ms.
function config() {
  const c = s2sConfig();  // the test config, plus the server-to-server API's agents and clients
  c.workspaces[0].apps.push({ id: 'slowchat', type: 'agent', model: 'echo', chunkChars: 4, delayMs: 40 });
  return c;
}
const MESSAGE = 'Tell me the whole story again, slowly, word by word, so that another instance can follow it. '.repeat(3);

// Reads an SSE response raw: `text` is every byte of the stream but heartbeat comments (which
// depend on timing, not on the run), `events` as parsed. `onEvent(ev, events)` returning true
// stops reading there (the connection is dropped).
async function rawSse(url, { method = 'GET', headers = {}, body, onEvent, timeoutMs = 30000 } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`SSE read of ${url} timed out`)), timeoutMs);
  try {
    const res = await fetch(url, {
      method,
      headers: { Accept: 'text/event-stream', ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
      signal: ac.signal,
    });
    assert.equal(res.status, 200, `${method} ${url}: ${res.status}`);
    const reader = new SseReader();
    const decoder = new TextDecoder();
    let text = '';
    let stopped = false;
    try {
      for await (const chunk of res.body) {
        const s = decoder.decode(chunk, { stream: true });
        text += s;
        for (const ev of reader.push(s)) {
          if (onEvent && onEvent(ev, reader.events, res)) {
            stopped = true;
            break;
          }
        }
        if (stopped) {
          ac.abort();
          break;
        }
      }
    } catch (e) {
      if (!stopped) throw e;
    }
    return { res, text: text.replace(/^: hb\n\n/gm, ''), events: reader.events, stopped };
  } finally {
    clearTimeout(timer);
  }
}

// Starts a chat turn on `srv`; resolves { id, done } as soon as the response head is there
// (`done`: the whole stream, read raw). `onEvent` as rawSse's.
function startChat(srv, user, onEvent) {
  let resolveId;
  const idKnown = new Promise((r) => { resolveId = r; });
  const done = rawSse(`${srv.url}/v1/apps/slowchat/chat`, {
    method: 'POST', headers: idHeaders(WS.demo, user), body: { message: MESSAGE },
    onEvent: (ev, all, res) => {
      resolveId(res.headers.get('x-confab-execution-id'));
      return onEvent ? onEvent(ev, all) : false;
    },
  });
  done.catch(() => resolveId(null));
  return { idKnown, done };
}

function assertDense(events, from = 1) {
  events.forEach((e, i) => assert.equal(e.id, String(from + i), `event ${i} has id ${e.id}, expected ${from + i}`));
}

async function waitFor(what, cond, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('two instances on one PostgreSQL database', {
  skip: STORE !== 'postgres' && 'postgres only: instances share a PostgreSQL database (make test-server-pg, or CONFAB_TEST_STORE=postgres CONFAB_TEST_DATABASE_URL=$(scripts/pg.sh url))',
}, () => {
  let databaseUrl;
  const servers = [];
  async function instance(name) {
    const srv = await startServer({
      config: config(), databaseUrl, args: ['--instance-lease-ms', String(LEASE_MS), '--instance-name', name],
    });
    servers.push(srv);
    return srv;
  }

  before(async () => {
    databaseUrl = await databaseUrlFor(makeDataDir());
  });
  after(async () => {
    for (const s of servers) {
      try { process.kill(s.proc.pid, 'SIGCONT'); } catch { /* gone */ }
      await s.stop();
      s.cleanup();
    }
  });

  test('a chat turn started on A and streamed from B: the same bytes, dense, to completed; resume on B mid-run', T, async () => {
    const a = await instance('a-follow');
    const b = await instance('b-follow');
    const user = 'follower';
    let fromB;
    let resumed;
    const turn = startChat(a, user, (ev, all) => {
      if (all.length === 5 && !fromB) {
        // Mid-run: the run is live on A only.
        fromB = turn.idKnown.then((id) => rawSse(`${b.url}/v1/executions/${id}/events`, { headers: idHeaders(WS.demo, user) }));
        resumed = turn.idKnown.then((id) => rawSse(`${b.url}/v1/executions/${id}/events`, {
          headers: idHeaders(WS.demo, user, { 'Last-Event-ID': '3' }),
        }));
      }
      return false;
    });
    const onA = await turn.done;
    assert.ok(fromB, 'A streamed at least 5 events');
    const onB = await fromB;
    const resumedOnB = await resumed;
    assert.ok(onA.events.length > 20, `a long run: ${onA.events.length} events`);
    assertDense(onA.events);
    assert.equal(onA.events.at(-1).type, 'completed');
    assert.equal(onA.events.at(-1).json.status, 'success');
    assertDense(onB.events);
    assert.equal(onB.events.at(-1).type, 'completed', `B's stream ended early, at ${onB.events.at(-1)?.id}`);
    assert.equal(onB.text, onA.text, "B's stream is A's, byte for byte");
    assertDense(resumedOnB.events, 4);
    assert.equal(resumedOnB.events.length, onA.events.length - 3);
    assert.ok(onA.text.endsWith(resumedOnB.text), 'the resumed stream is the tail of the run, byte for byte');
  });

  test('the notification connections dropped mid-run: they reconnect, resync, and B still streams all of it', T, async () => {
    const a = await instance('a-relisten');
    const b = await instance('b-relisten');
    const user = 'relisten';
    let fromB;
    let dropped;
    const turn = startChat(a, user, (ev, all) => {
      if (all.length === 3 && !fromB) {
        fromB = turn.idKnown.then((id) => rawSse(`${b.url}/v1/executions/${id}/events`, {
          headers: idHeaders(WS.demo, user),
          onEvent: (e, seen) => {
            if (seen.length === 6 && !dropped) {
              // Every LISTEN connection of this database (A's and B's) is cut by the server.
              dropped = psql(databaseUrl, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity " +
                "WHERE application_name = 'confab-server-listen' AND datname = current_database()");
            }
            return false;
          },
        }));
      }
      return false;
    });
    const onA = await turn.done;
    const onB = await fromB;
    // The instances of earlier tests in this file listen on this database too.
    assert.ok(Number(await dropped) >= 2, 'both instances were listening');
    assertDense(onB.events);
    assert.equal(onB.events.at(-1).type, 'completed');
    assert.equal(onB.text, onA.text);
    await waitFor('B to listen again', () => /notification connection to the database is back/.test(b.logs()), 10000);
    assert.match(b.logs(), /notification connection to the database is lost/);
  });

  test('a flood of notifications: bounded memory on B, and its reader still gets the run as A streams it', T, async (t) => {
    const a = await instance('a-flood');
    const b = await instance('b-flood');
    const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${b.proc.pid}/status`, 'utf8'))[1]);
    const user = 'flooded';
    let fromB;
    let flood;
    let before = 0;
    const turn = startChat(a, user, (ev, all) => {
      if (all.length === 3 && !fromB) {
        fromB = turn.idKnown.then((id) => rawSse(`${b.url}/v1/executions/${id}/events`, {
          headers: idHeaders(WS.demo, user),
          onEvent: (e, seen) => {
            if (seen.length === 5 && !flood) {
              before = rssKiB();
              // 200,000 distinct notifications (~9 MB on the wire) in one commit: delivered at once.
              flood = psql(databaseUrl, "SELECT count(pg_notify('confab', 'j ' || i || ' ' || i)) " +
                'FROM generate_series(1, 200000) i');
            }
            return false;
          },
        }));
      }
      return false;
    });
    const onA = await turn.done;
    const onB = await fromB;
    assert.equal(await flood, '200000');
    const grown = rssKiB() - before;
    t.diagnostic(`B's RSS: ${before} KiB before the flood, grown by ${grown} KiB`);
    assertDense(onB.events);
    assert.equal(onB.text, onA.text);
    assert.ok(grown < 8 * 1024, `B's RSS grew ${grown} KiB under the flood`);
  });

  test('a cancel sent to B stops the run on A', T, async () => {
    const a = await instance('a-cancel');
    const b = await instance('b-cancel');
    const user = 'canceller';
    let cancel;
    let cancelledAt = 0;
    const turn = startChat(a, user, (ev, all) => {
      if (all.length === 5 && !cancel) {
        cancelledAt = Date.now();
        cancel = turn.idKnown.then((id) => postJson(`${b.url}/v1/executions/${id}/cancel`, {}, idHeaders(WS.demo, user)));
      }
      return false;
    });
    const onA = await turn.done;
    const endedAt = Date.now();
    const c = await cancel;
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.status, 'cancelled');
    assertDense(onA.events);
    const last = onA.events.at(-1);
    assert.equal(last.type, 'completed');
    assert.equal(last.json.status, 'cancelled');
    assert.ok(onA.events.length < 40, `stopped early: ${onA.events.length} events`);
    assert.ok(endedAt - cancelledAt < 5000, `A's run ended ${endedAt - cancelledAt} ms after the cancel`);
    const id = await turn.idKnown;
    const stored = await getJson(`${a.url}/v1/executions/${id}`, idHeaders(WS.demo, user));
    assert.equal(stored.json.status, 'cancelled');
  });

  test('a workflow run on A cancelled through B: its running step stops on A, the run ends CANCELLED', T, async () => {
    const a = await instance('a-workflow');
    const b = await instance('b-workflow');
    const api = bearer(KEY.demo);
    const wf = await createWorkflow(a.url, api, {
      name: 'slow',
      steps: [{ agentId: 'slowpoke', action: 'take your time', stepOrder: 1 }, { agentId: 'fetcher', action: 'never', stepOrder: 2 }],
    });
    const runId = (await postJson(`${a.url}/v1/workflows/${wf.id}/run`, { input: 'x'.repeat(40) }, api)).json.jobId;
    await waitJob(a.url, runId, api, ['RUNNING']);
    const c = await postJson(`${b.url}/v1/executions/${runId}/cancel`, '', api);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.status, 'CANCELLED');
    const job = await getJson(`${b.url}/v1/jobs/${runId}`, api);
    assert.equal(job.json.status, 'CANCELLED');
    assert.equal(job.json.steps.length, 1, 'step 2 never ran');
    assert.equal(job.json.steps[0].status, 'CANCELLED');
    const step = await getJson(`${a.url}/v1/jobs/${job.json.steps[0].executionId}`, api);
    assert.equal(step.json.status, 'CANCELLED');
    assert.ok(!String(step.json.output ?? '').includes('x'.repeat(40)), `stopped before the end: ${step.json.output}`);
    // A's own run loop wrote the end: nothing overwrites it later.
    await sleep(500);
    assert.equal((await getJson(`${a.url}/v1/jobs/${runId}`, api)).json.status, 'CANCELLED');
  });

  test('kill -9 of A mid-stream: the reader on B gets a dense sequence ending interrupted, all of it stored', T, async () => {
    const a = await instance('a-killed');
    const b = await instance('b-survivor');
    const user = 'survivor';
    let onB;
    let killedAt = 0;
    const turn = startChat(a, user, (ev, all) => {
      if (all.length === 3 && !onB) {
        onB = turn.idKnown.then((id) => rawSse(`${b.url}/v1/executions/${id}/events`, {
          headers: idHeaders(WS.demo, user),
          onEvent: (e, seen) => {
            if (seen.length === 8 && !killedAt) {
              killedAt = Date.now();
              a.kill9();
            }
            return false;
          },
        }));
      }
      return false;
    });
    await turn.done.catch(() => {});  // its connection dies with A
    const got = await onB;
    const endedAt = Date.now();
    assert.ok(killedAt > 0, 'A was killed mid-stream');
    assertDense(got.events);
    const [err, done] = got.events.slice(-2);
    assert.equal(err.type, 'error');
    assert.equal(err.json.code, 'interrupted');
    assert.equal(done.type, 'completed');
    assert.equal(done.json.status, 'error');
    // The lease (1.5 s), then B's next take-over round (every ~lease/4), then its follower.
    assert.ok(endedAt - killedAt < LEASE_MS + 3500, `B's stream ended ${endedAt - killedAt} ms after the kill`);
    const id = await turn.idKnown;
    const again = await rawSse(`${b.url}/v1/executions/${id}/events`, { headers: idHeaders(WS.demo, user) });
    assert.equal(again.text, got.text, 'every event B sent is stored, byte for byte');
    const stored = await getJson(`${b.url}/v1/executions/${id}`, idHeaders(WS.demo, user));
    assert.equal(stored.json.status, 'error');
  });

  test('fencing: A stopped for longer than its lease is taken over, commits nothing more and exits 75', T, async () => {
    const a = await instance('a-stopped');
    const b = await instance('b-taker');
    const user = 'fenced';
    let onB;
    let followed;
    const following = new Promise((r) => { followed = r; });
    let stoppedAt = 0;
    const turn = startChat(a, user, (ev, all) => {
      if (all.length === 3 && !onB) {
        followed();
        onB = turn.idKnown.then((id) => rawSse(`${b.url}/v1/executions/${id}/events`, {
          headers: idHeaders(WS.demo, user),
          onEvent: (e, seen) => {
            if (seen.length === 8 && !stoppedAt) {
              stoppedAt = Date.now();
              process.kill(a.proc.pid, 'SIGSTOP');
            }
            return false;
          },
        }));
      }
      return false;
    });
    await following;
    const got = await onB;
    assert.ok(stoppedAt > 0, `A was stopped mid-stream: B got ${got.text}\nA: ${a.logs().slice(-3000)}\nB: ${b.logs().slice(-3000)}`);
    assertDense(got.events);
    assert.equal(got.events.at(-2).json.code, 'interrupted');
    assert.equal(got.events.at(-1).type, 'completed');
    const id = await turn.idKnown;
    const storedBefore = await rawSse(`${b.url}/v1/executions/${id}/events`, { headers: idHeaders(WS.demo, user) });
    assert.equal(storedBefore.text, got.text);
    process.kill(a.proc.pid, 'SIGCONT');
    const exited = await Promise.race([a.exited, sleep(10000).then(() => null)]);
    assert.ok(exited, `A still runs 10 s after SIGCONT\n${a.logs().slice(-2000)}`);
    assert.equal(exited.code, EXIT_FENCED, a.logs().slice(-2000));
    assert.match(a.logs(), /"msg":"this instance was fenced/);
    await turn.done.catch(() => {});
    // Nothing of A after the take-over: the stored events end with the take-over's terminal ones.
    const storedAfter = await rawSse(`${b.url}/v1/executions/${id}/events`, { headers: idHeaders(WS.demo, user) });
    assert.equal(storedAfter.text, got.text, 'A committed nothing after it was fenced');
    const rec = await getJson(`${b.url}/v1/executions/${id}`, idHeaders(WS.demo, user));
    assert.equal(rec.json.status, 'error');
    assert.match(rec.json.error, /interrupted/);
  });
});
