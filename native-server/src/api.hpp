// The v1 HTTP API: routing, identity, CORS, rate limits and the route handlers.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>

#include "config.hpp"
#include "confab/identity.hpp"
#include "db_executor.hpp"
#include "execution_cache.hpp"
#include "http_types.hpp"
#include "hub.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "rate_limiter.hpp"

namespace confab::server {

struct ApiOptions {
    int sync_wait_ms = 60000;  // POST .../executions?wait=true waits this long at most
    // GET /v1/executions/{id} of a finished execution answers from memory (execution_cache.hpp),
    // at most this many bytes of them; 0: off, every GET reads the store.
    std::size_t execution_cache_bytes = kDefaultExecutionCacheBytes;
};

class WorkflowService;
class AiropsEdge;
class McpServer;

class Api {
public:
    Api(const ServerConfig& config, DbExecutor& db, ExecutionHub& hub, Metrics& metrics,
        ApiOptions options = {});

    // Never throws; 5xx on internal failures.
    boost::asio::awaitable<Response> handle(Request& req);

    void set_ready(bool ready) { ready_.store(ready); }
    // Replaces req.remote_ip (the peer) with the client's address when the config trusts
    // X-Forwarded-For from that peer (trustForwardedFor). The HTTP layer calls it once per request
    // off the wire; requests built inside the server (MCP, /sdk_api) copy the result.
    void resolve_client_ip(Request& req) const;
    // The server-to-server routes (/v1/workflows, /v1/agents, /v1/jobs, /v1/applications) and
    // bearer-authenticated cancels go to `service`; without it they are 404.
    void set_service(WorkflowService* service);
    // /sdk_api/* (the AirOps SDK's paths) go to `edge`, which calls handle() back on v1 routes.
    void set_airops_edge(AiropsEdge* edge) { airops_ = edge; }
    // /v1/mcp (the MCP endpoint) goes to `mcp`, which calls handle() back on v1 routes; without
    // it the path is 404.
    void set_mcp(McpServer* mcp) { mcp_ = mcp; }
    // POST /v1/apps/{appId}/executions as the server-to-server API user of `ws`: the end-user
    // route's validation, versions, Idempotency-Key and streaming, without an end-user identity.
    // For the MCP tool run_app; the caller has authorized the request.
    boost::asio::awaitable<Response> execute_as_api(Request& req, const WorkspaceConfig* ws, std::string app_id);

    struct Match;  // a routed request (route, path parameter, allowed methods)

private:
    struct Caller {
        const WorkspaceConfig* workspace = nullptr;
        std::string user_id;  // "" when anonymous
        bool anonymous = true;
    };
    static Caller api_caller(const WorkspaceConfig* ws);
    boost::asio::awaitable<Response> dispatch(Request& req, const Match& m);
    Response preflight(const Request& req, const Match& m) const;
    // Resolves X-Confab-Workspace/User/User-Hash. On failure fills `err` and returns false.
    bool identify(const Request& req, bool allow_anonymous, Caller& out, Response& err) const;
    boost::asio::awaitable<bool> check_rate(const Request& req, const Caller& caller, Response& err);
    bool origin_allowed(const WorkspaceConfig* ws, std::string_view origin) const;

    boost::asio::awaitable<Response> identity(Request& req);
    // GET /v1/identity/proxy (proxy_identity.cpp): the user from the trusted proxy's header.
    boost::asio::awaitable<Response> proxy_identity(const Request& req);
    boost::asio::awaitable<Response> get_app(Request& req, const Caller& c, const std::string& app_id);
    boost::asio::awaitable<Response> execute(Request& req, const Caller& c, const std::string& app_id);
    boost::asio::awaitable<Response> chat(Request& req, const Caller& c, const std::string& app_id);
    // The stored execution of a replayed Idempotency-Key, waiting up to a second for a first
    // request that claimed the key but has neither stored nor started the run yet.
    boost::asio::awaitable<std::optional<ExecutionRecord>> replayed_execution(const std::string& ws,
                                                                             const std::string& user,
                                                                             const std::string& id);
    boost::asio::awaitable<Response> get_execution(const Caller& c, const std::string& id);
    boost::asio::awaitable<Response> execution_events(Request& req, const Caller& c, const std::string& id);
    boost::asio::awaitable<Response> cancel_execution(const Caller& c, const std::string& id);
    boost::asio::awaitable<Response> list_sessions(Request& req, const Caller& c);
    boost::asio::awaitable<Response> get_session(const Caller& c, const std::string& id);
    boost::asio::awaitable<Response> delete_session(const Caller& c, const std::string& id);
    boost::asio::awaitable<Response> feedback(Request& req, const Caller& c, const std::string& id);
    boost::asio::awaitable<Response> metrics_text();
    Response openapi(const Request& req) const;
    // An agent chat turn of the server-to-server API, as the API user of `ws`.
    boost::asio::awaitable<Response> api_chat(Request& req, const WorkspaceConfig* ws, std::string app_id);

    // execution_json(rec), kept in cache_ when rec is finished.
    std::string finished_body(const ExecutionRecord& rec);

    const ServerConfig& config_;
    DbExecutor& db_;
    ExecutionHub& hub_;
    Metrics& metrics_;
    ApiOptions options_;
    RateLimiter limiter_;
    ExecutionCache cache_;
    std::unordered_map<std::string, std::unique_ptr<IdentityVerifier>> verifiers_;
    std::atomic<bool> ready_{false};
    WorkflowService* service_ = nullptr;
    AiropsEdge* airops_ = nullptr;
    McpServer* mcp_ = nullptr;
};

}  // namespace confab::server
