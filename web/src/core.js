// The wasm core, loaded lazily and once, behind a small hand-written facade over its C exports
// (wasm/sdk_bindings.cpp): SSE framing, the transcript (every event applied exactly once, in seq
// order) and user hashes. Payloads are decoded in JS (JSON.parse) and handed over as strings.
import createConfabSdkCore from 'confab:wasm-glue';
import { WASM_EMBEDDED, WASM_USER_HASH, WASM_URL, WASM_TEXT, WASM_SHIFT, WASM_LENGTH } from 'confab:wasm-bytes';
import { ConfabError } from './errors.js';

const encoder = new TextEncoder();
// Invalid UTF-8 becomes U+FFFD, as a browser's EventSource would do. ignoreBOM: a U+FEFF that
// starts a string is part of it (the SSE parser already skipped the stream's BOM), and the SSE
// facade slices one decoded batch by offsets that count it.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

// The build embeds the wasm as an ASCII string (each byte shifted so that most land on printable
// characters): one file for every environment, nothing to fetch, no asset for bundlers to copy,
// and only ~0.6 KB gzip more than a separate .wasm (base64 costs ~2.5 KB more).
function wasmBytes() {
  if (WASM_TEXT.length !== WASM_LENGTH) {
    throw new ConfabError(
      'the embedded wasm core is damaged (was the script served or saved in an encoding other than UTF-8/ASCII?)',
      { code: 'wasm_load_failed' });
  }
  const out = new Uint8Array(WASM_LENGTH);
  for (let i = 0; i < WASM_LENGTH; i++) out[i] = (WASM_TEXT.charCodeAt(i) - WASM_SHIFT) & 255;
  return out;
}

// The widget's panel instead fetches its wasm from WASM_URL (a separate file next to the panel
// script: gzipped as binary it is smaller than as a string). The download starts when the script
// runs (a preloaded panel has its wasm too); a failed one is fetched again on the next loadCore().
let wasmResponse = WASM_EMBEDDED ? null : fetch(WASM_URL);
if (wasmResponse) wasmResponse.catch(() => {});  // reported by loadCore(), not as unhandled

// Compiles while downloading when served as application/wasm; any other type (a server that does
// not know .wasm, or adds a charset) is compiled from the bytes.
function fetchedModule(imports) {
  const response = wasmResponse || fetch(WASM_URL);
  wasmResponse = null;
  return response.then((res) => {
    if (!res.ok) throw new ConfabError(`could not fetch the wasm core ${WASM_URL}: HTTP ${res.status}`, { code: 'wasm_load_failed' });
    // Exactly application/wasm: Chromium refuses to stream-compile even `application/wasm; charset=utf-8`.
    return /^application\/wasm$/i.test((res.headers.get('Content-Type') || '').trim()) && WebAssembly.instantiateStreaming
      ? WebAssembly.instantiateStreaming(res, imports)
      : res.arrayBuffer().then((bytes) => WebAssembly.instantiate(bytes, imports));
  });
}

function createModule() {
  if (WASM_EMBEDDED) return createConfabSdkCore({ wasmBinary: wasmBytes(), print() {}, printErr() {} });
  return new Promise((resolve, reject) => {
    // Emscripten's hook: hand it the instance when ready (it waits); a failure rejects here.
    const instantiateWasm = (imports, ready) => {
      fetchedModule(imports).then((r) => ready(r.instance, r.module), reject);
      return {};
    };
    createConfabSdkCore({ instantiateWasm, print() {}, printErr() {} }).then(resolve, reject);
  });
}

let corePromise = null;

/** Resolves to the Core; the module is compiled on the first call only. */
export function loadCore() {
  if (!corePromise) {
    corePromise = Promise.resolve()
      .then(createModule)
      .then((m) => new Core(m), (e) => {
        corePromise = null;  // a later call may try again (e.g. after a CSP change in a dev tool)
        if (e instanceof ConfabError) throw e;
        throw new ConfabError('could not start the wasm core: ' + (e && e.message || e) +
          ' (a Content-Security-Policy needs script-src \'wasm-unsafe-eval\'' +
          (!WASM_EMBEDDED ? ` and connect-src allowing ${WASM_URL}; the .wasm is fetched with CORS: from another origin ` +
            '(a panel-url on a CDN) it must be served with Access-Control-Allow-Origin)' : ')'),
        { code: 'wasm_load_failed', cause: e });
      });
  }
  return corePromise;
}

