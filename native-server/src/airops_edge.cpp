// The AirOps compatibility edge: the @airops/airops-js SDK's `/sdk_api/*` calls translated onto the
// v1 routes (Api::handle does the work), and a Pusher-protocol-7 WebSocket that relays a run's
// events to the channel the SDK subscribed to, in the SDK's event names and shapes.
#include "airops_edge.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <deque>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "api.hpp"
#include "confab/protocol.hpp"
#include "confab/sse.hpp"
#include "request_head.hpp"
#include "responses.hpp"
#include "util.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace confab::server {

using protocol::Json;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr const char* kAllowHeaders =
    "Content-Type, Accept, user_id, workspace_id, user_id_hashed, X-Confab-Workspace, X-Confab-User, "
    "X-Confab-User-Hash";
constexpr std::size_t kMaxChannelsPerConn = 100;
constexpr std::int64_t kUnusedChannelMs = 10 * 60 * 1000;  // an authorised channel nobody used is forgotten

Response edge_error(int status, std::string code, std::string message) {
    return error_response(status, std::move(code), std::move(message));
}

// The first header of several names (the SDK's underscore names, then Confab's).
std::optional<std::string_view> first_header(const Request& req, std::string_view a, std::string_view b) {
    if (auto v = req.header(a); v && !v->empty()) return v;
    if (auto v = req.header(b); v && !v->empty()) return v;
    return std::nullopt;
}

// Pusher channel names: [A-Za-z0-9_\-=@,.;], at most 164 characters (Pusher's own rule).
bool valid_channel_id(std::string_view id) {
    if (id.empty() || id.size() > 150) return false;
    for (char c : id) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '=' || c == '@' || c == ',' || c == '.' || c == ';';
        if (!ok) return false;
    }
    return true;
}

// A client-chosen session id: 1-200 printable ASCII characters.
bool valid_client_session(std::string_view s) {
    if (s.empty() || s.size() > 200) return false;
    for (char c : s) {
        if (c < 0x21 || c > 0x7e) return false;
    }
    return true;
}

// "<digits>.<digits>", as Pusher socket ids are.
bool valid_socket_id(std::string_view s) {
    auto dot = s.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == s.size() || s.size() > 40) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i != dot && (s[i] < '0' || s[i] > '9')) return false;
    }
    return true;
}

std::string hmac_hex(std::string_view key, std::string_view message) { return to_hex(hmac_sha256(key, message)); }

// The execution record as the SDK's result()/getResults() read it: `uuid`, lower-case `status`,
// `output`, `error_message`.
Json airops_record(const Json& v1) {
    Json r = Json::object();
    const std::string id = v1.value("id", "");
    r["uuid"] = id;
    r["id"] = id;
    r["airops_app_id"] = v1.value("appId", "");
    r["version"] = v1.contains("version") ? v1["version"] : Json();
    r["status"] = v1.value("status", "");
    r["inputs"] = v1.contains("inputs") ? v1["inputs"] : Json::object();
    r["output"] = v1.contains("output") ? v1["output"] : Json();
    r["error_message"] = v1.contains("error") ? v1["error"] : Json();
    r["created_at"] = v1.contains("createdAt") ? v1["createdAt"] : Json();
    r["updated_at"] = v1.contains("updatedAt") ? v1["updatedAt"] : Json();
    return r;
}

// A v1 route's JSON answer, parsed whatever its size: the request limit (1 MiB) is for what clients
// send, and a record's output may be larger (it was, and the SDK got the v1 shape instead of its own).
Result<Json> parse_v1_body(const Response& res) {
    protocol::ParseLimits limits;
    limits.max_bytes = std::max(limits.max_bytes, res.body.size());
    return protocol::parse_json(res.body, limits);
}

// A v1 response whose body becomes `body` (status and CORS headers kept).
Response with_body(Response res, int status, const Json& body) {
    res.status = status;
    res.content_type = "application/json";
    res.body = protocol::dump(body);
    res.stream = nullptr;
    std::erase_if(res.headers, [](const auto& h) { return h.first == "Location"; });
    return res;
}

std::string pusher_frame(std::string_view event, std::string_view channel, const Json& data) {
    Json f = Json::object();
    f["event"] = event;
    if (!channel.empty()) f["channel"] = channel;
    f["data"] = protocol::dump(data);  // Pusher sends event data as a JSON string
    return protocol::dump(f);
}

std::string new_socket_id() {
    std::string hex = random_id("");
    auto num = [&](std::size_t at) {
        std::uint64_t v = 0;
        std::from_chars(hex.data() + at, hex.data() + at + 12, v, 16);
        return std::to_string(v % 10000000000ull);
    };
    return num(0) + "." + num(12);
}

}  // namespace

// ---- WebSocket connection and channels ----

struct AiropsEdge::Conn : std::enable_shared_from_this<AiropsEdge::Conn> {
    explicit Conn(asio::any_io_executor ex) : executor(ex), wake(ex) {}

    asio::any_io_executor executor;  // the connection's strand
    std::string socket_id;
    // Strand only:
    beast::tcp_stream* stream = nullptr;  // null once the connection is over
    std::unordered_set<std::string> channels;
    asio::steady_timer wake;

    std::mutex mu;  // guards the rest
    std::deque<std::string> queue;
    std::size_t queued_bytes = 0;  // queued + being written
    bool closed = false;
    bool writer_idle = false;

