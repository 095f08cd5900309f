// Types of the chat widget: `import { mount } from '@confab/sdk/widget'` (dist/confab-widget.mjs),
// or `Confab.widget.mount(...)` after <script src="confab-widget.js">.

/** What the site's backend vouches for (the JSON a data-identity-url answers). */
export interface WidgetIdentity {
  userId: string;
  workspaceId?: string;
  /** hex(HMAC-SHA256(workspace secret, userId)) or an expiring `v1.` token. */
  hashedUserId: string;
}

export interface WidgetOptions {
  /** The app to chat with (an agent or llm app). */
  appId: string;
  /** The Confab server, e.g. "https://confab.example.com"; default: the page's origin. */
  host?: string;
  /** The workspace (for anonymous use of public apps, or when the identity does not say). */
  workspaceId?: string;
  /** Your backend's endpoint answering {userId, workspaceId, hashedUserId} (same origin, with cookies). */
  identityUrl?: string;
  /** The identity itself, or an async function returning it (called again when it expires). */
  identity?: WidgetIdentity | (() => WidgetIdentity | Promise<WidgetIdentity>);
  /** The panel's heading (default: the app's name, else "Chat"). Attribute `chat-title` (`data-title` on the script tag; also accepted on the element). */
  title?: string;
  /** The first message shown in a new conversation. */
  greeting?: string;
  placeholder?: string;
  /** The accent colour (any CSS colour). */
  color?: string;
  position?: 'right' | 'left';
  /** When to fetch the panel: when the page is idle (default), on hover/focus of the launcher, or on open. */
  preload?: 'idle' | 'intent' | 'open';
  /** Where confab-widget-panel.js is (default: next to the shell). */
  panelUrl?: string;
  /** Open the panel right away. */
  open?: boolean;
  /** Where to add the element (default document.body). */
  target?: Element;
  /** Colours: "auto" (default) follows the host page (its color-scheme, else its background), then the OS. */
  theme?: 'light' | 'dark' | 'auto';
  /** UI language: "en" (built in), "de", "fr", "es", "ar" (right to left), fetched next to the panel; default: the page's <html lang>, then the browser's. */
  lang?: string;
  /** Your own UI strings, by key (see web/README.md for the keys), e.g. { newChat: 'Start over' }. */
  strings?: Record<string, string>;
  /** Hosts whose images a reply may show ("img.example.com", "*.example.com"), added to the app's `imageHosts`; other images become links. */
  imageHosts?: string[];
  /** The bot's avatar image URL (default: the app's `avatarUrl`). */
  avatar?: string;
}

/** The <confab-chat> element. */
export interface ConfabChatElement extends HTMLElement {
  identity?: WidgetOptions['identity'];
  strings?: WidgetOptions['strings'];
  /** Opens the panel (loading it first); resolves when it is interactive. */
  open(options?: { focus?: boolean }): Promise<void>;
  close(): void;
  /** Starts a new conversation (stops a streaming reply, forgets the stored session). */
  reset(): Promise<void> | undefined;
}

/** Adds a <confab-chat> to the page and returns it. */
export function mount(options: WidgetOptions): ConfabChatElement;
/** Registers the <confab-chat> element (mount() does it); returns its class. */
export function define(): CustomElementConstructor;
export declare const ConfabChat: CustomElementConstructor;
declare const widget: { mount: typeof mount; define: typeof define };
export default widget;
