// Typed usage of @confab/sdk, checked by `tsc --noEmit` (npm run typecheck / types.test.mjs).
// Lines marked @ts-expect-error must stay errors: they prove the declarations are not `any`.
import Confab, { ApiError, IdentityError, AbortError, TimeoutError, ConfabError, ChatAction, userHash } from '@confab/sdk';
import type { Execution, ChatResult, Session, AppInfo, ChatStreamEvent } from '@confab/sdk';

async function main(): Promise<void> {
  const confab = Confab.identify({
    userId: 'u1', workspaceId: 'demo', hashedUserId: await userHash('secret', 'u1'), host: 'http://127.0.0.1:8787',
    retries: 2, timeoutMs: 10_000, headers: { 'X-Trace': '1' }, fetch: globalThis.fetch,
  });
  const pub = new Confab({ host: 'http://127.0.0.1:8787', workspaceId: 'demo' });
  const info: AppInfo = await pub.apps.get('welcome');
  const isPublic: boolean = info.public;

  const ac = new AbortController();
  const run = await confab.apps.execute({
    appId: 'haiku', version: 2, payload: { inputs: { topic: 'wasm', season: 'spring' } }, stream: true,
    streamCallback: ({ content }) => { const s: string = content; void s; },
    streamCompletedCallback: ({ content }) => console.log(content.length),
    signal: ac.signal,
  });
  const id: string = run.executionId;
  const done: Execution = await run.result();
  if (done.status === 'success') console.log(done.output, id, isPublic);
  await run.cancel();
  const again: Execution = await confab.apps.getResults({ appId: 'haiku', executionId: id });
  void again;

  const chat = await confab.apps.chatStream({
    appId: 'assistant', message: 'hi', sessionId: undefined, inputs: { lang: 'en' },
    streamCallback: (e: ChatStreamEvent) => {
      if (e.action === 'agent-response') console.log(e.token.toUpperCase());
      else if (e.action === 'agent-action') console.log(e.tool, e.tool_input);
    },
    streamCompletedCallback: ({ result }) => console.log(result.trim()),
  });
  const sid: string = chat.sessionId;
  const r: ChatResult = await chat.result;
  console.log(r.result, r.sessionId, sid);
  await confab.apps.chatStream({ appId: 'assistant', sessionId: sid, regenerate: true, idempotencyKey: 'k-1',
    onRetry: ({ attempt, delayMs, error }) => console.log(attempt, delayMs, error.code) });
  await confab.apps.chatStream({ appId: 'assistant', sessionId: sid, message: 'edited', editLast: true });
  const fb = await confab.feedback.send({ executionId: chat.executionId, rating: 'up' });
  console.log(fb.rating === 'up', fb.updatedAt);
  await confab.feedback.delete(chat.executionId);
  // @ts-expect-error rating is up or down
  await confab.feedback.send({ executionId: chat.executionId, rating: 'meh' });

  const sessions: Session[] = await confab.sessions.list({ appId: 'assistant' });
  const s: Session = await confab.sessions.get(sessions[0].id);
  console.log(s.messages?.[0]?.role, s.messages?.[0]?.status, s.messages?.[0]?.error?.code);
  await confab.sessions.delete(s.id);

  try {
    await confab.apps.get('x');
  } catch (e) {
    if (e instanceof IdentityError) console.log(e.status, e.code);
    else if (e instanceof ApiError) console.log(e.status === 429 ? e.retryAfterMs : e.body);
    else if (e instanceof AbortError || e instanceof TimeoutError) console.log(e.code);
    else if (e instanceof ConfabError) console.log(e.message);
  }
  const statics: typeof ApiError = Confab.ApiError;
  void statics;

  // @ts-expect-error identify needs hashedUserId
  Confab.identify({ userId: 'u', workspaceId: 'w' });
  // @ts-expect-error appId is required
  await confab.apps.execute({ stream: true });
  // @ts-expect-error content is a string, not a number
  await confab.apps.execute({ appId: 'a', streamCallback: ({ content }: { content: number }) => content });
  // Both forms: the documented `await chat.result` and the AirOps SDK's `await chat.result()`.
  const called: ChatResult = await chat.result();
  void called;
  // Numeric ids, as AirOps' samples write them; getResults without appId; ChatAction.
  const numeric = Confab.identify({ userId: 'u', workspaceId: 1234, hashedUserId: 'h' });
  const byId: Execution = await numeric.apps.getResults({ executionId: id });
  void byId;
  await numeric.apps.chatStream({ appId: 42, message: 'hi', streamCallback: (e) => {
    if (e.action === ChatAction.AgentActionError) console.log(e.tool, e.tool_error.trim());
  } });
  const action: ChatAction = ChatAction.Completed;
  void action;
  // @ts-expect-error result resolves to a ChatResult, not a string
  const wrong: string = await chat.result;
  void wrong;
  // @ts-expect-error retries is a number
  new Confab({ retries: 'three' });
}

void main;
