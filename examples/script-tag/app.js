// The script-tag example: window.Confab, a public app and a signed-in chat that keeps its session.
const host = 'http://127.0.0.1:8787';

// Public apps need no user: just the workspace.
const anonymous = new Confab({ host, workspaceId: 'demo' });
document.getElementById('welcome-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = document.getElementById('welcome');
  out.textContent = '';
  try {
    const run = await anonymous.apps.execute({
      appId: 'welcome', payload: { inputs: { name: document.getElementById('name').value } }, stream: true,
      streamCallback: ({ content }) => { out.textContent += content; },
    });
    await run.result();
  } catch (err) {
    out.textContent = `${err.name}: ${err.message}`;
  }
});

// Signed-in chat: the site's backend (serve.mjs here) vouches for the user with an HMAC.
let confab = null;
let sessionId = null;
async function signIn() {
  const identity = await (await fetch('/identity?user=alice')).json();
  confab = Confab.identify(identity);
}

document.getElementById('chat-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = document.getElementById('chat');
  const timing = document.getElementById('timing');
  out.textContent = '';
  timing.textContent = '';
  const t0 = performance.now();
  let first = null;
  try {
    if (!confab) await signIn();
    const chat = await confab.apps.chatStream({
      appId: 'assistant', message: document.getElementById('message').value, sessionId: sessionId || undefined,
      streamCallback: ({ token }) => {
        if (first === null) first = performance.now() - t0;
        out.textContent += token;
      },
    });
    sessionId = chat.sessionId;
    await chat.result;
    timing.textContent = `session ${sessionId}; first token after ${first.toFixed(0)} ms`;
  } catch (err) {
    out.textContent = err instanceof Confab.IdentityError
      ? 'Sign-in was rejected: ' + err.message
      : `${err.name}: ${err.message}`;
  }
});
