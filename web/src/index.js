// ESM entry: `import Confab, { ApiError, ... } from '@confab/sdk'`.
import Confab from './confab.js';
import './execute.js';

export default Confab;
export { Confab };
export { ConfabError, ApiError, IdentityError, AbortError, TimeoutError } from './errors.js';
export { ChatAction } from './confab.js';
export const userHash = (secret, userId) => Confab.userHash(secret, userId);
