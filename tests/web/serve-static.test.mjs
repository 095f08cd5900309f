// Tests of scripts/serve-static.mjs: MIME types, the CSP header, mounts, and no way out of the root.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createStaticServer, DEFAULT_CSP, parseArgs } from '../../scripts/serve-static.mjs';
import { repoRoot } from './wasm-core.mjs';

// GET/HEAD/POST one raw path (no URL normalisation by the client, so `..` reaches the server).
function request(port, rawPath, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('serve-static', () => {
  let dir;
  let server;
  let port;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'confab-static-'));
    fs.mkdirSync(path.join(dir, 'site', 'sub'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'build'));
    fs.writeFileSync(path.join(dir, 'site', 'index.html'), '<!doctype html><title>t</title>');
    fs.writeFileSync(path.join(dir, 'site', 'app.js'), 'console.log(1)');
    fs.writeFileSync(path.join(dir, 'site', 'sub', 'index.html'), 'sub');
    fs.writeFileSync(path.join(dir, 'site', 'a b.txt'), 'space');
    fs.writeFileSync(path.join(dir, 'build', 'm.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    fs.writeFileSync(path.join(dir, 'secret.txt'), 'do not serve');
    fs.symlinkSync(path.join(dir, 'secret.txt'), path.join(dir, 'site', 'link.txt'));
    server = createStaticServer({ root: path.join(dir, 'site'), mounts: [{ prefix: '/wasm', dir: path.join(dir, 'build') }] });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = server.address().port;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('serves files with their MIME type and the CSP header', async () => {
    const index = await request(port, '/');
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(index.headers['content-security-policy'], DEFAULT_CSP);
    assert.match(DEFAULT_CSP, /script-src 'self' 'wasm-unsafe-eval'/);
    assert.equal(index.headers['x-content-type-options'], 'nosniff');
    assert.equal(index.body.toString(), '<!doctype html><title>t</title>');
    assert.equal((await request(port, '/app.js?v=1')).headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal((await request(port, '/sub/')).body.toString(), 'sub');
    assert.equal((await request(port, '/a%20b.txt')).body.toString(), 'space');
    const wasm = await request(port, '/wasm/m.wasm');
    assert.equal(wasm.status, 200);
    assert.equal(wasm.headers['content-type'], 'application/wasm');
    assert.equal(wasm.body.length, 8);
    const head = await request(port, '/app.js', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '14');
    assert.equal(head.body.length, 0);
  });

  test('no directory traversal, encoded or not, and no symlinks out of the root', async () => {
    const attempts = [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/sub/..%2f..%2fsecret.txt',
      '/wasm/../../secret.txt',
      '/wasm/%2e%2e/%2e%2e/secret.txt',
      '/..%5csecret.txt',
      '/%00',
      '/%E0%A4%A',
      '/link.txt',
      '/missing.html',
      '/wasm/',
    ];
    for (const p of attempts) {
      const r = await request(port, p);
      assert.equal(r.status, 404, p);
      assert.ok(!r.body.toString().includes('do not serve'), p);
      assert.equal(r.headers['content-security-policy'], DEFAULT_CSP, p);
    }
    assert.equal((await request(port, 'index.html')).status, 400);
  });

  test('only GET and HEAD', async () => {
    const r = await request(port, '/', 'POST');
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, HEAD');
  });

  test('argument parsing', () => {
    const o = parseArgs(['--root', 'x', '--root2', '/wasm=build/w', '--port', '0', '--host=127.0.0.1', '--mount=/a/=y']);
    assert.deepEqual(o.mounts, [{ prefix: '/wasm', dir: 'build/w' }, { prefix: '/a', dir: 'y' }]);
    assert.equal(o.port, 0);
    assert.throws(() => parseArgs([]), /--root is required/);
    assert.throws(() => parseArgs(['--root', 'x', '--root2', 'wasm']), /bad mount/);
    assert.throws(() => parseArgs(['--root', 'x', '--port', '99999']), /--port/);
    assert.throws(() => parseArgs(['--root', 'x', '--bogus']), /unknown argument/);
  });

  test('the CLI prints its address, serves, and stops on SIGTERM', async () => {
    const script = path.join(repoRoot, 'scripts', 'serve-static.mjs');
    const child = spawn(process.execPath, [script, '--root', path.join(dir, 'site'), '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const url = await new Promise((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (code) => reject(new Error(`exited early with ${code}`)));
        setTimeout(() => reject(new Error('no address printed')), 5000);
      });
      assert.equal((await request(url, '/')).status, 200);
    } finally {
      const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
      child.kill('SIGTERM');
      assert.deepEqual(await exited, { code: 0, signal: null });
    }
  });

  test('the CLI rejects a missing root with exit code 2', async () => {
    const script = path.join(repoRoot, 'scripts', 'serve-static.mjs');
    const child = spawn(process.execPath, [script, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 2);
    assert.match(err, /--root is required/);
  });
});
