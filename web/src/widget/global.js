// Script-tag entry (dist/confab-widget.js): `Confab.widget.mount({...})`, and a tag with
// data-app-id mounts the widget by itself:
//   <script src="/confab-widget.js" data-host="https://confab.example.com" data-app-id="assistant"
//           data-workspace-id="acme" data-identity-url="/confab-identity"></script>
import { mark, mount, define, setPanelBase } from './shell.js';

mark('script');
const script = document.currentScript;
if (script && script.src) setPanelBase(new URL('confab-widget-panel.js', script.src).href, script.nonce);

const api = { mount, define, version: '0.1.0' };
globalThis[Symbol.for('confab.widget')].api = api;  // for confab.global.js, should it load after this
// window.Confab may already be the SDK (confab.global.js): add to it rather than replace it.
const C = globalThis.Confab || (globalThis.Confab = {});
C.widget = api;

if (script && script.dataset.appId) {
  const d = script.dataset;
  const go = () => mount({
    host: d.host, appId: d.appId, workspaceId: d.workspaceId, identityUrl: d.identityUrl, title: d.title,
    greeting: d.greeting, placeholder: d.placeholder, color: d.color, position: d.position, preload: d.preload,
    panelUrl: d.panelUrl, theme: d.theme, lang: d.lang, imageHosts: d.imageHosts, avatar: d.avatar,
  });
  if (document.body) go();
  else document.addEventListener('DOMContentLoaded', go, { once: true });
}
