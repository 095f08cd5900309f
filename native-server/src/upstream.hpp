// A small async HTTP/1.1 client (Boost.Beast) for upstream calls: LLM streams and http apps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "confab/result.hpp"

namespace confab::server {

// Only plain http:// URLs: https (TLS) upstreams are out of scope for this server build; put a
// local TLS-terminating proxy in front of such a provider if needed.
struct HttpUrl {
    std::string host;           // name or IPv4 literal ("[::1]" style IPv6 is accepted, brackets stripped)
    std::uint16_t port = 80;
    std::string target = "/";   // path + query, always starts with '/'
};
// Errors (code "invalid_url"): not http://, empty host, bad port, https:// (not supported).
Result<HttpUrl> parse_http_url(std::string_view url);

struct UpstreamRequest {
    std::string url;
    std::string method = "POST";
    std::vector<std::pair<std::string, std::string>> headers;  // e.g. {"Authorization", "Bearer k"}
    std::string content_type = "application/json";
    std::string body;
    int connect_timeout_ms = 5000;  // resolve + connect + sending the request
    int idle_timeout_ms = 30000;    // no response bytes for this long -> "upstream_timeout"
    std::size_t max_body_bytes = 8 << 20;  // larger (non-streamed) response -> "upstream_error"
};

struct UpstreamResponse {
    unsigned status = 0;
    std::string content_type;
    std::string body;  // the whole body, unless an on_chunk callback consumed it
};

// Called with each body chunk of a 2xx response, in order, as it arrives. The view is valid
// until the returned awaitable completes; the next chunk is read only after that (so awaiting
// here is backpressure, and that waiting time does not count as idle). Returning an Error stops
// the request and request() returns that Error.
using ChunkHandler = std::function<boost::asio::awaitable<Status>(std::string_view chunk)>;

// Sends the request and reads the response. With `on_chunk`, 2xx body bytes go to it and
// UpstreamResponse::body stays empty; without, the body is collected.
// Errors (their messages never name the upstream: clients see them; each failure is logged with
// the upstream's host:port and the details, e.g. a non-2xx body truncated to 512 bytes):
//   "upstream_unavailable"  cannot resolve/connect/send the request, or connect_timeout_ms elapsed
//   "upstream_error"    the URL is not a plain http:// URL, connection broken, bad HTTP, or a
//                       non-2xx status ("the upstream answered HTTP 500")
//   "upstream_timeout"  idle_timeout_ms elapsed with no response bytes
//   "cancelled"         the awaiting coroutine's cancellation slot fired (with the default
//                       filter of asio coroutines: terminal cancellation)
boost::asio::awaitable<Result<UpstreamResponse>> http_request(UpstreamRequest req,
                                                              ChunkHandler on_chunk = {});

}  // namespace confab::server
