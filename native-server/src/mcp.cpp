// The MCP endpoint (/v1/mcp): streamable HTTP transport, sessions, JSON-RPC dispatch and the tools,
// which call the v1 routes through Api::handle with the caller's own credential.
#include "mcp.hpp"

// g++ 12 destroys some temporaries of a co_await full-expression twice (see hub.cpp): objects
// passed to co_await are named locals here and lambdas given to db_.run capture by reference.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "api.hpp"
#include "confab/sse.hpp"
#include "request_head.hpp"
#include "responses.hpp"
#include "util.hpp"
#include "workflows.hpp"

#ifndef CONFAB_VERSION
#define CONFAB_VERSION "0.0.0"
#endif

namespace asio = boost::asio;

namespace confab::server {

using protocol::Json;

namespace {

// Newest first. The first is what an unknown version is answered with (the client then decides
// whether it speaks it); the others are the earlier versions the official SDK still accepts.
constexpr const char* kVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", "2024-10-07"};
constexpr const char* kLatest = "2025-11-25";

bool supported_version(std::string_view v) {
    return std::find(std::begin(kVersions), std::end(kVersions), v) != std::end(kVersions);
}

// JSON-RPC batches exist in 2025-03-26 and before; 2025-06-18 removed them.
bool batches_allowed(std::string_view v) { return v <= std::string_view("2025-03-26"); }

constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kServerError = -32000;     // transport-level refusals (the official SDK's code)
constexpr int kSessionNotFound = -32001;  // the official SDK's code for an unknown session
constexpr int kRequestCancelled = -32800;  // a JSON answer to a request cancelled meanwhile

constexpr int kDefaultWaitSeconds = 20;  // under the official SDK's 60 s request time-out
constexpr int kMaxWaitSeconds = 50;
constexpr auto kProgressEvery = std::chrono::milliseconds(50);  // at most this often per call
constexpr auto kRunPoll = std::chrono::milliseconds(100);      // a workflow run's stored state

Json rpc_result(const Json& id, Json result) {
    return Json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

Json rpc_error(const Json& id, int code, std::string message) {
    return Json{{"jsonrpc", "2.0"}, {"id", id}, {"error", Json{{"code", code}, {"message", std::move(message)}}}};
}

// A transport-level refusal: the HTTP status and a JSON-RPC error without an id.
Response http_rpc_error(int status, int code, std::string message) {
    return json_response(status, rpc_error(nullptr, code, std::move(message)));
}

bool valid_id(const Json& id) { return id.is_string() || id.is_number_integer() || id.is_number_unsigned(); }

std::string id_key(const Json& id) { return protocol::dump(id); }

std::string lower(std::string_view s) { return ascii_lower(s); }

// The media type of a Content-Type value, lowercased, without parameters or spaces.
std::string media_type(std::string_view v) {
    auto semi = v.find(';');
    std::string_view t = v.substr(0, semi);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    return lower(t);
}

bool accepts(const Request& req, std::string_view type) {
    auto a = req.header("accept");
    if (!a) return false;
    return lower(*a).find(type) != std::string::npos;
}

// Counts UTF-8 code points (JSON Schema lengths are in characters).
std::size_t chars(const std::string& s) {
    std::size_t n = 0;
    for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return n;
}

std::string text_of(const Json& output) {
    if (output.is_string()) return output.get<std::string>();
    if (output.is_null()) return "";
    return protocol::dump(output);
}

const char* job_status(std::string_view execution_status) {
    if (execution_status == "queued") return "QUEUED";
    if (execution_status == "running") return "RUNNING";
    if (execution_status == "success") return "COMPLETED";
    if (execution_status == "cancelled") return "CANCELLED";
    return "FAILED";
}

// ---------------------------------------------------------------- tool definitions

// Ids travel in v1 paths, so they cannot hold what would change the path.
constexpr const char* kIdPattern = R"(^[^/?#%\s]{1,200}$)";

Json id_schema(const char* description) {
    return Json{{"type", "string"}, {"minLength", 1}, {"maxLength", 200}, {"pattern", kIdPattern},
                {"description", description}};
}

Json wait_schema(const char* what) {
    return Json{{"type", "integer"},
                {"minimum", 0},
                {"maximum", kMaxWaitSeconds},
                {"description", std::string("Seconds to wait for ") + what + " before answering with its job id (default " +
                                    std::to_string(kDefaultWaitSeconds) + ", 0: answer at once)."}};
}

Json object_schema(Json properties, Json required) {
    Json s{{"type", "object"}, {"properties", std::move(properties)}, {"additionalProperties", false}};
    if (!required.empty()) s["required"] = std::move(required);
    return s;
}

const Json kAny = Json::object();  // any JSON value

Json run_output_schema() {
    Json status{{"type", "string"}, {"enum", {"QUEUED", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED"}}};
    Json waiting{{"type", {"object", "null"}},
                 {"description", "Set when status is PAUSED: the human-approval step the run waits for."},
                 {"properties",
                  {{"type", {{"type", "string"}}},
                   {"stepOrder", {{"type", "integer"}}},
                   {"action", {{"type", "string"}}},
                   {"proposedOutput", {{"type", "string"}}}}}};
    return Json{{"type", "object"},
                {"properties",
                 {{"runId", {{"type", "string"}}},
                  {"jobId", {{"type", "string"}}},
                  {"workflowId", {{"type", "string"}}},
                  {"sessionId", {{"type", "string"}}},
                  {"status", status},
                  {"finished", {{"type", "boolean"}}},
                  {"output", kAny},
                  {"error", kAny},
                  {"waitingFor", waiting},
                  {"steps", {{"type", "array"}}}}},
                {"required", {"runId", "jobId", "status", "finished"}}};
}

Json execution_output_schema(bool chat) {
    Json props{{"executionId", {{"type", "string"}}},
               {"jobId", {{"type", "string"}}},
               {"status", {{"type", "string"}, {"enum", {"QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"}}}},
               {"finished", {{"type", "boolean"}}},
               {"error", kAny}};
    Json required{"executionId", "jobId", "status", "finished"};
    if (chat) {
        props["sessionId"] = Json{{"type", "string"}};
        props["agentId"] = Json{{"type", "string"}};
        props["reply"] = Json{{"type", "string"}};
        required.push_back("sessionId");
        required.push_back("reply");
    } else {
        props["appId"] = Json{{"type", "string"}};
        props["output"] = kAny;
    }
    return Json{{"type", "object"}, {"properties", std::move(props)}, {"required", std::move(required)}};
}

Json job_output_schema() {
    return Json{{"type", "object"},
                {"properties",
                 {{"id", {{"type", "string"}}},
                  {"type", {{"type", "string"}, {"enum", {"execution", "workflow_run"}}}},
                  {"status", {{"type", "string"}}}}},
                {"required", {"id", "type", "status"}}};
}

Json tool(const char* name, const char* title, const char* description, Json input, Json output,
          bool read_only, bool destructive = false) {
    return Json{{"name", name},
                {"title", title},
                {"description", description},
                {"inputSchema", std::move(input)},
                {"outputSchema", std::move(output)},
                {"annotations",
                 {{"readOnlyHint", read_only},
                  {"destructiveHint", destructive},
                  {"idempotentHint", read_only},
                  {"openWorldHint", false}}}};
}

const Json& tool_definitions() {
    static const Json defs = [] {
        Json tools = Json::array();
        tools.push_back(tool(
            "list_workflows", "List workflows",
            "Lists the workspace's workflows (newest first): id, name, description and steps. A workflow runs its "
            "steps in stepOrder, each step's output feeding the next; a human_approval step pauses the run.",
            object_schema({{"page", {{"type", "integer"}, {"minimum", 0}, {"maximum", 1000000}, {"description", "Page number, from 0."}}},
                           {"size", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}, {"description", "Workflows per page (default 20)."}}}},
                          Json::array()),
            Json{{"type", "object"},
                 {"properties",
                  {{"workflows", {{"type", "array"}}},
                   {"totalElements", {{"type", "integer"}}},
                   {"totalPages", {{"type", "integer"}}},
                   {"page", {{"type", "integer"}}},
                   {"size", {{"type", "integer"}}}}},
                 {"required", {"workflows", "totalElements", "page", "size"}}},
            true));
        tools.push_back(tool(
            "run_workflow", "Run a workflow",
            "Starts a run of a workflow with a text input and waits for it (up to waitSeconds), reporting each step "
            "as progress. Answers the finished run (status COMPLETED with its output, FAILED with its error), or a "
            "run PAUSED for human approval (waitingFor says which step and the proposed text; continue it with "
            "resume_workflow_run), or a run still going (poll it with get_job using jobId).",
            object_schema({{"workflowId", id_schema("The workflow's id (see list_workflows).")},
                           {"input", {{"type", "string"}, {"maxLength", 20000}, {"description", "The text fed to the first step."}}},
                           {"sessionId", {{"type", "string"}, {"minLength", 1}, {"maxLength", 128}, {"description", "Optional: a session id to file the run under."}}},
                           {"waitSeconds", wait_schema("the run")}},
                          Json{"workflowId", "input"}),
            run_output_schema(), false));
        tools.push_back(tool(
            "resume_workflow_run", "Approve or reject a paused workflow run",
            "Continues a workflow run that is PAUSED for human approval. decision \"approve\" resumes it with output "
            "(the approved text; default: the text the step proposed) and waits for it like run_workflow; "
            "\"reject\" cancels the run.",
            object_schema({{"runId", id_schema("The paused run's id (runId / jobId of run_workflow).")},
                           {"decision", {{"type", "string"}, {"enum", {"approve", "reject"}}}},
                           {"output", {{"type", "string"}, {"maxLength", 20000}, {"description", "approve: the approved (or rewritten) text fed to the next step."}}},
                           {"waitSeconds", wait_schema("the resumed run")}},
                          Json{"runId", "decision"}),
            run_output_schema(), false, true));
        tools.push_back(tool("list_agents", "List agents",
                             "Lists the workspace's agents (chat models with history): id, name, model.",
                             object_schema(Json::object(), Json::array()),
                             Json{{"type", "object"}, {"properties", {{"agents", {{"type", "array"}}}}}, {"required", {"agents"}}},
                             true));
        tools.push_back(tool(
            "chat_with_agent", "Chat with an agent",
            "Sends a message to an agent and answers its reply. Pass the sessionId of an earlier answer to continue "
            "that conversation (the agent sees its history); without one a new session starts. With a progress "
            "token the reply streams as progress notifications carrying the text so far.",
            object_schema({{"agentId", id_schema("The agent's id (see list_agents).")},
                           {"message", {{"type", "string"}, {"minLength", 1}, {"description", "The user's message."}}},
                           {"sessionId", {{"type", "string"}, {"minLength", 1}, {"maxLength", 128}, {"description", "Optional: continue this conversation."}}},
                           {"waitSeconds", wait_schema("the reply")}},
                          Json{"agentId", "message"}),
            execution_output_schema(true), false));
        tools.push_back(tool(
            "list_apps", "List apps",
            "Lists the workspace's apps with their type, versions and inputs (as a JSON Schema): what run_app takes.",
            object_schema(Json::object(), Json::array()),
            Json{{"type", "object"}, {"properties", {{"apps", {{"type", "array"}}}}}, {"required", {"apps"}}}, true));
        tools.push_back(tool(
            "run_app", "Run an app",
            "Runs an app of the workspace with its inputs (see list_apps) and waits for its output (up to "
            "waitSeconds), streaming it as progress. A run still going when the wait ends is answered with its "
            "jobId (poll it with get_job, stop it with cancel_job).",
            object_schema({{"appId", id_schema("The app's id (see list_apps).")},
                           {"inputs", {{"type", "object"}, {"description", "The app's inputs by name."}}},
                           {"version", {{"type", "string"}, {"minLength", 1}, {"maxLength", 100}, {"description", "Optional: an app version (default: the latest)."}}},
                           {"waitSeconds", wait_schema("the output")}},
                          Json{"appId"}),
            execution_output_schema(false), false));
        tools.push_back(tool("get_job", "Get a job",
                             "Reads a job: a workflow run (id wr_...) or an app/agent execution (id ex_...), with its "
                             "status (QUEUED, RUNNING, PAUSED, COMPLETED, FAILED, CANCELLED), output and error.",
                             object_schema({{"jobId", id_schema("The job's id.")}}, Json{"jobId"}), job_output_schema(),
                             true));
        tools.push_back(tool("cancel_job", "Cancel a job",
                             "Cancels a job that has not finished (a workflow run, paused ones included, or an "
                             "execution) and answers it, now CANCELLED.",
                             object_schema({{"jobId", id_schema("The job's id.")}}, Json{"jobId"}), job_output_schema(),
                             false, true));
        return tools;
    }();
    return defs;
}

const Json* find_tool(const std::string& name) {
    for (const auto& t : tool_definitions()) {
        if (t["name"] == name) return &t;
    }
    return nullptr;
}

// Checks `v` against the subset of JSON Schema the tool definitions above use (type, enum,
// minLength, maxLength, pattern, minimum, maximum, properties, required, additionalProperties:
// false). The message names the argument, so a model can correct its call.
std::optional<std::string> check_schema(const Json& schema, const Json& v, const std::string& path) {
    const std::string type = schema.value("type", "");
    if (type == "object") {
        if (!v.is_object()) return path + ": must be an object";
        const Json& props = schema.contains("properties") ? schema["properties"] : kAny;
        for (const auto& r : schema.value("required", Json::array())) {
            if (!v.contains(r.get<std::string>())) return path + "." + r.get<std::string>() + " is required";
        }
        for (const auto& item : v.items()) {
            auto p = props.find(item.key());
            if (p == props.end()) {
                if (schema.value("additionalProperties", true) == false) {
                    std::string known;
                    for (const auto& k : props.items()) known += (known.empty() ? "" : ", ") + k.key();
                    return path + "." + item.key() + " is not a known argument" +
                           (known.empty() ? std::string(" (this tool takes none)") : " (known: " + known + ")");
                }
                continue;
            }
            if (auto bad = check_schema(*p, item.value(), path + "." + item.key())) return bad;
        }
        return std::nullopt;
    }
    if (type == "string") {
        if (!v.is_string()) return path + ": must be a string";
        const std::string& s = v.get_ref<const std::string&>();
        if (auto e = schema.find("enum"); e != schema.end()) {
            if (std::find(e->begin(), e->end(), v) == e->end()) {
                std::string list;
                for (const auto& x : *e) list += (list.empty() ? "" : ", ") + protocol::dump(x);
                return path + ": must be one of " + list;
            }
        }
        const std::size_t n = chars(s);
        if (schema.contains("minLength") && n < schema["minLength"].get<std::size_t>()) {
            return path + ": must not be empty";
        }
        if (schema.contains("maxLength") && n > schema["maxLength"].get<std::size_t>()) {
            return path + ": must be at most " + std::to_string(schema["maxLength"].get<std::size_t>()) + " characters";
        }
        // The one pattern the tools' schemas use, kIdPattern (its length bounds are checked
        // above), checked by hand: std::regex compiled per call cost more than the call, and its
        // locale cache is a data race ThreadSanitizer reports.
        if (auto pat = schema.find("pattern"); pat != schema.end()) {
            if (*pat != kIdPattern) throw std::logic_error("check_schema knows no pattern but kIdPattern");
            if (s.find_first_of("/?#% \t\n\v\f\r") != std::string::npos) {
                return path + ": is not a valid id (no '/', '?', '#', '%' or whitespace)";
            }
        }
        return std::nullopt;
    }
    if (type == "integer") {
        const bool integral = v.is_number_integer() || v.is_number_unsigned() ||
                              (v.is_number_float() && std::isfinite(v.get<double>()) &&
                               v.get<double>() == std::floor(v.get<double>()));
        const double x = v.is_number() ? v.get<double>() : 0;
        const double lo = schema.value("minimum", -1e18), hi = schema.value("maximum", 1e18);
        if (!integral || x < lo || x > hi) {
            return path + ": must be an integer from " + std::to_string(static_cast<long long>(lo)) + " to " +
                   std::to_string(static_cast<long long>(hi));
        }
        return std::nullopt;
    }
    return std::nullopt;
}

int wait_of(const Json& args) {
    auto w = args.find("waitSeconds");
    if (w == args.end()) return kDefaultWaitSeconds;
    return static_cast<int>(w->get<double>());
}

// A CallToolResult: a one-line summary for people and models, the structured value as JSON text
// (for clients that do not read structuredContent) and as structuredContent.
Json tool_result(std::string summary, Json structured, bool is_error = false) {
    Json content = Json::array();
    content.push_back(Json{{"type", "text"}, {"text", std::move(summary)}});
    content.push_back(Json{{"type", "text"}, {"text", protocol::dump(structured)}});
    return Json{{"content", std::move(content)}, {"structuredContent", std::move(structured)}, {"isError", is_error}};
}

// A tool's failure (not found, invalid input, a refusal of the API): text only.
Json tool_error(std::string message) {
    return Json{{"content", Json::array({Json{{"type", "text"}, {"text", std::move(message)}}})}, {"isError", true}};
}

// The API's error answer as a tool error: its message, its code and status.
Json api_error(const Response& r) {
    auto j = protocol::parse_json(r.body);
    std::string message = "the request failed";
    std::string code;
    if (j && j->is_object()) {
        message = j->value("error", message);
        code = j->value("code", "");
    }
    if (r.status == 429) {
        for (const auto& [k, v] : r.headers) {
            if (k == "Retry-After") message += " (Retry-After: " + v + " s)";
        }
    }
    return tool_error(message + " [HTTP " + std::to_string(r.status) + (code.empty() ? "" : ", " + code) + "]");
}

std::string header_of(const Response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
        if (k == name) return v;
    }
    return "";
}

// ---------------------------------------------------------------- waking a waiting call

// A call sleeps here between checks; cancellation, a new event of the run it follows or its client
// going away wake it from any thread. The timer is touched only under the mutex (the hub's
// Subscriber does the same), so no wake-up is lost whichever thread notifies.
class Wakeup {
public:
    explicit Wakeup(asio::any_io_executor ex) : timer_(std::move(ex)) {}
    void notify() {
        std::lock_guard lock(mu_);
        notified_ = true;
        timer_.cancel();
    }
    // Until notified (since the last wait) or `max` passed.
    asio::awaitable<void> wait(std::chrono::milliseconds max) {
        auto arm = [this, max](auto handler) {
            std::lock_guard lock(mu_);
            timer_.expires_after(max);
            timer_.async_wait(asio::bind_cancellation_slot(asio::cancellation_slot(), std::move(handler)));
            if (notified_) timer_.cancel();
            notified_ = false;
        };
        co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>, void(boost::system::error_code)>(
            std::move(arm), asio::as_tuple(asio::use_awaitable));
    }

private:
    std::mutex mu_;
    bool notified_ = false;
    asio::steady_timer timer_;
};

// Reads an execution's events from the hub (it is the run's stream body, as an HTTP stream is):
// the text so far, the error, the final "completed" event. Never pushes back: it keeps only the
// text, so nothing waits on it.
class Follower final : public StreamOut {
public:
    Follower(asio::any_io_executor ex, std::shared_ptr<Wakeup> wake) : ex_(std::move(ex)), wake_(std::move(wake)) {}

    Sent send(std::string_view bytes) override {
        {
            std::lock_guard lock(mu_);
            if (stopped_ || finished_) return Sent::closed;
            events_.clear();
            (void)parser_.feed(bytes, events_);
            for (const auto& e : events_) {
                auto d = protocol::parse_json(e.data);
                if (!d || !d->is_object()) continue;
                if (e.type == "delta") text_ += d->value("content", "");
                else if (e.type == "agent-response") text_ += d->value("token", "");
                else if (e.type == "error") error_ = d->value("error", "");
                else if (e.type == "completed") completed_ = std::move(*d);
            }
        }
        wake_->notify();
        return Sent::ok;
    }
    void when_drained(std::function<void()> fn) override { asio::post(ex_, std::move(fn)); }
    void on_gone(std::function<void()>) override {}  // it goes only by stop(), which the hub reads in closed()
    void finish() override {
        {
            std::lock_guard lock(mu_);
            finished_ = true;
        }
        wake_->notify();
    }
    bool closed() const override {
        std::lock_guard lock(mu_);
        return stopped_ || finished_;
    }
    asio::any_io_executor executor() const override { return ex_; }

    void stop() {
        std::lock_guard lock(mu_);
        stopped_ = true;
    }
    struct Snapshot {
        std::string text, error;
        std::optional<Json> completed;
        bool finished = false;
    };
    Snapshot snapshot() const {
        std::lock_guard lock(mu_);
        return Snapshot{text_, error_, completed_, finished_};
    }

private:
    asio::any_io_executor ex_;
    std::shared_ptr<Wakeup> wake_;
    mutable std::mutex mu_;
    sse::Parser parser_;
    std::vector<sse::Event> events_;
    std::string text_, error_;
    std::optional<Json> completed_;
    bool finished_ = false, stopped_ = false;
};

std::string sse_message(const Json& msg) {
    const std::string data = protocol::dump(msg);
    return sse::encode(sse::OutEvent{"message", data, "", std::nullopt});
}

}  // namespace

// ---------------------------------------------------------------- sessions and calls

struct McpServer::Call {
    std::mutex mu;
    bool cancelled = false;  // notifications/cancelled named it
    bool gone = false;       // its SSE response's client went away: nobody to answer
    std::string job_id;      // what it started (to cancel with it)
    std::shared_ptr<Wakeup> wake;
};

struct McpServer::Session {
    std::string id;
    std::string workspace_id;
    std::string version;  // negotiated protocol version
    std::chrono::steady_clock::time_point last_used;
    std::unordered_map<std::string, std::shared_ptr<Call>> calls;  // by request id (JSON text)
};

struct McpServer::CallCtx {
    const WorkspaceConfig* ws = nullptr;
    std::string authorization;
    std::string remote_ip;
    std::shared_ptr<Session> session;
    std::shared_ptr<Call> call;
    Json progress_token;  // null: none
    std::shared_ptr<StreamOut> out;  // set when answering over SSE: progress goes there
    double last_progress = -1;
    std::chrono::steady_clock::time_point last_sent{};
    // The SSE response has more than its budget waiting for a slow reader: progress is skipped
    // until it drains (each notification carries the whole state, so none is owed), so a client
    // that stops reading costs bounded memory until the HTTP layer's write deadline drops it.
    std::shared_ptr<std::atomic<bool>> congested = std::make_shared<std::atomic<bool>>(false);

