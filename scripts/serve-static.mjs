#!/usr/bin/env node
// A tiny static file server for the demos and browser tests: correct MIME types (application/wasm),
// a strict CSP header, GET/HEAD only, and no way out of the served folders.
//
//   node scripts/serve-static.mjs --root DIR [--root2 /wasm=DIR ...] [--port 8080] [--host 127.0.0.1]
//                                 [--csp "default-src 'self'; ..."]
//
// `--root2 /prefix=DIR` (repeatable; `--mount` is an alias) serves DIR under /prefix/. `--port 0`
// picks a free port. The first line on stdout is `listening on http://HOST:PORT/`, so a test can
// start it and read the address. Stops on SIGINT/SIGTERM.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const DEFAULT_CSP =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

export function mimeType(file) {
  return MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

function usage(message) {
  const text =
    'usage: node scripts/serve-static.mjs --root DIR [--root2 /prefix=DIR ...] ' +
    '[--port 8080] [--host 127.0.0.1] [--csp POLICY]';
  throw new Error(message ? `${message}\n${text}` : text);
}

export function parseArgs(argv) {
  const opts = { root: null, mounts: [], port: 8080, host: '127.0.0.1', csp: DEFAULT_CSP };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    // `--flag=value` splits at the first '=', so `--root2=/wasm=DIR` works too.
    const eqAt = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const [flag, inline] = eqAt > 0 ? [arg.slice(0, eqAt), arg.slice(eqAt + 1)] : [arg, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) usage(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--root': opts.root = value(); break;
      case '--root2':
      case '--mount': {
        const spec = value();
        const eq = spec.indexOf('=');
        if (eq <= 0 || !spec.startsWith('/')) usage(`bad mount '${spec}', expected /prefix=DIR`);
        const prefix = spec.slice(0, eq).replace(/\/+$/, '');
        if (!prefix) usage(`bad mount '${spec}': the prefix must not be '/' (use --root)`);
        opts.mounts.push({ prefix, dir: spec.slice(eq + 1) });
        break;
      }
      case '--port': {
        const p = Number(value());
        if (!Number.isInteger(p) || p < 0 || p > 65535) usage('--port must be 0..65535');
        opts.port = p;
        break;
      }
      case '--host': opts.host = value(); break;
      case '--csp': opts.csp = value(); break;
      case '-h':
      case '--help': usage(); break;
      default: usage(`unknown argument '${arg}'`);
    }
  }
  if (!opts.root) usage('--root is required');
  return opts;
}

// Resolves the real directories once; a missing directory is a start-up error, not a 404 later.
function resolveDir(dir) {
  const real = fs.realpathSync(path.resolve(dir));
  if (!fs.statSync(real).isDirectory()) throw new Error(`${dir} is not a directory`);
  return real;
}

function inside(base, file) {
  return file === base || file.startsWith(base + path.sep);
}

// Maps a URL path to a file inside one of the served folders, or null. Percent-decoding happens
// once, segments are checked before joining, and the result's real path (symlinks resolved) must
// still be inside the folder, so neither `..`, encoded slashes nor a symlink lead out.
export function resolveRequest(urlPath, roots) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.some((s) => s === '..')) return null;
  const clean = '/' + segments.join('/');
  // Longest prefix first, so /wasm beats /.
  for (const { prefix, dir } of roots) {
    if (prefix && clean !== prefix && !clean.startsWith(prefix + '/')) continue;
    const rest = prefix ? clean.slice(prefix.length) : clean;
    let file = path.join(dir, ...rest.split('/').filter(Boolean));
    let real;
    try {
      real = fs.realpathSync(file);
      if (fs.statSync(real).isDirectory()) {
        file = path.join(real, 'index.html');
        real = fs.realpathSync(file);
      }
    } catch {
      return null;  // a mount shadows the same path under the root
    }
    if (!inside(dir, real)) return null;
    if (!fs.statSync(real).isFile()) return null;
    return real;
  }
  return null;
}

export function createStaticServer({ root, mounts = [], csp = DEFAULT_CSP }) {
  const roots = [
    ...mounts.map((m) => ({ prefix: m.prefix, dir: resolveDir(m.dir) })),
    { prefix: '', dir: resolveDir(root) },
  ].sort((a, b) => b.prefix.length - a.prefix.length);

  return http.createServer((req, res) => {
    const headers = {
      'Content-Security-Policy': csp,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-cache',
    };
    const fail = (status, text) => {
      res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : text + '\n');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return fail(405, 'method not allowed');
    }
    const urlPath = (req.url ?? '/').split(/[?#]/, 1)[0];
    if (!urlPath.startsWith('/')) return fail(400, 'bad request');
    const file = resolveRequest(urlPath, roots);
    if (!file) return fail(404, 'not found');
    fs.stat(file, (err, st) => {
      if (err) return fail(404, 'not found');
      res.writeHead(200, { ...headers, 'Content-Type': mimeType(file), 'Content-Length': st.size });
      if (req.method === 'HEAD') return res.end();
      const stream = fs.createReadStream(file);
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    });
  });
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  const server = createStaticServer(opts);
  server.on('error', (e) => {
    console.error(`serve-static: ${e.message}`);
    process.exit(1);
  });
  server.listen(opts.port, opts.host, () => {
    const { address, port } = server.address();
    const host = address.includes(':') ? `[${address}]` : address;
    console.log(`listening on http://${host}:${port}/`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main();
}
