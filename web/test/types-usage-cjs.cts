// Typed CommonJS usage of @confab/sdk (require), checked by tsc with types-usage.ts.
import Confab = require('@confab/sdk');

async function main(): Promise<void> {
  const c: Confab = Confab.identify({ userId: 'u', workspaceId: 'w', hashedUserId: await Confab.userHash('s', 'u'), host: 'http://127.0.0.1:1' });
  const run: Confab.ExecutionHandle = await c.apps.execute({ appId: 'a', stream: true, streamCallback: ({ content }) => content.length });
  const r: Confab.Execution = await run.result();
  try {
    await c.apps.get(r.appId);
  } catch (e) {
    if (e instanceof Confab.ApiError) {
      const err: Confab.ApiError = e;
      console.log(err.status, err.code);
    }
  }
  const same: Confab = new Confab.default({ host: "http://127.0.0.1:1", workspaceId: "w" });
  void same;
  // @ts-expect-error identify needs hashedUserId
  Confab.identify({ userId: 'u', workspaceId: 'w' });
}
void main;
