// The widget's shell: the <confab-chat> element with only its launcher, and mount(). The panel (UI,
// SDK and wasm core) is another file, loaded on first open or when the page is idle, so a page
// whose visitors never open the chat downloads and runs almost nothing.
import { shellCss } from './styles.js';

const TAG = 'confab-chat';
// Shell and panel are separate scripts; they meet here (a symbol, not a global name).
const REG = Symbol.for('confab.widget');
const reg = globalThis[REG] || (globalThis[REG] = { factory: null, waiters: [] });
// The panel script calls this when it has run; it may also have run first (then `factory` is set).
reg.define = reg.define || ((factory) => {
  reg.factory = factory;
  for (const w of reg.waiters.splice(0)) w(factory);
});

const mark = (name) => { try { performance.mark('confab-widget:' + name); } catch { /* old browsers */ } };

// Every HTML or script-URL sink of the widget goes through this one Trusted Types policy, named
// "confab" (the page's CSP lists it: `trusted-types confab`). createHTML passes the wasm Markdown
// renderer's output through: it is safe by construction (escaped text, checked URLs, no raw HTML);
// createScriptURL only allows the panel URLs the shell itself asked for. The policy object stays
// in this closure and is handed to the panel's factory, not published on a global.
const allowedScripts = new Set();
let policy = null;
function ttPolicy() {
  if (policy) return policy;
  const rules = {
    createHTML: (s) => s,
    createScriptURL: (s) => {
      if (allowedScripts.has(s)) return s;
      throw new TypeError(`confab widget: script URL not allowed: ${s}`);
    },
  };
  const tt = globalThis.trustedTypes;
  policy = tt && typeof tt.createPolicy === 'function' ? tt.createPolicy('confab', rules) : rules;
  return policy;
}

let panelPromise = null;
/** Loads the panel script once (a same-origin <script src>, which CSP script-src 'self' allows). */
function loadPanel(url, nonce) {
  if (reg.factory) return Promise.resolve(reg.factory);
  if (panelPromise) return panelPromise;
  panelPromise = new Promise((resolve, reject) => {
    reg.waiters.push(resolve);
    const s = document.createElement('script');
    allowedScripts.add(url);
    s.src = ttPolicy().createScriptURL(url);
    s.async = true;
    if (nonce) s.nonce = nonce;
    s.onerror = () => {
      panelPromise = null;
      reg.waiters.splice(reg.waiters.indexOf(resolve), 1);
      s.remove();
      reject(new Error(`confab widget: could not load ${url}`));
    };
    mark('panel-fetch');
    (document.head || document.documentElement).appendChild(s);
  });
  return panelPromise;
}

const SVG = 'http://www.w3.org/2000/svg';
/** An <svg> icon from path data (built with DOM calls: no HTML parsing in the shell). */
export function icon(d, cls) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  if (cls) svg.setAttribute('class', cls);
  const p = document.createElementNS(SVG, 'path');
  p.setAttribute('d', d);
  svg.appendChild(p);
  return svg;
}
const CHAT_ICON = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8.4L4 21.6V18a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z';
export const CLOSE_ICON = 'M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z';

const sheet = (css) => {
  const s = new CSSStyleSheet();
  s.replaceSync(css);
  return s;
};
let shellSheet = null;

// Attributes a page may set on the element (mount() and the script tag's data-* map to them).
const ATTRS = ['host', 'app-id', 'workspace-id', 'identity-url', 'chat-title', 'data-title', 'greeting', 'placeholder',
  'color', 'position', 'preload', 'panel-url', 'theme', 'lang', 'image-hosts', 'avatar'];

// Relative luminance (WCAG) of a computed rgb()/rgba() colour; null when transparent.
function luminance(css) {
  const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?/.exec(css || '');
  if (!m || (m[4] !== undefined && Number(m[4]) < 0.5)) return null;
  const lin = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * lin(+m[1]) + 0.7152 * lin(+m[2]) + 0.0722 * lin(+m[3]);
}

const darkQuery = globalThis.matchMedia ? matchMedia('(prefers-color-scheme: dark)') : null;
/**
 * theme="auto" (the default): the host page decides (its color-scheme if it declares only dark or
 * only light, else the luminance of its background), and the OS only when the page says nothing.
 */
function pageIsDark() {
  const de = document.documentElement;
  const scheme = getComputedStyle(de).colorScheme || '';
  if (/\bdark\b/.test(scheme) && !/\blight\b/.test(scheme)) return true;
  if (/\blight\b/.test(scheme) && !/\bdark\b/.test(scheme)) return false;
  for (const el of [document.body, de]) {
    const l = el && luminance(getComputedStyle(el).backgroundColor);
    if (l !== null && l !== undefined) return l < 0.2;
  }
  return !!(darkQuery && darkQuery.matches);
}

class ConfabChat extends HTMLElement {
  static get observedAttributes() { return ATTRS; }