// Frees a handle whose owner was garbage-collected without delete(): the backstop, not the plan.
const registry = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry(({ m, ptr, free }) => m[free](ptr))
  : null;

// Owns one wasm handle: `ptr` until delete(), then 0.
class Handle {
  constructor(core, ptr, free) {
    if (!ptr) throw new ConfabError('out of wasm memory', { code: 'wasm_out_of_memory' });
    this.core = core;
    this.ptr = ptr;
    this.free = free;
    if (registry) registry.register(this, { m: core.m, ptr, free }, this);
  }

  /** Frees the wasm memory; safe to call twice. */
  delete() {
    if (!this.ptr) return;
    if (registry) registry.unregister(this);
    this.core.m[this.free](this.ptr);
    this.ptr = 0;
  }
}

class Core {
  constructor(m) {
    this.m = m;
  }

  read(ptr, len) {
    return decoder.decode(this.m.HEAPU8.subarray(ptr, ptr + len));
  }

  // A NUL-terminated string (the bindings' error messages).
  readCString(ptr) {
    return this.read(ptr, this.m.HEAPU8.indexOf(0, ptr) - ptr);
  }

  /** Lowercase hex HMAC-SHA256(key = secret, message = userId). */
  userHash(secret, userId) {
    if (!WASM_USER_HASH || !this.m._confab_user_hash) {
      throw new ConfabError('userHash is not in the widget\'s wasm core: sign on your backend, or use the SDK', { code: 'unsupported' });
    }
    const s = encoder.encode(secret);
    const u = encoder.encode(userId);
    const buf = new Uint8Array(s.length + u.length);
    buf.set(s, 0);
    buf.set(u, s.length);
    const ptr = this.m._confab_scratch(buf.length);  // may grow the heap: HEAPU8 read after it
    this.m.HEAPU8.set(buf, ptr);
    buf.fill(0);
    const out = this.readCString(this.m._confab_user_hash(s.length, u.length));
    if (out.startsWith('!')) throw new ConfabError(out.slice(1), { code: 'user_id_invalid' });
    return out;
  }

  /**
   * A new incremental SSE parser. Call delete() when done with it. `maxEventBytes` (optional): the
   * most one event (data + type + id) may hold; 0 or absent: the core's default, 16 MiB.
   */
  sseParser(maxEventBytes = 0) {
    return new SseParser(this, maxEventBytes);
  }

  /** A new transcript (a session's messages and the reply being streamed). Call delete() when done. */
  transcript() {
    return new Transcript(this);
  }

  /** Bytes allocated on the wasm heap right now (for leak tests). */
  heapUsed() {
    return this.m._confab_heap_used();
  }
}

class SseParser extends Handle {
  constructor(core, maxEventBytes) {
    super(core, core.m._confab_sse_new(maxEventBytes >>> 0), '_confab_sse_delete');
    this.maxEventBytes = maxEventBytes;
    this.view = core.m._confab_sse_view(this.ptr);
  }

