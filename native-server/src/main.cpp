// confab-server entry point: `serve` (the HTTP server) and `sign` (user hashes and identity tokens).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <unistd.h>

#include "airops_edge.hpp"
#include "api.hpp"
#include "config.hpp"
#include "confab/identity.hpp"
#include "db_executor.hpp"
#include "http_server.hpp"
#include "hub.hpp"
#include "workflows.hpp"
#include "mcp.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "store.hpp"
#include "util.hpp"

namespace asio = boost::asio;
using namespace confab;
using namespace confab::server;

namespace {

// The demo config (examples/config/demo.json), embedded at build time so `confab-server` runs
// with no arguments.
const char* const kDemoConfig =
#include "demo_config.inc"
    ;

int usage_error(const Error& e) {
    std::fprintf(stderr, "confab-server: %s\n", e.message.c_str());
    std::fprintf(stderr, "Try 'confab-server --help'.\n");
    return 2;
}

int run_sign(const std::vector<std::string>& args) {
    auto opts = parse_sign_args(args);
    if (!opts) return usage_error(opts.error());
    std::ifstream in(opts->secret_file, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "confab-server: sign: cannot read --secret-file '%s'\n", opts->secret_file.c_str());
        return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string secret = ss.str();
    // Files written by `echo` end in one newline that is not part of the secret.
    if (!secret.empty() && secret.back() == '\n') {
        secret.pop_back();
        if (!secret.empty() && secret.back() == '\r') secret.pop_back();
    }
    if (secret.empty()) {
        std::fprintf(stderr, "confab-server: sign: the secret file '%s' is empty\n", opts->secret_file.c_str());
        return 1;
    }
    auto signed_id = opts->ttl_seconds
                         ? sign_identity_token(secret, opts->workspace, opts->user, now_seconds() + *opts->ttl_seconds)
                         : sign_user_hash(secret, opts->user);
    if (!signed_id) {
        std::fprintf(stderr, "confab-server: sign: %s\n", signed_id.error().message.c_str());
        return 2;
    }
    std::printf("%s\n", signed_id.value().c_str());
    return 0;
}

// Idempotency-Keys answer retries for a day (as payment APIs keep theirs), then go: the key tables
// would otherwise grow with every keyed request. Once at start, then hourly, until the db stops.
asio::awaitable<void> purge_idempotency_keys(DbExecutor& db) {
    constexpr std::int64_t kKeepMs = 24LL * 3600 * 1000;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        const std::int64_t before = now_ms() - kKeepMs;
        try {
            auto gone = co_await db.run([before](Store& s) { return s.purge_idempotency_keys(before); });
            if (!gone) {
                log_line(R"({"level":"error","msg":"purging old idempotency keys failed","reason":)" +
                         protocol::dump(protocol::Json(gone.error().message)) + "}");
            }
        } catch (const std::exception&) {
            co_return;  // the db executor stopped: shutting down
        }
        timer.expires_after(std::chrono::hours(1));
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
    }
}