    // Any thread. False when the connection is closed, or is now: a reader `cap` bytes behind is
    // dropped rather than buffered without end.
    bool enqueue(std::string frame, std::size_t cap) {
        std::unique_lock lock(mu);
        if (closed) return false;
        if (queued_bytes + frame.size() > cap) {
            closed = true;
            queue.clear();
            lock.unlock();
            asio::post(executor, [self = shared_from_this()] { self->drop(); });
            return false;
        }
        queued_bytes += frame.size();
        queue.push_back(std::move(frame));
        if (writer_idle) {
            writer_idle = false;
            lock.unlock();
            // Posted after the writer started its wait (it waits on this strand): no lost wake-up.
            asio::post(executor, [self = shared_from_this()] { self->wake.cancel(); });
        }
        return true;
    }
    // Strand only: ends the connection (its reader and writer fail and return).
    void drop() {
        {
            std::lock_guard lock(mu);
            closed = true;
        }
        wake.cancel();
        if (stream) {
            boost::system::error_code ec;
            stream->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
            stream->socket().cancel(ec);
        }
    }
};

struct AiropsEdge::Channel {
    bool owned = false;  // private channels: bound to the first caller who authorised or used it
    bool user_known = true;  // false: subscribed with another instance's auth; user_id not yet known
    std::string workspace_id, user_id;
    std::unordered_set<std::shared_ptr<Conn>> subscribers;
    int watchers = 0;  // runs relaying into it
    std::int64_t touched_ms = 0;
};

AiropsEdge::AiropsEdge(asio::io_context& ioc, const ServerConfig& config, DbExecutor& db, ExecutionHub& hub,
                       Api& api, AiropsEdgeOptions options)
    : ioc_(ioc), config_(config), db_(db), hub_(hub), api_(api), options_(options) {
    for (const auto& ws : config_.workspaces) {
        verifiers_.emplace(ws.id, std::make_unique<IdentityVerifier>(ws.id, ws.secrets));
        // Several instances behind a load balancer must agree: a channel authorised through one
        // is subscribed on another (issue 14). So the secret is derived, not random: HMAC of the
        // workspace's signing secret with a fixed label (and the workspace id, so workspaces that
        // share a secret still sign apart). Rotating secrets[0] changes it, on every instance alike.
        if (ws.pusher_secret.empty() && !ws.secrets.empty()) {
            derived_secrets_.emplace(ws.id, hmac_hex(ws.secrets.front(), "confab pusher channel auth v1\x1f" + ws.id));
        }
    }
}

AiropsEdge::~AiropsEdge() = default;

bool AiropsEdge::owns(std::string_view path) {
    return path == "/sdk_api" || path.starts_with("/sdk_api/");
}

bool AiropsEdge::is_websocket_target(std::string_view target) {
    auto q = target.find('?');
    std::string_view path = target.substr(0, q);
    return path.starts_with("/app/") && path.size() > 5 && path.find('/', 5) == std::string_view::npos;
}

std::string AiropsEdge::pusher_secret(const WorkspaceConfig& ws) const {
    if (!ws.pusher_secret.empty()) return ws.pusher_secret;
    return derived_secrets_.at(ws.id);
}

const WorkspaceConfig* AiropsEdge::auth_signer(std::string_view auth, const std::string& socket_id,
                                               const std::string& channel) const {
    auto colon = auth.find(':');
    if (colon == std::string_view::npos) return nullptr;
    const WorkspaceConfig* signer = nullptr;
    for (const auto& ws : config_.workspaces) {
        if (auth.substr(0, colon) != ws.pusher_key) continue;
        // Every candidate is checked (no early exit): timing says nothing about which matched.
        if (constant_time_equal(auth.substr(colon + 1), hmac_hex(pusher_secret(ws), socket_id + ":" + channel)) &&
            !signer) {
            signer = &ws;
        }
    }
    return signer;
}

bool AiropsEdge::resolve_caller(const Request& req, Caller& out, Response& err) const {
    auto ws_id = first_header(req, "workspace_id", "x-confab-workspace");
    auto user = first_header(req, "user_id", "x-confab-user");
    auto hash = first_header(req, "user_id_hashed", "x-confab-user-hash");
    if (ws_id) {
        out.workspace = config_.find_workspace(*ws_id);
        if (!out.workspace) {
            err = edge_error(401, "unknown_workspace", "workspace_id: unknown workspace '" + std::string(*ws_id) + "'");
            return false;
        }
        if (!user && !hash) {
            out.anonymous = true;
            return true;
        }
        if (!user || !hash) {
            err = edge_error(401, "identity_missing", std::string(user ? "user_id_hashed" : "user_id") +
                                                           ": required with workspace_id and " +
                                                           (user ? "user_id" : "user_id_hashed"));
            return false;
        }
        if (user->size() > 256) {
            err = edge_error(401, "identity_malformed", "user_id: longer than 256 bytes");
            return false;
        }
        Status st = verifiers_.at(out.workspace->id)->verify(*user, *hash, now_seconds());
        if (!st) {
            err = edge_error(401, st.error().code, "user_id_hashed: " + st.error().message);
            return false;
        }
        out.anonymous = false;
        out.user_id = std::string(*user);
        return true;
    }
    if (user || hash) {
        err = edge_error(401, "identity_missing", "workspace_id: required with user_id and user_id_hashed");
        return false;
    }
    // Anonymous: the SDK sends no workspace, so the page's origin names it. An exact entry wins
    // over "*"; with no Origin (a server-side caller) a single-workspace server is unambiguous.
    auto origin = req.header("origin");
    const WorkspaceConfig* exact = nullptr;
    const WorkspaceConfig* wildcard = nullptr;
    int exact_n = 0, wildcard_n = 0;
    if (origin) {
        for (const auto& w : config_.workspaces) {
            for (const auto& o : w.allowed_origins) {
                if (o == *origin) {
                    exact = &w;
                    ++exact_n;
                    break;
                }
                if (o == "*") {
                    wildcard = &w;
                    ++wildcard_n;
                    break;
                }
            }
        }
    }
    if (exact_n == 1) out.workspace = exact;
    else if (exact_n == 0 && wildcard_n == 1) out.workspace = wildcard;
    else if (!origin && config_.workspaces.size() == 1) out.workspace = &config_.workspaces.front();
    if (!out.workspace) {
        err = edge_error(401, "identity_missing",
                         origin ? "workspace_id: an anonymous call's workspace is the one whose allowedOrigins holds '" +
                                      std::string(*origin) + "', and " +
                                      (exact_n + wildcard_n == 0 ? "none does" : "several do")
                                : "workspace_id: required (an anonymous call without Origin cannot name its workspace)");
        return false;
    }
    out.anonymous = true;
    return true;
}

