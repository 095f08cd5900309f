// Server-to-server routes (/v1/applications/token, /v1/workflows, /v1/agents, /v1/jobs) and the
// workflow engine: each step is an agent execution of the hub, awaited, its output fed onward.
#include "workflows.hpp"

// g++ 12 destroys some temporaries of a co_await full-expression twice (see hub.cpp): objects
// passed to co_await are named locals here and lambdas given to db_.run capture by reference.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <exception>
#include <set>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "access_token.hpp"
#include "confab/identity.hpp"
#include "responses.hpp"
#include "runners.hpp"
#include "util.hpp"

namespace asio = boost::asio;

namespace confab::server {

using protocol::Json;

namespace {

constexpr std::int64_t kMaxPageSize = 100;
constexpr std::size_t kMaxSteps = 100;
constexpr std::size_t kMaxName = 200;
constexpr std::size_t kMaxText = 20000;
constexpr const char* kApproval = "human_approval";

Response bad_request(std::string message) { return error_response(400, "invalid_request", std::move(message)); }

Response no_content() {
    Response r;
    r.status = 204;
    r.content_type.clear();
    return r;
}

Response internal(const Error& e) {
    log_line(R"({"level":"error","msg":)" + protocol::dump(Json(e.message)) + "}");
    return error_response(500, "internal", "internal error");
}

Response method_not_allowed(const Request& req, const char* allow) {
    Response r = error_response(405, "method_not_allowed",
                                req.method + " is not allowed here; allowed: " + allow);
    r.headers.emplace_back("Allow", std::string(allow) + ", OPTIONS");
    return r;
}

bool method_in(std::string_view method, std::string_view allow) {
    while (!allow.empty()) {
        auto comma = allow.find(", ");
        if (allow.substr(0, comma) == method) return true;
        if (comma == std::string_view::npos) break;
        allow.remove_prefix(comma + 2);
    }
    return false;
}

// Parses the request body as a JSON object; a blank body is {} when `empty_ok`.
Result<Json> body_object(const Request& req, bool empty_ok) {
    if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) {
        if (empty_ok) return Json::object();
        return make_error("invalid_request", "body: a JSON object is required");
    }
    auto j = protocol::parse_json(req.body);
    if (!j) return j.error();
    if (!j->is_object()) return make_error("invalid_request", "body: must be a JSON object");
    return j;
}

Response from_error(const Error& e) {
    if (e.code == "invalid_request" || e.code == "invalid_json" || e.code == "too_deep") {
        return error_response(400, e.code, e.message);
    }
    if (e.code == "too_large") return error_response(413, e.code, e.message);
    if (e.code == "shutting_down") return error_response(503, e.code, e.message);
    return internal(e);
}

// Rejects keys outside `known` (a typo such as "stepOder" must not be silently ignored).
std::optional<std::string> unknown_key(const Json& obj, std::initializer_list<std::string_view> known,
                                       const std::string& prefix) {
    for (const auto& item : obj.items()) {
        if (std::find(known.begin(), known.end(), item.key()) == known.end()) {
            return prefix + item.key() + ": is not a known field";
        }
    }
    return std::nullopt;
}

std::optional<std::int64_t> as_int(const Json& v) {
    if (v.is_number_unsigned()) {
        auto u = v.get<std::uint64_t>();
        if (u > 1000000000ULL) return std::nullopt;
        return static_cast<std::int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<std::int64_t>();
    return std::nullopt;
}

// Validates one step {agentId, action, stepOrder} and returns it normalised with a fresh id.
Result<Json> parse_step(const Json& s, const WorkspaceConfig& ws, const std::string& prefix) {
    if (!s.is_object()) return make_error("invalid_request", prefix.substr(0, prefix.size() - 1) + ": must be an object");
    if (auto u = unknown_key(s, {"agentId", "action", "stepOrder"}, prefix)) return make_error("invalid_request", *u);
    auto agent = s.find("agentId");
    if (agent == s.end() || !agent->is_string() || agent->get_ref<const std::string&>().empty()) {
        return make_error("invalid_request", prefix + "agentId: a non-empty string is required");
    }
    const std::string& agent_id = agent->get_ref<const std::string&>();
    if (agent_id != kApproval) {
        const AppConfig* app = ws.find_app(agent_id);
        if (!app || app->type != protocol::AppType::agent) {
            return make_error("invalid_request", prefix + "agentId: '" + agent_id +
                                                     "' is not an agent of this workspace (or \"human_approval\")");
        }
    }
    auto action = s.find("action");
    if (action == s.end() || !action->is_string()) {
        return make_error("invalid_request", prefix + "action: a string is required");
    }
    if (action->get_ref<const std::string&>().size() > kMaxText) {
        return make_error("invalid_request", prefix + "action: at most " + std::to_string(kMaxText) + " bytes");
    }
    auto order = s.find("stepOrder");
    std::optional<std::int64_t> n;
    if (order != s.end()) n = as_int(*order);
    if (!n || *n < 0 || *n > 1000000) {
        return make_error("invalid_request", prefix + "stepOrder: an integer from 0 to 1000000 is required");
    }
    return Json{{"id", random_id("st_")}, {"agentId", agent_id}, {"action", *action}, {"stepOrder", *n},
                {"createdAt", now_ms()}};
}

Result<Json> parse_steps(const Json& arr, const WorkspaceConfig& ws) {
    if (!arr.is_array()) return make_error("invalid_request", "steps: must be an array");
    if (arr.size() > kMaxSteps) return make_error("invalid_request", "steps: at most " + std::to_string(kMaxSteps) + " steps");
    Json out = Json::array();
    std::set<std::int64_t> orders;
    for (std::size_t i = 0; i < arr.size(); ++i) {
        auto s = parse_step(arr[i], ws, "steps[" + std::to_string(i) + "].");
        if (!s) return s.error();
        if (!orders.insert((*s)["stepOrder"].get<std::int64_t>()).second) {
            return make_error("invalid_request", "steps[" + std::to_string(i) + "].stepOrder: " +
                                                     std::to_string((*s)["stepOrder"].get<std::int64_t>()) + " is used twice");
        }
        out.push_back(std::move(*s));
    }
    return out;
}

Json workflow_wire(const DocRecord& d) {
    return Json{{"id", d.id},
                {"name", d.label},
                {"description", d.doc.value("description", Json())},
                {"steps", sorted_workflow_steps(d.doc.value("steps", Json::array()))},
                {"createdAt", d.created_at},
                {"updatedAt", d.updated_at}};
}

bool run_terminal(std::string_view s) { return s == "COMPLETED" || s == "FAILED" || s == "CANCELLED"; }

Json run_wire(const DocRecord& r) {
    const std::int64_t end = run_terminal(r.label) ? r.updated_at : now_ms();
    return Json{{"id", r.id},
                {"jobId", r.id},
                {"workflowId", r.parent_id},
                {"sessionId", r.doc.value("sessionId", "")},
                {"status", r.label},
                {"currentStepOrder", r.doc.value("currentStepOrder", Json())},
                {"durationMs", std::max<std::int64_t>(0, end - r.created_at)},
                {"input", r.doc.value("input", Json())},
                {"output", r.doc.value("output", Json())},
                {"error", r.doc.value("error", Json())},
                {"steps", r.doc.value("trace", Json::array())},
                {"createdAt", r.created_at},
                {"updatedAt", r.updated_at}};
}

// The job vocabulary is the run one; executions are mapped onto it.
const char* job_status(protocol::ExecutionStatus s) {
    switch (s) {
        case protocol::ExecutionStatus::queued: return "QUEUED";
        case protocol::ExecutionStatus::running: return "RUNNING";
        case protocol::ExecutionStatus::success: return "COMPLETED";
        case protocol::ExecutionStatus::error: return "FAILED";
        case protocol::ExecutionStatus::cancelled: return "CANCELLED";
    }
    return "FAILED";
}

Json execution_wire(const ExecutionRecord& r) { return protocol::encode(to_wire(r)); }

Json execution_job(const ExecutionRecord& r) {
    return Json{{"id", r.id},         {"type", "execution"}, {"status", job_status(r.status)},
                {"appId", r.app_id},  {"kind", r.kind},      {"output", r.output},
                {"error", r.error ? Json(*r.error) : Json()}, {"createdAt", r.created_at},
                {"updatedAt", r.updated_at}};
}

Json run_job(const DocRecord& r) {
    Json j = run_wire(r);
    j["type"] = "workflow_run";
    return j;
}

struct PageParams {
    std::int64_t page = 0, size = 20;
};

// page >= 0, 1 <= size <= kMaxPageSize: a size over the maximum is a 400 naming `size` rather
// than a silent clamp, so a caller never mistakes a short page for the end of the data.
std::optional<Response> read_paging(const Request& req, PageParams& p) {
    auto read = [&](const char* name, std::int64_t& out, std::int64_t min, std::int64_t max) -> std::optional<Response> {
        auto v = req.query_param(name);
        if (!v) return std::nullopt;
        std::int64_t n = 0;
        auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
        if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || n < min || n > max) {
            return bad_request(std::string(name) + ": must be an integer from " + std::to_string(min) + " to " +
                               std::to_string(max));
        }
        out = n;
        return std::nullopt;
    };
    if (auto r = read("page", p.page, 0, 1000000)) return r;
    if (auto r = read("size", p.size, 1, kMaxPageSize)) return r;
    return std::nullopt;
}

Json page_json(Json content, std::int64_t total, const PageParams& p) {
    return Json{{"content", std::move(content)},
                {"totalElements", total},
                {"totalPages", (total + p.size - 1) / p.size},
                {"number", p.page},
                {"size", p.size}};
}

std::string text_of(const Json& output) {
    if (output.is_string()) return output.get<std::string>();
    if (output.is_null()) return "";
    return protocol::dump(output);
}

}  // namespace

