// The shipped type declarations compile against a typed usage file (tsc --noEmit), and the
// deliberate misuses in it are still errors.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { webDir } from './helpers.mjs';

it('index.d.ts type-checks a typed usage file', () => {
  const tsc = join(webDir, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(webDir, 'test/tsconfig.json')], { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}\n${r.stderr}`);
});