asio::awaitable<Response> AiropsEdge::forward(Request& req, const Caller& c, std::string method, std::string path,
                                              std::string body) {
    Request v1;
    v1.method = std::move(method);
    v1.path = std::move(path);
    v1.target = v1.path;
    v1.body = std::move(body);
    v1.remote_ip = req.remote_ip;
    for (const auto& [k, v] : req.headers) {
        // The edge answers JSON only (an Accept: text/event-stream would turn a v1 route into SSE).
        if (k == "user_id" || k == "workspace_id" || k == "user_id_hashed" || k.starts_with("x-confab-") ||
            k == "content-length" || k == "accept") {
            continue;
        }
        v1.headers.emplace_back(k, v);
    }
    v1.headers.emplace_back("x-confab-workspace", c.workspace->id);
    if (!c.anonymous) {
        // Verified above; the v1 route checks it again, the same way.
        auto hash = first_header(req, "user_id_hashed", "x-confab-user-hash");
        v1.headers.emplace_back("x-confab-user", c.user_id);
        v1.headers.emplace_back("x-confab-user-hash", std::string(*hash));
    }
    co_return co_await api_.handle(v1);
}

asio::awaitable<Response> AiropsEdge::handle(Request& req) {
    auto segs_sv = split_path(req.path);
    std::vector<std::string> segs;
    for (std::size_t i = 1; i < segs_sv.size(); ++i) segs.emplace_back(segs_sv[i]);  // after "sdk_api"
    const std::string& m = req.method;
    const auto n = segs.size();
    auto origin = req.header("origin");

    enum class R { none, app, execute, execution, cancel, chat, auth } route = R::none;
    const char* allow = "";
    std::string param, version;
    // The SDK 2.3.0 calls airops_app_bases (every build of its dist); issue 16 spells it
    // airop_app_bases: both are served.
    if (n == 2 && (segs[0] == "airops_app_bases" || segs[0] == "airop_app_bases")) {
        route = R::app, allow = "GET", param = segs[1];
    }
    if (n >= 3 && n <= 4 && segs[0] == "airops_apps" && segs[2] == "async_execute" && segs[1] != "executions") {
        route = R::execute, allow = "POST", param = segs[1];
        if (n == 4) {
            if (segs[3].size() < 2 || segs[3][0] != 'v') route = R::none;
            else version = segs[3].substr(1);
        }
    }
    if (n == 3 && segs[0] == "airops_apps" && segs[1] == "executions") route = R::execution, allow = "GET", param = segs[2];
    if (n == 4 && segs[0] == "airops_apps" && segs[1] == "executions" && segs[3] == "cancel") {
        route = R::cancel, allow = "PATCH", param = segs[2];
    }
    if (n == 3 && segs[0] == "agent_apps" && segs[2] == "chat_stream") route = R::chat, allow = "POST", param = segs[1];
    if (n == 2 && segs[0] == "pusher" && segs[1] == "auth") route = R::auth, allow = "POST";
    for (const auto& s : segs) {
        if (s.empty()) route = R::none;
    }

    // CORS for what this edge answers itself (forwarded calls get theirs from the v1 route).
    auto origin_ok = [&](const WorkspaceConfig* ws) {
        for (const auto& w : config_.workspaces) {
            if (ws && &w != ws) continue;
            for (const auto& o : w.allowed_origins) {
                if (o == "*" || (origin && o == *origin)) return true;
            }
        }
        return false;
    };
    auto with_cors = [&](Response r, const WorkspaceConfig* ws) {
        if (origin && origin_ok(ws)) {
            bool has = false;
            for (const auto& h : r.headers) has = has || h.first == "Access-Control-Allow-Origin";
            if (!has) {
                r.headers.emplace_back("Access-Control-Allow-Origin", std::string(*origin));
                r.headers.emplace_back("Vary", "Origin");
            }
        }
        return r;
    };

    if (route == R::none) {
        co_return with_cors(edge_error(404, "not_found", "no route for " + m + " " + req.path), nullptr);
    }
    if (m == "OPTIONS") {
        Response r;
        r.route = Route::preflight;
        r.status = 204;
        r.content_type.clear();
        if (!origin) {
            r.headers.emplace_back("Allow", std::string(allow) + ", OPTIONS");
            co_return r;
        }
        if (!origin_ok(nullptr)) {
            Response denied = edge_error(403, "origin_not_allowed", "origin '" + std::string(*origin) + "' is not allowed");
            denied.route = Route::preflight;
            co_return denied;
        }
        r.headers.emplace_back("Access-Control-Allow-Origin", std::string(*origin));
        r.headers.emplace_back("Vary", "Origin");
        r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, PATCH, OPTIONS");
        r.headers.emplace_back("Access-Control-Allow-Headers", kAllowHeaders);
        r.headers.emplace_back("Access-Control-Max-Age", "600");
        co_return r;
    }
    if (m != allow) {
        Response r = edge_error(405, "method_not_allowed", m + " is not allowed here; allowed: " + allow);
        r.headers.emplace_back("Allow", std::string(allow) + ", OPTIONS");
        co_return with_cors(std::move(r), nullptr);
    }

    Caller caller;
    Response err;
    if (!resolve_caller(req, caller, err)) co_return with_cors(std::move(err), nullptr);
    if (origin && !origin_ok(caller.workspace)) {
        co_return edge_error(403, "origin_not_allowed",
                             "origin '" + std::string(*origin) + "' is not allowed for this workspace");
    }
    Response res;
    switch (route) {
        case R::app: res = co_await forward(req, caller, "GET", "/v1/apps/" + param, ""); break;
        case R::execute: res = co_await execute(req, caller, param, version); break;
        case R::execution: res = co_await get_execution(req, caller, param); break;
        case R::cancel: res = co_await cancel(req, caller, param); break;
        case R::chat: res = co_await chat(req, caller, param); break;
        case R::auth: res = pusher_auth(req, caller); break;
        case R::none: break;
    }
    res.workspace = caller.workspace->id;
    co_return with_cors(std::move(res), caller.workspace);
}

