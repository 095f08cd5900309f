// The HTTP/1.1 front end: one coroutine per connection on its own strand while it reads requests,
// header/body limits, slowloris and idle time-outs, metrics and one JSON access-log line per
// request. An SSE stream is not that coroutine: once its head is written it is a small SseConn
// (socket, unsent bytes, flags) fed by the hub, with direct non-blocking writes and one sweep for
// all streams' heartbeats and write deadlines; at its end the connection goes back to a request
// loop.
#include "http_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/types.h>

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
#include "confab/sse.hpp"
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

// Feeds the buffered bytes to `parser` as Beast's read operations do (basic_parser::put, then
// consume), without I/O: until the head (`whole`: the whole message) is parsed. Returns
// http::error::need_more when the buffer does not hold enough (the caller then reads on with
// Beast's asynchronous read, which goes on from where this stopped), or the parse error.
beast::error_code parse_buffered(beast::flat_buffer& buffer, http::request_parser<http::string_body>& parser,
                                 bool whole) {
    auto done = [&] { return whole ? parser.is_done() : parser.is_header_done(); };
    if (done()) return {};
    while (buffer.size() > 0) {
        beast::error_code ec;
        const std::size_t used = parser.put(buffer.data(), ec);
        buffer.consume(used);
        if (ec) return ec;
        if (done()) return {};
        if (used == 0) break;
    }
    return http::error::need_more;
}

}  // namespace

class SseConn;

struct ConnState {
    explicit ConnState(asio::any_io_executor ex) : executor(std::move(ex)) {}
    asio::any_io_executor executor;  // the connection's strand
    // Touched only on `executor`:
    beast::tcp_stream* stream = nullptr;  // while a request loop runs
    std::weak_ptr<SseConn> sse;           // while an event stream runs
    bool busy = false;
    bool close_requested = false;
};

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
    Impl(asio::io_context& io, Api& a, Metrics& m, HttpOptions o)
        : ioc(io), api(a), metrics(m), opts(o), acceptor(asio::make_strand(io)),
          sweep_timer(asio::make_strand(io)) {}

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
    std::mutex streams_mu;
    std::unordered_set<std::shared_ptr<SseConn>> streams;  // open event streams, for the sweep
    asio::steady_timer sweep_timer;

    asio::awaitable<void> accept_loop();
    // `initial`: bytes of the next request already read (pipelined behind an event stream).
    asio::awaitable<void> session(tcp::socket socket, std::shared_ptr<ConnState> st, std::string initial);
    void schedule_sweep();
    void forget_conn(const std::shared_ptr<ConnState>& st) {
        std::lock_guard lock(mu);
        conns.erase(st);
    }
    // Moves res.body into the HTTP message (only route/status/workspace are read afterwards).
    asio::awaitable<bool> write_simple(beast::tcp_stream& stream, unsigned version, bool keep_alive,
                                       Response& res);
    void log_request(const std::string& method, const Response& res, double ms, bool stream) const;
    void for_each_conn(void (*fn)(ConnState&));
};

// What the access log says of a stream once it ends.
struct StreamLog {
    std::string method;
    Route route = Route::unmatched;
    int status = 200;
    std::string workspace;
    std::chrono::steady_clock::time_point t0;
};

// An open event stream after its head: the socket, the bytes the socket has not taken yet and a
// few flags. No coroutine and no timer of its own: producers send() from any thread with a direct
// non-blocking send(2) under the mutex; only a short write arms a writability wait on the
// connection's strand; the server's sweep sends heartbeats and drops a stream whose socket took
// nothing for the write time-out. Body bytes go out as HTTP/1.1 chunks (or raw for HTTP/1.0,
// which then ends by closing). At the end the connection goes back to a request loop (keep-alive)
// or closes.
class SseConn final : public StreamOut, public std::enable_shared_from_this<SseConn> {
public:
    SseConn(HttpServer::Impl& server, tcp::socket sock, std::shared_ptr<ConnState> st, bool chunked,
            bool keep_alive, std::string leftover, StreamLog log)
        : server_(server), sock_(std::move(sock)), st_(std::move(st)), chunked_(chunked),
          keep_alive_(keep_alive), leftover_(std::move(leftover)), log_(std::move(log)),
          last_send_(std::chrono::steady_clock::now()) {}

