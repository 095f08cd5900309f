// The AirOps compatibility edge: `/sdk_api/*` (the unmodified @airops/airops-js SDK's REST calls)
// mapped onto the v1 routes, and its Pusher-protocol-7 WebSocket at `/app/{key}` fed from the hub.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "confab/identity.hpp"
#include "config.hpp"
#include "db_executor.hpp"
#include "http_types.hpp"
#include "hub.hpp"

namespace confab::server {

class Api;

struct AiropsEdgeOptions {
    // The most a WebSocket connection may have queued and unsent: a reader that falls this far
    // behind is dropped (Pusher keeps no history, so it loses the rest of that stream).
    std::size_t max_queued_bytes = 256 * 1024;
};

class AiropsEdge {
public:
    AiropsEdge(boost::asio::io_context& ioc, const ServerConfig& config, DbExecutor& db, ExecutionHub& hub,
               Api& api, AiropsEdgeOptions options = {});
    ~AiropsEdge();

    static bool owns(std::string_view path);  // "/sdk_api" and below
    // GET /app/{key}: the Pusher endpoint (http_server.cpp hands WebSocket upgrades here).
    static bool is_websocket_target(std::string_view target);

    // A /sdk_api request (OPTIONS included): translated, run through Api::handle on its v1 route,
    // and answered in the AirOps SDK's shapes.
    boost::asio::awaitable<Response> handle(Request& req);

    // Serves one Pusher WebSocket connection on `stream` until it closes. Runs on the connection's
    // strand; `stream` outlives the call.
    boost::asio::awaitable<void> serve_websocket(boost::beast::tcp_stream& stream,
                                                 boost::beast::http::request<boost::beast::http::string_body> req);

    struct Conn;     // one WebSocket connection (edge .cpp)
    struct Channel;  // a channel's owner and subscribers

    // Open WebSocket connections (for tests and metrics).
    std::size_t connections() const { return connections_.load(); }

private:
    struct Caller {
        const WorkspaceConfig* workspace = nullptr;
        std::string user_id;  // "" when anonymous
        bool anonymous = true;
    };
    // The caller of a /sdk_api request: underscore (or X-Confab-*) identity headers, else the
    // workspace whose allowedOrigins holds the Origin. On failure fills `err`.
    bool resolve_caller(const Request& req, Caller& out, Response& err) const;
    boost::asio::awaitable<Response> forward(Request& req, const Caller& c, std::string method, std::string path,
                                             std::string body);
    boost::asio::awaitable<Response> get_app(Request& req, const Caller& c, const std::string& app_id);
    boost::asio::awaitable<Response> execute(Request& req, const Caller& c, const std::string& app_id,
                                             std::string version);
    boost::asio::awaitable<Response> chat(Request& req, const Caller& c, const std::string& app_id);
    boost::asio::awaitable<Response> get_execution(Request& req, const Caller& c, const std::string& id);
    boost::asio::awaitable<Response> cancel(Request& req, const Caller& c, const std::string& id);
    Response pusher_auth(const Request& req, const Caller& c);

    // Binds `channel` to (workspace, user) unless another caller holds it; false then.
    bool claim_channel(const std::string& channel, const Caller& c);
    std::optional<Response> stream_channel(const protocol::Json& body, const AppConfig* app, const Caller& c,
                                           std::string& channel);
    // Publishes the events of run `execution_id` to `channel` until its "completed" event.
    void watch_run(std::string execution_id, std::string channel, bool chat, std::string client_session);
    void relay(std::string execution_id, std::string channel, bool chat, std::string client_session);
    void publish(const std::string& channel, std::string_view event, const protocol::Json& data);

    // WebSocket connection internals (edge .cpp).
    boost::asio::awaitable<void> ws_reader(std::shared_ptr<Conn> conn);
    boost::asio::awaitable<void> ws_writer(std::shared_ptr<Conn> conn);
    void on_message(const std::shared_ptr<Conn>& conn, std::string_view text);
    void subscribe(const std::shared_ptr<Conn>& conn, const std::string& channel, std::string_view auth);
    void unsubscribe(const std::shared_ptr<Conn>& conn, const std::string& channel);
    std::string pusher_secret(const WorkspaceConfig& ws) const;
    // The workspace whose Pusher key and secret made `auth` ("key:signature") for this socket and
    // channel, or nullptr.
    const WorkspaceConfig* auth_signer(std::string_view auth, const std::string& socket_id,
                                       const std::string& channel) const;
    void sweep_channels_locked(std::int64_t now);

    boost::asio::io_context& ioc_;
    const ServerConfig& config_;
    DbExecutor& db_;
    ExecutionHub& hub_;
    Api& api_;
    AiropsEdgeOptions options_;
    std::unordered_map<std::string, std::unique_ptr<IdentityVerifier>> verifiers_;
    // A workspace without a configured pusher.secret signs with one derived from its first
    // secret (pusher_secret()), the same in every instance, computed once here.
    std::unordered_map<std::string, std::string> derived_secrets_;
    std::atomic<std::size_t> connections_{0};

    mutable std::mutex mu_;  // guards channels_ and every Channel
    std::unordered_map<std::string, std::unique_ptr<Channel>> channels_;
    std::uint64_t claims_since_sweep_ = 0;
};

}  // namespace confab::server
