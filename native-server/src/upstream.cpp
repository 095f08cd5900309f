// Beast HTTP/1.1 client for upstreams: connect/idle time-outs, streamed body, coroutine cancellation.
#include "upstream.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "confab/protocol.hpp"
#include "util.hpp"

namespace confab::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kErrorBodyShown = 512;    // bytes of a non-2xx body quoted in the log
constexpr std::size_t kErrorBodyRead = 64 << 10;  // bytes of a non-2xx body read at most

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string truncate_utf8(std::string_view s, std::size_t max) {
    if (s.size() <= max) return std::string(s);
    std::size_t end = max;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    return std::string(s.substr(0, end)) + "...";
}

// An upstream failure as clients see it: `code` and a message that never names the upstream (its
// URL, host, port or what it answered could reveal internal addresses to a site's visitors). The
// details go to the server log, where the operator looks.
Error upstream_failure(const char* code, std::string shown, std::string_view where, std::string_view detail) {
    log_line(std::string(R"({"level":"warn","msg":"upstream request failed","code":")") + code +
             R"(","upstream":)" + protocol::dump(protocol::Json(std::string(where))) + R"(,"detail":)" +
             protocol::dump(protocol::Json(std::string(detail))) + "}");
    return make_error(code, std::move(shown));
}

// With as_tuple, a cancelled operation completes with operation_aborted instead of throwing.
Error cancelled_error() { return make_error("cancelled", "the upstream request was cancelled"); }

}  // namespace

Result<HttpUrl> parse_http_url(std::string_view url) {
    auto bad = [&](std::string_view why) {
        return make_error("invalid_url", "\"" + std::string(url) + "\" is not a valid http URL: " + std::string(why));
    };
    const std::string low = ascii_lower(url.substr(0, std::min<std::size_t>(url.size(), 8)));
    if (low.rfind("https://", 0) == 0) {
        return bad("https is not supported by this server build; use http:// (e.g. a local TLS proxy)");
    }
    if (low.rfind("http://", 0) != 0) return bad("it must start with http://");
    std::string_view rest = url.substr(7);
    const std::size_t slash = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, slash);
    std::string_view target = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");
    for (char c : url) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("it contains a space or control character");
    }
    HttpUrl u;
    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return bad("unclosed '[' in the host");
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return bad("unexpected text after the host");
            port = after.substr(1);
            if (port.empty()) return bad("empty port");
        }
    } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        if (port.empty()) return bad("empty port");
    }
    if (host.empty()) return bad("the host is empty");
    u.host = std::string(host);
    if (!port.empty()) {
        unsigned value = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
            return bad("the port must be a number from 1 to 65535");
        }
        u.port = static_cast<std::uint16_t>(value);
    }
    if (const std::size_t hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
    if (target.empty()) {
        u.target = "/";
    } else if (target.front() == '?') {
        u.target = "/" + std::string(target);
    } else {
        u.target = std::string(target);
    }
    return u;
}

