// PgListener: a non-blocking libpq connection that LISTENs for the store's notifications, its
// socket watched by Asio, reconnecting with backoff.
#include "pg_listener.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <optional>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <libpq-fe.h>

#include "confab/protocol.hpp"
#include "store.hpp"
#include "util.hpp"

namespace asio = boost::asio;

namespace confab::server {

namespace {

std::string trimmed_error(PGconn* c) {
    std::string s = c != nullptr ? PQerrorMessage(c) : "out of memory";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

bool parse_i64(std::string_view s, std::int64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

constexpr std::chrono::milliseconds kConnectTimeout{10000};
constexpr std::chrono::milliseconds kMaxBackoff{5000};

}  // namespace

bool PgListener::parse(const std::string& payload, Parsed& out) {
    if (payload.size() < 3 || payload[1] != ' ') return false;
    const char kind = payload[0];
    std::string_view rest = std::string_view(payload).substr(2);
    if (kind == 'j') {
        auto sp = rest.find(' ');
        if (sp == std::string_view::npos) return false;
        std::int64_t first = 0, last = 0;
        if (!parse_i64(rest.substr(0, sp), first) || !parse_i64(rest.substr(sp + 1), last)) return false;
        if (first > last || first < 0) return false;
        out.kind = kind;
        out.first = first;
        out.last = last;
        out.id.clear();
        return true;
    }
    if (kind == 'd' || kind == 'c') {
        if (rest.empty() || rest.size() > 128 || rest.find(' ') != std::string_view::npos) return false;
        out.kind = kind;
        out.id.assign(rest);
        out.first = out.last = 0;
        return true;
    }
    return false;
}

struct PgListener::Impl : std::enable_shared_from_this<PgListener::Impl> {
    Impl(asio::io_context& ioc, std::string u, Callbacks cb)
        : strand(asio::make_strand(ioc)), url(std::move(u)), callbacks(std::move(cb)), sd(strand),
          retry(strand), deadline(strand) {}

    asio::strand<asio::io_context::executor_type> strand;
    const std::string url;
    const Callbacks callbacks;
    // Touched on the strand only:
    PGconn* conn = nullptr;
    asio::posix::stream_descriptor sd;  // wraps PQsocket(conn) without owning it (released before PQfinish)
    asio::steady_timer retry, deadline;
    enum class State { idle, connecting, sending, listen_sent, listening, stopped } state = State::idle;
    PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
    std::uint64_t generation = 0;  // bumped whenever the connection is dropped: stale waits ignore it
    std::chrono::milliseconds backoff{100};
    bool lost_logged = false;  // "lost" was logged; "back" is logged once listening again
    std::atomic<std::uint64_t> delivered{0};

    void start() {
        asio::post(strand, [self = shared_from_this()] { self->connect(); });
    }

    void stop() {
        asio::post(strand, [self = shared_from_this()] {
            self->state = State::stopped;
            self->retry.cancel();
            self->close();
        });
    }

    void close() {
        ++generation;
        deadline.cancel();
        if (sd.is_open()) {
            boost::system::error_code ec;
            sd.cancel(ec);
            (void)sd.release();  // libpq owns the socket and closes it
        }
        if (conn != nullptr) {
            PQfinish(conn);
            conn = nullptr;
        }
    }

    void lost(const std::string& why) {
        if (state == State::stopped) return;
        close();
        if (!lost_logged) {
            lost_logged = true;
            log_line(R"({"level":"warn","msg":"the notification connection to the database is lost; reconnecting","reason":)" +
                     protocol::dump(protocol::Json(why)) + "}");
        }
        state = State::idle;
        retry.expires_after(backoff);
        backoff = std::min(backoff * 2, kMaxBackoff);
        retry.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec && self->state == State::idle) self->connect();
        });
    }

