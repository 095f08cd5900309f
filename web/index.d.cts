// CommonJS view of the declarations: `require('@confab/sdk')` is the Confab class itself, with the
// error classes as static properties (see index.d.ts for the documentation).
import type * as Sdk from './index.js' with { 'resolution-mode': 'import' };

declare const Confab: typeof Sdk.Confab & {
  default: typeof Sdk.Confab;
  Confab: typeof Sdk.Confab;
};
type Confab = Sdk.Confab;
declare namespace Confab {
  type ConfabOptions = Sdk.ConfabOptions;
  type IdentifyOptions = Sdk.IdentifyOptions;
  type ExecutionStatus = Sdk.ExecutionStatus;
  type Execution = Sdk.Execution;
  type ExecuteOptions = Sdk.ExecuteOptions;
  type ExecutionHandle = Sdk.ExecutionHandle;
  type ChatStreamEvent = Sdk.ChatStreamEvent;
  type ChatStreamOptions = Sdk.ChatStreamOptions;
  type ChatResult = Sdk.ChatResult;
  type ChatHandle = Sdk.ChatHandle;
  type InputSpec = Sdk.InputSpec;
  type AppInfo = Sdk.AppInfo;
  type Message = Sdk.Message;
  type Session = Sdk.Session;
  type Feedback = Sdk.Feedback;
  type CallOptions = Sdk.CallOptions;
  type AppId = Sdk.AppId;
  type AwaitableResult<T> = Sdk.AwaitableResult<T>;
  type ChatAction = Sdk.ChatAction;
  type ConfabError = Sdk.ConfabError;
  type ApiError = Sdk.ApiError;
  type IdentityError = Sdk.IdentityError;
  type AbortError = Sdk.AbortError;
  type TimeoutError = Sdk.TimeoutError;
}
export = Confab;
