// Benchmark 4's page: streams a Markdown reply into the DOM one token per call, the widget's way
// and the baselines' way, and times each token's synchronous main-thread work.
//
// Confab: the widget's real path (web/src/widget/panel.js replyView): the wasm StreamRenderer of
// the widget's module (web/src/widget/markdown.js over web/src/core.js) appends the token; the
// panel's MarkdownView appends the new stable HTML once and replaces the open tail, both through a
// Trusted Types policy named like the widget's; then the panel's scroll() (reads scrollHeight:
// forces layout).
// Baselines: the whole reply so far re-rendered per token into innerHTML (marked + DOMPurify, and
// markdown-it with its safe defaults, html: false), then the same scroll().
// The DOM is the widget's: a shadow root with the shell's and the panel's stylesheets and the
// panel's .root > .panel > .log > .row.assistant > .msg.assistant > .md structure, so layout costs what it costs there.
import { loadCore } from '../../web/src/core.js';
import { MarkdownStream, MarkdownView } from '../../web/src/widget/markdown.js';
import { Enhancer } from '../../web/src/widget/enhance.js';
import { icon } from '../../web/src/widget/shell.js';
import { translator } from '../../web/src/widget/strings.js';
import { shellCss, panelCss } from '../../web/src/widget/styles.js';
import { marked } from 'marked';
import DOMPurify from 'dompurify';
import MarkdownIt from 'markdown-it';
import { replyTokens } from './corpus.js';

const now = () => performance.now();
const yieldTask = () => new Promise((r) => setTimeout(r, 0));
let core = null;
let policy = null;
const mdit = new MarkdownIt();  // html: false, linkify off: raw HTML escaped, link URLs validated
const tokenCache = new Map();
let extraCss = '';  // diagnostics only (window.bench.extraCss): the reported runs leave it empty

function sheet(css) {
  const s = new CSSStyleSheet();
  s.replaceSync(css);
  return s;
}

// A fresh widget-shaped container: returns {log, msg, md, remove}; Confab's view builds its own
// .md + .tail in msg (web/src/widget/markdown.js MarkdownView), the baselines render into md.
function container() {
  const host = document.createElement('div');
  document.body.append(host);
  const root = host.attachShadow({ mode: 'open' });
  root.adoptedStyleSheets = [sheet(shellCss), sheet(panelCss), sheet(extraCss)];
  const box = document.createElement('div');
  box.className = 'root open';
  const panel = document.createElement('div');
  panel.className = 'panel';
  const log = document.createElement('div');
  log.className = 'log';
  const msg = document.createElement('div');
  msg.className = 'msg assistant';
  const md = document.createElement('div');  // the baselines render into this
  md.className = 'md';
  const row = document.createElement('div');  // the panel wraps each message in its row
  row.className = 'row assistant';
  row.append(msg);
  log.append(row);
  panel.append(log);
  box.append(panel);
  root.append(box);
  return { log, msg, md, remove: () => host.remove() };
}

// The panel's scroll(false): follow the bottom if the user is near it.
function scroll(l) {
  if (l.scrollHeight - l.scrollTop - l.clientHeight < 80) l.scrollTop = l.scrollHeight;
}

function makeStep(engine, c) {
  if (engine === 'confab') {
    const renderer = new MarkdownStream(core);
    const view = new MarkdownView(c.msg, new Enhancer(policy, translator('en'), icon));  // the panel's own DOM code
    c.md = view.md;  // what the run's checks read
    // Where the time goes, per token: the wasm renderer (incl. the copy of its output into JS
    // strings), the DOM update (HTML parsing + insertion), the forced layout.
    const phases = { wasmMs: 0, domMs: 0, layoutMs: 0 };
    return {
      phases,
      step(tok) {
        const t0 = now();
        const out = renderer.append(tok);
        const t1 = now();
        view.show(out);
        const t2 = now();
        scroll(c.log);
        const t3 = now();
        phases.wasmMs += t1 - t0;
        phases.domMs += t2 - t1;
        phases.layoutMs += t3 - t2;
      },
      end() { view.show(renderer.finish()); renderer.delete(); view.close(); scroll(c.log); },
    };
  }
  c.msg.append(c.md);
  let text = '';
  const render = engine === 'marked'
    ? () => DOMPurify.sanitize(marked.parse(text))
    : () => mdit.render(text);
  return {
    step(tok) { text += tok; c.md.innerHTML = render(); scroll(c.log); },
    end() {},
    // Sampling: the baseline's work for a token depends only on the reply so far (it re-renders
    // all of it), so its state before token i can be set directly (untimed).
    setPrefix(prefix) { text = prefix; c.md.innerHTML = render(); scroll(c.log); },
  };
}

