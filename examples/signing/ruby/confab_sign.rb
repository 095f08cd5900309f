# Confab identity signing for a Ruby backend: user hashes and expiring v1 tokens (stdlib openssl).
require 'openssl'

module ConfabSign
  module_function

  # Every signer refuses the same user ids, with the same words: an empty one (anonymous) and one
  # with a control character (which keeps every user hash apart from the derived keys below).
  def check_user_id(user_id)
    raise ArgumentError, 'user id must not be empty (an empty user is anonymous)' if user_id.empty?
    return unless user_id.match?(/[\u0000-\u001f\u007f-\u009f]/)

    raise ArgumentError, 'user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)'
  end

  # The key of v1 tokens: HMAC-SHA256(secret, "confab-key\0identity-token-v1"), the raw 32 bytes.
  # Never the secret itself: a user hash is HMAC(secret, user_id), so a token MACed with the secret
  # would be the user hash of some crafted id.
  def token_key(secret)
    OpenSSL::HMAC.digest('SHA256', secret.b, "confab-key\0identity-token-v1".b)
  end

  # Lowercase hex HMAC-SHA256 with the workspace secret as key and the user id as message (UTF-8).
  def user_hash(secret, user_id)
    check_user_id(user_id)
    OpenSSL::HMAC.hexdigest('SHA256', secret.b, user_id.b)
  end

  # "v1.<exp>.<hex HMAC-SHA256 over "v1\n" + workspace + "\n" + user + "\n" + exp>", keyed with
  # token_key(secret). expires_at is Unix seconds; the server refuses the token from that second on.
  def identity_token(secret, workspace_id, user_id, expires_at)
    check_user_id(user_id)
    # The fields are joined with "\n", so an id holding one could be re-split: the server refuses it.
    raise ArgumentError, 'ids must not contain a newline' if workspace_id.include?("\n") || user_id.include?("\n")
    raise ArgumentError, 'expires_at must be Unix seconds' unless expires_at.is_a?(Integer) && expires_at >= 0

    exp = expires_at.to_s
    message = "v1\n".b + workspace_id.b + "\n".b + user_id.b + "\n".b + exp.b
    "v1.#{exp}.#{OpenSSL::HMAC.hexdigest('SHA256', token_key(secret), message)}"
  end

  # What your identity endpoint (the widget's data-identity-url) answers for a signed-in user.
  def identity_response(secret, workspace_id, user_id, ttl_seconds = 600)
    expires_at = Time.now.to_i + ttl_seconds
    { userId: user_id, workspaceId: workspace_id,
      hashedUserId: identity_token(secret, workspace_id, user_id, expires_at), expiresAt: expires_at }
  end
end

# CLI: CONFAB_SECRET=... ruby confab_sign.rb hash <userId> | token <workspaceId> <userId> <expiresAt>
if $PROGRAM_NAME == __FILE__
  begin
    secret = ENV.fetch('CONFAB_SECRET', '')
    raise ArgumentError, 'set CONFAB_SECRET to the workspace secret' if secret.empty?

    mode, *args = ARGV
    if mode == 'hash' && args.length == 1
      puts ConfabSign.user_hash(secret, args[0])
    elsif mode == 'token' && args.length == 3
      puts ConfabSign.identity_token(secret, args[0], args[1], Integer(args[2], 10))
    else
      raise ArgumentError, 'usage: confab_sign.rb hash <userId> | token <workspaceId> <userId> <expiresAt>'
    end
  rescue ArgumentError => e
    warn "confab_sign: #{e.message}"
    exit 2
  end
end