// The Pusher channel a run started with `stream_channel_id` is relayed to ("" when none or the app
// is unknown); a private one is claimed for the caller. An error response when the id is malformed
// or the channel is another user's.
std::optional<Response> AiropsEdge::stream_channel(const Json& body, const AppConfig* app, const Caller& c,
                                                   std::string& channel) {
    auto it = body.find("stream_channel_id");
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!it->is_string() || !valid_channel_id(it->get_ref<const std::string&>())) {
        return edge_error(400, "invalid_request",
                          "stream_channel_id: must be 1-150 characters of A-Z a-z 0-9 _ - = @ , . ;");
    }
    if (!app) return std::nullopt;
    channel = (app->is_public ? "public-" : "private-") + it->get<std::string>();
    if (!app->is_public && !c.anonymous && !claim_channel(channel, c)) {
        return edge_error(403, "channel_taken", "stream_channel_id: the channel belongs to another user");
    }
    return std::nullopt;
}

asio::awaitable<Response> AiropsEdge::execute(Request& req, const Caller& c, const std::string& app_id,
                                              std::string version) {
    Json body = Json::object();
    if (req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
        auto parsed = protocol::parse_json(req.body);
        if (!parsed) co_return edge_error(400, "invalid_json", parsed.error().message);
        body = std::move(*parsed);
    }
    if (!body.is_object()) co_return edge_error(400, "invalid_request", "body: must be a JSON object");
    Json inputs = body.contains("inputs") && !body["inputs"].is_null() ? body["inputs"] : Json::object();
    if (!inputs.is_object()) co_return edge_error(400, "invalid_request", "inputs: must be an object");

    const AppConfig* app = c.workspace->find_app(app_id);
    Json v1 = Json{{"inputs", inputs}};
    if (!version.empty()) {
        // The SDK's `version: 2` is path "v2"; a version labelled "v2" in the config matches too.
        if (app && !app->find_version(version) && app->find_version("v" + version)) version = "v" + version;
        v1["version"] = version;
    }
    std::string channel;
    if (auto bad = stream_channel(body, app, c, channel)) co_return std::move(*bad);
    Response res = co_await forward(req, c, "POST", "/v1/apps/" + app_id + "/executions", protocol::dump(v1));
    if (res.status != 202 && res.status != 200) co_return res;
    auto created = parse_v1_body(res);
    if (!created || !created->is_object()) co_return res;
    const std::string id = created->value("executionId", created->value("id", ""));
    if (!channel.empty() && (app->is_public || !c.anonymous)) watch_run(id, channel, false, "");
    Json exec{{"uuid", id}, {"id", id}, {"status", created->value("status", "queued")}, {"airops_app_id", app_id}};
    co_return with_body(std::move(res), 200, Json{{"airops_app_execution", std::move(exec)}});
}

