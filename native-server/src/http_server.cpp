// The HTTP/1.1 front end: one coroutine per connection on its own strand (an SSE stream is that
// coroutine plus its buffers, never a thread), header/body limits, slowloris and idle time-outs,
// chunked SSE with awaited writes, metrics and one JSON access-log line per request.
#include "http_server.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "airops_edge.hpp"
#include "request_head.hpp"
#include "util.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace confab::server {

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string json_string(std::string_view s) {
    return protocol::dump(protocol::Json(std::string(s)));
}

}  // namespace

struct ConnState {
    explicit ConnState(asio::any_io_executor ex) : executor(std::move(ex)) {}
    asio::any_io_executor executor;  // the connection's strand
    // Touched only on `executor`:
    beast::tcp_stream* stream = nullptr;
    bool busy = false;
    bool close_requested = false;
};

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
    Impl(asio::io_context& io, Api& a, Metrics& m, HttpOptions o)
        : ioc(io), api(a), metrics(m), opts(o), acceptor(asio::make_strand(io)) {}

    asio::io_context& ioc;
    Api& api;
    Metrics& metrics;
    HttpOptions opts;
    AiropsEdge* airops = nullptr;
    tcp::acceptor acceptor;
    std::atomic<bool> shutting_down{false};
    std::atomic<std::size_t> busy{0};
    mutable std::mutex mu;
    std::unordered_set<std::shared_ptr<ConnState>> conns;

    asio::awaitable<void> accept_loop();
    asio::awaitable<void> session(tcp::socket socket, std::shared_ptr<ConnState> st);
    // Moves res.body into the HTTP message (only route/status/workspace are read afterwards).
    asio::awaitable<bool> write_simple(beast::tcp_stream& stream, unsigned version, bool keep_alive,
                                       Response& res);
    void log_request(const std::string& method, const Response& res, double ms, bool stream) const;
    void for_each_conn(void (*fn)(ConnState&));
};

// Writes the bytes of an SSE body as HTTP/1.1 chunks (or raw bytes for HTTP/1.0, which then
// ends by closing). Every write has a deadline: a client that stops reading is dropped instead
// of holding buffers forever.
class ChunkSink final : public EventSink {
public:
    ChunkSink(beast::tcp_stream& s, std::chrono::milliseconds timeout, bool chunked)
        : stream_(s), timeout_(timeout), chunked_(chunked) {}

    ~ChunkSink() override { stop_watching(); }

    void on_client_gone(std::function<void()> fn) override {
        watch_ = std::make_shared<Watch>();
        watch_->fn = std::move(fn);
        arm(watch_);
    }

    asio::awaitable<bool> write(std::string bytes) override {
        if (watch_ && watch_->gone) ok_ = false;
        if (!ok_ || bytes.empty()) co_return ok_;
        stream_.expires_after(timeout_);
        boost::system::error_code ec;
        if (chunked_) {
            auto chunk = http::make_chunk(asio::buffer(bytes));
            std::tie(ec, std::ignore) = co_await asio::async_write(stream_, chunk, kTuple);
        } else {
            std::tie(ec, std::ignore) = co_await asio::async_write(stream_, asio::buffer(bytes), kTuple);
        }
        if (ec) ok_ = false;
        co_return ok_;
    }
    bool ok() const { return ok_; }

    // Ends the watch before the connection is used for anything else.
    void stop_watching() {
        if (!watch_) return;
        watch_->active = false;
        if (watch_->armed) {
            boost::system::error_code ec;
            stream_.socket().cancel(ec);  // only the readability wait is pending here
        }
        watch_.reset();
    }

private:
    // A client does not send anything while it reads a stream, so the socket becoming readable
    // means it closed (EOF / reset). Everything runs on the connection's strand.
    struct Watch {
        std::function<void()> fn;
        bool active = true;
        bool armed = false;
        bool gone = false;
    };
    void arm(const std::shared_ptr<Watch>& w) {
        w->armed = true;
        auto& sock = stream_.socket();
        sock.async_wait(tcp::socket::wait_read, [w, &sock](const boost::system::error_code& ec) {
            w->armed = false;
            if (!w->active || ec) return;
            char c;
            boost::system::error_code pec;
            boost::system::error_code ignore;
            sock.non_blocking(true, ignore);  // a spurious wake-up must not block the thread
            std::size_t n = sock.receive(asio::buffer(&c, 1), tcp::socket::message_peek, pec);
            sock.non_blocking(false, ignore);
            if (pec == asio::error::would_block) return;
            if (pec || n == 0) {
                w->gone = true;
                if (w->fn) w->fn();
            }
            // Data instead (a pipelined request): leave it for after the stream.
        });
    }

    beast::tcp_stream& stream_;
    std::chrono::milliseconds timeout_;
    bool chunked_;
    bool ok_ = true;
    std::shared_ptr<Watch> watch_;
};

