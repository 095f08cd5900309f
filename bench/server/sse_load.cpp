// sse_load: the bounded SSE client of the streams benchmark. Opens N concurrent streams (one
// POST each, single-threaded epoll via Asio), counts the events each receives, and measures
// per-event emit-to-arrival latency and the server's RSS/CPU over a fixed window; prints one JSON
// line. With --paths-file each stream is a GET of its own path instead (readers of runs started
// elsewhere: the cluster benchmark follows runs owned by another instance); --also-pid and
// --tree-pid add the CPU of other processes over the same window (the owner instance; the
// PostgreSQL postmaster and all its children).
//
// Latency of an event = its arrival - its emit time. Every server under test streams the clock
// model (native-server/src/runners.hpp, clock_stamp): each token is the emit time, microseconds of
// CLOCK_MONOTONIC mod 2^24 as 4 base64url characters, read by the server just before it hands the
// token over (confab-server: before storing it). The clock is the machine's, so arrival - stamp
// (mod 2^24 us = 16.7 s) is the whole delay: stored, scheduled, written and read, constant parts
// included (an inter-arrival measure hides those).
#include <sys/resource.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    int streams = 100;
    std::string path = "/v1/apps/clock-50ms/chat";
    std::vector<std::string> headers;  // "Name: value"
    std::string body = R"({"message":"hello"})";
    int period_ms = 50;
    int connect_parallel = 256;  // connects in flight at once (the listen backlog is finite)
    int source_ips = 4;          // 127.0.0.1 .. 127.0.0.<n>: more ephemeral ports
    double ramp_timeout_s = 60;  // all streams must have seen an event by then
    double settle_s = 1;
    double window_s = 5;
    int server_pid = 0;
    std::vector<std::string> paths;  // --paths-file: stream i GETs paths[i % size]
    std::vector<int> also_pids;      // --also-pid: their CPU summed into alsoCpuSeconds
    int tree_pid = 0;                // --tree-pid: CPU of it and its children (treeCpuSeconds)
};

struct ProcSample {
    double cpu_s = 0;     // utime + stime
    long rss_kib = 0;     // VmRSS
    long hwm_kib = 0;     // VmHWM
};

ProcSample sample_proc(int pid) {
    ProcSample s;
    if (pid <= 0) return s;
    {
        std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
        std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        auto rp = all.rfind(')');
        if (rp != std::string::npos) {
            std::istringstream in(all.substr(rp + 2));
            std::string field;
            unsigned long long utime = 0, stime = 0;
            // Fields after the comm: state(3) ... utime(14) stime(15).
            for (int i = 3; i <= 15 && in >> field; ++i) {
                if (i == 14) utime = std::stoull(field);
                if (i == 15) stime = std::stoull(field);
            }
            s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
        }
    }
    std::ifstream st("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(st, line)) {
        if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::atol(line.c_str() + 6);
        if (line.rfind("VmHWM:", 0) == 0) s.hwm_kib = std::atol(line.c_str() + 6);
    }
    return s;
}

// CPU seconds of `root` and of its live children, plus what its reaped children used (cutime,
// cstime): a child that exits during the window moves its whole time into the root's c*time,
// so the sum stays monotonic (PostgreSQL's backends are direct children of the postmaster).
double tree_cpu_s(int root) {
    if (root <= 0) return 0;
    const double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
    double total = 0;
    auto read_stat = [](const std::string& file, int& ppid, unsigned long long t[4]) {
        std::ifstream f(file);
        std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        auto rp = all.rfind(')');
        if (rp == std::string::npos) return false;
        std::istringstream in(all.substr(rp + 2));
        std::string field;
        for (int i = 3; i <= 17 && in >> field; ++i) {
            if (i == 4) ppid = std::atoi(field.c_str());
            if (i >= 14) t[i - 14] = std::stoull(field);  // utime stime cutime cstime
        }
        return true;
    };
    for (const auto& e : std::filesystem::directory_iterator("/proc", std::filesystem::directory_options::skip_permission_denied)) {
        const std::string name = e.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        const int pid = std::atoi(name.c_str());
        int ppid = 0;
        unsigned long long t[4] = {0, 0, 0, 0};
        if (!read_stat(e.path().string() + "/stat", ppid, t)) continue;
        if (pid == root) total += static_cast<double>(t[0] + t[1] + t[2] + t[3]);
        else if (ppid == root) total += static_cast<double>(t[0] + t[1]);
    }
    return total / tck;
}

