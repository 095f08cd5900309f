// The widget's UI strings: built-in English and the bundled locales (de, fr, es, ar, loaded on
// demand), chosen by data-lang (else the page's <html lang>, else the browser), each key
// overridable by the `strings` option. {n} in a string is replaced by a number formatted with Intl
// for the locale.
const en = {
  open: 'Open chat: {title}', close: 'Close chat', newChat: 'New conversation', history: 'Conversations',
  back: 'Back to the conversation', message: 'Message', send: 'Send message', stop: 'Stop the reply',
  conversation: 'Conversation', typing: 'Assistant is typing',
  stopped: 'Stopped', retry: 'Retry', cancel: 'Cancel', failed: 'The reply failed.', notSent: 'Not sent.',
  offline: 'You are offline. Messages will send when the connection is back.', connectionLost: 'Connection lost.',
  unavailable: 'Chat is unavailable right now. Please try again later.',
  busy: 'The assistant is busy right now. Please try again in a moment.',
  rateLimited: 'Too many messages, try again in {n} s.', sendAfter: 'Will send when the reply ends.',
  noHistory: 'No earlier conversations.', untitled: 'Conversation', messages: '{n} messages',
  suggestions: 'Suggestions', copy: 'Copy', copied: 'Copied', copyMessage: 'Copy message', wrap: 'Wrap lines',
  code: 'Code', table: 'Table', good: 'Good reply', bad: 'Bad reply', comment: 'What could be better? (optional)',
  sendFeedback: 'Send', thanks: 'Thanks for the feedback.', regenerate: 'Regenerate reply', edit: 'Edit message',  newMessages: 'New messages', toBottom: 'Scroll to the latest message',
  image: 'Image', unread: '{n} unread', interrupted: 'The reply was interrupted.',
};

// The bundled locales besides English: src/widget/locales/*.json, copied next to the panel as
// confab-widget-lang-<tag>.json and fetched only by a visitor who needs one (a visitor in English
// downloads none of them).
export const LOCALES = { en, de: 1, fr: 1, es: 1, ar: 1 };
const RTL = new Set(['ar', 'he', 'fa', 'ur']);

/** The locale tag to use: the attribute, else the page's lang, else the browser's; reduced to a bundled one. */
export function pickLocale(attr) {
  const wanted = [attr, document.documentElement.lang, ...(navigator.languages || [navigator.language])];
  for (const tag of wanted) {
    if (!tag) continue;
    const base = String(tag).toLowerCase().split('-')[0];
    if (LOCALES[base]) return base;
  }
  return 'en';
}

/** A translator for `locale` with `overrides` (the strings option) on top: t(key, {n, title}). */
export function translator(locale, overrides, loaded) {
  const table = { ...en, ...loaded, ...(overrides && typeof overrides === 'object' ? overrides : {}) };
  const nf = new Intl.NumberFormat(locale);
  const t = (key, vars) => String(table[key] ?? en[key] ?? key).replace(/\{(\w+)\}/g, (m, k) => {
    if (!vars || vars[k] === undefined) return m;
    return typeof vars[k] === 'number' ? nf.format(vars[k]) : String(vars[k]);
  });
  t.locale = locale;
  t.rtl = RTL.has(locale);
  // The timestamps' formatters, once per locale (every message and every 30 s for every <time>).
  t.relTime = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
  t.dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
  return t;
}

/** Fetches a bundled locale's strings (next to the panel script); English needs none. */
export async function loadLocale(locale, base) {
  if (locale === 'en' || !base) return {};
  const res = await fetch(new URL(`confab-widget-lang-${locale}.json`, base), { credentials: 'omit' });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}