WorkflowService::WorkflowService(asio::io_context& ioc, const ServerConfig& config, DbExecutor& db, ExecutionHub& hub)
    : ioc_(ioc), config_(config), db_(db), hub_(hub) {}

bool WorkflowService::owns(const std::vector<std::string_view>& segs) {
    if (segs.size() < 2 || segs[0] != "v1") return false;
    return segs[1] == "workflows" || segs[1] == "agents" || segs[1] == "jobs" || segs[1] == "applications" ||
           (segs[1] == "feedback" && segs.size() == 2);
}

void WorkflowService::prepare_store() {
    db_.run_blocking([this](Store& s) {
        auto failed = s.fail_interrupted_runs(now_ms());
        if (!failed) {
            log_line(R"({"level":"error","msg":"failing interrupted workflow runs failed"})");
        } else if (*failed > 0) {
            log_line(R"({"level":"warn","msg":"workflow runs interrupted by the last shutdown were marked FAILED","count":)" +
                     std::to_string(*failed) + "}");
        }
        for (const auto& ws : config_.workspaces) {
            for (const auto& seed : ws.workflows) {
                DocRecord d;
                d.id = seed.id;
                d.workspace_id = ws.id;
                d.label = seed.name;
                d.created_at = d.updated_at = now_ms();
                Json steps = Json::array();
                for (std::size_t i = 0; i < seed.steps.size(); ++i) {
                    Json st = seed.steps[i];
                    st["id"] = "st_" + seed.id + "_" + std::to_string(i + 1);
                    st["createdAt"] = d.created_at;
                    steps.push_back(std::move(st));
                }
                d.doc = Json{{"description", seed.description.empty() ? Json() : Json(seed.description)},
                             {"steps", std::move(steps)}};
                if (auto st = s.put_workflow(d, true); !st) log_line(R"({"level":"error","msg":"seeding a workflow failed"})");
            }
        }
    });
}

// ---------------------------------------------------------------- auth and routing

bool WorkflowService::authenticate(const Request& req, ServiceCaller& out, Response& err) const {
    auto auth = req.header("authorization");
    constexpr std::string_view bearer = "Bearer ";
    auto unauthorized = [&](std::string code, std::string message) {
        err = error_response(401, std::move(code), std::move(message));
        err.headers.emplace_back("WWW-Authenticate", "Bearer");
        return false;
    };
    if (!auth || auth->size() <= bearer.size() || auth->substr(0, bearer.size()) != bearer) {
        return unauthorized("api_key_missing",
                            "Authorization: Bearer <workspace API key or access token> is required");
    }
    std::string_view token = auth->substr(bearer.size());
    if (token.substr(0, 4) == "at1.") {
        auto claims = verify_access_token(config_, token, now_ms());
        if (!claims) return unauthorized(claims.error().code, claims.error().message);
        out.workspace = claims->workspace;
        out.credential = "client:" + claims->client->client_id;
        return true;
    }
    const WorkspaceConfig* ws = nullptr;
    for (const auto& w : config_.workspaces) {
        for (const auto& k : w.api_keys) {
            // Every key is compared (no early exit) so timing says nothing about which matched.
            if (constant_time_equal(k, token) && !ws) ws = &w;
        }
    }
    if (!ws) return unauthorized("api_key_invalid", "the API key is not valid");
    out.workspace = ws;
    out.credential = "apiKey";
    return true;
}

asio::awaitable<bool> WorkflowService::check_rate(const std::string& key, const RateLimit& rl, Response& err) {
    auto retry = co_await limiter_.take(db_, key, rl.per_second, rl.burst);
    if (!retry) co_return true;
    err = error_response(429, "rate_limited", "too many requests; retry in " + std::to_string(*retry) + " s");
    err.headers.emplace_back("Retry-After", std::to_string(*retry));
    co_return false;
}

asio::awaitable<bool> WorkflowService::authorize(const Request& req, ServiceCaller& out, Response& err) {
    if (!authenticate(req, out, err)) co_return false;
    const std::string key = out.workspace->id + "\x1f" "s2s:" + out.credential;
    const bool within_rate = co_await check_rate(key, out.workspace->rate_limit, err);
    if (!within_rate) {
        err.workspace = out.workspace->id;
        co_return false;
    }
    co_return true;
}

asio::awaitable<Response> WorkflowService::handle(Request& req, std::vector<std::string> segs) {
    if (segs.size() == 3 && segs[1] == "applications" && segs[2] == "token") {
        if (req.method != "POST") co_return method_not_allowed(req, "POST");
        co_return co_await issue_token(req);
    }
    ServiceCaller c;
    Response err;
    const bool authorized = co_await authorize(req, c, err);
    if (!authorized) co_return err;
    Response res = co_await route(req, c, segs);
    res.workspace = c.workspace->id;
    co_return res;
}