double self_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Lag histogram in 100 us buckets up to 30 s (the last bucket holds everything above).
struct Histogram {
    std::vector<std::uint64_t> buckets = std::vector<std::uint64_t>(300001, 0);
    std::uint64_t count = 0;
    void add(double ms) {
        auto b = static_cast<std::size_t>(std::max(0.0, ms) * 10.0);
        buckets[std::min(b, buckets.size() - 1)]++;
        ++count;
    }
    double percentile(double p) const {
        if (count == 0) return -1;
        auto want = static_cast<std::uint64_t>(p / 100.0 * static_cast<double>(count - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets.size(); ++i) {
            seen += buckets[i];
            if (seen >= want) return static_cast<double>(i) / 10.0;
        }
        return static_cast<double>(buckets.size()) / 10.0;
    }
};

struct Shared;

struct Conn : std::enable_shared_from_this<Conn> {
    Conn(asio::io_context& io, Shared& sh, int index) : sock(io), shared(sh), idx(index) {}
    tcp::socket sock;
    Shared& shared;
    int idx;
    std::string request;
    char buf[4096];
    std::string carry;  // an event not yet complete (events are ~60 bytes; heartbeats shorter)
    bool headers_done = false;
    std::string head;
    int status = 0;
    bool first_event = false;
    bool done = false;
    void start();
    void on_connect(const boost::system::error_code& ec);
    void read();
    void on_data(std::size_t n);
    void finish(const char* why);
};

struct Shared {
    asio::io_context& io;
    Options opt;
    tcp::endpoint server;
    int next = 0;          // next stream to open
    int connecting = 0;
    int live = 0;          // connected and not finished
    int got_first = 0;     // streams that received at least one event
    int failed = 0;
    int ended = 0;         // streams that finished (completed or closed) before the end
    int bad_status = 0;
    bool measuring = false;
    bool stopping = false;
    std::uint64_t events_total = 0;
    std::uint64_t events_window = 0;
    std::uint64_t bytes_total = 0;
    std::uint64_t unstamped = 0;  // token events in the window without a readable stamp
    Histogram lag;
    std::vector<std::shared_ptr<Conn>> conns;
    std::string first_error;
    explicit Shared(asio::io_context& i) : io(i) {}
    void pump();
};

void Shared::pump() {
    while (!stopping && next < opt.streams && connecting < opt.connect_parallel) {
        auto c = std::make_shared<Conn>(io, *this, next++);
        conns.push_back(c);
        ++connecting;
        c->start();
    }
}

void Conn::start() {
    boost::system::error_code ec;
    sock.open(tcp::v4(), ec);
    if (!ec && shared.opt.source_ips > 1) {
        int one = 1;
        // Lets many sockets bound to one source address share ephemeral ports (per destination).
        ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        std::string ip = "127.0.0." + std::to_string(1 + idx % shared.opt.source_ips);
        sock.bind(tcp::endpoint(asio::ip::make_address(ip), 0), ec);
    }
    if (ec) {
        on_connect(ec);
        return;
    }
    sock.async_connect(shared.server, [self = shared_from_this()](const boost::system::error_code& e) {
        self->on_connect(e);
    });
}

void Conn::on_connect(const boost::system::error_code& ec) {
    --shared.connecting;
    if (ec) {
        if (shared.first_error.empty()) shared.first_error = "connect: " + ec.message();
        ++shared.failed;
        done = true;
        shared.pump();
        return;
    }
    ++shared.live;
    sock.set_option(tcp::no_delay(true));
    const Options& o = shared.opt;
    if (!o.paths.empty()) {
        request = "GET " + o.paths[static_cast<std::size_t>(idx) % o.paths.size()] + " HTTP/1.1\r\nHost: " + o.host +
                  "\r\nAccept: text/event-stream\r\n";
        for (const auto& h : o.headers) request += h + "\r\n";
        request += "\r\n";
    } else {
        request = "POST " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\nAccept: text/event-stream\r\n";
        for (const auto& h : o.headers) request += h + "\r\n";
        request += "Content-Type: application/json\r\nContent-Length: ";
        request += std::to_string(o.body.size());
        request += "\r\n\r\n";
        request += o.body;
    }
    asio::async_write(sock, asio::buffer(request),
                      [self = shared_from_this()](const boost::system::error_code& e, std::size_t) {
                          if (e) {
                              self->finish("write failed");
                              return;
                          }
                          self->read();
                      });
    shared.pump();
}

void Conn::read() {
    sock.async_read_some(asio::buffer(buf), [self = shared_from_this()](const boost::system::error_code& e,
                                                                        std::size_t n) {
        if (e) {
            self->finish(e == asio::error::eof ? "closed" : "read failed");
            return;
        }
        self->on_data(n);
        if (!self->done) self->read();
    });
}

// Microseconds of CLOCK_MONOTONIC, as the servers' stamps (steady_clock is CLOCK_MONOTONIC here).
std::uint64_t monotonic_us() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count());
}

