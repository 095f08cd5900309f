// GitHub Flavored Markdown conformance of the core Markdown renderer: cmark-gfm's spec.txt (the
// GFM spec 0.29, CommonMark examples included) and extensions.txt (tables, strikethrough,
// autolinks, footnotes, task lists), copied into gfm/ with their origin and licence. Prints
// passes per section and fails if a file's total or any section's count drops below
// gfm-baseline.json. Also checks, for every input of both files and of the CommonMark runner,
// that streaming in any chunking gives the one-shot HTML (md_cli --stream-check).
//
//   CONFAB_MD_CLI=/path/to/md_cli node --test tests/markdown/gfm.test.mjs
//   CONFAB_MD_VERBOSE=1 also prints every failing example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { cliPath, readExamples, renderAll, scoreExamples } from './spec-helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
function run(cli, name, file) {
  const examples = readExamples(join(here, 'gfm', file));
  const outputs = renderAll(cli, examples.map((e) => e.markdown), ['--no-highlight']);
  const { passed, bySection } = scoreExamples(`${name} examples`, examples, outputs);
  return { examples, passed, bySection };
}

const baseline = JSON.parse(readFileSync(join(here, 'gfm-baseline.json'), 'utf8'));

function checkAgainstBaseline(key, result) {
  const base = baseline[key];
  assert.equal(result.examples.length, base.total, `${key}: the example count changed: update gfm-baseline.json`);
  const drops = [];
  for (const [section, count] of Object.entries(base.sections)) {
    const now = result.bySection.get(section)?.passed ?? 0;
    if (now < count) drops.push(`${section}: ${now} < ${count}`);
    else if (now > count) console.log(`note: ${key} "${section}" passes ${now} > baseline ${count}: raise gfm-baseline.json`);
  }
  assert.deepEqual(drops, [], `${key}: passes dropped by section`);
  assert.ok(result.passed >= base.passed, `${key}: passes dropped: ${result.passed} < baseline ${base.passed}`);
}

test('GFM spec examples (cmark-gfm spec.txt) pass at least the baseline', () => {
  const cli = cliPath();
  assert.ok(existsSync(cli), `md_cli not found at ${cli}: build it (native preset) or set CONFAB_MD_CLI`);
  checkAgainstBaseline('spec', run(cli, 'GFM spec 0.29', 'spec.txt'));
});

test('GFM extension examples (cmark-gfm extensions.txt) pass at least the baseline', () => {
  const cli = cliPath();
  assert.ok(existsSync(cli), `md_cli not found at ${cli}`);
  checkAgainstBaseline('extensions', run(cli, 'cmark-gfm extensions', 'extensions.txt'));
});

test('every spec input streamed in any chunking renders as it does at once', () => {
  const cli = cliPath();
  assert.ok(existsSync(cli), `md_cli not found at ${cli}`);
  const inputs = [
    ...readExamples(join(here, 'gfm', 'spec.txt')),
    ...readExamples(join(here, 'gfm', 'extensions.txt')),
    ...require('commonmark-spec').tests.map((t) => ({ markdown: t.markdown.replace(/→/g, '\t') })),
  ].map((e) => e.markdown);
  // md_cli answers "" when every chunking matched, else what differed. With highlighting on:
  // the highlighter is part of what streams.
  const reports = renderAll(cli, inputs, ['--stream-check']);
  const bad = reports.map((r, i) => (r ? `input ${i} ${JSON.stringify(inputs[i])}: ${r}` : '')).filter(Boolean);
  console.log(`streamed == one-shot for ${inputs.length - bad.length}/${inputs.length} inputs`);
  assert.deepEqual(bad.slice(0, 5), []);
});
