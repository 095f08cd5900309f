// confab-server entry point: `serve` (the HTTP server) and `sign` (user hashes and identity tokens).
#include <csignal>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <random>
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
#include "pg_listener.hpp"
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

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == 0) return "localhost";
    return buf;
}

// Shared store: the lease is renewed every quarter of it (jittered, so instances started together
// do not all write and scan at once), and every round also takes over the instances whose
// leases ran out (their runs end "interrupted" and their followers here learn it at once).
// A "fenced" answer ends the process (DbExecutor's fenced handler runs first); a database that
// cannot be reached fails the round, which is retried at the next one.
asio::awaitable<void> keep_lease(DbExecutor& db, ExecutionHub& hub, int lease_ms) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::minstd_rand jitter(static_cast<unsigned>(std::random_device{}()));
    // Renewal every quarter lease; the look for expired instances every tenth (a tiny query on
    // a table of a few rows), so a dead instance's runs are closed at most about a tenth of a
    // lease after its lease ran out, not a quarter. Jittered, so instances do not all ask at once.
    const int tick = std::max(lease_ms / 10, 10);
    const auto renew_every = std::chrono::milliseconds(std::max(lease_ms / 4, 10));
    auto renewed_at = std::chrono::steady_clock::now();  // register_instance() just set the lease
    bool failing = false;
    for (;;) {
        const int pause = tick * 3 / 4 + static_cast<int>(jitter() % static_cast<unsigned>(tick / 2 + 1));
        timer.expires_after(std::chrono::milliseconds(pause));
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        // Renewed during a graceful shutdown too: runs ending then must still commit.
        if (ec) co_return;
        try {
            if (failing || std::chrono::steady_clock::now() - renewed_at >= renew_every) {
                Status renewed = co_await db.run([](Store& s) { return s.renew_lease(); });
                if (!renewed) {
                    if (!failing) {
                        log_line(R"({"level":"error","msg":"renewing this instance's lease failed","reason":)" +
                                 protocol::dump(protocol::Json(renewed.error().message)) + "}");
                    }
                    failing = true;
                    continue;
                }
                if (failing) log_line(R"({"level":"info","msg":"this instance's lease is renewed again"})");
                failing = false;
                renewed_at = std::chrono::steady_clock::now();
            }
            auto taken = co_await db.run([](Store& s) { return s.take_over_expired(now_ms()); });
            if (!taken) {
                log_line(R"({"level":"error","msg":"taking over expired instances failed","reason":)" +
                         protocol::dump(protocol::Json(taken.error().message)) + "}");
            } else if (!taken->empty()) {
                log_line(R"({"level":"warn","msg":"took over the runs of instances whose lease ran out","executions":)" +
                         std::to_string(taken->size()) + "}");
                for (const auto& id : *taken) hub.on_done_notified(id);
            }
        } catch (const std::exception&) {
            co_return;  // the db executor stopped: shutting down
        }
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
    // Cut the journal every 16 compactions' worth of rows: live runs have compacted past the cut by then.
    (*store)->set_journal_cut_rows(16 * static_cast<std::int64_t>(opts.compact_every));
    DbExecutor db(std::move(store.value()), std::chrono::milliseconds(opts.commit_delay_ms));
    if (db.shared() && opts.database_read_connections > 0) {
        // Reads get connections of their own, so a replay, a follower's catch-up or a lookup
        // never queues behind the write path's group commits (nor they behind it).
        std::vector<std::unique_ptr<Store>> readers;
        for (int i = 0; i < opts.database_read_connections; ++i) {
            auto reader = open_store(store_config);
            if (!reader) {
                std::fprintf(stderr, "confab-server: cannot open a read connection to the database: %s\n",
                             reader.error().message.c_str());
                return 1;
            }
            (*reader)->serve_reads();
            readers.push_back(std::move(reader.value()));
        }
        db.add_readers(std::move(readers));
    }
    // Another instance fenced this one (its lease ran out): nothing it does can commit any more,
    // and what it would tell its clients next (a run's end that storage refused) is not what the
    // store holds. It stops at once, before the refused transaction is answered to anyone.
    db.set_fenced_handler([] {
        log_line(R"({"level":"error","msg":"this instance was fenced: another instance took over its lease and its runs; exiting, restart it","exit":)" +
                 std::to_string(kExitFenced) + "}");
        std::fflush(stdout);
        std::fflush(stderr);
        std::_Exit(kExitFenced);
    });

    int threads = opts.threads > 0 ? opts.threads : static_cast<int>(std::thread::hardware_concurrency());
    if (threads < 1) threads = 1;
    asio::io_context ioc(threads);
    db.complete_on(ioc);  // a group commit's answers: one post, not one per stream
    Metrics metrics;
    HubOptions hub_opts;
    hub_opts.stream_queue = opts.stream_queue;
    hub_opts.compact_every = static_cast<std::uint64_t>(opts.compact_every);
    ExecutionHub hub(ioc, db, *config, metrics, hub_opts);
    ApiOptions api_opts;
    api_opts.execution_cache_bytes = opts.execution_cache_bytes;
    Api api(*config, db, hub, metrics, api_opts);
    WorkflowService workflows(ioc, *config, db, hub);
    api.set_service(&workflows);
    AiropsEdge airops(ioc, *config, db, hub, api);
    api.set_airops_edge(&airops);
    McpOptions mcp_opts;
    mcp_opts.max_sessions_per_workspace = static_cast<std::size_t>(opts.mcp_max_sessions);
    mcp_opts.session_idle = std::chrono::seconds(opts.mcp_session_idle_seconds);
    McpServer mcp(ioc, db, hub, api, workflows, mcp_opts);
    api.set_mcp(&mcp);
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
    // The first writes, now that the port (part of the instance's default name) is known.
    // On a shared store this process registers as a new instance first: it owns what it inserts
    // from now on, and the interrupted runs it closes are only those no live instance owns.
    const std::string instance_id = random_id("in_");
    const std::string instance_name =
        !opts.instance_name.empty() ? opts.instance_name : host_name() + ":" + std::to_string(*port);
    auto started = db.run_blocking([&](Store& s) -> Status {
        if (auto st = s.register_instance(instance_id, instance_name, opts.instance_lease_ms); !st) {
            return make_error(st.error().code, "registering this instance failed: " + st.error().message);
        }
        auto failed = s.fail_interrupted(now_ms());
        if (!failed) return make_error(failed.error().code, "recovering interrupted runs failed: " + failed.error().message);
        if (*failed > 0) {
            log_line(R"({"level":"warn","msg":"runs interrupted by the last shutdown were marked error","count":)" +
                     std::to_string(*failed) + "}");
        }
        return Ok{};
    });
    if (!started) {
        std::fprintf(stderr, "confab-server: %s\n", started.error().message.c_str());
        db.stop();
        return 1;
    }
    if (db.shared()) {
        log_line(R"({"level":"info","msg":"registered as an instance of a shared database","instance":")" + instance_id +
                 R"(","name":)" + protocol::dump(protocol::Json(instance_name)) +
                 R"(,"lease_ms":)" + std::to_string(opts.instance_lease_ms) + "}");
    }
    workflows.prepare_store();  // fails runs cut off by the last shutdown, seeds config workflows
    asio::co_spawn(ioc, purge_idempotency_keys(db), asio::detached);
    std::shared_ptr<PgListener> listener;
    if (db.shared()) {
        asio::co_spawn(ioc, keep_lease(db, hub, opts.instance_lease_ms), asio::detached);
        PgListener::Callbacks cb;
        cb.journal = [&hub](std::int64_t first, std::int64_t last) { hub.on_journal_notified(first, last); };
        cb.done = [&hub](const std::string& id) { hub.on_done_notified(id); };
        cb.cancel = [&hub](const std::string& id) { hub.on_cancel_notified(id); };
        cb.resync = [&hub] { hub.resync_followed(); };
        cb.relay = [&airops](const std::string& id, bool chat, const std::string& channel, const std::string& session) {
            airops.on_relay_notified(id, chat, channel, session);
        };
        listener = PgListener::create(ioc, opts.database_url, std::move(cb));
        listener->start();
        hub.start_following();
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
    if (listener) listener->stop();
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