// The value of a clock_stamp token (4 base64url characters), or -1.
long decode_stamp(std::string_view t) {
    if (t.size() != 4) return -1;
    long v = 0;
    for (char c : t) {
        int d = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
              : c == '-' ? 62 : c == '_' ? 63 : -1;
        if (d < 0) return -1;
        v = v * 64 + d;
    }
    return v;
}

void Conn::on_data(std::size_t n) {
    shared.bytes_total += n;
    std::string_view data(buf, n);
    if (!headers_done) {
        head.append(data);
        auto end = head.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (head.size() > 65536) finish("oversized head");
            return;
        }
        if (head.size() > 12) status = std::atoi(head.c_str() + 9);
        headers_done = true;
        if (status != 200) {
            ++shared.bad_status;
            if (shared.first_error.empty()) shared.first_error = "status " + std::to_string(status) + ": " + head.substr(0, 400);
            finish("status");
            return;
        }
        carry = head.substr(end + 4);
        head.clear();
        head.shrink_to_fit();
    } else {
        carry.append(data);
    }
    // Whole events (both servers end each with a blank line and write LF only): a data line is
    // an event; its token is the emit stamp; `event: completed` ends the stream.
    const std::uint64_t now_us = monotonic_us();
    static constexpr std::string_view kToken = "\"token\":\"";
    int events = 0;
    bool completed = false;
    std::size_t start = 0;
    for (std::size_t end; (end = carry.find("\n\n", start)) != std::string::npos; start = end + 2) {
        const std::string_view ev(carry.data() + start, end - start);
        if (ev.find("data:") == std::string_view::npos) continue;  // a heartbeat comment
        if (ev.find("event: completed") != std::string_view::npos) {
            completed = true;
            continue;
        }
        ++events;
        if (!shared.measuring || !first_event) continue;
        const std::size_t at = ev.find(kToken);
        const long stamp = at == std::string_view::npos ? -1 : decode_stamp(ev.substr(at + kToken.size(), 4));
        if (stamp < 0) {
            ++shared.unstamped;
            continue;
        }
        const std::uint64_t lag_us = (now_us - static_cast<std::uint64_t>(stamp)) & ((1u << 24) - 1);
        shared.lag.add(static_cast<double>(lag_us) / 1000.0);
    }
    carry.erase(0, start);
    if (carry.size() > 65536) {
        finish("an event over 64 KiB");
        return;
    }
    if (events > 0) {
        if (!first_event) {
            first_event = true;
            ++shared.got_first;
        }
        shared.events_total += static_cast<std::uint64_t>(events);
        if (shared.measuring) shared.events_window += static_cast<std::uint64_t>(events);
    }
    if (completed) finish("completed");
}

