// A small Node app on @confab/sdk: signs a user id the way a site's backend does, streams a chat
// reply from the demo server, continues the session, and runs a versioned app.
// Usage: npm install && node index.mjs ["your message"]   (with `make demo` running)
import Confab, { ApiError, IdentityError } from '@confab/sdk';

const host = process.env.CONFAB_HOST || 'http://127.0.0.1:8787';
// Demo-only secret from examples/config/demo.json. A real backend keeps its secret out of code.
const secret = process.env.CONFAB_SECRET || 'demo-secret-0123456789abcdef';
const userId = process.env.CONFAB_USER || 'npm-app-user';
const message = process.argv[2] || 'Hello from an npm app!';

const confab = Confab.identify({
  userId, workspaceId: 'demo', hashedUserId: await Confab.userHash(secret, userId), host,
});

try {
  const chat = await confab.apps.chatStream({
    appId: 'assistant', message,
    streamCallback: ({ token }) => process.stdout.write(token),
  });
  const first = await chat.result;
  console.log(`\n-- session ${first.sessionId}, ${first.status}\n`);

  const followUp = await confab.apps.chatStream({
    appId: 'assistant', message: 'And a follow-up in the same session.', sessionId: chat.sessionId,
    streamCallback: ({ token }) => process.stdout.write(token),
  });
  await followUp.result;
  const session = await confab.sessions.get(chat.sessionId);
  console.log(`\n-- the session now holds ${session.messages.length} messages\n`);

  const run = await confab.apps.execute({
    appId: 'haiku', version: '2', payload: { inputs: { topic: 'packages', season: 'Autumn' } }, stream: true,
    streamCallback: ({ content }) => process.stdout.write(content),
  });
  const result = await run.result();
  console.log(`-- execution ${run.executionId}: ${result.status}`);
} catch (err) {
  if (err instanceof IdentityError) console.error('identity rejected:', err.code, err.message);
  else if (err instanceof ApiError) console.error(`API error ${err.status} ${err.code}: ${err.message}`);
  else console.error(err);
  process.exitCode = 1;
}