  /**
   * Parses one chunk of the body (a Uint8Array, split anywhere). Returns the events it completed
   * ({type, data, id}) in order. Throws a ConfabError (code sse_event_too_large) when an event of
   * this chunk was over the parser's limit and dropped; `error.events` then holds the chunk's other
   * events (before and after it), and the parser goes on with the next chunk.
   */
  feed(chunk) {
    const { m } = this.core;
    const p = this.ptr;
    if (!p) throw new ConfabError('the SSE parser was deleted', { code: 'deleted' });
    // Called per chunk (often one token): no closure or DataView per call. _confab_sse_input may
    // grow the heap, so HEAPU8 is read after it.
    const input = m._confab_sse_input(p, chunk.length);
    m.HEAPU8.set(chunk, input);
    let n = m._confab_sse_feed_text(p, chunk.length);
    const failed = n < 0;
    if (failed) n = -1 - n;
    const events = new Array(n);
    if (n > 0) {
      // After feed: the heap does not move until the next call. The fields of all events come
      // back as one UTF-8 text, each field followed by a CR (which no field can contain), plus a
      // lower bound of each field's UTF-16 length: one decode per chunk, then slices (a decode per
      // field cost more than the parsing). Invalid UTF-8 never swallows the ASCII CR, so this
      // equals decoding each field alone. A length is used only where it lands on a CR: being a
      // lower bound, it then is the field's; else (invalid UTF-8) the CR is searched for.
      const u32 = m.HEAPU32;
      const v = this.view >> 2;
      const s = decoder.decode(m.HEAPU8.subarray(u32[v], u32[v] + u32[v + 1]));
      const lens = u32[v + 2] >> 2;
      const cut = (at, k) => {
        const end = at + u32[lens + k];
        return s.charCodeAt(end) === 13 ? end : s.indexOf('\r', at);
      };
      for (let i = 0, at = 0, end = 0; i < n; i++) {
        const type = s.slice(at, end = cut(at, 3 * i));
        const data = s.slice(at = end + 1, end = cut(at, 3 * i + 1));
        events[i] = { type, data, id: s.slice(at = end + 1, end = cut(at, 3 * i + 2)) };
        at = end + 1;
      }
    }
    if (failed) {
      const err = new ConfabError(`${this.core.readCString(m._confab_sse_error(p))} (raise the maxEventBytes option ` +
        'to accept larger events)', { code: 'sse_event_too_large' });
      err.events = events;
      throw err;
    }
    return events;
  }

  /** End of one connection's body: drops an incomplete event; the last event id is kept. */
  finish() {
    if (this.ptr) this.core.m._confab_sse_finish(this.ptr);
  }

  /** The stream's last `retry:` in ms, or null. */
  retryMs() {
    const r = this.ptr ? this.core.m._confab_sse_retry_ms(this.ptr) : -1;
    return r < 0 ? null : r;
  }
}

// The payload fields the transcript reads, in the order of confab_transcript_apply's buffer.
const FIELDS = ['content', 'token', 'tool', 'tool_input', 'error', 'code', 'status', 'result', 'output', 'sessionId'];
const APPLY = ['applied', 'duplicate', 'gap'];
const STATUS = ['streaming', 'success', 'error', 'cancelled'];
const ROLES = ['user', 'assistant', 'system'];
const applyStrings = new Array(FIELDS.length + 1);

class Transcript extends Handle {
  constructor(core) {
    super(core, core.m._confab_transcript_new(), '_confab_transcript_delete');
  }

  live() {
    if (!this.ptr) throw new ConfabError('the transcript was deleted', { code: 'deleted' });
    return this.ptr;
  }

  // Writes strings (undefined: absent) into the input buffer, each after its u32 length; returns
  // the bytes used. encodeInto writes straight into wasm memory: no copy per event.
  put(strings) {
    const { m } = this.core;
    const p = this.live();
    let cap = 0;
    for (const s of strings) cap += 4 + (s === undefined ? 0 : s.length * 3);
    const start = m._confab_transcript_input(p, cap);
    const heap = m.HEAPU8;  // after the call: it may have grown the heap
    let at = start;
    for (const s of strings) {
      let n = 0xffffffff;
      if (s !== undefined) n = encoder.encodeInto(s, heap.subarray(at + 4, at + 4 + s.length * 3)).written;
      heap[at] = n;
      heap[at + 1] = n >>> 8;
      heap[at + 2] = n >>> 16;
      heap[at + 3] = n >>> 24;
      at += 4 + (s === undefined ? 0 : n);
    }
    return at - start;
  }

  /**
   * Applies one event of the reply's stream: seq (its SSE id), type and the decoded payload.
   * Returns 'applied', 'duplicate' (seq already applied: skip it) or 'gap' (events are missing:
   * resume from lastSeq()). Throws a ConfabError (code invalid_response) for an event that cannot
   * be applied (seq not a positive integer, a field its type needs missing, anything after
   * "completed"); nothing changes then.
   */
  apply(seq, type, data) {
    // One array for every event (apply is synchronous): filled, written to wasm, then dropped.
    const strings = applyStrings;
    strings[0] = type;
    for (let i = 0; i < FIELDS.length; i++) {
      const k = FIELDS[i];
      const v = data == null ? undefined : data[k];
      // tool_input may be any JSON value: the transcript keeps it as JSON text.
      strings[i + 1] = k === 'tool_input' ? (v === undefined ? v : JSON.stringify(v)) : typeof v === 'string' ? v : undefined;
    }
    const len = this.put(strings);
    strings.fill(undefined);
    const { m } = this.core;
    // A seq that is not a safe positive integer (NaN included) is rejected by the bindings/core.
    const r = m._confab_transcript_apply(this.ptr, seq, len);
    if (r >= 0) return APPLY[r];
    throw new ConfabError(this.core.readCString(m._confab_transcript_error(this.ptr)), { code: 'invalid_response' });
  }

