// The widget's CSS, as text for constructable stylesheets (adoptedStyleSheets): a page whose CSP
// says style-src 'self' allows them, while an inline <style> or a style= attribute would be blocked.
//
// Theming: the host page sets these custom properties on confab-chat (they inherit into the
// shadow root, nothing else from the page does):
//   --confab-accent, --confab-on-accent, --confab-bg, --confab-fg, --confab-muted, --confab-border,
//   --confab-font, --confab-radius, --confab-z, --confab-offset
// `all: initial !important` on the host: for !important declarations the shadow root's own rule
// wins over the page's, so page rules such as `* { color: red !important }` or
// `body * { position: relative }` cannot reach the widget through inheritance or the host box.

/** The launcher (the shell): the host, the root box and the bubble button. */
export const shellCss = `
:host { all: initial !important; display: contents !important; }
.root {
  all: initial;
  --a: var(--confab-accent, #2f5bd3);
  --on-a: var(--confab-on-accent, #fff);
  --bg: var(--confab-bg, #fff);
  --fg: var(--confab-fg, #1b1d22);
  --muted: var(--confab-muted, #5f6470);
  --line: var(--confab-border, #d9dce3);
  --r: var(--confab-radius, 14px);
  --off: var(--confab-offset, 20px);
  font: 15px/1.45 var(--confab-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  color: var(--fg);
  position: fixed;
  z-index: var(--confab-z, 2147483000);
  bottom: var(--off);
  right: var(--off);
  display: block;
}
:host([position="left"]) .root { right: auto; left: var(--off); }
@media (prefers-color-scheme: dark) {
  .root { --bg: var(--confab-bg, #1d1f24); --fg: var(--confab-fg, #eceef2); --muted: var(--confab-muted, #a4a9b4); --line: var(--confab-border, #383c45); }
}
*, *::before, *::after { box-sizing: border-box; }
button { font: inherit; color: inherit; }
.launcher {
  all: unset;
  box-sizing: border-box;
  width: 56px; height: 56px;
  border-radius: 50%;
  background: var(--a);
  color: var(--on-a);
  display: grid; place-items: center;
  cursor: pointer;
  box-shadow: 0 6px 20px rgba(0, 0, 0, .22);
  transition: transform .15s ease;
}
.launcher:hover { transform: scale(1.06); }
.launcher:focus-visible { outline: 3px solid var(--a); outline-offset: 3px; }
.launcher svg { width: 28px; height: 28px; fill: currentColor; }
.launcher[aria-busy="true"] svg { opacity: .5; }
.launcher[aria-expanded="true"] .i-chat, .launcher[aria-expanded="false"] .i-close { display: none; }
.sr { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
`;

