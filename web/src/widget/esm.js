// ESM entry (dist/confab-widget.mjs): `import { mount } from '@confab/sdk/widget'`. The panel is
// loaded from next to this file (dist/confab-widget-panel.js) unless panelUrl says otherwise.
import { mark, mount, define, setPanelBase, ConfabChat } from './shell.js';

mark('script');
setPanelBase(new URL('confab-widget-panel.js', import.meta.url).href);

export { mount, define, ConfabChat };
export default { mount, define };
