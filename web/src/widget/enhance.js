// The Markdown renderer's HTML made fit for the panel before it enters the DOM. It is parsed in an
// inert <template> (nothing loads there), then: links open in a new tab without an opener or a
// referrer; images load only from the allowed hosts (a model's reply can carry an exfiltration URL)
// and only once (a failed one becomes a link, never asked for again); tables get their own
// horizontal scroll box; code blocks get a bar with the language, a wrap toggle and a copy button.

/** True when `url` is http(s) and its host is one of `hosts` (exact, or "*.example.com" for subdomains). */
export function hostAllowed(url, hosts) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return false;
  const h = u.hostname.toLowerCase();
  return hosts.some((p) => {
    p = String(p).toLowerCase();
    return p.startsWith('*.') ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : h === p;
  });
}

// The rel the core writes on every link it renders: the links made here (images shown as links) carry the same.
const REL = 'nofollow noopener noreferrer';

export const COPY_ICON = 'M15 1H4v15h2V3h9zm4 4H8v18h11zm-2 16h-7V7h7z';
export const CHECK_ICON = 'M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z';
const WRAP_ICON = 'M4 19h6v-2H4zM20 5H4v2h16zm-3 6H4v2h13a2 2 0 0 1 0 4h-2v-2l-3 3 3 3v-2h2a4 4 0 0 0 0-8z';

export class Enhancer {
  /** policy: the shell's Trusted Types policy; t: the translator; icon: the shell's icon(). */
  constructor(policy, t, icon) {
    this.policy = policy;
    this.t = t;
    this.icon = icon;
    this.hosts = [];
    this.failed = new Set();  // image URLs that failed once in this page
  }

  button(act, label, d) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'act';
    b.dataset.act = act;
    b.setAttribute('aria-label', label);
    b.title = label;
    b.append(this.icon(d));
    return b;
  }

  link(href, text) {
    const a = document.createElement('a');
    a.href = href;
    a.textContent = text || href;
    a.target = '_blank';
    a.rel = REL;
    return a;
  }

  /**
   * A click on a '#' link in a reply (a footnote reference or back link), from the panel's one
   * delegated click handler (no listener per link: the live tail is rebuilt per token). It moves
   * within its own reply, never the host page's URL (a new tab of the page, or its hash, would be
   * wrong), and the same ids repeat in every reply: it looks in the nearest ancestor that holds
   * the id. Returns true when it handled the click.
   */
  followAnchor(e) {
    const a = e.target.closest && e.target.closest('.md a[href^="#"]');
    if (!a) return false;
    e.preventDefault();
    const sel = `[id="${CSS.escape(a.getAttribute('href').slice(1))}"]`;
    for (let n = a.parentElement; n; n = n.parentElement) {
      const el = n.querySelector(sel);
      if (el) {
        el.scrollIntoView({ block: 'nearest' });
        break;
      }
    }
    return true;
  }

  /**
   * The HTML as a fragment ready to append. `live`: the reply's open block, redrawn per token:
   * its images are links until the block is finished (an <img> redrawn per token would be
   * requested again and again).
   */
  fragment(html, live) {
    const tpl = document.createElement('template');
    tpl.innerHTML = this.policy.createHTML(html);
    const f = tpl.content;
    for (const a of f.querySelectorAll('a[href]')) {
      const href = a.getAttribute('href');
      if (href.startsWith('#')) continue;  // a footnote link: followAnchor(), from the panel's one click handler
      a.target = '_blank';  // the core's rel (nofollow noopener noreferrer) stays as it is
    }
    for (const img of f.querySelectorAll('img')) {
      const src = img.getAttribute('src') || '';
      const alt = img.getAttribute('alt') || '';
      if (!/^https?:/i.test(src)) {
        img.replaceWith(alt);  // no URL the renderer let through: just the description
        continue;
      }
      if (live || this.failed.has(src) || !hostAllowed(src, this.hosts)) {
        img.replaceWith(this.link(src, alt ? `${this.t('image')}: ${alt}` : src));
        continue;
      }
      img.loading = 'lazy';
      img.referrerPolicy = 'no-referrer';
      img.addEventListener('error', () => {
        this.failed.add(src);
        img.replaceWith(this.link(src, alt ? `${this.t('image')}: ${alt}` : src));
      }, { once: true });
    }
    for (const table of f.querySelectorAll('table')) {
      const box = document.createElement('div');
      box.className = 'scroll';
      box.tabIndex = 0;  // keyboard users can scroll it
      box.setAttribute('role', 'region');
      box.setAttribute('aria-label', this.t('table'));
      table.replaceWith(box);
      box.append(table);
    }
    for (const pre of f.querySelectorAll('pre')) {
      const code = pre.querySelector('code');
      const m = code && /(?:^|\s)language-([\w+#.-]+)/.exec(code.className);
      const lang = m && m[1] !== 'text' ? m[1] : '';
      const box = document.createElement('div');
      box.className = 'code';
      const bar = document.createElement('div');
      bar.className = 'bar';
      const label = document.createElement('span');
      label.className = 'lang';
      label.textContent = lang || this.t('code');
      const wrap = this.button('wrap', this.t('wrap'), WRAP_ICON);
      wrap.setAttribute('aria-pressed', 'false');
      bar.append(label, wrap, this.button('copy-code', this.t('copy'), COPY_ICON));
      pre.tabIndex = 0;
      pre.setAttribute('role', 'region');
      pre.setAttribute('aria-label', lang ? `${this.t('code')}: ${lang}` : this.t('code'));
      pre.replaceWith(box);
      box.append(bar, pre);
    }
    return f;
  }
}