/** The panel (loaded with it): dialog, messages, Markdown, composer, states, mobile layout. */
export const panelCss = `
[hidden] { display: none !important; }
.panel {
  position: absolute;
  bottom: 72px; right: 0;
  width: min(380px, calc(100vw - 2 * var(--off)));
  height: min(600px, calc(100vh - 96px - var(--off)));
  background: var(--bg);
  color: var(--fg);
  border: 1px solid var(--line);
  border-radius: var(--r);
  box-shadow: 0 12px 40px rgba(0, 0, 0, .25);
  display: flex; flex-direction: column;
  overflow: hidden;
}
:host([position="left"]) .panel { right: auto; left: 0; }
header {
  display: flex; align-items: center; gap: 4px;
  padding: 10px 10px 10px 16px;
  background: var(--a); color: var(--on-a);
}
h2 { all: unset; flex: 1; font-weight: 600; font-size: 16px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.icon {
  all: unset; box-sizing: border-box; cursor: pointer;
  width: 34px; height: 34px; border-radius: 8px;
  display: grid; place-items: center;
}
.icon:hover { background: rgba(255, 255, 255, .16); }
.icon:focus-visible { outline: 2px solid var(--on-a); outline-offset: -2px; }
.icon svg { width: 20px; height: 20px; fill: currentColor; }
.banner { padding: 8px 16px; font-size: 13px; border-bottom: 1px solid var(--line); display: flex; gap: 8px; align-items: center; }
.banner.offline { background: #fff4d6; color: #5c4300; }
.banner.error { background: #fde7e7; color: #7a1616; }
.log { flex: 1; overflow-y: auto; padding: 14px 14px 4px; display: flex; flex-direction: column; gap: 10px; overscroll-behavior: contain; }
.msg { max-width: 88%; padding: 8px 12px; border-radius: 12px; overflow-wrap: anywhere; }
.msg.user { align-self: flex-end; background: var(--a); color: var(--on-a); white-space: pre-wrap; border-bottom-right-radius: 4px; }
.msg.assistant { align-self: flex-start; background: color-mix(in srgb, var(--fg) 6%, var(--bg)); border-bottom-left-radius: 4px; }
.msg.greeting { color: var(--muted); }
.msg .note { display: block; margin-top: 6px; font-size: 12px; color: var(--muted); }
.msg.failed { outline: 1px solid #d65b5b; }
.retry { all: unset; cursor: pointer; font-size: 12px; font-weight: 600; text-decoration: underline; margin-left: 6px; }
.retry:focus-visible { outline: 2px solid var(--a); }
.typing { display: inline-flex; gap: 4px; padding: 4px 0; }
.typing i { width: 7px; height: 7px; border-radius: 50%; background: var(--muted); animation: blink 1.2s infinite ease-in-out; }
.typing i:nth-child(2) { animation-delay: .2s; }
.typing i:nth-child(3) { animation-delay: .4s; }
@keyframes blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
@media (prefers-reduced-motion: reduce) { .typing i { animation: none; opacity: .6; } .launcher { transition: none; } }
form { display: flex; gap: 8px; align-items: flex-end; padding: 10px; border-top: 1px solid var(--line); }
textarea {
  all: unset; box-sizing: border-box; flex: 1;
  min-height: 40px; max-height: 140px; overflow-y: auto;
  padding: 9px 12px; border: 1px solid var(--line); border-radius: 10px;
  white-space: pre-wrap; overflow-wrap: anywhere; field-sizing: content;
  background: var(--bg); color: var(--fg); font: inherit;
}
textarea:focus { border-color: var(--a); box-shadow: 0 0 0 2px color-mix(in srgb, var(--a) 30%, transparent); }
textarea::placeholder { color: var(--muted); }
.send {
  all: unset; box-sizing: border-box; cursor: pointer;
  width: 40px; height: 40px; border-radius: 10px; flex: none;
  background: var(--a); color: var(--on-a); display: grid; place-items: center;
}
.send svg { width: 20px; height: 20px; fill: currentColor; }
.send:focus-visible { outline: 3px solid var(--a); outline-offset: 2px; }
.send[aria-disabled="true"] { opacity: .45; cursor: default; }
.md > :first-child { margin-top: 0; }
.md > :last-child { margin-bottom: 0; }
.md:not(:empty) + .tail { margin-top: .6em; }  /* the open block, a sibling of the finished ones */
.md p, .md ul, .md ol, .md pre, .md blockquote, .md table, .md h1, .md h2, .md h3, .md h4, .md h5, .md h6 { margin: 0 0 .6em; }
.md h1, .md h2, .md h3, .md h4, .md h5, .md h6 { all: revert; margin: .2em 0 .4em; font-size: 1.05em; font-weight: 700; line-height: 1.3; }
.md h1 { font-size: 1.2em; }
.md ul, .md ol { padding-left: 1.4em; }
.md li > p { margin: 0; }
.md a { color: var(--a); }
.md code { font: .9em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: color-mix(in srgb, var(--fg) 9%, transparent); padding: .1em .3em; border-radius: 4px; }
.md pre { overflow-x: auto; padding: 8px 10px; border-radius: 8px; background: color-mix(in srgb, var(--fg) 9%, transparent); }
.md pre code { background: none; padding: 0; white-space: pre; }
.md blockquote { border-left: 3px solid var(--line); padding-left: 10px; color: var(--muted); }
.md table { border-collapse: collapse; display: block; overflow-x: auto; }
.md th, .md td { border: 1px solid var(--line); padding: 3px 7px; }
.md img { max-width: 100%; }
.md hr { border: 0; border-top: 1px solid var(--line); }
.tail:empty { display: none; }
@media (max-width: 480px) {
  .root.open { inset: 0; }
  .root.open .launcher { display: none; }
  .panel { position: fixed; inset: 0; width: 100%; height: 100%; border-radius: 0; border: 0; }
}
`;
