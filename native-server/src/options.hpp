// Command-line options of confab-server (`serve` and `sign`): parsing with clear errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "confab/result.hpp"

namespace confab::server {

// --execution-cache-bytes: 4 MiB, some 8,000 finished executions of the demo's size (a body of
// ~300 bytes, its ids and the entry's overhead).
constexpr std::size_t kDefaultExecutionCacheBytes = std::size_t{4} << 20;

struct ServeOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8787;        // 0: any free port (the printed URL says which)
    std::string config_path;          // empty: the embedded demo config
    std::string data_dir = "confab-data";
    std::string database_url;         // postgresql://...: the PostgreSQL store instead of SQLite
    int database_connect_timeout_ms = 10000;  // at start: how long to wait for the database
    int database_read_connections = 2;         // PostgreSQL: connections that serve reads only
    int threads = 0;                  // 0: hardware concurrency
    int heartbeat_ms = 15000;         // SSE ": hb" comment interval
    int header_timeout_ms = 10000;    // whole request head must arrive within this (slowloris)
    int body_timeout_ms = 30000;      // whole request body
    int idle_timeout_ms = 60000;      // keep-alive connection without a request
    int write_timeout_ms = 30000;     // one response write (a reader that stops reading is dropped)
    int shutdown_grace_ms = 5000;     // SIGTERM: how long in-flight runs may take to end
    std::size_t max_body_bytes = 1 << 20;
    std::size_t max_header_bytes = 8 << 10;
    std::size_t stream_queue = 256;   // live events buffered per SSE subscriber before catch-up
    bool access_log = true;           // one JSON line per request on stderr
    std::size_t execution_cache_bytes = kDefaultExecutionCacheBytes;  // GET of finished executions from memory; 0: off
    int compact_every = 256;          // a live run compacts its journalled events every N
    int commit_delay_ms = 0;          // hold each db transaction this long (slow storage, tests)
    int mcp_max_sessions = 100;       // open MCP sessions per workspace (the least recently used idle one goes)
    int mcp_session_idle_seconds = 1800;  // an MCP session unused this long expires (404)
    // Several instances on one PostgreSQL database: the lease an instance holds (renewed every
    // quarter of it; an instance silent for longer is fenced and its runs are taken over), and
    // the name operators see it by (default: hostname:port).
    int instance_lease_ms = 10000;
    std::string instance_name;
};

// The exit status of an instance that another instance fenced (its lease ran out: it was stopped,
// or cut off from the database, for longer than the lease). Nothing it does can commit any more;
// a supervisor restarts it, as a new instance. 75 is EX_TEMPFAIL: "try again".
constexpr int kExitFenced = 75;

struct SignOptions {
    std::string secret_file;
    std::string workspace;
    std::string user;
    std::optional<std::int64_t> ttl_seconds;
};

// Errors have code "usage" and a message that names the flag.
// `args` excludes the program name and the subcommand. Environment variables (CONFAB_LISTEN,
// CONFAB_CONFIG, CONFAB_DATA_DIR, CONFAB_DATABASE_URL, CONFAB_THREADS) are applied first, flags
// override them.
Result<ServeOptions> parse_serve_args(const std::vector<std::string>& args);
Result<SignOptions> parse_sign_args(const std::vector<std::string>& args);

// "host:port", "[v6]:port" or ":port"/"port" (host stays 127.0.0.1).
Status parse_listen(const std::string& value, ServeOptions& out);

const char* usage_text();

}  // namespace confab::server
