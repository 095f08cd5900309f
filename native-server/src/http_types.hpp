// Transport-neutral request/response types between the Beast layer and the API routes, so only
// http_server.cpp has to include Beast.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "metrics.hpp"

namespace confab::server {

struct Request {
    std::string method;  // "GET", "POST", ...
    std::string target;  // as received: path + query
    std::string path;    // percent-decoded path
    std::vector<std::pair<std::string, std::string>> query;    // percent-decoded
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
    std::string body;
    std::string remote_ip;

    // First header with this (lowercase) name.
    std::optional<std::string_view> header(std::string_view lower_name) const {
        for (const auto& [k, v] : headers) {
            if (k == lower_name) return std::string_view(v);
        }
        return std::nullopt;
    }
    std::optional<std::string_view> query_param(std::string_view name) const {
        for (const auto& [k, v] : query) {
            if (k == name) return std::string_view(v);
        }
        return std::nullopt;
    }
};

// Writes bytes of an open event stream; false when the client is gone or too slow (the write
// deadline passed). Each call is awaited before the next: that is the per-stream backpressure.
class EventSink {
public:
    virtual ~EventSink() = default;
    virtual boost::asio::awaitable<bool> write(std::string bytes) = 0;
    // `fn` runs (on the stream's executor) when the client goes away while the stream is idle,
    // so an abandoned stream ends now rather than at its next heartbeat.
    virtual void on_client_gone(std::function<void()> fn) = 0;
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    // Set for text/event-stream responses: runs after the head is written; the body is what it
    // writes to the sink (chunked).
    std::function<boost::asio::awaitable<void>(EventSink&)> stream;
    // For the access log and metrics.
    Route route = Route::unmatched;
    std::string workspace;
    bool close = false;  // close the connection after this response
};

}  // namespace confab::server
