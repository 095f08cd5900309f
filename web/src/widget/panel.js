// The widget's panel (dist/confab-widget-panel.js, loaded by the shell on first open or when idle):
// the chat dialog, the SDK, and the wasm core with the streaming Markdown renderer.
//
// A reply streams into the wasm StreamRenderer: the stable HTML it hands back is appended to the
// DOM once, only the open tail is replaced. Both go through the shell's Trusted Types policy (the
// renderer's output is safe by construction) and enhance.js. The conversation survives a reload:
// the session id and, while a turn runs, its idempotency key, message, execution id, last applied
// event seq and text so far are kept in localStorage (keyed by host, workspace, user and app), so a
// reload shows the history and resumes the reply after that seq (Last-Event-ID): nothing lost,
// nothing twice. Every turn carries an Idempotency-Key: Retry sends the same key, so the server
// treats it as the same turn (the message is stored once).
//
// Visitors see short messages in their language; what a developer needs to fix goes to the console.
import Confab from '../confab.js';
import { loadCore } from '../core.js';
import { consumeStream } from '../stream.js';
import { AbortError, ApiError, ConfabError, IdentityError } from '../errors.js';
import { requestJson } from '../http.js';
import { panelCss } from './styles.js';
import { MarkdownStream, MarkdownView, renderMarkdown } from './markdown.js';
import { Enhancer, COPY_ICON, CHECK_ICON } from './enhance.js';
import { loadLocale, pickLocale, translator } from './strings.js';

// Where this script was loaded from: the bundled locales are next to it.
const PANEL_SRC = document.currentScript && document.currentScript.src;

const SEND_ICON = 'M3.4 20.4 21 12 3.4 3.6 3.4 10.1 15 12 3.4 13.9z';
const STOP_ICON = 'M7 7h10v10H7z';
const NEW_ICON = 'M19 13h-6v6h-2v-6H5v-2h6V5h2v6h6z';
const HISTORY_ICON = 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 2a8 8 0 1 1 0 16 8 8 0 0 1 0-16zm-1 3v6l5 3 1-1.7-4-2.3V7z';
const BACK_ICON = 'M20 11H8l5-5-1.4-1.4L4 12l7.6 7.6L13 18l-5-5h12z';
const UP_ICON = 'M2 21h4V9H2zm20-10a2 2 0 0 0-2-2h-6l1-5-1.5-1.5L7 9v12h11l4-9z';
const REGEN_ICON = 'M17.7 6.3A8 8 0 1 0 20 12h-2a6 6 0 1 1-1.8-4.2L13 11h7V4z';
const EDIT_ICON = 'M3 17v4h4L18 10l-4-4zM21 7l-4-4-2 2 4 4z';
const JUMP_ICON = 'M11 4h2v12l5-5 1.4 1.4L12 20l-7.4-7.6L6 11l5 5z';
const PERSIST_MS = 250;
const IDENTITY_SHAPE = 'it must answer JSON {userId, workspaceId, hashedUserId} (check data-identity-url)';

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

