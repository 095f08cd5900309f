// sse_floor: the floor of the streams benchmark, a server that does nothing but write the frames.
// POST <any path> with a JSON body {"message": "..."}: answers 200 text/event-stream and streams
// confab-server's clock model (one event per character of the message, each token the emit time:
// microseconds of CLOCK_MONOTONIC mod 2^24 as 4 base64url characters, native-server/src/runners.hpp
// clock_stamp) with the same frames (`event: agent-response`, `id: <seq>`, `data: {"token":...}`),
// --delay-ms apart, then `event: completed`, and closes. No identity check, no JSON library, no
// storage, no per-event allocation: one thread, one timer per stream, writes straight to the socket
// (a short write waits for writability). Its CPU per event is what a write of these bytes over
// loopback costs; confab-server and the Node baseline are measured against it in the same run.
// Usage: sse_floor [--port N] [--delay-ms 50]; prints "LISTENING <port>".
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

int g_delay_ms = 50;

std::uint32_t monotonic_us() {
    return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

// The characters (UTF-8 code points) of the body's "message" string; -1 if there is none.
long message_chars(std::string_view body) {
    static constexpr std::string_view key = "\"message\":\"";
    std::size_t at = body.find(key);
    if (at == std::string_view::npos) return -1;
    long n = 0;
    for (std::size_t i = at + key.size(); i < body.size(); ++i) {
        const char c = body[i];
        if (c == '"') return n;
        if (c == '\\') i += i + 1 < body.size() && body[i + 1] == 'u' ? 5 : 1;  // an escape is one character
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    }
    return -1;
}

struct Stream : std::enable_shared_from_this<Stream> {
    explicit Stream(tcp::socket s) : sock(std::move(s)), timer(sock.get_executor()) {}
    tcp::socket sock;
    asio::steady_timer timer;
    std::string in;        // the request, until its body is read
    std::string pending;   // bytes a short write left over
    char buf[4096];
    long count = 0;        // tokens to send
    long seq = 0;
    bool writing = false;  // an async write of `pending` is in flight
    bool closing = false;

    void start() { read(); }

    void read() {
        sock.async_read_some(asio::buffer(buf), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            if (ec) return self->close();
            self->in.append(self->buf, n);
            self->on_request();
        });
    }

    void on_request() {
        const std::size_t end = in.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (in.size() > 65536) return close();
            return read();
        }
        std::size_t length = 0;
        for (std::string_view h : {"Content-Length: ", "content-length: "}) {
            if (auto at = in.find(h); at != std::string::npos && at < end) length = std::strtoul(in.c_str() + at + h.size(), nullptr, 10);
        }
        if (in.size() < end + 4 + length) return read();
        count = message_chars(std::string_view(in).substr(end + 4, length));
        std::string().swap(in);
        if (count < 0) {
            send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            closing = true;
            return;
        }
        send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
             "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n");
        next();
    }

    void next() {
        if (closing) return;
        char frame[96];
        int n;
        if (seq < count) {
            static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            const std::uint32_t us = monotonic_us();
            const char stamp[5] = {digits[(us >> 18) & 63], digits[(us >> 12) & 63], digits[(us >> 6) & 63], digits[us & 63], 0};
            n = std::snprintf(frame, sizeof frame, "event: agent-response\nid: %ld\ndata: {\"token\":\"%s\"}\n\n", ++seq, stamp);
        } else {
            n = std::snprintf(frame, sizeof frame, "event: completed\nid: %ld\ndata: {\"status\":\"success\"}\n\n", ++seq);
            closing = true;
        }
        send(std::string_view(frame, static_cast<std::size_t>(n)));
        if (closing) return;
        timer.expires_after(std::chrono::milliseconds(g_delay_ms));
        timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) self->next();
        });
    }

    // A direct non-blocking write; what does not fit waits for writability (one async write).
    void send(std::string_view bytes) {
        if (writing) {
            pending.append(bytes);
            return;
        }
        boost::system::error_code ec;
        std::size_t done = sock.write_some(asio::buffer(bytes.data(), bytes.size()), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            ec = {};
            done = 0;
        }
        if (ec) return close();
        if (done == bytes.size()) {
            if (closing) close();
            return;
        }
        pending.assign(bytes.substr(done));
        writing = true;
        asio::async_write(sock, asio::buffer(pending), [self = shared_from_this()](boost::system::error_code e, std::size_t) {
            self->writing = false;
            if (e) return self->close();
            self->pending.clear();
            if (self->closing) self->close();
        });
    }

    void close() {
        closing = true;
        timer.cancel();
        boost::system::error_code ec;
        sock.close(ec);
    }
};

void accept(tcp::acceptor& acc) {
    acc.async_accept([&acc](boost::system::error_code ec, tcp::socket s) {
        if (!ec) {
            s.set_option(tcp::no_delay(true));
            s.non_blocking(true);
            std::make_shared<Stream>(std::move(s))->start();
        }
        accept(acc);
    });
}

}  // namespace

int main(int argc, char** argv) {
    unsigned short port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view a = argv[i];
        if (a == "--port") port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
        else if (a == "--delay-ms") g_delay_ms = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: sse_floor [--port N] [--delay-ms 50]\n");
            return 2;
        }
    }
    asio::io_context io(1);
    tcp::acceptor acc(io);
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
    acc.open(ep.protocol());
    acc.set_option(tcp::acceptor::reuse_address(true));
    acc.bind(ep);
    acc.listen(4096);
    std::printf("LISTENING %u\n", acc.local_endpoint().port());
    std::fflush(stdout);
    asio::signal_set stop(io, SIGTERM, SIGINT);
    stop.async_wait([&](boost::system::error_code, int) { io.stop(); });
    accept(acc);
    io.run();
    return 0;
}