void HttpServer::Impl::log_request(const std::string& method, const Response& res, double ms,
                                   bool stream) const {
    if (!opts.access_log) return;
    char dur[32];
    std::snprintf(dur, sizeof dur, "%.3f", ms);
    std::string line = "{\"ts\":" + std::to_string(now_ms()) + ",\"method\":" + json_string(method) +
                       ",\"route\":" + json_string(route_label(res.route)) +
                       ",\"status\":" + std::to_string(res.status) + ",\"ms\":" + dur +
                       ",\"workspace\":" + json_string(res.workspace);
    if (stream) line += ",\"stream\":true";
    line += "}";
    log_line(line);
}

asio::awaitable<bool> HttpServer::Impl::write_simple(beast::tcp_stream& stream, unsigned version,
                                                     bool keep_alive, Response& res) {
    http::response<http::string_body> r{static_cast<http::status>(res.status), version};
    r.set(http::field::server, "confab");
    if (!res.content_type.empty()) r.set(http::field::content_type, res.content_type);
    for (const auto& [k, v] : res.headers) r.insert(k, v);
    r.body() = std::move(res.body);
    r.keep_alive(keep_alive);
    r.prepare_payload();
    stream.expires_after(std::chrono::milliseconds(opts.write_timeout_ms));
    auto [ec, n] = co_await http::async_write(stream, r, kTuple);
    co_return !ec;
}

