// Parity with the AirOps SDK's documented usage, against a real confab-server: numeric appId and
// workspaceId (as AirOps' samples write them), getResults by executionId alone, `result` both
// awaited and called, the ChatAction export, and errors whose message is the server's own text.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { startServer, importEsm, hmacHex, distDir } from './helpers.mjs';

const SECRET = 'parity-secret-0123456789';
let server;
let sdk;
let Confab;

// A workspace and apps with numeric ids, the way an AirOps customer's ids look.
const config = {
  workspaces: [{
    id: '1234', secrets: [SECRET], allowedOrigins: ['*'], rateLimit: { perSecond: 1000, burst: 1000 },
    apps: [
      { id: '7', type: 'template', inputs: [{ name: 'name', type: 'string', required: true }],
        template: 'Hi {{name}}', chunkChars: 2, delayMs: 1 },
      { id: '42', type: 'agent', model: 'echo', chunkChars: 8, delayMs: 1 },
      { id: '8', type: 'template', inputs: [], template: 'other', chunkChars: 2, delayMs: 1 },
    ],
  }],
};

// String ids here, so that each test below fails for its own reason only; the first test passes numbers.
const identify = (userId = 'ana', workspaceId = '1234') => Confab.identify({
  userId, workspaceId, hashedUserId: hmacHex(SECRET, userId), host: server.url,
});

before(async () => {
  server = await startServer({ config });
  sdk = await importEsm();
  Confab = sdk.default;
});
after(async () => { await server?.stop(); });

describe('AirOps SDK parity', () => {
  it('numeric appId and workspaceId work everywhere an id goes', async () => {
    const c = identify('ana', 1234);
    assert.equal(c.workspaceId, '1234');
    assert.equal((await c.apps.get(7)).id, '7');
    const run = await c.apps.execute({ appId: 7, payload: { inputs: { name: 'Ana' } }, stream: true, streamCallback: () => {} });
    assert.equal((await run.result()).output, 'Hi Ana');
    const chat = await c.apps.chatStream({ appId: 42, message: 'numbers' });
    assert.match((await chat.result).result, /numbers/);
    const sessions = await c.sessions.list({ appId: 42 });
    assert.equal(sessions[0].appId, '42');
    const pub = new Confab({ host: server.url, workspaceId: 1234 });
    assert.equal(pub.workspaceId, '1234');
    assert.throws(() => Confab.identify({ userId: 'u', workspaceId: 1.5, hashedUserId: 'h', host: server.url }),
      (e) => e.code === 'invalid_argument' && /^workspaceId:/.test(e.message));
  });

  it('getResults({executionId}) needs no appId; a wrong appId is still a 404', async () => {
    const c = identify();
    const run = await c.apps.execute({ appId: '7', payload: { inputs: { name: 'Bo' } } });
    await run.result();
    const got = await c.apps.getResults({ executionId: run.executionId });
    assert.equal(got.output, 'Hi Bo');
    assert.equal(got.executionId, run.executionId);
    await assert.rejects(c.apps.getResults({ appId: '8', executionId: run.executionId }),
      (e) => e instanceof sdk.ApiError && e.status === 404);
  });

  it('result is awaited as a property or called, on chat and execute handles alike', async () => {
    const c = identify();
    const chat = await c.apps.chatStream({ appId: '42', message: 'both ways' });
    const asProperty = await chat.result;
    const asCall = await chat.result();
    assert.deepEqual(asCall, asProperty);
    assert.equal(asProperty.status, 'success');
    const run = await c.apps.execute({ appId: '7', payload: { inputs: { name: 'Cy' } } });
    const polled = await run.result;
    assert.equal(polled.output, 'Hi Cy');
    assert.deepEqual(await run.result(), polled);
  });

  it('ChatAction is exported by the ESM, CJS and script-tag builds', async () => {
    const expected = { AgentResponse: 'agent-response', AgentAction: 'agent-action',
      AgentActionError: 'agent-action-error', Completed: 'completed' };
    assert.deepEqual({ ...sdk.ChatAction }, expected);
    assert.equal(Confab.ChatAction, sdk.ChatAction);
    const cjs = createRequire(import.meta.url)(join(distDir, 'confab.cjs'));
    assert.deepEqual({ ...cjs.ChatAction }, expected);
    const events = [];
    const chat = await identify().apps.chatStream({ appId: '42', message: 'x', streamCallback: (e) => events.push(e.action) });
    await chat.result;
    assert.ok(events.length > 0 && events.every((a) => a === sdk.ChatAction.AgentResponse));
  });

  it('an error\'s message is the server\'s text; status and code stay on the error', async () => {
    const c = identify();
    await assert.rejects(c.apps.execute({ appId: '7', payload: { inputs: {} } }), (e) => {
      assert.ok(e instanceof sdk.ApiError);
      assert.equal(e.status, 400);
      assert.equal(e.code, 'invalid_request');
      assert.equal(e.message, e.body.error, 'the message is the body\'s error, nothing added');
      assert.match(e.message, /name/);
      return true;
    });
    const bad = Confab.identify({ userId: 'ana', workspaceId: '1234', hashedUserId: hmacHex('wrong', 'ana'), host: server.url });
    await assert.rejects(bad.apps.get('7'), (e) => e instanceof sdk.IdentityError && e.status === 401 &&
      e.message === e.body.error && !/^HTTP/.test(e.message));
  });
});
