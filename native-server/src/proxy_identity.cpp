// GET /v1/identity/proxy: the trusted reverse-proxy identity mode. A proxy that has authenticated
// the user (nginx auth_request, oauth2-proxy, Authelia, basic auth ...) puts the user in the
// configured header; this answers the widget's data-identity-url with a short-lived v1 token.
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "api.hpp"
#include "util.hpp"

namespace confab::server {

namespace {

// The user id goes back to this server in the browser's X-Confab-User header, and fetch() cannot
// send arbitrary bytes there faithfully (header values are Latin-1 strings): a user id the widget
// could not present would only fail later, and less clearly.
constexpr std::size_t kMaxUserBytes = 256;  // the cap identify() applies to X-Confab-User

Response proxy_error(int status, std::string code, std::string message) {
    Response r;
    r.status = status;
    r.body = protocol::dump(protocol::encode(protocol::ApiError{std::move(message), std::move(code)}));
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
}

// Empty when valid, else why not.
std::string check_user(std::string_view user) {
    if (user.size() > kMaxUserBytes) return "is longer than " + std::to_string(kMaxUserBytes) + " bytes";
    for (const char ch : user) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\n' || c == '\r') return "contains a line break";
        if (c < 0x20 || c == 0x7f) return "contains a control character";
        if (c > 0x7e) return "contains a byte outside printable ASCII (the widget could not send it back)";
    }
    return {};
}

}  // namespace

boost::asio::awaitable<Response> Api::proxy_identity(const Request& req) {
    const std::string& header = config_.trusted_user_header;
    // Anyone who can reach the server directly could otherwise send the header themselves.
    if (!ip_in_networks(req.remote_ip, config_.trusted_proxies)) {
        log_line(R"({"level":"warn","msg":"identity/proxy request from an untrusted peer","peer":)" +
                 protocol::dump(protocol::Json(req.remote_ip)) + "}");
        co_return proxy_error(403, "proxy_not_trusted",
                           "this route answers only requests relayed by a trusted reverse proxy");
    }
    const auto ws_id = req.query_param("workspace");
    if (!ws_id || ws_id->empty()) {
        co_return proxy_error(400, "invalid_request", "workspace: the query parameter is required");
    }
    const WorkspaceConfig* ws = config_.find_workspace(*ws_id);
    if (!ws) co_return proxy_error(404, "unknown_workspace", "unknown workspace '" + std::string(*ws_id) + "'");
    if (ws->proxy_identity_ttl_seconds <= 0) {
        Response r = proxy_error(404, "proxy_identity_disabled",
                                 "workspace '" + ws->id + "' does not accept proxy identities (config proxyIdentity)");
        r.workspace = ws->id;
        co_return r;
    }

    // Exactly one header line: two mean someone upstream appended instead of replacing, and the
    // browser's copy may be the one a "first wins" rule would pick.
    const std::string lower = ascii_lower(header);
    std::optional<std::string_view> user;
    int count = 0;
    for (const auto& [k, v] : req.headers) {
        if (k == lower) {
            ++count;
            user = v;
        }
    }
    Response err;
    bool refused = true;
    if (count > 1) {
        err = proxy_error(401, "identity_malformed",
                          "the " + header + " header appears " + std::to_string(count) +
                              " times; the proxy must replace it, not append to it");
    } else if (!user || user->empty()) {
        err = proxy_error(401, "identity_missing",
                          "no " + header + " header: the proxy has not authenticated this request");
    } else if (auto why = check_user(*user); !why.empty()) {
        err = proxy_error(401, "identity_malformed", "the " + header + " header " + why);
    } else {
        refused = false;
    }
    if (refused) {
        err.workspace = ws->id;
        co_return err;
    }

    Caller caller;
    caller.workspace = ws;
    caller.user_id = std::string(*user);
    caller.anonymous = false;
    const bool within_rate = co_await check_rate(req, caller, err);
    if (!within_rate) {
        err.headers.emplace_back("Cache-Control", "no-store");
        err.workspace = ws->id;
        co_return err;
    }
    protocol::IdentityResponse out;
    out.workspace_id = ws->id;
    out.user_id = caller.user_id;
    out.expires_at = now_seconds() + ws->proxy_identity_ttl_seconds;
    auto signed_id = verifiers_.at(ws->id)->sign_token(out.user_id, *out.expires_at);
    if (!signed_id) {
        // check_user() above already refused what check_user_id() would: this is a missing secret.
        Response bad = proxy_error(500, signed_id.error().code, signed_id.error().message);
        bad.workspace = ws->id;
        co_return bad;
    }
    out.hashed_user_id = std::move(signed_id.value());
    Response r;
    r.status = 200;
    r.body = protocol::dump(protocol::encode(out));
    // A token is a credential for its lifetime: no shared or browser cache may keep it.
    r.headers.emplace_back("Cache-Control", "no-store");
    r.workspace = ws->id;
    co_return r;
}

}  // namespace confab::server
