// The MCP endpoint /v1/mcp: the Model Context Protocol's streamable HTTP transport (sessions,
// JSON-RPC 2.0, progress over SSE, cancellation) and tools that list and run the workflows,
// agents, apps and jobs of the caller's workspace, through the v1 routes (Api::handle).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "config.hpp"
#include "confab/protocol.hpp"
#include "db_executor.hpp"
#include "http_types.hpp"
#include "hub.hpp"

namespace confab::server {

class Api;
class WorkflowService;

struct McpOptions {
    std::size_t max_sessions_per_workspace = 100;  // past it, the least recently used idle session ends
    std::chrono::seconds session_idle{1800};       // a session unused this long ends (404 after)
    std::size_t max_calls_per_session = 16;        // requests of one session in flight at once
    std::size_t max_batch = 32;                    // messages in one JSON-RPC batch (2025-03-26 and older)
};

// POST and DELETE /v1/mcp (Api routes GET to a 405: Confab never sends a message a client did not
// ask for, so a standing GET stream would hold a connection per client and carry nothing; every
// progress notification goes on the SSE response of the request it belongs to).
//
// Authentication and rate limits are the server-to-server API's (WorkflowService::authorize):
// the bearer API key or access token names the workspace; a session belongs to that workspace.
// Tools act through Api::handle on the v1 routes with the request's own credential, so their
// validation, limits, tenancy and errors are the API's; only progress is read directly (the
// stored run of a workflow, the hub's event stream of an execution).
class McpServer {
public:
    McpServer(boost::asio::io_context& ioc, DbExecutor& db, ExecutionHub& hub, Api& api, WorkflowService& service,
              McpOptions options = {});
    ~McpServer();

    boost::asio::awaitable<Response> handle(Request& req);

    struct Session;  // mcp.cpp
    struct Call;     // one request in flight (cancellable)
    struct CallCtx;  // what a tool needs: credential, progress sink, cancellation

private:
    boost::asio::awaitable<Response> post(Request& req, const WorkspaceConfig* ws);
    boost::asio::awaitable<Response> end_session(const Request& req, const WorkspaceConfig* ws);
    boost::asio::awaitable<Response> initialize(const protocol::Json& msg, const WorkspaceConfig* ws);
    // The session named by Mcp-Session-Id (of `ws`, not expired), or an error response.
    boost::asio::awaitable<std::shared_ptr<Session>> find_session(const Request& req, const WorkspaceConfig* ws,
                                                                  Response& err);
    // On a shared store (several instances): the session's row says it exists; this instance
    // keeps a Session only while it has calls of it in flight.
    bool shared_sessions() const;
    // Answers one request: its JSON-RPC response, or nullopt when it was cancelled (or its
    // client went away), which gets no response.
    boost::asio::awaitable<std::optional<protocol::Json>> answer(CallCtx& ctx, const protocol::Json& msg);
    void notification(const std::shared_ptr<Session>& s, const protocol::Json& msg);
    boost::asio::awaitable<protocol::Json> call_tool(CallCtx& ctx, const std::string& name, const protocol::Json& args);

    // Tools (mcp.cpp). Each returns a CallToolResult (ignored when the call was cancelled meanwhile).
    boost::asio::awaitable<protocol::Json> list_workflows(CallCtx& ctx, const protocol::Json& args);
    boost::asio::awaitable<protocol::Json> run_workflow(CallCtx& ctx, const protocol::Json& args);
    boost::asio::awaitable<protocol::Json> resume_workflow_run(CallCtx& ctx, const protocol::Json& args);
    // `rejected`: the caller cancelled the run on purpose (resume_workflow_run reject), not an error.
    boost::asio::awaitable<protocol::Json> follow_run(CallCtx& ctx, std::string run_id, int wait_seconds,
                                                      bool rejected = false);
    boost::asio::awaitable<protocol::Json> list_agents(CallCtx& ctx);
    boost::asio::awaitable<protocol::Json> list_apps(CallCtx& ctx);
    boost::asio::awaitable<protocol::Json> chat_with_agent(CallCtx& ctx, const protocol::Json& args);
    boost::asio::awaitable<protocol::Json> run_app(CallCtx& ctx, const protocol::Json& args);
    // Follows the execution a chat turn or app run answered with (an SSE Response of the route).
    boost::asio::awaitable<protocol::Json> follow_execution(CallCtx& ctx, Response started, bool chat, int wait_seconds,
                                                            protocol::Json base);
    boost::asio::awaitable<protocol::Json> get_job(CallCtx& ctx, const protocol::Json& args);
    boost::asio::awaitable<protocol::Json> cancel_job(CallCtx& ctx, const protocol::Json& args);

    // A v1 request with the caller's credential, answered by Api::handle.
    boost::asio::awaitable<Response> forward(CallCtx& ctx, std::string method, std::string path, std::string body,
                                             bool event_stream = false);
    // After a cancellation: stops the job the call started (DELETE /v1/jobs/{id}).
    boost::asio::awaitable<void> cancel_started_job(CallCtx& ctx);

    boost::asio::io_context& ioc_;
    DbExecutor& db_;     // progress of workflow runs is read from their stored state
    ExecutionHub& hub_;  // and the text of their running step from its execution's events
    Api& api_;
    WorkflowService& service_;
    McpOptions options_;

    // One instance (SQLite): every session lives here. Several (a shared store, issue 14): a
    // session is a row of the store, so any instance behind a load balancer answers it, DELETE
    // through one ends it on all, and its idle time is measured across all of them; here are
    // only the sessions with calls in flight on this instance (for notifications/cancelled).
    mutable std::mutex mu_;  // guards sessions_ and every Session's fields
    std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
    std::uint64_t lookups_since_sweep_ = 0;  // shared sessions: local ones are swept now and then
};

}  // namespace confab::server