asio::awaitable<Response> WorkflowService::route(Request& req, const ServiceCaller& c,
                                                 const std::vector<std::string>& s) {
    const std::string& m = req.method;
    const auto n = s.size();
    auto allow = [&](const char* a) { return method_in(m, a); };
    if (s[1] == "workflows") {
        if (n == 2) {
            if (!allow("GET, POST")) co_return method_not_allowed(req, "GET, POST");
            if (m == "GET") co_return co_await list_workflows(req, c);
            co_return co_await create_workflow(req, c);
        }
        if (s[2] == "runs" && n >= 4) {
            if (n == 4) {
                if (!allow("GET")) co_return method_not_allowed(req, "GET");
                co_return co_await get_run(c, s[3]);
            }
            if (n == 5 && s[4] == "resume") {
                if (!allow("POST")) co_return method_not_allowed(req, "POST");
                co_return co_await resume_run(req, c, s[3]);
            }
        } else if (n == 3) {
            if (!allow("GET, PATCH, DELETE")) co_return method_not_allowed(req, "GET, PATCH, DELETE");
            if (m == "GET") co_return co_await get_workflow(c, s[2]);
            if (m == "PATCH") co_return co_await patch_workflow(req, c, s[2]);
            co_return co_await delete_workflow(c, s[2]);
        } else if (n == 4) {
            const std::string& what = s[3];
            if (what == "steps") {
                if (!allow("GET, POST")) co_return method_not_allowed(req, "GET, POST");
                if (m == "GET") co_return co_await list_steps(c, s[2]);
                co_return co_await add_step(req, c, s[2]);
            }
            if (what == "runs") {
                if (!allow("GET")) co_return method_not_allowed(req, "GET");
                co_return co_await list_runs(req, c, s[2]);
            }
            if (what == "clone" || what == "run" || what == "execute") {
                if (!allow("POST")) co_return method_not_allowed(req, "POST");
                if (what == "clone") co_return co_await clone_workflow(c, s[2]);
                co_return co_await start_run(req, c, s[2], what == "execute");
            }
        } else if (n == 5) {
            if (s[3] == "steps") {
                if (!allow("DELETE")) co_return method_not_allowed(req, "DELETE");
                co_return co_await delete_step(c, s[2], s[4]);
            }
            if (s[3] == "executions") {
                if (!allow("GET")) co_return method_not_allowed(req, "GET");
                co_return co_await get_workflow_execution(c, s[2], s[4]);
            }
        }
    } else if (s[1] == "agents") {
        if (n == 2) {
            if (!allow("GET")) co_return method_not_allowed(req, "GET");
            co_return co_await list_agents(c);
        }
        if (n == 4 && (s[3] == "execute" || s[3] == "chat")) {
            if (!allow("POST")) co_return method_not_allowed(req, "POST");
            if (s[3] == "execute") co_return co_await execute_agent(req, c, s[2]);
            co_return co_await chat_agent(req, c, s[2]);
        }
    } else if (s[1] == "jobs") {
        if (n == 2) {
            if (!allow("GET")) co_return method_not_allowed(req, "GET");
            co_return co_await list_jobs(req, c);
        }
        if (n == 3) {
            if (!allow("GET, DELETE")) co_return method_not_allowed(req, "GET, DELETE");
            if (m == "GET") co_return co_await get_job(c, s[2]);
            co_return co_await cancel_job(c, s[2]);
        }
    } else if (s[1] == "feedback" && n == 2) {
        if (!allow("GET")) co_return method_not_allowed(req, "GET");
        co_return co_await list_feedback(req, c);
    }
    co_return error_response(404, "not_found", "no route for " + req.method + " " + req.path);
}

asio::awaitable<Response> WorkflowService::issue_token(Request& req) {
    Response err;
    // Before the secret is checked: bounds guessing per address.
    const std::string ip_key = "token-ip:" + req.remote_ip;
    const RateLimit token_limit{};
    const bool within_rate = co_await check_rate(ip_key, token_limit, err);
    if (!within_rate) co_return err;
    auto body = body_object(req, false);
    if (!body) co_return from_error(body.error());
    if (auto u = unknown_key(*body, {"client_id", "client_secret", "expires_in", "grant_type"}, "")) co_return bad_request(*u);
    auto str = [&](const char* k) -> const std::string* {
        auto it = body->find(k);
        if (it == body->end() || !it->is_string() || it->get_ref<const std::string&>().empty()) return nullptr;
        return &it->get_ref<const std::string&>();
    };
    const std::string* id = str("client_id");
    if (!id) co_return bad_request("client_id: a non-empty string is required");
    const std::string* secret = str("client_secret");
    if (!secret) co_return bad_request("client_secret: a non-empty string is required");
    if (auto g = body->find("grant_type"); g != body->end() && *g != "client_credentials") {
        co_return bad_request("grant_type: only \"client_credentials\" is supported");
    }
    const WorkspaceConfig* ws = nullptr;
    const ApiClient* client = nullptr;
    for (const auto& w : config_.workspaces) {
        for (const auto& cl : w.clients) {
            // The secret is compared for every client with this id (constant time, no early exit).
            if (cl.client_id == *id && constant_time_equal(cl.client_secret, *secret) && !client) {
                ws = &w;
                client = &cl;
            }
        }
    }
    if (!client) co_return error_response(401, "invalid_client", "unknown client or wrong client secret");
    if (client->revoked) co_return error_response(401, "client_revoked", "the client '" + *id + "' is revoked");
    std::int64_t ttl = client->token_ttl_seconds;
    if (auto e = body->find("expires_in"); e != body->end()) {
        auto v = as_int(*e);
        if (!v || *v < 1 || *v > client->token_ttl_seconds) {
            co_return bad_request("expires_in: an integer from 1 to " + std::to_string(client->token_ttl_seconds) +
                                  " (seconds) is required");
        }
        ttl = *v;
    }
    const std::int64_t exp = now_ms() + ttl * 1000;
    Response r = json_response(200, Json{{"access_token", sign_access_token(*ws, client->client_id, exp)},
                                         {"token_type", "Bearer"},
                                         {"expires_in", ttl},
                                         {"workspace_id", ws->id}});
    r.headers.emplace_back("Cache-Control", "no-store");
    r.workspace = ws->id;
    co_return r;
}

// ---------------------------------------------------------------- workflows

asio::awaitable<Response> WorkflowService::list_workflows(Request& req, const ServiceCaller& c) {
    PageParams p;
    if (auto bad = read_paging(req, p)) co_return *bad;
    std::string order = "created_at";
    bool desc = true;
    if (auto sort = req.query_param("sort")) {
        std::string_view sv = *sort;
        auto comma = sv.find(',');
        std::string_view field = sv.substr(0, comma);
        std::string_view dir = comma == std::string_view::npos ? "asc" : sv.substr(comma + 1);
        if (field == "createdAt") order = "created_at";
        else if (field == "updatedAt") order = "updated_at";
        else if (field == "name") order = "name";
        else co_return bad_request("sort: the field must be createdAt, updatedAt or name");
        if (dir == "asc") desc = false;
        else if (dir == "desc") desc = true;
        else co_return bad_request("sort: the direction must be asc or desc");
    }
    const std::string ws = c.workspace->id;
    const std::int64_t offset = p.page * p.size, limit = p.size;
    DocPage page = co_await db_.run([&](Store& s) { return s.list_workflows(ws, order, desc, offset, limit); });
    Json content = Json::array();
    for (const auto& d : page.items) content.push_back(workflow_wire(d));
    co_return json_response(200, page_json(std::move(content), page.total, p));
}

asio::awaitable<Response> WorkflowService::create_workflow(Request& req, const ServiceCaller& c) {
    auto body = body_object(req, false);
    if (!body) co_return from_error(body.error());
    if (auto u = unknown_key(*body, {"name", "description", "steps"}, "")) co_return bad_request(*u);
    auto name = body->find("name");
    if (name == body->end() || !name->is_string() || name->get_ref<const std::string&>().empty() ||
        name->get_ref<const std::string&>().size() > kMaxName) {
        co_return bad_request("name: a non-empty string of at most " + std::to_string(kMaxName) + " bytes is required");
    }
    Json description;
    if (auto d = body->find("description"); d != body->end() && !d->is_null()) {
        if (!d->is_string() || d->get_ref<const std::string&>().size() > kMaxText) {
            co_return bad_request("description: must be a string of at most " + std::to_string(kMaxText) + " bytes");
        }
        description = *d;
    }
    Json steps = Json::array();
    if (auto s = body->find("steps"); s != body->end() && !s->is_null()) {
        auto parsed = parse_steps(*s, *c.workspace);
        if (!parsed) co_return bad_request(parsed.error().message);
        steps = std::move(*parsed);
    }
    DocRecord d;
    d.id = random_id("wf_");
    d.workspace_id = c.workspace->id;
    d.label = name->get<std::string>();
    d.created_at = d.updated_at = now_ms();
    d.doc = Json{{"description", description}, {"steps", steps}};
    Status st = co_await db_.run([&](Store& s) { return s.put_workflow(d); });
    if (!st) co_return internal(st.error());
    Response r = json_response(201, workflow_wire(d));
    r.headers.emplace_back("Location", "/v1/workflows/" + d.id);
    co_return r;
}

