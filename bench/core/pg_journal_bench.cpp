// Does the PostgreSQL journal need an index on execution_id (issue 14)? (Migration 6 has it: this
// says why.) The journal part of
// events_after() -- a reader on another instance catching up with a run live elsewhere -- filters the
// journal by execution_id; without an index that is a scan of the whole journal, with one every
// journalled row costs an index insertion (and the cuts an index cleanup). This measures both sides
// with PgStore itself, on a database of its own, in the shape the server writes:
//   writer   instance A: R live runs, one event each per group commit (one pipelined INSERT per
//            batch), compaction every 256 events per run, a run completes after 1,000 events and a
//            new one takes its place, the journal cut every 4,096 rows (the server's defaults)
//   reader   instance B: every `every` batches, events_after() of one of A's live runs from seq 0
//            (a catch-up), and of every live run after its newest events but 3 (the follower's
//            safety poll, hub.cpp: every 1-2 s for every run followed), the journal at its
//            stationary size
// CPU is the PostgreSQL backend's (utime + stime of its process, /proc/<pid>/stat): the writer's
// per 1,000 journalled events (and the WAL written per event), the reader's per catch-up. Run once without and once with the index:
//   pg_journal_bench ADMIN_URL [rounds=3000] [runs=64] [every=20]
// (ADMIN_URL: a role that may CREATE DATABASE; the database is dropped at the end.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "store_pg.hpp"
#include "../../tests/server/pg_sql.hpp"

