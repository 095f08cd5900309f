// Type declarations of @confab/sdk (hand-written; checked by `npm run typecheck`).

export interface ConfabOptions {
  /** API origin, e.g. "https://confab.example.com". Defaults to the page's origin in a browser. */
  host?: string;
  /** Workspace of the apps (required by `new Confab` for public apps; identify() sets it). A number is its decimal string. */
  workspaceId?: string | number;
  /** A fetch implementation (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** Extra headers sent with every request. */
  headers?: Record<string, string> | Headers;
  /** Retries after 429 (any call), 5xx and network errors (idempotent calls), and stream resumptions. Default 3. */
  retries?: number;
  /** Time allowed until the response headers, and the longest silence of a stream. Default 30000. */
  timeoutMs?: number;
  /**
   * The most bytes one server-sent event (data + event type + id) may hold; a larger one fails the
   * stream with code "sse_event_too_large". Default (and 0) 16 MiB; at most 2^30.
   */
  maxEventBytes?: number;
}

export interface IdentifyOptions extends ConfabOptions {
  userId: string;
  workspaceId: string | number;
  /** HMAC-SHA256 of userId under the workspace secret (hex), or an expiring `v1.` token, from your backend. */
  hashedUserId: string;
}

export type ExecutionStatus = 'queued' | 'running' | 'success' | 'error' | 'cancelled';

export interface Execution {
  id: string;
  executionId: string;
  appId: string;
  status: ExecutionStatus;
  /** The app's output: a string for text apps, any JSON for http apps; null until done. */
  output: unknown;
  error?: string;
  /** Machine code of a failed run (e.g. "upstream_error"), from the stream's error event. */
  errorCode?: string;
  version?: string;
  inputs?: Record<string, unknown>;
  sessionId?: string;
  createdAt?: number;
  updatedAt?: number;
}

/** An app's id; a number (as AirOps' samples write them) is its decimal string. */
export type AppId = string | number;

/**
 * A result that is awaited as a property (`await handle.result`) or called (`await handle.result()`,
 * as the AirOps SDK does): a function that is also a promise.
 */
export type AwaitableResult<T> = (() => Promise<T>) & Promise<T>;

export interface ExecuteOptions {
  appId: AppId;
  version?: string | number;
  payload?: { inputs?: Record<string, unknown> };
  stream?: boolean;
  streamCallback?: (chunk: { content: string }) => void;
  streamCompletedCallback?: (done: { content: string }) => void;
  signal?: AbortSignal;
}

export interface ExecutionHandle {
  executionId: string;
  /** The finished execution (whatever its status): from the stream, or polled. */
  result: AwaitableResult<Execution>;
  /** Cancels the run on the server; resolves also when it had already finished. */
  cancel(): Promise<Execution | undefined>;
}

export type ChatStreamEvent =
  | { action: 'agent-response'; token: string; /** the event's sequence number (SSE id) */ seq: number }
  | { action: 'agent-action'; tool: string; tool_input: unknown; seq: number }
  | { action: 'agent-action-error'; tool?: string; tool_error: string; seq: number; [key: string]: unknown };

/** The `action` of chat stream events, as the AirOps SDK exports it. */
export declare const ChatAction: {
  readonly AgentResponse: 'agent-response';
  readonly AgentAction: 'agent-action';
  readonly AgentActionError: 'agent-action-error';
  readonly Completed: 'completed';
};
export type ChatAction = (typeof ChatAction)[keyof typeof ChatAction];

export interface ChatStreamOptions {
  appId: AppId;
  /** The user's message (not needed with `regenerate`). */
  message?: string;
  /**
   * One key per turn (1-200 printable ASCII characters, e.g. crypto.randomUUID()): sent as the
   * Idempotency-Key header. Sending the same turn again with the same key (a retry) gives the same
   * turn on the server: the running or finished reply is streamed again, a failed one is re-run,
   * and the user message is stored once.
   */
  idempotencyKey?: string;
  /** Re-runs the session's last user message and replaces its reply (needs `sessionId`). */
  regenerate?: boolean;
  /** Replaces the session's last user message (and its reply) with `message` (needs `sessionId`). */
  editLast?: boolean;
  /** Called before the SDK waits to try again (a 429's Retry-After, or a backoff); abort `signal` to give up. */
  onRetry?: (info: { attempt: number; delayMs: number; error: ConfabError }) => void;
  /** Continue this session; omitted: a new session is created. */
  sessionId?: string;
  inputs?: Record<string, unknown>;
  streamCallback?: (event: ChatStreamEvent) => void;
  streamCompletedCallback?: (done: { action: 'completed'; result: string }) => void;
  signal?: AbortSignal;
}