asio::awaitable<Response> WorkflowService::get_workflow(const ServiceCaller& c, std::string id) {
    const std::string ws = c.workspace->id;
    auto d = co_await db_.run([&](Store& s) { return s.get_workflow(ws, id); });
    if (!d) co_return error_response(404, "workflow_not_found", "workflow '" + id + "' not found");
    co_return json_response(200, workflow_wire(*d));
}

asio::awaitable<Response> WorkflowService::patch_workflow(Request& req, const ServiceCaller& c, std::string id) {
    auto body = body_object(req, false);
    if (!body) co_return from_error(body.error());
    if (auto u = unknown_key(*body, {"name", "description", "steps"}, "")) co_return bad_request(*u);
    std::optional<std::string> name;
    if (auto n = body->find("name"); n != body->end()) {
        if (!n->is_string() || n->get_ref<const std::string&>().empty() || n->get_ref<const std::string&>().size() > kMaxName) {
            co_return bad_request("name: a non-empty string of at most " + std::to_string(kMaxName) + " bytes is required");
        }
        name = n->get<std::string>();
    }
    std::optional<Json> description;
    if (auto d = body->find("description"); d != body->end()) {
        if (!d->is_null() && (!d->is_string() || d->get_ref<const std::string&>().size() > kMaxText)) {
            co_return bad_request("description: must be a string of at most " + std::to_string(kMaxText) + " bytes, or null");
        }
        description = *d;
    }
    std::optional<Json> steps;
    if (auto s = body->find("steps"); s != body->end()) {
        auto parsed = parse_steps(*s, *c.workspace);
        if (!parsed) co_return bad_request(parsed.error().message);
        steps = std::move(*parsed);
    }
    const std::string ws = c.workspace->id;
    // Read-modify-write in one trip to the db thread (its queue is FIFO, so it is atomic).
    auto updated = co_await db_.run([&](Store& s) -> std::optional<DocRecord> {
        auto d = s.get_workflow(ws, id);
        if (!d) return std::nullopt;
        if (name) d->label = *name;
        if (description) d->doc["description"] = *description;
        if (steps) d->doc["steps"] = *steps;
        d->updated_at = now_ms();
        if (!s.put_workflow(*d)) return std::nullopt;
        return d;
    });
    if (!updated) co_return error_response(404, "workflow_not_found", "workflow '" + id + "' not found");
    co_return json_response(200, workflow_wire(*updated));
}

asio::awaitable<Response> WorkflowService::delete_workflow(const ServiceCaller& c, std::string id) {
    const std::string ws = c.workspace->id;
    auto r = co_await db_.run([&](Store& s) { return s.delete_workflow(ws, id); });
    if (!r) co_return internal(r.error());
    if (!*r) co_return error_response(404, "workflow_not_found", "workflow '" + id + "' not found");
    co_return no_content();
}

asio::awaitable<Response> WorkflowService::list_steps(const ServiceCaller& c, std::string id) {
    const std::string ws = c.workspace->id;
    auto d = co_await db_.run([&](Store& s) { return s.get_workflow(ws, id); });
    if (!d) co_return error_response(404, "workflow_not_found", "workflow '" + id + "' not found");
    co_return json_response(200, sorted_workflow_steps(d->doc.value("steps", Json::array())));
}

asio::awaitable<Response> WorkflowService::add_step(Request& req, const ServiceCaller& c, std::string id) {
    auto body = body_object(req, false);
    if (!body) co_return from_error(body.error());
    auto step = parse_step(*body, *c.workspace, "");
    if (!step) co_return bad_request(step.error().message);
    const std::string ws = c.workspace->id;
    const Json new_step = *step;
    // 0 stored, 404 no workflow, 409 order taken, 400 too many, 500 storage.
    int outcome = co_await db_.run([&](Store& s) {
        auto d = s.get_workflow(ws, id);
        if (!d) return 404;
        Json& steps = d->doc["steps"];
        if (!steps.is_array()) steps = Json::array();
        if (steps.size() >= kMaxSteps) return 400;
        for (const auto& st : steps) {
            if (st.value("stepOrder", -1) == new_step["stepOrder"].get<std::int64_t>()) return 409;
        }
        steps.push_back(new_step);
        d->updated_at = now_ms();
        return s.put_workflow(*d) ? 0 : 500;
    });
    if (outcome == 404) co_return error_response(404, "workflow_not_found", "workflow '" + id + "' not found");
    if (outcome == 409) {
        co_return error_response(409, "step_order_taken", "stepOrder: the workflow already has a step " +
                                                              protocol::dump(new_step["stepOrder"]));
    }
    if (outcome == 400) co_return bad_request("steps: at most " + std::to_string(kMaxSteps) + " steps");
    if (outcome != 0) co_return internal(make_error("storage_error", "add_step failed"));
    co_return json_response(201, new_step);
}

asio::awaitable<Response> WorkflowService::delete_step(const ServiceCaller& c, std::string id, std::string step_id) {
    const std::string ws = c.workspace->id;
    int outcome = co_await db_.run([&](Store& s) {
        auto d = s.get_workflow(ws, id);
        if (!d) return 1;
        Json& steps = d->doc["steps"];
        if (!steps.is_array()) return 2;
        auto it = std::find_if(steps.begin(), steps.end(), [&](const Json& st) { return st.value("id", "") == step_id; });
        if (it == steps.end()) return 2;
        steps.erase(it);
        d->updated_at = now_ms();
        return s.put_workflow(*d) ? 0 : 3;
    });
    if (outcome == 1) co_return error_response(404, "workflow_not_found", "workflow '" + id + "' not found");
    if (outcome == 2) co_return error_response(404, "step_not_found", "step '" + step_id + "' not found");
    if (outcome == 3) co_return internal(make_error("storage_error", "delete_step failed"));
    co_return no_content();
}

asio::awaitable<Response> WorkflowService::clone_workflow(const ServiceCaller& c, std::string id) {
    const std::string ws = c.workspace->id;
    auto copy = co_await db_.run([&](Store& s) -> std::optional<DocRecord> {
        auto d = s.get_workflow(ws, id);
        if (!d) return std::nullopt;
        DocRecord out = *d;
        out.id = random_id("wf_");
        out.label = d->label + " (Copy)";
        out.created_at = out.updated_at = now_ms();
        // A deep copy: the steps are new objects with new ids, so editing one workflow never
        // touches the other.
        Json steps = Json::array();
        for (Json st : d->doc.value("steps", Json::array())) {
            st["id"] = random_id("st_");
            st["createdAt"] = out.created_at;
            steps.push_back(std::move(st));
        }
        out.doc["steps"] = std::move(steps);
        if (!s.put_workflow(out)) return std::nullopt;
        return out;
    });
    if (!copy) co_return error_response(404, "workflow_not_found", "workflow '" + id + "' not found");
    Response r = json_response(201, workflow_wire(*copy));
    r.headers.emplace_back("Location", "/v1/workflows/" + copy->id);
    co_return r;
}

