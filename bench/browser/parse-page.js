// Benchmark 5's page: the same SSE byte stream (a chat reply as confab-server frames it, in 1-4 KB
// chunks) parsed and decoded by the SDK's path and by eventsource-parser + JSON.parse.
//
// SDK path (web/src/stream.js consumeStream): the wasm core's SSE parser (web/src/core.js
// SseParser.feed, bytes in, {type, data, id} out), the seq check on the id, JSON.parse of data and
// the object check; "+ transcript" adds what the SDK does next per event (Transcript.apply, the
// exactly-once assembly in wasm). Baseline: TextDecoder (streaming) + eventsource-parser's feed,
// the same id check and JSON.parse; "+ transcript" adds what a hand-written client would do, text += token.
import { loadCore } from '../../web/src/core.js';
import { createParser } from 'eventsource-parser';
import { chatStreamText, chunkBytes } from './corpus.js';

const now = () => performance.now();
let core = null;
let stream = null;

function seqOf(id) {
  const seq = /^[0-9]{1,16}$/.test(id) ? Number(id) : NaN;
  if (!Number.isSafeInteger(seq) || seq < 1) throw new Error(`no seq: ${id}`);
  return seq;
}

function decode(ev) {
  const data = JSON.parse(ev.data);
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new Error('not an object');
  return data;
}

function runConfab(withTranscript) {
  const parser = core.sseParser();
  const transcript = withTranscript ? core.transcript() : null;
  let events = 0;
  let chars = 0;
  const t0 = now();
  for (const chunk of stream.chunks) {
    for (const ev of parser.feed(chunk)) {
      const seq = seqOf(ev.id);
      const data = decode(ev);
      if (transcript) {
        if (transcript.apply(seq, ev.type, data) !== 'applied') throw new Error('not applied');
      } else if (data.token) chars += data.token.length;
      events++;
    }
  }
  parser.finish();
  const ms = now() - t0;
  if (transcript) chars = transcript.text().length;
  parser.delete();
  if (transcript) transcript.delete();
  return { ms, events, chars };
}

// Diagnostic: the wasm parser's own work (copy in + framing into the SDK's output format), with
// no event read back into JS.
function runFraming() {
  const { m } = core;
  const p = m._confab_sse_new(0);
  let events = 0;
  const t0 = now();
  for (const chunk of stream.chunks) {
    const input = m._confab_sse_input(p, chunk.length);
    m.HEAPU8.set(chunk, input);
    events += m._confab_sse_feed_text(p, chunk.length);
  }
  const ms = now() - t0;
  m._confab_sse_delete(p);
  return { ms, events, chars: stream.tokenChars };
}

function runBaseline(withTranscript) {
  let events = 0;
  let chars = 0;
  let text = '';
  const decoder = new TextDecoder();
  const parser = createParser({
    onEvent(ev) {
      seqOf(ev.id);
      const data = decode(ev);
      if (withTranscript) { if (ev.event === 'agent-response') text += data.token; }
      else if (data.token) chars += data.token.length;
      events++;
    },
  });
  const t0 = now();
  for (const chunk of stream.chunks) parser.feed(decoder.decode(chunk, { stream: true }));
  parser.feed(decoder.decode());
  const ms = now() - t0;
  if (withTranscript) chars = text.length;
  return { ms, events, chars };
}

window.bench = {
  async setup(n) {
    core = await loadCore();
    const s = chatStreamText(n);
    const bytes = new TextEncoder().encode(s.body);
    stream = { bytes: bytes.length, events: s.events, tokenChars: s.tokenChars, chunks: chunkBytes(bytes) };
    return { bytes: bytes.length, events: s.events, chunks: stream.chunks.length, tokenChars: s.tokenChars, crossOriginIsolated };
  },
  /** One pass of `engine` ('confab' | 'baseline') over the whole stream. */
  run(engine, withTranscript) {
    const r = engine === 'confab' ? runConfab(withTranscript) : engine === 'framing' ? runFraming() : runBaseline(withTranscript);
    if (r.events !== stream.events) throw new Error(`${engine}: ${r.events} events, expected ${stream.events}`);
    if (r.chars !== stream.tokenChars) throw new Error(`${engine}: ${r.chars} token chars, expected ${stream.tokenChars}`);
    return r;
  },
};
