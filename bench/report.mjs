// Merges the benchmark parts (bench/results/parts/<part>.json, written by bench/run.mjs and the
// browser runner) into one table: printed to stdout and written to bench/results/latest.md and
// bench/results/latest.json with the machine it ran on. Parts that are missing are listed as
// "not run". Usage: node bench/report.mjs [--parts DIR] [--out DIR]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(here, '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? path.resolve(argv[argv.indexOf(name) + 1]) : dflt);
const PARTS = opt('--parts', path.join(here, 'results/parts'));
const OUT = opt('--out', path.join(here, 'results'));

// Issue 7's six benchmarks, in its order; anything else found is appended.
const KNOWN = [
  ['signing', 'Signing'], ['server', 'Server throughput'], ['streams', 'Streams'], ['store', 'Storage'],
  ['render', 'Browser rendering'], ['parse', 'Stream parsing'], ['size', 'Size and start-up'],
];

const git = (...a) => {
  try {
    return execFileSync('git', ['-C', REPO, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
};

function cpuModel() {
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/);
    const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/flags\s*:\s*(.*)/)?.[1].split(' ') ?? [];
    return `${m ? m[1] : cpus()[0]?.model ?? 'unknown'}${flags.includes('sha_ni') ? ' (sha_ni)' : ''}`;
  } catch {
    return cpus()[0]?.model ?? 'unknown';
  }
}

const machine = {
  cpu: cpuModel(),
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  kernel: release(),
  node: process.version,
  date: new Date().toISOString(),
  commit: `${git('rev-parse', '--short', 'HEAD') || 'unknown'}${git('status', '--porcelain') ? ' (+ uncommitted changes)' : ''}`,
};

const found = existsSync(PARTS) ? readdirSync(PARTS).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : [];
const order = [...KNOWN.map(([k]) => k), ...found.filter((f) => !KNOWN.some(([k]) => k === f)).sort()];
const parts = [];
const notRun = [];
for (const key of order) {
  const file = path.join(PARTS, `${key}.json`);
  if (!existsSync(file)) {
    notRun.push({ part: key, title: KNOWN.find(([k]) => k === key)?.[1] ?? key });
    continue;
  }
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    // A part that does not say when it ran is dated by its file, so a stale one shows.
    doc.ranAt ??= `${statSync(file).mtime.toISOString()} (file time)`;
    parts.push(doc);
  } catch (e) {
    notRun.push({ part: key, title: key, error: `unreadable: ${e.message}` });
  }
}

const fmt = (x) => {
  if (x === null || x === undefined || x === '') return '';
  if (typeof x !== 'number') return String(x);
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  const d = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 10 ? 1 : 2;
  return x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: 0 });
};
const cell = (s) => String(s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
const met = (m) => (m === true ? 'yes' : m === false ? '**no**' : '');

const lines = [];
lines.push('# Benchmark results', '');
lines.push(`Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, ` +
  `Node ${machine.node}. Report: ${machine.date}, commit ${machine.commit}.`, '');
lines.push('Ratio: how many times better Confab is than the baseline (> 1: Confab is better; for "lower is ' +
  'better" metrics it is baseline / Confab).', '');
lines.push('| benchmark | metric | Confab | baseline | ratio | goal | met | note |');
lines.push('|---|---|---:|---:|---:|---|---|---|');
for (const p of parts) {
  for (const r of p.rows ?? []) {
    const unit = r.unit ? ` ${r.unit}` : '';
    const base = r.baselineName ? `${fmt(r.baseline)}${unit} (${r.baselineName})` : '';
    lines.push(`| ${cell(r.benchmark)} | ${cell(r.metric)} | ${fmt(r.confab)}${cell(unit)} | ${cell(base)} | ` +
      `${r.ratio === null || r.ratio === undefined ? '' : `${fmt(r.ratio)}x`} | ${cell(r.goal)} | ${met(r.met)} | ${cell(r.note)} |`);
  }
}
lines.push('');
const goals = parts.flatMap((p) => (p.rows ?? []).filter((r) => r.met === true || r.met === false));
lines.push(`Goals: ${goals.filter((r) => r.met).length} of ${goals.length} met.`, '');
if (notRun.length) {
  lines.push('Not run: ' + notRun.map((n) => `${n.title} (\`${n.part}\`${n.error ? `, ${n.error}` : ''})`).join(', ') + '.', '');
}
lines.push('## How each part was measured', '');
for (const p of parts) {
  lines.push(`- **${p.title ?? p.part}** (${p.ranAt ?? 'unknown time'}${p.commit ? `, commit ${p.commit}` : ''}` +
    `${p.smoke ? ', SMOKE RUN: not a measurement' : ''}): ${p.method ?? ''}`);
}
lines.push('');
const md = lines.join('\n');

mkdirSync(OUT, { recursive: true });
writeFileSync(path.join(OUT, 'latest.md'), md);
writeFileSync(path.join(OUT, 'latest.json'), JSON.stringify({ machine, parts, notRun }, null, 2) + '\n');
process.stdout.write(md + '\n');
process.stderr.write(`[report] wrote ${path.relative(REPO, path.join(OUT, 'latest.md'))} and latest.json\n`);
