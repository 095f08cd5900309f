// Test helpers for the SDK suites: a real confab-server on a temp config, a TCP proxy that cuts
// connections mid-stream, and the built package (dist/) to test.
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';
import { startServer as startConfabServer } from '../../tests/server/helpers.mjs';

export const webDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = resolve(webDir, '..');
export const distDir = join(webDir, 'dist');

export function serverBin() {
  const bin = process.env.CONFAB_SERVER_BIN || join(repoDir, 'build/native-release/confab-server');
  if (!existsSync(bin)) {
    throw new Error(`confab-server not found at ${bin}: build it (make native) or set CONFAB_SERVER_BIN`);
  }
  return bin;
}

export const SECRET = 'sdk-test-secret-0123456789';
export const TIGHT_SECRET = 'sdk-tight-secret-0123456789';
// Reference HMAC from node:crypto, independent of the SDK's wasm implementation.
export const hmacHex = (secret, user) => createHmac('sha256', secret).update(user).digest('hex');

export const STORY = 'Once upon a time, {{hero}} met a dragon.\nThey talked about {{topic}} — and ünïcödé 🐉.\nThe end.\n';
export const FLOOD_EVENTS = 10000;

/** The test workspaces: apps covering every SDK path. */
export function testConfig({ origins = ['*'] } = {}) {
  return {
    workspaces: [
      {
        id: 'sdk',
        name: 'SDK tests',
        secrets: [SECRET],
        apiKeys: ['sdk-api-key-0123456789'],
        allowedOrigins: origins,
        rateLimit: { perSecond: 1000, burst: 1000 },
        apps: [
          {
            id: 'story', name: 'Story', type: 'template',
            inputs: [
              { name: 'hero', type: 'string', required: true },
              { name: 'topic', type: 'string', required: true },
            ],
            template: STORY, chunkChars: 3, delayMs: 2,
          },
          {
            id: 'versioned', name: 'Versioned', type: 'template',
            versions: [
              { version: '1', inputs: [], template: 'version one' },
              { version: '2', inputs: [], template: 'version two' },
            ],
          },
          {
            id: 'slow', name: 'Slow', type: 'template', inputs: [],
            template: 'tick '.repeat(400), chunkChars: 5, delayMs: 25,
          },
          {
            id: 'hello', name: 'Public hello', type: 'template', public: true,
            inputs: [{ name: 'name', type: 'string', required: true }],
            template: 'Hello, {{name}}!', chunkChars: 2, delayMs: 1,
          },
          {
            id: 'flood', name: 'Flood', type: 'template', inputs: [],
            template: 'abcdefghij'.repeat(FLOOD_EVENTS / 10), chunkChars: 1, delayMs: 0,
          },
          { id: 'assistant', name: 'Assistant', type: 'agent', model: 'echo', chunkChars: 4, delayMs: 1 },
          // An llm app with no upstream configured: every run fails with a clear error.
          { id: 'broken', name: 'Broken', type: 'llm', inputs: [], prompt: 'anything' },
          { id: 'slowchat', name: 'Slow assistant', type: 'agent', model: 'echo', chunkChars: 2, delayMs: 40 },
        ],
      },
      {
        id: 'tight',
        name: 'Rate-limited',
        secrets: [TIGHT_SECRET],
        apiKeys: ['tight-api-key-0123456789'],
        allowedOrigins: origins,
        rateLimit: { perSecond: 0.5, burst: 2 },
        apps: [{ id: 'hi', name: 'Hi', type: 'template', inputs: [], template: 'hi', chunkChars: 2, delayMs: 0 }],
      },
    ],
  };
}

/**
 * Starts confab-server on 127.0.0.1 with a free port and `config`, through the server suite's own
 * helper (tests/server/helpers.mjs); resolves to {url, port, stop()} once /readyz answers.
 * stop() sends SIGTERM (SIGKILL after a grace period) and removes the data directory.
 */
export async function startServer({ config = testConfig(), args = [] } = {}) {
  serverBin();  // a clear message when the binary is missing
  const server = await startConfabServer({ config, args: ['--no-access-log', ...args] });
  return {
    url: server.url,
    port: server.port,
    stderr: () => server.logs(),
    async stop() {
      await server.stop();
      server.cleanup();
    },
  };
}

/**
 * A TCP proxy to 127.0.0.1:targetPort that, `cuts` times, destroys a connection once
 * `afterBytes` bytes of an event-stream response body went through it: a real dropped connection,
 * in the middle of an event if the bytes fall there. With deadAfterCut, every connection after the
 * first cut is dropped at once (a route that stays down).
 */
export async function startCutProxy(targetPort, { afterBytes = 200, cuts = 1, deadAfterCut = false } = {}) {
  let remaining = cuts;
  let cutCount = 0;
  let refused = 0;
  const sockets = new Set();
  const server = createServer((client) => {
    if (deadAfterCut && cutCount > 0) {
      // Once cut, the route stays down: every new connection is dropped at once.
      refused++;
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    let seen = '';
    let streaming = false;
    let bodyBytes = 0;
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (remaining > 0 && !streaming) {
        seen = (seen + d.toString('latin1')).slice(-4096);
        const at = seen.indexOf('text/event-stream');
        if (at >= 0) {
          const headerEnd = seen.indexOf('\r\n\r\n', at);
          if (headerEnd >= 0) {
            streaming = true;
            bodyBytes = seen.length - (headerEnd + 4);
          }
        }
      } else if (streaming) {
        bodyBytes += d.length;
      }
      if (streaming && remaining > 0 && bodyBytes >= afterBytes) {
        remaining--;
        cutCount++;
        const keep = d.length - (bodyBytes - afterBytes);
        client.write(d.subarray(0, Math.max(0, keep)), () => {
          client.destroy();
          upstream.destroy();
        });
        streaming = false;
        return;
      }
      client.write(d);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    get cuts() { return cutCount; },
    get refused() { return refused; },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

export async function importEsm() {
  return import(join(distDir, 'confab.mjs'));
}

/** Expected rendering of the story template. */
export const storyText = (hero, topic) => STORY.replace('{{hero}}', hero).replace('{{topic}}', topic);

/** Debian's Chromium through playwright-core, with the flags every browser test uses. */
export async function launchChromium() {
  const executablePath = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(`Chromium not found at ${executablePath} (apt-get install chromium, or set CHROMIUM_BIN)`);
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
    timeout: 30000,
  });
}
