// Reading an execution's SSE stream: framing in the wasm core, payloads by JSON.parse, and the
// wasm transcript deciding, by seq, which events are new (each is applied and delivered once, in
// order). A dropped connection, or one that skipped events, is resumed from the transcript's last
// seq with Last-Event-ID (bounded retries, backoff with full jitter). No connection outlives the call.
import { ConfabError, AbortError, TimeoutError } from './errors.js';
import {
  abortErrorFrom, backoffMs, errorFromResponse, fetchOnce, isRetryable, sleep, translateFetchError,
} from './http.js';

// A connection that broke, went silent or skipped events (as opposed to a bad event or a
// callback's error): `error` is the fetch error, `reason` our own account of what went wrong.
class Dropped {
  constructor(error, reason) {
    this.error = error;
    this.reason = reason;
  }
}

function isEventStream(res) {
  return (res.headers.get('content-type') || '').toLowerCase().includes('text/event-stream');
}

/** Opens GET /v1/executions/{id}/events after `lastSeq`. */
async function openEvents(client, executionId, lastSeq, signal) {
  const url = client.url(`/v1/executions/${encodeURIComponent(executionId)}/events`);
  const headers = client.headers(false, 'text/event-stream');
  if (lastSeq > 0) headers['Last-Event-ID'] = String(lastSeq);
  const { res, attempt } = await fetchOnce(client, { method: 'GET', url, headers, signal, timeoutMs: client.timeoutMs });
  if (!res.ok || !isEventStream(res)) {
    try {
      if (!res.ok) throw await errorFromResponse(res);
      await res.body?.cancel();
      throw new ConfabError(`GET ${url}: expected text/event-stream, got ${res.headers.get('content-type')}`,
        { code: 'invalid_response' });
    } finally {
      attempt.done();
    }
  }
  return { res, attempt };
}

/**
 * Reads the stream of `executionId` into `transcript` (a wasm Transcript the caller owns), starting
 * with `first` ({res, attempt}: the response of the request that started the run, or null to start
 * from the events endpoint). Calls onEvent(type, data, seq) for each newly applied event before the
 * terminal "completed", whose payload it returns; the transcript then holds the assembled reply,
 * its status and error. `client.retries` bounds consecutive failed reconnections; a connection that
 * delivered new events resets the count.
 */
export async function consumeStream(client, core, { first, executionId, transcript, signal, onEvent }) {
  const parser = core.sseParser(client.maxEventBytes);
  let failures = 0;
  let pending = first;
  let lastError = null;
  try {
    for (;;) {
      if (!pending) {
        if (failures > client.retries) {
          throw new ConfabError(
            `the stream of execution ${executionId} dropped and could not be resumed after ${client.retries} retries` +
              (lastError ? ': ' + lastError.message : ''),
            { code: lastError instanceof TimeoutError ? 'timeout' : 'stream_interrupted', cause: lastError });
        }
        if (failures > 0) await sleep(parser.retryMs() ?? backoffMs(failures - 1), signal);
        try {
          pending = await openEvents(client, executionId, transcript.lastSeq(), signal);
        } catch (e) {
          if (e instanceof AbortError || !isRetryable(e, true)) throw e;
          lastError = e;
          failures++;
          continue;
        }
      }
      const { res, attempt } = pending;
      pending = null;
      let progressed = false;
      const reader = res.body.getReader();
      try {
        attempt.arm(client.timeoutMs);  // from now on: the longest silence allowed (heartbeats count)
        for (;;) {
          let chunk;
          try {
            chunk = await reader.read();
          } catch (e) {
            throw new Dropped(e);
          }
          if (chunk.done) throw new Dropped(null);
          attempt.arm(client.timeoutMs);
          for (const ev of parser.feed(chunk.value)) {
            const seq = /^[0-9]{1,16}$/.test(ev.id) ? Number(ev.id) : NaN;
            if (!Number.isSafeInteger(seq) || seq < 1) {
              throw new ConfabError(`an event (${ev.type}) of execution ${executionId} has no sequence number ` +
                `(id: "${ev.id}"), so it cannot be delivered exactly once`, { code: 'invalid_response' });
            }
            let data;
            try {
              data = JSON.parse(ev.data);
            } catch (e) {
              throw new ConfabError(`event ${ev.id} (${ev.type}) of execution ${executionId} is not JSON`,
                { code: 'invalid_response', cause: e });
            }
            if (!data || typeof data !== 'object' || Array.isArray(data)) {
              throw new ConfabError(`event ${ev.id} (${ev.type}) of execution ${executionId}: the payload is not a JSON object`,
                { code: 'invalid_response' });
            }
            let applied;
            try {
              applied = transcript.apply(seq, ev.type, data);
            } catch (e) {
              throw new ConfabError(`execution ${executionId}: ${e.message}`, { code: e.code, cause: e });
            }
            if (applied === 'duplicate') continue;  // delivered before a reconnection
            if (applied === 'gap') {
              throw new Dropped(null, new ConfabError(`the stream of execution ${executionId} skipped from event ` +
                `${transcript.lastSeq()} to ${seq}`, { code: 'stream_gap' }));
            }
            progressed = true;
            if (transcript.done()) return data;
            onEvent(ev.type, data, seq);
          }
        }
      } catch (e) {
        if (signal && signal.aborted) throw abortErrorFrom(signal);
        if (!(e instanceof Dropped)) throw e;
        lastError = e.reason ? e.reason
          : attempt.timedOut() ? new TimeoutError(`the stream of execution ${executionId} was silent for ${client.timeoutMs} ms`)
          : e.error ? translateFetchError(e.error, attempt, signal, 'stream', client.timeoutMs)
          : new ConfabError('the server closed the stream before the run completed', { code: 'stream_interrupted' });
        failures = progressed ? 1 : failures + 1;
      } finally {
        attempt.done();
        parser.finish();
        // Releases the connection on every path: done, dropped, aborted, or a callback threw.
        reader.cancel().catch(() => {});
      }
    }
  } finally {
    if (pending) {
      pending.attempt.done();
      pending.res.body?.cancel().catch(() => {});
    }
    parser.delete();
  }
}

export { openEvents, isEventStream };
