// CommonMark conformance of the core Markdown renderer: runs the 652 spec examples (npm
// `commonmark-spec`) through md_cli, prints passes by section, and fails if the total drops below
// commonmark-baseline.json. Raw-HTML examples fail by design: the renderer escapes HTML.
//
//   CONFAB_MD_CLI=/path/to/md_cli node --test tests/markdown/commonmark.test.mjs
//   (default: <repo>/build/native-release/tests/markdown/md_cli)
//   CONFAB_MD_VERBOSE=1 also prints every failing example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const require = createRequire(import.meta.url);

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
const stripOurs = (html) => html.replaceAll(' rel="nofollow noopener noreferrer"', '');

// --- running the examples ---------------------------------------------------------------------
function cliPath() {
  return process.env.CONFAB_MD_CLI || join(repo, 'build', 'native-release', 'tests', 'markdown', 'md_cli');
}

export function renderAll(cli, inputs) {
  const chunks = [];
  for (const input of inputs) {
    const bytes = Buffer.from(input, 'utf8');
    chunks.push(Buffer.from(`${bytes.length}\n`), bytes);
  }
  const res = spawnSync(cli, ['--batch'], { input: Buffer.concat(chunks), maxBuffer: 64 << 20, timeout: 60_000 });
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

test('normaliser ignores what a browser ignores', () => {
  assert.equal(normalizeHtml('<p>a\n  b</p>\n<ul>\n<li>x</li>\n</ul>\n'), '<p>a b</p><ul><li>x</li></ul>');
  assert.equal(normalizeHtml('<img src="a" alt="b" />'), normalizeHtml('<img alt="b" src="a">'));
  assert.equal(normalizeHtml('<p>&quot;&#39;&amp;</p>'), normalizeHtml('<p>"\'&amp;</p>'));
  assert.notEqual(normalizeHtml('<p><em>a</em></p>'), normalizeHtml('<p>*a*</p>'));
  assert.equal(normalizeHtml('<pre><code>a\n  b\n</code></pre>'), '<pre><code>a\n  b\n</code></pre>');
});

test('CommonMark spec examples pass at least the baseline', () => {
  const cli = cliPath();
  assert.ok(existsSync(cli), `md_cli not found at ${cli}: build it (native preset) or set CONFAB_MD_CLI`);
  const spec = require('commonmark-spec');
  const version = require('commonmark-spec/package.json').version;
  const examples = spec.tests.map((t) => ({
    ...t,
    markdown: t.markdown.replace(/→/g, '\t'),
    html: t.html.replace(/→/g, '\t'),
  }));
  const outputs = renderAll(cli, examples.map((e) => e.markdown));
  const bySection = new Map();
  const failures = [];
  let passed = 0;
  examples.forEach((example, i) => {
    const ok = normalizeHtml(stripOurs(outputs[i])) === normalizeHtml(example.html);
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

  const lines = [`CommonMark ${version} spec examples, by section:`];
  for (const [section, s] of bySection) lines.push(`  ${String(s.passed).padStart(3)}/${String(s.total).padEnd(3)} ${section}`);
  lines.push(`  total: ${passed}/${examples.length}`);
  console.log(lines.join('\n'));
  if (process.env.CONFAB_MD_VERBOSE) {
    for (const { example, actual } of failures) {
      console.log(`--- example ${example.number} (${example.section})\n${JSON.stringify(example.markdown)}\n` +
        `expected: ${JSON.stringify(example.html)}\nactual:   ${JSON.stringify(actual)}`);
    }
  }

  const baseline = JSON.parse(readFileSync(join(here, 'commonmark-baseline.json'), 'utf8'));
  assert.equal(examples.length, baseline.total, 'the spec package changed its example count: update the baseline');
  if (passed > baseline.passed) {
    console.log(`note: ${passed} passes is above the baseline of ${baseline.passed}: raise commonmark-baseline.json`);
  }
  assert.ok(passed >= baseline.passed, `CommonMark passes dropped: ${passed} < baseline ${baseline.passed}`);
});
