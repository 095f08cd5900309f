// The v1 HTTP API: routes, identity (user hash / token, anonymous on public apps), tenant scoping,
// CORS, rate limits. Transport-neutral: http_server.cpp turns Request/Response into HTTP.
#include "api.hpp"

#include <charconv>
#include <exception>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "airops_edge.hpp"
#include "openapi.hpp"
#include "mcp.hpp"
#include "request_head.hpp"
#include "responses.hpp"
#include "util.hpp"
#include "workflows.hpp"

namespace asio = boost::asio;

namespace confab::server {

using protocol::Json;

namespace {

constexpr const char* kAllowHeaders =
    "Content-Type, Authorization, Accept, Last-Event-ID, X-Confab-Workspace, X-Confab-User, "
    "X-Confab-User-Hash, Idempotency-Key, Mcp-Session-Id, MCP-Protocol-Version";
constexpr const char* kExposeHeaders =
    "X-Confab-Execution-Id, X-Confab-Session-Id, Retry-After, Idempotency-Replayed, Mcp-Session-Id, "
    "WWW-Authenticate";

// Maps a core/store error to an HTTP status.
int status_for(const Error& e) {
    const std::string& c = e.code;
    if (c == "too_large") return 413;
    if (c == "invalid_request" || c == "invalid_json" || c == "too_deep") return 400;
    if (c == "not_found") return 404;
    if (c == "conflict") return 409;
    if (c == "shutting_down" || c == "storage_unavailable") return 503;
    return 500;
}

Response from_error(const Error& e) {
    int status = status_for(e);
    if (e.code == "storage_unavailable") {
        // The details (paths, SQLite's words) go to the log, not to the client.
        log_line(R"({"level":"error","msg":)" + protocol::dump(Json(e.message)) + R"(,"code":"storage_unavailable"})");
        Response r = error_response(503, "storage_unavailable", "storage is unavailable; retry shortly");
        r.headers.emplace_back("Retry-After", "5");
        return r;
    }
    if (status >= 500 && status != 503) {
        log_line(R"({"level":"error","msg":)" + protocol::dump(Json(e.message)) +
                 R"(,"code":)" + protocol::dump(Json(e.code)) + "}");
        return error_response(status, "internal", "internal error");
    }
    return error_response(status, e.code, e.message);
}

bool wants_event_stream(const Request& req) {
    auto accept = req.header("accept");
    return accept && accept->find("text/event-stream") != std::string_view::npos;
}

Result<Json> parse_body(const Request& req, bool empty_is_object) {
    std::string_view body = req.body;
    bool blank = body.find_first_not_of(" \t\r\n") == std::string_view::npos;
    if (blank) {
        if (empty_is_object) return Json::object();
        return make_error("invalid_request", "body: a JSON object is required");
    }
    return protocol::parse_json(body);
}

// A stream started by a POST (an execution with Accept: text/event-stream, or a chat turn) names
// its execution in the X-Confab-Execution-Id response header (a chat turn also its session in
// X-Confab-Session-Id), not in an extra first event: a run's events are then the same whether read
// live, replayed or resumed, with seqs 1..n. Both headers are CORS-exposed, and headers arrive
// before any event, so a client always has the id it needs to resume.
Response sse_response(const std::string& execution_id) {
    Response r;
    r.status = 200;
    r.content_type = "text/event-stream";
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.headers.emplace_back("X-Accel-Buffering", "no");
    r.headers.emplace_back("X-Confab-Execution-Id", execution_id);
    return r;
}

// Idempotency-Key: 1-200 printable ASCII characters (what a UUID or any client token fits in).
bool valid_idempotency_key(std::string_view k) {
    if (k.empty() || k.size() > 200) return false;
    for (char c : k) {
        if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
}

protocol::Message to_wire(const MessageRecord& m) {
    protocol::Message w;
    w.role = m.role;
    w.content = m.content;
    w.created_at = m.created_at;
    w.turn_id = m.turn_id;
    w.execution_id = m.execution_id;
    if (m.role == protocol::Role::assistant) {
        w.status = m.status;
        w.error_code = m.error_code;
        w.error_message = m.error_message;
    }
    return w;
}

// What the model is shown of the session's first `end` messages: the turns as they were said,
// without replies that said nothing (a turn that failed before its first token).
std::vector<protocol::Message> model_history(const std::vector<MessageRecord>& msgs, std::size_t end) {
    std::vector<protocol::Message> out;
    for (std::size_t i = 0; i < end && i < msgs.size(); ++i) {
        if (msgs[i].role == protocol::Role::assistant && msgs[i].content.empty()) continue;
        protocol::Message m;
        m.role = msgs[i].role;
        m.content = msgs[i].content;
        m.created_at = msgs[i].created_at;
        out.push_back(std::move(m));
    }
    return out;
}

// Last-Event-ID (header, else ?lastEventId) of a resumed or replayed stream: a stored seq, so
// 0..INT64_MAX; anything else is a 400 naming where it came from.
std::optional<Response> read_resume_point(const Request& req, std::uint64_t& after) {
    std::optional<std::string_view> last = req.header("last-event-id");
    const char* source = "Last-Event-ID";
    if (!last || last->empty()) {
        last = req.query_param("lastEventId");
        source = "lastEventId";
    }
    after = 0;
    if (!last || last->empty()) return std::nullopt;
    auto parsed = parse_event_id(*last);
    if (!parsed) {
        return error_response(400, "invalid_request",
                              std::string(source) + ": must be an event id, a decimal integer from 0 to 9223372036854775807");
    }
    after = *parsed;
    return std::nullopt;
}

}  // namespace

struct Api::Match {
    Route route = Route::unmatched;
    std::string param;
    const char* allow = "";
    bool method_ok = false;
};

namespace {

void set_route(Api::Match& m, Route r, std::string param, const char* allow, std::string_view method) {
    m.route = r;
    m.param = std::move(param);
    m.allow = allow;
    std::string_view a = allow;
    // `allow` is a ", "-separated list; a method matches a whole entry.
    while (!a.empty()) {
        auto comma = a.find(", ");
        auto item = a.substr(0, comma);
        if (item == method) m.method_ok = true;
        if (comma == std::string_view::npos) break;
        a.remove_prefix(comma + 2);
    }
}

}  // namespace

Api::Api(const ServerConfig& config, DbExecutor& db, ExecutionHub& hub, Metrics& metrics, ApiOptions options)
    : config_(config), db_(db), hub_(hub), metrics_(metrics), options_(options),
      cache_(options.execution_cache_bytes) {
    for (const auto& ws : config_.workspaces) {
        verifiers_.emplace(ws.id, std::make_unique<IdentityVerifier>(ws.id, ws.secrets));
    }
}

void Api::set_service(WorkflowService* service) {
    service_ = service;
    if (!service_) return;
    service_->set_chat([this](Request& req, const WorkspaceConfig* ws, std::string app_id) {
        return api_chat(req, ws, std::move(app_id));
    });
}

// The end-user routes as the server-to-server API's own user of the workspace.
Api::Caller Api::api_caller(const WorkspaceConfig* ws) {
    Caller c;
    c.workspace = ws;
    c.user_id = kApiUser;
    c.anonymous = false;
    return c;
}

asio::awaitable<Response> Api::execute_as_api(Request& req, const WorkspaceConfig* ws, std::string app_id) {
    Caller c = api_caller(ws);
    co_return co_await execute(req, c, app_id);
}

asio::awaitable<Response> Api::api_chat(Request& req, const WorkspaceConfig* ws, std::string app_id) {
    Caller c = api_caller(ws);
    co_return co_await chat(req, c, app_id);
}

bool Api::origin_allowed(const WorkspaceConfig* ws, std::string_view origin) const {
    auto allowed_in = [&](const WorkspaceConfig& w) {
        for (const auto& o : w.allowed_origins) {
            if (o == "*" || o == origin) return true;
        }
        return false;
    };
    if (ws) return allowed_in(*ws);
    for (const auto& w : config_.workspaces) {
        if (allowed_in(w)) return true;
    }
    return false;
}

bool Api::identify(const Request& req, bool allow_anonymous, Caller& out, Response& err) const {
    auto ws_id = req.header("x-confab-workspace");
    if (!ws_id || ws_id->empty()) {
        err = error_response(401, "identity_missing", "the X-Confab-Workspace header is required");
        return false;
    }
    const WorkspaceConfig* ws = config_.find_workspace(*ws_id);
    if (!ws) {
        err = error_response(401, "unknown_workspace", "unknown workspace '" + std::string(*ws_id) + "'");
        return false;
    }
    out.workspace = ws;
    auto user = req.header("x-confab-user");
    auto hash = req.header("x-confab-user-hash");
    bool has_user = user && !user->empty();
    bool has_hash = hash && !hash->empty();
    if (!has_user && !has_hash) {
        if (!allow_anonymous) {
            err = error_response(401, "identity_missing",
                                 "X-Confab-User and X-Confab-User-Hash are required");
            return false;
        }
        out.anonymous = true;
        out.user_id.clear();
        return true;
    }
    if (!has_user) {
        err = error_response(401, "identity_missing", "the X-Confab-User header is required with X-Confab-User-Hash");
        return false;
    }
    if (!has_hash) {
        err = error_response(401, "identity_missing", "the X-Confab-User-Hash header is required with X-Confab-User");
        return false;
    }
    if (user->size() > 256) {
        err = error_response(401, "identity_malformed", "X-Confab-User is longer than 256 bytes");
        return false;
    }
    const auto& verifier = verifiers_.at(ws->id);
    Status st = verifier->verify(*user, *hash, now_seconds());
    if (!st) {
        err = error_response(401, st.error().code, st.error().message);
        return false;
    }
    out.anonymous = false;
    out.user_id = std::string(*user);
    return true;
}

asio::awaitable<bool> Api::check_rate(const Request& req, const Caller& caller, Response& err) {
    const RateLimit& rl = caller.workspace->rate_limit;
    // Anonymous callers share no bucket with each other: they are told apart by address.
    std::string key = caller.workspace->id;
    key += '\x1f';
    key += caller.anonymous ? "ip:" + req.remote_ip : "u:" + caller.user_id;
    auto retry = co_await limiter_.take(db_, key, rl.per_second, rl.burst);
    if (!retry) co_return true;
    err = error_response(429, "rate_limited",
                         "too many requests; retry in " + std::to_string(*retry) + " s");
    err.headers.emplace_back("Retry-After", std::to_string(*retry));
    co_return false;
}

Response Api::preflight(const Request& req, const Match& m) const {
    auto origin = req.header("origin");
    if (!origin) {
        Response r;
        r.status = 204;
        r.content_type.clear();
        r.headers.emplace_back("Allow", std::string(m.allow) + ", OPTIONS");
        return r;
    }
    // A preflight carries no X-Confab-Workspace value, so it cannot be tied to one workspace:
    // it passes when any workspace allows the origin, and the real request is checked against
    // its own workspace (403 there).
    if (!origin_allowed(nullptr, *origin)) {
        return error_response(403, "origin_not_allowed", "origin '" + std::string(*origin) + "' is not allowed");
    }
    Response r;
    r.status = 204;
    r.content_type.clear();
    r.headers.emplace_back("Access-Control-Allow-Origin", std::string(*origin));
    r.headers.emplace_back("Vary", "Origin");
    r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS");
    r.headers.emplace_back("Access-Control-Allow-Headers", kAllowHeaders);
    r.headers.emplace_back("Access-Control-Expose-Headers", kExposeHeaders);
    r.headers.emplace_back("Access-Control-Max-Age", "600");
    return r;
}

void Api::resolve_client_ip(Request& req) const {
    if (!config_.trust_forwarded_for) return;
    // Several X-Forwarded-For headers are one list, in order (RFC 9110 field combination).
    std::string list;
    for (const auto& [k, v] : req.headers) {
        if (k != "x-forwarded-for") continue;
        if (!list.empty()) list += ',';
        list += v;
    }
    if (!list.empty()) req.remote_ip = client_ip_behind_proxies(req.remote_ip, list, config_.trusted_proxies);
}

asio::awaitable<Response> Api::handle(Request& req) {
    if (airops_ && AiropsEdge::owns(req.path)) co_return co_await airops_->handle(req);
    Match m;
    auto segs = split_path(req.path);
    const std::string_view method = req.method;
    auto seg = [&](std::size_t i) { return std::string(segs[i]); };
    bool nonempty = true;
    for (auto s : segs) nonempty = nonempty && !s.empty();
    if (nonempty && segs.size() == 1) {
        if (segs[0] == "healthz") set_route(m, Route::healthz, "", "GET", method);
        if (segs[0] == "readyz") set_route(m, Route::readyz, "", "GET", method);
        if (segs[0] == "metrics") set_route(m, Route::metrics, "", "GET", method);
    } else if (nonempty && segs.size() >= 2 && segs[0] == "v1") {
        const auto n = segs.size();
        if (n == 2 && segs[1] == "identity") set_route(m, Route::identity, "", "POST", method);
        if (n == 2 && segs[1] == "openapi.json") set_route(m, Route::openapi, "", "GET", method);
        // Exists only when configured: otherwise it is as unknown as any other path.
        if (n == 3 && segs[1] == "identity" && segs[2] == "proxy" && !config_.trusted_user_header.empty()) {
            set_route(m, Route::identity_proxy, "", "GET", method);
        }
        if (n == 2 && segs[1] == "sessions") set_route(m, Route::sessions_list, "", "GET", method);
        if (segs[1] == "apps") {
            if (n == 3) set_route(m, Route::app_get, seg(2), "GET", method);
            if (n == 4 && segs[3] == "executions") set_route(m, Route::execute, seg(2), "POST", method);
            if (n == 4 && segs[3] == "chat") set_route(m, Route::chat, seg(2), "POST", method);
        }
        if (segs[1] == "executions") {
            if (n == 3) set_route(m, Route::execution_get, seg(2), "GET", method);
            if (n == 4 && segs[3] == "events") set_route(m, Route::execution_events, seg(2), "GET", method);
            if (n == 4 && segs[3] == "cancel") set_route(m, Route::execution_cancel, seg(2), "POST", method);
            if (n == 4 && segs[3] == "feedback") set_route(m, Route::feedback, seg(2), "POST, DELETE", method);
        }
        if (segs[1] == "sessions" && n == 3) set_route(m, Route::session, seg(2), "GET, DELETE", method);
        // The MCP endpoint (mcp.cpp). GET is 405: see mcp.hpp for why there is no GET stream.
        if (n == 2 && segs[1] == "mcp" && mcp_) set_route(m, Route::mcp, "", "POST, DELETE", method);
        // Server-to-server routes: workflows.cpp routes within them (405s included).
        if (service_ && WorkflowService::owns(segs)) {
            const Route r = segs[1] == "workflows"  ? Route::workflows
                            : segs[1] == "agents"   ? Route::agents
                            : segs[1] == "jobs"     ? Route::jobs
                            : segs[1] == "feedback" ? Route::feedback_list
                                                    : Route::app_token;
            set_route(m, r, "", "GET, POST, PATCH, DELETE", method);
            m.method_ok = method != "OPTIONS";
        }
    }

    Response res;
    if (m.route == Route::unmatched) {
        res = error_response(404, "not_found", "no route for " + std::string(req.method) + " " + req.path);
        res.route = m.route;
        co_return res;
    }
    const bool is_v1 = m.route != Route::healthz && m.route != Route::readyz && m.route != Route::metrics;
    if (method == "OPTIONS") {
        res = preflight(req, m);
        res.route = Route::preflight;
        co_return res;
    }
    if (!m.method_ok) {
        res = error_response(405, "method_not_allowed",
                             std::string(req.method) + " is not allowed here; allowed: " + m.allow);
        res.headers.emplace_back("Allow", std::string(m.allow) + ", OPTIONS");
    } else {
        std::string failure;
        try {
            res = co_await dispatch(req, m);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure.empty()) res = from_error(make_error("internal", failure));
    }
    res.route = m.route;

    // CORS on the actual request: checked against the caller's workspace (or, before a workspace
    // is known, any workspace, so that a browser can read the 401 that follows).
    auto origin = req.header("origin");
    if (is_v1 && origin) {
        const WorkspaceConfig* ws = nullptr;
        if (auto w = req.header("x-confab-workspace")) ws = config_.find_workspace(*w);
        if (!ws && !res.workspace.empty()) ws = config_.find_workspace(res.workspace);
        if (!origin_allowed(ws, *origin)) {
            Response denied = error_response(403, "origin_not_allowed",
                                             "origin '" + std::string(*origin) + "' is not allowed for this workspace");
            denied.route = m.route;
            denied.workspace = res.workspace;
            co_return denied;
        }
        res.headers.emplace_back("Access-Control-Allow-Origin", std::string(*origin));
        res.headers.emplace_back("Vary", "Origin");
        res.headers.emplace_back("Access-Control-Expose-Headers", kExposeHeaders);
    }
    co_return res;
}

asio::awaitable<Response> Api::dispatch(Request& req, const Match& m) {
    switch (m.route) {
        case Route::healthz: co_return json_response(200, Json{{"status", "ok"}});
        case Route::readyz:
            if (!ready_.load() || hub_.shutting_down()) {
                co_return error_response(503, "not_ready", "the server is not ready");
            }
            if (db_.writes_failing()) {
                // Ask storage again (one tiny write), so a freed disk makes the server ready
                // even when no run is there to notice.
                const std::int64_t now = now_ms();
                Status probe = make_error("storage_unavailable", "not probed");
                try {
                    probe = co_await db_.run([now](Store& s) { return s.probe_write(now); });
                } catch (const std::exception& e) {
                    probe = make_error("storage_unavailable", e.what());
                }
                if (!probe || db_.writes_failing()) {
                    co_return error_response(503, "storage_unavailable", "storage does not accept writes");
                }
            }
            co_return json_response(200, Json{{"status", "ready"}});
        case Route::metrics: co_return co_await metrics_text();
        case Route::openapi: co_return openapi(req);
        case Route::identity: co_return co_await identity(req);
        case Route::identity_proxy: co_return co_await proxy_identity(req);
        case Route::workflows:
        case Route::agents:
        case Route::jobs:
        case Route::feedback_list:
        case Route::app_token: {
            std::vector<std::string> segs;
            for (auto sv : split_path(req.path)) segs.emplace_back(sv);
            co_return co_await service_->handle(req, std::move(segs));
        }
        case Route::mcp: co_return co_await mcp_->handle(req);
        case Route::execution_cancel:
            // A backend cancels with its bearer credential; a browser with its identity headers.
            if (service_ && req.header("authorization") && !req.header("x-confab-workspace")) {
                co_return co_await service_->cancel_with_bearer(req, m.param);
            }
            break;
        default: break;
    }
    // End-user routes. The origin is checked before anything else is revealed.
    if (auto origin = req.header("origin")) {
        const WorkspaceConfig* ws = nullptr;
        if (auto w = req.header("x-confab-workspace")) ws = config_.find_workspace(*w);
        if (ws && !origin_allowed(ws, *origin)) {
            Response r = error_response(403, "origin_not_allowed",
                                        "origin '" + std::string(*origin) + "' is not allowed for this workspace");
            r.workspace = ws->id;
            co_return r;
        }
    }
    Caller caller;
    Response err;
    // Anonymous callers get through here; routes that need a user check `anonymous`.
    if (!identify(req, true, caller, err)) {
        if (caller.workspace) err.workspace = caller.workspace->id;
        co_return err;
    }
    const bool within_rate = co_await check_rate(req, caller, err);
    if (!within_rate) {
        err.workspace = caller.workspace->id;
        co_return err;
    }
    Response res;
    switch (m.route) {
        case Route::app_get: res = co_await get_app(req, caller, m.param); break;
        case Route::execute: res = co_await execute(req, caller, m.param); break;
        case Route::chat: res = co_await chat(req, caller, m.param); break;
        case Route::execution_get: res = co_await get_execution(caller, m.param); break;
        case Route::execution_events: res = co_await execution_events(req, caller, m.param); break;
        case Route::execution_cancel: res = co_await cancel_execution(caller, m.param); break;
        case Route::sessions_list: res = co_await list_sessions(req, caller); break;
        case Route::feedback: res = co_await feedback(req, caller, m.param); break;
        case Route::session:
            if (req.method == "DELETE") {
                res = co_await delete_session(caller, m.param);
            } else {
                res = co_await get_session(caller, m.param);
            }
            break;
        default: res = error_response(404, "not_found", "no such route"); break;
    }
    res.workspace = caller.workspace->id;
    co_return res;
}

asio::awaitable<Response> Api::metrics_text() {
    auto counts = co_await db_.run([](Store& s) { return s.count_executions_by_status(); });
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.render(counts, cache_.stats());
    co_return r;
}

// GET /v1/openapi.json: the document built into this binary, unchanged; no credentials (it says
// what the routes are, nothing about any workspace). Revalidated by ETag, so a client that keeps
// it pays 304s, and a new build is seen within max-age.
Response Api::openapi(const Request& req) const {
    Response r;
    const std::string etag(openapi_etag());
    r.headers.emplace_back("ETag", etag);
    r.headers.emplace_back("Cache-Control", "public, max-age=300");
    if (auto inm = req.header("if-none-match")) {
        // A list of tags (or "*"); the weak form of ours matches too (RFC 9110 13.1.2).
        std::string_view list = *inm;
        bool match = false;
        while (!list.empty() && !match) {
            auto comma = list.find(',');
            std::string_view tag = list.substr(0, comma);
            while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
            while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
            if (tag.starts_with("W/")) tag.remove_prefix(2);
            match = tag == "*" || tag == etag;
            if (comma == std::string_view::npos) break;
            list.remove_prefix(comma + 1);
        }
        if (match) {
            r.status = 304;
            r.content_type.clear();
            return r;
        }
    }
    r.body = std::string(openapi_document());
    return r;
}

asio::awaitable<Response> Api::identity(Request& req) {
    auto auth = req.header("authorization");
    constexpr std::string_view bearer = "Bearer ";
    if (!auth || auth->size() <= bearer.size() || auth->substr(0, bearer.size()) != bearer) {
        co_return error_response(401, "api_key_missing", "Authorization: Bearer <workspace API key> is required");
    }
    std::string_view key = auth->substr(bearer.size());
    const WorkspaceConfig* ws = nullptr;
    for (const auto& w : config_.workspaces) {
        for (const auto& k : w.api_keys) {
            // Every key is compared (no early exit) so timing says nothing about which matched.
            if (constant_time_equal(k, key) && !ws) ws = &w;
        }
    }
    if (!ws) co_return error_response(401, "api_key_invalid", "the API key is not valid");
    auto body = parse_body(req, false);
    if (!body) co_return from_error(body.error());
    auto r = protocol::decode_identity_request(*body);
    if (!r) co_return from_error(r.error());
    const auto& verifier = verifiers_.at(ws->id);
    protocol::IdentityResponse out;
    out.workspace_id = ws->id;
    out.user_id = r->user_id;
    if (ws->secrets.empty()) co_return error_response(500, "no_secrets", "the workspace has no secret configured");
    Result<std::string> signed_id = make_error("internal", "not signed");
    if (r->ttl_seconds) {
        out.expires_at = now_seconds() + *r->ttl_seconds;
        signed_id = verifier->sign_token(r->user_id, *out.expires_at);
    } else {
        signed_id = verifier->sign_user(r->user_id);
    }
    if (!signed_id) {
        if (signed_id.error().code == "user_id_invalid") {
            co_return error_response(400, "invalid_request", signed_id.error().message);
        }
        co_return error_response(500, "no_secrets", "the workspace has no secret configured");
    }
    out.hashed_user_id = std::move(signed_id.value());
    Response res;
    res.body = protocol::identity_json(out);  // = dump(encode(out))
    res.workspace = ws->id;
    co_return res;
}

asio::awaitable<Response> Api::get_app(Request&, const Caller& c, const std::string& app_id) {
    const AppConfig* app = c.workspace->find_app(app_id);
    if (!app) co_return error_response(404, "app_not_found", "app '" + app_id + "' not found");
    if (c.anonymous && !app->is_public) {
        co_return error_response(401, "identity_missing",
                                 "app '" + app_id + "' is not public: X-Confab-User and X-Confab-User-Hash are required");
    }
    co_return json_response(200, protocol::encode(app->info()));
}

namespace {
// A replayed Idempotency-Key whose first request neither stored nor started its run in time
// (or failed and released the key): the client retries.
Response still_starting() {
    return error_response(503, "retry", "Idempotency-Key: the first request with this key is still starting; retry");
}
}  // namespace

asio::awaitable<Response> Api::execute(Request& req, const Caller& c, const std::string& app_id) {
    const AppConfig* app = c.workspace->find_app(app_id);
    if (!app) co_return error_response(404, "app_not_found", "app '" + app_id + "' not found");
    if (c.anonymous && !app->is_public) {
        co_return error_response(401, "identity_missing",
                                 "app '" + app_id + "' is not public: X-Confab-User and X-Confab-User-Hash are required");
    }
    auto body = parse_body(req, true);
    if (!body) co_return from_error(body.error());
    auto er = protocol::decode_execute_request(*body);
    if (!er) co_return from_error(er.error());
    const AppVersion* version = app->find_version(er->version.value_or(""));
    if (!version) {
        co_return error_response(404, "version_not_found",
                                 "app '" + app_id + "' has no version '" + er->version.value_or("") + "'");
    }
    if (auto st = protocol::validate_inputs(version->inputs, er->inputs); !st) co_return from_error(st.error());

    // Idempotency-Key: a retried POST is the execution the first one started, never a second run.
    std::string id = random_id("ex_");
    bool replayed = false;
    protocol::ExecutionStatus status = protocol::ExecutionStatus::queued;
    std::optional<std::string> claimed_key;
    const std::string ws = c.workspace->id, user = c.user_id;
    if (auto k = req.header("idempotency-key")) {
        if (!valid_idempotency_key(*k)) {
            co_return error_response(400, "invalid_request", "Idempotency-Key: must be 1-200 printable ASCII characters");
        }
        const std::string key(*k), ws_id = ws;
        const std::string fingerprint = app_id + "\n" + version->version + "\n" + protocol::dump(er->inputs);
        auto claim = co_await db_.run([&](Store& s) {
            return s.claim_execution_key(ws_id, user, key, fingerprint, id, now_ms());
        });
        if (!claim) co_return from_error(claim.error());
        if (claim->fingerprint != fingerprint) {
            co_return error_response(409, "idempotency_conflict",
                                     "Idempotency-Key: the key was used for another request (app, version or inputs)");
        }
        replayed = claim->known;
        id = claim->execution_id;
        if (!replayed) claimed_key = key;
    }
    if (!replayed) {
        StartSpec spec;
        spec.id = id;
        spec.workspace = c.workspace;
        spec.app = app;
        spec.version = version;
        spec.user_id = c.user_id;
        spec.inputs = er->inputs;
        if (app->type == protocol::AppType::agent) {
            if (auto it = er->inputs.find("message"); it != er->inputs.end() && it->is_string()) {
                spec.message = it->get<std::string>();
            }
        }
        auto rec = co_await hub_.start(std::move(spec));
        if (!rec) {
            if (claimed_key) {  // nothing started under the key: a retry may claim it again
                const std::string& key = *claimed_key;
                co_await db_.run([&](Store& s) { (void)s.release_execution_key(ws, user, key, id); });
            }
            co_return from_error(rec.error());
        }
        status = rec->status;
    }
    // A replay that overtook its first request, which is still storing the execution.
    // It is a replay like any other: the same headers as the 202 below (they were missing here, so
    // a double click's second answer did not say it was a replay; widget_api.test.mjs, 20 at once).
    auto stored_or_starting = [this, &id, replayed](std::optional<ExecutionRecord>& now) -> std::optional<Response> {
        if (now) return std::nullopt;
        if (!hub_.is_live(id)) {
            return still_starting();
        }
        Response r = json_response(202, protocol::encode(protocol::ExecutionCreated{id, protocol::ExecutionStatus::queued}));
        r.headers.emplace_back("X-Confab-Execution-Id", id);
        r.headers.emplace_back("Location", "/v1/executions/" + id);
        if (replayed) r.headers.emplace_back("Idempotency-Replayed", "true");
        return r;
    };

    if (wants_event_stream(req)) {
        std::uint64_t after = 0;
        if (replayed) {
            if (auto bad = read_resume_point(req, after)) co_return *bad;
            // Not yet stored nor live, the stream would replay nothing and end at once.
            auto now = co_await replayed_execution(ws, user, id);
            if (!now && !hub_.is_live(id)) {
                co_return still_starting();
            }
        }
        Response r = sse_response(id);
        if (replayed) r.headers.emplace_back("Idempotency-Replayed", "true");
        r.stream = [this, id, after](std::shared_ptr<StreamOut> out) { hub_.stream(id, after, std::move(out)); };
        co_return r;
    }
    auto wait = req.query_param("wait");
    if (wait && (*wait == "true" || *wait == "1")) {
        // Synchronous mode: answer with the finished execution (or 202 with it still running).
        bool finished = co_await hub_.wait_finished(id, std::chrono::milliseconds(options_.sync_wait_ms));
        // (Not one ?: of two co_awaits: GCC 12 builds a coroutine that crashes on it.)
        std::optional<ExecutionRecord> now;
        if (replayed) {
            now = co_await replayed_execution(ws, user, id);
        } else {
            now = co_await db_.run([&](Store& s) { return s.get_execution(ws, user, id); });
        }
        if (auto early = stored_or_starting(now)) co_return *early;
        // The stored record, finished or not: a finished one is kept for the GETs that follow.
        Response r;
        r.status = finished ? 200 : 202;
        r.body = finished_body(*now);
        r.headers.emplace_back("X-Confab-Execution-Id", id);
        if (replayed) r.headers.emplace_back("Idempotency-Replayed", "true");
        co_return r;
    }
    if (replayed) {
        auto now = co_await replayed_execution(ws, user, id);
        if (auto early = stored_or_starting(now)) co_return *early;
        status = now->status;
    }
    Response r = json_response(202, protocol::encode(protocol::ExecutionCreated{id, status}));
    r.headers.emplace_back("X-Confab-Execution-Id", id);
    r.headers.emplace_back("Location", "/v1/executions/" + id);
    if (replayed) r.headers.emplace_back("Idempotency-Replayed", "true");
    co_return r;
}

asio::awaitable<std::optional<ExecutionRecord>> Api::replayed_execution(const std::string& ws, const std::string& user,
                                                                        const std::string& id) {
    // The first request commits its claim of the key, then starts the run: between the two, a
    // replay finds the execution neither stored nor live. The first request is one step away on
    // the db thread, or, with several instances on one database, one transaction away on another
    // instance, where the run is not live here. Wait for it (20 ms at a time, up to 2 s) rather
    // than answer 503 at once (widget_api.test.mjs, twenty at once; instances_shared.test.mjs).
    // A first request that fails releases the key, and this still ends in 503 retry.
    asio::steady_timer pause(co_await asio::this_coro::executor);
    for (int tries = 0;; ++tries) {
        auto now = co_await db_.run([&](Store& s) { return s.get_execution(ws, user, id); });
        if (now || hub_.is_live(id) || tries == 100) co_return now;
        pause.expires_after(std::chrono::milliseconds(20));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<Response> Api::chat(Request& req, const Caller& c, const std::string& app_id) {
    const AppConfig* app = c.workspace->find_app(app_id);
    if (!app) co_return error_response(404, "app_not_found", "app '" + app_id + "' not found");
    if (c.anonymous && !app->is_public) {
        co_return error_response(401, "identity_missing",
                                 "app '" + app_id + "' is not public: X-Confab-User and X-Confab-User-Hash are required");
    }
    if (app->type != protocol::AppType::agent && app->type != protocol::AppType::llm) {
        co_return error_response(400, "unsupported",
                                 std::string("app '") + app_id + "' is a " + protocol::to_string(app->type) +
                                     " app; chat needs an agent or llm app");
    }
    auto body = parse_body(req, false);
    if (!body) co_return from_error(body.error());
    auto cr = protocol::decode_chat_request(*body);
    if (!cr) co_return from_error(cr.error());
    const AppVersion* version = app->find_version("");
    if (!version) co_return error_response(500, "internal", "app has no version");
    {
        Json merged = cr->inputs;
        if (!merged.contains("message")) merged["message"] = cr->message;
        if (auto st = protocol::validate_inputs(version->inputs, merged, true); !st) co_return from_error(st.error());
    }

    std::optional<std::string> key;
    if (auto k = req.header("idempotency-key")) {
        if (!valid_idempotency_key(*k)) {
            co_return error_response(400, "invalid_request", "Idempotency-Key: must be 1-200 printable ASCII characters");
        }
        key = std::string(*k);
    }
    // What this request asks, to tell a retry (same key, same ask) from a key reused for another.
    const char* mode = cr->regenerate ? "regenerate" : cr->edit_last ? "editLast" : "message";
    const std::string fingerprint = app_id + "\n" + mode + "\n" + (cr->regenerate ? std::string() : cr->message);

    // The turn in one trip to the db thread: a replay of a known key, a re-run of a failed turn,
    // a regenerate/edit of the last turn, or a new turn (session created on the first).
    struct Prepared {
        int status = 0;  // 0 ok, else an HTTP error
        std::string code, message;
        std::string session_id, turn_id, text;
        std::vector<protocol::Message> history;
        std::string exec_id;  // the execution to start, or with `replay` (`pending`) the one to stream
        bool replay = false;
        bool pending = false;  // the key's turn names an execution that is not stored (yet)
    };
    const std::string new_exec_id = random_id("ex_");
    const std::string ws_id = c.workspace->id, user = c.user_id;
    const std::optional<std::string> want_session = cr->session_id;
    const bool regenerate = cr->regenerate, edit_last = cr->edit_last;
    const std::string text = cr->message;
    // A key's turn whose execution is not stored: its first request may still be starting it
    // (here or on another instance), or never did. Asked first as pending, and only after
    // waiting for it as a turn to run again.
    bool missing_is_pending = true;
    auto prepare_turn = [&](Store& s) {
        Prepared out;
        auto fail = [&](int status, std::string code, std::string message) {
            out.status = status;
            out.code = std::move(code);
            out.message = std::move(message);
            return out;
        };
        auto failed = [&](const Error& e) { return fail(500, e.code, e.message); };
        const std::int64_t now = now_ms();
        out.exec_id = new_exec_id;

        if (key) {
            if (auto prior = s.get_idempotency(ws_id, user, *key)) {
                if (prior->fingerprint != fingerprint || (want_session && *want_session != prior->session_id)) {
                    return fail(409, "idempotency_conflict",
                                "Idempotency-Key: the key was used for another request (message, mode or session)");
                }
                auto msgs = s.messages(prior->session_id);
                std::size_t i = 0;
                while (i < msgs.size() && !(msgs[i].role == protocol::Role::user && msgs[i].turn_id == prior->turn_id)) ++i;
                if (i == msgs.size()) {
                    return fail(409, "idempotency_conflict",
                                "Idempotency-Key: the turn of this key was replaced (edited) or deleted");
                }
                out.session_id = prior->session_id;
                out.turn_id = prior->turn_id;
                const MessageRecord& turn = msgs[i];
                std::optional<ExecutionRecord> ex;
                if (turn.execution_id) ex = s.get_execution_by_id(*turn.execution_id);
                if (ex && (!protocol::is_terminal(ex->status) || ex->status == protocol::ExecutionStatus::success)) {
                    out.replay = true;
                    out.exec_id = ex->id;
                    return out;
                }
                if (!ex && turn.execution_id && missing_is_pending) {
                    out.pending = true;
                    out.exec_id = *turn.execution_id;
                    return out;
                }
                // It ended in error, was stopped or interrupted: the same turn runs again.
                for (std::size_t j = i + 1; j < msgs.size(); ++j) {
                    if (msgs[j].role == protocol::Role::user) {
                        return fail(409, "conflict",
                                    "the turn of this Idempotency-Key is no longer the session's last; send it as a new message");
                    }
                }
                out.text = turn.content;
                out.history = model_history(msgs, i);
                if (auto st = s.replace_reply(out.session_id, turn.id, out.exec_id, out.turn_id); !st) return failed(st.error());
                return out;
            }
        }

        std::vector<MessageRecord> msgs;
        if (want_session) {
            auto sess = s.get_session(ws_id, user, *want_session);
            if (!sess) return fail(404, "session_not_found", "session '" + *want_session + "' not found");
            if (sess->app_id != app_id) {
                return fail(400, "invalid_request", "sessionId: the session belongs to app '" + sess->app_id + "'");
            }
            out.session_id = sess->id;
            msgs = s.messages(sess->id);
        } else {
            SessionRecord rec;
            rec.id = random_id("se_");
            rec.workspace_id = ws_id;
            rec.user_id = user;
            rec.app_id = app_id;
            rec.created_at = rec.updated_at = now;
            if (auto st = s.insert_session(rec); !st) return failed(st.error());
            out.session_id = rec.id;
        }

        bool store_user_message = true;
        if (regenerate || edit_last) {
            std::size_t last = msgs.size();
            for (std::size_t j = 0; j < msgs.size(); ++j) {
                if (msgs[j].role == protocol::Role::user) last = j;
            }
            if (last == msgs.size()) {
                return fail(400, "invalid_request",
                            std::string("sessionId: the session has no message to ") + (regenerate ? "regenerate" : "edit"));
            }
            const MessageRecord& turn = msgs[last];
            if (turn.execution_id) {
                auto ex = s.get_execution_by_id(*turn.execution_id);
                if (ex && !protocol::is_terminal(ex->status)) {
                    return fail(409, "conflict", "a reply in this session is still running; stop it or wait for it first");
                }
            }
            out.history = model_history(msgs, last);
            if (regenerate) {
                out.text = turn.content;
                out.turn_id = turn.turn_id.value_or(random_id("tu_"));
                if (auto st = s.replace_reply(out.session_id, turn.id, out.exec_id, out.turn_id); !st) return failed(st.error());
                store_user_message = false;
            } else if (auto st = s.delete_turn(out.session_id, turn.id); !st) {
                return failed(st.error());
            }
        } else {
            out.history = model_history(msgs, msgs.size());
        }
        if (store_user_message) {
            out.text = text;
            out.turn_id = random_id("tu_");
            MessageRecord m;
            m.session_id = out.session_id;
            m.role = protocol::Role::user;
            m.content = text;
            m.execution_id = out.exec_id;
            m.turn_id = out.turn_id;
            m.created_at = now;
            if (auto st = s.append_message(m); !st) return failed(st.error());
        }
        if (key) {
            IdempotencyRecord k;
            k.workspace_id = ws_id;
            k.user_id = user;
            k.key = *key;
            k.app_id = app_id;
            k.session_id = out.session_id;
            k.fingerprint = fingerprint;
            k.turn_id = out.turn_id;
            k.created_at = now;
            if (auto st = s.put_idempotency(k); !st) return failed(st.error());
        }
        return out;
    };
    Prepared p = co_await db_.run(prepare_turn);
    if (p.pending) {
        // Stored meanwhile or live here: stream it. Otherwise its first request failed to start
        // it (or is slower than 2 s): the turn runs again, as one that ended in error does.
        auto started = co_await replayed_execution(ws_id, user, p.exec_id);
        if (started || hub_.is_live(p.exec_id)) {
            p.replay = true;
        } else {
            missing_is_pending = false;
            p = co_await db_.run(prepare_turn);
        }
    }
    if (p.status >= 500) co_return from_error(make_error(p.code, p.message));
    if (p.status != 0) co_return error_response(p.status, p.code, p.message);

    if (p.replay) {
        std::uint64_t after = 0;
        if (auto bad = read_resume_point(req, after)) co_return *bad;
        Response r = sse_response(p.exec_id);
        r.headers.emplace_back("X-Confab-Session-Id", p.session_id);
        r.headers.emplace_back("Idempotency-Replayed", "true");
        const std::string id = p.exec_id;
        r.stream = [this, id, after](std::shared_ptr<StreamOut> out) { hub_.stream(id, after, std::move(out)); };
        co_return r;
    }

    StartSpec spec;
    spec.id = p.exec_id;
    spec.workspace = c.workspace;
    spec.app = app;
    spec.version = version;
    spec.user_id = c.user_id;
    spec.chat = true;
    spec.session_id = p.session_id;
    spec.turn_id = p.turn_id;
    spec.inputs = std::move(cr->inputs);
    spec.message = std::move(p.text);
    spec.history = std::move(p.history);
    auto rec = co_await hub_.start(std::move(spec));
    if (!rec) co_return from_error(rec.error());
    const std::string exec_id = p.exec_id;
    Response r = sse_response(exec_id);
    r.headers.emplace_back("X-Confab-Session-Id", p.session_id);
    r.stream = [this, exec_id](std::shared_ptr<StreamOut> out) { hub_.stream(exec_id, 0, std::move(out)); };
    co_return r;
}

// POST/DELETE /v1/executions/{id}/feedback: the caller's rating of an execution it can see.
asio::awaitable<Response> Api::feedback(Request& req, const Caller& c, const std::string& id) {
    const std::string ws = c.workspace->id, user = c.user_id;
    const bool remove = req.method == "DELETE";
    protocol::FeedbackRequest fr;
    if (!remove) {
        auto body = parse_body(req, false);
        if (!body) co_return from_error(body.error());
        auto decoded = protocol::decode_feedback_request(*body);
        if (!decoded) co_return from_error(decoded.error());
        fr = std::move(decoded.value());
    }
    // One trip to the db thread: the execution must be the caller's, then the rating is written.
    struct Outcome {
        bool found = false;
        std::optional<Error> error;
        FeedbackRecord stored;
    };
    const std::int64_t now = now_ms();
    Outcome o = co_await db_.run([&](Store& s) {
        Outcome out;
        auto rec = s.get_execution(ws, user, id);
        if (!rec) return out;
        out.found = true;
        if (remove) {
            if (auto r = s.delete_feedback(id, user); !r) out.error = r.error();
            return out;
        }
        FeedbackRecord f;
        f.execution_id = id;
        f.user_id = user;
        f.workspace_id = ws;
        f.app_id = rec->app_id;
        f.rating = fr.rating;
        f.comment = fr.comment;
        f.created_at = f.updated_at = now;
        if (auto r = s.put_feedback(f); r) out.stored = std::move(r.value());
        else out.error = r.error();
        return out;
    });
    if (!o.found) co_return error_response(404, "execution_not_found", "execution '" + id + "' not found");
    if (o.error) co_return from_error(*o.error);
    if (remove) {
        Response res;
        res.status = 204;
        res.content_type.clear();
        co_return res;
    }
    metrics_.feedback_submitted(o.stored.rating == "up");
    co_return json_response(200, protocol::encode(to_wire(o.stored), false));
}

std::string Api::finished_body(const ExecutionRecord& rec) {
    std::string body = execution_json(rec);  // = dump(encode(to_wire(rec))), without the copies
    cache_.put(rec, body);                   // kept only when rec is finished
    return body;
}

asio::awaitable<Response> Api::get_execution(const Caller& c, const std::string& id) {
    Response r;
    // A finished execution never changes (execution_cache.hpp): its body from memory, when it is
    // the caller's. Otherwise (not kept, running, another caller's) the store answers as before.
    if (auto body = cache_.find(id, c.workspace->id, c.user_id)) {
        r.body = std::move(*body);
        co_return r;
    }
    const std::string ws = c.workspace->id, user = c.user_id;
    auto rec = co_await db_.read([&](Store& s) { return s.get_execution(ws, user, id); });
    if (!rec) co_return error_response(404, "execution_not_found", "execution '" + id + "' not found");
    r.body = finished_body(*rec);
    co_return r;
}

asio::awaitable<Response> Api::execution_events(Request& req, const Caller& c, const std::string& id) {
    std::uint64_t after = 0;
    if (auto bad = read_resume_point(req, after)) co_return *bad;
    const std::string ws = c.workspace->id, user = c.user_id;
    auto rec = co_await db_.read([&](Store& s) { return s.get_execution(ws, user, id); });
    if (!rec) co_return error_response(404, "execution_not_found", "execution '" + id + "' not found");
    Response r = sse_response(id);
    if (rec->session_id) r.headers.emplace_back("X-Confab-Session-Id", *rec->session_id);
    r.stream = [this, id, after](std::shared_ptr<StreamOut> out) { hub_.stream(id, after, std::move(out)); };
    co_return r;
}

asio::awaitable<Response> Api::cancel_execution(const Caller& c, const std::string& id) {
    const std::string ws = c.workspace->id, user = c.user_id;
    auto rec = co_await db_.read([&](Store& s) { return s.get_execution(ws, user, id); });
    if (!rec) co_return error_response(404, "execution_not_found", "execution '" + id + "' not found");
    if (protocol::is_terminal(rec->status)) {
        co_return error_response(409, "conflict",
                                 std::string("execution is already ") + protocol::to_string(rec->status));
    }
    ExecutionRecord target = std::move(*rec);  // named: g++ 12 and temporaries in co_await
    co_await hub_.cancel_and_settle(std::move(target));
    auto after = co_await db_.run([&](Store& s) { return s.get_execution(ws, user, id); });
    if (!after) co_return error_response(404, "execution_not_found", "execution '" + id + "' not found");
    if (after->status != protocol::ExecutionStatus::cancelled && protocol::is_terminal(after->status)) {
        co_return error_response(409, "conflict",
                                 std::string("execution finished before it could be cancelled (") +
                                     protocol::to_string(after->status) + ")");
    }
    co_return json_response(200, protocol::encode(to_wire(*after)));
}

asio::awaitable<Response> Api::list_sessions(Request& req, const Caller& c) {
    if (c.anonymous) {
        co_return error_response(401, "identity_missing", "listing sessions needs an identified user");
    }
    std::string app_id;
    if (auto a = req.query_param("appId")) app_id = std::string(*a);
    std::size_t limit = 100;
    if (auto l = req.query_param("limit")) {
        auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
        if (ec != std::errc() || p != l->data() + l->size() || limit < 1 || limit > 1000) {
            co_return error_response(400, "invalid_request", "limit: must be an integer from 1 to 1000");
        }
    }
    const std::string ws = c.workspace->id, user = c.user_id;
    auto list = co_await db_.read([&](Store& s) { return s.list_sessions(ws, user, app_id, limit); });
    Json arr = Json::array();
    for (const auto& s : list) arr.push_back(protocol::encode(to_wire(s), false));
    co_return json_response(200, Json{{"sessions", std::move(arr)}});
}

asio::awaitable<Response> Api::get_session(const Caller& c, const std::string& id) {
    const std::string ws = c.workspace->id, user = c.user_id;
    struct Found {
        std::optional<SessionRecord> session;
        std::vector<MessageRecord> messages;
    };
    Found f = co_await db_.run([&](Store& s) {
        Found out;
        out.session = s.get_session(ws, user, id);
        if (out.session) out.messages = s.messages(id);
        return out;
    });
    if (!f.session) co_return error_response(404, "session_not_found", "session '" + id + "' not found");
    protocol::Session w = to_wire(*f.session);
    for (const auto& m : f.messages) w.messages.push_back(to_wire(m));
    co_return json_response(200, protocol::encode(w, true));
}

asio::awaitable<Response> Api::delete_session(const Caller& c, const std::string& id) {
    const std::string ws = c.workspace->id, user = c.user_id;
    auto r = co_await db_.run([&](Store& s) { return s.delete_session(ws, user, id); });
    if (!r) co_return from_error(r.error());
    if (!*r) co_return error_response(404, "session_not_found", "session '" + id + "' not found");
    Response res;
    res.status = 204;
    res.content_type.clear();
    co_return res;
}

}  // namespace confab::server
