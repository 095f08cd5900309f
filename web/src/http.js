// HTTP plumbing: one fetch with a time-out and the caller's AbortSignal, retries with
// exponential backoff and full jitter, and the server's error bodies turned into typed errors.
import { ApiError, IdentityError, AbortError, TimeoutError, ConfabError } from './errors.js';

const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 8000;
const RETRY_AFTER_CAP_MS = 60000;

/** Full jitter: a uniform delay in [0, min(cap, base * 2^attempt)). */
export function backoffMs(attempt) {
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

/** Retry-After as ms (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value) {
  if (value == null || value === '') return undefined;
  let ms;
  if (/^\s*\d+\s*$/.test(value)) ms = Number(value) * 1000;
  else {
    const t = Date.parse(value);
    if (Number.isNaN(t)) return undefined;
    ms = Math.max(0, t - Date.now());
  }
  return Math.min(ms, RETRY_AFTER_CAP_MS);
}

export function abortErrorFrom(signal) {
  const reason = signal && signal.reason;
  if (reason instanceof AbortError) return reason;
  return new AbortError('the operation was aborted', { cause: reason });
}

/** Resolves after `ms`, or rejects with AbortError when `signal` fires first. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortErrorFrom(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortErrorFrom(signal));
    };
    const timer = setTimeout(() => {
      if (signal) signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
  });
}

// Distinguishes why a per-attempt controller aborted.
const TIMED_OUT = Symbol('timed out');

/**
 * A controller for one attempt, aborted by the caller's signal or by `arm(ms)`'s timer.
 * `done()` must be called on every exit path so nothing keeps a listener or a timer.
 */
export function attemptController(signal) {
  const controller = new AbortController();
  let timer = null;
  const onAbort = () => controller.abort(signal.reason);
  if (signal) {
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: controller.signal,
    arm(ms) {
      if (timer) clearTimeout(timer);
      timer = ms > 0 && Number.isFinite(ms) ? setTimeout(() => controller.abort(TIMED_OUT), ms) : null;
    },
    timedOut: () => controller.signal.aborted && controller.signal.reason === TIMED_OUT,
    abort: (reason) => controller.abort(reason),
    done() {
      if (timer) clearTimeout(timer);
      timer = null;
      if (signal) signal.removeEventListener('abort', onAbort);
    },
  };
}

/** Builds the typed error for a non-2xx response, reading its JSON body if there is one. */
export async function errorFromResponse(res) {
  let body;
  let text = '';
  try {
    text = await res.text();
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const code = body && typeof body.code === 'string' ? body.code : 'http_' + res.status;
  const detail = body && typeof body.error === 'string' ? body.error : (text.slice(0, 200) || res.statusText || 'no details');
  const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
  const options = { status: res.status, code, body, retryAfterMs };
  // The server's own words, as the AirOps SDK reports them; status and code are on the error.
  const message = detail;
  return res.status === 401 ? new IdentityError(message, options) : new ApiError(message, options);
}

/** True for failures worth another attempt: 429 always, 5xx and network/time-outs when safe. */
export function isRetryable(err, idempotent) {
  if (err instanceof ApiError) {
    if (err.status === 429) return true;
    return idempotent && (err.status >= 500 || err.status === 408);
  }
  if (err instanceof TimeoutError) return idempotent;
  return idempotent && err instanceof ConfabError && err.code === 'network_error';
}

/**
 * One fetch attempt with the time-out armed until the response headers arrive. Returns the
 * Response (the caller reads or cancels its body) and the attempt controller (caller calls done()).
 */
export async function fetchOnce(client, { method, url, headers, body, signal, timeoutMs }) {
  const attempt = attemptController(signal);
  attempt.arm(timeoutMs);
  try {
    const res = await client.fetch(url, { method, headers, body, signal: attempt.signal });
    return { res, attempt };
  } catch (e) {
    attempt.done();
    throw translateFetchError(e, attempt, signal, `${method} ${url}`, timeoutMs);
  }
}

export function translateFetchError(e, attempt, signal, what, timeoutMs) {
  if (e instanceof ConfabError) return e;
  if (signal && signal.aborted) return abortErrorFrom(signal);
  if (attempt && attempt.timedOut()) return new TimeoutError(`${what}: no answer within ${timeoutMs} ms`, { cause: e });
  return new ConfabError(`${what}: network error: ${e && e.message || e}`, { code: 'network_error', cause: e });
}

/**
 * Runs `once(attemptNumber)` until it succeeds, retrying what isRetryable allows up to
 * `retries` more times. 429 waits Retry-After when given, others wait a full-jitter backoff.
 */
export async function withRetries(retries, idempotent, signal, once, onRetry) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(attempt);
    } catch (e) {
      if (attempt >= retries || !isRetryable(e, idempotent) || (signal && signal.aborted)) throw e;
      const wait = e instanceof ApiError && e.retryAfterMs !== undefined ? e.retryAfterMs : backoffMs(attempt);
      // The caller may show the wait (a 429's Retry-After) and abort it through its signal.
      if (onRetry) onRetry({ attempt: attempt + 1, delayMs: wait, error: e });
      await sleep(wait, signal);
    }
  }
}

/** A JSON request with retries; resolves to the parsed body (undefined for 204). */
export async function requestJson(client, { method, path, query, body, signal, idempotent = method !== 'POST' }) {
  const url = client.url(path, query);
  const headers = client.headers(body !== undefined);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return withRetries(client.retries, idempotent, signal, async () => {
    const { res, attempt } = await fetchOnce(client, { method, url, headers, body: payload, signal, timeoutMs: client.timeoutMs });
    try {
      if (!res.ok) throw await errorFromResponse(res);
      if (res.status === 204) return undefined;
      const text = await res.text();
      if (!text) return undefined;
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new ConfabError(`${method} ${path}: the server sent invalid JSON`, { code: 'invalid_response', cause: e });
      }
    } catch (e) {
      // Reading the body failed mid-way (time-out, abort, network): make it typed.
      throw translateFetchError(e, attempt, signal, `${method} ${path}`, client.timeoutMs);
    } finally {
      attempt.done();
    }
  });
}