window.bench = {
  async setup() {
    core = await loadCore();
    if (typeof core.m._confab_md_new !== 'function') throw new Error('not the widget wasm module');
    const rules = { createHTML: (s) => s };
    policy = window.trustedTypes ? window.trustedTypes.createPolicy('confab', rules) : rules;
    return { crossOriginIsolated: window.crossOriginIsolated };
  },

  extraCss(css) { extraCss = css; },

  /** Streams n tokens with `engine`; stops early (complete: false) past budgetMs of work. */
  async run(engine, n, budgetMs) {
    if (!tokenCache.has(n)) tokenCache.set(n, replyTokens(n));
    const tokens = tokenCache.get(n);
    const c = container();
    const r = makeStep(engine, c);
    const times = new Float64Array(n + 1);
    let total = 0;
    let done = 0;
    let slice = now();
    for (; done < n; done++) {
      const t0 = now();
      r.step(tokens[done]);
      const dt = now() - t0;
      times[done] = dt;
      total += dt;
      if (total > budgetMs) { done++; break; }
      if (now() - slice > 50) {  // let the page breathe (not timed): rendering, GC, the test driver
        await yieldTask();
        slice = now();
      }
    }
    const complete = done === n;
    if (complete) {
      const t0 = now();
      r.end();
      times[n] = now() - t0;
      total += times[n];
    }
    const used = times.slice(0, complete ? n + 1 : done);
    const sorted = Float64Array.from(used).sort();
    const textLen = c.md.textContent.length;
    const blocks = c.md.childElementCount;
    c.remove();
    await yieldTask();
    return {
      engine, n, complete, tokens: done, totalMs: total, maxMs: sorted[sorted.length - 1],
      p99Ms: sorted[Math.floor(sorted.length * 0.99)], medianMs: sorted[Math.floor(sorted.length / 2)],
      textLen, blocks, phases: r.phases || null,
    };
  },

  /**
   * A re-rendering baseline's total for n tokens, estimated from `samples` tokens at evenly spaced
   * positions (midpoint rule: total ~ stride * sum of the sampled tokens' times). Each sampled
   * token's work is exactly the full run's: state set to the previous prefix (untimed), then the
   * token's render + DOM update + forced layout timed. Used where the full run would take minutes.
   */
  async sample(engine, n, samples) {
    if (engine === 'confab') throw new Error('Confab is incremental: measure it fully');
    if (!tokenCache.has(n)) tokenCache.set(n, replyTokens(n));
    const tokens = tokenCache.get(n);
    const c = container();
    const r = makeStep(engine, c);
    const stride = n / samples;
    let sum = 0;
    let max = 0;
    let slice = now();
    for (let k = 0; k < samples; k++) {
      const i = Math.min(n - 1, Math.floor((k + 0.5) * stride));
      r.setPrefix(tokens.slice(0, i).join(''));
      const t0 = now();
      r.step(tokens[i]);
      const dt = now() - t0;
      sum += dt;
      if (dt > max) max = dt;
      if (now() - slice > 50) {
        await yieldTask();
        slice = now();
      }
    }
    c.remove();
    await yieldTask();
    return { engine, n, samples, estTotalMs: sum * stride, maxSampledMs: max };
  },
};