const newKey = () => (globalThis.crypto && crypto.randomUUID ? crypto.randomUUID()
  : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`);

// The developer's half of an error: logged once per distinct text, prefixed so it is easy to find.
const warned = new Set();
function devWarn(text) {
  if (warned.has(text)) return;
  warned.add(text);
  console.warn(`[confab widget] ${text}`);
}

class Panel {
  constructor({ element, root, box, launcher, policy, sheet, icon, CLOSE_ICON, mark }) {
    this.el = element;
    this.root = root;
    this.box = box;
    this.launcher = launcher;
    this.policy = policy;
    this.icon = icon;
    this.mark = mark;
    this.ready = null;        // the init promise
    this.busy = false;
    this.turn = null;         // {key, message, executionId, sessionId, seq, text} of the turn running now
    this.abort = null;
    this.sessionId = undefined;
    this.persistTimer = null;
    this.gen = 0;             // bumped when the conversation changes: an older turn must not touch state
    this.app = {};
    this.editing = null;      // the user row being edited (edit-and-resend)
    this.queued = false;      // Enter while a reply streams: send when it ends
    this.locale = pickLocale(this.cfg.lang);
    this.t = translator('en', this.cfg.strings);  // until the visitor's locale has loaded
    this.enhancer = new Enhancer(policy, this.t, icon);
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet(panelCss)];

    const btn = (cls, label, d) => {
      const b = h('button', { type: 'button', class: cls });
      b.dataset.label = label;
      b.append(icon(d));
      return b;
    };
    this.title = h('h2', { id: 'cf-title' });
    this.avatar = h('img', { class: 'avatar', alt: '', hidden: true });
    this.historyBtn = btn('icon', 'history', HISTORY_ICON);
    this.backBtn = btn('icon flip', 'back', BACK_ICON);
    this.backBtn.hidden = true;
    this.newBtn = btn('icon', 'newChat', NEW_ICON);
    this.closeBtn = btn('icon', 'close', CLOSE_ICON);
    this.banner = h('div', { class: 'banner', role: 'status', hidden: true });
    this.log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', tabindex: '0' });
    this.jump = btn('jump', 'toBottom', JUMP_ICON);
    this.jump.hidden = true;
    this.jump.append(h('span'));
    this.history = h('ul', { class: 'history', hidden: true });
    this.main = h('div', { class: 'main' }, this.log, this.jump, this.history);
    this.input = h('textarea', { id: 'cf-input', rows: '1', enterkeyhint: 'send', autocomplete: 'off', dir: 'auto' });
    this.sendBtn = btn('send', 'send', SEND_ICON);
    this.sendBtn.type = 'submit';
    this.stopBtn = btn('send stop', 'stop', STOP_ICON);
    this.stopBtn.hidden = true;
    this.inputLabel = h('label', { class: 'sr', for: 'cf-input' });
    this.form = h('form', {}, this.inputLabel, this.input, this.sendBtn, this.stopBtn);
    this.panel = h('div', { class: 'panel', id: 'cf-panel', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'cf-title', hidden: true },
      h('header', {}, this.backBtn, this.avatar, this.title, this.historyBtn, this.newBtn, this.closeBtn), this.banner, this.main, this.form);
    box.insertBefore(this.panel, launcher);
    launcher.setAttribute('aria-controls', 'cf-panel');
    this.localize();

    this.closeBtn.addEventListener('click', () => this.close());
    this.newBtn.addEventListener('click', () => this.reset());
    this.historyBtn.addEventListener('click', () => this.showHistory());
    this.backBtn.addEventListener('click', () => this.hideHistory());
    this.stopBtn.addEventListener('click', () => this.stop());
    this.jump.addEventListener('click', () => this.scroll(true));
    this.log.addEventListener('scroll', () => this.onScroll());
    this.log.addEventListener('click', (e) => this.onAction(e));
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    this.input.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter is a new line; an IME composition's Enter is the IME's.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      } else if (e.key === 'Escape' && this.editing) {
        e.preventDefault();
        e.stopPropagation();
        this.cancelEdit();
      }
    });
    this.input.addEventListener('input', () => this.grow());
    this.panel.addEventListener('keydown', (e) => this.onKey(e));
    addEventListener('online', () => this.onNetwork());
    addEventListener('offline', () => this.onNetwork());
    // The last token's state, written now rather than at the next throttled write.
    addEventListener('pagehide', () => this.persist());
    setInterval(() => { if (this.isOpen()) this.refreshTimes(); }, 30000);
  }

  get cfg() { return this.el.config; }

  /** The labels of the panel's fixed controls, in the current locale. */
  localize() {
    const t = this.t;
    for (const b of this.panel.querySelectorAll('button[data-label]')) {
      b.setAttribute('aria-label', t(b.dataset.label));
      b.title = t(b.dataset.label);
    }
    this.panel.lang = t.locale;
    this.log.setAttribute('aria-label', t('conversation'));
    this.history.setAttribute('aria-label', t('history'));
    this.inputLabel.textContent = t('message');
    this.enhancer.t = t;
    this.update();
  }

  /** The visitor's locale (fetched next to the panel unless English); English if it cannot load. */
  async loadStrings() {
    if (this.locale === 'en') return;
    try {
      this.t = translator(this.locale, this.cfg.strings, await loadLocale(this.locale, PANEL_SRC));
    } catch (e) {
      devWarn(`the ${this.locale} strings (confab-widget-lang-${this.locale}.json next to the panel) could not load: ${e.message}`);
      return;
    }
    this.localize();
  }

  update() {
    const c = this.cfg;
    const title = c.title !== 'Chat' || !this.app.name ? c.title : this.app.name;
    this.title.textContent = title;
    this.input.placeholder = c.placeholder || this.t('message');
    this.input.setAttribute('aria-label', `${this.t('message')}: ${title}`);
    const avatar = c.avatar || this.app.avatarUrl;
    this.avatar.hidden = !avatar;
    if (avatar) this.avatar.src = avatar;
    this.enhancer.hosts = [...c.imageHosts, ...(Array.isArray(this.app.imageHosts) ? this.app.imageHosts : [])];
    this.el._applyLook();
    this.el._labelLauncher();
  }

  launcherLabel() {
    const n = this.el._unread;
    const label = this.t('open', { title: this.title.textContent || this.cfg.title });
    return n ? `${label} (${this.t('unread', { n })})` : label;
  }

  isOpen() { return !this.panel.hidden; }

  async open({ focus = true } = {}) {
    this.panel.hidden = false;
    this.box.classList.add('open');
    this.launcher.setAttribute('aria-expanded', 'true');
    this.launcher.setAttribute('aria-label', this.t('close'));
    this.el._rememberOpen(true);
    this.el._setUnread(0);
    if (focus) this.input.focus();
    this.onNetwork();
    this.refreshTimes();
    try {
      await this.init();
      this.mark('panel-ready');
    } catch (e) {
      this.showError(e, () => this.open());
    }
  }

  close() {
    this.panel.hidden = true;
    this.box.classList.remove('open');
    this.launcher.setAttribute('aria-expanded', 'false');
    this.el._rememberOpen(false);
    this.el._labelLauncher();
    this.launcher.focus();
  }

  onKey(e) {
    if (e.key === 'Escape') {
      e.preventDefault();
      if (!this.history.hidden) this.hideHistory();
      else this.close();
      return;
    }
    if (e.key !== 'Tab') return;
    // Focus stays in the open dialog: Tab from the last control goes to the first and back.
    const items = [...this.panel.querySelectorAll('button, textarea, input, a[href], [tabindex="0"]')]
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

  // ---- connection: identity, client, app, history, a reply to resume ----

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
    let res;
    try {
      res = await fetch(c.identityUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch (e) {
      throw new ConfabError(`identity URL ${c.identityUrl} failed: ${e.message}`, { code: 'identity_unavailable' });
    }
    if (!res.ok) {
      throw new ConfabError(`the identity URL ${c.identityUrl} answered HTTP ${res.status}: ${IDENTITY_SHAPE}`, { code: 'identity_unavailable' });
    }
    const id = await res.json().catch(() => null);
    if (!id || typeof id.userId !== 'string' || typeof id.hashedUserId !== 'string') {
      throw new ConfabError(`the identity URL ${c.identityUrl}: ${IDENTITY_SHAPE}`, { code: 'identity_unavailable' });
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
    this.workspaceId = workspaceId;
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
    const [core] = await Promise.all([loadCore(), this.identify(), this.loadStrings()]);
    this.core = core;
    const saved = store.get(this.key);
    // The app's name, avatar, starters and image hosts: not worth a wait before a new conversation
    // (the starters appear when they arrive), but a stored one renders with them (its images).
    const info = this.loadInfo();
    const session = saved.sessionId ? (await Promise.all([this.loadSession(saved.sessionId), info]))[0] : null;
    if (!session) {
      info.then(() => {
        if (!this.rows().length && !this.log.querySelector('.starters')) this.showStarters();
      });
    }
    this.sessionId = session ? saved.sessionId : undefined;
    const history = (session && session.messages) || [];
    this.render(history);
    const t = saved.inflight;
    const last = history[history.length - 1];
    if (t && t.executionId && t.sessionId === this.sessionId && last && last.role === 'user') {
      // The reply of the last user message was still streaming when the page went away: follow it.
      // (A reply that ended meanwhile is already in the history as the assistant's message.)
      this.resumeTurn({ ...t, message: t.message || last.content });
    } else if (t && !t.executionId && t.key && t.message && !(last && last.role === 'user' && last.content === t.message)) {
      // The turn never reached the server (offline, a failure before it answered): show it, not sent.
      const row = this.addUser(t.message, Date.now());
      this.turn = null;
      this.markNotSent(row, t);
    } else if (t) {
      this.persist();
    }
    this.scroll(true);
  }

  /**
   * The app's info; never rejects. A failure the visitor would also meet when sending (server
   * unreachable, origin or identity refused) shows now, with Retry; other ones only warn.
   */
  loadInfo() {
    this.info = this.withIdentity(() => this.client.apps.get(this.cfg.appId)).then((app) => {
      this.app = app || {};
      this.update();
    }, (e) => {
      if (e instanceof ApiError && e.status === 404) devWarn(`${e.message}: check app-id and the workspace`);
      else this.showError(e, () => this.loadInfo());
    });
    return this.info;
  }

  async loadSession(id) {
    try {
      return await this.withIdentity(() => this.client.sessions.get(id));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
      store.set(this.key, {});  // deleted or expired on the server: start afresh
      return null;
    }
  }

  // ---- the conversation's DOM ----

  render(history) {
    this.log.replaceChildren();
    this.greet();
    let lastUser = '';
    history.forEach((m, i) => {
      if (m.role === 'user') {
        lastUser = m.content;
        this.addUser(m.content, m.createdAt);
      } else if (m.role === 'assistant') {
        const row = this.addAssistant(m.content ? renderMarkdown(this.core, m.content) : '', m);
        const st = m.status;
        const text = lastUser;
        if (st === 'cancelled') this.note(row, this.t('stopped'));
        else if (st === 'interrupted') this.note(row, this.t('interrupted'));
        else if (st === 'error') {
          // A failed turn stays visible as failed; the last one can be asked again (the server
          // re-runs the session's last message and replaces the failed reply).
          row.msg.classList.add('failed');
          this.note(row, this.t('failed'), i === history.length - 1 ? () => {
            row.el.remove();
            this.runTurn(text, { regenerate: true });
          } : undefined);
        }
      }
    });
    if (!history.some((m) => m.role === 'user')) this.showStarters();
    this.refreshActions();
  }

  greet() {
    const g = this.cfg.greeting;
    if (g) this.log.append(h('div', { class: 'row assistant' }, h('div', { class: 'msg assistant greeting', dir: 'auto' }, g)));
  }

  showStarters() {
    const list = (Array.isArray(this.app.starters) ? this.app.starters : []).slice(0, 6)
      .map((s) => (typeof s === 'string' ? { title: s, message: s } : s && { title: s.title || s.message, message: s.message || s.title }))
      .filter((s) => s && typeof s.message === 'string' && s.message);
    if (!list.length) return;
    const box = h('div', { class: 'starters', role: 'group', 'aria-label': this.t('suggestions') });
    for (const s of list) {
      const b = h('button', { type: 'button', class: 'starter', dir: 'auto' }, s.title);
      b.addEventListener('click', () => {
        this.input.value = s.message;
        this.send();
      });
      box.append(b);
    }
    this.log.append(box);
  }

  time(ms) {
    const at = typeof ms === 'number' && ms > 0 ? ms : Date.now();
    const el = h('time', { datetime: new Date(at).toISOString() });
    el.dataset.at = String(at);
    this.fmtTime(el);
    return el;
  }

  fmtTime(el) {
    const at = Number(el.dataset.at);
    const s = Math.round((at - Date.now()) / 1000);
    const rtf = this.t.relTime;
    const a = Math.abs(s);
    el.textContent = a < 45 ? rtf.format(0, 'second') : a < 3600 ? rtf.format(Math.round(s / 60), 'minute')
      : a < 86400 ? rtf.format(Math.round(s / 3600), 'hour') : rtf.format(Math.round(s / 86400), 'day');
    el.title = this.t.dateTime.format(at);
  }

  refreshTimes() {
    for (const el of this.log.querySelectorAll('time')) this.fmtTime(el);
  }

  addUser(text, createdAt) {
    const msg = h('div', { class: 'msg user', dir: 'auto' }, text);
    const meta = h('div', { class: 'meta' }, this.time(createdAt));
    const el = h('div', { class: 'row user' }, msg, meta);
    const row = { el, msg, meta, role: 'user', text };
    el._row = row;
    this.dropStarters();
    this.log.append(el);
    return row;
  }

  addAssistant(html, m = {}) {
    const md = h('div', { class: 'md' });
    if (html) md.append(this.enhancer.fragment(html, false));
    const msg = h('div', { class: 'msg assistant', dir: 'auto' }, md);
    const el = h('div', { class: 'row assistant' }, msg);
    const row = { el, msg, role: 'assistant', text: m.content || '', executionId: m.executionId, createdAt: m.createdAt };
    el._row = row;
    this.log.append(el);
    this.finishRow(row);
    return row;
  }

  /** The reply's footer: time, copy, feedback (when the server said which run it was). */
  finishRow(row) {
    const t = this.t;
    const meta = h('div', { class: 'meta' }, this.time(row.createdAt));
    const act = (name, label, d) => {
      const b = this.enhancer.button(name, label, d);
      meta.append(b);
      return b;
    };
    if (row.text) act('copy-msg', t('copyMessage'), COPY_ICON);
    if (row.executionId && row.text) {
      act('up', t('good'), UP_ICON).setAttribute('aria-pressed', 'false');
      act('down', t('bad'), UP_ICON).setAttribute('aria-pressed', 'false');
    }
    act('regen', t('regenerate'), REGEN_ICON).hidden = true;
    row.meta = meta;
    row.el.append(meta);
  }

  dropStarters() {
    for (const s of this.log.querySelectorAll('.starters')) s.remove();
  }

  note(row, text, retry) {
    const n = h('span', { class: 'note' }, text);
    if (retry) {
      row.msg.classList.add('failed');
      const r = h('button', { type: 'button', class: 'retry' }, this.t('retry'));
      r.addEventListener('click', () => {
        // Only the last turn can be asked again, and not while another one runs: the server
        // re-runs the session's last message, so an older Retry would regenerate the wrong turn.
        if (this.busy || !r.isConnected) return;
        this.hideBanner();
        retry();
      });
      n.append(' ', r);
    }
    row.msg.append(n);
    return n;
  }

  rows() {
    return [...this.log.children].map((e) => e._row).filter(Boolean);
  }

  /** Regenerate on the last reply, Edit on the last user message; none while a turn runs. */
  refreshActions() {
    const rows = this.rows();
    const lastUser = [...rows].reverse().find((r) => r.role === 'user');
    const last = rows[rows.length - 1];
    for (const r of rows) {
      const regen = r.meta && r.meta.querySelector('[data-act="regen"]');
      if (regen) regen.hidden = this.busy || r !== last || !this.sessionId || !lastUser;
      if (r.role === 'user') {
        let edit = r.meta.querySelector('[data-act="edit"]');
        const show = !this.busy && r === lastUser && !!this.sessionId;
        if (show && !edit) {
          edit = this.enhancer.button('edit', this.t('edit'), EDIT_ICON);
          r.meta.append(edit);
        }
        if (edit) edit.hidden = !show;
      }
    }
  }

  async onAction(e) {
    if (this.enhancer.followAnchor(e)) return;
    const b = e.target.closest && e.target.closest('button[data-act]');
    if (!b) return;
    const rowEl = b.closest('.row');
    const row = rowEl && rowEl._row;
    const act = b.dataset.act;
    if (act === 'wrap') {
      const on = b.getAttribute('aria-pressed') !== 'true';
      b.setAttribute('aria-pressed', String(on));
      b.closest('.code').classList.toggle('wrap', on);
    } else if (act === 'copy-code') {
      this.copy(b, b.closest('.code').querySelector('pre').textContent);
    } else if (act === 'copy-msg' && row) {
      this.copy(b, row.text);
    } else if ((act === 'up' || act === 'down') && row) {
      this.rate(row, act, b);
    } else if (act === 'regen' && row && !this.busy) {
      const rows = this.rows();
      const lastUser = [...rows].reverse().find((r) => r.role === 'user');
      row.el.remove();
      this.hideBanner();
      await this.runTurn(lastUser.text, { regenerate: true });
    } else if (act === 'edit' && row && !this.busy) {
      this.editing = row;
      row.el.classList.add('editing');
      this.input.value = row.text;
      this.grow();
      this.input.focus();
    }
  }

  cancelEdit() {
    if (this.editing) this.editing.el.classList.remove('editing');
    this.editing = null;
    this.input.value = '';
    this.grow();
  }

  async copy(b, text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      devWarn(`copy to the clipboard failed: ${e.message}`);
      return;
    }
    const label = b.getAttribute('aria-label');
    b.setAttribute('aria-label', this.t('copied'));
    b.title = this.t('copied');
    b.replaceChildren(this.icon(CHECK_ICON));
    setTimeout(() => {
      b.setAttribute('aria-label', label);
      b.title = label;
      b.replaceChildren(this.icon(COPY_ICON));
    }, 1500);
  }

  /** Thumbs up/down: POST (again to change, with a comment for "down"), the same thumb again removes it. */
  async rate(row, rating, b) {
    const up = row.meta.querySelector('[data-act="up"]');
    const down = row.meta.querySelector('[data-act="down"]');
    const id = row.executionId;
    const undo = b.getAttribute('aria-pressed') === 'true';
    try {
      if (undo) await this.withIdentity(() => this.client.feedback.delete({ executionId: id }));
      else await this.withIdentity(() => this.client.feedback.send({ executionId: id, rating }));
    } catch (e) {
      this.showError(e);
      return;
    }
    up.setAttribute('aria-pressed', String(!undo && rating === 'up'));
    down.setAttribute('aria-pressed', String(!undo && rating === 'down'));
    const old = row.el.querySelector('.fb');
    if (old) old.remove();
    if (undo || rating !== 'down') return;
    // An optional comment on a bad reply.
    const input = h('input', { type: 'text', maxlength: '2000', 'aria-label': this.t('comment'), placeholder: this.t('comment'), dir: 'auto' });
    const sendBtn = h('button', { type: 'button' }, this.t('sendFeedback'));
    const form = h('div', { class: 'fb' }, input, sendBtn);
    const submit = async () => {
      const comment = input.value.trim();
      if (!comment) return;
      try {
        await this.withIdentity(() => this.client.feedback.send({ executionId: id, rating: 'down', comment }));
      } catch (e) {
        this.showError(e);
        return;
      }
      form.replaceChildren(h('span', { class: 'note', role: 'status' }, this.t('thanks')));
    };
    sendBtn.addEventListener('click', submit);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        submit();
      }
    });
    row.el.append(form);
    input.focus();
  }

  nearBottom() {
    const l = this.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
  }

  scroll(force) {
    const l = this.log;
    if (force || this.nearBottom()) {
      l.scrollTop = l.scrollHeight;
      this.jump.hidden = true;
      this.fresh = false;
    } else {
      // The visitor scrolled up to read: new content shows a "new messages" button instead.
      this.fresh = true;
      this.showJump();
    }
  }

  showJump() {
    this.jump.hidden = false;
    // Called per token while the visitor reads above: the DOM is written only when the text changes.
    const text = this.fresh ? this.t('newMessages') : '';
    if (this.jump.lastChild.textContent !== text) this.jump.lastChild.textContent = text;
  }

  onScroll() {
    if (this.nearBottom()) {
      this.jump.hidden = true;
      this.fresh = false;
    } else {
      this.showJump();
    }
  }

  // ---- history of conversations ----

  async showHistory() {
    this.log.hidden = true;
    this.jump.hidden = true;
    this.form.hidden = true;
    this.history.hidden = false;
    this.backBtn.hidden = false;
    this.historyBtn.hidden = true;
    this.history.replaceChildren(h('li', { class: 'empty' }, '…'));
    let list;
    try {
      await this.init();
      list = await this.withIdentity(() => this.client.sessions.list({ appId: this.cfg.appId, limit: 50 }));
    } catch (e) {
      this.history.replaceChildren();
      this.showError(e, () => this.showHistory());
      return;
    }
    if (this.history.hidden) return;
    this.history.replaceChildren();
    if (!list.length) this.history.append(h('li', { class: 'empty' }, this.t('noHistory')));
    for (const s of list) {
      const b = h('button', { type: 'button', 'aria-current': s.id === this.sessionId ? 'true' : false },
        h('span', { class: 't', dir: 'auto' }, s.title || this.t('untitled')),
        h('span', { class: 's' }, this.time(s.updatedAt || s.createdAt), ' · ', this.t('messages', { n: s.messageCount || 0 })));
      b.addEventListener('click', () => this.openSession(s.id));
      this.history.append(h('li', {}, b));
    }
    const first = this.history.querySelector('button');
    (first || this.backBtn).focus();
  }

  hideHistory() {
    this.history.hidden = true;
    this.log.hidden = false;
    this.form.hidden = false;
    this.backBtn.hidden = true;
    this.historyBtn.hidden = false;
    this.onScroll();
    this.input.focus();
  }

  /** Reopens a past conversation (a reply still streaming in this one stops being followed; it runs on). */
  async openSession(id) {
    this.detach();
    let session;
    try {
      session = await this.loadSession(id);
    } catch (e) {
      this.showError(e);
      return;
    }
    this.sessionId = session ? id : undefined;
    this.persist();
    this.render((session && session.messages) || []);
    this.hideHistory();
    this.scroll(true);
  }

  // ---- storage ----

  persist() {
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persistTimer = null;
    if (!this.key) return;
    const t = this.turn;
    const inflight = t ? { key: t.key, message: t.message, session: t.session, regenerate: t.regenerate, editLast: t.editLast,
      executionId: t.executionId || undefined, sessionId: t.sessionId, seq: t.seq, text: t.text } : undefined;
    store.set(this.key, { sessionId: this.sessionId, inflight });
  }

  persistSoon() {
    if (!this.persistTimer) this.persistTimer = setTimeout(() => this.persist(), PERSIST_MS);
  }

  // ---- states ----

  setBusy(busy) {
    this.busy = busy;
    if (busy) {
      // A turn starts: Retry on any earlier turn is gone (only the last turn can be retried).
      for (const r of this.log.querySelectorAll('.note .retry')) r.remove();
      this.retryWhenOnline = null;
    }
    this.sendBtn.hidden = busy;
    this.stopBtn.hidden = !busy;
    this.stopBtn.removeAttribute('aria-disabled');
    if (!busy && this.root.activeElement === this.stopBtn) this.input.focus();
    this.refreshActions();
    if (!busy && this.queued) {
      // Enter was pressed while the reply streamed: the kept text goes now.
      this.queued = false;
      if (this.banner.classList.contains('queued')) this.hideBanner();
      queueMicrotask(() => this.send());
    }
  }

  showBanner(kind, text, retry, retryLabel) {
    const b = this.banner;
    b.className = `banner ${kind}`;
    b.replaceChildren(h('span', {}, text));
    if (retry) {
      const r = h('button', { type: 'button', class: 'retry' }, retryLabel || this.t('retry'));
      r.addEventListener('click', () => {
        this.hideBanner();
        retry();
      });
      b.append(r);
    }
    b.hidden = false;
    return b;
  }

  hideBanner() {
    if (this.countdown) clearInterval(this.countdown);
    this.countdown = null;
    this.banner.hidden = true;
    this.banner.replaceChildren();
    this.banner.className = 'banner';
  }

  onNetwork() {
    if (navigator.onLine === false) {
      this.showBanner('offline', this.t('offline'));
    } else if (this.banner.classList.contains('offline')) {
      this.hideBanner();
      if (this.retryWhenOnline) {
        const r = this.retryWhenOnline;
        this.retryWhenOnline = null;
        r();
      }
    }
  }

  /**
   * An error as the visitor should see it (short, translated) and as the developer needs it (the
   * console, naming the fix). Returns the visitor's text; with `retry` it also shows the banner.
   */
  explain(e) {
    const t = this.t;
    const host = this.client ? this.client._client.host : this.cfg.host;
    const code = e && e.code;
    if (e instanceof ApiError && e.status === 429) {
      return t('rateLimited', { n: Math.max(1, Math.ceil((e.retryAfterMs || 1000) / 1000)) });
    }
    if (code === 'origin_not_allowed') {
      devWarn(`the server refused this page's origin ${location.origin}: add it to allowedOrigins of workspace ` +
        `"${this.workspaceId}" in the server's config`);
    } else if (code === 'identity_unavailable') {
      devWarn(e.message);
    } else if (e instanceof IdentityError || /^identity_/.test(code || '')) {
      devWarn(`the server refused the identity (${e.message}): hashedUserId must be hex HMAC-SHA256(workspace secret, userId) or a v1 token`);
    } else if (code === 'network_error' || code === 'timeout') {
      this.probe(host);
      return navigator.onLine === false ? t('connectionLost') : t('unavailable');
    } else if (e instanceof ApiError && e.status >= 500) {
      devWarn(`${e.message} (the server log has the details)`);
      return t('busy');
    } else if (e instanceof ApiError && e.status === 404) {
      devWarn(`${e.message}: check app-id and the workspace`);
    } else {
      devWarn(e && e.message ? e.message : String(e));
    }
    return t('unavailable');
  }

  /**
   * A request failed before any answer (a TypeError in fetch). Either the server is down, or it is
   * up and the browser blocked the answer: CORS, i.e. this page's origin is not in allowedOrigins.
   * An opaque no-cors request to /healthz tells them apart (it succeeds whenever the server answers).
   */
  probe(host) {
    if (!host || this.probing) return;
    this.probing = fetch(`${host}/healthz`, { mode: 'no-cors', cache: 'no-store' }).then(
      () => devWarn(`the server ${host} is up, but the browser blocked its answer: this page's origin ${location.origin} ` +
        `is most likely missing from allowedOrigins of workspace "${this.workspaceId}" in the server's config`),
      () => devWarn(`the server ${host} cannot be reached (down, wrong data-host, or not in the CSP connect-src)`),
    ).finally(() => { this.probing = null; });
  }

  showError(e, retry) {
    this.showBanner('error', this.explain(e), retry);
  }

  // ---- a turn ----

  async send() {
    const text = this.input.value;
    if (!text.trim()) return;
    if (this.busy) {
      // Kept, and sent when the reply ends.
      this.queued = true;
      if (this.banner.hidden) this.showBanner('wait queued', this.t('sendAfter'));
      return;
    }
    if (navigator.onLine === false) {
      this.onNetwork();
      return;
    }
    try {
      await this.init();
    } catch (e) {
      this.showError(e, () => this.send());
      return;
    }
    await this.info;  // a reply's images need the app's image hosts (never rejects)
    if (this.busy) return;
    this.input.value = '';
    this.grow();
    this.hideBanner();
    const edit = this.editing;
    if (edit && edit.el.isConnected) {
      // Edit-and-resend: the server replaces the last turn; so does the log.
      let el = edit.el;
      while (el) {
        const next = el.nextElementSibling;
        el.remove();
        el = next;
      }
      this.editing = null;
    }
    const row = this.addUser(text, Date.now());
    this.scroll(true);
    await this.runTurn(text, { userRow: row, editLast: !!edit });
  }

  // The reply bubble: a typing indicator until the first token, then the rendered Markdown.
  replyView() {
    const typing = h('span', { class: 'typing', role: 'img', 'aria-label': this.t('typing') }, h('i'), h('i'), h('i'));
    const msg = h('div', { class: 'msg assistant', 'aria-busy': 'true', dir: 'auto' }, typing);
    const el = h('div', { class: 'row assistant' }, msg);
    const row = { el, msg, role: 'assistant', text: '' };
    el._row = row;
    const dom = new MarkdownView(msg, this.enhancer);
    const { md } = dom;
    this.log.append(el);
    this.scroll(true);
    const renderer = new MarkdownStream(this.core);
    const show = (out) => dom.show(out);
    return {
      el, row,
      token: (s) => {
        if (typing.isConnected) typing.remove();
        row.text += s;
        show(renderer.append(s));
        this.scroll(false);
      },
      end: (note, retry, executionId) => {
        if (renderer.ptr) {
          show(renderer.finish());
          renderer.delete();
        }
        typing.remove();
        dom.close();
        msg.removeAttribute('aria-busy');
        if (!md.firstChild && !note) {
          el.remove();
          return;
        }
        row.executionId = executionId;
        if (note) this.note(row, note, retry);
        this.finishRow(row);
        this.scroll(false);
      },
    };
  }

  // A retry passes the first attempt's key and session: the same request, so the server knows the turn.
  async runTurn(message, { key, regenerate = false, editLast = false, session = this.sessionId } = {}) {
    const gen = this.gen;
    this.setBusy(true);
    const view = this.replyView();
    const turn = { key: key || newKey(), executionId: null, sessionId: null, seq: 0, text: '', message, regenerate, editLast, session };
    this.turn = turn;
    this.persist();  // the key and message first: a reload before the answer can still retry this turn
    const ac = new AbortController();
    this.abort = ac;
    let result;
    try {
      const handle = await this.withIdentity(() => this.client.apps.chatStream({
        appId: this.cfg.appId,
        message,
        sessionId: session,
        idempotencyKey: turn.key,
        regenerate: regenerate || undefined,
        editLast: editLast || undefined,
        signal: ac.signal,
        onRetry: ({ error, delayMs }) => {
          if (error instanceof ApiError && error.status === 429 && gen === this.gen) this.waitBanner(delayMs, ac);
        },
        streamCallback: (ev) => {
          if (ev.seq) turn.seq = ev.seq;
          if (ev.action === 'agent-response' && ev.token) {
            turn.text += ev.token;
            view.token(ev.token);
          }
          this.persistSoon();
        },
      }));
      if (this.banner.classList.contains('wait')) this.hideBanner();
      turn.executionId = handle.executionId;
      turn.sessionId = this.sessionId = handle.sessionId || this.sessionId;
      this.persist();
      result = await handle.result;
    } catch (e) {
      if (gen !== this.gen) view.end();  // another conversation now: just free the renderer
      else this.failTurn(view, turn, e, () => (turn.executionId ? this.resumeTurn(turn) : this.retryTurn(view, turn)));
      return;
    }
    if (gen !== this.gen) view.end();
    else this.endTurn(view, { ...result, executionId: turn.executionId }, () => this.retryTurn(view, turn));
  }

  /** Retry: the same turn (same idempotency key): the server re-runs a failed one and stores the message once. */
  retryTurn(view, turn) {
    view.el.remove();
    return this.runTurn(turn.message, { key: turn.key, regenerate: turn.regenerate, editLast: turn.editLast, session: turn.session });
  }

  /** 429: the SDK waits Retry-After; the visitor sees the countdown and may cancel. */
  waitBanner(ms, ac) {
    let left = Math.max(1, Math.ceil(ms / 1000));
    const b = this.showBanner('wait', this.t('rateLimited', { n: left }), () => {
      this.cancelledWait = true;
      ac.abort();
    }, this.t('cancel'));
    if (this.countdown) clearInterval(this.countdown);
    this.countdown = setInterval(() => {
      left -= 1;
      if (left <= 0 || b.hidden) {
        clearInterval(this.countdown);
        this.countdown = null;
        return;
      }
      b.firstChild.textContent = this.t('rateLimited', { n: left });
    }, 1000);
  }

  /** The turn never started on the server: its message stays, marked, with Retry (same key). */
  markNotSent(row, turn) {
    this.note(row, this.t('notSent'), () => {
      row.msg.classList.remove('failed');
      row.msg.querySelector('.note').remove();
      this.runTurn(turn.message, { key: turn.key, regenerate: turn.regenerate, editLast: turn.editLast, session: turn.session });
    });
    this.persist();
  }

  /** Follows a reply that started before (a reload, or a failed stream): from turn.seq on. */
  async resumeTurn(turn) {
    const gen = this.gen;
    this.setBusy(true);
    this.turn = turn;
    const view = this.replyView();
    if (turn.text) {
      view.token(turn.text);
      view.row.text = turn.text;
    }
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
        this.failTurn(view, turn, e, () => { view.el.remove(); this.resumeTurn(turn); });
      }
      return;
    }
    if (gen !== this.gen) view.end();
    else this.endTurn(view, { status: completed.status || 'success', error: completed.error, sessionId: completed.sessionId,
      executionId: turn.executionId }, turn.message ? () => this.retryTurn(view, turn) : null);
  }

  endTurn(view, r, retry) {
    this.abort = null;
    this.turn = null;
    if (r.sessionId) this.sessionId = r.sessionId;
    this.persist();
    if (this.banner.classList.contains('wait') && !this.banner.classList.contains('queued')) this.hideBanner();
    if (r.status === 'cancelled') view.end(this.t('stopped'), null, r.executionId);
    else if (r.status === 'error') {
      devWarn(`the reply failed on the server${r.error ? `: ${r.error}` : ''}${r.errorCode ? ` (${r.errorCode})` : ''}`);
      view.end(this.t('failed'), retry, r.executionId);
    } else view.end(undefined, undefined, r.executionId);
    this.setBusy(false);
    if (!this.isOpen()) this.el._setUnread(this.el._unread + 1);
  }

  failTurn(view, turn, e, retry) {
    this.abort = null;
    if (this.banner.classList.contains('wait')) this.hideBanner();
    if (e instanceof AbortError) {
      this.turn = null;
      if (this.cancelledWait) {
        // The visitor cancelled the rate-limit wait: the message was not sent; Retry sends it (same key).
        this.cancelledWait = false;
        view.end();
        const rows = this.rows();
        const last = rows[rows.length - 1];
        if (last && last.role === 'user') this.markNotSent(last, turn);
      } else {
        // Stopped before the server said which run it was, or a new conversation: nothing to resume.
        this.persist();
        view.end(this.t('stopped'));
      }
      this.setBusy(false);
      return;
    }
    this.persist();  // keeps the in-flight record: a reload resumes or retries it too
    const offline = navigator.onLine === false;
    view.end(offline ? this.t('connectionLost') : this.explain(e), retry, turn.executionId);
    this.setBusy(false);
    if (offline) {
      this.retryWhenOnline = () => retry();
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

  /** Stops following the current turn (it runs on, on the server) and forgets it locally. */
  detach() {
    if (this.abort) this.abort.abort();
    this.gen += 1;
    this.abort = null;
    this.turn = null;
    this.queued = false;
    this.editing = null;
    this.setBusy(false);
    this.hideBanner();
  }

  /** New conversation: stops a streaming reply and starts a new session (the old one stays in the history list). */
  async reset() {
    if (this.busy) await this.stop();
    this.detach();
    this.sessionId = undefined;
    this.persist();
    if (!this.history.hidden) this.hideHistory();
    this.render([]);
    this.input.focus();
  }
}

const factory = (ctx) => new Panel(ctx);
const reg = globalThis[Symbol.for('confab.widget')];
if (reg && reg.define) reg.define(factory);
else (globalThis[Symbol.for('confab.widget')] = { factory, waiters: [] });

export default factory;
