// Typed usage of @confab/sdk/widget, checked by tsc with the SDK's usage files (types.test.mjs).
import { mount } from '@confab/sdk/widget';
import type { ConfabChatElement, WidgetOptions } from '@confab/sdk/widget';

export async function widgetUsage(): Promise<void> {
  const options: WidgetOptions = {
    host: 'http://127.0.0.1:8787', appId: 'assistant', workspaceId: 'demo', identityUrl: '/confab-identity',
    title: 'Help', color: '#0a7', position: 'left', preload: 'intent',
  };
  const chat: ConfabChatElement = mount(options);
  await chat.open({ focus: false });
  chat.close();
  mount({ appId: 'assistant', identity: async () => ({ userId: 'u', hashedUserId: 'h' }) });
  const themed = mount({ appId: 'assistant', theme: 'dark', lang: 'ar', strings: { newChat: 'Start over' },
    imageHosts: ['img.example.com', '*.cdn.example.com'], avatar: '/bot.png' });
  themed.strings = { send: 'Go' };
  // @ts-expect-error theme is light, dark or auto
  mount({ appId: 'a', theme: 'blue' });
  // @ts-expect-error appId is required
  mount({ host: 'http://x' });
  // @ts-expect-error position is left or right
  mount({ appId: 'a', position: 'top' });
}
