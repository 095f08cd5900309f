// Error classes the SDK throws; exported so callers can tell failures apart with instanceof.

/** Base class of every error the SDK throws. `code` is a stable machine-readable string. */
export class ConfabError extends Error {
  constructor(message, { code = 'confab_error', cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ConfabError';
    this.code = code;
  }
}

/** The server answered with an error status; `status` is the HTTP status, `code` the server's. */
export class ApiError extends ConfabError {
  constructor(message, { status, code = 'http_' + status, body, retryAfterMs } = {}) {
    super(message, { code });
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

/** 401: the user id, its hash or the workspace was missing, malformed, expired or wrong. */
export class IdentityError extends ApiError {
  constructor(message, options) {
    super(message, options);
    this.name = 'IdentityError';
  }
}

/** The caller's AbortSignal fired. Nothing was cancelled on the server (use cancel() for that). */
export class AbortError extends ConfabError {
  constructor(message = 'the operation was aborted', { cause } = {}) {
    super(message, { code: 'aborted', cause });
    this.name = 'AbortError';
  }
}

/** A request or a stream saw no answer within `timeoutMs` (after the allowed retries). */
export class TimeoutError extends ConfabError {
  constructor(message, { cause } = {}) {
    super(message, { code: 'timeout', cause });
    this.name = 'TimeoutError';
  }
}

// A bad argument: a ConfabError whose code says so and whose message names the argument.
export function invalidArgument(message) {
  return new ConfabError(message, { code: 'invalid_argument' });
}
