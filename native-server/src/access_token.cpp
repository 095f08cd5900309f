// Access tokens of POST /v1/applications/token: HMAC-signed, self-contained, expiring.
#include "access_token.hpp"

#include <charconv>
#include <vector>

#include "confab/identity.hpp"

namespace confab::server {

namespace {

std::string token_mac(std::string_view secret, std::string_view ws, std::string_view client, std::int64_t exp_ms) {
    std::string msg = "at1\n";
    msg += ws;
    msg += '\n';
    msg += client;
    msg += '\n';
    msg += std::to_string(exp_ms);
    // Keyed with the secret's access-token key, never the secret itself: a user hash is
    // HMAC(secret, userId), so with the secret as key the hash of the id "at1\n<ws>\n<client>\n<exp>"
    // would be a valid token.
    const Sha256Digest key = derive_key(secret, KeyPurpose::access_token);
    return to_hex(hmac_sha256(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()), msg));
}

}  // namespace

std::string sign_access_token(const WorkspaceConfig& ws, std::string_view client_id, std::int64_t exp_ms) {
    std::string t = "at1.";
    t += ws.id;
    t += '.';
    t += client_id;
    t += '.';
    t += std::to_string(exp_ms);
    t += '.';
    t += token_mac(ws.secrets.front(), ws.id, client_id, exp_ms);
    return t;
}

Result<AccessTokenClaims> verify_access_token(const ServerConfig& config, std::string_view token, std::int64_t now) {
    auto malformed = [] { return make_error("token_malformed", "the access token is malformed"); };
    if (token.substr(0, 4) != "at1.") return malformed();
    // Workspace and client ids are [A-Za-z0-9_-]: no dots, so the token splits into exactly 5 parts.
    std::vector<std::string_view> parts;
    std::string_view rest = token;
    for (;;) {
        auto dot = rest.find('.');
        parts.push_back(rest.substr(0, dot));
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    if (parts.size() != 5) return malformed();
    std::int64_t exp = 0;
    auto [p, ec] = std::from_chars(parts[3].data(), parts[3].data() + parts[3].size(), exp);
    if (ec != std::errc() || p != parts[3].data() + parts[3].size()) return malformed();
    const WorkspaceConfig* ws = config.find_workspace(parts[1]);
    if (!ws) return make_error("token_invalid", "the access token is not valid");
    bool ok = false;
    for (const auto& secret : ws->secrets) {
        // Every secret is tried (no early exit), so timing does not tell which one matched.
        if (constant_time_equal(token_mac(secret, ws->id, parts[2], exp), parts[4])) ok = true;
    }
    if (!ok) return make_error("token_invalid", "the access token is not valid");
    if (now >= exp) return make_error("token_expired", "the access token has expired");
    const ApiClient* client = ws->find_client(parts[2]);
    if (!client || client->revoked) return make_error("client_revoked", "the access token's client is revoked");
    return AccessTokenClaims{ws, client, exp};
}

}  // namespace confab::server