  constructor() {
    super();
    this._root = this.attachShadow({ mode: 'open' });
    this._theme = sheet('');
    this._panel = null;      // the panel's controller once loaded
    this._opening = null;
    this.identity = undefined;  // optional: {userId, workspaceId, hashedUserId} or an async function returning it
    this.strings = undefined;   // optional: {key: text} overriding the UI strings (see strings.js)
    this._unread = 0;
  }

  connectedCallback() {
    if (this._box) {
      // Back in the page (a SPA moved or re-mounted it): follow the page's look again.
      this._watchLook();
      this._applyLook();
      return;
    }
    shellSheet = shellSheet || sheet(shellCss);
    this._root.adoptedStyleSheets = [shellSheet, this._theme];
    const box = document.createElement('div');
    box.className = 'root';
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'launcher';
    b.setAttribute('aria-haspopup', 'dialog');
    b.setAttribute('aria-expanded', 'false');
    b.append(icon(CHAT_ICON, 'i-chat'), icon(CLOSE_ICON, 'i-close'));
    b.addEventListener('click', () => (this._panel && this._panel.isOpen() ? this.close() : this.open()));
    this._badge = document.createElement('span');
    this._badge.className = 'badge';
    this._badge.hidden = true;
    b.appendChild(this._badge);
    // Intent to open: start fetching before the click lands (unless preload="open").
    const intent = () => { if (this.getAttribute('preload') !== 'open') this.preload(); };
    b.addEventListener('pointerenter', intent, { once: true });
    b.addEventListener('focus', intent, { once: true });
    box.appendChild(b);
    this._root.appendChild(box);
    this._box = box;
    this._launcher = b;
    this._applyAttrs();
    this._watchLook();
    mark('launcher-ready');
    // Open before a reload in this tab: open again (without taking focus), so a reply that was
    // streaming carries on in view.
    if (this._wasOpen()) this.open({ focus: false }).catch(() => {});
    else this._scheduleIdlePreload();
  }

  disconnectedCallback() {
    // Out of the page (a SPA unmounted it): nothing may keep it, or keep running for it.
    if (this._lookObserver) this._lookObserver.disconnect();
    this._lookObserver = null;
    if (darkQuery && darkQuery.removeEventListener) darkQuery.removeEventListener('change', this._lookSoon);
    removeEventListener('load', this._lookSoon);
    if (this._lookFrame) cancelAnimationFrame(this._lookFrame);
    this._lookFrame = 0;
  }

  /** The page may set its theme or direction after the widget ran (a theme switch, a framework's render), or the OS its scheme. */
  _watchLook() {
    if (this._lookObserver) return;
    // Many changes in one frame (a framework's render, the OS scheme with the page's class): one _applyLook.
    this._lookSoon = this._lookSoon || (() => {
      if (!this._lookFrame) this._lookFrame = requestAnimationFrame(() => {
        this._lookFrame = 0;
        this._applyLook();
      });
    });
    if (darkQuery && darkQuery.addEventListener) darkQuery.addEventListener('change', this._lookSoon);
    if (document.readyState !== 'complete') addEventListener('load', this._lookSoon, { once: true });
    this._lookObserver = new MutationObserver(this._lookSoon);
    this._lookObserver.observe(document.documentElement,
      { attributes: true, attributeFilter: ['class', 'dir', 'style', 'data-theme', 'lang'] });
  }

  _openKey() {
    return `confab.widget.open|${this.getAttribute('host') || ''}|${this.getAttribute('app-id') || ''}`;
  }

  _wasOpen() {
    try {
      return sessionStorage.getItem(this._openKey()) === '1';
    } catch {
      return false;
    }
  }

  /** Called by the panel when it opens or closes. */
  _rememberOpen(open) {
    try {
      if (open) sessionStorage.setItem(this._openKey(), '1');
      else sessionStorage.removeItem(this._openKey());
    } catch { /* storage blocked: nothing to remember */ }
  }

  attributeChangedCallback() {
    if (this._box) this._applyAttrs();
  }

  /** Unread replies (finished while the panel was closed): a count on the launcher. */
  _setUnread(n) {
    this._unread = n;
    this._badge.hidden = !n;
    this._badge.textContent = n ? String(n) : '';
    this._labelLauncher();
  }

  _labelLauncher() {
    if (this._panel && this._panel.isOpen()) return;
    const label = (this._panel && this._panel.launcherLabel()) || `Open chat: ${this._title()}`;
    this._launcher.setAttribute('aria-label', label);
  }

  _title() {
    return this.getAttribute('chat-title') || this.getAttribute('data-title') || 'Chat';
  }

  /** Theme and direction, on the root box: the panel's colours and layout follow them. */
  _applyLook() {
    if (!this._box) return;
    const theme = this.getAttribute('theme');
    const dark = theme === 'dark' || (theme !== 'light' && pageIsDark());
    this._box.classList.toggle('dark', dark);
    const lang = this._panel && this._panel.t;
    const rtl = (lang && lang.rtl) || getComputedStyle(this).direction === 'rtl' ||
      document.documentElement.dir === 'rtl';
    this._box.setAttribute('dir', rtl ? 'rtl' : 'ltr');
  }

