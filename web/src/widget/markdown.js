// The wasm streaming Markdown renderer (wasm/widget_bindings.cpp) behind a small facade: one call
// per streamed chunk returns the stable HTML that is new since the last call (append it once) and
// the HTML of the open tail (replace the old tail with it).
const encoder = new TextEncoder();

const registry = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry(({ m, ptr }) => m._confab_md_delete(ptr))
  : null;

export class MarkdownStream {
  /** `core` is the SDK's loaded Core (web/src/core.js) built from the widget's wasm module. */
  constructor(core) {
    this.core = core;
    const m = core.m;
    if (typeof m._confab_md_new !== 'function') throw new Error('the wasm core has no Markdown renderer (not the widget build)');
    this.pending = '';
    this.ptr = m._confab_md_new();
    if (!this.ptr) throw new Error('out of wasm memory');
    if (registry) registry.register(this, { m, ptr: this.ptr }, this);
  }

  view(v) {
    const h = this.core.m.HEAPU32;
    const i = v >> 2;
    return { stable: this.core.read(h[i], h[i + 1]), tail: this.core.read(h[i + 2], h[i + 3]) };
  }

  /** Appends a chunk of Markdown; returns {stable: new stable HTML, tail: the whole tail HTML}. */
  append(text) {
    // A chunk may end inside a surrogate pair (an emoji split across tokens): hold the first half
    // back, or both halves would become U+FFFD when encoded separately.
    if (this.pending) {
      text = this.pending + text;
      this.pending = '';
    }
    const last = text.charCodeAt(text.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) {
      this.pending = text.slice(-1);
      text = text.slice(0, -1);
    }
    return this.write(text);
  }

  write(text) {
    const { m } = this.core;
    const cap = text.length * 3;
    const at = m._confab_md_input(this.ptr, cap);  // may grow the heap: HEAPU8 read after it
    const n = encoder.encodeInto(text, m.HEAPU8.subarray(at, at + cap)).written;
    return this.view(m._confab_md_append(this.ptr, n));
  }

  /** End of the reply: {stable: the rest, tail: ''}. */
  finish() {
    if (this.pending) {
      const a = this.write(this.pending);  // a lone half at the very end: encoded as U+FFFD
      this.pending = '';
      const b = this.view(this.core.m._confab_md_finish(this.ptr));
      return { stable: a.stable + b.stable, tail: b.tail };
    }
    return this.view(this.core.m._confab_md_finish(this.ptr));
  }

  /** The renderer's work counters (tests read them to check the cost model). */
  counters() {
    const n = (w) => this.core.m._confab_md_num(this.ptr, w);
    return { finishedBlocks: n(0), blockRenders: n(1), finishedBlockRerenders: n(2), tailRenders: n(3), bytesParsed: n(4) };
  }

  delete() {
    if (!this.ptr) return;
    if (registry) registry.unregister(this);
    this.core.m._confab_md_delete(this.ptr);
    this.ptr = 0;
  }
}

/** A whole message at once (history): the same renderer, appended once and finished. */
export function renderMarkdown(core, text) {
  const r = new MarkdownStream(core);
  try {
    const a = r.append(text);
    return a.stable + r.finish().stable;
  } finally {
    r.delete();
  }
}

/**
 * The DOM side of a streamed reply, in `parent`: finished blocks go into `md` (appended once,
 * never touched again), the open block into a sibling `tail` (replaced per chunk). The tail is
 * not inside `md`, so a token dirties only the tail: the browser's layout of the finished blocks
 * stays cached, and a token costs the same at the end of a long reply as at its start (with the
 * tail inside `md`, every token re-laid out all of md's children: quadratic over a reply).
 * All HTML goes through `enhancer` (enhance.js: the widget's Trusted Types policy, then links,
 * images, tables and code blocks made fit for the panel).
 */
export class MarkdownView {
  constructor(parent, enhancer) {
    const doc = parent.ownerDocument;
    this.enhancer = enhancer;
    this.md = doc.createElement('div');
    this.md.className = 'md';
    this.tail = doc.createElement('div');
    this.tail.className = 'md tail';
    parent.append(this.md, this.tail);
  }

  /** Shows one renderer result: {stable: new finished HTML, tail: the open block's HTML}. */
  show({ stable, tail }) {
    if (stable) this.md.append(this.enhancer.fragment(stable, false));
    this.tail.replaceChildren(this.enhancer.fragment(tail, true));
  }

  /** The reply ended (after showing the renderer's finish()): the tail goes. */
  close() {
    this.tail.remove();
  }
}