asio::awaitable<Response> AiropsEdge::chat(Request& req, const Caller& c, const std::string& app_id) {
    auto parsed = protocol::parse_json(req.body.empty() ? std::string_view("null") : std::string_view(req.body));
    if (!parsed) co_return edge_error(400, "invalid_json", parsed.error().message);
    const Json& body = *parsed;
    if (!body.is_object()) co_return edge_error(400, "invalid_request", "body: must be a JSON object");
    if (!body.contains("message") || !body["message"].is_string() || body["message"].get<std::string>().empty()) {
        co_return edge_error(400, "invalid_request", "message: required, a non-empty string");
    }
    Json v1 = Json{{"message", body["message"]}};
    if (body.contains("inputs") && !body["inputs"].is_null()) {
        if (!body["inputs"].is_object()) co_return edge_error(400, "invalid_request", "inputs: must be an object");
        v1["inputs"] = body["inputs"];
    }
    const AppConfig* app = c.workspace->find_app(app_id);
    std::string channel;
    if (auto bad = stream_channel(body, app, c, channel)) co_return std::move(*bad);
    // The SDK invents the session id of a new conversation. It is kept per user: the stored
    // session's id is derived from (workspace, user, the client's id), so another user sending the
    // same id gets a session of their own, never this one.
    std::string client_session;
    if (body.contains("session_id") && !body["session_id"].is_null()) {
        const Json& s = body["session_id"];
        if (!s.is_string() || !valid_client_session(s.get<std::string>())) {
            co_return edge_error(400, "invalid_request", "session_id: must be 1-200 printable ASCII characters");
        }
        client_session = s.get<std::string>();
    }
    // Only where the v1 route will take the turn: no session is made for a caller it refuses.
    const bool chat_app = app && (app->type == protocol::AppType::agent || app->type == protocol::AppType::llm);
    if (!client_session.empty() && chat_app && (app->is_public || !c.anonymous)) {
        const std::string sid = "se_ao" + to_hex(sha256(c.workspace->id + '\x1f' + c.user_id + '\x1f' + client_session)).substr(0, 32);
        const std::string ws = c.workspace->id, user = c.user_id;
        const std::int64_t now = now_ms();
        auto made = co_await db_.run([&](Store& s) -> Status {
            if (s.get_session(ws, user, sid)) return Status(Ok{});
            SessionRecord rec;
            rec.id = sid;
            rec.workspace_id = ws;
            rec.user_id = user;
            rec.app_id = app_id;
            rec.created_at = rec.updated_at = now;
            auto st = s.insert_session(rec);
            if (!st && st.error().code == "conflict") return Status(Ok{});  // the same first turn, twice at once
            return st;
        });
        if (!made) co_return edge_error(503, "storage_unavailable", "storage is unavailable; retry shortly");
        v1["sessionId"] = sid;
    }
    Response res = co_await forward(req, c, "POST", "/v1/apps/" + app_id + "/chat", protocol::dump(v1));
    if (res.status != 200) {
        if (res.status == 400 && res.body.find("sessionId: the session belongs to app") != std::string::npos) {
            co_return edge_error(400, "invalid_request", "session_id: the session belongs to another app");
        }
        co_return res;
    }
    std::string id, internal_session;
    for (const auto& [k, v] : res.headers) {
        if (k == "X-Confab-Execution-Id") id = v;
        if (k == "X-Confab-Session-Id") internal_session = v;
    }
    // The run goes on without its SSE stream: the SDK reads it from Pusher and polls the record.
    if (!channel.empty() && (app->is_public || !c.anonymous)) watch_run(id, channel, true, client_session);
    std::erase_if(res.headers, [](const auto& h) {
        return h.first == "Cache-Control" || h.first == "X-Accel-Buffering" || h.first == "X-Confab-Session-Id";
    });
    Json out{{"airops_app_execution", Json{{"uuid", id}, {"id", id}, {"status", "queued"}, {"airops_app_id", app_id}}}};
    out["session_id"] = client_session.empty() ? internal_session : client_session;
    co_return with_body(std::move(res), 200, out);
}

asio::awaitable<Response> AiropsEdge::get_execution(Request& req, const Caller& c, const std::string& id) {
    Response res = co_await forward(req, c, "GET", "/v1/executions/" + id, "");
    if (res.status != 200) co_return res;
    auto rec = parse_v1_body(res);
    if (!rec) co_return res;
    co_return with_body(std::move(res), 200, airops_record(*rec));
}

// Idempotent: cancelling a run that already ended answers its record, as the SDK expects (it
// raises on any error status, and `cancel()` may race the run's end).
asio::awaitable<Response> AiropsEdge::cancel(Request& req, const Caller& c, const std::string& id) {
    Response res = co_await forward(req, c, "POST", "/v1/executions/" + id + "/cancel", "");
    if (res.status == 409) res = co_await forward(req, c, "GET", "/v1/executions/" + id, "");
    if (res.status != 200) co_return res;
    auto rec = parse_v1_body(res);
    if (!rec) co_return res;
    co_return with_body(std::move(res), 200, airops_record(*rec));
}

Response AiropsEdge::pusher_auth(const Request& req, const Caller& c) {
    // pusher-js posts a form (socket_id=...&channel_name=...), under the SDK's JSON content type.
    std::string socket_id, channel;
    std::string_view body = req.body;
    auto lead = body.find_first_not_of(" \t\r\n");
    if (lead != std::string_view::npos && body[lead] == '{') {
        auto j = protocol::parse_json(body);
        if (!j || !j->is_object()) return edge_error(400, "invalid_json", "body: a form or a JSON object is required");
        if ((*j)["socket_id"].is_string()) socket_id = (*j)["socket_id"].get<std::string>();
        if ((*j)["channel_name"].is_string()) channel = (*j)["channel_name"].get<std::string>();
    } else {
        auto form = split_target("/?" + std::string(body));
        for (const auto& [k, v] : form.query) {
            if (k == "socket_id") socket_id = v;
            if (k == "channel_name") channel = v;
        }
    }
    if (!valid_socket_id(socket_id)) {
        return edge_error(400, "invalid_request", "socket_id: required, a Pusher socket id such as 1234.5678");
    }
    if (!channel.starts_with("private-") || !valid_channel_id(channel.substr(8))) {
        return edge_error(400, "invalid_request",
                          "channel_name: must be private-<id> (public- channels need no authorisation)");
    }
    if (c.anonymous) {
        return edge_error(401, "identity_missing",
                          "a private channel needs an identified user: user_id, workspace_id and user_id_hashed");
    }
    if (!claim_channel(channel, c)) {
        return edge_error(403, "channel_taken", "channel_name: the channel belongs to another user");
    }
    Response r = json_response(200, Json{{"auth", c.workspace->pusher_key + ":" +
                                                      hmac_hex(pusher_secret(*c.workspace), socket_id + ":" + channel)}});
    r.route = Route::unmatched;
    return r;
}

