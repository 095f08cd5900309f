// Shared by the Markdown conformance runners (commonmark.test.mjs, gfm.test.mjs): the HTML
// normaliser, md_cli in batch mode, and what our output adds that spec outputs cannot know.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

// --- HTML normaliser, after the one in cmark's test suite (normalize.py) --------------------
// Whitespace next to block tags and runs of whitespace outside <pre> do not count, attributes are
// sorted, self-closing slashes dropped, and character references decoded then re-escaped, so only
// differences a browser would render count as failures.
const blockTags = new Set(('article header aside hgroup blockquote hr iframe body li map button object canvas ol ' +
  'caption output col p colgroup pre dd progress div section dl table td dt tbody embed textarea fieldset ' +
  'tfoot figcaption th figure thead footer tr form ul h1 h2 h3 h4 h5 h6 video script style').split(' '));
const namedRefs = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function decodeRefs(text) {
  return text.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z][a-zA-Z0-9]{0,31});/g, (m, ref) => {
    if (ref[0] === '#') {
      const cp = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      try { return cp === 0 ? '\ufffd' : String.fromCodePoint(cp); } catch { return '\ufffd'; }
    }
    return Object.hasOwn(namedRefs, ref) ? namedRefs[ref] : m;
  });
}
const escapeText = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function normalizeHtml(html) {
  const tagRe = /<!--[\s\S]*?-->|<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s"'>\/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*(\/?)>/g;
  let out = '';
  let last = 'none';
  let lastTag = '';
  let inPre = false;
  let pos = 0;
  const handleData = (raw) => {
    let data = decodeRefs(raw);
    const afterTag = last === 'endtag' || last === 'starttag';
    const afterBlock = afterTag && blockTags.has(lastTag);
    if (afterTag && lastTag === 'br') data = data.replace(/^\n+/, '');
    if (!inPre) data = data.replace(/\s+/g, ' ');
    if (afterBlock && !inPre) data = last === 'starttag' ? data.replace(/^\s+/, '') : data.trim();
    out += escapeText(data);
    if (data !== '') last = 'data';
  };
  for (const m of html.matchAll(tagRe)) {
    if (m.index > pos) handleData(html.slice(pos, m.index));
    pos = m.index + m[0].length;
    if (m[0].startsWith('<!--')) {
      out += m[0];
      last = 'comment';
      continue;
    }
    const tag = m[2].toLowerCase();
    if (m[1] === '/') {
      if (tag === 'pre') inPre = false;
      else if (blockTags.has(tag)) out = out.trimEnd();
      out += `</${tag}>`;
      lastTag = tag;
      last = 'endtag';
      continue;
    }
    if (tag === 'pre') inPre = true;
    if (blockTags.has(tag)) out = out.trimEnd();
    const attrs = [];
    for (const a of m[3].matchAll(/([^\s"'>\/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
      const value = a[2] ?? a[3] ?? a[4];
      attrs.push([a[1].toLowerCase(), value === undefined ? undefined : decodeRefs(value)]);
    }
    attrs.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    out += `<${tag}`;
    for (const [k, v] of attrs) out += v === undefined ? ` ${k}` : ` ${k}="${escapeText(v)}"`;
    out += '>';
    lastTag = tag;
    last = m[4] === '/' ? 'endtag' : 'starttag';
  }
  if (pos < html.length) handleData(html.slice(pos));
  return out.trim();
}

// Our additions that the spec's expected output cannot know about.
export const stripOurs = (html) => html
  .replaceAll(' rel="nofollow noopener noreferrer"', '')
  .replaceAll(' aria-label="Task"', '')
  .replace(/ aria-label="Back to reference [0-9-]+"/g, '');

// --- running the examples ---------------------------------------------------------------------
export function cliPath() {
  return process.env.CONFAB_MD_CLI || join(repo, 'build', 'native-release', 'tests', 'markdown', 'md_cli');
}

// `args`: extra md_cli flags (the runners pass --no-highlight: spec outputs have no highlighting).
export function renderAll(cli, inputs, args = []) {
  const chunks = [];
  for (const input of inputs) {
    const bytes = Buffer.from(input, 'utf8');
    chunks.push(Buffer.from(`${bytes.length}\n`), bytes);
  }
  const res = spawnSync(cli, ['--batch', ...args], { input: Buffer.concat(chunks), maxBuffer: 64 << 20, timeout: 60_000 });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`md_cli exited with ${res.status}: ${res.stderr}`);
  const out = res.stdout;
  const results = [];
  let pos = 0;
  while (pos < out.length) {
    const nl = out.indexOf(10, pos);
    const len = Number(out.subarray(pos, nl).toString());
    results.push(out.subarray(nl + 1, nl + 1 + len).toString('utf8'));
    pos = nl + 1 + len;
  }
  if (results.length !== inputs.length) throw new Error(`md_cli answered ${results.length} of ${inputs.length} records`);
  return results;
}


const fence = '`'.repeat(32);

// The examples of a cmark spec file, as cmark's spec_tests.py reads them: a fence line
// "```...``` example[ extension]", the Markdown, a "." line, the HTML, the closing fence; the
// section is the last heading before it. The two "disabled" examples (task lists, which cmark-gfm
// tests in extensions.txt instead) are run too.
export function readExamples(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const examples = [];
  let section = '';
  let state = 0;  // 0 outside, 1 markdown, 2 html
  let markdown = [];
  let html = [];
  let info = '';
  for (const line of lines) {
    if (state === 0) {
      const h = /^#{1,6} (.*)$/.exec(line);
      if (h) section = h[1].trim();
      if (line.startsWith(fence + ' example')) {
        info = line.slice(fence.length + ' example'.length).trim();
        state = 1;
        markdown = [];
        html = [];
      }
    } else if (state === 1) {
      if (line === '.') state = 2;
      else markdown.push(line);
    } else if (line === fence) {
      state = 0;
      examples.push({
        section,
        extension: info,
        number: examples.length + 1,
        markdown: markdown.map((l) => l + '\n').join('').replace(/→/g, '\t'),
        html: html.map((l) => l + '\n').join('').replace(/→/g, '\t'),
      });
    } else {
      html.push(line);
    }
  }
  return examples;
}


// Scores rendered `outputs` against the examples' expected HTML ("<IGNORE>": only must not crash,
// as cmark's runner reads it), prints passes per section and, with CONFAB_MD_VERBOSE, every failing
// example. Returns {passed, bySection: Map(section -> {passed, total})}.
export function scoreExamples(title, examples, outputs) {
  const bySection = new Map();
  const failures = [];
  let passed = 0;
  examples.forEach((example, i) => {
    const ok = example.html === '<IGNORE>\n' || normalizeHtml(stripOurs(outputs[i])) === normalizeHtml(example.html);
    const s = bySection.get(example.section) ?? { passed: 0, total: 0 };
    s.total += 1;
    if (ok) {
      s.passed += 1;
      passed += 1;
    } else {
      failures.push({ example, actual: outputs[i] });
    }
    bySection.set(example.section, s);
  });
  const lines = [`${title}, by section:`];
  for (const [section, s] of bySection) lines.push(`  ${String(s.passed).padStart(3)}/${String(s.total).padEnd(3)} ${section}`);
  lines.push(`  total: ${passed}/${examples.length}`);
  console.log(lines.join('\n'));
  if (process.env.CONFAB_MD_VERBOSE) {
    for (const { example, actual } of failures) {
      console.log(`--- ${title} example ${example.number} (${example.section})\n${JSON.stringify(example.markdown)}\n` +
        `expected: ${JSON.stringify(example.html)}\nactual:   ${JSON.stringify(actual)}`);
    }
  }
  return { passed, bySection };
}
