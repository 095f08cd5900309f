// The LISTEN side of several instances on one PostgreSQL database: a libpq connection of its own
// that LISTENs on Store::kNotifyChannel and hands the notifications (store.hpp) to its user.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

namespace confab::server {

// Non-blocking: the connection's socket is watched by Asio (posix::stream_descriptor, wait_read),
// no thread ever blocks in libpq. Callbacks run on the listener's strand, one at a time, in the
// order the database delivered the notifications; they must be quick (the hub coalesces).
// Bounded: each readable event drains what libpq read (at most what the socket held) and hands
// every notification on before reading more, so a flood costs the kernel's socket buffer, not a
// queue here.
// When the connection drops it reconnects with backoff (100 ms doubling to 5 s, one log line when
// lost and one when back) and, once LISTENing again, calls on_resync: notifications sent meanwhile
// were not delivered to anyone. on_resync is called after the first LISTEN too.
class PgListener {
public:
    struct Callbacks {
        std::function<void(std::int64_t first, std::int64_t last)> journal;  // "j first last"
        std::function<void(const std::string& execution_id)> done;          // "d id"
        std::function<void(const std::string& execution_id)> cancel;        // "c id"
        std::function<void()> resync;
    };

    static std::shared_ptr<PgListener> create(boost::asio::io_context& ioc, std::string url, Callbacks callbacks);
    ~PgListener();

    void start();
    // Closes the connection; no callback runs after the strand has run the stop.
    void stop();

    // What a payload says, for the parser's tests; false for anything malformed.
    struct Parsed {
        char kind = 0;  // 'j', 'd' or 'c'
        std::int64_t first = 0, last = 0;
        std::string id;
    };
    static bool parse(const std::string& payload, Parsed& out);

    // Notifications handed on since start (for tests and logs).
    std::uint64_t delivered() const;

private:
    struct Impl;
    explicit PgListener(std::shared_ptr<Impl> impl);
    std::shared_ptr<Impl> impl_;  // shared with the handlers it has pending
};

}  // namespace confab::server
