// The widget's wasm module (wasm/widget_bindings.cpp + the SDK's exports) under Node, through the
// facade the panel uses (src/widget/markdown.js): streamed == rendered at once for every chunking,
// one call per chunk hands out each finished block once, finished blocks are never re-rendered,
// and handles free their memory.
import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { repoDir } from './helpers.mjs';
import { MarkdownStream, renderMarkdown } from '../src/widget/markdown.js';

const wasmDir = resolve(process.env.CONFAB_WASM_BUILD_DIR || join(repoDir, 'build/wasm-release/wasm'));
const glue = join(wasmDir, 'confab_widget_core.js');
if (!existsSync(glue)) throw new Error(`${glue} is missing: build the wasm (make wasm) or set CONFAB_WASM_BUILD_DIR`);

let core;
before(async () => {
  const create = createRequire(import.meta.url)(glue);
  const m = await create({ wasmBinary: readFileSync(join(wasmDir, 'confab_widget_core.wasm')), print() {}, printErr() {} });
  const decoder = new TextDecoder();
  // The two members of the SDK's Core (src/core.js) that the facade uses.
  core = { m, read: (ptr, len) => decoder.decode(m.HEAPU8.subarray(ptr, ptr + len)) };
});

const REPLY = '## Plan ✓\n\nFirst **bold** and `code`, then a [link](https://example.com "t").\n\n' +
  '- one\n- two\n  1. nested\n\n```js\nconst x = "<b>";\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n' +
  '> quoted <script>alert(1)</script>\n\nLast line with ünïcödé 🐉';

function stream(text, size) {
  const r = new MarkdownStream(core);
  let stable = '';
  let tail = '';
  for (let i = 0; i < text.length; i += size) {
    const out = r.append(text.slice(i, i + size));
    stable += out.stable;
    tail = out.tail;
  }
  const end = r.finish();
  const counters = r.counters();
  r.delete();
  return { html: stable + end.stable, lastTail: tail, endTail: end.tail, counters };
}

it('streamed in chunks of every size, the HTML equals the reply rendered at once', () => {
  const whole = renderMarkdown(core, REPLY);
  assert.match(whole, /^<h2>Plan ✓<\/h2>/);
  assert.match(whole, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  for (let size = 1; size <= REPLY.length; size += size < 12 ? 1 : 7) {
    const s = stream(REPLY, size);
    assert.equal(s.html, whole, `chunks of ${size}`);
    assert.equal(s.endTail, '');
    assert.equal(s.counters.finishedBlockRerenders, 0);
  }
});

it('a 2,000-token reply: one call per token, finished blocks rendered exactly once', () => {
  let text = '';
  for (let i = 0; text.split(' ').length < 2000; i++) text += i % 12 === 11 ? `Paragraph ${i} ends.\n\n` : `word${i} `;
  const tokens = text.match(/\S+\s*/g);
  assert.ok(tokens.length >= 2000);
  const r = new MarkdownStream(core);
  let appended = 0;
  for (const t of tokens) appended += r.append(t).stable.length > 0 ? 1 : 0;
  r.finish();
  const c = r.counters();
  r.delete();
  assert.equal(c.finishedBlockRerenders, 0);
  assert.ok(c.finishedBlocks >= 100, `${c.finishedBlocks} blocks finished`);
  assert.equal(appended, c.finishedBlocks - 1, 'each finished block handed out once (the last at finish)');
  // Only the open tail is redone per token: parse work stays linear in the reply.
  assert.ok(c.bytesParsed < text.length * 40, `${c.bytesParsed} bytes parsed for ${text.length}`);
});

it('renderers free their wasm memory; delete() twice is safe', () => {
  const used = () => core.m._confab_heap_used();
  renderMarkdown(core, REPLY);
  const start = used();
  for (let i = 0; i < 50; i++) {
    const r = new MarkdownStream(core);
    r.append(REPLY);
    r.finish();
    r.delete();
    r.delete();
  }
  assert.equal(used(), start);
});

it('an emoji split between two chunks arrives whole; a lone half at the end becomes U+FFFD', () => {
  const r = new MarkdownStream(core);
  r.append('dragon \ud83d');
  const end = r.append('\udc09 here');
  assert.equal(end.tail, '<p>dragon 🐉 here</p>\n');
  r.delete();
  const lone = new MarkdownStream(core);
  lone.append('x \ud83d');
  assert.equal(lone.finish().stable, '<p>x \ufffd</p>\n');
  lone.delete();
});

it('the widget\'s allocator (wasm/widget_malloc.c): the heap grows past its start, freed blocks are reused', () => {
  const { m } = core;
  const used = () => m._confab_heap_used();
  const start = used();
  // ~8 MB of Markdown streamed in 64 KB chunks: source, stable and tail HTML need more than the
  // initial 16 MiB of memory.
  const para = 'A paragraph with **bold**, `code` and a [link](https://example.com).\n\n';
  const count = Math.ceil(8e6 / para.length);
  const big = para.repeat(count);
  const render = () => {
    const r = new MarkdownStream(core);
    let bytes = 0;
    for (let i = 0; i < big.length; i += 65536) bytes += r.append(big.slice(i, i + 65536)).stable.length;
    bytes += r.finish().stable.length;
    r.delete();
    return bytes;
  };
  assert.equal(render(), count * renderMarkdown(core, para).length);
  const memory = m.HEAPU8.length;
  assert.ok(memory > 16 * 1024 * 1024, `memory ${memory}`);
  assert.equal(used(), start);
  // The same work again is served from the free lists: not one byte more memory.
  assert.equal(render(), count * renderMarkdown(core, para).length);
  assert.equal(m.HEAPU8.length, memory);
  assert.equal(used(), start);
  // realloc: one SSE event far larger than the parser's first 256-byte output buffer, fed in pieces.
  const p = m._confab_sse_new(0);
  const data = 'x'.repeat(300000);
  const bytes = new TextEncoder().encode(`data: ${data}\n\n`);
  let events = 0;
  for (let i = 0; i < bytes.length; i += 4096) {
    const piece = bytes.subarray(i, i + 4096);
    const at = m._confab_sse_input(p, piece.length);
    m.HEAPU8.set(piece, at);
    events += m._confab_sse_feed_text(p, piece.length);
  }
  assert.equal(events, 1);
  const v = m._confab_sse_view(p) >> 2;
  assert.equal(core.read(m.HEAPU32[v], m.HEAPU32[v + 1]), `message\r${data}\r\r`);
  m._confab_sse_delete(p);
  assert.equal(used(), start);
});