  _applyAttrs() {
    this._labelLauncher();
    this._applyLook();
    const color = this.getAttribute('color');
    // A per-element sheet, not a style= attribute (CSP style-src 'self'); CSS.supports keeps the
    // value a colour, so an attribute cannot inject other rules.
    this._theme.replaceSync(color && CSS.supports('color', color) ? `:host { --confab-accent: ${color}; }` : '');
    if (this._panel) this._panel.update();
  }

  _scheduleIdlePreload() {
    const when = this.getAttribute('preload') || 'idle';
    if (when !== 'idle') return;
    const go = () => {
      const idle = globalThis.requestIdleCallback || ((f) => setTimeout(f, 1500));
      idle(() => this.preload(), { timeout: 5000 });
    };
    if (document.readyState === 'complete') go();
    else addEventListener('load', go, { once: true });
  }

  /** Resolves the options the panel needs: attributes, then mount() properties. */
  get config() {
    const a = (n) => this.getAttribute(n) || undefined;
    return {
      host: a('host'), appId: a('app-id'), workspaceId: a('workspace-id'), identityUrl: a('identity-url'),
      title: this._title(), greeting: a('greeting'), placeholder: a('placeholder'),
      theme: a('theme'), lang: a('lang'), avatar: a('avatar'),
      imageHosts: (a('image-hosts') || '').split(/[\s,]+/).filter(Boolean),
      identity: this.identity, strings: this.strings,
    };
  }

  panelUrl() {
    return new URL(this.getAttribute('panel-url') || defaultPanelUrl(), document.baseURI).href;
  }

  /** Fetches the panel (script + wasm) without opening it. */
  preload() {
    return loadPanel(this.panelUrl(), this.getAttribute('nonce') || scriptNonce).catch(() => {});
  }

  /** Opens the panel, loading it first if needed. Resolves when it is interactive. {focus: false} keeps the page's focus. */
  open(options = {}) {
    if (this._opening) return this._opening;
    mark('open');
    this._launcher.setAttribute('aria-busy', 'true');
    this._opening = (async () => {
      try {
        if (!this._panel) {
          const factory = await loadPanel(this.panelUrl(), this.getAttribute('nonce') || scriptNonce);
          this._panel = this._panel || factory({ element: this, root: this._root, box: this._box,
            launcher: this._launcher, policy: ttPolicy(), sheet, icon, CLOSE_ICON, mark });
        }
        await this._panel.open(options);
      } catch (e) {
        this._launcher.setAttribute('aria-label', 'Chat is unavailable, try again: ' + (e && e.message || e));
        throw e;
      } finally {
        this._launcher.removeAttribute('aria-busy');
        this._opening = null;
      }
    })();
    return this._opening;
  }

  close() {
    if (this._panel) this._panel.close();
  }

  /** Starts a new conversation (forgets the stored session). */
  reset() {
    return this._panel ? this._panel.reset() : undefined;
  }
}

// The panel's URL: next to the shell (set by the entry: the script tag's src or import.meta.url).
let panelBase = null;
let scriptNonce = '';
function defaultPanelUrl() {
  if (!panelBase) throw new Error('confab widget: cannot tell where confab-widget-panel.js is: set panel-url / panelUrl');
  return panelBase;
}
export function setPanelBase(url, nonce) {
  if (!panelBase && url) panelBase = url;
  if (nonce) scriptNonce = nonce;
}

export function define() {
  if (!customElements.get(TAG)) customElements.define(TAG, ConfabChat);
  return customElements.get(TAG);
}

const OPTION_ATTRS = {
  host: 'host', appId: 'app-id', workspaceId: 'workspace-id', identityUrl: 'identity-url', title: 'chat-title',
  greeting: 'greeting', placeholder: 'placeholder', color: 'color', position: 'position', preload: 'preload',
  panelUrl: 'panel-url', theme: 'theme', lang: 'lang', imageHosts: 'image-hosts', avatar: 'avatar',
};

/**
 * Adds a <confab-chat> to the page (or to `target`) and returns it.
 * Options: {host, appId, workspaceId?, identityUrl? | identity?, title?, greeting?, placeholder?,
 * color?, position?: 'right'|'left', preload?: 'idle'|'intent'|'open', panelUrl?, open?: boolean, target?,
 * theme?: 'light'|'dark'|'auto', lang?, strings?, imageHosts?: string[], avatar?}
 */
export function mount(options = {}) {
  define();
  if (!options || typeof options !== 'object') throw new TypeError('Confab.widget.mount: expected an options object');
  if (!options.appId) throw new TypeError('Confab.widget.mount: appId is required');
  const el = document.createElement(TAG);
  for (const [k, attr] of Object.entries(OPTION_ATTRS)) {
    if (options[k] !== undefined && options[k] !== null) el.setAttribute(attr, String(options[k]));
  }
  if (Array.isArray(options.imageHosts)) el.setAttribute('image-hosts', options.imageHosts.join(' '));
  if (options.identity !== undefined) el.identity = options.identity;
  if (options.strings !== undefined) el.strings = options.strings;
  (options.target || document.body).appendChild(el);
  if (options.open) el.open().catch(() => {});
  return el;
}

export { ConfabChat, mark };