// ---------------------------------------------------------------- runs

asio::awaitable<Status> WorkflowService::save_run(DocRecord& run) {
    run.updated_at = now_ms();
    Status st = make_error("internal", "not stored");
    try {
        st = co_await db_.run([&](Store& s) { return s.put_run(run); });
    } catch (const std::exception& e) {
        st = make_error("internal", e.what());
    }
    co_return st;
}

asio::awaitable<Response> WorkflowService::wait_run(const std::string& ws, const std::string& run_id,
                                                    std::chrono::milliseconds max) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + max;
    bool live = true;
    while (std::chrono::steady_clock::now() < deadline) {
        {
            std::lock_guard lock(mu_);
            live = live_.count(run_id) != 0;
        }
        if (!live) break;
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(asio::use_awaitable);
    }
    auto run = co_await db_.run([&](Store& s) { return s.get_run(ws, run_id); });
    if (!run) co_return error_response(404, "run_not_found", "run '" + run_id + "' not found");
    co_return json_response(live ? 202 : 200, run_wire(*run));
}

std::shared_ptr<WorkflowService::LiveRun> WorkflowService::register_live(const std::string& run_id) {
    auto live = std::make_shared<LiveRun>();
    std::lock_guard lock(mu_);
    if (!live_.emplace(run_id, live).second) return nullptr;  // live already
    return live;
}

void WorkflowService::unregister_live(const std::string& run_id) {
    std::lock_guard lock(mu_);
    live_.erase(run_id);
}

// On a strand of its own, like every other coroutine of the server: a coroutine and the handlers
// it starts (timers, waits on the hub) are never run by two I/O threads at once.
void WorkflowService::spawn_run(const WorkspaceConfig* ws, DocRecord run, std::shared_ptr<LiveRun> live) {
    asio::co_spawn(asio::make_strand(ioc_), drive(ws, std::move(run), live), asio::detached);
}

asio::awaitable<void> WorkflowService::drive(const WorkspaceConfig* ws, DocRecord run, std::shared_ptr<LiveRun> live) {
    const std::string run_id = run.id;
    try {
        run.label = "RUNNING";
        co_await save_run(run);
        Json steps = sorted_workflow_steps(run.doc.value("steps", Json::array()));
        std::string carry = run.doc.value("carry", std::string());
        std::size_t i = run.doc.value("nextIndex", std::size_t{0});
        std::string status = "COMPLETED";
        std::string error, error_code;
        for (; i < steps.size(); ++i) {
            const Json& step = steps[i];
            const std::string agent_id = step.value("agentId", "");
            const std::int64_t order = step.value("stepOrder", std::int64_t{0});
            {
                std::lock_guard lock(live->mu);
                if (live->cancel) break;
            }
            run.doc["currentStepOrder"] = order;
            Json entry{{"stepId", step.value("id", "")}, {"stepOrder", order}, {"agentId", agent_id}};
            if (agent_id == kApproval) {
                // Paused: the next step runs when a human resumes with the approved text.
                entry["status"] = "PAUSED";
                entry["output"] = carry;
                run.doc["trace"].push_back(entry);
                run.doc["nextIndex"] = i + 1;
                run.doc["carry"] = carry;
                status = "PAUSED";
                break;
            }
            const AppConfig* app = ws->find_app(agent_id);
            if (!app || app->type != protocol::AppType::agent || app->versions.empty()) {
                status = "FAILED";
                error = "step " + std::to_string(order) + ": agent '" + agent_id + "' not found";
                error_code = "agent_not_found";
                entry["status"] = "FAILED";
                entry["error"] = error;
                run.doc["trace"].push_back(entry);
                break;
            }
            std::string message = workflow_step_message(step.value("action", ""), carry);
            StartSpec spec;
            spec.workspace = ws;
            spec.app = app;
            spec.version = &app->versions.back();
            spec.user_id = kApiUser;
            spec.inputs = Json{{"message", message}};
            spec.message = message;
            auto rec = co_await hub_.start(std::move(spec));
            if (!rec) {
                status = "FAILED";
                error = "step " + std::to_string(order) + " (" + agent_id + "): " + rec.error().message;
                error_code = rec.error().code;
                entry["status"] = "FAILED";
                entry["error"] = error;
                run.doc["trace"].push_back(entry);
                break;
            }
            const std::string exec_id = rec->id;
            bool cancel_now = false;
            {
                std::lock_guard lock(live->mu);
                live->current_execution = exec_id;
                cancel_now = live->cancel;
            }
            if (cancel_now) hub_.cancel(exec_id);
            run.doc["currentExecutionId"] = exec_id;
            co_await save_run(run);
            for (;;) {
                bool done = co_await hub_.wait_finished(exec_id, std::chrono::milliseconds(60000));
                if (done) break;
            }
            auto ex = co_await db_.run([&](Store& s) { return s.get_execution_by_id(exec_id); });
            entry["executionId"] = exec_id;
            if (!ex) {
                status = "FAILED";
                error = "step " + std::to_string(order) + ": its execution disappeared";
                error_code = "internal";
                break;
            }
            entry["status"] = job_status(ex->status);
            entry["output"] = ex->output;
            if (ex->error) entry["error"] = *ex->error;
            run.doc["trace"].push_back(entry);
            if (ex->status == protocol::ExecutionStatus::success) {
                carry = text_of(ex->output);
                run.doc["carry"] = carry;
                run.doc["nextIndex"] = i + 1;
                co_await save_run(run);
                continue;
            }
            if (ex->status == protocol::ExecutionStatus::cancelled) {
                status = "CANCELLED";
            } else {
                status = "FAILED";
                error = "step " + std::to_string(order) + " (" + agent_id + "): " + ex->error.value_or("failed");
                error_code = "step_failed";
            }
            break;
        }
        {
            std::lock_guard lock(live->mu);
            if (live->cancel && status != "FAILED") status = "CANCELLED";
        }
        run.label = status;
        run.doc.erase("currentExecutionId");
        if (status == "COMPLETED") {
            run.doc["output"] = carry;
            run.doc["currentStepOrder"] = steps.empty() ? Json() : steps.back()["stepOrder"];
        }
        if (!error.empty()) {
            run.doc["error"] = error;
            run.doc["errorCode"] = error_code;
        }
        // The final state is written and the run unregistered in one db-thread job: every later
        // read (a resume, a cancel, ?wait=true) sees both or neither.
        // If storage refuses it, the run stays live (?wait=true and resumes see it running) and the
        // write is retried with backoff until storage accepts it: a run never reads RUNNING
        // forever because its disk was full for a while (a restart closes it if it never is).
        StorageBackoff backoff;
        bool logged = false;
        for (;;) {
            run.updated_at = now_ms();
            Status st = make_error("storage_unavailable", "not stored");
            bool stored = false;
            try {
                st = co_await db_.run([&](Store& s) {
                    Status put = s.put_run(run);
                    if (put) unregister_live(run_id);
                    return put;
                });
                stored = st.ok();
            } catch (const std::exception& e) {
                st = make_error("storage_unavailable", e.what());
            }
            if (stored) {
                if (logged) log_line(R"({"level":"info","msg":"storage accepted a workflow run's final state again","run":")" + run_id + "\"}");
                break;
            }
            if (!logged) {
                logged = true;
                log_line(R"({"level":"error","msg":"storing a workflow run failed; retrying","run":")" + run_id +
                         R"(","reason":)" + protocol::dump(Json(st.error().message)) + "}");
            }
            if (!co_await backoff.wait(hub_.shutting_down())) break;  // the restart closes it (fail_interrupted_runs)
        }
    } catch (const std::exception& e) {
        log_line(std::string(R"({"level":"error","msg":"workflow run failed","run":")") + run_id +
                 R"(","reason":)" + protocol::dump(Json(e.what())) + "}");
    }
    std::lock_guard lock(mu_);
    live_.erase(run_id);
}

