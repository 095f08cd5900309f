// The storage cost of one streamed event, as confab-server's db thread pays it: N executions each
// append one event per group commit (BEGIN IMMEDIATE ... COMMIT), on the real schema and rows
// (made by SqliteStore::open and insert_execution) with the server's pragmas. Two statement
// shapes, the same connection settings, in the same process:
//   old    what Store::append_event ran up to 8f3ff0e: SAVEPOINT, UPDATE executions SET last_seq
//          (the dense-sequence check; it rewrites the execution's row), INSERT, RELEASE
//   store  Store::append_event now: kAppendEventSql, one INSERT ... SELECT that checks the
//          execution's existence and the sequence itself (no savepoint: one statement is atomic)
// Counters: CPU per event (items), and WAL bytes per event: frames x (page size + 24), with
// automatic checkpoints off. bench/run.mjs (part "store") turns them into the table's rows.
// GCC 12 reports a false -Wrestrict in std::string assignments inlined here (GCC bug 105329).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "store_sqlite.hpp"

namespace {

using confab::server::ExecutionRecord;
using confab::server::SqliteStore;

void check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
    }
}

struct WalPages {
    long long frames = 0;
};

int on_wal(void* arg, sqlite3*, const char*, int pages) {
    static_cast<WalPages*>(arg)->frames = pages;
    return SQLITE_OK;
}

void BM_AppendEvent(benchmark::State& state, bool old_shape) {
    const auto executions = static_cast<int>(state.range(0));
    char tmpl[] = "/tmp/confab-store-bench-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    const std::string dir = tmpl;
    std::vector<std::string> ids;
    {
        // The real schema, and rows as the server writes them (a chat's inputs hold the message).
        auto store = SqliteStore::open(dir);
        if (!store.ok()) throw std::runtime_error(store.error().message);
        for (int i = 0; i < executions; ++i) {
            ExecutionRecord r;
            char id[40];
            std::snprintf(id, sizeof id, "ex_%032x", i);
            r.id = id;
            r.workspace_id = "bench";
            r.user_id = "user_stream_bench";
            r.app_id = "clock-50ms";
            r.version = "1";
            r.kind = "chat";
            std::snprintf(id, sizeof id, "se_%032x", i);
            r.session_id = id;
            r.inputs = {{"message", std::string(600, 'x')}};
            if (auto st = (*store)->insert_execution(r); !st) throw std::runtime_error(st.error().message);
            ids.push_back(r.id);
        }
        if (auto st = (*store)->checkpoint(); !st) throw std::runtime_error(st.error().message);
    }
    sqlite3* db = nullptr;
    WalPages wal;
    check(sqlite3_open((dir + "/confab.db").c_str(), &db), db, "open");
    for (const char* p : {"PRAGMA busy_timeout = 5000", "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
                          "PRAGMA foreign_keys = ON", "PRAGMA wal_autocheckpoint = 0"}) {
        check(sqlite3_exec(db, p, nullptr, nullptr, nullptr), db, p);
    }
    sqlite3_wal_hook(db, on_wal, &wal);
    sqlite3_stmt* up = nullptr;
    sqlite3_stmt* ins = nullptr;
    check(sqlite3_prepare_v2(db, "UPDATE executions SET last_seq = ?1 WHERE id = ?2 AND last_seq = ?1 - 1", -1, &up, nullptr), db, "prepare");
    check(sqlite3_prepare_v2(db, old_shape ? "INSERT INTO events (execution_id, seq, type, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"
                                           : confab::server::kAppendEventSql, -1, &ins, nullptr), db, "prepare");
    const std::string type = "agent-response";
    const std::string data = R"({"token":"ABCD"})";
    std::int64_t seq = 0;
    auto insert = [&](const std::string& id) {
        sqlite3_bind_text(ins, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, seq);
        sqlite3_bind_text(ins, 3, type.data(), static_cast<int>(type.size()), SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
        sqlite3_bind_int64(ins, 5, 1700000000000);
        check(sqlite3_step(ins), db, "insert");
        sqlite3_reset(ins);
        if (sqlite3_changes(db) != 1) throw std::runtime_error("the insert stored no event");
    };
    for (auto _ : state) {
        ++seq;
        check(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), db, "begin");
        for (const auto& id : ids) {
            if (old_shape) {
                check(sqlite3_exec(db, "SAVEPOINT tx", nullptr, nullptr, nullptr), db, "savepoint");
                sqlite3_bind_int64(up, 1, seq);
                sqlite3_bind_text(up, 2, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
                check(sqlite3_step(up), db, "update");
                sqlite3_reset(up);
                if (sqlite3_changes(db) != 1) throw std::runtime_error("update changed no row");
                insert(id);
                check(sqlite3_exec(db, "RELEASE tx", nullptr, nullptr, nullptr), db, "release");
            } else {
                insert(id);
            }
        }
        check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
    }
    const double events = static_cast<double>(state.iterations()) * executions;
    state.SetItemsProcessed(static_cast<std::int64_t>(events));
    sqlite3_stmt* ps = nullptr;
    check(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &ps, nullptr), db, "page_size");
    check(sqlite3_step(ps), db, "page_size");
    const double page = static_cast<double>(sqlite3_column_int64(ps, 0));
    sqlite3_finalize(ps);
    state.counters["wal_bytes_per_event"] = static_cast<double>(wal.frames) * (page + 24) / events;
    if (up) sqlite3_finalize(up);
    if (ins) sqlite3_finalize(ins);
    sqlite3_close(db);
    std::filesystem::remove_all(dir);
}

// A fixed amount of work for both shapes (Google Benchmark would otherwise run the faster one
// longer): the WAL per event depends on how many events each execution has (its B-tree pages).
#ifndef STORE_BENCH_ITERATIONS
#define STORE_BENCH_ITERATIONS 40
#endif
constexpr benchmark::IterationCount kIterations = STORE_BENCH_ITERATIONS;

}  // namespace

BENCHMARK_CAPTURE(BM_AppendEvent, old, true)->ArgName("executions")->Arg(1000)->Iterations(kIterations)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_AppendEvent, store, false)->ArgName("executions")->Arg(1000)->Iterations(kIterations)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
