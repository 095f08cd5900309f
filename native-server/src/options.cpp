// Command-line options of confab-server: flags, environment variables and their validation.
#include "options.hpp"

#include "store.hpp"

#include <charconv>
#include <cstdlib>
#include <limits>
#include <string_view>

namespace confab::server {
namespace {

Error usage(std::string message) { return make_error("usage", std::move(message)); }

template <class T>
Result<T> parse_int(std::string_view flag, std::string_view text, T lo, T hi) {
    T v{};
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || text.empty()) {
        return usage(std::string(flag) + ": expected an integer, got '" + std::string(text) + "'");
    }
    if (v < lo || v > hi) {
        return usage(std::string(flag) + ": must be between " + std::to_string(lo) + " and " +
                     std::to_string(hi) + ", got " + std::string(text));
    }
    return v;
}

// Splits "--name=value" or "--name value"; returns false when a value is missing.
struct FlagReader {
    explicit FlagReader(const std::vector<std::string>& a) : args(a) {}
    const std::vector<std::string>& args;
    std::size_t i = 0;
    std::string name;
    std::optional<std::string> inline_value;

    bool next() {
        if (i >= args.size()) return false;
        const std::string& a = args[i++];
        auto eq = a.find('=');
        if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
            name = a.substr(0, eq);
            inline_value = a.substr(eq + 1);
        } else {
            name = a;
            inline_value.reset();
        }
        return true;
    }
    Result<std::string> value() {
        if (inline_value) return *inline_value;
        if (i >= args.size()) return usage(name + ": missing value");
        return args[i++];
    }
};

}  // namespace

Status parse_listen(const std::string& value, ServeOptions& out) {
    std::string host = out.host;
    std::string port_text;
    if (!value.empty() && value.front() == '[') {
        auto close = value.find(']');
        if (close == std::string::npos || close + 1 >= value.size() || value[close + 1] != ':') {
            return usage("--listen: expected [ipv6]:port, got '" + value + "'");
        }
        host = value.substr(1, close - 1);
        port_text = value.substr(close + 2);
    } else {
        auto colon = value.rfind(':');
        if (colon == std::string::npos) {
            port_text = value;
        } else {
            if (colon > 0) host = value.substr(0, colon);
            port_text = value.substr(colon + 1);
        }
    }
    auto port = parse_int<int>("--listen port", port_text, 0, 65535);
    if (!port) return port.error();
    out.host = host;
    out.port = static_cast<std::uint16_t>(*port);
    return Ok{};
}

