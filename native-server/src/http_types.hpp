// Transport-neutral request/response types between the Beast layer and the API routes, so only
// http_server.cpp has to include Beast.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
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

// The body of an open event stream once its head is written: a small per-stream object owned
// by the HTTP layer, fed by whoever produces the events (the hub). Not a coroutine: producers call
// it from any thread; it sends at once what the socket takes and keeps the rest (bounded by the
// producer, which stops feeding a backlogged stream and catches it up later from the run's log).
class StreamOut {
public:
    enum class Sent {
        ok,          // the socket took everything handed over so far
        queued,      // some bytes wait for the socket (a short write)
        backlogged,  // queued, and more than the stream's budget is waiting: feed it again after when_drained()
        closed,      // the client is gone (or the server closes it): stop feeding it
    };
    virtual ~StreamOut() = default;
    // Any thread. Appends whole SSE frames (never part of one).
    virtual Sent send(std::string_view bytes) = 0;
    // Any thread. `fn` runs once, on the stream's executor, when nothing is waiting to be sent or
    // the stream has closed (check closed()).
    virtual void when_drained(std::function<void()> fn) = 0;
    // Once, before any call: `fn` runs once, on the stream's executor, when the stream closes
    // before finish() (client gone, write deadline passed, server closing).
    virtual void on_gone(std::function<void()> fn) = 0;
    // The body is complete: ends it (last chunk) once everything is sent, then the connection
    // serves its next request or closes.
    virtual void finish() = 0;
    virtual bool closed() const = 0;
    virtual boost::asio::any_io_executor executor() const = 0;  // where the callbacks run
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    // Set for text/event-stream responses: called once the head is written, with the stream's
    // body; it returns at once and feeds the body from then on (chunked).
    std::function<void(std::shared_ptr<StreamOut>)> stream;
    // For the access log and metrics.
    Route route = Route::unmatched;
    std::string workspace;
    bool close = false;  // close the connection after this response
};

}  // namespace confab::server