  /**
   * The current reply picks up after events 1..seq that were shown elsewhere (before a page
   * reload) and streamed `text`: the next event applied is seq + 1. Only before any event was applied.
   */
  continueAfter(seq, text) {
    const { m } = this.core;
    const p = this.live();
    const start = m._confab_transcript_input(p, text.length * 3);
    const { written } = encoder.encodeInto(text, m.HEAPU8.subarray(start, start + text.length * 3));
    if (m._confab_transcript_continue(p, seq, written) !== 0) {
      throw new ConfabError(this.core.readCString(m._confab_transcript_error(p)), { code: 'invalid_argument' });
    }
  }

  num(which, index = 0) {
    return this.core.m._confab_transcript_num(this.live(), which, index);
  }

  str(which, index = 0) {
    const { m } = this.core;
    const view = m._confab_transcript_str(this.live(), which, index);
    return view ? this.core.read(m.HEAPU32[view >> 2], m.HEAPU32[(view >> 2) + 1]) : undefined;
  }

  /** The last applied seq: what a reconnection sends as Last-Event-ID (0: none yet). */
  lastSeq() { return this.num(0); }
  /** 'streaming' until the completed event, then 'success', 'error' or 'cancelled'. */
  status() { return STATUS[this.num(1)]; }
  done() { return this.num(1) !== 0; }
  /** The streamed text so far (deltas or tokens). */
  text() { return this.str(0); }
  /** The final text: the completed event's result/output when it has one, else text(). */
  result() { return this.str(1); }
  /** The failure message and code (from the error or completed event), or undefined. */
  error() { return this.str(2); }
  errorCode() { return this.str(3); }
  sessionId() { return this.str(4) || undefined; }

  setSessionId(id) {
    this.core.m._confab_transcript_set_session_id(this.live(), this.put1(id));
  }

  /** Starts a turn: the user's message, then a fresh reply (whose seq starts at 1 again). */
  beginTurn(message) {
    this.core.m._confab_transcript_begin_turn(this.live(), this.put1(message));
  }

  /** Appends a message as is (e.g. history from sessions.get). role: user, assistant or system. */
  addMessage(role, content) {
    const r = ROLES.indexOf(role);
    if (r < 0) throw new ConfabError(`role: expected user, assistant or system, got ${role}`, { code: 'invalid_argument' });
    this.core.m._confab_transcript_add_message(this.live(), r, this.put1(content));
  }

  // One string, unframed: its bytes at the start of the input buffer.
  put1(s) {
    const { m } = this.core;
    const start = m._confab_transcript_input(this.live(), s.length * 3);
    return encoder.encodeInto(s, m.HEAPU8.subarray(start, start + s.length * 3)).written;
  }

  /** [{role, content}]: the user messages and the completed (success or stopped) replies. */
  messages() {
    const out = [];
    for (let i = 0, n = this.num(2); i < n; i++) out.push({ role: ROLES[this.num(3, i)], content: this.str(5, i) });
    return out;
  }

  /** The reply's tool calls and tool errors in order: {kind: 'call'|'error', seq, tool, tool_input, error}. */
  actions() {
    const out = [];
    for (let i = 0, n = this.num(4); i < n; i++) {
      const input = this.str(7, i);
      out.push(this.num(5, i) === 0
        ? { kind: 'call', seq: this.num(6, i), tool: this.str(6, i), tool_input: input === '' ? undefined : JSON.parse(input) }
        : { kind: 'error', seq: this.num(6, i), error: this.str(8, i) });
    }
    return out;
  }
}
