// CommonMark conformance of the core Markdown renderer: runs the 652 spec examples (npm
// `commonmark-spec`) through md_cli, prints passes by section, and fails if the total drops below
// commonmark-baseline.json. Raw-HTML examples fail by design: the renderer escapes HTML.
//
//   CONFAB_MD_CLI=/path/to/md_cli node --test tests/markdown/commonmark.test.mjs
//   (default: <repo>/build/native-release/tests/markdown/md_cli)
//   CONFAB_MD_VERBOSE=1 also prints every failing example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { cliPath, normalizeHtml, renderAll, scoreExamples } from './spec-helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

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
  const outputs = renderAll(cli, examples.map((e) => e.markdown), ['--no-highlight']);
  const { passed } = scoreExamples(`CommonMark ${version} spec examples`, examples, outputs);

  const baseline = JSON.parse(readFileSync(join(here, 'commonmark-baseline.json'), 'utf8'));
  assert.equal(examples.length, baseline.total, 'the spec package changed its example count: update the baseline');
  if (passed > baseline.passed) {
    console.log(`note: ${passed} passes is above the baseline of ${baseline.passed}: raise commonmark-baseline.json`);
  }
  assert.ok(passed >= baseline.passed, `CommonMark passes dropped: ${passed} < baseline ${baseline.passed}`);
});