asio::awaitable<Response> WorkflowService::start_run(Request& req, const ServiceCaller& c, std::string id,
                                                     bool execute_form) {
    auto body = body_object(req, execute_form);
    if (!body) co_return from_error(body.error());
    std::string input;
    Json doc = Json::object();
    if (execute_form) {
        if (auto u = unknown_key(*body, {"inputs"}, "")) co_return bad_request(*u);
        Json inputs = body->value("inputs", Json::object());
        if (!inputs.is_object()) co_return bad_request("inputs: must be an object");
        // {"inputs": {"input": "text"}} feeds the text; other inputs are fed as JSON.
        if (auto it = inputs.find("input"); it != inputs.end() && it->is_string() && inputs.size() == 1) {
            input = it->get<std::string>();
        } else if (!inputs.empty()) {
            input = protocol::dump(inputs);
        }
        doc["inputs"] = inputs;
    } else {
        if (auto u = unknown_key(*body, {"input", "sessionId"}, "")) co_return bad_request(*u);
        auto in = body->find("input");
        if (in == body->end() || !in->is_string()) co_return bad_request("input: a string is required");
        if (in->get_ref<const std::string&>().size() > kMaxText) {
            co_return bad_request("input: at most " + std::to_string(kMaxText) + " bytes");
        }
        input = in->get<std::string>();
    }
    std::string session = random_id("se_");
    if (auto s = body->find("sessionId"); !execute_form && s != body->end() && !s->is_null()) {
        if (!s->is_string() || s->get_ref<const std::string&>().empty() || s->get_ref<const std::string&>().size() > 128) {
            co_return bad_request("sessionId: a non-empty string of at most 128 bytes is required");
        }
        session = s->get<std::string>();
    }
    const std::string ws = c.workspace->id;
    auto wf = co_await db_.run([&](Store& s) { return s.get_workflow(ws, id); });
    if (!wf) co_return error_response(404, "workflow_not_found", "workflow '" + id + "' not found");
    if (hub_.shutting_down()) co_return error_response(503, "shutting_down", "the server is shutting down; retry shortly");
    DocRecord run;
    run.id = random_id("wr_");
    run.workspace_id = ws;
    run.parent_id = wf->id;
    run.label = "QUEUED";
    run.created_at = run.updated_at = now_ms();
    doc["sessionId"] = session;
    doc["input"] = input;
    doc["carry"] = input;
    doc["nextIndex"] = 0;
    doc["currentStepOrder"] = nullptr;
    doc["trace"] = Json::array();
    // The steps as they are now: editing the workflow later does not change a run in flight.
    doc["steps"] = sorted_workflow_steps(wf->doc.value("steps", Json::array()));
    doc["kind"] = execute_form ? "execute" : "run";
    run.doc = std::move(doc);
    auto live = register_live(run.id);  // a fresh id: never live yet
    Status st = co_await db_.run([&](Store& s) { return s.put_run(run); });
    if (!st) {
        unregister_live(run.id);
        co_return internal(st.error());
    }
    spawn_run(c.workspace, run, live);
    if (auto w = req.query_param("wait"); w && (*w == "true" || *w == "1")) {
        co_return co_await wait_run(ws, run.id, std::chrono::milliseconds(60000));
    }
    Json out = execute_form ? Json{{"execution_id", run.id}, {"jobId", run.id}, {"workflowId", wf->id}, {"status", "QUEUED"}}
                            : Json{{"jobId", run.id}, {"workflowId", wf->id}, {"sessionId", session}, {"status", "QUEUED"}};
    Response r = json_response(202, out);
    r.headers.emplace_back("Location", "/v1/jobs/" + run.id);
    co_return r;
}

asio::awaitable<Response> WorkflowService::get_workflow_execution(const ServiceCaller& c, std::string wf_id,
                                                                  std::string run_id) {
    const std::string ws = c.workspace->id;
    auto run = co_await db_.run([&](Store& s) { return s.get_run(ws, run_id); });
    if (!run || run->parent_id != wf_id) {
        co_return error_response(404, "execution_not_found", "execution '" + run_id + "' of workflow '" + wf_id + "' not found");
    }
    Json trace = Json::array();
    Json outputs = Json::array();
    for (const auto& e : run->doc.value("trace", Json::array())) {
        if (e.contains("output") && e.value("status", "") == "COMPLETED") outputs.push_back(e["output"]);
        if (e.contains("error")) trace.push_back(Json{{"stepOrder", e["stepOrder"]}, {"agentId", e["agentId"]}, {"error", e["error"]}});
    }
    Json out = run_wire(*run);
    out["execution_id"] = run->id;
    out["outputs"] = outputs;
    out["errorTrace"] = trace;
    co_return json_response(200, out);
}

asio::awaitable<Response> WorkflowService::list_runs(Request& req, const ServiceCaller& c, std::string wf_id) {
    PageParams p;
    if (auto bad = read_paging(req, p)) co_return *bad;
    const std::string ws = c.workspace->id;
    const std::int64_t offset = p.page * p.size, limit = p.size;
    struct Found {
        bool workflow = false;
        DocPage page;
    };
    Found f = co_await db_.run([&](Store& s) {
        Found out;
        out.workflow = s.get_workflow(ws, wf_id).has_value();
        if (out.workflow) out.page = s.list_runs(ws, wf_id, "", offset, limit);
        return out;
    });
    if (!f.workflow) co_return error_response(404, "workflow_not_found", "workflow '" + wf_id + "' not found");
    Json content = Json::array();
    for (const auto& r : f.page.items) content.push_back(run_wire(r));
    co_return json_response(200, page_json(std::move(content), f.page.total, p));
}

asio::awaitable<Response> WorkflowService::get_run(const ServiceCaller& c, std::string run_id) {
    const std::string ws = c.workspace->id;
    auto run = co_await db_.run([&](Store& s) { return s.get_run(ws, run_id); });
    if (!run) co_return error_response(404, "run_not_found", "run '" + run_id + "' not found");
    co_return json_response(200, run_wire(*run));
}

asio::awaitable<Response> WorkflowService::resume_run(Request& req, const ServiceCaller& c, std::string run_id) {
    auto body = body_object(req, false);
    if (!body) co_return from_error(body.error());
    if (auto u = unknown_key(*body, {"output"}, "")) co_return bad_request(*u);
    auto out = body->find("output");
    if (out == body->end() || !out->is_string()) co_return bad_request("output: a string (the approved text) is required");
    if (out->get_ref<const std::string&>().size() > kMaxText) {
        co_return bad_request("output: at most " + std::to_string(kMaxText) + " bytes");
    }
    const std::string approved = out->get<std::string>();
    const std::string ws = c.workspace->id;
    if (hub_.shutting_down()) co_return error_response(503, "shutting_down", "the server is shutting down; retry shortly");
    // The PAUSED -> QUEUED transition happens in one db-thread job, so two resumes cannot both win.
    struct Outcome {
        int status = 0;
        std::string current;
        DocRecord run;
    };
    // Registered (atomically: a second concurrent resume gets nullptr) before the state changes.
    auto live = register_live(run_id);
    if (!live) co_return error_response(409, "conflict", "run '" + run_id + "' is running, not PAUSED");
    Outcome o = co_await db_.run([&](Store& s) {
        Outcome r;
        auto run = s.get_run(ws, run_id);
        if (!run) {
            r.status = 404;
            return r;
        }
        if (run->label != "PAUSED") {
            r.status = 409;
            r.current = run->label;
            return r;
        }
        run->label = "QUEUED";
        run->doc["carry"] = approved;
        Json& trace = run->doc["trace"];
        if (trace.is_array() && !trace.empty() && trace.back().value("status", "") == "PAUSED") {
            trace.back()["status"] = "COMPLETED";
            trace.back()["output"] = approved;
        }
        run->updated_at = now_ms();
        if (!s.put_run(*run)) {
            r.status = 500;
            return r;
        }
        r.run = std::move(*run);
        return r;
    });
    if (o.status != 0) unregister_live(run_id);
    if (o.status == 404) co_return error_response(404, "run_not_found", "run '" + run_id + "' not found");
    if (o.status == 409) co_return error_response(409, "conflict", "run '" + run_id + "' is " + o.current + ", not PAUSED");
    if (o.status != 0) co_return internal(make_error("storage_error", "resume failed"));
    spawn_run(c.workspace, o.run, live);
    if (auto w = req.query_param("wait"); w && (*w == "true" || *w == "1")) {
        co_return co_await wait_run(ws, run_id, std::chrono::milliseconds(60000));
    }
    co_return json_response(202, Json{{"jobId", run_id}, {"runId", run_id}, {"status", "QUEUED"}});
}