asio::awaitable<Result<UpstreamResponse>> http_request(UpstreamRequest req, ChunkHandler on_chunk) {
    auto url = parse_http_url(req.url);
    if (!url) co_return upstream_failure("upstream_error", "the upstream URL is not valid", "", url.error().message);
    const std::string where = url->host + ":" + std::to_string(url->port);
    const auto unavailable = [&](std::string_view detail) {
        return upstream_failure("upstream_unavailable", "the upstream is unavailable", where, detail);
    };
    const auto upstream_error = [&](std::string shown, std::string_view detail) {
        return upstream_failure("upstream_error", std::move(shown), where, detail);
    };

    // After the caller cancels, asio makes every further co_await throw operation_aborted; one
    // try/catch turns that (and any other socket exception) into a Result. No co_await in catch.
    std::optional<Error> failure;
    UpstreamResponse response;
    try {
        auto ex = co_await asio::this_coro::executor;
        const auto connect_timeout = std::chrono::milliseconds(std::max(1, req.connect_timeout_ms));
        const auto idle_timeout = std::chrono::milliseconds(std::max(1, req.idle_timeout_ms));
        const auto deadline = std::chrono::steady_clock::now() + connect_timeout;

        // Resolve (names only; literals need no lookup), bounded by the connect time-out.
        std::vector<tcp::endpoint> endpoints;
        boost::system::error_code addr_ec;
        const auto literal = asio::ip::make_address(url->host, addr_ec);
        if (!addr_ec) {
            endpoints.emplace_back(literal, url->port);
        } else {
            using namespace asio::experimental::awaitable_operators;
            tcp::resolver resolver(ex);
            asio::steady_timer timer(ex);
            timer.expires_at(deadline);
            const std::string service = std::to_string(url->port);
            auto resolve = resolver.async_resolve(url->host, service, asio::as_tuple(asio::use_awaitable));
            auto expire = timer.async_wait(asio::as_tuple(asio::use_awaitable));
            auto raced = co_await (std::move(resolve) || std::move(expire));
            if (raced.index() == 1) {
                co_return unavailable("resolving the name took longer than " +
                                      std::to_string(req.connect_timeout_ms) + " ms");
            }
            auto [ec, results] = std::get<0>(std::move(raced));
            if (ec == asio::error::operation_aborted) co_return cancelled_error();
            if (ec) co_return unavailable("cannot resolve the name: " + ec.message());
            for (const auto& r : results) endpoints.push_back(r.endpoint());
        }

        beast::tcp_stream stream(ex);
        stream.expires_at(deadline);
        {
            auto [ec, ep] = co_await stream.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
            (void)ep;
            if (ec == asio::error::operation_aborted) co_return cancelled_error();
            if (ec == beast::error::timeout) {
                co_return unavailable("connecting took longer than " + std::to_string(req.connect_timeout_ms) + " ms");
            }
            if (ec) co_return unavailable("cannot connect: " + ec.message());
        }

        http::request<http::string_body> request;
        request.method(http::string_to_verb(req.method));
        if (request.method() == http::verb::unknown) {
            co_return upstream_error("the upstream request is not valid", "unknown HTTP method " + req.method);
        }
        request.target(url->target);
        request.version(11);
        request.set(http::field::host, url->port == 80 ? url->host : where);
        request.set(http::field::user_agent, "confab-server");
        request.keep_alive(false);
        for (const auto& [name, value] : req.headers) request.set(name, value);
        if (!req.body.empty() || request.method() == http::verb::post || request.method() == http::verb::put) {
            request.set(http::field::content_type, req.content_type);
            request.body() = req.body;
            request.prepare_payload();
        }
        // Sending counts as part of connecting: an upstream that accepts but never reads is stalled.
        stream.expires_at(deadline);
        {
            auto [ec, n] = co_await http::async_write(stream, request, asio::as_tuple(asio::use_awaitable));
            (void)n;
            if (ec == asio::error::operation_aborted) co_return cancelled_error();
            if (ec == beast::error::timeout) {
                co_return unavailable("sending the request timed out");
            }
            if (ec) co_return unavailable("sending the request failed: " + ec.message());
        }

        beast::flat_buffer buffer;
        http::response_parser<http::buffer_body> parser;
        parser.body_limit(boost::none);  // limits are enforced below, per mode
        auto idle = [&](const char* what) {
            const std::string shown = "the upstream sent nothing for " + std::to_string(req.idle_timeout_ms) +
                                      " ms (" + what + ")";
            return upstream_failure("upstream_timeout", shown, where, shown);
        };
        stream.expires_after(idle_timeout);
        {
            auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
            (void)n;
            if (ec == asio::error::operation_aborted) co_return cancelled_error();
            if (ec == beast::error::timeout) co_return idle("waiting for the response");
            if (ec) co_return upstream_error("reading the upstream's response failed", "reading the head: " + ec.message());
        }
        response.status = parser.get().result_int();
        response.content_type = std::string(parser.get()[http::field::content_type]);
        const bool success = response.status >= 200 && response.status < 300;
        const bool stream_body = success && static_cast<bool>(on_chunk);

        char chunk[16 * 1024];
        std::string error_body;
        while (!parser.is_done()) {
            parser.get().body().data = chunk;
            parser.get().body().size = sizeof chunk;
            stream.expires_after(idle_timeout);
            auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
            (void)n;
            if (ec == http::error::need_buffer) ec = {};
            if (ec == asio::error::operation_aborted) co_return cancelled_error();
            if (ec == beast::error::timeout) co_return idle("reading the body");
            if (ec) co_return upstream_error("reading the upstream's response failed", "reading the body: " + ec.message());
            const std::size_t got = sizeof chunk - parser.get().body().size;
            if (got == 0) continue;
            const std::string_view piece(chunk, got);
            if (!success) {
                if (error_body.size() < kErrorBodyRead) error_body.append(piece.substr(0, kErrorBodyRead - error_body.size()));
                if (error_body.size() >= kErrorBodyRead) break;
            } else if (stream_body) {
                // Waiting for the consumer is not upstream idleness: no timer runs meanwhile.
                stream.expires_never();
                Status st = co_await on_chunk(piece);
                if (!st) {
                    failure = st.error();
                    break;
                }
            } else {
                if (response.body.size() + got > req.max_body_bytes) {
                    const std::string shown = "the upstream's response is larger than " +
                                              std::to_string(req.max_body_bytes) + " bytes";
                    co_return upstream_error(shown, shown);
                }
                response.body.append(piece);
            }
        }
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        if (failure) co_return *failure;
        if (!success) {
            const std::string shown = "the upstream answered HTTP " + std::to_string(response.status);
            co_return upstream_error(shown, shown + (error_body.empty() ? "" : ": " + truncate_utf8(error_body, kErrorBodyShown)));
        }
        co_return response;
    } catch (const boost::system::system_error& e) {
        if (e.code() == asio::error::operation_aborted) {
            failure = cancelled_error();
        } else {
            failure = upstream_error("the upstream request failed", e.what());
        }
    }
    // Reached only from the catch block: a cancellation (or socket error) thrown by asio.
    co_return *failure;
}

}  // namespace confab::server
