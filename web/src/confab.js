// The public API: Confab.identify / new Confab, apps.* and sessions.* (AirOps-compatible shape).
// apps.execute / apps.getResults live in execute.js (the package entries add them; the chat widget
// does not use them and does not ship them).
import { ConfabError, ApiError, IdentityError, AbortError, TimeoutError, invalidArgument } from './errors.js';
import { loadCore } from './core.js';
import { abortErrorFrom, errorFromResponse, fetchOnce, requestJson, withRetries } from './http.js';
import { consumeStream, isEventStream } from './stream.js';

const DEFAULT_RETRIES = 3;
const DEFAULT_TIMEOUT_MS = 30000;

// ---- argument checks: each message names the argument and says what was wrong ----

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
export const describe = (v) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `"${v}"` : typeof v);

export function requireObject(value, name) {
  if (!isObject(value)) throw invalidArgument(`${name}: expected an object, got ${describe(value)}`);
  return value;
}

export function requireString(value, name) {
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalidArgument(`${name}: expected a non-empty string, got ${value === '' ? 'an empty string' : describe(value)}`);
  }
  // A header value or a path segment with control characters would be rejected or misread.
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalidArgument(`${name}: must not contain control characters`);
  return value;
}

// An id (appId, workspaceId) given as a number, as AirOps' own docs and samples write them
// (`appId: 1234`), is its decimal string; anything else must be a non-empty string.
export function requireId(value, name) {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  return requireString(value, name);
}

export function optionalId(value, name) {
  return value === undefined || value === null ? undefined : requireId(value, name);
}

// A result that is awaited as a property (`await chat.result`, the documented form) or called
// (`await chat.result()`, what the AirOps SDK does): a function that is also thenable. `get`
// starts the work on first use only.
export function awaitableResult(get) {
  const result = () => get();
  result.then = (onFulfilled, onRejected) => get().then(onFulfilled, onRejected);
  result.catch = (onRejected) => get().catch(onRejected);
  result.finally = (onFinally) => get().finally(onFinally);
  return result;
}

/** The `action` of each chat stream event, as the AirOps SDK exports it. */
export const ChatAction = Object.freeze({
  AgentResponse: 'agent-response',
  AgentAction: 'agent-action',
  AgentActionError: 'agent-action-error',
  Completed: 'completed',
});

export function optionalString(value, name) {
  return value === undefined || value === null ? undefined : requireString(value, name);
}

export function optionalFunction(value, name) {
  if (value !== undefined && value !== null && typeof value !== 'function') {
    throw invalidArgument(`${name}: expected a function, got ${describe(value)}`);
  }
  return value || undefined;
}

function optionalBoolean(value, name) {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw invalidArgument(`${name}: expected true or false, got ${describe(value)}`);
  return value;
}

export function optionalSignal(value, name = 'signal') {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || typeof value.aborted !== 'boolean' || typeof value.addEventListener !== 'function') {
    throw invalidArgument(`${name}: expected an AbortSignal, got ${describe(value)}`);
  }
  return value;
}