    Sent send(std::string_view bytes) override {
        std::lock_guard lock(mu_);
        if (closed_ || broken_ || finishing_) return Sent::closed;
        if (bytes.empty()) return Sent::ok;
        frame_locked(bytes);
        if (!write_armed_) flush_locked();
        if (broken_) return Sent::closed;
        const std::size_t waiting = out_.size() - off_;
        return waiting == 0 ? Sent::ok : waiting > kBacklogBytes ? Sent::backlogged : Sent::queued;
    }

    void when_drained(std::function<void()> fn) override {
        std::lock_guard lock(mu_);
        if (closed_ || (!write_armed_ && off_ == out_.size())) {
            asio::post(st_->executor, std::move(fn));
        } else {
            drained_.push_back(std::move(fn));
        }
    }

    void on_gone(std::function<void()> fn) override {
        std::lock_guard lock(mu_);
        gone_ = std::move(fn);
    }

    void finish() override {
        std::lock_guard lock(mu_);
        if (closed_ || finishing_) return;
        finishing_ = true;
        if (chunked_) out_.append("0\r\n\r\n");
        if (!write_armed_) flush_locked();
        if (!write_armed_) asio::post(st_->executor, [self = shared_from_this()] { self->complete(); });
    }

    bool closed() const override {
        std::lock_guard lock(mu_);
        return closed_ || broken_;
    }
    asio::any_io_executor executor() const override { return st_->executor; }

    // On the strand, once: caps the kernel's send buffer (autotuning would let a reader that stops
    // reading park megabytes in the kernel before its write deadline could start) and watches
    // for the client closing while the stream is idle.
    void start() {
        boost::system::error_code ec;
        sock_.set_option(asio::socket_base::send_buffer_size(kSocketSendBuffer), ec);
        arm_watch();
    }

    // The server's sweep (any thread): a heartbeat after `heartbeat` of silence; a stream whose
    // socket took nothing for `write_timeout` is dropped (its client resumes with Last-Event-ID).
    void sweep(std::chrono::steady_clock::time_point now, std::chrono::milliseconds heartbeat,
               std::chrono::milliseconds write_timeout) {
        std::lock_guard lock(mu_);
        if (closed_ || broken_) return;
        if (write_armed_) {
            if (now - stalled_since_ >= write_timeout) fail_locked();
        } else if (!finishing_ && now - last_send_ >= heartbeat) {
            static const std::string hb = sse::encode_comment("hb");
            frame_locked(hb);
            flush_locked();
        }
    }

    // Server shutdown (any thread).
    void close_now() {
        std::lock_guard lock(mu_);
        if (!closed_) fail_locked();
    }

private:
    static constexpr std::size_t kBacklogBytes = 64 * 1024;  // then the producer catches it up from the log later
    // 64 KiB per round trip is ~640 KB/s at 100 ms: far above any token rate, and a replay
    // still goes at the speed of the network for any ordinary RTT. Linux doubles it.
    static constexpr int kSocketSendBuffer = 64 * 1024;

    void frame_locked(std::string_view bytes) {
        if (chunked_) {
            char head[20];
            auto [end, ec] = std::to_chars(head, head + sizeof head, bytes.size(), 16);
            out_.append(head, end);
            out_.append("\r\n");
            out_.append(bytes);
            out_.append("\r\n");
        } else {
            out_.append(bytes);
        }
    }

