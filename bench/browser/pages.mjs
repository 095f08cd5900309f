// Builds the benchmark pages' scripts in memory with esbuild. The Confab side imports the SDK's own
// sources (web/src/core.js, web/src/widget/markdown.js) and gets the same wasm modules the shipped
// bundles embed (build/wasm-release/wasm, made by `make sdk`), resolved the way web/scripts/build.mjs
// resolves them: `confab:wasm-glue` is the emscripten glue as an ES module, `confab:wasm-bytes` the
// wasm bytes as a string the SDK decodes (shift 0 here; the shipped build picks the shift that gzips best).
import { build } from 'esbuild';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../..');
export const wasmDir = resolve(process.env.CONFAB_WASM_BUILD_DIR || join(repo, 'build/wasm-release/wasm'));

function glueModule(file, exportName) {
  const src = readFileSync(file, 'utf8');
  const at = src.lastIndexOf("if (typeof exports === 'object' && typeof module === 'object')");
  if (at < 0) throw new Error(`unexpected glue format in ${file}`);
  return src.slice(0, at) + `\nexport default ${exportName};\n`;
}

function wasmText(bytes) {
  let s = '"';
  for (const c of bytes) {
    if (c === 0x22 || c === 0x5c || c === 0x3c || c < 0x20 || c >= 0x7f) s += '\\x' + c.toString(16).padStart(2, '0');
    else s += String.fromCharCode(c);
  }
  return s + '"';
}

function wasmPlugin(name) {
  const glue = join(wasmDir, `${name}.js`);
  const wasm = join(wasmDir, `${name}.wasm`);
  for (const f of [glue, wasm]) if (!existsSync(f)) throw new Error(`${f} is missing: run make sdk`);
  const exportName = name === 'confab_sdk_core' ? 'createConfabSdkCore' : 'createConfabWidgetCore';
  return {
    name: 'confab-wasm',
    setup(b) {
      b.onResolve({ filter: /^confab:/ }, (args) => ({ path: args.path, namespace: 'confab' }));
      b.onLoad({ filter: /.*/, namespace: 'confab' }, (args) => {
        if (args.path === 'confab:wasm-glue') return { contents: glueModule(glue, exportName), loader: 'js', resolveDir: repo };
        const bytes = readFileSync(wasm);
        return {
          contents: `export const WASM_EMBEDDED = true; export const WASM_USER_HASH = true; export const WASM_URL = null; export const WASM_TEXT = ${wasmText(bytes)}; export const WASM_SHIFT = 0; export const WASM_LENGTH = ${bytes.length};`,
          loader: 'js',
        };
      });
    },
  };
}

/** {'/render.js': code, '/parse.js': code}: the two benchmark pages' scripts. */
export async function buildPages() {
  const out = {};
  const entries = [['/render.js', 'render-page.js', 'confab_widget_core'], ['/parse.js', 'parse-page.js', 'confab_sdk_core']];
  for (const [url, file, wasm] of entries) {
    const r = await build({
      entryPoints: [join(here, file)], bundle: true, write: false, format: 'iife', platform: 'browser',
      target: ['chrome110'], minify: true, legalComments: 'none', logLevel: 'warning',
      nodePaths: [join(here, '..', 'node_modules')], plugins: [wasmPlugin(wasm)],
    });
    out[url] = r.outputFiles[0].text;
  }
  return out;
}