function normaliseHost(host) {
  if (host === undefined || host === null) {
    const origin = globalThis.location && globalThis.location.origin;
    if (typeof origin === 'string' && /^https?:/.test(origin)) return origin;
    throw invalidArgument('host: required outside a browser page, e.g. "https://confab.example.com"');
  }
  requireString(host, 'host');
  let url;
  try {
    url = new URL(host);
  } catch {
    throw invalidArgument(`host: not a URL: "${host}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalidArgument(`host: must be an http or https URL, got "${host}"`);
  }
  return url.href.replace(/\/+$/, '');
}

function normaliseHeaders(headers) {
  if (headers === undefined || headers === null) return {};
  const out = {};
  let entries;
  if (typeof Headers !== 'undefined' && headers instanceof Headers) entries = [...headers.entries()];
  else if (isObject(headers)) entries = Object.entries(headers);
  else throw invalidArgument(`headers: expected an object of strings, got ${describe(headers)}`);
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw invalidArgument(`headers["${k}"]: expected a string, got ${describe(v)}`);
    out[k] = v;
  }
  return out;
}

function checkOptions(options) {
  requireObject(options, 'options');
  const { fetch: f, retries = DEFAULT_RETRIES, timeoutMs = DEFAULT_TIMEOUT_MS, maxEventBytes = 0 } = options;
  if (f !== undefined && typeof f !== 'function') throw invalidArgument(`fetch: expected a function, got ${describe(f)}`);
  if (!Number.isInteger(retries) || retries < 0 || retries > 20) {
    throw invalidArgument(`retries: expected an integer from 0 to 20, got ${describe(retries) === 'number' ? retries : describe(retries)}`);
  }
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) {
    throw invalidArgument(`timeoutMs: expected a positive number of milliseconds (Infinity for none), got ${typeof timeoutMs === 'number' ? timeoutMs : describe(timeoutMs)}`);
  }
  // 0: the core's default (16 MiB). The wasm parser takes up to 1 GiB.
  if (!Number.isInteger(maxEventBytes) || maxEventBytes < 0 || maxEventBytes > 2 ** 30) {
    throw invalidArgument(`maxEventBytes: expected an integer number of bytes from 1 to ${2 ** 30} (0 for the default, 16 MiB), got ${typeof maxEventBytes === 'number' ? maxEventBytes : describe(maxEventBytes)}`);
  }
  const fetchImpl = f || globalThis.fetch;
  if (typeof fetchImpl !== 'function') throw invalidArgument('fetch: this environment has no global fetch; pass options.fetch');
  return {
    host: normaliseHost(options.host),
    fetch: f ? f : (...args) => globalThis.fetch(...args),  // late-bound: tests and polyfills may replace it
    headers: normaliseHeaders(options.headers),
    retries,
    timeoutMs,
    maxEventBytes,
  };
}

// ---- transport settings shared by the methods ----

class Client {
  constructor(opts, identity) {
    this.host = opts.host;
    this.fetch = opts.fetch;
    this.extraHeaders = opts.headers;
    this.retries = opts.retries;
    this.timeoutMs = opts.timeoutMs;
    this.maxEventBytes = opts.maxEventBytes;
    this.identity = identity;  // {workspaceId, userId?, hashedUserId?}
  }

  url(path, query) {
    let u = this.host + path;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
      const s = q.toString();
      if (s) u += '?' + s;
    }
    return u;
  }

  headers(json, accept = 'application/json') {
    const h = { ...this.extraHeaders, Accept: accept };
    if (json) h['Content-Type'] = 'application/json';
    const id = this.identity;
    if (!id.workspaceId) {
      throw invalidArgument('workspaceId: required: use Confab.identify({ userId, workspaceId, hashedUserId, host }) ' +
        'or, for public apps, new Confab({ host, workspaceId })');
    }
    h['X-Confab-Workspace'] = id.workspaceId;
    if (id.userId) {
      h['X-Confab-User'] = id.userId;
      h['X-Confab-User-Hash'] = id.hashedUserId;
    }
    return h;
  }
}

export const path = {
  app: (appId) => `/v1/apps/${encodeURIComponent(appId)}`,
  execution: (id) => `/v1/executions/${encodeURIComponent(id)}`,
  session: (id) => `/v1/sessions/${encodeURIComponent(id)}`,
};

// Starts a streamed run in one request (POST with Accept: text/event-stream) while the wasm core
// loads. Resolves to {res, attempt, core, executionId, sessionId}; on failure nothing stays open.
export async function startStream(client, { path: p, body, signal, headers: extra, onRetry }) {
  const url = client.url(p);
  const headers = { ...client.headers(true, 'text/event-stream'), ...extra };
  const payload = JSON.stringify(body);
  const corePromise = loadCore();
  const started = withRetries(client.retries, false, signal, async () => {
    const r = await fetchOnce(client, { method: 'POST', url, headers, body: payload, signal, timeoutMs: client.timeoutMs });
    if (!r.res.ok) {
      try {
        throw await errorFromResponse(r.res);
      } finally {
        r.attempt.done();
      }
    }
    return r;
  }, onRetry);
  const [s, c] = await Promise.allSettled([started, corePromise]);
  if (s.status === 'rejected' || c.status === 'rejected') {
    if (s.status === 'fulfilled') {
      s.value.attempt.done();
      s.value.res.body?.cancel().catch(() => {});
    }
    throw s.status === 'rejected' ? s.reason : c.reason;
  }
  const { res, attempt } = s.value;
  let executionId = res.headers.get('x-confab-execution-id');
  let sessionId = res.headers.get('x-confab-session-id');
  let first = { res, attempt };
  if (!isEventStream(res)) {
    // A server (or proxy) that answered with JSON instead: follow the run's event stream.
    try {
      const created = await res.json();
      executionId = executionId || (created && created.executionId);
    } finally {
      attempt.done();
    }
    first = null;
  }
  if (!executionId) {
    first?.attempt.done();
    first?.res.body?.cancel().catch(() => {});
    throw new ConfabError('the server did not say which execution started (no X-Confab-Execution-Id header; ' +
      'behind a proxy on another origin it must be exposed by CORS)', { code: 'invalid_response' });
  }
  return { first, core: c.value, executionId, sessionId };
}

export async function cancelExecution(client, executionId) {
  try {
    return await requestJson(client, { method: 'POST', path: path.execution(executionId) + '/cancel', idempotent: true });
  } catch (e) {
    // Already finished (or cancelled): the run is not running, which is what cancel() asks for.
    if (e instanceof ApiError && e.status === 409) return undefined;
    throw e;
  }
}

// A promise the caller may ignore without an "unhandled rejection".
export function quiet(promise) {
  promise.catch(() => {});
  return promise;
}

// A failed run's message and code, as the transcript assembled them (the completed event's own,
// else the "error" event's).
export function addError(out, transcript) {
  const error = transcript.error();
  if (error !== undefined) out.error = error;
  const code = transcript.errorCode();
  if (code !== undefined) out.errorCode = code;
}

// Streams a run into a new wasm transcript (prepared by `setup`), then `finish(completed,
// transcript)` builds the result. The transcript is freed on every path.
export async function streamRun(client, core, { first, executionId, signal, setup, onEvent, finish }) {
  const transcript = core.transcript();
  try {
    if (setup) setup(transcript);
    const completed = await consumeStream(client, core, { first, executionId, transcript, signal, onEvent });
    return finish(completed, transcript);
  } finally {
    transcript.delete();
  }
}

export function callSafely(fn, arg) {
  if (fn) fn(arg);
}

export class Apps {
  constructor(client) {
    this._client = client;
  }

  /** GET /v1/apps/{appId}: name, type, inputs, public flag. */
  async get(appId, options = {}) {
    if (isObject(appId)) ({ appId, ...options } = appId);
    appId = requireId(appId, 'appId');
    return requestJson(this._client, { method: 'GET', path: path.app(appId), signal: optionalSignal(options.signal) });
  }

  /**
   * One chat turn, streamed. Resolves once the turn has started with
   * {sessionId, executionId, result: Promise<{result, sessionId, status, executionId}>, cancel()}.
   * streamCallback({action, token, tool, tool_input}) per event; streamCompletedCallback({result}).
   */
  async chatStream(args) {
    requireObject(args, 'chatStream(args)');
    const appId = requireId(args.appId, 'appId');
    const regenerate = optionalBoolean(args.regenerate, 'regenerate');
    const editLast = optionalBoolean(args.editLast, 'editLast');
    if (regenerate && editLast) throw invalidArgument('regenerate/editLast: pass one of them, not both');
    if (!regenerate && (typeof args.message !== 'string' || args.message === '')) {
      throw invalidArgument(`message: expected a non-empty string, got ${args.message === '' ? 'an empty string' : describe(args.message)}`);
    }
    const sessionId = optionalString(args.sessionId, 'sessionId');
    if ((regenerate || editLast) && !sessionId) {
      throw invalidArgument(`sessionId: required with ${regenerate ? 'regenerate' : 'editLast'} (the session whose last turn is replaced)`);
    }
    const idempotencyKey = optionalString(args.idempotencyKey, 'idempotencyKey');
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,200}$/.test(idempotencyKey)) {
      throw invalidArgument('idempotencyKey: expected 1-200 printable ASCII characters without spaces');
    }
    const inputs = args.inputs === undefined || args.inputs === null ? undefined : requireObject(args.inputs, 'inputs');
    const streamCallback = optionalFunction(args.streamCallback, 'streamCallback');
    const streamCompletedCallback = optionalFunction(args.streamCompletedCallback, 'streamCompletedCallback');
    const onRetry = optionalFunction(args.onRetry, 'onRetry');
    const signal = optionalSignal(args.signal);
    if (signal && signal.aborted) throw abortErrorFrom(signal);
    const client = this._client;
    const body = regenerate ? { regenerate: true } : { message: args.message };
    if (editLast) body.editLast = true;
    if (sessionId) body.sessionId = sessionId;
    if (inputs) body.inputs = inputs;
    const headers = idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : undefined;

    const started = await startStream(client, { path: path.app(appId) + '/chat', body, signal, headers, onRetry });
    const { first, core, executionId } = started;
    let lastTool;
    const result = quiet(streamRun(client, core, {
      first, executionId, signal,
      setup(transcript) {
        const known = started.sessionId || sessionId;
        if (known) transcript.setSessionId(known);
        transcript.beginTurn(regenerate ? '' : args.message);
      },
      // seq (the event's SSE id) lets a caller persist how far it got and resume after a reload.
      onEvent(type, data, seq) {
        if (type === 'agent-response') {
          callSafely(streamCallback, { action: type, token: data.token, seq });
        } else if (type === 'agent-action') {
          lastTool = data.tool;
          callSafely(streamCallback, { action: type, tool: data.tool, tool_input: data.tool_input, seq });
        } else if (type === 'agent-action-error') {
          // The AirOps shape {tool, tool_error}: the failing tool is the last action's unless named.
          const { error, ...rest } = data;
          callSafely(streamCallback, {
            action: type, ...rest, tool: data.tool ?? lastTool, tool_error: data.tool_error ?? error, seq,
          });
        }
      },
      finish(completed, transcript) {
        const text = transcript.result();
        callSafely(streamCompletedCallback, { action: 'completed', result: text });
        const out = { result: text, sessionId: transcript.sessionId(), status: transcript.status(), executionId };
        addError(out, transcript);
        return out;
      },
    }));
    return {
      sessionId: started.sessionId || sessionId,
      executionId,
      result: awaitableResult(() => result),
      cancel: () => cancelExecution(client, executionId),
    };
  }
}

class Sessions {
  constructor(client) {
    this._client = client;
  }

  /** The user's chat sessions, newest first; `appId` filters. */
  async list(args = {}) {
    requireObject(args, 'list(args)');
    const appId = optionalId(args.appId, 'appId');
    if (args.limit !== undefined && (!Number.isInteger(args.limit) || args.limit < 1 || args.limit > 1000)) {
      throw invalidArgument(`limit: expected an integer from 1 to 1000, got ${typeof args.limit === 'number' ? args.limit : describe(args.limit)}`);
    }
    const r = await requestJson(this._client, {
      method: 'GET', path: '/v1/sessions', query: { appId, limit: args.limit }, signal: optionalSignal(args.signal),
    });
    return (r && r.sessions) || [];
  }

  /** One session with its transcript (`messages`). */
  async get(sessionId, options = {}) {
    if (isObject(sessionId)) ({ sessionId, ...options } = sessionId);
    requireString(sessionId, 'sessionId');
    return requestJson(this._client, { method: 'GET', path: path.session(sessionId), signal: optionalSignal(options.signal) });
  }

  /** Deletes a session and its messages. */
  async delete(sessionId, options = {}) {
    if (isObject(sessionId)) ({ sessionId, ...options } = sessionId);
    requireString(sessionId, 'sessionId');
    await requestJson(this._client, { method: 'DELETE', path: path.session(sessionId), signal: optionalSignal(options.signal) });
  }
}

const RATINGS = new Set(['up', 'down']);

class Feedback {
  constructor(client) {
    this._client = client;
  }

  /**
   * Rates one reply (an execution) for the current user: {executionId, rating: 'up'|'down', comment?}.
   * One per user and execution; sending again replaces it. Resolves to {executionId, rating, comment, updatedAt}.
   */
  async send(args) {
    requireObject(args, 'feedback.send(args)');
    const executionId = requireString(args.executionId, 'executionId');
    if (!RATINGS.has(args.rating)) throw invalidArgument(`rating: expected "up" or "down", got ${describe(args.rating)}`);
    const body = { rating: args.rating };
    if (args.comment !== undefined && args.comment !== null && args.comment !== '') {
      if (typeof args.comment !== 'string') throw invalidArgument(`comment: expected a string, got ${describe(args.comment)}`);
      if (args.comment.length > 2000) throw invalidArgument(`comment: at most 2000 characters, got ${args.comment.length}`);
      body.comment = args.comment;
    }
    return requestJson(this._client, {
      method: 'POST', path: path.execution(executionId) + '/feedback', body, signal: optionalSignal(args.signal), idempotent: true,
    });
  }

  /** Removes the current user's rating of an execution. */
  async delete(args) {
    if (typeof args === 'string') args = { executionId: args };
    requireObject(args, 'feedback.delete(args)');
    const executionId = requireString(args.executionId, 'executionId');
    await requestJson(this._client, { method: 'DELETE', path: path.execution(executionId) + '/feedback', signal: optionalSignal(args.signal) });
  }
}

export default class Confab {
  /**
   * A client without a user: for public apps. `workspaceId` says whose apps they are.
   * Options: {host, workspaceId, fetch, headers, retries, timeoutMs, maxEventBytes}.
   */
  constructor(options = {}) {
    const opts = checkOptions(options);
    const identity = options._identity || { workspaceId: optionalId(options.workspaceId, 'workspaceId') };
    const client = new Client(opts, identity);
    Object.defineProperty(this, '_client', { value: client });
    this.apps = new Apps(client);
    this.sessions = new Sessions(client);
    this.feedback = new Feedback(client);
  }

  /** A client acting for one user, vouched for by the site's backend (hashedUserId). */
  static identify(args) {
    requireObject(args, 'identify(args)');
    const userId = requireString(args.userId, 'userId');
    const workspaceId = requireId(args.workspaceId, 'workspaceId');
    const hashedUserId = requireString(args.hashedUserId, 'hashedUserId');
    return new Confab({ ...args, _identity: { workspaceId, userId, hashedUserId } });
  }

  /** Lowercase hex HMAC-SHA256(key = secret, message = userId), as the server expects. */
  static async userHash(secret, userId) {
    requireString(secret, 'secret');
    requireString(userId, 'userId');
    return (await loadCore()).userHash(secret, userId);
  }

  get workspaceId() {
    return this._client.identity.workspaceId;
  }

  get userId() {
    return this._client.identity.userId;
  }
}

Confab.ConfabError = ConfabError;
Confab.ApiError = ApiError;
Confab.IdentityError = IdentityError;
Confab.AbortError = AbortError;
Confab.TimeoutError = TimeoutError;
Confab.ChatAction = ChatAction;
// Not part of the documented API: lets the SDK's own tests watch the wasm heap and reach the core.
Object.defineProperty(Confab, '_wasmHeapUsed', { value: async () => (await loadCore()).heapUsed() });
Object.defineProperty(Confab, '_wasmCore', { value: loadCore });