    bool cancelled() const {
        std::lock_guard lock(call->mu);
        return call->cancelled;
    }
    bool stopped() const {
        std::lock_guard lock(call->mu);
        return call->cancelled || call->gone;
    }
    void started(const std::string& job) {
        std::lock_guard lock(call->mu);
        call->job_id = job;
    }
    // notifications/progress on the call's SSE response; `progress` must grow (the spec's rule),
    // so a value not above the last one is not sent.
    void progress(double value, std::optional<double> total, std::string message) {
        if (!out || progress_token.is_null() || value <= last_progress || congested->load()) return;
        last_progress = value;
        last_sent = std::chrono::steady_clock::now();
        Json params{{"progressToken", progress_token}, {"progress", value}, {"message", std::move(message)}};
        if (total) params["total"] = *total;
        auto sent = out->send(sse_message(Json{{"jsonrpc", "2.0"}, {"method", "notifications/progress"}, {"params", std::move(params)}}));
        if (sent == StreamOut::Sent::backlogged) {
            congested->store(true);
            out->when_drained([c = congested] { c->store(false); });
        }
    }
};

McpServer::McpServer(asio::io_context& ioc, DbExecutor& db, ExecutionHub& hub, Api& api, WorkflowService& service,
                     McpOptions options)
    : ioc_(ioc), db_(db), hub_(hub), api_(api), service_(service), options_(options) {}

McpServer::~McpServer() = default;

asio::awaitable<Response> McpServer::handle(Request& req) {
    ServiceCaller caller;
    Response err;
    const bool authorized = co_await service_.authorize(req, caller, err);
    if (!authorized) co_return err;
    const WorkspaceConfig* ws = caller.workspace;
    // DNS rebinding: a page of another site must not drive this endpoint from a browser. The
    // Origin is checked against the workspace's allowedOrigins before anything is done; requests
    // without Origin (MCP clients that are not browsers) are fine.
    if (auto origin = req.header("origin")) {
        bool allowed = false;
        for (const auto& o : ws->allowed_origins) allowed = allowed || o == "*" || o == *origin;
        if (!allowed) {
            Response r = error_response(403, "origin_not_allowed",
                                        "origin '" + std::string(*origin) + "' is not allowed for this workspace");
            r.workspace = ws->id;
            co_return r;
        }
    }
    Response res;
    if (req.method == "DELETE") {
        res = co_await end_session(req, ws);
    } else {
        res = co_await post(req, ws);
    }
    res.workspace = ws->id;
    co_return res;
}

bool McpServer::shared_sessions() const { return db_.shared(); }

namespace {
Response sessions_unavailable(const std::string& why) {
    Response r = http_rpc_error(503, kServerError, "Service Unavailable: MCP sessions cannot be read or written: " + why);
    r.headers.emplace_back("Retry-After", "1");
    return r;
}
Response session_not_found() {
    return http_rpc_error(404, kSessionNotFound, "Session not found: it ended, expired or never existed; initialize a new one");
}
}  // namespace

asio::awaitable<std::shared_ptr<McpServer::Session>> McpServer::find_session(const Request& req, const WorkspaceConfig* ws,
                                                                             Response& err) {
    auto sid = req.header("mcp-session-id");
    if (!sid || sid->empty()) {
        err = http_rpc_error(400, kServerError,
                             "Bad Request: the Mcp-Session-Id header is required (initialize first: POST an initialize request without it)");
        co_return nullptr;
    }
    if (auto v = req.header("mcp-protocol-version"); v && !supported_version(*v)) {
        std::string list;
        for (const char* s : kVersions) list += (list.empty() ? "" : ", ") + std::string(s);
        err = http_rpc_error(400, kServerError,
                             "Bad Request: unsupported MCP-Protocol-Version '" + std::string(*v) + "' (supported: " + list + ")");
        co_return nullptr;
    }
    const auto now = std::chrono::steady_clock::now();
    if (shared_sessions()) {
        const std::string id(*sid);
        const std::int64_t idle_ms = std::chrono::duration_cast<std::chrono::milliseconds>(options_.session_idle).count();
        Result<std::optional<Store::McpSession>> row = make_error("storage_unavailable", "the server is stopping");
        try {
            auto f = [&id, idle_ms](Store& s) { return s.touch_mcp_session(id, idle_ms); };
            row = co_await db_.run(std::move(f));
        } catch (const std::exception&) {
        }
        if (!row) {
            err = sessions_unavailable(row.error().message);
            co_return nullptr;
        }
        // Another workspace's session is as unknown as one that never was.
        if (!*row || (*row)->workspace_id != ws->id) {
            err = session_not_found();
            co_return nullptr;
        }
        std::lock_guard lock(mu_);
        // Sessions of requests that started no call (notifications) are forgotten here now and
        // then; the ones with calls when their last call ends.
        if (++lookups_since_sweep_ >= 256) {
            lookups_since_sweep_ = 0;
            std::erase_if(sessions_, [now](const auto& kv) {
                return kv.second->calls.empty() && now - kv.second->last_used > std::chrono::minutes(1);
            });
        }
        auto& slot = sessions_[id];
        if (!slot) {
            slot = std::make_shared<Session>();
            slot->id = id;
            slot->workspace_id = ws->id;
            slot->version = (*row)->version;
        }
        slot->last_used = now;
        co_return slot;
    }
    std::lock_guard lock(mu_);
    auto it = sessions_.find(std::string(*sid));
    if (it != sessions_.end() && it->second->calls.empty() && now - it->second->last_used > options_.session_idle) {
        sessions_.erase(it);
        it = sessions_.end();
    }
    // Another workspace's session is as unknown as one that never was.
    if (it == sessions_.end() || it->second->workspace_id != ws->id) {
        err = session_not_found();
        co_return nullptr;
    }
    it->second->last_used = now;
    co_return it->second;
}

asio::awaitable<Response> McpServer::end_session(const Request& req, const WorkspaceConfig* ws) {
    Response err;
    auto s = co_await find_session(req, ws, err);
    if (!s) co_return err;
    {
        std::lock_guard lock(mu_);
        sessions_.erase(s->id);
    }
    if (shared_sessions()) {
        // Gone from the store: every instance answers 404 from its next request on.
        const std::string id = s->id;
        Result<bool> gone = make_error("storage_unavailable", "the server is stopping");
        try {
            auto f = [&id](Store& st) { return st.delete_mcp_session(id); };
            gone = co_await db_.run(std::move(f));
        } catch (const std::exception&) {
        }
        if (!gone) co_return sessions_unavailable(gone.error().message);
        if (!*gone) co_return session_not_found();  // ended meanwhile, through another instance
    }
    // Calls in flight answer on their own responses; the runs they started go on (they are jobs
    // of the workspace, visible through the API).
    Response r;
    r.status = 204;
    r.content_type.clear();
    co_return r;
}

asio::awaitable<Response> McpServer::initialize(const Json& msg, const WorkspaceConfig* ws) {
    const Json& id = msg["id"];
    const Json params = msg.value("params", Json::object());
    if (!params.is_object() || !params.contains("protocolVersion") || !params["protocolVersion"].is_string()) {
        co_return json_response(200, rpc_error(id, kInvalidParams, "initialize: params.protocolVersion (a string) is required"));
    }
    if (params.contains("capabilities") && !params["capabilities"].is_object()) {
        co_return json_response(200, rpc_error(id, kInvalidParams, "initialize: params.capabilities must be an object"));
    }
    if (params.contains("clientInfo") && !params["clientInfo"].is_object()) {
        co_return json_response(200, rpc_error(id, kInvalidParams, "initialize: params.clientInfo must be an object"));
    }
    const std::string asked = params["protocolVersion"].get<std::string>();
    auto session = std::make_shared<Session>();
    session->id = random_id("mcp_");
    session->workspace_id = ws->id;
    session->version = supported_version(asked) ? asked : kLatest;
    session->last_used = std::chrono::steady_clock::now();
    if (shared_sessions()) {
        // A row every instance reads; nothing is kept here until a call of it is in flight. Past
        // the cap the least recently used sessions end, whether or not another instance has a
        // call of theirs in flight (it is not known here): such a call still answers.
        const Store::McpSession row{session->id, ws->id, session->version};
        const std::int64_t idle_ms = std::chrono::duration_cast<std::chrono::milliseconds>(options_.session_idle).count();
        const auto cap = static_cast<std::int64_t>(options_.max_sessions_per_workspace);
        Status st = make_error("storage_unavailable", "the server is stopping");
        try {
            auto f = [&row, idle_ms, cap](Store& s) { return s.insert_mcp_session(row, idle_ms, cap); };
            st = co_await db_.run(std::move(f));
        } catch (const std::exception&) {
        }
        if (!st) co_return sessions_unavailable(st.error().message);
    } else {
        std::lock_guard lock(mu_);
        const auto now = session->last_used;
        std::size_t mine = 0;
        std::shared_ptr<Session> oldest;
        for (auto it = sessions_.begin(); it != sessions_.end();) {
            Session& s = *it->second;
            if (s.calls.empty() && now - s.last_used > options_.session_idle) {
                it = sessions_.erase(it);
                continue;
            }
            if (s.workspace_id == ws->id) {
                ++mine;
                if (s.calls.empty() && (!oldest || s.last_used < oldest->last_used)) oldest = it->second;
            }
            ++it;
        }
        if (mine >= options_.max_sessions_per_workspace) {
            if (!oldest) {
                Response r = http_rpc_error(429, kServerError,
                                            "too many MCP sessions of this workspace have calls in flight (at most " +
                                                std::to_string(options_.max_sessions_per_workspace) + " sessions)");
                r.headers.emplace_back("Retry-After", "1");
                co_return r;
            }
            sessions_.erase(oldest->id);  // the least recently used idle one: its client re-initializes on 404
        }
        sessions_.emplace(session->id, session);
    }
    std::string instructions =
        "Tools of the Confab workspace '" + (ws->name.empty() ? ws->id : ws->name) +
        "': list and run workflows (a run may pause for human approval: resume_workflow_run), chat with agents "
        "(keep the sessionId to continue a conversation), run apps, and read or cancel jobs. Long calls report "
        "progress; a call still running when its wait ends answers with a jobId for get_job.";
    Json result{{"protocolVersion", session->version},
                {"capabilities", {{"tools", {{"listChanged", false}}}}},
                {"serverInfo", {{"name", "confab"}, {"title", "Confab"}, {"version", CONFAB_VERSION}}},
                {"instructions", std::move(instructions)}};
    Response r = json_response(200, rpc_result(id, std::move(result)));
    r.headers.emplace_back("Mcp-Session-Id", session->id);
    co_return r;
}

void McpServer::notification(const std::shared_ptr<Session>& s, const Json& msg) {
    const std::string method = msg["method"].get<std::string>();
    // notifications/initialized needs nothing: this server sends no requests of its own that it
    // would have to hold back until then, and it answers requests that come before it.
    if (method == "notifications/cancelled") {
        const Json params = msg.value("params", Json::object());
        if (!params.is_object() || !params.contains("requestId")) return;
        std::shared_ptr<Call> call;
        {
            std::lock_guard lock(mu_);
            auto it = s->calls.find(id_key(params["requestId"]));
            if (it != s->calls.end()) call = it->second;
        }
        // An unknown id is normal: the call may have ended as the notification travelled.
        if (!call) return;
        {
            std::lock_guard lock(call->mu);
            call->cancelled = true;
        }
        call->wake->notify();
    }
    // Other notifications (progress, roots/list_changed, ...) need nothing from this server.
}

asio::awaitable<Response> McpServer::post(Request& req, const WorkspaceConfig* ws) {
    if (auto ct = req.header("content-type"); !ct || media_type(*ct) != "application/json") {
        co_return http_rpc_error(415, kServerError, "Unsupported Media Type: Content-Type must be application/json");
    }
    const bool json_ok = !req.header("accept") || accepts(req, "application/json") || accepts(req, "*/*") ||
                         accepts(req, "application/*");
    const bool sse_ok = accepts(req, "text/event-stream");
    if (!json_ok && !sse_ok) {
        co_return http_rpc_error(406, kServerError,
                                 "Not Acceptable: the Accept header must list application/json and text/event-stream");
    }
    auto parsed = protocol::parse_json(req.body);
    if (!parsed) co_return http_rpc_error(400, kParseError, "Parse error: " + parsed.error().message);
    Json body = std::move(*parsed);

    // initialize: the one request without a session (it makes one).
    if (body.is_object() && body.contains("method") && body["method"] == "initialize") {
        if (!body.contains("id") || !valid_id(body["id"]) || body.value("jsonrpc", Json()) != "2.0") {
            co_return http_rpc_error(400, kInvalidRequest, "Invalid Request: initialize must be a JSON-RPC 2.0 request with an id");
        }
        co_return co_await initialize(body, ws);
    }
    Response err;
    auto session = co_await find_session(req, ws, err);
    if (!session) co_return err;
    std::string version;
    {
        std::lock_guard lock(mu_);
        version = session->version;
    }
    const bool batch = body.is_array();
    if (batch) {
        if (!batches_allowed(version)) {
            co_return http_rpc_error(400, kInvalidRequest,
                                     "Invalid Request: JSON-RPC batches are not part of protocol version " + version);
        }
        if (body.empty()) co_return http_rpc_error(400, kInvalidRequest, "Invalid Request: an empty batch");
        if (body.size() > options_.max_batch) {
            co_return http_rpc_error(400, kInvalidRequest,
                                     "Invalid Request: a batch holds at most " + std::to_string(options_.max_batch) + " messages");
        }
    }
    std::vector<Json> messages;
    if (batch) {
        for (auto& m : body) messages.push_back(std::move(m));
    } else {
        messages.push_back(std::move(body));
    }

    // Sorts the messages: requests to answer, notifications and responses to take in, and
    // malformed ones to answer with -32600.
    enum class Kind { request, notification, response, invalid };
    auto kind_of = [](const Json& m, std::string& why) {
        if (!m.is_object()) {
            why = "a JSON-RPC message must be an object";
            return Kind::invalid;
        }
        if (m.value("jsonrpc", Json()) != "2.0") {
            why = "jsonrpc must be \"2.0\"";
            return Kind::invalid;
        }
        const bool has_id = m.contains("id");
        if (has_id && !valid_id(m["id"])) {
            why = "id must be a string or an integer";
            return Kind::invalid;
        }
        if (m.contains("method")) {
            if (!m["method"].is_string()) {
                why = "method must be a string";
                return Kind::invalid;
            }
            if (m.contains("params") && !m["params"].is_object() && !m["params"].is_array()) {
                why = "params must be an object";
                return Kind::invalid;
            }
            return has_id ? Kind::request : Kind::notification;
        }
        if (has_id && (m.contains("result") || m.contains("error"))) return Kind::response;
        why = "neither a request, a notification nor a response";
        return Kind::invalid;
    };

    std::vector<Json> answers;
    std::vector<const Json*> requests;
    for (const auto& m : messages) {
        std::string why;
        switch (kind_of(m, why)) {
            case Kind::invalid: {
                Json id = m.is_object() && m.contains("id") && valid_id(m["id"]) ? m["id"] : Json();
                if (!batch) co_return http_rpc_error(400, kInvalidRequest, "Invalid Request: " + why);
                answers.push_back(rpc_error(id, kInvalidRequest, "Invalid Request: " + why));
                break;
            }
            case Kind::notification: notification(session, m); break;
            case Kind::response: break;  // this server sends no requests; nothing waits for one
            case Kind::request:
                if (m["method"] == "initialize") {
                    answers.push_back(rpc_error(m["id"], kInvalidRequest,
                                                "Invalid Request: initialize starts a session: send it alone, without Mcp-Session-Id"));
                } else {
                    requests.push_back(&m);
                }
                break;
        }
    }
    if (requests.empty() && answers.empty()) {
        Response r;
        r.status = 202;
        r.content_type.clear();
        co_return r;
    }

    // Registers a request as in flight (so notifications/cancelled finds it).
    auto begin = [&](const Json& m, asio::any_io_executor ex, std::shared_ptr<Call>& call) -> std::optional<Json> {
        call = std::make_shared<Call>();
        call->wake = std::make_shared<Wakeup>(std::move(ex));
        std::lock_guard lock(mu_);
        if (session->calls.size() >= options_.max_calls_per_session) {
            return rpc_error(m["id"], kServerError,
                             "too many requests of this session in flight (at most " +
                                 std::to_string(options_.max_calls_per_session) + ")");
        }
        if (!session->calls.emplace(id_key(m["id"]), call).second) {
            return rpc_error(m["id"], kInvalidRequest, "Invalid Request: a request with this id is in flight already");
        }
        return std::nullopt;
    };
    auto make_ctx = [&](std::shared_ptr<Call> call, const Json& m) {
        auto ctx = std::make_shared<CallCtx>();
        ctx->ws = ws;
        ctx->authorization = std::string(req.header("authorization").value_or(""));
        ctx->remote_ip = req.remote_ip;
        ctx->session = session;
        ctx->call = std::move(call);
        if (auto p = m.find("params"); p != m.end() && p->is_object()) {
            if (auto meta = p->find("_meta"); meta != p->end() && meta->is_object()) {
                if (auto t = meta->find("progressToken"); t != meta->end() && valid_id(*t)) ctx->progress_token = *t;
            }
        }
        return ctx;
    };
    // A session is idle from the end of its last call, not from the request that started it.
    auto end = [this, session](const Json& id) {
        std::lock_guard lock(mu_);
        session->calls.erase(id_key(id));
        session->last_used = std::chrono::steady_clock::now();
        if (shared_sessions()) {
            // The row is marked used again (a long call must not leave its session idle), and
            // this instance forgets a session it no longer has calls of.
            auto it = sessions_.find(session->id);
            if (session->calls.empty() && it != sessions_.end() && it->second == session) sessions_.erase(it);
            const std::int64_t idle_ms = std::chrono::duration_cast<std::chrono::milliseconds>(options_.session_idle).count();
            asio::co_spawn(
                ioc_,
                [this, sid = session->id, idle_ms]() -> asio::awaitable<void> {
                    try {
                        auto f = [&sid, idle_ms](Store& s) { return s.touch_mcp_session(sid, idle_ms); };
                        co_await db_.run(std::move(f));
                    } catch (const std::exception&) {
                    }
                },
                asio::detached);
        }
    };

    // One request whose client asked for progress, and takes SSE: answered as an event stream
    // (progress notifications, then the response). The call runs on a strand of its own, fed
    // into the stream once its head is written.
    if (!batch && requests.size() == 1 && sse_ok) {
        const Json& m = *requests.front();
        auto probe = make_ctx(nullptr, m);
        if (!probe->progress_token.is_null() && m["method"] == "tools/call") {
            auto strand = asio::make_strand(ioc_);
            std::shared_ptr<Call> call;
            if (auto refused = begin(m, strand, call)) co_return json_response(200, *refused);
            auto ctx = make_ctx(call, m);
            Response r;
            r.status = 200;
            r.content_type = "text/event-stream";
            r.headers.emplace_back("Cache-Control", "no-cache");
            r.headers.emplace_back("X-Accel-Buffering", "no");
            r.headers.emplace_back("Mcp-Session-Id", session->id);
            Json msg = m;
            r.stream = [this, strand, ctx, msg = std::move(msg), end](std::shared_ptr<StreamOut> out) {
                ctx->out = out;
                out->on_gone([ctx] {
                    {
                        std::lock_guard lock(ctx->call->mu);
                        ctx->call->gone = true;
                    }
                    ctx->call->wake->notify();
                });
                asio::co_spawn(
                    strand,
                    [this, ctx, msg, end, out]() -> asio::awaitable<void> {
                        std::optional<Json> answer_json;
                        try {
                            answer_json = co_await answer(*ctx, msg);
                        } catch (const std::exception& e) {
                            log_line(std::string(R"({"level":"error","msg":"mcp call failed","reason":)") +
                                     protocol::dump(Json(e.what())) + "}");
                            answer_json = rpc_error(msg["id"], -32603, "Internal error");
                        }
                        end(msg["id"]);
                        if (answer_json) out->send(sse_message(*answer_json));
                        out->finish();
                    },
                    asio::detached);
            };
            co_return r;
        }
    }

    // Everything else: answered as JSON once every request has its answer (in order).
    auto ex = co_await asio::this_coro::executor;
    for (const Json* mp : requests) {
        const Json& m = *mp;
        std::shared_ptr<Call> call;
        if (auto refused = begin(m, ex, call)) {
            answers.push_back(std::move(*refused));
            continue;
        }
        auto ctx = make_ctx(call, m);
        std::optional<Json> a;
        std::string failure;
        try {
            a = co_await answer(*ctx, m);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        end(m["id"]);
        if (!failure.empty()) {
            log_line(std::string(R"({"level":"error","msg":"mcp call failed","reason":)") + protocol::dump(Json(failure)) + "}");
            a = rpc_error(m["id"], -32603, "Internal error");
        }
        // Cancelled meanwhile: HTTP needs an answer; the spec lets the canceller ignore it.
        if (!a) a = rpc_error(m["id"], kRequestCancelled, "Request cancelled (notifications/cancelled)");
        answers.push_back(std::move(*a));
    }
    Response r = batch ? json_response(200, Json(answers)) : json_response(200, answers.front());
    r.headers.emplace_back("Mcp-Session-Id", session->id);
    co_return r;
}

asio::awaitable<std::optional<Json>> McpServer::answer(CallCtx& ctx, const Json& msg) {
    const Json& id = msg["id"];
    const std::string method = msg["method"].get<std::string>();
    const Json params = msg.value("params", Json::object());
    if (!params.is_object()) co_return rpc_error(id, kInvalidParams, "Invalid params: params must be an object");
    if (method == "ping") co_return rpc_result(id, Json::object());
    if (method == "tools/list") {
        if (auto c = params.find("cursor"); c != params.end() && !c->is_null()) {
            // Every tool comes in the first page, so no cursor was ever handed out.
            co_return rpc_error(id, kInvalidParams, "Invalid params: unknown cursor (tools/list has one page)");
        }
        co_return rpc_result(id, Json{{"tools", tool_definitions()}});
    }
    if (method == "tools/call") {
        auto name = params.find("name");
        if (name == params.end() || !name->is_string()) {
            co_return rpc_error(id, kInvalidParams, "Invalid params: params.name (the tool's name) is required");
        }
        const Json* def = find_tool(name->get<std::string>());
        if (!def) co_return rpc_error(id, kInvalidParams, "Invalid params: unknown tool '" + name->get<std::string>() + "'");
        Json args = params.value("arguments", Json::object());
        if (args.is_null()) args = Json::object();
        if (!args.is_object()) co_return rpc_error(id, kInvalidParams, "Invalid params: params.arguments must be an object");
        // Wrong arguments are the tool's error, not the protocol's: the model reads it and retries.
        if (auto bad = check_schema((*def)["inputSchema"], args, "arguments")) {
            co_return rpc_result(id, tool_error(*bad));
        }
        const std::string tool_name = name->get<std::string>();
        Json result = co_await call_tool(ctx, tool_name, args);
        if (ctx.stopped()) co_return std::nullopt;
        co_return rpc_result(id, std::move(result));
    }
    co_return rpc_error(id, kMethodNotFound, "Method not found: " + method);
}

asio::awaitable<Json> McpServer::call_tool(CallCtx& ctx, const std::string& name, const Json& args) {
    if (name == "list_workflows") co_return co_await list_workflows(ctx, args);
    if (name == "run_workflow") co_return co_await run_workflow(ctx, args);
    if (name == "resume_workflow_run") co_return co_await resume_workflow_run(ctx, args);
    if (name == "list_agents") co_return co_await list_agents(ctx);
    if (name == "list_apps") co_return co_await list_apps(ctx);
    if (name == "chat_with_agent") co_return co_await chat_with_agent(ctx, args);
    if (name == "run_app") co_return co_await run_app(ctx, args);
    if (name == "get_job") co_return co_await get_job(ctx, args);
    co_return co_await cancel_job(ctx, args);
}

// ---------------------------------------------------------------- v1 calls

asio::awaitable<Response> McpServer::forward(CallCtx& ctx, std::string method, std::string target, std::string body,
                                             bool event_stream) {
    Request v1;
    v1.method = std::move(method);
    v1.target = std::move(target);
    auto split = split_target(v1.target);
    v1.path = std::move(split.path);
    v1.query = std::move(split.query);
    v1.body = std::move(body);
    v1.remote_ip = ctx.remote_ip;
    v1.headers.emplace_back("authorization", ctx.authorization);
    v1.headers.emplace_back("content-type", "application/json");
    v1.headers.emplace_back("accept", event_stream ? "text/event-stream" : "application/json");
    co_return co_await api_.handle(v1);
}

asio::awaitable<void> McpServer::cancel_started_job(CallCtx& ctx) {
    std::string job;
    {
        std::lock_guard lock(ctx.call->mu);
        job = ctx.call->job_id;
    }
    if (job.empty()) co_return;
    Response r = co_await forward(ctx, "DELETE", "/v1/jobs/" + job, "");
    log_line(R"({"level":"info","msg":"mcp call cancelled by its client","job":")" + job + R"(","status":)" +
             std::to_string(r.status) + "}");
}

// ---------------------------------------------------------------- workflow tools

asio::awaitable<Json> McpServer::list_workflows(CallCtx& ctx, const Json& args) {
    std::string target = "/v1/workflows?page=" + std::to_string(args.value("page", 0)) +
                         "&size=" + std::to_string(args.value("size", 20));
    Response r = co_await forward(ctx, "GET", target, "");
    if (r.status != 200) co_return api_error(r);
    auto page = protocol::parse_json(r.body);
    if (!page || !page->is_object()) co_return tool_error("the workflow list could not be read");
    Json out{{"workflows", (*page)["content"]},
             {"totalElements", (*page)["totalElements"]},
             {"totalPages", (*page)["totalPages"]},
             {"page", (*page)["number"]},
             {"size", (*page)["size"]}};
    const std::size_t n = out["workflows"].size();
    std::string summary = std::to_string(n) + " workflow" + (n == 1 ? "" : "s") + " on this page (" +
                          protocol::dump(out["totalElements"]) + " in all)";
    for (const auto& w : out["workflows"]) summary += "\n- " + w.value("id", "") + ": " + w.value("name", "");
    co_return tool_result(std::move(summary), std::move(out));
}

asio::awaitable<Json> McpServer::run_workflow(CallCtx& ctx, const Json& args) {
    const std::string wf = args["workflowId"].get<std::string>();
    Json body{{"input", args["input"]}};
    if (args.contains("sessionId")) body["sessionId"] = args["sessionId"];
    Response r = co_await forward(ctx, "POST", "/v1/workflows/" + wf + "/run", protocol::dump(body));
    if (r.status != 202) co_return api_error(r);
    auto started = protocol::parse_json(r.body);
    if (!started || !started->is_object() || !(*started)["jobId"].is_string()) co_return tool_error("the run did not start");
    const std::string run_id = (*started)["jobId"].get<std::string>();
    ctx.started(run_id);
    co_return co_await follow_run(ctx, run_id, wait_of(args));
}

asio::awaitable<Json> McpServer::resume_workflow_run(CallCtx& ctx, const Json& args) {
    const std::string run_id = args["runId"].get<std::string>();
    Response cur = co_await forward(ctx, "GET", "/v1/workflows/runs/" + run_id, "");
    if (cur.status != 200) co_return api_error(cur);
    auto run = protocol::parse_json(cur.body);
    if (!run || !run->is_object()) co_return tool_error("the run could not be read");
    const std::string status = run->value("status", "");
    if (status != "PAUSED") {
        co_return tool_error("run '" + run_id + "' is " + status + ", not PAUSED: only a paused run can be approved or rejected" +
                             (status == "RUNNING" || status == "QUEUED" ? " (cancel_job stops a running one)" : ""));
    }
    if (args["decision"] == "reject") {
        Response c = co_await forward(ctx, "DELETE", "/v1/jobs/" + run_id, "");
        if (c.status != 200) co_return api_error(c);
        co_return co_await follow_run(ctx, run_id, 0, true);
    }
    std::string approved;
    if (args.contains("output")) {
        approved = args["output"].get<std::string>();
    } else {
        const Json& steps = (*run)["steps"];
        if (steps.is_array() && !steps.empty()) approved = text_of(steps.back().value("output", Json()));
    }
    Json body{{"output", approved}};
    Response r = co_await forward(ctx, "POST", "/v1/workflows/runs/" + run_id + "/resume", protocol::dump(body));
    if (r.status != 202 && r.status != 200) co_return api_error(r);
    ctx.started(run_id);
    co_return co_await follow_run(ctx, run_id, wait_of(args));
}

// Waits for a run to finish, pause or pass `wait_seconds`, reporting each finished step as
// progress; then answers the run as the API has it.
asio::awaitable<Json> McpServer::follow_run(CallCtx& ctx, std::string run_id, int wait_seconds, bool rejected) {
    using std::chrono::milliseconds;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
    const std::string ws = ctx.ws->id;
    Json steps_def = Json::array();
    std::size_t done = 0, reported = 0;
    bool first = true;
    // The running step's execution, followed through the hub so its text streams as progress.
    std::shared_ptr<Follower> step;
    std::string step_exec;
    std::size_t step_sent = 0;
    auto next_poll = std::chrono::steady_clock::now();
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
        if (ctx.stopped()) break;
        auto now = std::chrono::steady_clock::now();
        if (now >= next_poll) {
            next_poll = now + kRunPoll;
            auto doc = co_await db_.run([&](Store& s) { return s.get_run(ws, run_id); });
            if (!doc) break;
            steps_def = doc->doc.value("steps", Json::array());
            const Json trace = doc->doc.value("trace", Json::array());
            done = 0;
            std::string agent;
            for (const auto& e : trace) {
                if (e.value("status", "") != "COMPLETED") continue;
                ++done;
                agent = e.value("agentId", "");
            }
            if (first || done > reported) {
                std::string msg = "workflow run " + run_id + ": " + doc->label;
                if (done > 0) {
                    msg += ", step " + std::to_string(done) + " of " + std::to_string(steps_def.size()) + " (" + agent +
                           ") completed";
                }
                ctx.progress(static_cast<double>(done), static_cast<double>(steps_def.size()), std::move(msg));
                reported = done;
                first = false;
            }
            const std::string& st = doc->label;
            if (st == "COMPLETED" || st == "FAILED" || st == "CANCELLED" || st == "PAUSED") break;
            // A finished step's execution stays current until the next one starts: not followed.
            std::string current = doc->doc.value("currentExecutionId", "");
            for (const auto& e : trace) {
                if (e.value("executionId", "") == current) current.clear();
            }
            if (current != step_exec) {
                if (step) step->stop();
                step.reset();
                step_exec = current;
                step_sent = 0;
                if (!current.empty() && !ctx.progress_token.is_null()) {
                    step = std::make_shared<Follower>(ex, ctx.call->wake);
                    hub_.stream(current, 0, step);  // a step of this workspace's run: visible
                }
            }
        }
        now = std::chrono::steady_clock::now();
        auto wait = std::chrono::duration_cast<milliseconds>(next_poll - now);
        if (step) {
            // The running step's text so far, between the whole steps: progress done + (0..1).
            const auto snap = step->snapshot();
            if (snap.text.size() > step_sent) {
                if (now - ctx.last_sent >= kProgressEvery) {
                    const double n = static_cast<double>(chars(snap.text));
                    ctx.progress(static_cast<double>(done) + n / (n + 100.0), static_cast<double>(steps_def.size()),
                                 "step " + std::to_string(done + 1) + " of " + std::to_string(steps_def.size()) + ": " +
                                     snap.text);
                    step_sent = snap.text.size();
                } else {
                    wait = std::min(wait, std::chrono::duration_cast<milliseconds>(kProgressEvery - (now - ctx.last_sent)));
                }
            }
        }
        if (now >= deadline) break;
        wait = std::min(wait, std::chrono::duration_cast<milliseconds>(deadline - now));
        co_await ctx.call->wake->wait(std::max(wait, milliseconds(1)));
    }
    if (step) step->stop();
    if (ctx.cancelled()) {
        co_await cancel_started_job(ctx);
        co_return Json();
    }
    if (ctx.stopped()) co_return Json();
    Response r = co_await forward(ctx, "GET", "/v1/workflows/runs/" + run_id, "");
    if (r.status != 200) co_return api_error(r);
    auto run = protocol::parse_json(r.body);
    if (!run || !run->is_object()) co_return tool_error("the run could not be read");
    const std::string status = run->value("status", "");
    const bool finished = status == "COMPLETED" || status == "FAILED" || status == "CANCELLED";
    Json out{{"runId", run_id},
             {"jobId", run_id},
             {"workflowId", (*run)["workflowId"]},
             {"sessionId", (*run)["sessionId"]},
             {"status", status},
             {"finished", finished},
             {"output", (*run)["output"]},
             {"error", (*run)["error"]},
             {"waitingFor", nullptr},
             {"steps", (*run)["steps"]}};
    std::string summary;
    if (status == "PAUSED") {
        Json waiting{{"type", "human_approval"}};
        const Json& trace = (*run)["steps"];
        if (trace.is_array() && !trace.empty()) {
            const Json& paused = trace.back();
            waiting["stepOrder"] = paused.value("stepOrder", Json());
            waiting["proposedOutput"] = text_of(paused.value("output", Json()));
            for (const auto& s : steps_def) {
                if (s.value("id", "") == paused.value("stepId", "")) waiting["action"] = s.value("action", "");
            }
        }
        summary = "Run " + run_id + " is PAUSED for human approval at step " + protocol::dump(waiting["stepOrder"]) +
                  (waiting.contains("action") ? " (\"" + waiting["action"].get<std::string>() + "\")" : "") +
                  ". To continue, call resume_workflow_run with runId \"" + run_id +
                  "\" and decision \"approve\" (optionally output: the approved text; default the proposed text) or "
                  "\"reject\" to cancel it. Proposed text: " + waiting.value("proposedOutput", "");
        out["waitingFor"] = std::move(waiting);
    } else if (status == "COMPLETED") {
        summary = "Run " + run_id + " COMPLETED. Output:\n" + text_of(out["output"]);
    } else if (status == "FAILED") {
        summary = "Run " + run_id + " FAILED: " + text_of(out["error"]);
    } else if (status == "CANCELLED") {
        summary = rejected ? "Run " + run_id + " was rejected: it is CANCELLED and runs no further step."
                           : "Run " + run_id + " was CANCELLED.";
    } else {
        summary = "Run " + run_id + " is still " + status + " after " + std::to_string(wait_seconds) +
                  " s; poll it with get_job {\"jobId\": \"" + run_id + "\"} or stop it with cancel_job.";
    }
    co_return tool_result(std::move(summary), std::move(out), status == "FAILED" || (status == "CANCELLED" && !rejected));
}

// ---------------------------------------------------------------- agents and apps

asio::awaitable<Json> McpServer::list_agents(CallCtx& ctx) {
    Response r = co_await forward(ctx, "GET", "/v1/agents", "");
    if (r.status != 200) co_return api_error(r);
    auto j = protocol::parse_json(r.body);
    if (!j || !j->is_object()) co_return tool_error("the agent list could not be read");
    std::string summary = std::to_string((*j)["agents"].size()) + " agents";
    for (const auto& a : (*j)["agents"]) summary += "\n- " + a.value("id", "") + ": " + a.value("name", "");
    co_return tool_result(std::move(summary), std::move(*j));
}

asio::awaitable<Json> McpServer::list_apps(CallCtx& ctx) {
    // The workspace's configuration (no route lists apps to a server-to-server caller); each
    // app's inputs as the JSON Schema of run_app's `inputs`.
    Json apps = Json::array();
    std::string summary;
    for (const auto& app : ctx.ws->apps) {
        protocol::AppInfo info = app.info();
        Json props = Json::object();
        Json required = Json::array();
        const char* types[] = {"string", "number", "integer", "boolean", "object", "array"};
        for (const auto& in : info.inputs) {
            Json schema = Json::object();
            const std::string t = protocol::to_string(in.type);
            if (std::find(std::begin(types), std::end(types), t) != std::end(types)) schema["type"] = t;
            if (!in.description.empty()) schema["description"] = in.description;
            props[in.name] = std::move(schema);
            if (in.required) required.push_back(in.name);
        }
        Json inputs{{"type", "object"}, {"properties", std::move(props)}};
        if (!required.empty()) inputs["required"] = std::move(required);
        apps.push_back(Json{{"id", info.id},
                            {"name", info.name},
                            {"type", protocol::to_string(info.type)},
                            {"version", info.version},
                            {"versions", info.versions},
                            {"inputs", std::move(inputs)}});
        summary += (summary.empty() ? "" : "\n") + std::string("- ") + info.id + " (" + protocol::to_string(info.type) + ")";
    }
    co_return tool_result(std::to_string(apps.size()) + " apps\n" + summary, Json{{"apps", std::move(apps)}});
}

asio::awaitable<Json> McpServer::chat_with_agent(CallCtx& ctx, const Json& args) {
    const std::string agent = args["agentId"].get<std::string>();
    Json body{{"message", args["message"]}};
    if (args.contains("sessionId")) body["sessionId"] = args["sessionId"];
    Response r = co_await forward(ctx, "POST", "/v1/agents/" + agent + "/chat", protocol::dump(body), true);
    if (r.status != 200 || !r.stream) co_return api_error(r);
    Json base{{"agentId", agent}, {"sessionId", header_of(r, "X-Confab-Session-Id")}};
    co_return co_await follow_execution(ctx, std::move(r), true, wait_of(args), std::move(base));
}

asio::awaitable<Json> McpServer::run_app(CallCtx& ctx, const Json& args) {
    const std::string app = args["appId"].get<std::string>();
    Json body{{"inputs", args.value("inputs", Json::object())}};
    if (args.contains("version")) body["version"] = args["version"];
    Request v1;
    v1.method = "POST";
    v1.target = v1.path = "/v1/apps/" + app + "/executions";
    v1.body = protocol::dump(body);
    v1.remote_ip = ctx.remote_ip;
    v1.headers.emplace_back("content-type", "application/json");
    v1.headers.emplace_back("accept", "text/event-stream");
    // No route runs an app for a server-to-server caller; Api runs the end-user route as the
    // API user (validation, versions, errors as there). This request was authorized above.
    Response r = co_await api_.execute_as_api(v1, ctx.ws, app);
    if (r.status != 200 || !r.stream) co_return api_error(r);
    Json base{{"appId", app}};
    co_return co_await follow_execution(ctx, std::move(r), false, wait_of(args), std::move(base));
}

asio::awaitable<Json> McpServer::follow_execution(CallCtx& ctx, Response started, bool chat, int wait_seconds, Json base) {
    const std::string exec_id = header_of(started, "X-Confab-Execution-Id");
    ctx.started(exec_id);
    auto ex = co_await asio::this_coro::executor;
    auto follower = std::make_shared<Follower>(ex, ctx.call->wake);
    started.stream(follower);  // the hub feeds it: stored events first, then live ones
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
    std::size_t sent_len = 0;
    Follower::Snapshot snap;
    for (;;) {
        snap = follower->snapshot();
        if (ctx.stopped()) break;
        const auto now = std::chrono::steady_clock::now();
        const bool done = snap.completed.has_value() || snap.finished;
        // The text so far, at most every kProgressEvery (each notification repeats all of it).
        if (snap.text.size() > sent_len && (done || now - ctx.last_sent >= kProgressEvery)) {
            ctx.progress(static_cast<double>(chars(snap.text)), std::nullopt, snap.text);
            sent_len = snap.text.size();
        }
        if (done || now >= deadline) break;
        auto until_deadline = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
        auto step = std::min<std::chrono::milliseconds>(until_deadline, std::chrono::milliseconds(1000));
        if (snap.text.size() > sent_len) {
            auto throttle = std::chrono::duration_cast<std::chrono::milliseconds>(kProgressEvery - (now - ctx.last_sent));
            step = std::min(step, std::max(throttle, std::chrono::milliseconds(1)));
        }
        co_await ctx.call->wake->wait(step);
    }
    follower->stop();
    if (ctx.cancelled()) {
        co_await cancel_started_job(ctx);
        co_return Json();
    }
    if (ctx.stopped()) co_return Json();
    Json out = std::move(base);
    out["executionId"] = exec_id;
    out["jobId"] = exec_id;
    std::string status;
    if (snap.completed) {
        status = job_status(snap.completed->value("status", chat ? "success" : "error"));
        out["error"] = snap.error.empty() ? snap.completed->value("error", Json()) : Json(snap.error);
        if (chat) {
            out["reply"] = snap.completed->value("result", snap.text);
            if (auto sid = snap.completed->value("sessionId", ""); !sid.empty()) out["sessionId"] = sid;
        } else {
            out["output"] = snap.completed->value("output", Json());
        }
    } else {
        // Still going (or its stream ended without a final event): the job as the API has it.
        Response j = co_await forward(ctx, "GET", "/v1/jobs/" + exec_id, "");
        auto job = protocol::parse_json(j.body);
        status = j.status == 200 && job && job->is_object() ? job->value("status", "RUNNING") : "RUNNING";
        out["error"] = snap.error.empty() ? Json() : Json(snap.error);
        if (chat) out["reply"] = snap.text;
        else out["output"] = snap.text.empty() ? Json() : Json(snap.text);
    }
    out["status"] = status;
    const bool finished = status == "COMPLETED" || status == "FAILED" || status == "CANCELLED";
    out["finished"] = finished;
    std::string summary;
    if (!finished) {
        summary = std::string(chat ? "The reply" : "Execution " + exec_id) + " is still " + status + " after " +
                  std::to_string(wait_seconds) + " s; poll it with get_job {\"jobId\": \"" + exec_id +
                  "\"} or stop it with cancel_job.";
    } else if (status == "COMPLETED") {
        summary = chat ? out["reply"].get<std::string>() + "\n\n(sessionId " + out.value("sessionId", "") +
                             ": pass it to continue this conversation)"
                       : "Execution " + exec_id + " COMPLETED. Output:\n" + text_of(out["output"]);
    } else {
        summary = std::string(chat ? "The reply " : "Execution " + exec_id + " ") + status +
                  (out["error"].is_null() ? "" : ": " + text_of(out["error"]));
    }
    co_return tool_result(std::move(summary), std::move(out), status == "FAILED" || status == "CANCELLED");
}

// ---------------------------------------------------------------- jobs

asio::awaitable<Json> McpServer::get_job(CallCtx& ctx, const Json& args) {
    const std::string id = args["jobId"].get<std::string>();
    Response r = co_await forward(ctx, "GET", "/v1/jobs/" + id, "");
    if (r.status != 200) co_return api_error(r);
    auto j = protocol::parse_json(r.body);
    if (!j || !j->is_object()) co_return tool_error("the job could not be read");
    std::string summary = "Job " + id + " (" + j->value("type", "") + ") is " + j->value("status", "");
    if (j->value("status", "") == "PAUSED") summary += " for human approval (resume_workflow_run continues it)";
    co_return tool_result(std::move(summary), std::move(*j));
}

asio::awaitable<Json> McpServer::cancel_job(CallCtx& ctx, const Json& args) {
    const std::string id = args["jobId"].get<std::string>();
    Response r = co_await forward(ctx, "DELETE", "/v1/jobs/" + id, "");
    if (r.status != 200) co_return api_error(r);
    auto j = protocol::parse_json(r.body);
    if (!j || !j->is_object()) co_return tool_error("the job could not be read");
    std::string summary = "Job " + id + " is " + j->value("status", "");
    co_return tool_result(std::move(summary), std::move(*j));
}

}  // namespace confab::server