    // Sends what the socket takes now; arms a writability wait for the rest.
    void flush_locked() {
        bool progress = false;
        while (off_ < out_.size()) {
            ssize_t n = ::send(sock_.native_handle(), out_.data() + off_, out_.size() - off_,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                off_ += static_cast<std::size_t>(n);
                progress = true;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            fail_locked();  // reset, broken pipe: the client is gone
            return;
        }
        auto now = std::chrono::steady_clock::now();
        if (progress) last_send_ = now;
        if (off_ == out_.size()) {
            out_.clear();
            off_ = 0;
            if (out_.capacity() > 4096) out_.shrink_to_fit();  // a caught-up stream keeps little
            return;
        }
        if (progress || !write_armed_) stalled_since_ = now;
        if (!write_armed_) {
            write_armed_ = true;
            asio::post(st_->executor, [self = shared_from_this()] { self->arm_writable(); });
        }
    }

    void arm_writable() {  // strand
        std::lock_guard lock(mu_);
        if (closed_) return;
        sock_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](const boost::system::error_code& ec) {
            self->on_writable(ec);
        });
    }

    void on_writable(const boost::system::error_code& ec) {  // strand
        std::vector<std::function<void()>> drained;
        {
            std::lock_guard lock(mu_);
            if (closed_) return;
            if (ec) {
                fail_locked();
                return;
            }
            write_armed_ = false;
            flush_locked();
            if (closed_ || broken_ || write_armed_) return;
            drained.swap(drained_);
            if (finishing_) asio::post(st_->executor, [self = shared_from_this()] { self->complete(); });
        }
        for (auto& fn : drained) fn();
    }

    // The client is gone (or too slow, or the server closes): closes the socket under the mutex,
    // so no sender can use its descriptor after, then tells the producer on the strand.
    void fail_locked() {
        if (closed_) return;
        broken_ = true;
        if (fail_posted_) return;
        fail_posted_ = true;
        asio::post(st_->executor, [self = shared_from_this()] { self->fail(); });
    }

    void fail() {  // strand
        std::function<void()> gone;
        std::vector<std::function<void()>> drained;
        {
            std::lock_guard lock(mu_);
            if (closed_) return;
            closed_ = true;
            broken_ = true;
            boost::system::error_code ec;
            sock_.shutdown(tcp::socket::shutdown_both, ec);
            sock_.close(ec);
            gone.swap(gone_);
            drained.swap(drained_);
            out_.clear();
            out_.shrink_to_fit();
            off_ = 0;
        }
        end(false);
        if (gone) gone();
        for (auto& fn : drained) fn();
    }

    void complete();  // strand: everything, the last chunk included, is sent
    void end(bool ok);  // strand: access log, bookkeeping

    void arm_watch() {  // strand
        std::lock_guard lock(mu_);
        if (closed_) return;
        watch_armed_ = true;
        sock_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const boost::system::error_code& ec) {
            self->on_readable(ec);
        });
    }

    // A client does not send anything while it reads a stream, so the socket becoming readable
    // means it closed (EOF / reset); data instead (a pipelined request) is left for after the stream.
    void on_readable(const boost::system::error_code& ec) {  // strand
        std::lock_guard lock(mu_);
        watch_armed_ = false;
        if (closed_ || ec) return;
        char c;
        ssize_t n = ::recv(sock_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            lock_rearm();
            return;
        }
        if (n <= 0) fail_locked();
    }
    void lock_rearm() {  // strand, under mu_: a spurious wake-up
        watch_armed_ = true;
        sock_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const boost::system::error_code& ec) {
            self->on_readable(ec);
        });
    }

    HttpServer::Impl& server_;
    mutable std::mutex mu_;
    tcp::socket sock_;
    std::shared_ptr<ConnState> st_;
    const bool chunked_;
    const bool keep_alive_;
    std::string leftover_;  // bytes of a pipelined request read before the stream began
    StreamLog log_;
    // Guarded by mu_:
    std::string out_;  // framed bytes; [off_, size) not sent yet
    std::size_t off_ = 0;
    bool write_armed_ = false;  // a writability wait is pending: only it sends
    bool finishing_ = false;
    bool broken_ = false;       // the socket failed or the deadline passed: closing
    bool fail_posted_ = false;
    bool closed_ = false;       // the SSE phase is over (socket closed or handed back)
    bool watch_armed_ = false;
    std::chrono::steady_clock::time_point last_send_;
    std::chrono::steady_clock::time_point stalled_since_;
    std::function<void()> gone_;
    std::vector<std::function<void()>> drained_;
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

