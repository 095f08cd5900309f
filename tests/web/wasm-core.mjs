// Test helper: locates and instantiates the Embind module (confab_core.js + .wasm) under Node.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

// CONFAB_WASM_DIR overrides where the build put the module (e.g. a private build dir).
export const wasmDir = process.env.CONFAB_WASM_DIR
  ? path.resolve(process.env.CONFAB_WASM_DIR)
  : path.join(repoRoot, 'build', 'wasm-release', 'wasm');

// Passing the bytes as `wasmBinary` keeps emscripten 3.1.6 from trying Node 20's global fetch on a
// file path (TOOLCHAIN.md #3), so plain `node --test` works without --no-experimental-fetch.
export async function loadCore(dir = wasmDir) {
  const js = path.join(dir, 'confab_core.js');
  const wasm = path.join(dir, 'confab_core.wasm');
  if (!fs.existsSync(js) || !fs.existsSync(wasm)) {
    throw new Error(
      `the wasm module is not built: ${js} is missing. Build it with ` +
        '`cmake --preset wasm-release && cmake --build --preset wasm-release` ' +
        '(or point CONFAB_WASM_DIR at a folder holding confab_core.js and confab_core.wasm)',
    );
  }
  const createConfabCore = createRequire(import.meta.url)(js);
  return createConfabCore({ wasmBinary: fs.readFileSync(wasm) });
}

// Deterministic PRNG (mulberry32) so a failing random case can be reproduced from the seed.
export function makeRandom(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));  // inclusive
  const bytes = (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(0, 255);
    return b;
  };
  return { next, int, bytes };
}
