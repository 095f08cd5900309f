// Confab identity signing for a Node backend: user hashes and expiring v1 tokens (node:crypto only).
import { createHmac } from 'node:crypto';
import { pathToFileURL } from 'node:url';

// Every signer refuses the same user ids, with the same words: an empty one (anonymous) and one
// with a control character (which keeps every user hash apart from the derived keys below).
export function checkUserId(userId) {
  if (!userId) throw new Error('user id must not be empty (an empty user is anonymous)');
  if (/[\u0000-\u001f\u007f-\u009f]/.test(userId)) {
    throw new Error('user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)');
  }
}

// Lowercase hex HMAC-SHA256 with the workspace secret as key and the user id as message (UTF-8).
export function userHash(secret, userId) {
  checkUserId(userId);
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(userId, 'utf8')).digest('hex');
}

// The key of v1 tokens: HMAC-SHA256(secret, "confab-key\0identity-token-v1"), the raw 32 bytes. Never
// the secret itself: a user hash is HMAC(secret, userId), so a token MACed with the secret would be
// the user hash of some crafted id.
function tokenKey(secret) {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update('confab-key\0identity-token-v1').digest();
}

// "v1.<exp>.<hex HMAC-SHA256 over "v1\n" + workspaceId + "\n" + userId + "\n" + exp>", keyed with
// tokenKey(secret). expiresAt is Unix seconds; the server refuses the token from that second on.
export function identityToken(secret, workspaceId, userId, expiresAt) {
  checkUserId(userId);
  // The fields are joined with '\n', so an id holding one could be re-split: the server refuses it.
  if (workspaceId.includes('\n') || userId.includes('\n')) throw new Error('ids must not contain a newline');
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) throw new Error('expiresAt must be Unix seconds');
  const exp = String(expiresAt);
  const mac = createHmac('sha256', tokenKey(secret))
    .update(Buffer.from(`v1\n${workspaceId}\n${userId}\n${exp}`, 'utf8'))
    .digest('hex');
  return `v1.${exp}.${mac}`;
}

// What your identity endpoint (the widget's data-identity-url) answers for a signed-in user.
export function identityResponse(secret, workspaceId, userId, ttlSeconds = 600) {
  const expiresAt = Math.floor(Date.now() / 1000) + ttlSeconds;
  return { userId, workspaceId, hashedUserId: identityToken(secret, workspaceId, userId, expiresAt), expiresAt };
}

// CLI: CONFAB_SECRET=... node confab_sign.mjs hash <userId>
//      CONFAB_SECRET=... node confab_sign.mjs token <workspaceId> <userId> <expiresAt>
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const secret = process.env.CONFAB_SECRET;
  const [mode, ...args] = process.argv.slice(2);
  try {
    if (!secret) throw new Error('set CONFAB_SECRET to the workspace secret');
    if (mode === 'hash' && args.length === 1) console.log(userHash(secret, args[0]));
    else if (mode === 'token' && args.length === 3) console.log(identityToken(secret, args[0], args[1], Number(args[2])));
    else throw new Error('usage: confab_sign.mjs hash <userId> | token <workspaceId> <userId> <expiresAt>');
  } catch (e) {
    console.error(`confab_sign: ${e.message}`);
    process.exit(2);
  }
}