Result<ServeOptions> parse_serve_args(const std::vector<std::string>& args) {
    ServeOptions o;
    if (const char* v = std::getenv("CONFAB_LISTEN"); v && *v) {
        if (auto s = parse_listen(v, o); !s) return usage("CONFAB_LISTEN: " + s.error().message);
    }
    if (const char* v = std::getenv("CONFAB_CONFIG"); v && *v) o.config_path = v;
    if (const char* v = std::getenv("CONFAB_DATA_DIR"); v && *v) o.data_dir = v;
    if (const char* v = std::getenv("CONFAB_DATABASE_URL"); v && *v) o.database_url = v;
    std::string url_source = "CONFAB_DATABASE_URL";
    if (const char* v = std::getenv("CONFAB_THREADS"); v && *v) {
        auto t = parse_int<int>("CONFAB_THREADS", v, 0, 256);
        if (!t) return t.error();
        o.threads = *t;
    }
    FlagReader r(args);
    auto int_flag = [&](int& dst, int lo, int hi) -> Status {
        auto v = r.value();
        if (!v) return v.error();
        auto n = parse_int<int>(r.name, *v, lo, hi);
        if (!n) return n.error();
        dst = *n;
        return Ok{};
    };
    constexpr int day_ms = 24 * 3600 * 1000;
    while (r.next()) {
        Status s = Ok{};
        if (r.name == "--listen") {
            auto v = r.value();
            if (!v) return v.error();
            s = parse_listen(*v, o);
        } else if (r.name == "--config") {
            auto v = r.value();
            if (!v) return v.error();
            o.config_path = *v;
        } else if (r.name == "--data-dir") {
            auto v = r.value();
            if (!v) return v.error();
            if (v->empty()) return usage("--data-dir: must not be empty");
            o.data_dir = *v;
        } else if (r.name == "--database-url") {
            auto v = r.value();
            if (!v) return v.error();
            o.database_url = *v;
            url_source = "--database-url";
        } else if (r.name == "--database-connect-timeout-ms") {
            s = int_flag(o.database_connect_timeout_ms, 0, 3600000);
        } else if (r.name == "--database-read-connections") {
            s = int_flag(o.database_read_connections, 0, 64);
        } else if (r.name == "--threads") {
            s = int_flag(o.threads, 0, 256);
        } else if (r.name == "--heartbeat-ms") {
            s = int_flag(o.heartbeat_ms, 10, day_ms);
        } else if (r.name == "--header-timeout-ms") {
            s = int_flag(o.header_timeout_ms, 10, day_ms);
        } else if (r.name == "--body-timeout-ms") {
            s = int_flag(o.body_timeout_ms, 10, day_ms);
        } else if (r.name == "--idle-timeout-ms") {
            s = int_flag(o.idle_timeout_ms, 10, day_ms);
        } else if (r.name == "--write-timeout-ms") {
            s = int_flag(o.write_timeout_ms, 10, day_ms);
        } else if (r.name == "--compact-every") {
            s = int_flag(o.compact_every, 1, 1 << 20);
        } else if (r.name == "--commit-delay-ms") {
            s = int_flag(o.commit_delay_ms, 0, 10000);
        } else if (r.name == "--shutdown-grace-ms") {
            s = int_flag(o.shutdown_grace_ms, 0, 600000);
        } else if (r.name == "--stream-queue") {
            int q = 0;
            s = int_flag(q, 1, 1 << 20);
            o.stream_queue = static_cast<std::size_t>(q);
        } else if (r.name == "--max-body-bytes") {
            int b = 0;
            s = int_flag(b, 1, 64 << 20);
            o.max_body_bytes = static_cast<std::size_t>(b);
        } else if (r.name == "--execution-cache-bytes") {
            int b = 0;
            s = int_flag(b, 0, 1 << 30);
            o.execution_cache_bytes = static_cast<std::size_t>(b);
        } else if (r.name == "--mcp-max-sessions") {
            s = int_flag(o.mcp_max_sessions, 1, 100000);
        } else if (r.name == "--mcp-session-idle-seconds") {
            s = int_flag(o.mcp_session_idle_seconds, 1, 7 * 24 * 3600);
        } else if (r.name == "--instance-lease-ms") {
            s = int_flag(o.instance_lease_ms, 200, 3600000);
        } else if (r.name == "--instance-name") {
            auto v = r.value();
            if (!v) return v.error();
            if (v->empty() || v->size() > 200) return usage("--instance-name: must be 1 to 200 characters");
            o.instance_name = *v;
        } else if (r.name == "--no-access-log") {
            o.access_log = false;
        } else {
            return usage("unknown option '" + r.name + "' (see confab-server --help)");
        }
        if (!s) return s.error();
    }
    if (!o.database_url.empty() && !is_postgres_url(o.database_url)) {
        return usage(url_source + ": expected a postgresql:// or postgres:// URL, got '" +
                     redact_database_url(o.database_url) + "'");
    }
    return o;
}

Result<SignOptions> parse_sign_args(const std::vector<std::string>& args) {
    SignOptions o;
    FlagReader r(args);
    while (r.next()) {
        if (r.name == "--secret-file" || r.name == "--workspace" || r.name == "--user") {
            auto v = r.value();
            if (!v) return v.error();
            if (r.name == "--secret-file") o.secret_file = *v;
            if (r.name == "--workspace") o.workspace = *v;
            if (r.name == "--user") o.user = *v;
        } else if (r.name == "--ttl") {
            auto v = r.value();
            if (!v) return v.error();
            auto n = parse_int<std::int64_t>("--ttl", *v, 1, 31536000);
            if (!n) return n.error();
            o.ttl_seconds = *n;
        } else {
            return usage("sign: unknown option '" + r.name + "' (see confab-server --help)");
        }
    }
    if (o.secret_file.empty()) return usage("sign: --secret-file is required");
    if (o.workspace.empty()) return usage("sign: --workspace is required");
    if (o.user.empty()) return usage("sign: --user is required");
    return o;
}