void AiropsEdge::sweep_channels_locked(std::int64_t now) {
    std::erase_if(channels_, [now](const auto& kv) {
        const Channel& ch = *kv.second;
        return ch.subscribers.empty() && ch.watchers == 0 && now - ch.touched_ms > kUnusedChannelMs;
    });
}

bool AiropsEdge::claim_channel(const std::string& channel, const Caller& c) {
    const std::int64_t now = now_ms();
    std::lock_guard lock(mu_);
    if (++claims_since_sweep_ >= 256) {
        claims_since_sweep_ = 0;
        sweep_channels_locked(now);
    }
    auto& slot = channels_[channel];
    if (!slot) slot = std::make_unique<Channel>();
    slot->touched_ms = now;
    if (!slot->owned || (!slot->user_known && slot->workspace_id == c.workspace->id)) {
        slot->owned = true;
        slot->user_known = true;
        slot->workspace_id = c.workspace->id;
        slot->user_id = c.user_id;
        return true;
    }
    return slot->workspace_id == c.workspace->id && slot->user_id == c.user_id;
}

void AiropsEdge::publish(const std::string& channel, std::string_view event, const Json& data) {
    std::lock_guard lock(mu_);
    auto it = channels_.find(channel);
    if (it == channels_.end() || it->second->subscribers.empty()) return;
    const std::string frame = pusher_frame(event, channel, data);
    for (const auto& conn : it->second->subscribers) conn->enqueue(frame, options_.max_queued_bytes);
}

namespace {

// Receives a run's SSE bytes from the hub (it is the run's stream body, as an HTTP stream is)
// and republishes each event under the SDK's name and shape. Never blocks the run: publishing
// only queues (a subscriber that falls behind is dropped), so nothing is ever pending here.
class PusherSink final : public StreamOut {
public:
    using Publish = std::function<void(std::string_view, const Json&)>;
    PusherSink(boost::asio::any_io_executor ex, bool chat, std::string client_session, Publish publish,
               std::function<void()> ended)
        : ex_(std::move(ex)), chat_(chat), client_session_(std::move(client_session)),
          publish_(std::move(publish)), ended_(std::move(ended)) {}

    Sent send(std::string_view bytes) override {
        std::lock_guard lock(mu_);
        if (finished_) return Sent::closed;
        events_.clear();
        (void)parser_.feed(bytes, events_);
        for (const auto& e : events_) {
            auto data = protocol::parse_json(e.data);
            if (!data || !data->is_object()) continue;
            translate(e.type, *data);
        }
        return Sent::ok;
    }
    void when_drained(std::function<void()> fn) override { asio::post(ex_, std::move(fn)); }
    void on_gone(std::function<void()>) override {}  // it never goes: it relays to the run's end
    void finish() override {
        std::function<void()> ended;
        {
            std::lock_guard lock(mu_);
            if (finished_) return;
            finished_ = true;
            ended.swap(ended_);
        }
        asio::post(ex_, std::move(ended));
    }
    bool closed() const override {
        std::lock_guard lock(mu_);
        return finished_;
    }
    boost::asio::any_io_executor executor() const override { return ex_; }

private:
    void translate(const std::string& type, const Json& d) {
        if (type == "error") {
            error_ = d.value("error", "");
            return;
        }
        if (type == "agent-action") {
            last_tool_ = d.value("tool", "");
            publish_("agent-action", d);
            return;
        }
        if (!chat_) {
            if (type == "delta") publish_("chunk", Json{{"content", d.value("content", "")}});
            if (type == "completed") {
                const Json& out = d.contains("output") ? d["output"] : Json();
                Json c{{"content", out.is_string() ? out.get<std::string>() : out.is_null() ? "" : protocol::dump(out)},
                       {"status", d.value("status", "success")}};
                if (d.contains("error")) c["error_message"] = d["error"];
                else if (!error_.empty()) c["error_message"] = error_;
                publish_("completed", c);
            }
            return;
        }
        if (type == "agent-response") publish_("agent-response", Json{{"token", d.value("token", "")}});
        if (type == "agent-action-error") {
            publish_("agent-action-error", Json{{"tool", last_tool_}, {"tool_error", d.value("error", "")}});
        }
        if (type == "completed") {
            Json c{{"result", d.value("result", "")}, {"status", d.value("status", "success")}};
            if (!client_session_.empty()) c["session_id"] = client_session_;
            if (!error_.empty()) c["error_message"] = error_;
            publish_("completed", c);
        }
    }

    boost::asio::any_io_executor ex_;
    mutable std::mutex mu_;  // send() may come from any thread
    bool finished_ = false;
    bool chat_;
    std::string client_session_;
    Publish publish_;
    std::function<void()> ended_;
    sse::Parser parser_;
    std::vector<sse::Event> events_;
    std::string error_, last_tool_;
};

}  // namespace