namespace {

bool is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// A value Beast would write unchanged: it trims spaces and tabs at both ends; no CR, LF or NUL.
bool plain_value(std::string_view v) {
    if (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t')) return false;
    for (char c : v) {
        if (c == '\r' || c == '\n' || c == '\0') return false;
    }
    return true;
}

// The head of a complete (not streamed) response, byte for byte as Beast's serializer writes the
// message write_simple builds (status line, Server, Content-Type, the route's headers in order,
// Connection as keep_alive() sets it, Content-Length from prepare_payload()), without building a
// Beast message (a heap block per field) and its serializer. False for anything out of the
// ordinary (a header Beast would replace or merge, a name or value it would change, a body on a
// status that must not have one): the caller then lets Beast do it as before.
bool format_head(unsigned version, bool keep_alive, const Response& res, std::string& out) {
    if (res.status < 100 || res.status > 999 || (version != 10 && version != 11)) return false;
    if ((res.status < 200 || res.status == 204 || res.status == 304) && !res.body.empty()) return false;
    if (!plain_value(res.content_type)) return false;
    std::size_t size = 96 + res.content_type.size();
    for (const auto& [k, v] : res.headers) {
        if (k.empty() || !plain_value(v)) return false;
        for (char c : k) {
            if (!is_tchar(static_cast<unsigned char>(c))) return false;
        }
        if (beast::iequals(k, "server") || beast::iequals(k, "content-type") || beast::iequals(k, "connection") ||
            beast::iequals(k, "content-length") || beast::iequals(k, "transfer-encoding")) {
            return false;
        }
        size += k.size() + v.size() + 4;
    }
    out.clear();
    out.reserve(size);
    out += version == 11 ? "HTTP/1.1 " : "HTTP/1.0 ";
    char num[24];
    auto [end, ec] = std::to_chars(num, num + sizeof num, res.status);
    out.append(num, end);
    out += ' ';
    const auto reason = http::obsolete_reason(static_cast<http::status>(res.status));
    out.append(reason.data(), reason.size());
    out += "\r\nServer: confab\r\n";
    if (!res.content_type.empty()) {
        out += "Content-Type: ";
        out += res.content_type;
        out += "\r\n";
    }
    for (const auto& [k, v] : res.headers) {
        out += k;
        out += ": ";
        out += v;
        out += "\r\n";
    }
    if (version == 11 && !keep_alive) out += "Connection: close\r\n";
    if (version == 10 && keep_alive) out += "Connection: keep-alive\r\n";
    out += "Content-Length: ";
    auto [lend, lec] = std::to_chars(num, num + sizeof num, res.body.size());
    out.append(num, lend);
    out += "\r\n\r\n";
    return true;
}

}  // namespace

asio::awaitable<bool> HttpServer::Impl::write_simple(beast::tcp_stream& stream, unsigned version,
                                                     bool keep_alive, Response& res) {
    std::string head;
    if (format_head(version, keep_alive, res, head)) {
        // The socket almost always takes a whole response at once: one sendmsg(2) now, and an
        // asynchronous write (with the write deadline) only for what it did not take.
        std::size_t sent = 0;
        const std::size_t total = head.size() + res.body.size();
        for (;;) {
            iovec iov[2];
            int n_iov = 0;
            if (sent < head.size()) {
                iov[n_iov++] = {head.data() + sent, head.size() - sent};
                if (!res.body.empty()) iov[n_iov++] = {res.body.data(), res.body.size()};
            } else {
                iov[n_iov++] = {res.body.data() + (sent - head.size()), total - sent};
            }
            msghdr msg{};
            msg.msg_iov = iov;
            msg.msg_iovlen = static_cast<decltype(msg.msg_iovlen)>(n_iov);
            const ssize_t n = ::sendmsg(stream.socket().native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                sent += static_cast<std::size_t>(n);
                if (sent == total) co_return true;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            co_return false;  // reset, broken pipe: the client is gone
        }
        std::array<asio::const_buffer, 2> rest{asio::buffer(head), asio::buffer(res.body)};
        if (sent < head.size()) {
            rest[0] += sent;
        } else {
            rest[0] = asio::const_buffer();
            rest[1] += sent - head.size();
        }
        stream.expires_after(std::chrono::milliseconds(opts.write_timeout_ms));
        auto [ec, n] = co_await asio::async_write(stream, rest, kTuple);
        co_return !ec;
    }
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

asio::awaitable<void> HttpServer::Impl::session(tcp::socket socket, std::shared_ptr<ConnState> st,
                                                std::string initial) {
    beast::tcp_stream stream(std::move(socket));
    st->stream = &stream;
    st->sse.reset();
    boost::system::error_code ec;
    stream.socket().set_option(tcp::no_delay(true), ec);
    std::string remote_ip;
    if (auto ep = stream.socket().remote_endpoint(ec); !ec) remote_ip = ep.address().to_string();
    beast::flat_buffer buffer;
    if (!initial.empty()) {
        buffer.commit(asio::buffer_copy(buffer.prepare(initial.size()), asio::buffer(initial)));
        std::string().swap(initial);
    }
    bool handed_off = false;  // the connection went on as an SseConn
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
            // A whole head usually arrives with the first read: parse it from the buffer. Only
            // when more is needed does Beast's asynchronous read run (it posts its completion
            // through the strand even when it did no I/O, a scheduler round trip per request).
            beast::error_code hec = parse_buffered(buffer, parser, false);
            if (hec == http::error::need_more) {
                // One deadline for the whole head: a client trickling bytes cannot hold the connection.
                stream.expires_after(std::chrono::milliseconds(opts.header_timeout_ms));
                auto [rec, rn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
                hec = rec;
            }
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
                // As for the head: the body is most often in the buffer already.
                parser.eager(true);
                beast::error_code bec = parse_buffered(buffer, parser, true);
                if (bec == http::error::need_more) {
                    stream.expires_after(std::chrono::milliseconds(opts.body_timeout_ms));
                    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, kTuple);
                    bec = rec;
                }
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
            api.resolve_client_ip(req);
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
                // From here the stream is a small object, not this coroutine: the request, the
                // parser and the read buffer are freed (bytes of a pipelined request kept).
                std::string leftover;
                if (buffer.size() > 0) leftover = beast::buffers_to_string(buffer.data());
                StreamLog slog{req.method, res.route, res.status, std::move(res.workspace), t0};
                auto conn = std::make_shared<SseConn>(*this, stream.release_socket(), st, chunked, keep_alive,
                                                      std::move(leftover), std::move(slog));
                st->stream = nullptr;
                st->sse = conn;
                {
                    std::lock_guard lock(streams_mu);
                    streams.insert(conn);
                }
                conn->start();
                auto feed = std::move(res.stream);
                feed(conn);
                handed_off = true;
                break;
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
    if (handed_off) co_return;  // the SseConn owns the socket, the busy mark and the ConnState now
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
        asio::co_spawn(strand, session(std::move(socket), st, std::string()), asio::detached);
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

// One sweep for all open streams (not a timer each): heartbeats and write deadlines, a few times
// per heartbeat / time-out period.
void HttpServer::Impl::schedule_sweep() {
    auto period = std::chrono::milliseconds(std::min(opts.heartbeat_ms, opts.write_timeout_ms) / 4);
    period = std::clamp(period, std::chrono::milliseconds(5), std::chrono::milliseconds(1000));
    sweep_timer.expires_after(period);
    sweep_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (ec) return;
        auto now = std::chrono::steady_clock::now();
        {
            std::lock_guard lock(self->streams_mu);
            for (const auto& c : self->streams) {
                c->sweep(now, std::chrono::milliseconds(self->opts.heartbeat_ms),
                         std::chrono::milliseconds(self->opts.write_timeout_ms));
            }
        }
        self->schedule_sweep();
    });
}

void SseConn::complete() {
    tcp::socket sock(st_->executor);
    bool reuse = false;
    std::vector<std::function<void()>> drained;  // they see closed() and let go of the producer
    {
        std::lock_guard lock(mu_);
        if (closed_) return;
        closed_ = true;
        boost::system::error_code ec;
        if (watch_armed_) sock_.cancel(ec);
        reuse = keep_alive_ && !server_.shutting_down.load() && !st_->close_requested;
        if (reuse) {
            sock = std::move(sock_);
        } else {
            sock_.shutdown(tcp::socket::shutdown_send, ec);
            sock_.close(ec);
        }
        gone_ = nullptr;
        drained.swap(drained_);
    }
    end(reuse);
    for (auto& fn : drained) fn();
    if (reuse) {
        asio::co_spawn(st_->executor, server_.session(std::move(sock), st_, std::move(leftover_)), asio::detached);
    }
}

void SseConn::end(bool reused) {
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - log_.t0).count();
    Response r;
    r.route = log_.route;
    r.status = log_.status;
    r.workspace = std::move(log_.workspace);
    server_.log_request(log_.method, r, ms, true);
    st_->busy = false;
    server_.busy.fetch_sub(1);
    if (!reused) {
        st_->sse.reset();
        server_.forget_conn(st_);
    }
    std::lock_guard lock(server_.streams_mu);
    server_.streams.erase(shared_from_this());
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
    asio::post(impl->sweep_timer.get_executor(), [impl] { impl->schedule_sweep(); });
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
        if (auto c = st.sse.lock()) c->close_now();
    });
}

std::size_t HttpServer::connections() const {
    std::lock_guard lock(impl_->mu);
    return impl_->conns.size();
}

std::size_t HttpServer::busy_connections() const { return impl_->busy.load(); }

}  // namespace confab::server
