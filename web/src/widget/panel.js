// The widget's panel (dist/confab-widget-panel.js, loaded by the shell on first open or when idle):
// the chat dialog, the SDK, and the wasm core with the streaming Markdown renderer.
//
// A reply streams into the wasm StreamRenderer: the stable HTML it hands back is appended to the
// DOM once, only the open tail is replaced. Both go through the shell's Trusted Types policy (the
// renderer's output is safe by construction). The conversation survives a reload: the session id
// and, while a reply streams, its execution id, last applied event seq and text so far are kept
// in localStorage (keyed by host, workspace, user and app), so a reload shows the history and
// resumes the reply after that seq (Last-Event-ID): nothing lost, nothing twice.
import Confab from '../confab.js';
import { loadCore } from '../core.js';
import { consumeStream } from '../stream.js';
import { AbortError, ApiError, ConfabError, IdentityError } from '../errors.js';
import { requestJson } from '../http.js';
import { panelCss } from './styles.js';
import { MarkdownStream, MarkdownView, renderMarkdown } from './markdown.js';

const SEND_ICON = 'M3.4 20.4 21 12 3.4 3.6 3.4 10.1 15 12 3.4 13.9z';
const STOP_ICON = 'M7 7h10v10H7z';
const NEW_ICON = 'M19 13h-6v6h-2v-6H5v-2h6V5h2v6h6z';
const PERSIST_MS = 250;

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === true) el.setAttribute(k, '');
    else if (v !== false && v !== undefined && v !== null) el.setAttribute(k, v);
  }
  el.append(...children);
  return el;
}

// localStorage may be missing or throw (privacy modes, sandboxed frames): then memory only.
const memory = new Map();
const store = {
  get(key) {
    try {
      const v = globalThis.localStorage.getItem(key);
      return v ? JSON.parse(v) : {};
    } catch {
      return memory.get(key) || {};
    }
  },
  set(key, value) {
    try {
      globalThis.localStorage.setItem(key, JSON.stringify(value));
    } catch {
      memory.set(key, value);
    }
  },
};

class Panel {
  constructor({ element, root, box, launcher, policy, sheet, icon, CLOSE_ICON, mark }) {
    this.el = element;
    this.root = root;
    this.box = box;
    this.launcher = launcher;
    this.policy = policy;
    this.mark = mark;
    this.ready = null;        // the init promise
    this.busy = false;
    this.turn = null;         // {executionId, sessionId, message, seq, text} of the reply streaming now
    this.abort = null;
    this.sessionId = undefined;
    this.persistTimer = null;
    this.gen = 0;             // bumped by reset(): a turn of an older conversation must not touch state
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet(panelCss)];

    const btn = (cls, label, d) => {
      const b = h('button', { type: 'button', class: cls, 'aria-label': label, title: label });
      b.append(icon(d));
      return b;
    };
    this.title = h('h2', { id: 'cf-title' });
    this.newBtn = btn('icon', 'New conversation', NEW_ICON);
    this.closeBtn = btn('icon', 'Close chat', CLOSE_ICON);
    this.banner = h('div', { class: 'banner', role: 'status', hidden: true });
    this.log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation', tabindex: '0' });
    this.input = h('textarea', { id: 'cf-input', rows: '1', enterkeyhint: 'send', autocomplete: 'off' });
    this.sendBtn = btn('send', 'Send message', SEND_ICON);
    this.sendBtn.type = 'submit';
    this.stopBtn = btn('send stop', 'Stop the reply', STOP_ICON);
    this.stopBtn.hidden = true;
    this.form = h('form', {}, h('label', { class: 'sr', for: 'cf-input' }, 'Message'), this.input, this.sendBtn, this.stopBtn);
    this.panel = h('div', { class: 'panel', id: 'cf-panel', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'cf-title', hidden: true },
      h('header', {}, this.title, this.newBtn, this.closeBtn), this.banner, this.log, this.form);
    box.insertBefore(this.panel, launcher);
    launcher.setAttribute('aria-controls', 'cf-panel');