void AiropsEdge::watch_run(std::string execution_id, std::string channel, bool chat, std::string client_session) {
    if (execution_id.empty()) return;
    {
        std::lock_guard lock(mu_);
        auto& slot = channels_[channel];
        if (!slot) slot = std::make_unique<Channel>();
        slot->watchers++;
        slot->touched_ms = now_ms();
    }
    relay(std::move(execution_id), std::move(channel), chat, std::move(client_session));
}

// The one place this edge reads a run's events: the hub's stream, from the first event (stored
// ones first, so a relay that starts late loses nothing), as SSE bytes.
void AiropsEdge::relay(std::string execution_id, std::string channel, bool chat, std::string client_session) {
    auto ended = [this, channel] {
        std::lock_guard lock(mu_);
        auto it = channels_.find(channel);
        if (it != channels_.end()) {
            it->second->watchers--;
            it->second->touched_ms = now_ms();
            if (it->second->watchers == 0 && it->second->subscribers.empty() && !it->second->owned) channels_.erase(it);
        }
    };
    auto sink = std::make_shared<PusherSink>(
        asio::make_strand(ioc_), chat, std::move(client_session),
        [this, channel](std::string_view event, const Json& data) { publish(channel, event, data); }, std::move(ended));
    hub_.stream(execution_id, 0, std::move(sink));
}

// ---- the WebSocket endpoint ----

asio::awaitable<void> AiropsEdge::serve_websocket(beast::tcp_stream& stream, http::request<http::string_body> req) {
    std::string_view target = req.target();
    std::string key(target.substr(5, target.find('?') == std::string_view::npos ? std::string_view::npos
                                                                                 : target.find('?') - 5));
    bool known_key = false;
    for (const auto& w : config_.workspaces) known_key = known_key || w.pusher_key == key;
    // A browser's handshake names its page: only pages some workspace allows may connect.
    if (auto o = req.find(http::field::origin); o != req.end()) {
        bool allowed = false;
        for (const auto& w : config_.workspaces) {
            for (const auto& a : w.allowed_origins) allowed = allowed || a == "*" || a == o->value();
        }
        if (!allowed) {
            http::response<http::string_body> res{http::status::forbidden, req.version()};
            res.set(http::field::content_type, "application/json");
            res.body() = protocol::dump(Json{{"error", "origin '" + std::string(o->value()) + "' is not allowed"},
                                             {"code", "origin_not_allowed"}});
            res.keep_alive(false);
            res.prepare_payload();
            stream.expires_after(std::chrono::seconds(10));
            co_await http::async_write(stream, res, kTuple);
            co_return;
        }
    }

    websocket::stream<beast::tcp_stream&> ws(stream);
    stream.expires_never();  // the websocket's own time-outs apply from here
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "confab"); }));
    ws.read_message_max(64 * 1024);
    ws.auto_fragment(false);  // one frame per Pusher message: less framing, and simple clients cope
    auto [aec] = co_await ws.async_accept(req, kTuple);
    if (aec) co_return;

    auto conn = std::make_shared<Conn>(co_await asio::this_coro::executor);
    conn->stream = &stream;
    conn->socket_id = new_socket_id();
    connections_.fetch_add(1);
    if (!known_key) {
        conn->enqueue(protocol::dump(Json{{"event", "pusher:error"},
                                          {"data", Json{{"code", 4001}, {"message", "App key " + key + " not in this cluster"}}}}),
                      options_.max_queued_bytes);
        std::lock_guard lock(conn->mu);
        conn->closed = true;  // the writer sends the error, then ends
    } else {
        conn->enqueue(pusher_frame("pusher:connection_established", "",
                                   Json{{"socket_id", conn->socket_id}, {"activity_timeout", 120}}),
                      options_.max_queued_bytes);
    }

    // Reader and writer share the stream (one read and one write may be pending at once); when
    // either ends, the other is cancelled and awaited, so `ws` outlives both.
    auto reader = [this, conn, &ws]() -> asio::awaitable<void> {
        beast::flat_buffer buf;
        bool closing;
        {
            std::lock_guard lock(conn->mu);
            closing = conn->closed;
        }
        while (!closing) {
            auto [ec, n] = co_await ws.async_read(buf, kTuple);
            if (ec) break;
            if (ws.got_text()) on_message(conn, std::string_view(static_cast<const char*>(buf.cdata().data()), buf.size()));
            buf.consume(buf.size());
        }
        if (closing) {
            // Let the writer send what is queued (the pusher:error), then both end.
            asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::seconds(5));
            co_await t.async_wait(kTuple);
        }
    };
    auto writer = [conn, &ws]() -> asio::awaitable<void> {
        for (;;) {
            std::deque<std::string> batch;
            bool closed;
            {
                std::lock_guard lock(conn->mu);
                batch.swap(conn->queue);
                closed = conn->closed;
                if (batch.empty() && !closed) conn->writer_idle = true;
            }
            if (batch.empty()) {
                if (closed) break;
                conn->wake.expires_after(std::chrono::hours(24));
                co_await conn->wake.async_wait(kTuple);
                auto cs = co_await asio::this_coro::cancellation_state;
                if (cs.cancelled() != asio::cancellation_type::none) co_return;
                continue;
            }
            for (auto& frame : batch) {
                ws.text(true);
                auto [ec, n] = co_await ws.async_write(asio::buffer(frame), kTuple);
                {
                    std::lock_guard lock(conn->mu);
                    conn->queued_bytes -= frame.size();
                }
                if (ec) {
                    conn->drop();
                    co_return;
                }
            }
        }
        // Closed with everything sent: say goodbye properly.
        auto close_result = co_await ws.async_close(websocket::close_code::normal, kTuple);
        (void)close_result;  // the peer may be gone already
        conn->drop();
    };
    using namespace asio::experimental::awaitable_operators;
    try {
        co_await (reader() || writer());
    } catch (const std::exception&) {
        // a cancelled or failed connection: cleaned up below either way
    }
    conn->drop();
    {
        std::lock_guard lock(mu_);
        for (const auto& name : conn->channels) {
            auto it = channels_.find(name);
            if (it == channels_.end()) continue;
            it->second->subscribers.erase(conn);
            if (it->second->subscribers.empty() && it->second->watchers == 0 && !it->second->owned) channels_.erase(it);
        }
    }
    conn->channels.clear();
    conn->stream = nullptr;
    connections_.fetch_sub(1);
}