namespace {

using confab::server::EventRecord;
using confab::server::ExecutionRecord;
using confab::server::PgStore;
using confab::server::RunCompletion;

using confab::pgtest::with_database;
std::string sql(const std::string& url, const std::string& statement) {
    return confab::pgtest::first_value(url, statement);
}

// CPU seconds (user + system) of a process so far.
double cpu_seconds(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoll(field);
        if (i == 15) stime = std::stoll(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The backend of the one store connection opened since `before` was listed.
int backend_pid(const std::string& url, const std::string& db, const std::string& not_in) {
    return std::stoi(sql(url, "SELECT pid FROM pg_stat_activity WHERE datname = '" + db +
                                  "' AND application_name = 'confab-server' AND pid NOT IN (" + not_in + ")"));
}

std::unique_ptr<PgStore> open(const std::string& url, const std::string& id) {
    auto s = PgStore::open(url, 10000);
    if (!s) throw std::runtime_error(s.error().message);
    if (auto st = (*s)->register_instance(id, id, 600000); !st) throw std::runtime_error(st.error().message);
    return std::move(*s);
}

void must(const confab::Status& st, const char* what) {
    if (!st) throw std::runtime_error(std::string(what) + ": " + st.error().message);
}

struct Run {
    std::string id;
    std::vector<EventRecord> events;
    std::size_t compacted = 0;
};

void bench(const std::string& admin, bool index, int rounds, int runs, int every) {
    const std::string db = "confab_journal_bench_" + std::to_string(::getpid());
    sql(admin, "DROP DATABASE IF EXISTS " + db);
    sql(admin, "CREATE DATABASE " + db);
    const std::string url = with_database(admin, db);
    auto writer = open(url, "inst_a");
    const int writer_pid = backend_pid(admin, db, "0");
    auto reader = open(url, "inst_b");
    const int reader_pid = backend_pid(admin, db, std::to_string(writer_pid));
    if (!index) sql(url, "DROP INDEX journal_execution");  // migration 6 creates it
    writer->set_journal_cut_rows(16 * 256);

    std::vector<Run> live(static_cast<std::size_t>(runs));
    int started = 0;
    std::mt19937_64 rng(42);
    auto start = [&](Run& r) {
        r = Run{};
        // Random ids, as the server's (ex_ + 128 random bits): the runs of a commit are spread over
        // an index on execution_id, not neighbours in it.
        char id[40];
        std::snprintf(id, sizeof id, "ex_%016llx%016llx", static_cast<unsigned long long>(rng()),
                      static_cast<unsigned long long>(rng()));
        r.id = id;
        ++started;
        ExecutionRecord e;
        e.id = r.id;
        e.workspace_id = "w1";
        e.user_id = "u1";
        e.app_id = "story";
        e.version = "1";
        e.status = confab::protocol::ExecutionStatus::running;
        must(writer->insert_execution(e), "insert_execution");
    };
    for (auto& r : live) start(r);
    // Staggered: the runs do not all complete at once.
    for (std::size_t i = 0; i < live.size(); ++i) {
        for (std::size_t k = 0; k < i * 1000 / live.size(); ++k) {
            live[i].events.push_back(EventRecord{live[i].events.size() + 1, "delta", R"({"content":"warm"})", 1});
        }
        live[i].compacted = live[i].events.size();  // as if compacted: the journal starts empty
        must(writer->journal_events(live[i].id, {}, live[i].events), "warm up");
    }

    const std::string delta = R"({"content":"The quick brown fox jumps over the lazy dog, again and again."})";
    const std::string wal_start = sql(url, "SELECT pg_current_wal_lsn()");
    double write_cpu = 0, read_cpu = 0, poll_cpu = 0;
    long long polls = 0;
    long long journalled = 0, catch_ups = 0, journal_rows_seen = 0, read_events = 0;
    for (int round = 0; round < rounds; ++round) {
        const double w0 = cpu_seconds(writer_pid);
        must(writer->begin_batch(), "begin_batch");
        std::vector<std::size_t> done;
        for (std::size_t i = 0; i < live.size(); ++i) {
            Run& r = live[i];
            r.events.push_back(EventRecord{r.events.size() + 1, "delta", delta, 1000 + round});
            std::vector<EventRecord> compact;
            if (r.events.size() - 1 - r.compacted >= 256) {
                compact.assign(r.events.begin() + static_cast<std::ptrdiff_t>(r.compacted), r.events.end() - 1);
                r.compacted = r.events.size() - 1;
            }
            must(writer->journal_events(r.id, {r.events.back()}, compact), "journal_events");
            ++journalled;
            if (r.events.size() >= 1000) done.push_back(i);
        }
        must(writer->commit_batch(), "commit_batch");
        for (std::size_t i : done) {
            RunCompletion c;
            c.execution_id = live[i].id;
            c.events.assign(live[i].events.begin() + static_cast<std::ptrdiff_t>(live[i].compacted), live[i].events.end());
            c.events.push_back(EventRecord{live[i].events.size() + 1, "completed", R"({"status":"success"})", 1});
            c.status = confab::protocol::ExecutionStatus::success;
            must(writer->begin_batch(), "begin_batch");
            must(writer->complete_run(c), "complete_run");
            must(writer->commit_batch(), "commit_batch");
            start(live[i]);
        }
        write_cpu += cpu_seconds(writer_pid) - w0;
        if (round % every == every - 1) {
            const Run& r = live[static_cast<std::size_t>(round / every) % live.size()];
            const double r0 = cpu_seconds(reader_pid);
            auto got = reader->events_after(r.id, 0, 1000);
            read_cpu += cpu_seconds(reader_pid) - r0;
            if (got.size() != r.events.size()) {
                throw std::runtime_error("catch-up of " + r.id + ": " + std::to_string(got.size()) + " events, not " +
                                         std::to_string(r.events.size()));
            }
            read_events += static_cast<long long>(got.size());
            ++catch_ups;
            // The follower's safety poll (hub.cpp, every 1-2 s): events_after of every followed
            // run after what it has, i.e. its newest few events.
            const double p0 = cpu_seconds(reader_pid);
            for (const Run& f : live) {
                const std::uint64_t after = f.events.size() > 3 ? f.events.size() - 3 : 0;
                if (reader->events_after(f.id, after, 256).size() != f.events.size() - after) {
                    throw std::runtime_error("poll of " + f.id + ": wrong count");
                }
                ++polls;
            }
            poll_cpu += cpu_seconds(reader_pid) - p0;
            journal_rows_seen += writer->journal_rows();
        }
    }
    const double wal_bytes =
        std::stod(sql(url, "SELECT pg_current_wal_lsn() - '" + wal_start + "'::pg_lsn"));
    writer.reset();
    reader.reset();
    sql(admin, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    std::printf("%-14s journalled %lld events: writer backend %.3f s CPU = %.2f ms per 1,000 events; "
                "WAL %.0f bytes per event; %lld catch-ups (%.0f events each, journal ~%lld rows): reader backend %.3f s = %.3f ms per catch-up; "
                "%lld polls: %.3f ms each\n",
                index ? "with index" : "without index", journalled, write_cpu, 1e6 * write_cpu / static_cast<double>(journalled),
                wal_bytes / static_cast<double>(journalled),
                catch_ups, catch_ups ? static_cast<double>(read_events) / static_cast<double>(catch_ups) : 0.0,
                catch_ups ? journal_rows_seen / catch_ups : 0, read_cpu,
                catch_ups ? 1000.0 * read_cpu / static_cast<double>(catch_ups) : 0.0, polls,
                polls ? 1000.0 * poll_cpu / static_cast<double>(polls) : 0.0);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s ADMIN_URL [rounds=3000] [runs=64] [every=20]\n", argv[0]);
        return 2;
    }
    const std::string admin = argv[1];
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 3000;
    const int runs = argc > 3 ? std::atoi(argv[3]) : 64;
    const int every = argc > 4 ? std::atoi(argv[4]) : 20;
    try {
        for (int rep = 0; rep < 2; ++rep) {
            bench(admin, false, rounds, runs, every);
            bench(admin, true, rounds, runs, every);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pg_journal_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