void Conn::finish(const char* why) {
    if (done) return;
    done = true;
    --shared.live;
    if (!shared.stopping) {
        ++shared.ended;
        if (shared.first_error.empty() && std::string_view(why) != "completed") shared.first_error = why;
    }
    boost::system::error_code ec;
    sock.close(ec);
}

int parse_args(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "sse_load: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--host") o.host = val();
        else if (a == "--port") o.port = static_cast<unsigned short>(std::stoi(val()));
        else if (a == "--streams") o.streams = std::stoi(val());
        else if (a == "--path") o.path = val();
        else if (a == "--header") o.headers.push_back(val());
        else if (a == "--body") o.body = val();
        else if (a == "--period-ms") o.period_ms = std::stoi(val());
        else if (a == "--connect-parallel") o.connect_parallel = std::stoi(val());
        else if (a == "--source-ips") o.source_ips = std::stoi(val());
        else if (a == "--ramp-timeout") o.ramp_timeout_s = std::stod(val());
        else if (a == "--settle") o.settle_s = std::stod(val());
        else if (a == "--window") o.window_s = std::stod(val());
        else if (a == "--server-pid") o.server_pid = std::stoi(val());
        else if (a == "--also-pid") o.also_pids.push_back(std::stoi(val()));
        else if (a == "--tree-pid") o.tree_pid = std::stoi(val());
        else if (a == "--paths-file") {
            std::ifstream f(val());
            for (std::string line; std::getline(f, line);) {
                if (!line.empty()) o.paths.push_back(line);
            }
            if (o.paths.empty()) {
                std::fprintf(stderr, "sse_load: --paths-file names no paths\n");
                std::exit(2);
            }
        }
        else {
            std::fprintf(stderr,
                         "usage: sse_load --port P [--streams N] [--path /x] [--header 'K: v']... [--body JSON]\n"
                         "  [--period-ms 50] [--window S] [--settle S] [--ramp-timeout S] [--server-pid PID]\n"
                         "  [--source-ips K] [--connect-parallel C] [--paths-file FILE] [--also-pid PID]...\n"
                         "  [--tree-pid PID]\n");
            return 2;
        }
    }
    if (o.port == 0 || o.streams < 1) {
        std::fprintf(stderr, "sse_load: --port and --streams >= 1 are required\n");
        return 2;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    if (int rc = parse_args(argc, argv, opt)) return rc;
    asio::io_context io(1);
    Shared sh(io);
    sh.opt = opt;
    sh.server = tcp::endpoint(asio::ip::make_address(opt.host), opt.port);
    sh.conns.reserve(static_cast<std::size_t>(opt.streams));

    const auto t_start = Clock::now();
    double ramp_s = -1;
    ProcSample p0, p1;
    double c0 = 0, c1 = 0;
    double a0 = 0, a1 = 0, t0 = 0, t1 = 0;
    auto also_cpu = [&] {
        double sum = 0;
        for (int pid : opt.also_pids) sum += sample_proc(pid).cpu_s;
        return sum;
    };
    Clock::time_point w0, w1;
    int live_at_start = 0, live_at_end = 0;
    std::uint64_t bytes0 = 0;
    std::string phase = "ramp";

    asio::steady_timer tick(io);
    std::function<void()> on_tick = [&] {
        auto now = Clock::now();
        double t = std::chrono::duration<double>(now - t_start).count();
        if (phase == "ramp") {
            bool all_started = sh.next >= opt.streams && sh.connecting == 0;
            if (all_started && sh.got_first + sh.failed + sh.bad_status + sh.ended >= opt.streams) {
                ramp_s = t;
                phase = "settle";
                w0 = now + std::chrono::milliseconds(static_cast<int>(opt.settle_s * 1000));
            } else if (t > opt.ramp_timeout_s) {
                ramp_s = t;
                phase = "settle";
                w0 = now;
            }
        }
        if (phase == "settle" && now >= w0) {
            phase = "window";
            w0 = now;
            p0 = sample_proc(opt.server_pid);
            c0 = self_cpu_s();
            a0 = also_cpu();
            t0 = tree_cpu_s(opt.tree_pid);
            bytes0 = sh.bytes_total;
            live_at_start = sh.live;
            sh.measuring = true;
            w1 = now + std::chrono::milliseconds(static_cast<int>(opt.window_s * 1000));
        }
        if (phase == "window" && now >= w1) {
            sh.measuring = false;
            w1 = now;
            p1 = sample_proc(opt.server_pid);
            c1 = self_cpu_s();
            a1 = also_cpu();
            t1 = tree_cpu_s(opt.tree_pid);
            live_at_end = sh.live;
            phase = "done";
            sh.stopping = true;
            for (auto& c : sh.conns) {
                if (!c->done) {
                    c->done = true;
                    boost::system::error_code ec;
                    c->sock.close(ec);
                }
            }
            io.stop();
            return;
        }
        tick.expires_after(std::chrono::milliseconds(phase == "ramp" ? 20 : 5));
        tick.async_wait([&](const boost::system::error_code&) { on_tick(); });
    };
    sh.pump();
    on_tick();
    io.run();

    const double window = std::chrono::duration<double>(w1 - w0).count();
    const double server_cpu = p1.cpu_s - p0.cpu_s;
    const double client_cpu = c1 - c0;
    const double eps = window > 0 ? static_cast<double>(sh.events_window) / window : 0;
    const double expected = static_cast<double>(live_at_start) * 1000.0 / opt.period_ms;
    std::printf(
        "SSE_JSON {\"streams\":%d,\"opened\":%d,\"failed\":%d,\"badStatus\":%d,\"endedEarly\":%d,"
        "\"liveAtWindowStart\":%d,\"liveAtWindowEnd\":%d,\"rampSeconds\":%.3f,\"windowSeconds\":%.3f,"
        "\"eventsInWindow\":%llu,\"eventsPerSecond\":%.1f,\"expectedEventsPerSecond\":%.1f,"
        "\"lagP50Ms\":%.1f,\"lagP99Ms\":%.1f,\"lagMaxMs\":%.1f,\"lagSamples\":%llu,\"unstamped\":%llu,"
        "\"serverCpuSeconds\":%.3f,\"serverCpuPercent\":%.1f,\"serverRssKiB\":%ld,\"serverHwmKiB\":%ld,"
        "\"serverRssKiBBefore\":%ld,\"clientCpuPercent\":%.1f,\"alsoCpuSeconds\":%.3f,\"treeCpuSeconds\":%.3f,"
        "\"bytesInWindow\":%llu,\"error\":\"%s\"}\n",
        opt.streams, sh.next, sh.failed, sh.bad_status, sh.ended, live_at_start, live_at_end, ramp_s, window,
        static_cast<unsigned long long>(sh.events_window), eps, expected, sh.lag.percentile(50),
        sh.lag.percentile(99), sh.lag.percentile(100), static_cast<unsigned long long>(sh.lag.count),
        static_cast<unsigned long long>(sh.unstamped), server_cpu,
        window > 0 ? 100.0 * server_cpu / window : 0.0, p1.rss_kib, p1.hwm_kib, p0.rss_kib,
        window > 0 ? 100.0 * client_cpu / window : 0.0, a1 - a0, t1 - t0,
        static_cast<unsigned long long>(sh.bytes_total - bytes0), [&] {
            std::string e;
            for (char ch : sh.first_error.substr(0, 200)) {
                if (ch == '"' || ch == '\\') e += '\'';
                else if (static_cast<unsigned char>(ch) < 0x20) e += ' ';
                else e += ch;
            }
            static std::string keep;
            keep = e;
            return keep.c_str();
        }());
    return sh.events_window > 0 ? 0 : 1;
}