asio::awaitable<void> HttpServer::Impl::session(tcp::socket socket, std::shared_ptr<ConnState> st) {
    beast::tcp_stream stream(std::move(socket));
    st->stream = &stream;
    boost::system::error_code ec;
    stream.socket().set_option(tcp::no_delay(true), ec);
    std::string remote_ip;
    if (auto ep = stream.socket().remote_endpoint(ec); !ec) remote_ip = ep.address().to_string();
    beast::flat_buffer buffer;
    bool counted_busy = false;
    auto set_busy = [&](bool b) {
        st->busy = b;
        if (b != counted_busy) {
            counted_busy = b;
            if (b) {
                busy.fetch_add(1);
            } else {
                busy.fetch_sub(1);
            }
        }
    };

    try {
        for (;;) {
            set_busy(false);
            if (shutting_down.load() || st->close_requested) break;
            if (buffer.size() == 0) {
                // Idle keep-alive: wait for the first byte of the next request.
                stream.expires_after(std::chrono::milliseconds(opts.idle_timeout_ms));
                auto [rec, n] = co_await stream.async_read_some(buffer.prepare(4096), kTuple);
                if (rec) break;
                buffer.commit(n);
            }
            set_busy(true);
            auto t0 = std::chrono::steady_clock::now();
            // Optional so that its header fields are freed before a long stream starts.
            std::optional<http::request_parser<http::string_body>> parser_slot(std::in_place);
            auto& parser = *parser_slot;
            parser.header_limit(static_cast<std::uint32_t>(opts.max_header_bytes));
            parser.body_limit(opts.max_body_bytes);
            // One deadline for the whole head: a client trickling bytes cannot hold the connection.
            stream.expires_after(std::chrono::milliseconds(opts.header_timeout_ms));
            auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
            Response early;
            bool have_early = false;
            if (hec) {
                if (hec == http::error::body_limit) {  // Content-Length over the limit
                    early.status = 413;
                    early.body = R"({"error":"request body larger than )" + std::to_string(opts.max_body_bytes) +
                                 R"( bytes","code":"too_large"})";
                    have_early = true;
                } else if (hec == http::error::header_limit) {
                    early.status = 431;
                    early.body = R"({"error":"request header fields too large","code":"header_too_large"})";
                    have_early = true;
                } else if (hec == beast::error::timeout || hec == http::error::end_of_stream ||
                           hec == asio::error::eof || hec == asio::error::operation_aborted ||
                           hec == asio::error::connection_reset) {
                    break;
                } else if (hec == http::error::bad_transfer_encoding) {  // duplicate chunked, or after Content-Length
                    early.status = 400;
                    early.body = R"({"error":"Transfer-Encoding: not allowed with Content-Length or twice with chunked","code":"bad_request"})";
                    have_early = true;
                } else if (hec == http::error::bad_content_length || hec == http::error::multiple_content_length) {
                    early.status = 400;
                    early.body = R"({"error":"Content-Length: must be one non-negative decimal number, without Transfer-Encoding","code":"bad_request"})";
                    have_early = true;
                } else {
                    early.status = 400;
                    early.body = R"({"error":"malformed HTTP request","code":"bad_request"})";
                    have_early = true;
                }
            }
            // Framing checks Beast does not make (request smuggling), before any body byte is read.
            // Beast already refuses a bad or repeated Content-Length, and Content-Length with
            // chunked; what is left concerns Transfer-Encoding only, so a request without one (all
            // but a few) skips it.
            if (const auto& head_msg = parser.get();
                !have_early && head_msg.find(http::field::transfer_encoding) != head_msg.end()) {
                RequestHead head;
                head.method = head_msg.method_string();
                head.target = head_msg.target();
                head.version = head_msg.version();
                for (auto f : {http::field::transfer_encoding, http::field::content_length}) {
                    auto [b, e] = head_msg.equal_range(f);
                    for (; b != e; ++b) head.fields.push_back({b->name_string(), b->value()});
                }
                if (auto bad = check_request_head(head)) {
                    early.status = bad->status;
                    early.body = R"({"error":)" + json_string(bad->message) + R"(,"code":)" +
                                 json_string(bad->code) + "}";
                    have_early = true;
                }
            }
            if (!have_early) {
                auto len = parser.content_length();
                if (len && *len > opts.max_body_bytes) {
                    early.status = 413;
                    early.body = R"({"error":"request body larger than )" + std::to_string(opts.max_body_bytes) +
                                 R"( bytes","code":"too_large"})";
                    have_early = true;
                }
            }
            if (!have_early && !parser.is_done()) {
                auto expect = parser.get()[http::field::expect];
                if (beast::iequals(expect, "100-continue")) {
                    static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
                    stream.expires_after(std::chrono::milliseconds(opts.write_timeout_ms));
                    auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(cont.data(), cont.size()), kTuple);
                    if (wec) break;
                }
                stream.expires_after(std::chrono::milliseconds(opts.body_timeout_ms));
                auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kTuple);
                if (bec == http::error::body_limit) {
                    early.status = 413;
                    early.body = R"({"error":"request body larger than )" + std::to_string(opts.max_body_bytes) +
                                 R"( bytes","code":"too_large"})";
                    have_early = true;
                } else if (bec) {
                    if (bec == beast::error::timeout || bec == asio::error::eof ||
                        bec == http::error::partial_message || bec == asio::error::operation_aborted) {
                        break;
                    }
                    early.status = 400;
                    early.body = R"({"error":"malformed HTTP request body","code":"bad_request"})";
                    have_early = true;
                }
            }
            if (have_early) {
                // The rest of the request is unread: answer and close.
                std::string method = hec ? "?" : std::string(parser.get().method_string());
                early.close = true;
                bool written = co_await write_simple(stream, 11, false, early);
                double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                metrics.record(early.route, early.status, secs);
                log_request(method, early, secs * 1000, false);
                if (written) {
                    // Lingering close: closing with unread request bytes would send a reset that
                    // can destroy the response before the client reads it. Discard what the client
                    // is still sending, for a bounded time and size.
                    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
                    stream.expires_after(std::chrono::milliseconds(1000));
                    std::size_t drained = 0;
                    // On the heap: an array here would sit in every connection's coroutine frame
                    // (16 KiB per open stream), not only in the rare connection that drains.
                    std::vector<char> sink(16384);
                    while (drained < (8u << 20)) {
                        auto [dec, dn] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
                        if (dec) break;
                        drained += dn;
                    }
                }
                break;
            }

            // ---- WebSocket hand-off (the AirOps edge's Pusher endpoint): the connection is the
            // edge's from here. It idles like a keep-alive connection, so shutdown closes it.
            if (airops && beast::websocket::is_upgrade(parser.get()) &&
                AiropsEdge::is_websocket_target(parser.get().target())) {
                set_busy(false);
                co_await airops->serve_websocket(stream, parser.release());
                break;
            }
            // ---- end of the WebSocket hand-off

            auto& msg = parser.get();
            Request req;
            req.method = std::string(msg.method_string());
            req.target = std::string(msg.target());
            auto split = split_target(req.target);
            req.path = std::move(split.path);
            req.query = std::move(split.query);
            req.headers.reserve(16);
            for (const auto& f : msg) req.headers.emplace_back(ascii_lower(f.name_string()), std::string(f.value()));
            req.body = std::move(msg.body());
            req.remote_ip = remote_ip;
            const unsigned version = msg.version();
            const bool client_keep_alive = msg.keep_alive();
            parser_slot.reset();  // everything needed is in `req` now

            Response res = co_await api.handle(req);
            bool keep_alive = client_keep_alive && !res.close && !shutting_down.load();

            if (res.stream) {
                http::response<http::empty_body> head{static_cast<http::status>(res.status), version};
                head.set(http::field::server, "confab");
                head.set(http::field::content_type, res.content_type);
                for (const auto& [k, v] : res.headers) head.insert(k, v);
                const bool chunked = version >= 11;
                if (chunked) {
                    head.chunked(true);
                } else {
                    keep_alive = false;  // HTTP/1.0: the end of the stream is the end of the connection
                }
                head.keep_alive(keep_alive);
                http::response_serializer<http::empty_body> sr{head};
                stream.expires_after(std::chrono::milliseconds(opts.write_timeout_ms));
                auto [wec, wn] = co_await http::async_write_header(stream, sr, kTuple);
                double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                metrics.record(res.route, res.status, secs);
                if (wec) {
                    log_request(req.method, res, secs * 1000, true);
                    break;
                }
                // A stream reads nothing until it ends: give the read buffer back meanwhile
                // (4 KiB per open stream), unless a pipelined request is waiting in it.
                if (buffer.size() == 0) buffer.shrink_to_fit();
                ChunkSink sink(stream, std::chrono::milliseconds(opts.write_timeout_ms), chunked);
                co_await res.stream(sink);
                sink.stop_watching();
                bool ok = sink.ok();
                if (ok && chunked) {
                    stream.expires_after(std::chrono::milliseconds(opts.write_timeout_ms));
                    auto [lec, ln] = co_await asio::async_write(stream, http::make_chunk_last(), kTuple);
                    ok = !lec;
                }
                double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                log_request(req.method, res, total * 1000, true);
                if (!ok || !keep_alive) break;
            } else {
                bool ok = co_await write_simple(stream, version, keep_alive, res);
                double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                metrics.record(res.route, res.status, secs);
                log_request(req.method, res, secs * 1000, false);
                if (!ok || !keep_alive) break;
            }
        }
    } catch (const std::exception& e) {
        log_line(std::string(R"({"level":"error","msg":"connection failed","reason":)") + json_string(e.what()) + "}");
    }
    set_busy(false);
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.close();
    st->stream = nullptr;
    std::lock_guard lock(mu);
    conns.erase(st);
}