const char* usage_text() {
    return R"(confab-server: the Confab backend (identity, app executions, streaming chat).

Usage:
  confab-server [serve] [options]
  confab-server sign --secret-file FILE --workspace ID --user ID [--ttl SECONDS]
  confab-server --help

serve options (environment variable in brackets; flags win):
  --listen HOST:PORT       address to listen on, default 127.0.0.1:8787; port 0 picks a free one
                           [CONFAB_LISTEN]
  --config FILE            JSON config of workspaces and apps; default: the embedded demo config
                           [CONFAB_CONFIG]
  --data-dir DIR           SQLite data directory, default ./confab-data [CONFAB_DATA_DIR]
  --database-url URL       store everything in PostgreSQL instead of SQLite:
                           postgresql://user:password@host:port/dbname (or postgres://);
                           several instances may share one database [CONFAB_DATABASE_URL]
  --database-connect-timeout-ms MS
                           at start, how long to wait for PostgreSQL before exiting with
                           an error, default 10000
  --database-read-connections N
                           with --database-url: connections (a thread each) that serve
                           reads (replays, following runs of other instances, lookups)
                           beside the one that writes, default 2; 0: all on the writer
  --instance-lease-ms MS   with --database-url: the lease this instance holds on the database,
                           renewed every quarter of it; an instance that has not renewed it
                           for MS is fenced and its runs are taken over by the others,
                           default 10000
  --instance-name NAME     with --database-url: the name operators see this instance by,
                           default hostname:port
  --threads N              I/O threads, default: number of cores [CONFAB_THREADS]
  --heartbeat-ms MS        SSE heartbeat comment interval, default 15000
  --header-timeout-ms MS   request head deadline, default 10000
  --body-timeout-ms MS     request body deadline, default 30000
  --idle-timeout-ms MS     idle keep-alive connection deadline, default 60000
  --write-timeout-ms MS    one response write deadline; a stream whose socket takes
                           nothing this long is dropped (it resumes), default 30000
  --shutdown-grace-ms MS   on SIGTERM, how long runs may take to finish, default 5000
  --stream-queue N         live events a stream may have waiting for its socket before
                           it catches up from the run's log, default 256
  --max-body-bytes N       request body limit, default 1048576
  --no-access-log          do not print one JSON line per request on stderr
  --execution-cache-bytes N
                           keep the bodies of finished executions in memory, at most N bytes
                           (least recently read out first), so GET /v1/executions/{id} of one
                           does not read the store; 0: off, default 4194304
  --compact-every N        a streaming run moves its journalled events into its events rows
                           every N events (a smaller N: a smaller journal, more writes),
                           default 256
  --commit-delay-ms MS     hold every storage transaction MS before it runs (slow storage,
                           for tests and drills), default 0
  --mcp-max-sessions N     open MCP sessions (/v1/mcp) per workspace; a new one past N ends
                           the least recently used idle one, default 100
  --mcp-session-idle-seconds S
                           an MCP session unused for S seconds expires, default 1800

Exit status of serve: 0 after SIGTERM/SIGINT, 1 when it cannot start (config, store, port),
  2 on a usage error, 75 when another instance fenced this one (its lease ran out while it was
  stopped or cut off from the database: nothing it writes can commit any more; restart it).

sign: prints the user hash HMAC-SHA256(secret, user) in hex, or with --ttl an identity token
  "v1.<exp>.<mac>" that expires SECONDS from now. The secret file's trailing newline is ignored.
)";
}

}  // namespace confab::server