export interface ChatResult {
  result: string;
  sessionId: string;
  status: ExecutionStatus;
  executionId: string;
  error?: string;
  errorCode?: string;
}

export interface ChatHandle {
  sessionId: string;
  executionId: string;
  result: AwaitableResult<ChatResult>;
  cancel(): Promise<Execution | undefined>;
}

export interface InputSpec {
  name: string;
  type: string;
  required?: boolean;
  description?: string;
}

export interface AppInfo {
  id: string;
  name: string;
  type: 'template' | 'llm' | 'http' | 'agent' | 'workflow';
  public: boolean;
  inputs?: InputSpec[];
  version?: string;
  versions?: string[];
  [key: string]: unknown;
}

export interface Message {
  role: 'user' | 'assistant' | 'system';
  content: string;
  createdAt: number;
  /** The run of this message's turn (assistant messages; user messages of servers that say it). */
  executionId?: string;
  turnId?: string;
  /** Assistant messages: how the reply ended (a failed turn has content "" and `error`). */
  status?: 'success' | 'error' | 'cancelled' | 'interrupted';
  error?: { code: string; message: string };
}

export interface Feedback {
  executionId: string;
  rating: 'up' | 'down';
  comment?: string;
  updatedAt: number;
}

export interface Session {
  id: string;
  appId: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  messageCount: number;
  messages?: Message[];
}

export interface CallOptions {
  signal?: AbortSignal;
}

export declare class Confab {
  constructor(options?: ConfabOptions);
  static identify(options: IdentifyOptions): Confab;
  /** Lowercase hex HMAC-SHA256(key = secret, message = userId). For backends and tests: never ship a secret to a browser. */
  static userHash(secret: string, userId: string): Promise<string>;
  static ConfabError: typeof ConfabError;
  static ApiError: typeof ApiError;
  static IdentityError: typeof IdentityError;
  static AbortError: typeof AbortError;
  static TimeoutError: typeof TimeoutError;
  static ChatAction: typeof ChatAction;

  readonly workspaceId: string | undefined;
  readonly userId: string | undefined;

  readonly apps: {
    get(appId: AppId, options?: CallOptions): Promise<AppInfo>;
    execute(options: ExecuteOptions): Promise<ExecutionHandle>;
    /** `appId` is optional; given, the execution must belong to that app (else a 404 ApiError). */
    getResults(options: { appId?: AppId; executionId: string; signal?: AbortSignal }): Promise<Execution>;
    chatStream(options: ChatStreamOptions): Promise<ChatHandle>;
  };

  readonly sessions: {
    list(options?: { appId?: AppId; limit?: number; signal?: AbortSignal }): Promise<Session[]>;
    get(sessionId: string, options?: CallOptions): Promise<Session>;
    delete(sessionId: string, options?: CallOptions): Promise<void>;
  };

  /** The current user's rating of a reply: one per user and execution, changeable. */
  readonly feedback: {
    send(options: { executionId: string; rating: 'up' | 'down'; comment?: string; signal?: AbortSignal }): Promise<Feedback>;
    delete(options: string | { executionId: string; signal?: AbortSignal }): Promise<void>;
  };
}

export default Confab;

export declare function userHash(secret: string, userId: string): Promise<string>;

/** Base of every error the SDK throws. */
export declare class ConfabError extends Error {
  constructor(message: string, options?: { code?: string; cause?: unknown });
  /** Stable machine-readable code, e.g. "invalid_argument", "network_error", "stream_interrupted". */
  code: string;
}

/** The server answered with an error status. */
export declare class ApiError extends ConfabError {
  status: number;
  /** The parsed error body ({error, code}) when there was one. */
  body?: unknown;
  /** From Retry-After, when the server sent one. */
  retryAfterMs?: number;
}

/** 401: missing, malformed, expired or wrong identity. */
export declare class IdentityError extends ApiError {}

/** The caller's AbortSignal fired. */
export declare class AbortError extends ConfabError {}

/** No answer (or a silent stream) for timeoutMs, after the allowed retries. */
export declare class TimeoutError extends ConfabError {}