asio::awaitable<void> HttpServer::Impl::accept_loop() {
    for (;;) {
        asio::any_io_executor strand = asio::make_strand(ioc);
        auto [ec, socket] = co_await acceptor.async_accept(strand, kTuple);
        if (ec) {
            if (!acceptor.is_open() || ec == asio::error::operation_aborted) break;
            // Out of file descriptors and the like: back off instead of spinning.
            asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
            co_await t.async_wait(kTuple);
            continue;
        }
        if (shutting_down.load()) {
            boost::system::error_code ignore;
            socket.close(ignore);
            continue;
        }
        auto st = std::make_shared<ConnState>(strand);
        {
            std::lock_guard lock(mu);
            conns.insert(st);
        }
        asio::co_spawn(strand, session(std::move(socket), st), asio::detached);
    }
}

void HttpServer::Impl::for_each_conn(void (*fn)(ConnState&)) {
    std::vector<std::shared_ptr<ConnState>> all;
    {
        std::lock_guard lock(mu);
        all.assign(conns.begin(), conns.end());
    }
    for (auto& st : all) {
        asio::post(st->executor, [st, fn] { fn(*st); });
    }
}

HttpServer::HttpServer(asio::io_context& ioc, Api& api, Metrics& metrics, HttpOptions options)
    : impl_(std::make_shared<Impl>(ioc, api, metrics, options)) {}

HttpServer::~HttpServer() = default;

Result<std::uint16_t> HttpServer::listen(const std::string& host, std::uint16_t port) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) return make_error("listen_failed", "--listen: '" + host + "' is not an IP address");
    tcp::endpoint ep(addr, port);
    auto& acc = impl_->acceptor;
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        return make_error("listen_failed", "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
    }
    return acc.local_endpoint().port();
}

void HttpServer::set_airops_edge(AiropsEdge* edge) { impl_->airops = edge; }

void HttpServer::start() {
    auto impl = impl_;
    asio::co_spawn(impl->acceptor.get_executor(),
                   [impl]() -> asio::awaitable<void> { co_await impl->accept_loop(); }, asio::detached);
}

void HttpServer::stop_accepting() {
    auto impl = impl_;
    impl->shutting_down.store(true);
    asio::post(impl->acceptor.get_executor(), [impl] {
        boost::system::error_code ec;
        impl->acceptor.close(ec);
    });
}

void HttpServer::begin_shutdown() {
    impl_->shutting_down.store(true);
    impl_->for_each_conn([](ConnState& st) {
        st.close_requested = true;
        if (!st.busy && st.stream) st.stream->cancel();
    });
}

void HttpServer::close_all() {
    impl_->for_each_conn([](ConnState& st) {
        st.close_requested = true;
        if (st.stream) {
            boost::system::error_code ec;
            st.stream->socket().shutdown(tcp::socket::shutdown_both, ec);
            st.stream->cancel();
        }
    });
}

std::size_t HttpServer::connections() const {
    std::lock_guard lock(impl_->mu);
    return impl_->conns.size();
}

std::size_t HttpServer::busy_connections() const { return impl_->busy.load(); }

}  // namespace confab::server
