"""Confab identity signing for a Python backend: user hashes and expiring v1 tokens (stdlib only).

Note: the hash is HMAC-SHA256(key=secret, msg=user_id), not sha256(secret + user_id).
"""
import hashlib
import hmac
import os
import sys
import time


def check_user_id(user_id: str) -> None:
    """Every signer refuses the same user ids, with the same words: an empty one (anonymous) and one
    with a control character (which keeps every user hash apart from the derived keys below)."""
    if not user_id:
        raise ValueError("user id must not be empty (an empty user is anonymous)")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in user_id):
        raise ValueError("user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)")


def token_key(secret: str) -> bytes:
    """The key of v1 tokens: HMAC-SHA256(secret, "confab-key\\0identity-token-v1"), the raw 32 bytes.

    Never the secret itself: a user hash is HMAC(secret, user_id), so a token MACed with the secret
    would be the user hash of some crafted id.
    """
    return hmac.new(secret.encode("utf-8"), b"confab-key\x00identity-token-v1", hashlib.sha256).digest()


def user_hash(secret: str, user_id: str) -> str:
    """Lowercase hex HMAC-SHA256 with the workspace secret as key and the user id as message (UTF-8)."""
    check_user_id(user_id)
    return hmac.new(secret.encode("utf-8"), user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def identity_token(secret: str, workspace_id: str, user_id: str, expires_at: int) -> str:
    """"v1.<exp>.<hex HMAC-SHA256 over "v1\\n" + workspace + "\\n" + user + "\\n" + exp>", keyed with
    token_key(secret).

    expires_at is Unix seconds; the server refuses the token from that second on.
    """
    check_user_id(user_id)
    # The fields are joined with "\n", so an id holding one could be re-split: the server refuses it.
    if "\n" in workspace_id or "\n" in user_id:
        raise ValueError("ids must not contain a newline")
    if isinstance(expires_at, bool) or not isinstance(expires_at, int) or expires_at < 0:
        raise ValueError("expires_at must be Unix seconds")
    exp = str(expires_at)
    message = f"v1\n{workspace_id}\n{user_id}\n{exp}".encode("utf-8")
    mac = hmac.new(token_key(secret), message, hashlib.sha256).hexdigest()
    return f"v1.{exp}.{mac}"


def identity_response(secret: str, workspace_id: str, user_id: str, ttl_seconds: int = 600) -> dict:
    """What your identity endpoint (the widget's data-identity-url) answers for a signed-in user."""
    expires_at = int(time.time()) + ttl_seconds
    return {
        "userId": user_id,
        "workspaceId": workspace_id,
        "hashedUserId": identity_token(secret, workspace_id, user_id, expires_at),
        "expiresAt": expires_at,
    }


def main(argv):
    """CONFAB_SECRET=... python3 confab_sign.py hash <userId> | token <workspaceId> <userId> <expiresAt>"""
    secret = os.environ.get("CONFAB_SECRET")
    try:
        if not secret:
            raise ValueError("set CONFAB_SECRET to the workspace secret")
        if len(argv) == 2 and argv[0] == "hash":
            print(user_hash(secret, argv[1]))
        elif len(argv) == 4 and argv[0] == "token":
            print(identity_token(secret, argv[1], argv[2], int(argv[3])))
        else:
            raise ValueError("usage: confab_sign.py hash <userId> | token <workspaceId> <userId> <expiresAt>")
    except ValueError as e:
        print(f"confab_sign: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