void AiropsEdge::on_message(const std::shared_ptr<Conn>& conn, std::string_view text) {
    auto msg = protocol::parse_json(text);
    if (!msg || !msg->is_object() || !(*msg)["event"].is_string()) return;
    const std::string event = (*msg)["event"].get<std::string>();
    Json data = msg->contains("data") ? (*msg)["data"] : Json::object();
    if (data.is_string()) {
        auto inner = protocol::parse_json(data.get<std::string>());
        data = inner ? *inner : Json::object();
    }
    if (event == "pusher:ping") {
        conn->enqueue(pusher_frame("pusher:pong", "", Json::object()), options_.max_queued_bytes);
        return;
    }
    const std::string channel = data.is_object() && data["channel"].is_string() ? data["channel"].get<std::string>() : "";
    if (event == "pusher:subscribe") {
        std::string auth = data.is_object() && data["auth"].is_string() ? data["auth"].get<std::string>() : "";
        subscribe(conn, channel, auth);
        return;
    }
    if (event == "pusher:unsubscribe") {
        unsubscribe(conn, channel);
        return;
    }
    if (event.starts_with("client-")) {
        conn->enqueue(protocol::dump(Json{{"event", "pusher:error"},
                                          {"data", Json{{"code", 4301}, {"message", "client events are not supported"}}}}),
                      options_.max_queued_bytes);
    }
}

void AiropsEdge::subscribe(const std::shared_ptr<Conn>& conn, const std::string& channel, std::string_view auth) {
    auto refuse = [&](int status, const std::string& why) {
        conn->enqueue(pusher_frame("pusher:subscription_error", channel,
                                   Json{{"type", "AuthError"}, {"error", why}, {"status", status}}),
                      options_.max_queued_bytes);
    };
    const bool is_private = channel.starts_with("private-");
    const bool is_public = channel.starts_with("public-");
    if ((!is_private && !is_public) || !valid_channel_id(channel.substr(is_private ? 8 : 7))) {
        refuse(400, "channel: only public-<id> and private-<id> channels exist here");
        return;
    }
    if (!conn->channels.contains(channel) && conn->channels.size() >= kMaxChannelsPerConn) {
        refuse(400, "channel: at most " + std::to_string(kMaxChannelsPerConn) + " channels per connection");
        return;
    }
    std::lock_guard lock(mu_);
    if (is_private) {
        // The signature is over this socket and channel with a workspace's secret, so an auth
        // issued for another socket never matches. POST /sdk_api/pusher/auth may have been
        // answered by another instance (behind a load balancer): the signature alone says which
        // workspace authorised the channel, as every instance derives the same secrets.
        const WorkspaceConfig* signer = auth_signer(auth, conn->socket_id, channel);
        if (!signer) {
            refuse(401, "auth: invalid signature (POST /sdk_api/pusher/auth authorises a channel)");
            return;
        }
        auto it = channels_.find(channel);
        if (it != channels_.end() && it->second->owned && it->second->workspace_id != signer->id) {
            refuse(401, "auth: invalid signature (the channel belongs to another workspace)");
            return;
        }
        if (it == channels_.end() || !it->second->owned) {
            // Authorised elsewhere: bound here to the signing workspace; its user is not known
            // here, so the first user of that workspace who claims it on this instance gets it.
            auto& slot = channels_[channel];
            if (!slot) slot = std::make_unique<Channel>();
            slot->owned = true;
            slot->workspace_id = signer->id;
            slot->user_known = false;
        }
    }
    auto& slot = channels_[channel];
    if (!slot) slot = std::make_unique<Channel>();
    slot->touched_ms = now_ms();
    // Queued under the channel lock: the confirmation precedes every event published after it.
    conn->enqueue(pusher_frame("pusher_internal:subscription_succeeded", channel, Json::object()),
                  options_.max_queued_bytes);
    slot->subscribers.insert(conn);
    conn->channels.insert(channel);
}

void AiropsEdge::unsubscribe(const std::shared_ptr<Conn>& conn, const std::string& channel) {
    if (!conn->channels.erase(channel)) return;
    std::lock_guard lock(mu_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    it->second->subscribers.erase(conn);
    if (it->second->subscribers.empty() && it->second->watchers == 0 && !it->second->owned) channels_.erase(it);
}

}  // namespace confab::server
