// apps.execute() and apps.getResults(): runs of any app, streamed or polled. Added to the Apps class
// by the package entries (index.js, global.cjs); the chat widget's panel leaves them out.
import { ConfabError, ApiError, invalidArgument } from './errors.js';
import { abortErrorFrom, requestJson, sleep } from './http.js';
import {
  Apps, addError, awaitableResult, callSafely, cancelExecution, describe, optionalFunction, optionalId, optionalSignal,
  optionalString, path, quiet, requireId, requireObject, requireString, startStream, streamRun,
} from './confab.js';

const TERMINAL = new Set(['success', 'error', 'cancelled']);

// Polls an execution until it is terminal, with backoff (no stream to wait on).
async function pollExecution(client, executionId, signal) {
  for (let attempt = 0; ; attempt++) {
    const ex = await requestJson(client, { method: 'GET', path: path.execution(executionId), signal });
    if (ex && TERMINAL.has(ex.status)) return { ...ex, executionId: ex.id };
    await sleep(Math.min(2000, 100 * 1.6 ** attempt) * (0.5 + Math.random() / 2), signal);
  }
}

/**
 * Runs an app. Resolves once the run has started with {executionId, result(), cancel()}.
 * With stream: true the same request streams the output: streamCallback({content}) per delta,
 * streamCompletedCallback({content}) with the whole output at the end.
 */
async function execute(args) {
  requireObject(args, 'execute(args)');
  const appId = requireId(args.appId, 'appId');
  let version = args.version;
  if (typeof version === 'number' && Number.isFinite(version)) version = String(version);
  version = optionalString(version, 'version');
  const payload = args.payload === undefined ? {} : requireObject(args.payload, 'payload');
  const inputs = payload.inputs === undefined ? {} : requireObject(payload.inputs, 'payload.inputs');
  if (args.stream !== undefined && typeof args.stream !== 'boolean') {
    throw invalidArgument(`stream: expected true or false, got ${describe(args.stream)}`);
  }
  const stream = args.stream === true;
  const streamCallback = optionalFunction(args.streamCallback, 'streamCallback');
  const streamCompletedCallback = optionalFunction(args.streamCompletedCallback, 'streamCompletedCallback');
  if (!stream && (streamCallback || streamCompletedCallback)) {
    throw invalidArgument('streamCallback/streamCompletedCallback: need stream: true');
  }
  const signal = optionalSignal(args.signal);
  if (signal && signal.aborted) throw abortErrorFrom(signal);
  const client = this._client;
  const body = version === undefined ? { inputs } : { version, inputs };
  const cancel = (executionId) => () => cancelExecution(client, executionId);

  if (!stream) {
    const created = await requestJson(client, { method: 'POST', path: path.app(appId) + '/executions', body, signal });
    const executionId = created && created.executionId;
    if (!executionId) throw new ConfabError('the server sent no executionId', { code: 'invalid_response' });
    let done = null;
    return {
      executionId,
      result: awaitableResult(() => (done ??= pollExecution(client, executionId, signal))),
      cancel: cancel(executionId),
    };
  }

  const { first, core, executionId } = await startStream(client, { path: path.app(appId) + '/executions', body, signal });
  const done = quiet(streamRun(client, core, {
    first, executionId, signal,
    onEvent(type, data) {
      if (type === 'delta') callSafely(streamCallback, { content: data.content });
    },
    finish(completed, transcript) {
      // The output may be any JSON (http apps); the streamed text is the string output or the deltas.
      const output = completed.output === undefined ? null : completed.output;
      callSafely(streamCompletedCallback, { content: transcript.result() });
      const result = { id: executionId, executionId, appId, status: transcript.status(), output };
      addError(result, transcript);
      return result;
    },
  }));
  return { executionId, result: awaitableResult(() => done), cancel: cancel(executionId) };
}

/**
 * GET /v1/executions/{executionId}: the execution (status, output, error...). `appId` is optional
 * (the AirOps SDK reads an execution by its id alone); given, the execution must be that app's.
 */
async function getResults(args) {
  requireObject(args, 'getResults(args)');
  const appId = optionalId(args.appId, 'appId');
  const executionId = requireString(args.executionId, 'executionId');
  const ex = await requestJson(this._client, { method: 'GET', path: path.execution(executionId), signal: optionalSignal(args.signal) });
  if (appId !== undefined && ex && ex.appId !== undefined && ex.appId !== appId) {
    throw new ApiError(`execution ${executionId} does not belong to app ${appId}`,
      { status: 404, code: 'execution_not_found' });
  }
  return { ...ex, executionId: ex.id };
}

Apps.prototype.execute = execute;
Apps.prototype.getResults = getResults;