    void connect() {
        if (state == State::stopped) return;
        const char* keys[] = {"connect_timeout", "application_name", "client_encoding", "keepalives_idle",
                              "keepalives_interval", "keepalives_count", "dbname", nullptr};
        const char* vals[] = {"5", "confab-server-listen", "UTF8", "10", "5", "3", url.c_str(), nullptr};
        conn = PQconnectStartParams(keys, vals, /*expand_dbname=*/1);
        if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) {
            lost(trimmed_error(conn));
            return;
        }
        state = State::connecting;
        polling = PGRES_POLLING_WRITING;
        const std::uint64_t gen = generation;
        deadline.expires_after(kConnectTimeout);
        deadline.async_wait([self = shared_from_this(), gen](boost::system::error_code ec) {
            if (!ec && gen == self->generation && self->state == State::connecting) {
                self->lost("connecting timed out");
            }
        });
        wait_socket(polling == PGRES_POLLING_READING);
    }

    // Points `sd` at the connection's current socket (libpq may change it while connecting) and
    // waits for it to be readable (or writable).
    void wait_socket(bool read) {
        const int fd = PQsocket(conn);
        if (fd < 0) {
            lost("the connection has no socket");
            return;
        }
        if (!sd.is_open() || sd.native_handle() != fd) {
            if (sd.is_open()) (void)sd.release();
            boost::system::error_code ec;
            sd.assign(fd, ec);
            if (ec) {
                lost(ec.message());
                return;
            }
        }
        const std::uint64_t gen = generation;
        sd.async_wait(read ? asio::posix::descriptor_base::wait_read : asio::posix::descriptor_base::wait_write,
                      [self = shared_from_this(), gen](boost::system::error_code ec) {
                          if (gen != self->generation || self->state == State::stopped) return;
                          if (ec) {
                              self->lost(ec.message());
                              return;
                          }
                          self->ready();
                      });
    }

    void ready() {
        switch (state) {
            case State::connecting: {
                polling = PQconnectPoll(conn);
                if (polling == PGRES_POLLING_FAILED) {
                    lost(trimmed_error(conn));
                } else if (polling == PGRES_POLLING_OK) {
                    deadline.cancel();
                    if (PQsetnonblocking(conn, 1) != 0 ||
                        PQsendQuery(conn, (std::string("LISTEN ") + Store::kNotifyChannel).c_str()) == 0) {
                        lost(trimmed_error(conn));
                        return;
                    }
                    state = State::sending;
                    send_more();
                } else {
                    wait_socket(polling == PGRES_POLLING_READING);
                }
                return;
            }
            case State::sending:
                send_more();
                return;
            case State::listen_sent:
            case State::listening:
                read_more();
                return;
            default:
                return;
        }
    }

    void send_more() {
        const int r = PQflush(conn);
        if (r < 0) {
            lost(trimmed_error(conn));
        } else if (r == 1) {
            wait_socket(false);
        } else {
            state = State::listen_sent;
            wait_socket(true);
        }
    }

    void read_more() {
        if (PQconsumeInput(conn) == 0) {
            lost(trimmed_error(conn));
            return;
        }
        while (PQisBusy(conn) == 0) {
            PGresult* r = PQgetResult(conn);
            if (r == nullptr) break;
            const ExecStatusType st = PQresultStatus(r);
            PQclear(r);
            if (state == State::listen_sent) {
                if (st != PGRES_COMMAND_OK) {
                    lost(trimmed_error(conn));
                    return;
                }
                state = State::listening;
                backoff = std::chrono::milliseconds(100);
                if (lost_logged) {
                    lost_logged = false;
                    log_line(R"({"level":"info","msg":"the notification connection to the database is back"})");
                }
                // Whatever was notified while nobody listened is caught up by the user.
                if (callbacks.resync) callbacks.resync();
            }
        }
        if (PQstatus(conn) == CONNECTION_BAD) {
            lost(trimmed_error(conn));
            return;
        }
        // Everything libpq has read is handed on now: nothing queues here.
        while (PGnotify* n = PQnotifies(conn)) {
            const std::string channel = n->relname != nullptr ? n->relname : "";
            const std::string payload = n->extra != nullptr ? n->extra : "";
            PQfreemem(n);
            if (channel != Store::kNotifyChannel) continue;
            Parsed p;
            if (!parse(payload, p)) continue;  // a payload of another version: not ours to act on
            delivered.fetch_add(1, std::memory_order_relaxed);
            if (p.kind == 'j' && callbacks.journal) callbacks.journal(p.first, p.last);
            if (p.kind == 'd' && callbacks.done) callbacks.done(p.id);
            if (p.kind == 'c' && callbacks.cancel) callbacks.cancel(p.id);
        }
        if (conn != nullptr) wait_socket(true);
    }
};

PgListener::PgListener(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

PgListener::~PgListener() { stop(); }

std::shared_ptr<PgListener> PgListener::create(asio::io_context& ioc, std::string url, Callbacks callbacks) {
    auto impl = std::make_shared<Impl>(ioc, std::move(url), std::move(callbacks));
    return std::shared_ptr<PgListener>(new PgListener(std::move(impl)));
}

void PgListener::start() { impl_->start(); }

void PgListener::stop() { impl_->stop(); }

std::uint64_t PgListener::delivered() const { return impl_->delivered.load(std::memory_order_relaxed); }

}  // namespace confab::server
