// The widget's CSS, as text for constructable stylesheets (adoptedStyleSheets): a page whose CSP
// says style-src 'self' allows them, while an inline <style> or a style= attribute would be blocked.
//
// Theming: the host page sets these custom properties on confab-chat (they inherit into the
// shadow root, nothing else from the page does):
//   --confab-accent, --confab-on-accent, --confab-bg, --confab-fg, --confab-muted, --confab-border,
//   --confab-font, --confab-radius, --confab-z, --confab-offset, --confab-link
// The dark palette applies on .root.dark (theme="dark", or "auto" on a dark page / OS); every
// text/background pair below meets WCAG AA (4.5:1) in both palettes (checked by axe in the tests).
// Layout uses logical properties (inline-start/end), so a dir="rtl" root mirrors it.
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
  --muted: var(--confab-muted, #595e69);
  --line: var(--confab-border, #d5d8df);
  --link: var(--confab-link, #1f45a8);
  --bubble: #f1f2f5;
  --code-bg: #e9ebef;
  --r: var(--confab-radius, 14px);
  --off: var(--confab-offset, 20px);
  font: 15px/1.45 var(--confab-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  color: var(--fg);
  position: fixed;
  z-index: var(--confab-z, 2147483000);
  bottom: var(--off);
  inset-inline-end: var(--off);
  display: block;
}
:host([position="left"]) .root { inset-inline-end: auto; inset-inline-start: var(--off); }
.root.dark {
  --bg: var(--confab-bg, #1d1f24); --fg: var(--confab-fg, #eceef2); --muted: var(--confab-muted, #aab0bc);
  --line: var(--confab-border, #3b3f48); --link: var(--confab-link, #a5bfff); --bubble: #2a2d33; --code-bg: #141619;
  color-scheme: dark;
}
*, *::before, *::after { box-sizing: border-box; }
button { font: inherit; color: inherit; }
.launcher {
  all: unset;
  box-sizing: border-box;
  position: relative;
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
.badge { position: absolute; top: -4px; inset-inline-end: -4px; min-width: 20px; height: 20px; padding: 0 5px; border-radius: 10px;
  background: #b3261e; color: #fff; font: 700 12px/20px system-ui, sans-serif; text-align: center; }
.badge[hidden] { display: none; }
.sr { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
`;

/** The panel (loaded with it): dialog, messages, Markdown, composer, states, mobile layout. */
export const panelCss = `
[hidden] { display: none !important; }
.panel {
  position: absolute;
  bottom: 72px; inset-inline-end: 0;
  width: min(400px, calc(100vw - 2 * var(--off)));
  height: min(620px, calc(100vh - 96px - var(--off)));
  background: var(--bg);
  color: var(--fg);
  border: 1px solid var(--line);
  border-radius: var(--r);
  box-shadow: 0 12px 40px rgba(0, 0, 0, .25);
  display: flex; flex-direction: column;
  overflow: hidden;
}
:host([position="left"]) .panel { inset-inline-end: auto; inset-inline-start: 0; }
header {
  display: flex; align-items: center; gap: 4px;
  padding-block: 10px; padding-inline: 12px 8px;
  background: var(--a); color: var(--on-a);
}
.avatar { width: 28px; height: 28px; border-radius: 50%; object-fit: cover; flex: none; background: var(--bg); }
header .avatar { margin-inline-end: 6px; }
h2 { all: unset; flex: 1; font-weight: 600; font-size: 16px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.icon, .act {
  all: unset; box-sizing: border-box; cursor: pointer;
  width: 34px; height: 34px; border-radius: 8px;
  display: grid; place-items: center;
}
.icon:hover { background: rgba(255, 255, 255, .16); }
.icon:focus-visible { outline: 2px solid var(--on-a); outline-offset: -2px; }
.icon svg { width: 20px; height: 20px; fill: currentColor; }
[dir="rtl"] .flip svg { transform: scaleX(-1); }
.banner { padding: 8px 16px; font-size: 13px; border-bottom: 1px solid var(--line); display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.banner.offline, .banner.wait { background: #fff4d6; color: #4d3800; }
.banner.error { background: #fde7e7; color: #7a1616; }
.dark .banner.offline, .dark .banner.wait { background: #3d3215; color: #ffe7a6; }
.dark .banner.error { background: #451c1c; color: #ffd0d0; }
.main { flex: 1; position: relative; min-height: 0; display: flex; flex-direction: column; }
.log { flex: 1; overflow-y: auto; padding: 14px 14px 4px; display: flex; flex-direction: column; gap: 4px; overscroll-behavior: contain; }
.row { display: flex; flex-direction: column; align-items: flex-start; max-width: 100%; margin-bottom: 6px; }
.row.user { align-items: flex-end; }
.msg { max-width: 88%; min-width: 0; padding: 8px 12px; border-radius: 12px; }
.msg.user { background: var(--a); color: var(--on-a); white-space: pre-wrap; overflow-wrap: anywhere; border-end-end-radius: 4px; }
.msg.assistant { background: var(--bubble); border-end-start-radius: 4px; max-width: 100%; }
.row.assistant .msg { max-width: 92%; }
.msg .note { display: block; margin-top: 6px; font-size: 12px; color: var(--muted); }
.msg.failed { outline: 1px solid #c0392b; }
.meta { display: flex; align-items: center; gap: 2px; margin-top: 2px; font-size: 12px; color: var(--muted); min-height: 28px; }
.meta time { padding-inline: 4px; }
.act { width: 28px; height: 28px; border-radius: 6px; color: var(--muted); }
.act:hover, .act[aria-pressed="true"] { color: var(--fg); background: color-mix(in srgb, var(--fg) 8%, transparent); }
.act:focus-visible { outline: 2px solid var(--a); }
.act svg { width: 16px; height: 16px; fill: currentColor; }
[data-act="down"] svg { transform: rotate(180deg); }
.retry, .link-btn { all: unset; cursor: pointer; font-size: 12px; font-weight: 600; text-decoration: underline; margin-inline-start: 6px; }
.retry:focus-visible, .link-btn:focus-visible { outline: 2px solid var(--a); }
.fb { display: flex; gap: 6px; margin-top: 4px; width: 88%; }
.fb input { all: unset; box-sizing: border-box; flex: 1; font-size: 14px; padding: 6px 8px; border: 1px solid var(--line); border-radius: 8px; background: var(--bg); color: var(--fg); }
.fb input::placeholder { color: var(--muted); }
.fb button, .starter, .chip {
  all: unset; box-sizing: border-box; cursor: pointer; font-size: 13px; padding: 6px 10px; border-radius: 14px;
  border: 1px solid var(--line); color: var(--fg); background: var(--bg);
}
.fb button:focus-visible, .starter:focus-visible, .chip:focus-visible { outline: 2px solid var(--a); }
.starters { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0 10px; }
.starter:hover { border-color: var(--a); }
.typing { display: inline-flex; gap: 4px; padding: 4px 0; }
.typing i { width: 7px; height: 7px; border-radius: 50%; background: var(--muted); animation: blink 1.2s infinite ease-in-out; }
.typing i:nth-child(2) { animation-delay: .2s; }
.typing i:nth-child(3) { animation-delay: .4s; }
@keyframes blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
@media (prefers-reduced-motion: reduce) { .typing i { animation: none; opacity: .6; } .launcher { transition: none; } }
.jump { all: unset; box-sizing: border-box; cursor: pointer; position: absolute; bottom: 10px; left: 50%; transform: translateX(-50%);
  display: flex; align-items: center; gap: 6px;
  padding: 6px 12px; border-radius: 16px; background: var(--bg); color: var(--fg); border: 1px solid var(--line);
  box-shadow: 0 4px 14px rgba(0, 0, 0, .18); font-size: 13px; }
.jump:focus-visible { outline: 2px solid var(--a); }
.jump svg { width: 16px; height: 16px; fill: currentColor; }
.jump span:empty { display: none; }
.history { flex: 1; overflow-y: auto; padding: 8px; margin: 0; list-style: none; }
.history li { margin: 0; }
.history button { all: unset; box-sizing: border-box; cursor: pointer; display: block; width: 100%; padding: 10px 12px; border-radius: 10px; }
.history button:hover, .history button[aria-current="true"] { background: var(--bubble); }
.history button:focus-visible { outline: 2px solid var(--a); }
.history .t { display: block; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.history .s { display: block; font-size: 12px; color: var(--muted); }
.history .empty { padding: 12px; color: var(--muted); }
form { display: flex; gap: 8px; align-items: flex-end; padding: 10px; border-top: 1px solid var(--line); }
textarea {
  all: unset; box-sizing: border-box; flex: 1;
  min-height: 40px; max-height: 140px; overflow-y: auto;
  padding: 8px 12px; border: 1px solid var(--line); border-radius: 10px;
  white-space: pre-wrap; overflow-wrap: anywhere; field-sizing: content;
  background: var(--bg); color: var(--fg); font: inherit; font-size: 16px; line-height: 1.4;
}
textarea:focus { border-color: var(--a); box-shadow: 0 0 0 2px color-mix(in srgb, var(--a) 30%, transparent); }
textarea::placeholder { color: var(--muted); }
.send {
  all: unset; box-sizing: border-box; cursor: pointer;
  width: 40px; height: 40px; border-radius: 10px; flex: none;
  background: var(--a); color: var(--on-a); display: grid; place-items: center;
}
.send svg { width: 20px; height: 20px; fill: currentColor; }
[dir="rtl"] .send:not(.stop) svg { transform: scaleX(-1); }
.send:focus-visible { outline: 3px solid var(--a); outline-offset: 2px; }
.send[aria-disabled="true"] { opacity: .45; cursor: default; }
.md { overflow-wrap: break-word; }
.md > :first-child { margin-top: 0; }
.md > :last-child { margin-bottom: 0; }
.md:not(:empty) + .tail { margin-top: .6em; }  /* the open block, a sibling of the finished ones */
.md p, .md ul, .md ol, .md blockquote, .md .scroll, .md .code { margin: 0 0 .6em; }
.md h1, .md h2, .md h3, .md h4, .md h5, .md h6 { all: revert; margin: .2em 0 .4em; font-size: 1.05em; font-weight: 700; line-height: 1.3; }
.md h1 { font-size: 1.2em; }
.md ul, .md ol { padding-inline-start: 1.4em; }
.md li > p { margin: 0; }
.md a { color: var(--link); text-decoration: underline; }
.md code { font: .9em/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--code-bg); padding: .1em .3em; border-radius: 4px; }
.md .code { border-radius: 8px; background: var(--code-bg); overflow: hidden; }
.md .code .bar { display: flex; align-items: center; gap: 2px; padding-block: 2px; padding-inline: 10px 4px; font-size: 12px; color: var(--muted);
  border-bottom: 1px solid var(--line); }
.md .code .lang { flex: 1; }
.md pre { overflow-x: auto; padding: 8px 10px; margin: 0; direction: ltr; text-align: left; }
.md pre code { background: none; padding: 0; white-space: pre; }
.md .wrap pre code { white-space: pre-wrap; overflow-wrap: anywhere; }
.md blockquote { border-inline-start: 3px solid var(--line); padding-inline-start: 10px; color: var(--muted); margin-inline: 0; }
.md .scroll { overflow-x: auto; max-width: 100%; }
.md table { border-collapse: collapse; margin: 0; }
.md th, .md td { border: 1px solid var(--line); padding: 3px 7px; overflow-wrap: normal; word-break: normal; hyphens: none; min-width: 6em; vertical-align: top; }
.md th { white-space: nowrap; }
.md img { max-width: 100%; height: auto; border-radius: 6px; }
.md hr { border: 0; border-top: 1px solid var(--line); }
.hl-kw { color: #7a1c98; } .hl-str { color: #1a6530; } .hl-num { color: #8c4100; } .hl-com { color: #595e69; font-style: italic; }
.hl-lit { color: #0d4f94; } .hl-type { color: #6a4a00; } .hl-tag { color: #1c5a85; } .hl-attr { color: #8a3a00; } .hl-fn { color: #3546a8; }
.dark .hl-kw { color: #e3a8f7; } .dark .hl-str { color: #9ddba8; } .dark .hl-num { color: #f7bd80; } .dark .hl-com { color: #aab0bc; }
.dark .hl-lit { color: #94c6ff; } .dark .hl-type { color: #f1d88f; } .dark .hl-tag { color: #92d3f2; } .dark .hl-attr { color: #f7bd80; } .dark .hl-fn { color: #b4c2ff; }
.tail:empty { display: none; }
@media (max-width: 480px) {
  .root.open { inset: 0; }
  .root.open .launcher { display: none; }
  .panel { position: fixed; inset: 0; width: 100%; height: 100%; border-radius: 0; border: 0; }
}
`;
