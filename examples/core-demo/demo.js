// The core demo page: loads the wasm core, shows a user hash live and parses a sample SSE stream.
/* global createConfabCore */
'use strict';

const SAMPLE_STREAM = [
  ': a comment line (heartbeat), ignored',
  'retry: 3000',
  '',
  'id: 1',
  'event: agent-response',
  'data: {"token":"Hello"}',
  '',
  'id: 2',
  'event: agent-response',
  'data: {"token":" wörld 👋"}',
  '',
  'id: 3',
  'event: agent-action',
  'data: {"tool":"search",',
  'data:  "tool_input":{"q":"confab"}}',
  '',
  'id: 4',
  'event: completed',
  'data: {"result":"Hello wörld 👋","sessionId":"s_1"}',
  '',
  'data: an unfinished event at the end is dropped',
].join('\n');

const $ = (id) => document.getElementById(id);

function setStatus(text, kind) {
  const el = $('status');
  el.textContent = text;
  el.className = 'status ' + kind;
}

// POSIX shell single-quoting, so the shown command can be pasted as is.
function shellQuote(s) {
  return "'" + s.replace(/'/g, "'\\''") + "'";
}

function showIdentity(core) {
  const secret = $('secret').value;
  const user = $('user').value;
  const workspace = $('workspace').value;
  $('hash').textContent = core.userHash(secret, user);
  const expiresAt = Math.floor(Date.now() / 1000) + 3600;
  const token = core.issueToken(secret, workspace, user, expiresAt);
  $('token').textContent = token.ok ? token.value : token.message;
  const check = core.verifyIdentity(workspace, secret, user, token.value, Math.floor(Date.now() / 1000));
  const verify = $('verify');
  verify.textContent = check.ok ? 'accepted' : `rejected: ${check.code} (${check.message})`;
  verify.className = check.ok ? 'verdict-ok' : 'verdict-bad';
  $('shell').textContent = `printf %s ${shellQuote(user)} | openssl dgst -sha256 -hmac ${shellQuote(secret)}`;
}

// Which protocol decoder checks the data of each chat stream event type (DESIGN.md wire protocol).
const EVENT_KINDS = {
  'agent-response': 'agentResponse',
  'agent-action': 'agentAction',
  'agent-action-error': 'agentActionError',
  completed: 'chatCompleted',
  delta: 'delta',
  error: 'apiError',
};

function eventItem(core, ev) {
  const li = document.createElement('li');
  const type = document.createElement('span');
  type.className = 'type';
  type.textContent = ev.type;
  li.append(type);
  if (ev.id !== '') {
    const id = document.createElement('span');
    id.className = 'id';
    id.textContent = `id ${ev.id}`;
    li.append(id);
  }
  const data = document.createElement('pre');
  data.textContent = ev.data;
  li.append(data);
  const kind = EVENT_KINDS[ev.type];
  if (kind) {
    const check = core.decode(kind, ev.data);
    const note = document.createElement('span');
    note.className = check.ok ? 'check verdict-ok' : 'check verdict-bad';
    note.textContent = check.ok ? `valid ${kind}` : `${check.code}: ${check.message}`;
    li.append(note);
  }
  return li;
}

function showStream(core) {
  const bytes = new TextEncoder().encode($('stream').value);
  const size = Number($('chunk').value) || bytes.length || 1;
  const list = $('events');
  const items = [];
  let chunks = 0;
  // An Embind class owns C++ memory: always delete() it, even when feeding fails.
  const parser = new core.SseParser(64 * 1024);
  try {
    for (let at = 0; at < bytes.length; at += size) {
      chunks++;
      const r = parser.feed(bytes.subarray(at, at + size));
      for (const ev of r.events) items.push(eventItem(core, ev));
      if (!r.ok) {
        const li = document.createElement('li');
        li.className = 'error';
        li.textContent = `${r.code}: ${r.message}`;
        items.push(li);
        break;
      }
    }
    parser.finish();
    const retry = parser.retryMs();
    $('sse-meta').textContent =
      `${items.length} event(s) from ${bytes.length} bytes in ${chunks} chunk(s)` +
      ` · last event id ${parser.lastEventId() || '(none)'}` +
      ` · retry ${retry < 0 ? '(none)' : retry + ' ms'}`;
  } finally {
    parser.delete();
  }
  list.replaceChildren(...items);
}

async function main() {
  if (typeof createConfabCore !== 'function') {
    setStatus('confab_core.js did not load (is the wasm build served under /wasm/?)', 'bad');
    return;
  }
  let core;
  try {
    core = await createConfabCore();
  } catch (e) {
    setStatus(`Could not start the wasm core: ${e && e.message ? e.message : e}`, 'bad');
    return;
  }
  setStatus('Core loaded: confab_core.wasm is running in this page.', 'ok');

  for (const id of ['secret', 'user', 'workspace']) $(id).addEventListener('input', () => showIdentity(core));
  showIdentity(core);

  $('stream').value = SAMPLE_STREAM;
  $('stream').addEventListener('input', () => showStream(core));
  $('chunk').addEventListener('change', () => showStream(core));
  showStream(core);
}

main();
