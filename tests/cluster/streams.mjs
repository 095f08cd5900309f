// Stream helpers for the cluster tests: open a request through nginx on an instance other than
// the given ones (round-robin: the next try lands elsewhere), then read its events as they come.
import { SseReader, STORY } from '../server/helpers.mjs';
import { steer } from './cluster.mjs';
import { s2sConfig } from '../server/s2s_helpers.mjs';

// The servers' config: the server tests' (with workflows, API clients and the rate-limited
// workspace `tiny`), plus runs slow enough to be followed and cut off mid-stream.
export function clusterConfig() {
  const cfg = s2sConfig();
  cfg.workspaces[0].apps.push(
    // ~70 events over ~2 s: long enough to be followed from another instance while it runs.
    { id: 'steady', type: 'template', inputs: [{ name: 'hero', type: 'string', required: true }],
      template: '{{hero}}: ' + STORY, chunkChars: 3, delayMs: 25 },
    // ~20 s: still running when its owner is killed and when the lease has run out.
    { id: 'long', type: 'template', inputs: [{ name: 'hero', type: 'string', required: true }],
      template: '{{hero}} ' + STORY + ' ' + STORY, chunkChars: 2, delayMs: 100 },
    { id: 'chatty', type: 'agent', model: 'echo', chunkChars: 3, delayMs: 20 },
  );
  return cfg;
}

// Opens `url` (fetch `init`) through the cluster's nginx until an instance not in `avoid`
// answers; the unwanted answers are dropped before their body is read. Resolves a reader:
// { res, instance, events (filled as they arrive), done (resolves when the stream ends or breaks),
//   waitFor(pred, timeoutMs) }.
export async function openStream(cluster, url, init = {}, avoid = []) {
  const method = (init.method ?? 'GET').toUpperCase();
  if (method !== 'GET' && avoid.length) await steer(cluster, avoid);
  for (let n = 0; n < 12; n++) {
    const ac = new AbortController();
    const res = await fetch(url, { ...init, signal: ac.signal });
    const instance = cluster.instanceOf(res);
    if (avoid.includes(instance)) {
      ac.abort();
      // A POST that reached an instance may have started a run there: never send it twice.
      if (method !== 'GET') throw new Error(`${method} ${url} landed on instance ${instance}, one of ${avoid}`);
      await res.body?.cancel().catch(() => {});
      continue;
    }
    return readAsItComes(res, instance, ac);
  }
  throw new Error(`no instance outside ${avoid} answered in 12 tries`);
}

export function readAsItComes(res, instance, ac) {
  const reader = new SseReader();
  const out = { res, instance, events: reader.events, broken: false, endedAt: null, close: () => ac?.abort() };
  const waiters = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.pred(out.events)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    }
  };
  out.done = (async () => {
    try {
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        reader.push(decoder.decode(chunk, { stream: true }));
        check();
      }
    } catch {
      out.broken = true;
    }
    out.endedAt = Date.now();
    for (const w of waiters.splice(0)) w.reject(new Error(`the stream ended before the awaited event (${out.events.length} events)`));
    return out;
  })();
  out.waitFor = (pred, timeoutMs = 10000) => {
    if (pred(out.events)) return Promise.resolve();
    if (out.endedAt) return Promise.reject(new Error('the stream has ended'));
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, reject };
      waiters.push(w);
      setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) { waiters.splice(i, 1); reject(new Error(`timed out after ${timeoutMs} ms with ${out.events.length} events`)); }
      }, timeoutMs);
    });
  };
  return out;
}

// Asserts `ids` is 1..N.
export function dense(events) {
  const ids = events.map((e) => Number(e.id));
  return ids.every((id, k) => id === k + 1);
}
