// The HTTP/1.1 front end on Boost.Beast: accept loop, per-connection coroutines, limits, time-outs,
// SSE framing and the access log. Beast stays inside http_server.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "api.hpp"
#include "confab/result.hpp"
#include "metrics.hpp"

namespace confab::server {

class AiropsEdge;

struct HttpOptions {
    int header_timeout_ms = 10000;
    int body_timeout_ms = 30000;
    int idle_timeout_ms = 60000;
    int write_timeout_ms = 30000;  // a stream whose socket takes nothing this long is dropped
    int heartbeat_ms = 15000;      // an SSE ": hb" comment after this much silence
    std::size_t max_body_bytes = 1 << 20;
    std::size_t max_header_bytes = 8 << 10;
    bool access_log = true;
};

class SseConn;  // an open event stream (http_server.cpp)

class HttpServer {
public:
    HttpServer(boost::asio::io_context& ioc, Api& api, Metrics& metrics, HttpOptions options);
    ~HttpServer();

    // Binds and listens (backlog: the OS maximum). Returns the bound port (useful with port 0).
    Result<std::uint16_t> listen(const std::string& host, std::uint16_t port);
    // WebSocket upgrades to GET /app/{key} (the AirOps SDK's Pusher socket) are handed to `edge`.
    void set_airops_edge(AiropsEdge* edge);
    void start();           // starts the accept loop
    void stop_accepting();  // closes the listening socket
    // Shutdown: idle keep-alive connections are closed now, busy ones after their response.
    void begin_shutdown();
    void close_all();       // closes every connection (after the grace period)
    std::size_t connections() const;
    std::size_t busy_connections() const;

private:
    friend class SseConn;
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace confab::server
