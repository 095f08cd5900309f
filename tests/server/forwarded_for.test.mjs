// trustForwardedFor: behind a load balancer (make demo-cluster's nginx) anonymous callers are told
// apart by the address in X-Forwarded-For, but only when the peer is a trusted proxy; otherwise the
// header is the client's own claim and changes nothing.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { WS, startServer, testConfig } from './helpers.mjs';

// One anonymous run of the public app from local address `from`, with X-Forwarded-For `xff`.
function runWelcome(port, { from = '127.0.0.1', xff } = {}) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ inputs: { name: 'x' } });
    const req = http.request({
      host: '127.0.0.1', port, localAddress: from, method: 'POST', path: '/v1/apps/welcome/executions',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
        'X-Confab-Workspace': WS.demo.id, ...(xff ? { 'X-Forwarded-For': xff } : {}) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function config(extra) {
  const cfg = testConfig();
  cfg.workspaces[0].rateLimit = { perSecond: 0.01, burst: 2 };
  return { ...cfg, ...extra };
}

describe('trustForwardedFor on (the peer 127.0.0.2 is the trusted proxy)', () => {
  let srv;
  before(async () => {
    srv = await startServer({ config: config({ trustForwardedFor: true, trustedProxies: ['127.0.0.2'] }) });
  });
  after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

  test('each forwarded client has its own bucket; the proxy\'s own address is not the key', async () => {
    const a = [];
    for (let i = 0; i < 3; i++) a.push(await runWelcome(srv.port, { from: '127.0.0.2', xff: '203.0.113.1' }));
    assert.deepEqual(a, [202, 202, 429], 'client 203.0.113.1: burst 2, then limited');
    // Another client through the same proxy is not limited by the first one.
    assert.equal(await runWelcome(srv.port, { from: '127.0.0.2', xff: '198.51.100.7' }), 202);
    // A client that puts the first one's address left of its own is still itself.
    assert.equal(await runWelcome(srv.port, { from: '127.0.0.2', xff: '203.0.113.1, 198.51.100.8' }), 202);
    assert.equal(await runWelcome(srv.port, { from: '127.0.0.2', xff: '203.0.113.1, 198.51.100.8' }), 202);
    assert.equal(await runWelcome(srv.port, { from: '127.0.0.2', xff: '203.0.113.1, 198.51.100.8' }), 429);
  });

  test('from a peer that is not a trusted proxy the header is ignored', async () => {
    // 127.0.0.1 is not in trustedProxies here: its X-Forwarded-For is the client's own claim.
    const got = [];
    for (const xff of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) got.push(await runWelcome(srv.port, { from: '127.0.0.1', xff }));
    assert.deepEqual(got, [202, 202, 429], 'one bucket: the peer\'s address');
  });
});

describe('trustForwardedFor off (the default)', () => {
  let srv;
  before(async () => { srv = await startServer({ config: config({}) }); });
  after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

  test('X-Forwarded-For changes nothing, even from loopback', async () => {
    const got = [];
    for (const xff of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) got.push(await runWelcome(srv.port, { from: '127.0.0.1', xff }));
    assert.deepEqual(got, [202, 202, 429]);
  });

  test('trustedProxies without trustedUserHeader or trustForwardedFor is a config error', async () => {
    await assert.rejects(startServer({ config: config({ trustedProxies: ['10.0.0.1'] }) }),
      /trustedProxies.*has no effect without trustedUserHeader or trustForwardedFor/);
  });
});