// ---------------------------------------------------------------- agents

asio::awaitable<Response> WorkflowService::list_agents(const ServiceCaller& c) {
    Json arr = Json::array();
    for (const auto& app : c.workspace->apps) {
        if (app.type != protocol::AppType::agent) continue;
        const AppVersion* v = app.find_version("");
        arr.push_back(Json{{"id", app.id}, {"name", app.name}, {"model", v ? v->model : ""},
                           {"public", app.is_public}});
    }
    co_return json_response(200, Json{{"agents", std::move(arr)}});
}

asio::awaitable<Response> WorkflowService::execute_agent(Request& req, const ServiceCaller& c, std::string app_id) {
    const AppConfig* app = c.workspace->find_app(app_id);
    if (!app || app->type != protocol::AppType::agent) {
        co_return error_response(404, "agent_not_found", "agent '" + app_id + "' not found");
    }
    auto body = body_object(req, false);
    if (!body) co_return from_error(body.error());
    if (auto u = unknown_key(*body, {"inputs"}, "")) co_return bad_request(*u);
    auto in = body->find("inputs");
    if (in == body->end() || !in->is_object()) co_return bad_request("inputs: an object is required");
    const AppVersion* version = app->find_version("");
    if (auto st = protocol::validate_inputs(version->inputs, *in, true); !st) co_return from_error(st.error());
    StartSpec spec;
    spec.workspace = c.workspace;
    spec.app = app;
    spec.version = version;
    spec.user_id = kApiUser;
    spec.inputs = *in;
    if (auto m = in->find("message"); m != in->end() && m->is_string()) spec.message = m->get<std::string>();
    auto rec = co_await hub_.start(std::move(spec));
    if (!rec) co_return from_error(rec.error());
    const std::string id = rec->id;
    auto wait = req.query_param("wait");
    if (wait && (*wait == "true" || *wait == "1")) {
        bool finished = co_await hub_.wait_finished(id, std::chrono::milliseconds(60000));
        auto now = co_await db_.run([&](Store& s) { return s.get_execution_by_id(id); });
        if (!now) co_return internal(make_error("internal", "the execution disappeared"));
        Response r = json_response(finished ? 200 : 202, execution_wire(*now));
        r.headers.emplace_back("X-Confab-Execution-Id", id);
        co_return r;
    }
    Response r = json_response(202, Json{{"executionId", id}, {"execution_id", id}, {"jobId", id}, {"status", "queued"}});
    r.headers.emplace_back("X-Confab-Execution-Id", id);
    r.headers.emplace_back("Location", "/v1/jobs/" + id);
    co_return r;
}

asio::awaitable<Response> WorkflowService::chat_agent(Request& req, const ServiceCaller& c, std::string app_id) {
    const AppConfig* app = c.workspace->find_app(app_id);
    if (!app || app->type != protocol::AppType::agent) {
        co_return error_response(404, "agent_not_found", "agent '" + app_id + "' not found");
    }
    if (!chat_) co_return internal(make_error("internal", "chat is not wired"));
    const bool sse = [&] {
        auto accept = req.header("accept");
        return accept && accept->find("text/event-stream") != std::string_view::npos;
    }();
    Response res = co_await chat_(req, c.workspace, app_id);
    if (sse || res.status != 200 || !res.stream) co_return res;
    // JSON form: wait for the turn and answer with the reply instead of the stream.
    std::string exec_id, session_id;
    for (const auto& [k, v] : res.headers) {
        if (k == "X-Confab-Execution-Id") exec_id = v;
        if (k == "X-Confab-Session-Id") session_id = v;
    }
    co_await hub_.wait_finished(exec_id, std::chrono::milliseconds(60000));
    auto rec = co_await db_.run([&](Store& s) { return s.get_execution_by_id(exec_id); });
    if (!rec) co_return internal(make_error("internal", "the chat turn disappeared"));
    Json out{{"sessionId", session_id},
             {"executionId", exec_id},
             {"status", protocol::to_string(rec->status)},
             {"reply", text_of(rec->output)},
             {"error", rec->error ? Json(*rec->error) : Json()}};
    Response r = json_response(rec->status == protocol::ExecutionStatus::success ? 200 : 502, out);
    r.headers.emplace_back("X-Confab-Execution-Id", exec_id);
    r.headers.emplace_back("X-Confab-Session-Id", session_id);
    co_return r;
}

// ---------------------------------------------------------------- jobs and cancel