int run_serve(const std::vector<std::string>& args) {
    auto parsed = parse_serve_args(args);
    if (!parsed) return usage_error(parsed.error());
    const ServeOptions opts = *parsed;

    Result<ServerConfig> config = opts.config_path.empty()
                                      ? parse_config(kDemoConfig, "embedded demo config")
                                      : load_config_file(opts.config_path);
    if (!config) {
        std::fprintf(stderr, "confab-server: %s\n", config.error().message.c_str());
        return 1;
    }
    if (opts.config_path.empty()) {
        // load_config_file applies these for files; the embedded config gets the same overrides.
        if (const char* v = std::getenv("CONFAB_LLM_BASE_URL"); v && *v) config->llm.base_url = v;
        if (const char* v = std::getenv("CONFAB_LLM_API_KEY"); v && *v) config->llm.api_key = v;
        if (const char* v = std::getenv("CONFAB_LLM_MODEL"); v && *v) config->llm.model = v;
        log_line(R"({"level":"warn","msg":"no --config: using the embedded demo config, whose secrets are public"})");
    }
    StoreConfig store_config;
    store_config.data_dir = opts.data_dir;
    store_config.database_url = opts.database_url;
    store_config.connect_timeout_ms = opts.database_connect_timeout_ms;
    auto store = open_store(store_config);
    if (!store) {
        if (opts.database_url.empty()) {
            std::fprintf(stderr, "confab-server: cannot open the data directory '%s': %s\n", opts.data_dir.c_str(),
                         store.error().message.c_str());
        } else {
            // The message names the database with its password redacted.
            std::fprintf(stderr, "confab-server: cannot open the database: %s\n", store.error().message.c_str());
        }
        return 1;
    }
    auto failed = (*store)->fail_interrupted(now_ms());
    if (!failed) {
        std::fprintf(stderr, "confab-server: recovering interrupted runs failed: %s\n", failed.error().message.c_str());
        return 1;
    }
    if (*failed > 0) {
        log_line(R"({"level":"warn","msg":"runs interrupted by the last shutdown were marked error","count":)" +
                 std::to_string(*failed) + "}");
    }
    // Cut the journal every 16 compactions' worth of rows: live runs have compacted past the cut by then.
    (*store)->set_journal_cut_rows(16 * static_cast<std::int64_t>(opts.compact_every));
    DbExecutor db(std::move(store.value()), std::chrono::milliseconds(opts.commit_delay_ms));

    int threads = opts.threads > 0 ? opts.threads : static_cast<int>(std::thread::hardware_concurrency());
    if (threads < 1) threads = 1;
    asio::io_context ioc(threads);
    Metrics metrics;
    HubOptions hub_opts;
    hub_opts.stream_queue = opts.stream_queue;
    hub_opts.compact_every = static_cast<std::uint64_t>(opts.compact_every);
    ExecutionHub hub(ioc, db, *config, metrics, hub_opts);
    Api api(*config, db, hub, metrics);
    WorkflowService workflows(ioc, *config, db, hub);
    workflows.prepare_store();  // fails runs cut off by the last shutdown, seeds config workflows
    api.set_service(&workflows);
    AiropsEdge airops(ioc, *config, db, hub, api);
    api.set_airops_edge(&airops);
    McpOptions mcp_opts;
    mcp_opts.max_sessions_per_workspace = static_cast<std::size_t>(opts.mcp_max_sessions);
    mcp_opts.session_idle = std::chrono::seconds(opts.mcp_session_idle_seconds);
    McpServer mcp(ioc, db, hub, api, workflows, mcp_opts);
    api.set_mcp(&mcp);
    asio::co_spawn(ioc, purge_idempotency_keys(db), asio::detached);
    HttpOptions http_opts;
    http_opts.header_timeout_ms = opts.header_timeout_ms;
    http_opts.body_timeout_ms = opts.body_timeout_ms;
    http_opts.idle_timeout_ms = opts.idle_timeout_ms;
    http_opts.write_timeout_ms = opts.write_timeout_ms;
    http_opts.heartbeat_ms = opts.heartbeat_ms;
    http_opts.max_body_bytes = opts.max_body_bytes;
    http_opts.max_header_bytes = opts.max_header_bytes;
    http_opts.access_log = opts.access_log;
    HttpServer server(ioc, api, metrics, http_opts);
    server.set_airops_edge(&airops);
    auto port = server.listen(opts.host, opts.port);
    if (!port) {
        std::fprintf(stderr, "confab-server: %s\n", port.error().message.c_str());
        db.stop();
        return 1;
    }

    std::promise<int> stop_signal;
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (!ec) stop_signal.set_value(sig);
    });
    server.start();
    api.set_ready(true);
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });

    std::string host = opts.host.find(':') != std::string::npos ? "[" + opts.host + "]" : opts.host;
    std::printf("confab-server listening on http://%s:%u\n", host.c_str(), static_cast<unsigned>(*port));
    std::fflush(stdout);

    int sig = stop_signal.get_future().get();
    log_line(R"({"level":"info","msg":"shutting down","signal":)" + std::to_string(sig) + "}");
    // Stop taking work, stop the runs (they end "error: server shutting down", which ends their
    // streams with a final event), let in-flight requests finish, then close what is left.
    server.stop_accepting();
    hub.shutdown();
    server.begin_shutdown();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.shutdown_grace_ms);
    while (std::chrono::steady_clock::now() < deadline &&
           (hub.active_runs() > 0 || server.busy_connections() > 0)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    server.close_all();
    auto close_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (std::chrono::steady_clock::now() < close_deadline && server.connections() > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    db.stop();  // drains queued writes, checkpoints the WAL
    ioc.stop();
    for (auto& t : pool) t.join();
    log_line(R"({"level":"info","msg":"stopped"})");
    std::fflush(stdout);
    std::fflush(stderr);
    // Everything durable is written and checkpointed. Exiting here skips tearing down coroutine
    // frames still parked in the io_context, whose destructors would touch objects already gone.
    std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")) {
        std::fputs(usage_text(), stdout);
        return 0;
    }
    for (const auto& a : args) {
        if (a == "--help" || a == "-h") {
            std::fputs(usage_text(), stdout);
            return 0;
        }
    }
    if (args.empty()) return run_serve(args);
    if (args[0] == "sign") return run_sign({args.begin() + 1, args.end()});
    if (args[0] == "serve") return run_serve({args.begin() + 1, args.end()});
    if (args[0].rfind("-", 0) == 0) return run_serve(args);
    std::fprintf(stderr, "confab-server: unknown command '%s'\nTry 'confab-server --help'.\n", args[0].c_str());
    return 2;
}
