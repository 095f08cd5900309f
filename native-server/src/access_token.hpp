// Short-lived bearer tokens for server-to-server clients, verifiable with no database lookup.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config.hpp"
#include "confab/result.hpp"

namespace confab::server {

// Format: "at1.<workspace>.<clientId>.<expMs>.<hex HMAC-SHA256>" where the MAC is keyed with the
// access-token key derived from a workspace secret (derive_key(secret, KeyPurpose::access_token))
// over "at1\n" + workspace + "\n" + clientId + "\n" + expMs. The derived key keeps these MACs apart
// from user hashes and identity tokens made with the same secret. Expiry is in Unix milliseconds so a test can expire a 1 s token without sleeping long.
std::string sign_access_token(const WorkspaceConfig& ws, std::string_view client_id, std::int64_t exp_ms);

struct AccessTokenClaims {
    const WorkspaceConfig* workspace = nullptr;
    const ApiClient* client = nullptr;
    std::int64_t exp_ms = 0;
};

// Checks the shape, the MAC against every secret of the named workspace (rotation; constant-time
// compares), the expiry, and that the client still exists and is not revoked in the loaded config.
// Errors (all 401 to the caller): "token_malformed", "token_invalid", "token_expired", "client_revoked".
Result<AccessTokenClaims> verify_access_token(const ServerConfig& config, std::string_view token, std::int64_t now_ms);

}  // namespace confab::server