asio::awaitable<Response> WorkflowService::list_jobs(Request& req, const ServiceCaller& c) {
    PageParams p;
    if (auto bad = read_paging(req, p)) co_return *bad;
    std::string type, status;
    if (auto t = req.query_param("type"); t && !t->empty()) {
        type = std::string(*t);
        if (type != "execution" && type != "workflow_run") co_return bad_request("type: must be execution or workflow_run");
    }
    if (auto s = req.query_param("status"); s && !s->empty()) {
        for (char ch : *s) status += static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
        static const std::set<std::string> known{"QUEUED", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED"};
        if (!known.count(status)) co_return bad_request("status: must be one of QUEUED, RUNNING, PAUSED, COMPLETED, FAILED, CANCELLED");
    }
    const std::string ws = c.workspace->id;
    // Jobs come from two tables; the newest 10000 of each are merged in memory.
    constexpr std::int64_t kScan = 10000;
    struct Both {
        std::vector<ExecutionRecord> execs;
        DocPage runs;
    };
    Both b = co_await db_.run([&](Store& s) {
        Both out;
        if (type != "workflow_run") out.execs = s.list_executions(ws, kScan);
        if (type != "execution") out.runs = s.list_runs(ws, "", status, 0, kScan);
        return out;
    });
    std::vector<Json> all;
    for (const auto& e : b.execs) {
        if (!status.empty() && status != job_status(e.status)) continue;
        all.push_back(execution_job(e));
    }
    for (const auto& r : b.runs.items) all.push_back(run_job(r));
    std::stable_sort(all.begin(), all.end(), [](const Json& a, const Json& z) {
        return a["createdAt"].get<std::int64_t>() > z["createdAt"].get<std::int64_t>();
    });
    Json content = Json::array();
    const auto total = static_cast<std::int64_t>(all.size());
    for (std::int64_t i = p.page * p.size; i < total && i < (p.page + 1) * p.size; ++i) {
        content.push_back(std::move(all[static_cast<std::size_t>(i)]));
    }
    co_return json_response(200, page_json(std::move(content), total, p));
}

asio::awaitable<Response> WorkflowService::get_job(const ServiceCaller& c, std::string id) {
    const std::string ws = c.workspace->id;
    if (id.rfind("wr_", 0) == 0) {
        auto run = co_await db_.run([&](Store& s) { return s.get_run(ws, id); });
        if (!run) co_return error_response(404, "job_not_found", "job '" + id + "' not found");
        co_return json_response(200, run_job(*run));
    }
    auto rec = co_await db_.run([&](Store& s) { return s.get_execution_by_id(id); });
    if (!rec || rec->workspace_id != ws) co_return error_response(404, "job_not_found", "job '" + id + "' not found");
    co_return json_response(200, execution_job(*rec));
}

asio::awaitable<Response> WorkflowService::cancel_job(const ServiceCaller& c, std::string id) {
    // if/else, not ?: : g++ 12 miscompiles co_await inside a conditional expression.
    Response r;
    if (id.rfind("wr_", 0) == 0) {
        r = co_await cancel_run(c, id);
    } else {
        r = co_await cancel_execution(c, id);
    }
    if (r.status != 200) co_return r;
    // Answered as a job, whichever kind it was.
    co_return co_await get_job(c, id);
}

asio::awaitable<Response> WorkflowService::cancel_with_bearer(Request& req, std::string id) {
    ServiceCaller c;
    Response err;
    const bool authorized = co_await authorize(req, c, err);
    if (!authorized) co_return err;
    // if/else, not ?: : g++ 12 miscompiles co_await inside a conditional expression.
    Response r;
    if (id.rfind("wr_", 0) == 0) {
        r = co_await cancel_run(c, id);
    } else {
        r = co_await cancel_execution(c, id);
    }
    r.workspace = c.workspace->id;
    co_return r;
}

asio::awaitable<Response> WorkflowService::cancel_run(const ServiceCaller& c, std::string run_id) {
    const std::string ws = c.workspace->id;
    auto run = co_await db_.run([&](Store& s) { return s.get_run(ws, run_id); });
    if (!run) co_return error_response(404, "run_not_found", "run '" + run_id + "' not found");
    if (run_terminal(run->label)) co_return error_response(409, "conflict", "run '" + run_id + "' is already " + run->label);
    std::shared_ptr<LiveRun> live;
    {
        std::lock_guard lock(mu_);
        if (auto it = live_.find(run_id); it != live_.end()) live = it->second;
    }
    if (live) {
        std::string exec;
        {
            std::lock_guard lock(live->mu);
            live->cancel = true;
            exec = live->current_execution;
        }
        if (!exec.empty()) hub_.cancel(exec);
        // The run's own coroutine writes the final state; wait for it (bounded).
        asio::steady_timer timer(co_await asio::this_coro::executor);
        for (int i = 0; i < 250; ++i) {
            {
                std::lock_guard lock(mu_);
                if (!live_.count(run_id)) break;
            }
            timer.expires_after(std::chrono::milliseconds(20));
            co_await timer.async_wait(asio::use_awaitable);
        }
    } else {
        if (db_.shared() && (run->label == "RUNNING" || run->label == "QUEUED")) {
            // Shared store: another instance runs it (one that died has its runs FAILED by the
            // take-over). Its current step is cancelled through the step's owner, whose run loop
            // then ends the run CANCELLED; awaited (bounded, 5 s) before anything is closed here.
            // A step that starts meanwhile (between steps, or a queued run starting) is cancelled
            // as it appears.
            asio::steady_timer timer(co_await asio::this_coro::executor);
            std::string cancelled;
            for (int i = 0; i < 100; ++i) {
                auto now = co_await db_.run([&](Store& s) { return s.get_run(ws, run_id); });
                if (!now || run_terminal(now->label)) break;
                const std::string exec = now->doc.value("currentExecutionId", std::string());
                if (!exec.empty() && exec != cancelled) {
                    cancelled = exec;
                    auto step = co_await db_.run([&](Store& s) { return s.get_execution_by_id(exec); });
                    if (step && !protocol::is_terminal(step->status)) {
                        ExecutionRecord target = std::move(*step);  // named: g++ 12 and temporaries in co_await
                        co_await hub_.cancel_and_settle(std::move(target));
                    }
                    continue;
                }
                timer.expires_after(std::chrono::milliseconds(50));
                co_await timer.async_wait(asio::use_awaitable);
            }
        }
        // Not running in any process (PAUSED, or queued by a process that is gone): close it here.
        auto closed = co_await db_.run([&](Store& s) {
            auto r = s.get_run(ws, run_id);
            if (!r || run_terminal(r->label)) return false;
            r->label = "CANCELLED";
            r->updated_at = now_ms();
            return s.put_run(*r).ok();
        });
        (void)closed;
    }
    auto after = co_await db_.run([&](Store& s) { return s.get_run(ws, run_id); });
    if (!after) co_return error_response(404, "run_not_found", "run '" + run_id + "' not found");
    if (after->label != "CANCELLED") {
        co_return error_response(409, "conflict", "run finished before it could be cancelled (" + after->label + ")");
    }
    co_return json_response(200, run_wire(*after));
}

asio::awaitable<Response> WorkflowService::cancel_execution(const ServiceCaller& c, std::string id) {
    const std::string ws = c.workspace->id;
    auto rec = co_await db_.run([&](Store& s) { return s.get_execution_by_id(id); });
    if (!rec || rec->workspace_id != ws) co_return error_response(404, "execution_not_found", "execution '" + id + "' not found");
    if (protocol::is_terminal(rec->status)) {
        co_return error_response(409, "conflict", std::string("execution is already ") + protocol::to_string(rec->status));
    }
    ExecutionRecord target = std::move(*rec);  // named: g++ 12 and temporaries in co_await
    co_await hub_.cancel_and_settle(std::move(target));
    auto after = co_await db_.run([&](Store& s) { return s.get_execution_by_id(id); });
    if (!after) co_return error_response(404, "execution_not_found", "execution '" + id + "' not found");
    if (after->status != protocol::ExecutionStatus::cancelled) {
        co_return error_response(409, "conflict", std::string("execution finished before it could be cancelled (") +
                                                      protocol::to_string(after->status) + ")");
    }
    co_return json_response(200, execution_wire(*after));
}

// GET /v1/feedback?appId=&rating=up|down&from=&to=&page=&size=: the end users' ratings of the
// workspace's executions, newest (last changed) first.
asio::awaitable<Response> WorkflowService::list_feedback(Request& req, const ServiceCaller& c) {
    PageParams p;
    if (auto bad = read_paging(req, p)) co_return *bad;
    FeedbackQuery q;
    q.workspace_id = c.workspace->id;
    if (auto a = req.query_param("appId")) q.app_id = std::string(*a);
    if (auto r = req.query_param("rating")) {
        if (*r != "up" && *r != "down") co_return bad_request(R"(rating: must be "up" or "down")");
        q.rating = std::string(*r);
    }
    for (auto [name, out] : {std::pair{"from", &q.from}, std::pair{"to", &q.to}}) {
        auto v = req.query_param(name);
        if (!v) continue;
        auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), *out);
        if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || *out < 0) {
            co_return bad_request(std::string(name) + ": must be a time in Unix milliseconds (a non-negative integer)");
        }
    }
    const std::int64_t offset = p.page * p.size, limit = p.size;
    FeedbackPage page = co_await db_.run([&](Store& s) { return s.list_feedback(q, offset, limit); });
    Json content = Json::array();
    for (const auto& f : page.items) {
        content.push_back(protocol::encode(to_wire(f), true));
    }
    co_return json_response(200, page_json(std::move(content), page.total, p));
}

}  // namespace confab::server
