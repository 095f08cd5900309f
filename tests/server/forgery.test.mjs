// Domain separation of the workspace secret's MACs (issue 12, defect 2): a user hash is
// HMAC(secret, userId), so when v1 tokens and access tokens were MACed with the secret itself, the
// user hash of the id "at1\n<ws>\n<client>\n<expMs>" was a valid access token (full server-to-server
// access) and that of "v1\n<ws>\nalice\n<exp>" was alice's v1 token. A site backend that signs
// whatever id it is given (as the old snippets did) handed those out. Now each kind of token is
// MACed with its own key derived from the secret, and every signer refuses such ids.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { WS, derivedKey, getJson, postJson, startServer, token, userHash } from './helpers.mjs';
import { CLIENT, s2sConfig } from './s2s_helpers.mjs';

const T = { timeout: 30000 };
const CONTROL_MSG = 'user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)';

describe('a user hash never forges a token', () => {
  let srv;
  before(async () => { srv = await startServer({ config: s2sConfig() }); });
  after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

  test('the user hash of "at1\\n<ws>\\n<client>\\n<expMs>" is not an access token (401)', T, async () => {
    const expMs = Date.now() + 3_600_000;
    const forgedMac = userHash(WS.demo.secret, `at1\ndemo\nbackend\n${expMs}`);
    const r = await getJson(`${srv.url}/v1/workflows`, { Authorization: `Bearer at1.demo.backend.${expMs}.${forgedMac}` });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json.code, 'token_invalid');
    // The same token MACed with the access-token key is accepted: the test would see a 200 if the
    // server still MACed with the secret itself.
    const mac = createHmac('sha256', derivedKey(WS.demo.secret, 'access-token-at1'))
      .update(`at1\ndemo\nbackend\n${expMs}`).digest('hex');
    const ok = await getJson(`${srv.url}/v1/workflows`, { Authorization: `Bearer at1.demo.backend.${expMs}.${mac}` });
    assert.equal(ok.status, 200, ok.text);
    // And the server issues tokens of that form.
    const issued = await postJson(`${srv.url}/v1/applications/token`, CLIENT.backend);
    assert.equal(issued.status, 200, issued.text);
    const [, ws, client, exp, gotMac] = issued.json.access_token.split('.');
    assert.equal(gotMac, createHmac('sha256', derivedKey(WS.demo.secret, 'access-token-at1'))
      .update(`at1\n${ws}\n${client}\n${exp}`).digest('hex'));
  });

  test('the user hash of "v1\\n<ws>\\nalice\\n<exp>" is not alice\'s v1 token (401)', T, async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const forged = `v1.${exp}.${userHash(WS.demo.secret, `v1\ndemo\nalice\n${exp}`)}`;
    const headers = (hash) => ({ 'X-Confab-Workspace': 'demo', 'X-Confab-User': 'alice', 'X-Confab-User-Hash': hash });
    const r = await getJson(`${srv.url}/v1/apps/story`, headers(forged));
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json.code, 'identity_bad_signature');
    assert.equal((await getJson(`${srv.url}/v1/apps/story`, headers(token(WS.demo.secret, 'demo', 'alice', exp)))).status, 200);
  });

  test('POST /v1/identity refuses the ids that would be forgeries, with the message of every signer', T, async () => {
    for (const userId of ['at1\ndemo\nbackend\n1767225600000', 'v1\ndemo\nalice\n1767225600',
      'confab-key\u0000identity-token-v1', 'tab\there', 'c1\u0085']) {
      for (const extra of [{}, { ttlSeconds: 60 }]) {
        const r = await postJson(`${srv.url}/v1/identity`, { userId, ...extra }, { Authorization: `Bearer ${WS.demo.apiKey}` });
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.code, 'invalid_request');
        assert.equal(r.json.error, CONTROL_MSG);
      }
    }
  });
});