    this.closeBtn.addEventListener('click', () => this.close());
    this.newBtn.addEventListener('click', () => this.reset());
    this.stopBtn.addEventListener('click', () => this.stop());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    this.input.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter is a new line; an IME composition's Enter is the IME's.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener('input', () => this.grow());
    this.panel.addEventListener('keydown', (e) => this.onKey(e));
    addEventListener('online', () => this.onNetwork());
    addEventListener('offline', () => this.onNetwork());
    // The last token's state, written now rather than at the next throttled write.
    addEventListener('pagehide', () => this.persist());
    this.update();
  }

  get cfg() { return this.el.config; }

  update() {
    const c = this.cfg;
    this.title.textContent = c.title;
    this.input.placeholder = c.placeholder;
    this.input.setAttribute('aria-label', `Message ${c.title}`);
  }

  isOpen() { return !this.panel.hidden; }

  async open({ focus = true } = {}) {
    this.panel.hidden = false;
    this.box.classList.add('open');
    this.launcher.setAttribute('aria-expanded', 'true');
    this.launcher.setAttribute('aria-label', 'Close chat');
    this.el._rememberOpen(true);
    if (focus) this.input.focus();
    this.onNetwork();
    try {
      await this.init();
      this.mark('panel-ready');
    } catch (e) {
      this.showBanner('error', `Could not connect: ${e.message}`, () => this.open());
    }
  }

  close() {
    this.panel.hidden = true;
    this.box.classList.remove('open');
    this.launcher.setAttribute('aria-expanded', 'false');
    this.launcher.setAttribute('aria-label', `Open chat: ${this.cfg.title}`);
    this.el._rememberOpen(false);
    this.launcher.focus();
  }

  onKey(e) {
    if (e.key === 'Escape') {
      e.preventDefault();
      this.close();
      return;
    }
    if (e.key !== 'Tab') return;
    // Focus stays in the open dialog: Tab from the last control goes to the first and back.
    const items = [...this.panel.querySelectorAll('button, textarea, a[href], [tabindex="0"]')]
      .filter((x) => !x.closest('[hidden]') && x.getClientRects().length > 0);
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    const active = this.root.activeElement;
    if (e.shiftKey && (active === first || !items.includes(active))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (active === last || !items.includes(active))) {
      e.preventDefault();
      first.focus();
    }
  }

  grow() {
    // rows, not a style height: no style= attributes under a strict CSP.
    const lines = this.input.value.split('\n').length;
    this.input.rows = Math.min(6, Math.max(1, lines));
  }

  // ---- connection: identity, client, history, a reply to resume ----

  init() {
    if (!this.ready) {
      this.ready = this.connect().catch((e) => {
        this.ready = null;  // the next open or send tries again
        throw e;
      });
    }
    return this.ready;
  }

  async fetchIdentity() {
    const c = this.cfg;
    if (typeof c.identity === 'function') return c.identity();
    if (c.identity) return c.identity;
    if (!c.identityUrl) return null;  // anonymous: public apps of workspaceId
    const res = await fetch(c.identityUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) throw new ConfabError(`the identity URL answered HTTP ${res.status}`, { code: 'identity_unavailable' });
    const id = await res.json();
    if (!id || typeof id.userId !== 'string' || typeof id.hashedUserId !== 'string') {
      throw new ConfabError('the identity URL must answer {userId, workspaceId, hashedUserId}', { code: 'identity_unavailable' });
    }
    return id;
  }

  async identify() {
    const c = this.cfg;
    const id = await this.fetchIdentity();
    const host = c.host || (id && id.host) || undefined;
    const workspaceId = (id && id.workspaceId) || c.workspaceId;
    this.client = id
      ? Confab.identify({ userId: id.userId, workspaceId, hashedUserId: id.hashedUserId, host })
      : new Confab({ host, workspaceId });
    this.key = `confab.widget|${this.client._client.host}|${workspaceId}|${(id && id.userId) || ''}|${c.appId}`;
  }

  // Runs fn with the client; an expired identity (a v1 token's end) is fetched again once.
  async withIdentity(fn) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof IdentityError)) throw e;
      await this.identify();
      return fn();
    }
  }

  async connect() {
    if (!this.cfg.appId) throw new ConfabError('app-id is not set', { code: 'invalid_argument' });
    const [core] = await Promise.all([loadCore(), this.identify()]);
    this.core = core;
    const saved = store.get(this.key);
    this.log.replaceChildren();
    this.sessionId = undefined;
    let history = [];
    if (saved.sessionId) {
      try {
        const session = await this.withIdentity(() => this.client.sessions.get(saved.sessionId));
        this.sessionId = saved.sessionId;
        history = (session && session.messages) || [];
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
        store.set(this.key, {});  // deleted or expired on the server: start afresh
      }
    }
    if (!history.length) this.greet();
    for (const m of history) {
      if (m.role === 'user') this.addUser(m.content);
      else if (m.role === 'assistant') this.addAssistant(renderMarkdown(core, m.content));
    }
    const t = saved.inflight;
    const last = history[history.length - 1];
    // The reply of the last user message was still streaming when the page went away: follow it.
    // (A reply that completed meanwhile is already in the history as the assistant's message.)
    if (t && t.executionId && t.sessionId === this.sessionId && last && last.role === 'user') {
      this.resumeTurn({ ...t, message: last.content });  // the message, for Retry if the reply failed
    } else if (t) {
      this.persist();
    }
    this.scroll(true);
  }

  greet() {
    const g = this.cfg.greeting;
    if (g) this.log.append(h('div', { class: 'msg assistant greeting' }, g));
  }

  addUser(text) {
    const el = h('div', { class: 'msg user' }, text);
    this.log.append(el);
    return el;
  }

  addAssistant(html) {
    const md = h('div', { class: 'md' });
    md.innerHTML = this.policy.createHTML(html);
    const el = h('div', { class: 'msg assistant' }, md);
    this.log.append(el);
    return el;
  }

  scroll(force) {
    const l = this.log;
    if (force || l.scrollHeight - l.scrollTop - l.clientHeight < 80) l.scrollTop = l.scrollHeight;
  }

  // ---- storage ----

  persist() {
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persistTimer = null;
    if (!this.key) return;
    const t = this.turn;
    const inflight = t && t.executionId
      ? { executionId: t.executionId, sessionId: t.sessionId, seq: t.seq, text: t.text } : undefined;
    store.set(this.key, { sessionId: this.sessionId, inflight });
  }

  persistSoon() {
    if (!this.persistTimer) this.persistTimer = setTimeout(() => this.persist(), PERSIST_MS);
  }

  // ---- states ----

  setBusy(busy) {
    this.busy = busy;
    this.sendBtn.hidden = busy;
    this.stopBtn.hidden = !busy;
    this.stopBtn.removeAttribute('aria-disabled');
    if (!busy && this.root.activeElement === this.stopBtn) this.input.focus();
  }

  showBanner(kind, text, retry) {
    const b = this.banner;
    b.className = `banner ${kind}`;
    b.replaceChildren(h('span', {}, text));
    if (retry) {
      const r = h('button', { type: 'button', class: 'retry' }, 'Retry');
      r.addEventListener('click', () => {
        this.hideBanner();
        retry();
      });
      b.append(r);
    }
    b.hidden = false;
  }

  hideBanner() {
    this.banner.hidden = true;
    this.banner.replaceChildren();
  }

  onNetwork() {
    if (navigator.onLine === false) {
      this.showBanner('offline', 'You are offline. Messages will send when the connection is back.');
    } else if (this.banner.classList.contains('offline')) {
      this.hideBanner();
      if (this.retryWhenOnline) {
        const r = this.retryWhenOnline;
        this.retryWhenOnline = null;
        r();
      }
    }
  }

  // ---- a turn ----

  async send() {
    const text = this.input.value;
    if (this.busy || !text.trim()) return;
    if (navigator.onLine === false) {
      this.onNetwork();
      return;
    }
    try {
      await this.init();
    } catch (e) {
      this.showBanner('error', `Could not connect: ${e.message}`, () => this.send());
      return;
    }
    this.input.value = '';
    this.grow();
    this.addUser(text);
    this.scroll(true);
    await this.runTurn(text);
  }

  // The reply bubble: a typing indicator until the first token, then the rendered Markdown.
  replyView() {
    const typing = h('span', { class: 'typing', role: 'img', 'aria-label': 'Assistant is typing' }, h('i'), h('i'), h('i'));
    const el = h('div', { class: 'msg assistant', 'aria-busy': 'true' }, typing);
    const dom = new MarkdownView(el, this.policy);
    const { md } = dom;
    this.log.append(el);
    this.scroll(true);
    const renderer = new MarkdownStream(this.core);
    const show = (out) => dom.show(out);
    return {
      el,
      token: (s) => {
        if (typing.isConnected) typing.remove();
        show(renderer.append(s));
        this.scroll(false);
      },
      end: (note, retry) => {
        if (renderer.ptr) {
          show(renderer.finish());
          renderer.delete();
        }
        typing.remove();
        dom.close();
        el.removeAttribute('aria-busy');
        if (!md.firstChild && !note) el.remove();
        if (note) {
          const n = h('span', { class: 'note' }, note);
          if (retry) {
            el.classList.add('failed');
            const r = h('button', { type: 'button', class: 'retry' }, 'Retry');
            r.addEventListener('click', () => {
              el.remove();
              retry();
            });
            n.append(r);
          }
          el.append(n);
        }
        this.scroll(false);
      },
    };
  }

  async runTurn(message) {
    const gen = this.gen;
    this.setBusy(true);
    const view = this.replyView();
    const turn = { executionId: null, sessionId: null, seq: 0, text: '', message };
    this.turn = turn;
    const ac = new AbortController();
    this.abort = ac;
    let result;
    try {
      const handle = await this.withIdentity(() => this.client.apps.chatStream({
        appId: this.cfg.appId,
        message,
        sessionId: this.sessionId,
        signal: ac.signal,
        streamCallback: (ev) => {
          if (ev.seq) turn.seq = ev.seq;
          if (ev.action === 'agent-response' && ev.token) {
            turn.text += ev.token;
            view.token(ev.token);
          }
          this.persistSoon();
        },
      }));
      turn.executionId = handle.executionId;
      turn.sessionId = this.sessionId = handle.sessionId || this.sessionId;
      this.persist();
      result = await handle.result;
    } catch (e) {
      if (gen !== this.gen) view.end();  // a new conversation began: just free the renderer
      else this.failTurn(view, turn, e, () => (turn.executionId ? this.resumeTurn(turn) : this.runTurn(message)));
      return;
    }
    if (gen !== this.gen) view.end();
    else this.endTurn(view, result, () => this.runTurn(message));
  }

  /** Follows a reply that started before (a reload, or a failed stream): from turn.seq on. */
  async resumeTurn(turn) {
    const gen = this.gen;
    this.setBusy(true);
    this.turn = turn;
    const view = this.replyView();
    if (turn.text) view.token(turn.text);
    const ac = new AbortController();
    this.abort = ac;
    let completed;
    try {
      completed = await this.follow(turn, ac.signal, (token) => view.token(token));
    } catch (e) {
      if (gen !== this.gen) {
        view.end();
      } else if (e instanceof ApiError && e.status === 404) {
        // The run is gone (another user's, or deleted): nothing to resume.
        this.endTurn(view, { status: 'error', error: 'this reply is no longer available' }, null);
      } else {
        this.failTurn(view, turn, e, () => this.resumeTurn(turn));
      }
      return;
    }
    if (gen !== this.gen) view.end();
    else this.endTurn(view, { status: completed.status || 'success', error: completed.error, sessionId: completed.sessionId },
      turn.message ? () => this.runTurn(turn.message) : null);
  }

  endTurn(view, r, retry) {
    this.abort = null;
    this.turn = null;
    if (r.sessionId) this.sessionId = r.sessionId;
    this.persist();
    this.setBusy(false);
    if (r.status === 'cancelled') view.end('Stopped');
    else if (r.status === 'error') view.end(`The reply failed: ${r.error || 'unknown error'}`, retry);
    else view.end();
  }

  failTurn(view, turn, e, retry) {
    this.abort = null;
    this.setBusy(false);
    if (e instanceof AbortError) {
      // Stopped before the server said which run it was, or a new conversation: nothing to resume.
      this.turn = null;
      this.persist();
      view.end('Stopped');
      return;
    }
    this.persist();  // keeps the in-flight record: a reload resumes it too
    view.end(navigator.onLine === false ? 'Connection lost.' : `Something went wrong: ${e.message}`, retry);
    if (navigator.onLine === false) {
      this.retryWhenOnline = () => { view.el.remove(); retry(); };
      this.onNetwork();
    }
  }

  // Follows the reply after turn.seq with the SDK's own stream reader (reconnects, each event once,
  // in order): the wasm transcript continues after the events shown before the reload. Returns
  // the "completed" payload.
  async follow(turn, signal, onToken) {
    const transcript = this.core.transcript();
    try {
      transcript.continueAfter(turn.seq, turn.text);
      // A 401 (identity expired): fetch it again once and go on from where the transcript is.
      return await this.withIdentity(() => consumeStream(this.client._client, this.core, {
        first: null, executionId: turn.executionId, transcript, signal,
        onEvent: (type, data, seq) => {
          turn.seq = seq;
          if (type === 'agent-response' && typeof data.token === 'string') {
            turn.text += data.token;
            onToken(data.token);
          }
          this.persistSoon();
        },
      }));
    } finally {
      transcript.delete();
    }
  }

  /** Stop: cancels the run on the server (POST /v1/executions/{id}/cancel); the stream then ends "cancelled". */
  async stop() {
    if (!this.busy) return;
    this.stopBtn.setAttribute('aria-disabled', 'true');
    const ac = this.abort;
    const id = this.turn && this.turn.executionId;
    if (!id) {
      if (ac) ac.abort();
      return;
    }
    // If the server's "completed" does not arrive soon (offline), stop reading anyway.
    const timer = setTimeout(() => ac && ac.abort(), 3000);
    try {
      await this.withIdentity(() => requestJson(this.client._client, {
        method: 'POST', path: `/v1/executions/${encodeURIComponent(id)}/cancel`, idempotent: true,
      }));
    } catch (e) {
      // 409: it finished first, which is what stop asks for.
      if (!(e instanceof ApiError && e.status === 409) && ac) ac.abort();
    } finally {
      if (!this.busy || this.abort !== ac) clearTimeout(timer);
    }
  }

  /** New conversation: stops a streaming reply and forgets the session. */
  async reset() {
    if (this.busy) await this.stop();
    if (this.abort) this.abort.abort();
    this.gen += 1;
    this.abort = null;
    this.setBusy(false);
    this.turn = null;
    this.sessionId = undefined;
    this.persist();
    this.log.replaceChildren();
    this.hideBanner();
    this.greet();
    this.input.focus();
  }
}

const factory = (ctx) => new Panel(ctx);
const reg = globalThis[Symbol.for('confab.widget')];
if (reg && reg.define) reg.define(factory);
else (globalThis[Symbol.for('confab.widget')] = { factory, waiters: [] });

export default factory;
