// The server-to-server API: bearer auth (API keys, client access tokens), workflows and their
// runs (steps run in order through the execution hub, human-approval pauses), agents and jobs.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "config.hpp"
#include "db_executor.hpp"
#include "http_types.hpp"
#include "hub.hpp"
#include "rate_limiter.hpp"

namespace confab::server {

// Executions started through the server-to-server API belong to this user id. It holds a control
// character, which no X-Confab-User header can carry, so no end user can ever be this user.
inline constexpr const char* kApiUser = "\x1f" "api";

struct ServiceCaller {
    const WorkspaceConfig* workspace = nullptr;
    std::string credential;  // "apiKey" or "client:<id>", for rate-limit buckets and logs
};

class WorkflowService {
public:
    // Runs an agent chat turn for `app_id` as the API user (Api::chat, so sessions, history and
    // SSE are the end-user chat's); set by Api.
    using ChatFn = std::function<boost::asio::awaitable<Response>(Request&, const WorkspaceConfig*, std::string)>;

    WorkflowService(boost::asio::io_context& ioc, const ServerConfig& config, DbExecutor& db, ExecutionHub& hub);

    // Paths under /v1 this service answers (segs without the leading "v1").
    static bool owns(const std::vector<std::string_view>& segs);
    // Handles an owned path: auth, rate limit, routing (405 with Allow for a wrong method).
    boost::asio::awaitable<Response> handle(Request& req, std::vector<std::string> segs);
    // What every server-to-server route does first: the bearer credential (API key or access
    // token) names the workspace, and one token is taken from that credential's rate-limit
    // bucket. False with `err` filled (401 + WWW-Authenticate, or 429 + Retry-After) otherwise.
    // The MCP endpoint (mcp.cpp) authorizes its requests here too.
    boost::asio::awaitable<bool> authorize(const Request& req, ServiceCaller& out, Response& err);
    // POST /v1/executions/{id}/cancel with a bearer token: cancels an execution or a workflow run
    // of the caller's workspace.
    boost::asio::awaitable<Response> cancel_with_bearer(Request& req, std::string id);

    // Startup (blocking, before serving): stores config-declared workflows that are not stored
    // yet, and fails runs that were in flight when the last process ended.
    void prepare_store();
    void set_chat(ChatFn fn) { chat_ = std::move(fn); }

private:
    struct LiveRun {
        std::mutex mu;
        bool cancel = false;
        std::string current_execution;
    };

    bool authenticate(const Request& req, ServiceCaller& out, Response& err) const;
    boost::asio::awaitable<bool> check_rate(const std::string& key, const RateLimit& rl, Response& err);

    boost::asio::awaitable<Response> issue_token(Request& req);
    boost::asio::awaitable<Response> route(Request& req, const ServiceCaller& c, const std::vector<std::string>& segs);

    boost::asio::awaitable<Response> list_workflows(Request& req, const ServiceCaller& c);
    boost::asio::awaitable<Response> create_workflow(Request& req, const ServiceCaller& c);
    boost::asio::awaitable<Response> get_workflow(const ServiceCaller& c, std::string id);
    boost::asio::awaitable<Response> patch_workflow(Request& req, const ServiceCaller& c, std::string id);
    boost::asio::awaitable<Response> delete_workflow(const ServiceCaller& c, std::string id);
    boost::asio::awaitable<Response> list_steps(const ServiceCaller& c, std::string id);
    boost::asio::awaitable<Response> add_step(Request& req, const ServiceCaller& c, std::string id);
    boost::asio::awaitable<Response> delete_step(const ServiceCaller& c, std::string id, std::string step_id);
    boost::asio::awaitable<Response> clone_workflow(const ServiceCaller& c, std::string id);
    boost::asio::awaitable<Response> start_run(Request& req, const ServiceCaller& c, std::string id, bool execute_form);
    boost::asio::awaitable<Response> get_workflow_execution(const ServiceCaller& c, std::string wf_id, std::string run_id);
    boost::asio::awaitable<Response> list_runs(Request& req, const ServiceCaller& c, std::string wf_id);
    boost::asio::awaitable<Response> get_run(const ServiceCaller& c, std::string run_id);
    boost::asio::awaitable<Response> resume_run(Request& req, const ServiceCaller& c, std::string run_id);
    boost::asio::awaitable<Response> list_agents(const ServiceCaller& c);
    boost::asio::awaitable<Response> execute_agent(Request& req, const ServiceCaller& c, std::string app_id);
    boost::asio::awaitable<Response> chat_agent(Request& req, const ServiceCaller& c, std::string app_id);
    boost::asio::awaitable<Response> list_jobs(Request& req, const ServiceCaller& c);
    boost::asio::awaitable<Response> list_feedback(Request& req, const ServiceCaller& c);
    boost::asio::awaitable<Response> get_job(const ServiceCaller& c, std::string id);
    boost::asio::awaitable<Response> cancel_job(const ServiceCaller& c, std::string id);
    boost::asio::awaitable<Response> cancel_run(const ServiceCaller& c, std::string run_id);
    boost::asio::awaitable<Response> cancel_execution(const ServiceCaller& c, std::string id);

    // Runs the steps of `run` from doc.nextIndex on, storing progress after every step.
    boost::asio::awaitable<void> drive(const WorkspaceConfig* ws, DocRecord run, std::shared_ptr<LiveRun> live);
    // Registers a run as live before its QUEUED state is stored, so a cancel that reads the
    // stored state always finds the live run to stop (never a stored QUEUED run with no owner).
    std::shared_ptr<LiveRun> register_live(const std::string& run_id);
    void unregister_live(const std::string& run_id);
    void spawn_run(const WorkspaceConfig* ws, DocRecord run, std::shared_ptr<LiveRun> live);
    boost::asio::awaitable<Status> save_run(DocRecord& run);
    // For ?wait=true: until the run is no longer live here (finished or paused) or `max` passed;
    // then the stored run (200), or 202 with it still going.
    boost::asio::awaitable<Response> wait_run(const std::string& ws, const std::string& run_id, std::chrono::milliseconds max);

    boost::asio::io_context& ioc_;
    const ServerConfig& config_;
    DbExecutor& db_;
    ExecutionHub& hub_;
    RateLimiter limiter_;
    ChatFn chat_;
    std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<LiveRun>> live_;
};

}  // namespace confab::server
