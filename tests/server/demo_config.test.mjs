// examples/config/demo.json (what `make demo` runs, also embedded as the default config): both
// workspaces and their apps work, and the demo's curl (sign + chat stream) does what it says.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { REPO, getJson, postJson, readSse, startServer, streamText, userHash } from './helpers.mjs';

const T = { timeout: 20000 };
const demo = JSON.parse(readFileSync(path.join(REPO, 'examples/config/demo.json'), 'utf8'));

function headersFor(ws, user) {
  return { 'X-Confab-Workspace': ws.id, 'X-Confab-User': user, 'X-Confab-User-Hash': userHash(ws.secrets[0], user) };
}

for (const [label, config] of [['examples/config/demo.json', demo], ['the embedded default', null]]) {
  test(`${label}: two workspaces, template/agent/llm apps, a public app`, T, async () => {
    const srv = await startServer({ config });
    try {
      assert.equal(demo.workspaces.length, 2);
      for (const ws of demo.workspaces) {
        const types = new Set();
        for (const app of ws.apps) {
          const r = await getJson(`${srv.url}/v1/apps/${app.id}`, headersFor(ws, 'alice'));
          assert.equal(r.status, 200, `${ws.id}/${app.id}: ${r.text}`);
          types.add(r.json.type);
        }
        for (const t of ['template', 'agent', 'llm']) assert.ok(types.has(t), `${ws.id} has a ${t} app`);
        const key = await postJson(`${srv.url}/v1/identity`, { userId: 'alice' }, { Authorization: `Bearer ${ws.apiKeys[0]}` });
        assert.equal(key.json.hashedUserId, userHash(ws.secrets[0], 'alice'));
      }
      const [ws] = demo.workspaces;
      // The chat that `make demo` prints.
      const chat = await readSse(`${srv.url}/v1/apps/assistant/chat`, {
        method: 'POST', headers: headersFor(ws, 'alice'), body: { message: 'Hello, **Confab**!' },
      });
      assert.equal(chat.events.at(-1).json.status, 'success');
      assert.ok(streamText(chat.events).includes('Hello, **Confab**!'));
      // One public app runs anonymously.
      const pub = ws.apps.find((a) => a.public);
      assert.ok(pub, 'a public app');
      const inputs = Object.fromEntries((pub.inputs ?? []).map((i) => [i.name, 'Visitor']));
      const run = await postJson(`${srv.url}/v1/apps/${pub.id}/executions?wait=true`, { inputs }, { 'X-Confab-Workspace': ws.id });
      assert.equal(run.json.status, 'success', run.text);
      // Isolation between the two workspaces.
      const other = demo.workspaces[1];
      const cross = await getJson(`${srv.url}/v1/executions/${run.json.id}`, headersFor(other, 'alice'));
      assert.equal(cross.status, 404);
      // Without an upstream, llm apps fail with a clear error rather than hang.
      const llmApp = ws.apps.find((a) => a.type === 'llm');
      const llmInputs = Object.fromEntries((llmApp.inputs ?? []).map((i) => [i.name, 'x']));
      const llm = await postJson(`${srv.url}/v1/apps/${llmApp.id}/executions?wait=true`, { inputs: llmInputs }, headersFor(ws, 'alice'));
      if (!process.env.CONFAB_LLM_BASE_URL) {
        assert.equal(llm.json.status, 'error');
        assert.ok(llm.json.error.length > 0);
      }
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
}
