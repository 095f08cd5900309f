// Tests of the stores (CRUD, tenant scoping, dense event seq, restarts) and the DbExecutor, each run
// on SQLite and on PostgreSQL (the latter when CONFAB_TEST_DATABASE_URL names an admin URL, as
// make test-server-pg sets it; skipped with a message otherwise).
// GCC 12 under ThreadSanitizer (make test-tsan) reports a std::string copy of a short literal,
// inlined into one test, as reading past the literal (-Warray-bounds, a false positive of its
// inlining: GCC bug 105651 and kin): not an error in this file.
#pragma GCC diagnostic ignored "-Warray-bounds"
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <stdexcept>
#include <thread>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include "db_executor.hpp"
#include "store.hpp"
#include "store_pg.hpp"
#include "pg_sql.hpp"
#include "store_sqlite.hpp"

namespace {

namespace asio = boost::asio;
using confab::server::DbExecutor;
using confab::server::DocRecord;
using confab::server::EventRecord;
using confab::server::ExecutionRecord;
using confab::server::MessageRecord;
using confab::server::SessionRecord;
using confab::server::Store;
using confab::protocol::ExecutionStatus;
using confab::protocol::Json;
using confab::protocol::Role;

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/confab-store-test-XXXXXX";
        const char* p = mkdtemp(tmpl);
        if (p == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = p;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::unique_ptr<Store> open_store(const std::string& dir) {
    auto s = confab::server::SqliteStore::open(dir);
    if (!s) ADD_FAILURE() << s.error().code << ": " << s.error().message;
    return s ? std::unique_ptr<Store>(std::move(*s)) : nullptr;
}

using confab::pgtest::with_database;

// Runs one statement on a connection of its own; the first column of the first row, or "" (and a
// test failure) on an error.
std::string pg_exec(const std::string& url, const std::string& sql) {
    try {
        return confab::pgtest::first_value(url, sql);
    } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        return "";
    }
}

// Where a test's store lives: a temporary SQLite data dir, or a fresh PostgreSQL database (created
// from CONFAB_TEST_DATABASE_URL, dropped at the end).
class Backend {
public:
    explicit Backend(std::string kind) : kind_(std::move(kind)) {
        if (kind_ != "postgres") return;
        const char* admin = std::getenv("CONFAB_TEST_DATABASE_URL");
        if (admin == nullptr || *admin == '\0') return;
        admin_ = admin;
        std::random_device rd;
        db_ = "confab_unit_" + std::to_string(::getpid()) + "_" + std::to_string(rd() % 1000000);
        pg_exec(admin_, "CREATE DATABASE " + db_);
        url_ = with_database(admin_, db_);
    }
    ~Backend() {
        if (!db_.empty()) pg_exec(admin_, "DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
    }
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    bool sqlite() const { return kind_ == "sqlite"; }
    bool available() const { return sqlite() || !url_.empty(); }
    const std::string& url() const { return url_; }
    const TempDir& dir() const { return dir_; }

    // A new store on the same data (a restart).
    std::unique_ptr<Store> open() {
        if (sqlite()) return open_store(dir_.path());
        auto s = confab::server::PgStore::open(url_, 10000);
        if (!s) ADD_FAILURE() << s.error().code << ": " << s.error().message;
        return s ? std::unique_ptr<Store>(std::move(*s)) : nullptr;
    }
    // SQL on a connection of its own (the store's may be open): the first value it returns.
    std::string exec_raw(const std::string& sqlite_sql, const std::string& pg_sql) {
        if (!sqlite()) return pg_exec(url_, pg_sql);
        sqlite3* db = nullptr;
        std::string out;
        EXPECT_EQ(sqlite3_open((dir_.path() + "/confab.db").c_str(), &db), SQLITE_OK);
        sqlite3_stmt* st = nullptr;
        const char* tail = sqlite_sql.c_str();
        while (tail != nullptr && *tail != '\0') {
            if (sqlite3_prepare_v2(db, tail, -1, &st, &tail) != SQLITE_OK) {
                ADD_FAILURE() << sqlite_sql << ": " << sqlite3_errmsg(db);
                break;
            }
            if (st == nullptr) break;
            if (sqlite3_step(st) == SQLITE_ROW && out.empty()) {
                const unsigned char* t = sqlite3_column_text(st, 0);
                out = t != nullptr ? reinterpret_cast<const char*>(t) : "";
            }
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
        return out;
    }

private:
    std::string kind_;
    TempDir dir_;
    std::string admin_, db_, url_;
};

// Both stores: "sqlite", "postgres" (skipped without CONFAB_TEST_DATABASE_URL).
class BackendTest : public ::testing::TestWithParam<const char*> {
protected:
    void SetUp() override {
        backend = std::make_unique<Backend>(GetParam());
        if (!backend->available()) {
            GTEST_SKIP() << "CONFAB_TEST_DATABASE_URL is not set: the PostgreSQL store is not tested here "
                            "(make test-server-pg runs these tests against a throwaway cluster)";
        }
    }
    bool sqlite() const { return backend->sqlite(); }
    std::unique_ptr<Backend> backend;
};

std::string backend_name(const ::testing::TestParamInfo<const char*>& info) { return info.param; }

ExecutionRecord make_exec(std::string id, std::string ws = "w1", std::string user = "u1") {
    ExecutionRecord r;
    r.id = std::move(id);
    r.workspace_id = std::move(ws);
    r.user_id = std::move(user);
    r.app_id = "haiku";
    r.version = "2";
    r.kind = "execution";
    r.status = ExecutionStatus::queued;
    r.inputs = Json{{"topic", "rain"}, {"n", 3}};
    r.created_at = 1000;
    r.updated_at = 1000;
    return r;
}

EventRecord ev(std::uint64_t seq, std::string type = "delta", std::string data = R"({"content":"x"})") {
    return EventRecord{seq, std::move(type), std::move(data), 2000 + static_cast<std::int64_t>(seq)};
}

SessionRecord make_session(std::string id, std::string ws, std::string user, std::string app, std::int64_t t) {
    SessionRecord s;
    s.id = std::move(id);
    s.workspace_id = std::move(ws);
    s.user_id = std::move(user);
    s.app_id = std::move(app);
    s.created_at = t;
    s.updated_at = t;
    return s;
}

class StoreTest : public BackendTest {
protected:
    void SetUp() override {
        BackendTest::SetUp();
        if (IsSkipped()) return;
        store = backend->open();
        ASSERT_NE(store, nullptr);
    }
    std::unique_ptr<Store> reopen() { return backend->open(); }
    std::unique_ptr<Store> store;
};
INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "postgres"), backend_name);

class DbExecutorTest : public BackendTest {};
INSTANTIATE_TEST_SUITE_P(Backends, DbExecutorTest, ::testing::Values("sqlite", "postgres"), backend_name);

TEST_P(StoreTest, OpenCreatesTheDatabaseWithTheCurrentSchema) {
    if (sqlite()) {
        EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(backend->dir().path()) / "confab.db"));
    }
    EXPECT_EQ(store->schema_version(), 7);
}

TEST_P(StoreTest, PutRunIfWritesOnlyOverTheExpectedStatus) {
    DocRecord run{"wr_1", "w1", "wf", "PAUSED", 1, 1, Json{{"n", 1}}};
    ASSERT_TRUE(store->put_run(run).ok());
    run.label = "QUEUED";
    run.doc = Json{{"n", 2}};
    auto first = store->put_run_if(run, "PAUSED");
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_TRUE(*first);
    run.doc = Json{{"n", 3}};
    EXPECT_FALSE(*store->put_run_if(run, "PAUSED")) << "no longer PAUSED: a second resume loses";
    EXPECT_EQ(store->get_run("w1", "wr_1")->doc, (Json{{"n", 2}}));
    EXPECT_EQ(store->get_run("w1", "wr_1")->label, "QUEUED");
    DocRecord other{"wr_none", "w1", "wf", "QUEUED", 1, 1, Json::object()};
    EXPECT_FALSE(*store->put_run_if(other, "PAUSED"));
    EXPECT_FALSE(store->get_run("w1", "wr_none").has_value());
}

TEST_P(StoreTest, ASharedStoreKeepsRateBucketsAndMcpSessions) {
    if (sqlite()) {
        // One process: its limiter and MCP sessions live in memory; the store refuses to keep them.
        EXPECT_FALSE(store->shared());
        EXPECT_FALSE(store->take_rate_tokens({{"k", 1, 2, 1}}).ok());
        return;
    }
    ASSERT_TRUE(store->shared());
    auto take = [&](std::vector<Store::RateTakeRequest> r) {
        auto t = store->take_rate_tokens(r);
        EXPECT_TRUE(t.ok()) << t.error().message;
        return t.ok() ? *t : std::vector<Store::RateTake>(r.size());
    };
    // A bucket of 3 that refills once in 1000 s: 3 granted one by one, then refused with less
    // than a token left.
    for (int i = 0; i < 3; ++i) EXPECT_EQ(take({{"w\x1fu:a", 0.001, 3, 1}})[0].granted, 1) << i;
    auto refused = take({{"w\x1fu:a", 0.001, 3, 1}})[0];
    EXPECT_EQ(refused.granted, 0);
    EXPECT_GE(refused.tokens, 0.0);
    EXPECT_LT(refused.tokens, 1.0);
    // Several keys and counts in one statement (answered in the order asked): 5 asked of a
    // bucket of 4 get 4; another key has a bucket of its own; an odd key is stored too.
    auto many = take({{"w\x1fu:c", 0.001, 4, 5}, {"w\x1fu:b", 0.001, 3, 2}, {std::string("w\x1fu:\0\xff", 8), 0.001, 2, 1}});
    EXPECT_EQ(many[0].granted, 4);
    EXPECT_LT(many[0].tokens, 1.0);
    EXPECT_EQ(many[1].granted, 2);
    EXPECT_NEAR(many[1].tokens, 1.0, 0.01);
    EXPECT_EQ(many[2].granted, 1);
    EXPECT_EQ(take({{"w\x1fu:b", 0.001, 3, 3}})[0].granted, 1);
    // A fast refill gives tokens back within milliseconds; a burst under 1 grants nothing.
    EXPECT_EQ(take({{"fast", 1000, 1, 1}})[0].granted, 1);
    EXPECT_EQ(take({{"fast", 0.001, 1, 1}})[0].granted, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(take({{"fast", 1000, 1, 1}})[0].granted, 1);
    EXPECT_EQ(take({{"tiny", 1, 0.5, 1}})[0].granted, 0);

    // MCP sessions: found (and touched) until deleted or idle too long; past the cap, the least
    // recently used ends.
    ASSERT_TRUE(store->insert_mcp_session({"mcp_1", "w1", "2025-06-18"}, 60000, 100).ok());
    auto got = store->touch_mcp_session("mcp_1", 60000);
    ASSERT_TRUE(got.ok()) << got.error().message;
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->workspace_id, "w1");
    EXPECT_EQ((*got)->version, "2025-06-18");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(store->touch_mcp_session("mcp_1", 5)->has_value()) << "idle longer than 5 ms";
    EXPECT_TRUE(*store->delete_mcp_session("mcp_1"));
    EXPECT_FALSE(store->touch_mcp_session("mcp_1", 60000)->has_value());
    EXPECT_FALSE(*store->delete_mcp_session("mcp_1"));
    for (const char* id : {"mcp_a", "mcp_b"}) ASSERT_TRUE(store->insert_mcp_session({id, "w2", "v"}, 60000, 2).ok());
    ASSERT_TRUE(store->touch_mcp_session("mcp_a", 60000)->has_value());
    ASSERT_TRUE(store->insert_mcp_session({"mcp_c", "w2", "v"}, 60000, 2).ok());
    EXPECT_FALSE(store->touch_mcp_session("mcp_b", 60000)->has_value()) << "the least recently used ended";
    EXPECT_TRUE(store->touch_mcp_session("mcp_a", 60000)->has_value());
    EXPECT_TRUE(store->touch_mcp_session("mcp_c", 60000)->has_value());
}

TEST_P(StoreTest, OpenCreatesAMissingDataDirectory) {
    if (!sqlite()) GTEST_SKIP() << "sqlite only: the data directory";
    const std::string nested = backend->dir().path() + "/data";
    auto s = open_store(nested);
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(std::filesystem::is_directory(nested));
}

TEST_P(StoreTest, OpenFailsClearlyWhenTheDirectoryCannotBeCreated) {
    if (!sqlite()) GTEST_SKIP() << "sqlite only: the data directory";
    const std::string file = backend->dir().path() + "/not-a-dir";
    { std::FILE* f = std::fopen(file.c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
    auto s = confab::server::SqliteStore::open(file + "/sub");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "storage_error");
    EXPECT_NE(s.error().message.find("not-a-dir"), std::string::npos) << s.error().message;
}

TEST_P(StoreTest, InsertedExecutionReadsBackWithAllFields) {
    auto r = make_exec("ex_1");
    r.kind = "chat";
    r.session_id = "se_1";
    ASSERT_TRUE(store->insert_execution(r).ok());
    auto got = store->get_execution("w1", "u1", "ex_1");
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->id, "ex_1");
    EXPECT_EQ(got->app_id, "haiku");
    EXPECT_EQ(got->version, "2");
    EXPECT_EQ(got->kind, "chat");
    EXPECT_EQ(got->session_id, std::optional<std::string>("se_1"));
    EXPECT_EQ(got->status, ExecutionStatus::queued);
    EXPECT_EQ(got->inputs, (Json{{"topic", "rain"}, {"n", 3}}));
    EXPECT_TRUE(got->output.is_null());
    EXPECT_FALSE(got->error.has_value());
    EXPECT_EQ(got->created_at, 1000);
    EXPECT_EQ(got->last_seq, 0u);
    EXPECT_TRUE(store->get_execution_by_id("ex_1").has_value());
    EXPECT_FALSE(store->get_execution_by_id("ex_2").has_value());
}

TEST_P(StoreTest, DuplicateExecutionIdIsAConflict) {
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1")).ok());
    auto st = store->insert_execution(make_exec("ex_1"));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "conflict");
}

TEST_P(StoreTest, ExecutionsOfAnotherWorkspaceOrUserAreNotFound) {
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1", "w1", "u1")).ok());
    ASSERT_TRUE(store->insert_execution(make_exec("ex_anon", "w1", "")).ok());
    EXPECT_TRUE(store->get_execution("w1", "u1", "ex_1").has_value());
    EXPECT_FALSE(store->get_execution("w2", "u1", "ex_1").has_value());
    EXPECT_FALSE(store->get_execution("w1", "u2", "ex_1").has_value());
    EXPECT_FALSE(store->get_execution("w1", "", "ex_1").has_value());
    EXPECT_TRUE(store->get_execution("w1", "", "ex_anon").has_value());
    EXPECT_FALSE(store->get_execution("w1", "u1", "ex_anon").has_value());
}

TEST_P(StoreTest, EventsMustHaveDenseSequenceNumbers) {
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1")).ok());
    ASSERT_TRUE(store->append_event("ex_1", ev(1)).ok());
    auto dup = store->append_event("ex_1", ev(1));
    ASSERT_FALSE(dup.ok());
    EXPECT_EQ(dup.error().code, "conflict");
    auto gap = store->append_event("ex_1", ev(3));
    ASSERT_FALSE(gap.ok());
    EXPECT_EQ(gap.error().code, "conflict");
    EXPECT_NE(gap.error().message.find("2"), std::string::npos) << gap.error().message;
    ASSERT_TRUE(store->append_event("ex_1", ev(2, "completed", R"({"status":"success"})")).ok());
    EXPECT_EQ(store->get_execution("w1", "u1", "ex_1")->last_seq, 2u);

    auto missing = store->append_event("ex_nope", ev(1));
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, "not_found");

    auto all = store->events_after("ex_1", 0, 100);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].seq, 1u);
    EXPECT_EQ(all[0].type, "delta");
    EXPECT_EQ(all[0].data, R"({"content":"x"})");
    EXPECT_EQ(all[0].created_at, 2001);
    EXPECT_EQ(all[1].seq, 2u);
    EXPECT_EQ(all[1].type, "completed");
    auto after1 = store->events_after("ex_1", 1, 100);
    ASSERT_EQ(after1.size(), 1u);
    EXPECT_EQ(after1[0].seq, 2u);
    EXPECT_EQ(store->events_after("ex_1", 0, 1).size(), 1u);
    EXPECT_TRUE(store->events_after("ex_1", 2, 100).empty());
}

TEST_P(StoreTest, FinishResolvesOnceAndLaterTransitionsConflict) {
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1")).ok());
    ASSERT_TRUE(store->set_status("ex_1", ExecutionStatus::running, 1100).ok());
    EXPECT_EQ(store->get_execution("w1", "u1", "ex_1")->status, ExecutionStatus::running);

    ASSERT_TRUE(store->finish_execution("ex_1", ExecutionStatus::success, Json("done text"), std::nullopt, 1200).ok());
    auto cancel = store->finish_execution("ex_1", ExecutionStatus::cancelled, Json(), std::nullopt, 1300);
    ASSERT_FALSE(cancel.ok());
    EXPECT_EQ(cancel.error().code, "conflict");
    auto running = store->set_status("ex_1", ExecutionStatus::running, 1300);
    ASSERT_FALSE(running.ok());
    EXPECT_EQ(running.error().code, "conflict");

    auto got = store->get_execution("w1", "u1", "ex_1");
    EXPECT_EQ(got->status, ExecutionStatus::success);
    EXPECT_EQ(got->output, Json("done text"));
    EXPECT_EQ(got->updated_at, 1200);

    auto missing = store->finish_execution("ex_x", ExecutionStatus::error, Json(), std::string("e"), 1);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, "not_found");
    auto not_terminal = store->finish_execution("ex_1", ExecutionStatus::running, Json(), std::nullopt, 1);
    EXPECT_FALSE(not_terminal.ok());
}

TEST_P(StoreTest, FinishWithErrorStoresTheMessageAndJsonOutput) {
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1")).ok());
    ASSERT_TRUE(store->finish_execution("ex_1", ExecutionStatus::error, Json{{"partial", true}},
                                        std::string("upstream said no"), 5)
                    .ok());
    auto got = store->get_execution("w1", "u1", "ex_1");
    EXPECT_EQ(got->status, ExecutionStatus::error);
    EXPECT_EQ(got->error, std::optional<std::string>("upstream said no"));
    EXPECT_EQ(got->output, (Json{{"partial", true}}));
}

TEST_P(StoreTest, FailInterruptedEndsEveryUnfinishedRunWithTerminalEvents) {
    ASSERT_TRUE(store->insert_execution(make_exec("ex_queued")).ok());
    ASSERT_TRUE(store->insert_execution(make_exec("ex_running")).ok());
    ASSERT_TRUE(store->set_status("ex_running", ExecutionStatus::running, 1).ok());
    ASSERT_TRUE(store->append_event("ex_running", ev(1)).ok());
    auto chat = make_exec("ex_chat");
    chat.kind = "chat";
    chat.session_id = "se_9";
    chat.status = ExecutionStatus::running;
    ASSERT_TRUE(store->insert_execution(chat).ok());
    ASSERT_TRUE(store->insert_execution(make_exec("ex_done")).ok());
    ASSERT_TRUE(store->finish_execution("ex_done", ExecutionStatus::success, Json("ok"), std::nullopt, 2).ok());

    auto n = store->fail_interrupted(9000);
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_EQ(*n, 3u);

    for (const char* id : {"ex_queued", "ex_running", "ex_chat"}) {
        auto got = store->get_execution("w1", "u1", id);
        ASSERT_TRUE(got.has_value());
        EXPECT_EQ(got->status, ExecutionStatus::error) << id;
        ASSERT_TRUE(got->error.has_value());
        EXPECT_NE(got->error->find("interrupted"), std::string::npos);
        EXPECT_EQ(got->updated_at, 9000);
    }
    auto events = store->events_after("ex_running", 0, 100);
    ASSERT_EQ(events.size(), 3u);  // the delta, then error + completed with dense seq
    EXPECT_EQ(events[1].seq, 2u);
    EXPECT_EQ(events[1].type, "error");
    EXPECT_EQ(Json::parse(events[1].data)["code"], "interrupted");
    EXPECT_EQ(events[2].seq, 3u);
    EXPECT_EQ(events[2].type, "completed");
    EXPECT_EQ(Json::parse(events[2].data)["status"], "error");
    EXPECT_EQ(store->get_execution("w1", "u1", "ex_running")->last_seq, 3u);

    auto chat_events = store->events_after("ex_chat", 0, 100);
    ASSERT_EQ(chat_events.size(), 2u);
    const Json completed = Json::parse(chat_events[1].data);
    EXPECT_EQ(completed["sessionId"], "se_9");
    EXPECT_EQ(completed["status"], "error");

    EXPECT_EQ(store->get_execution("w1", "u1", "ex_done")->status, ExecutionStatus::success);
    EXPECT_TRUE(store->events_after("ex_done", 0, 10).empty());
    auto again = store->fail_interrupted(9001);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, 0u);
}

TEST_P(StoreTest, SessionsAreScopedListedNewestFirstAndDeletedWithTheirMessages) {
    ASSERT_TRUE(store->insert_session(make_session("se_a", "w1", "u1", "assistant", 100)).ok());
    ASSERT_TRUE(store->insert_session(make_session("se_b", "w1", "u1", "other", 200)).ok());
    ASSERT_TRUE(store->insert_session(make_session("se_c", "w1", "u2", "assistant", 300)).ok());
    ASSERT_TRUE(store->insert_session(make_session("se_d", "w2", "u1", "assistant", 400)).ok());
    EXPECT_EQ(store->insert_session(make_session("se_a", "w1", "u1", "assistant", 1)).error().code, "conflict");

    EXPECT_TRUE(store->get_session("w1", "u1", "se_a").has_value());
    EXPECT_FALSE(store->get_session("w1", "u2", "se_a").has_value());
    EXPECT_FALSE(store->get_session("w2", "u1", "se_a").has_value());

    ASSERT_TRUE(store->append_message({"se_a", Role::user, "Hello there", std::nullopt, 500}).ok());
    ASSERT_TRUE(store->append_message({"se_a", Role::assistant, "## Echo\n...", std::string("ex_1"), 501}).ok());
    ASSERT_TRUE(store->append_message({"se_a", Role::user, "Second", std::nullopt, 502}).ok());
    EXPECT_EQ(store->append_message({"se_missing", Role::user, "x", std::nullopt, 1}).error().code, "not_found");

    auto a = store->get_session("w1", "u1", "se_a");
    EXPECT_EQ(a->message_count, 3);
    EXPECT_EQ(a->updated_at, 502);
    EXPECT_EQ(a->title, "Hello there");  // the first user message

    auto list = store->list_sessions("w1", "u1", "", 10);
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].id, "se_a");  // updated most recently
    EXPECT_EQ(list[1].id, "se_b");
    auto only = store->list_sessions("w1", "u1", "other", 10);
    ASSERT_EQ(only.size(), 1u);
    EXPECT_EQ(only[0].id, "se_b");
    EXPECT_EQ(store->list_sessions("w1", "u1", "", 1).size(), 1u);

    auto msgs = store->messages("se_a");
    ASSERT_EQ(msgs.size(), 3u);
    EXPECT_EQ(msgs[0].role, Role::user);
    EXPECT_EQ(msgs[1].role, Role::assistant);
    EXPECT_EQ(msgs[1].execution_id, std::optional<std::string>("ex_1"));
    EXPECT_EQ(msgs[2].content, "Second");

    auto other_user = store->delete_session("w1", "u2", "se_a");
    ASSERT_TRUE(other_user.ok());
    EXPECT_FALSE(*other_user);
    EXPECT_TRUE(store->get_session("w1", "u1", "se_a").has_value());
    auto del = store->delete_session("w1", "u1", "se_a");
    ASSERT_TRUE(del.ok());
    EXPECT_TRUE(*del);
    EXPECT_FALSE(store->get_session("w1", "u1", "se_a").has_value());
    EXPECT_TRUE(store->messages("se_a").empty());
    EXPECT_FALSE(*store->delete_session("w1", "u1", "se_a"));
}

TEST_P(StoreTest, LongTitlesAreCutOnACharacterBoundary) {
    ASSERT_TRUE(store->insert_session(make_session("se_a", "w1", "u1", "assistant", 1)).ok());
    std::string msg;
    for (int i = 0; i < 60; ++i) msg += "é";  // 120 bytes
    ASSERT_TRUE(store->append_message({"se_a", Role::user, msg, std::nullopt, 2}).ok());
    const std::string title = store->get_session("w1", "u1", "se_a")->title;
    const std::string ellipsis = "…";
    ASSERT_GT(title.size(), ellipsis.size());
    ASSERT_EQ(title.substr(title.size() - ellipsis.size()), ellipsis);
    const std::string prefix = title.substr(0, title.size() - ellipsis.size());
    EXPECT_LE(prefix.size(), 80u);
    EXPECT_EQ(msg.compare(0, prefix.size(), prefix), 0);
    EXPECT_EQ(prefix.size() % 2, 0u);  // whole two-byte characters only
}

TEST_P(StoreTest, CountsExecutionsByStatus) {
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1")).ok());
    ASSERT_TRUE(store->insert_execution(make_exec("ex_2")).ok());
    ASSERT_TRUE(store->insert_execution(make_exec("ex_3")).ok());
    ASSERT_TRUE(store->finish_execution("ex_3", ExecutionStatus::cancelled, Json(), std::nullopt, 1).ok());
    auto counts = store->count_executions_by_status();
    EXPECT_EQ(counts["queued"], 2);
    EXPECT_EQ(counts["cancelled"], 1);
    EXPECT_EQ(counts["success"], 0);
    EXPECT_EQ(counts.size(), 5u);
}

TEST_P(StoreTest, DataSurvivesCloseAndReopenAndMigrationIsIdempotent) {
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1")).ok());
    ASSERT_TRUE(store->append_event("ex_1", ev(1)).ok());
    ASSERT_TRUE(store->insert_session(make_session("se_a", "w1", "u1", "assistant", 1)).ok());
    ASSERT_TRUE(store->append_message({"se_a", Role::user, "hi", std::nullopt, 2}).ok());
    ASSERT_TRUE(store->checkpoint().ok());
    store.reset();

    for (int round = 0; round < 2; ++round) {
        auto s = reopen();
        ASSERT_NE(s, nullptr);
        EXPECT_EQ(s->schema_version(), 7);
        auto got = s->get_execution("w1", "u1", "ex_1");
        ASSERT_TRUE(got.has_value());
        EXPECT_EQ(got->last_seq, 1u);
        EXPECT_EQ(s->events_after("ex_1", 0, 10).size(), 1u);
        EXPECT_EQ(s->messages("se_a").size(), 1u);
        // The dense-seq rule continues across restarts.
        EXPECT_EQ(s->append_event("ex_1", ev(1)).error().code, "conflict");
    }
}

TEST_P(StoreTest, WritesAreVisibleToAnotherConnectionWithoutACheckpoint) {
    // Committed before returning: a second connection (as after kill -9) sees the write at once.
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1")).ok());
    ASSERT_TRUE(store->append_event("ex_1", ev(1)).ok());
    const std::string sql = "SELECT COUNT(*) FROM events WHERE execution_id = 'ex_1'";
    EXPECT_EQ(backend->exec_raw(sql, sql), "1");
}

// ---- DbExecutor ----

TEST_P(DbExecutorTest, RunsOnTheDbThreadAndResumesOnTheCallersExecutor) {
    auto store = backend->open();
    ASSERT_NE(store, nullptr);
    DbExecutor db(std::move(store));
    asio::io_context io;
    const auto io_thread = std::this_thread::get_id();
    std::thread::id db_thread;
    std::thread::id resumed_on;
    std::optional<ExecutionRecord> got;
    bool threw = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto st = co_await db.run([&](Store& s) {
                db_thread = std::this_thread::get_id();
                return s.insert_execution(make_exec("ex_1"));
            });
            EXPECT_TRUE(st.ok());
            got = co_await db.run([](Store& s) { return s.get_execution("w1", "u1", "ex_1"); });
            co_await db.run([](Store& s) { (void)s.set_status("ex_1", ExecutionStatus::running, 5); });
            // A void job owning a non-trivial capture (the case g++ 12 double-frees when the
            // closure is a temporary inside co_await; run() must not create such a temporary).
            auto by_value = [id = std::string(48, 'z')](Store& s) { (void)s.insert_execution(make_exec(id)); };
            co_await db.run(std::move(by_value));
            resumed_on = std::this_thread::get_id();
            try {
                co_await db.run([](Store&) -> int { throw std::logic_error("boom"); });
            } catch (const std::logic_error& e) {
                threw = std::string(e.what()) == "boom";
            }
        },
        [](std::exception_ptr ep) { EXPECT_FALSE(ep); });
    io.run();
    EXPECT_NE(db_thread, std::thread::id());
    EXPECT_NE(db_thread, io_thread);
    EXPECT_EQ(resumed_on, io_thread);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->id, "ex_1");
    EXPECT_TRUE(threw);
    EXPECT_EQ(db.run_blocking([](Store& s) { return s.get_execution_by_id("ex_1")->status; }),
              ExecutionStatus::running);
    EXPECT_TRUE(db.run_blocking([](Store& s) { return s.get_execution_by_id(std::string(48, 'z')).has_value(); }));
}

TEST_P(DbExecutorTest, StopDrainsQueuedWorkThenRefusesMore) {
    auto store = backend->open();
    ASSERT_NE(store, nullptr);
    asio::io_context io;
    std::atomic<int> completed{0};
    {
        DbExecutor db(std::move(store));
        // Queue work from 20 coroutines, in order, before anything runs on the io_context.
        for (int i = 0; i < 20; ++i) {
            asio::co_spawn(
                io,
                [&db, &completed, i]() -> asio::awaitable<void> {
                    auto st = co_await db.run([i](Store& s) {
                        return s.insert_execution(make_exec("ex_" + std::to_string(i)));
                    });
                    if (st.ok()) ++completed;
                },
                [](std::exception_ptr ep) { EXPECT_FALSE(ep); });
        }
        io.poll();  // starts each coroutine up to its co_await: all 20 jobs are queued
        db.stop();  // drains them
        // The db thread may have answered all 20 while poll() ran: then the io_context ran out of
        // work and stopped, and run() below would return without starting the next coroutine.
        io.restart();
        EXPECT_THROW(db.run_blocking([](Store&) { return 1; }), std::runtime_error);
        bool refused = false;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                try {
                    co_await db.run([](Store&) { return 1; });
                } catch (const std::runtime_error&) {
                    refused = true;
                }
            },
            [](std::exception_ptr ep) { EXPECT_FALSE(ep); });
        io.run();
        EXPECT_TRUE(refused);
    }
    EXPECT_EQ(completed.load(), 20);
    auto reopened = backend->open();
    ASSERT_NE(reopened, nullptr);
    EXPECT_EQ(reopened->count_executions_by_status()["queued"], 20);
}

// Jobs that queue up while the db thread is busy run as one transaction (group commit): each keeps
// its own result, a failing one is rolled back alone, and none is answered before the commit.
TEST_P(DbExecutorTest, JobsQueuedTogetherShareOneCommitAndFailAlone) {
    auto store = backend->open();
    ASSERT_NE(store, nullptr);
    asio::io_context io;
    int ok = 0, conflicts = 0;
    {
        DbExecutor db(std::move(store));
        ASSERT_TRUE(db.run_blocking([](Store& s) { return s.insert_execution(make_exec("ex_1")); }).ok());
        std::promise<void> gate;
        auto opened = gate.get_future().share();
        // Holds the db thread so that everything below is queued before it runs.
        asio::co_spawn(
            io, [&]() -> asio::awaitable<void> { co_await db.run([&opened](Store&) { opened.wait(); return 0; }); },
            [](std::exception_ptr ep) { EXPECT_FALSE(ep); });
        io.poll();
        for (std::uint64_t seq = 1; seq <= 40; ++seq) {
            // Event 21 is sent twice: the second copy must fail (dense seqs) and change nothing.
            const int copies = seq == 21 ? 2 : 1;
            for (int c = 0; c < copies; ++c) {
                asio::co_spawn(
                    io,
                    [&, seq]() -> asio::awaitable<void> {
                        EventRecord ev{seq, "delta", R"({"content":"x"})", 1};
                        auto st = co_await db.run([&ev](Store& s) { return s.append_event("ex_1", ev); });
                        if (st.ok()) {
                            ++ok;
                        } else if (st.error().code == "conflict") {
                            ++conflicts;
                        }
                    },
                    [](std::exception_ptr ep) { EXPECT_FALSE(ep); });
            }
        }
        io.poll();  // every append is queued behind the gate
        EXPECT_EQ(ok + conflicts, 0);
        gate.set_value();
        io.run();
        EXPECT_EQ(ok, 40);
        EXPECT_EQ(conflicts, 1);
    }
    auto reopened = backend->open();
    ASSERT_NE(reopened, nullptr);
    auto events = reopened->events_after("ex_1", 0, 100);
    ASSERT_EQ(events.size(), 40u);
    for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq, i + 1);
    EXPECT_EQ(reopened->get_execution_by_id("ex_1")->last_seq, 40u);
}

// complete_on(io): a group commit's answers to callers on `io` are dispatched from one post. Each
// strand still gets its answers in the order of its jobs, exactly once, on its own strand, with
// its own result; a caller on another io_context is answered there.
TEST_P(DbExecutorTest, AGroupCommitsAnswersKeepEachStrandsOrder) {
    auto store = backend->open();
    ASSERT_NE(store, nullptr);
    asio::io_context io(2), other;
    constexpr int kStrands = 30, kJobs = 12;
    std::vector<std::vector<int>> got(kStrands);
    std::atomic<int> wrong_strand{0}, answered{0}, other_answered{0};
    {
        DbExecutor db(std::move(store));
        db.complete_on(io);
        std::promise<void> gate;
        auto opened = gate.get_future().share();
        // Holds the db thread so that every job below waits and then runs in one group.
        db.submit([opened](Store&) { opened.wait(); return 0; },
                  asio::bind_executor(io.get_executor(), [](std::exception_ptr, std::optional<int>) {}));
        std::vector<asio::strand<asio::io_context::executor_type>> strands;
        for (int s = 0; s < kStrands; ++s) strands.push_back(asio::make_strand(io));
        for (int j = 0; j < kJobs; ++j) {
            for (int s = 0; s < kStrands; ++s) {
                auto strand = strands[s];
                db.submit([j](Store&) { return j; },
                          asio::bind_executor(strand, [&, s, strand](std::exception_ptr ep, std::optional<int> r) {
                              if (!strand.running_in_this_thread()) ++wrong_strand;
                              EXPECT_FALSE(ep);
                              if (r) got[s].push_back(*r);
                              ++answered;
                          }));
            }
            db.submit([](Store&) { return 1; },
                      asio::bind_executor(other.get_executor(), [&](std::exception_ptr, std::optional<int> r) {
                          if (r) ++other_answered;
                      }));
        }
        gate.set_value();
        std::thread second([&io] { io.run(); });
        io.run();
        second.join();
        other.run();
    }
    EXPECT_EQ(answered.load(), kStrands * kJobs);
    EXPECT_EQ(wrong_strand.load(), 0);
    EXPECT_EQ(other_answered.load(), kJobs);
    std::vector<int> order(kJobs);
    for (int j = 0; j < kJobs; ++j) order[j] = j;
    for (int s = 0; s < kStrands; ++s) EXPECT_EQ(got[s], order) << "strand " << s;
}

// The same across commits: answers of one commit must not overtake those of the commit before,
// whichever I/O thread hands each over. Waves of jobs, one per strand, a commit each (2 ms
// apart); each answer takes a while, so the hand-over of one commit is still going on one I/O
// thread when the next commit's begins on the other.
TEST_P(DbExecutorTest, AnswersOfSuccessiveCommitsKeepEachStrandsOrder) {
    auto store = backend->open();
    ASSERT_NE(store, nullptr);
    asio::io_context io(2);
    constexpr int kStrands = 40, kWaves = 30;
    std::vector<std::vector<int>> got(kStrands);
    std::atomic<int> answered{0};
    {
        DbExecutor db(std::move(store));
        db.complete_on(io);
        auto guard = asio::make_work_guard(io);
        std::thread first([&io] { io.run(); });
        std::thread second([&io] { io.run(); });
        std::vector<asio::strand<asio::io_context::executor_type>> strands;
        for (int s = 0; s < kStrands; ++s) strands.push_back(asio::make_strand(io));
        for (int w = 0; w < kWaves; ++w) {
            for (int s = 0; s < kStrands; ++s) {
                db.submit([w](Store&) { return w; },
                          asio::bind_executor(strands[s], [&, s](std::exception_ptr, std::optional<int> r) {
                              if (r) got[s].push_back(*r);
                              const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
                              while (std::chrono::steady_clock::now() < until) {
                              }
                              ++answered;
                          }));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        db.stop();
        guard.reset();
        first.join();
        second.join();
    }
    EXPECT_EQ(answered.load(), kStrands * kWaves);
    std::vector<int> order(kWaves);
    for (int w = 0; w < kWaves; ++w) order[w] = w;
    for (int s = 0; s < kStrands; ++s) EXPECT_EQ(got[s], order) << "strand " << s;
}

// ---- chat turns of the widget (schema 3) ----

TEST_P(StoreTest, FailInterruptedStoresAChatTurnsPartialReplyAsInterrupted) {
    ASSERT_TRUE(store->insert_session(make_session("se_1", "w1", "u1", "assistant", 1)).ok());
    MessageRecord user{"se_1", Role::user, "tell me", std::string("ex_chat"), 2};
    user.turn_id = "tu_1";
    ASSERT_TRUE(store->append_message(user).ok());
    auto chat = make_exec("ex_chat");
    chat.kind = "chat";
    chat.session_id = "se_1";
    ASSERT_TRUE(store->insert_execution(chat).ok());
    ASSERT_TRUE(store->append_event("ex_chat", ev(1, "agent-response", R"({"token":"Once "})")).ok());
    ASSERT_TRUE(store->append_event("ex_chat", ev(2, "agent-action", R"({"tool":"x"})")).ok());
    ASSERT_TRUE(store->append_event("ex_chat", ev(3, "agent-response", R"({"token":"upon"})")).ok());

    ASSERT_TRUE(store->fail_interrupted(9000).ok());
    auto msgs = store->messages("se_1");
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[1].role, Role::assistant);
    EXPECT_EQ(msgs[1].content, "Once upon");
    EXPECT_EQ(msgs[1].status, "interrupted");
    EXPECT_EQ(msgs[1].error_code, "interrupted");
    EXPECT_EQ(msgs[1].execution_id, "ex_chat");
    EXPECT_EQ(store->get_session("w1", "u1", "se_1")->message_count, 2);
    auto events = store->events_after("ex_chat", 3, 10);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(Json::parse(events[1].data)["result"], "Once upon");
}

TEST_P(StoreTest, ReplaceReplyAndDeleteTurnKeepTheSessionConsistent) {
    ASSERT_TRUE(store->insert_session(make_session("se_1", "w1", "u1", "assistant", 1)).ok());
    ASSERT_TRUE(store->append_message({"se_1", Role::user, "first", std::string("ex_1"), 2}).ok());
    ASSERT_TRUE(store->append_message({"se_1", Role::assistant, "one", std::string("ex_1"), 3}).ok());
    ASSERT_TRUE(store->append_message({"se_1", Role::user, "second", std::string("ex_2"), 4}).ok());
    MessageRecord failed{"se_1", Role::assistant, "", std::string("ex_2"), 5};
    failed.status = "error";
    failed.error_code = "upstream_unavailable";
    failed.error_message = "the upstream is unavailable";
    ASSERT_TRUE(store->append_message(failed).ok());
    auto msgs = store->messages("se_1");
    ASSERT_EQ(msgs.size(), 4u);
    EXPECT_EQ(msgs[1].status, "success");  // a reply without a status (as before schema 3)
    EXPECT_EQ(msgs[3].status, "error");
    EXPECT_EQ(msgs[3].error_message, "the upstream is unavailable");

    // The second turn runs again: its failed reply goes, the user message points at the new run.
    ASSERT_TRUE(store->replace_reply("se_1", msgs[2].id, "ex_3", "tu_2").ok());
    auto after = store->messages("se_1");
    ASSERT_EQ(after.size(), 3u);
    EXPECT_EQ(after[2].execution_id, "ex_3");
    EXPECT_EQ(after[2].turn_id, "tu_2");
    EXPECT_EQ(store->get_session("w1", "u1", "se_1")->message_count, 3);
    EXPECT_EQ(store->replace_reply("se_1", after[1].id, "ex_4", "tu_x").error().code, "not_found");  // not a user message

    // Deleting the first turn leaves the second; deleting that one too empties the title.
    ASSERT_TRUE(store->delete_turn("se_1", after[0].id).ok());
    EXPECT_EQ(store->messages("se_1").size(), 1u);
    EXPECT_EQ(store->get_session("w1", "u1", "se_1")->title, "first");
    ASSERT_TRUE(store->delete_turn("se_1", after[2].id).ok());
    auto empty = store->get_session("w1", "u1", "se_1");
    EXPECT_EQ(empty->message_count, 0);
    EXPECT_EQ(empty->title, "");
    ASSERT_TRUE(store->append_message({"se_1", Role::user, "fresh start", std::nullopt, 9}).ok());
    EXPECT_EQ(store->get_session("w1", "u1", "se_1")->title, "fresh start");
}

TEST_P(StoreTest, IdempotencyKeysAreScopedByWorkspaceAndUserAndGoWithTheirSession) {
    ASSERT_TRUE(store->insert_session(make_session("se_1", "w1", "u1", "assistant", 1)).ok());
    confab::server::IdempotencyRecord k{"w1", "u1", "key-1", "assistant", "se_1", "fp", "tu_1", 5};
    ASSERT_TRUE(store->put_idempotency(k).ok());
    EXPECT_EQ(store->put_idempotency(k).error().code, "conflict");
    auto got = store->get_idempotency("w1", "u1", "key-1");
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->turn_id, "tu_1");
    EXPECT_EQ(got->fingerprint, "fp");
    EXPECT_FALSE(store->get_idempotency("w1", "u2", "key-1").has_value());
    EXPECT_FALSE(store->get_idempotency("w2", "u1", "key-1").has_value());
    ASSERT_TRUE(store->delete_session("w1", "u1", "se_1").ok());
    EXPECT_FALSE(store->get_idempotency("w1", "u1", "key-1").has_value());
}

TEST_P(StoreTest, FeedbackIsOnePerUserAndExecutionAndListsNewestFirst) {
    confab::server::FeedbackRecord f{"ex_1", "u1", "w1", "assistant", "up", "", 100, 100};
    auto a = store->put_feedback(f);
    ASSERT_TRUE(a.ok());
    f.rating = "down";
    f.comment = "meh";
    f.updated_at = 200;
    auto b = store->put_feedback(f);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->created_at, 100);  // a change keeps the first time
    EXPECT_EQ(b->updated_at, 200);
    EXPECT_EQ(b->rating, "down");
    ASSERT_TRUE(store->put_feedback({"ex_1", "u2", "w1", "assistant", "up", "", 150, 150}).ok());
    ASSERT_TRUE(store->put_feedback({"ex_2", "u1", "w1", "other", "up", "", 300, 300}).ok());
    ASSERT_TRUE(store->put_feedback({"ex_9", "u1", "w2", "assistant", "up", "", 400, 400}).ok());

    confab::server::FeedbackQuery q;
    q.workspace_id = "w1";
    auto all = store->list_feedback(q, 0, 10);
    EXPECT_EQ(all.total, 3);
    ASSERT_EQ(all.items.size(), 3u);
    EXPECT_EQ(all.items[0].execution_id, "ex_2");
    EXPECT_EQ(all.items[1].execution_id, "ex_1");
    EXPECT_EQ(all.items[1].user_id, "u1");
    q.rating = "up";
    EXPECT_EQ(store->list_feedback(q, 0, 10).total, 2);
    q.app_id = "assistant";
    EXPECT_EQ(store->list_feedback(q, 0, 10).total, 1);
    q = {};
    q.workspace_id = "w1";
    q.from = 150;
    q.to = 250;
    EXPECT_EQ(store->list_feedback(q, 0, 10).total, 2);
    q.from = q.to = 0;
    auto page = store->list_feedback(q, 2, 2);
    ASSERT_EQ(page.items.size(), 1u);
    EXPECT_EQ(page.total, 3);

    auto deleted = store->delete_feedback("ex_1", "u1");
    ASSERT_TRUE(deleted.ok()) << deleted.error().message;
    EXPECT_TRUE(*deleted);
    auto gone = store->delete_feedback("ex_1", "u1");
    ASSERT_TRUE(gone.ok()) << gone.error().message;
    EXPECT_FALSE(*gone);
    EXPECT_EQ(store->list_feedback(q, 0, 10).total, 2);
}

TEST_P(StoreTest, ExecutionKeysClaimOnceAndADatabaseOfSchema3GetsThem) {
    // A database of schema 3 (shipped without execution_keys) is migrated to 4 at open.
    store.reset();
    {
        backend->exec_raw("DROP TABLE execution_keys; DROP TABLE journal; DROP TABLE rate_buckets; DROP TABLE mcp_sessions; "
                          "ALTER TABLE executions DROP COLUMN owner; ALTER TABLE workflow_runs DROP COLUMN owner; "
                          "PRAGMA user_version = 3;",
                          "DROP TABLE execution_keys; DROP TABLE journal; DROP TABLE rate_buckets; DROP TABLE mcp_sessions; "
                          "DROP TABLE confab_instances; DROP FUNCTION confab_fence; ALTER TABLE executions DROP COLUMN owner; "
                          "ALTER TABLE workflow_runs DROP COLUMN owner; UPDATE confab_schema_version SET version = 3");
    }
    store = reopen();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->schema_version(), 7);

    auto first = store->claim_execution_key("w1", "u1", "k", "fp", "ex_1", 10);
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_FALSE(first->known);
    EXPECT_EQ(first->execution_id, "ex_1");
    // A retry while the first request is still starting ex_1 (not stored yet) gets ex_1, never a
    // second execution for the same key.
    auto early = store->claim_execution_key("w1", "u1", "k", "fp", "ex_2", 11);
    ASSERT_TRUE(early.ok()) << early.error().message;
    EXPECT_TRUE(early->known);
    EXPECT_EQ(early->execution_id, "ex_1");
    // The start failed: the key is given back (only by the execution that holds it) and claimed anew.
    ASSERT_TRUE(store->release_execution_key("w1", "u1", "k", "ex_other").ok());
    auto still = store->claim_execution_key("w1", "u1", "k", "fp", "ex_2", 11);
    ASSERT_TRUE(still.ok()) << still.error().message;
    EXPECT_EQ(still->execution_id, "ex_1");
    ASSERT_TRUE(store->release_execution_key("w1", "u1", "k", "ex_1").ok());
    auto again = store->claim_execution_key("w1", "u1", "k", "fp", "ex_2", 12);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_FALSE(again->known);
    EXPECT_EQ(again->execution_id, "ex_2");
    ASSERT_TRUE(store->insert_execution(make_exec("ex_2")).ok());
    auto replay = store->claim_execution_key("w1", "u1", "k", "fp", "ex_3", 13);
    ASSERT_TRUE(replay.ok()) << replay.error().message;
    EXPECT_TRUE(replay->known);
    EXPECT_EQ(replay->execution_id, "ex_2");
    auto other = store->claim_execution_key("w1", "u1", "k", "another", "ex_4", 14);
    ASSERT_TRUE(other.ok()) << other.error().message;
    EXPECT_EQ(other->fingerprint, "fp");  // the caller's 409
    auto bob = store->claim_execution_key("w1", "u2", "k", "another", "ex_5", 15);
    ASSERT_TRUE(bob.ok()) << bob.error().message;
    EXPECT_FALSE(bob->known);
}

TEST_P(StoreTest, IdempotencyKeysOlderThanTheCutOffArePurged) {
    ASSERT_TRUE(store->claim_execution_key("w1", "u1", "old", "fp", "ex_old", 1000).ok());
    ASSERT_TRUE(store->claim_execution_key("w1", "u1", "new", "fp", "ex_new", 5000).ok());
    auto gone = store->purge_idempotency_keys(2000);
    ASSERT_TRUE(gone.ok()) << gone.error().message;
    EXPECT_EQ(*gone, 1u);
    // The old key is free again; the new one still answers with its execution.
    auto old_again = store->claim_execution_key("w1", "u1", "old", "fp", "ex_2", 6000);
    ASSERT_TRUE(old_again.ok());
    EXPECT_FALSE(old_again->known);
    auto new_again = store->claim_execution_key("w1", "u1", "new", "fp", "ex_3", 6000);
    ASSERT_TRUE(new_again.ok());
    EXPECT_TRUE(new_again->known);
    EXPECT_EQ(new_again->execution_id, "ex_new");
}

}  // namespace

// The journal of live runs (docs/STREAMING.md): events go there while a run streams, and its
// completion writes the run's events, final state and chat message in one transaction.
TEST_P(StoreTest, CompleteRunWritesEventsStatusAndMessageTogetherOrNothing) {
    ASSERT_TRUE(store->insert_session(make_session("se_1", "w1", "u1", "haiku", 1)).ok());
    auto chat = make_exec("ex_1");
    chat.kind = "chat";
    chat.session_id = "se_1";
    ASSERT_TRUE(store->insert_execution(chat).ok());
    ASSERT_TRUE(store->journal_events("ex_1", {ev(1), ev(2)}).ok());
    ASSERT_TRUE(store->journal_events("ex_1", {ev(3)}).ok());
    EXPECT_EQ(store->journal_rows(), 3);
    // Live events are not events rows yet. A shared store (PostgreSQL) answers them from the journal,
    // so that a reader on another instance catches up with a run live here.
    EXPECT_EQ(store->events_after("ex_1", 0, 10).size(), sqlite() ? 0u : 3u);

    confab::server::RunCompletion c;
    c.execution_id = "ex_1";
    for (std::uint64_t i = 1; i <= 4; ++i) c.events.push_back(ev(i, i == 4 ? "completed" : "delta"));
    c.status = ExecutionStatus::success;
    c.output = Json("xxx");
    c.now = 5000;
    MessageRecord m;
    m.session_id = "se_1";
    m.role = Role::assistant;
    m.content = "xxx";
    m.execution_id = "ex_1";
    m.created_at = 5000;
    m.status = "success";
    c.message = m;

    // A completion that cannot write everything writes nothing: a gap after the stored events.
    auto gap = c;
    gap.events.erase(gap.events.begin());
    auto clash = store->complete_run(gap);
    ASSERT_FALSE(clash.ok());
    EXPECT_EQ(clash.error().code, "conflict");
    EXPECT_EQ(store->get_execution("w1", "u1", "ex_1")->status, ExecutionStatus::queued);
    EXPECT_TRUE(store->messages("se_1").empty());
    EXPECT_EQ(store->events_after("ex_1", 0, 10).size(), sqlite() ? 0u : 3u);

    // Events stored already (moved out of the journal early) are not written twice.
    ASSERT_TRUE(store->append_event("ex_1", ev(1)).ok());
    ASSERT_TRUE(store->append_event("ex_1", ev(2)).ok());
    ASSERT_TRUE(store->complete_run(c).ok());
    auto got = store->get_execution("w1", "u1", "ex_1");
    EXPECT_EQ(got->status, ExecutionStatus::success);
    EXPECT_EQ(got->output, Json("xxx"));
    EXPECT_EQ(got->last_seq, 4u);
    auto events = store->events_after("ex_1", 0, 10);
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events[3].type, "completed");
    auto msgs = store->messages("se_1");
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].content, "xxx");
    // Completed once: a second completion is a conflict and changes nothing.
    auto twice = store->complete_run(c);
    ASSERT_FALSE(twice.ok());
    EXPECT_EQ(twice.error().code, "conflict");
    EXPECT_EQ(store->messages("se_1").size(), 1u);
}

TEST_P(StoreTest, RestartMovesTheJournalOfUnfinishedRunsIntoTheirEventsThenClosesThem) {
    ASSERT_TRUE(store->insert_execution(make_exec("ex_live")).ok());
    ASSERT_TRUE(store->set_status("ex_live", ExecutionStatus::running, 1).ok());
    ASSERT_TRUE(store->insert_execution(make_exec("ex_done")).ok());
    ASSERT_TRUE(store->journal_events("ex_live", {ev(1), ev(2, "delta", R"({"content":"é"})")}).ok());
    ASSERT_TRUE(store->journal_events("ex_done", {ev(1)}).ok());
    confab::server::RunCompletion c;
    c.execution_id = "ex_done";
    c.events = {ev(1), ev(2, "completed", R"({"status":"success"})")};
    c.status = ExecutionStatus::success;
    c.output = Json("x");
    ASSERT_TRUE(store->complete_run(c).ok());
    ASSERT_TRUE(store->journal_events("ex_live", {ev(3)}).ok());

    store.reset();  // kill: the journal is all there is of ex_live
    store = reopen();
    auto n = store->fail_interrupted(9000);
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_EQ(*n, 1u);
    EXPECT_EQ(store->journal_rows(), 0);
    auto events = store->events_after("ex_live", 0, 100);
    ASSERT_EQ(events.size(), 5u);  // 1..3 from the journal, byte for byte, then error + completed
    EXPECT_EQ(events[1].data, R"({"content":"é"})");
    EXPECT_EQ(events[1].created_at, 2002);
    EXPECT_EQ(events[2].seq, 3u);
    EXPECT_EQ(events[3].type, "error");
    EXPECT_EQ(Json::parse(events[3].data)["code"], "interrupted");
    EXPECT_EQ(events[4].seq, 5u);
    EXPECT_EQ(events[4].type, "completed");
    EXPECT_EQ(store->events_after("ex_done", 0, 100).size(), 2u);  // untouched
}

TEST_P(StoreTest, TheJournalIsCutAndALongRunThatCompactsDoesNotHoldIt) {
    // ex_long streams through everything, moving its journalled events into its events rows every
    // 256 events as the hub does; 200 runs of 500 events start, stream and complete meanwhile.
    ASSERT_TRUE(store->insert_execution(make_exec("ex_long")).ok());
    ASSERT_TRUE(store->set_status("ex_long", ExecutionStatus::running, 1).ok());
    std::vector<EventRecord> long_events;
    std::uint64_t compacted = 0;
    std::int64_t most_rows = 0;
    for (int run = 0; run < 200; ++run) {
        const std::string id = "ex_" + std::to_string(run);
        ASSERT_TRUE(store->insert_execution(make_exec(id)).ok());
        std::vector<EventRecord> evs;
        for (std::uint64_t i = 1; i <= 500; ++i) evs.push_back(ev(i));
        std::vector<EventRecord> compact;
        if (long_events.size() - compacted >= 256) {
            compact.assign(long_events.begin() + static_cast<std::ptrdiff_t>(compacted), long_events.end());
            compacted = long_events.size();
        }
        long_events.push_back(ev(long_events.size() + 1));
        ASSERT_TRUE(store->begin_batch().ok());
        ASSERT_TRUE(store->journal_events("ex_long", {long_events.back()}, compact).ok());
        ASSERT_TRUE(store->journal_events(id, evs).ok());
        ASSERT_TRUE(store->commit_batch().ok());
        confab::server::RunCompletion c;
        c.execution_id = id;
        c.events = evs;
        c.events.push_back(ev(501, "completed", R"({"status":"success"})"));
        c.status = ExecutionStatus::success;
        ASSERT_TRUE(store->begin_batch().ok());
        ASSERT_TRUE(store->complete_run(c).ok());
        ASSERT_TRUE(store->commit_batch().ok());
        most_rows = std::max(most_rows, store->journal_rows());
    }
    // 100,200 rows written: the journal held at most what was written since ex_long last compacted
    EXPECT_LT(most_rows, 257 * 501 + 4096);
    EXPECT_GT(most_rows, 4096);
    // Its compacted events rows; on a shared store (PostgreSQL) its journal rows after them too.
    EXPECT_EQ(store->events_after("ex_long", 0, 1000).size(), sqlite() ? compacted : long_events.size());
    for (int run = 0; run < 200; run += 37) {
        auto evs = store->events_after("ex_" + std::to_string(run), 0, 1000);
        ASSERT_EQ(evs.size(), 501u);
        EXPECT_EQ(evs.back().type, "completed");
    }
    // A kill now: ex_long's events, compacted and still journalled, are dense 1..N, then closed.
    store.reset();
    store = reopen();
    ASSERT_TRUE(store->fail_interrupted(9000).ok());
    EXPECT_EQ(store->journal_rows(), 0);
    auto events = store->events_after("ex_long", 0, 1000);
    ASSERT_EQ(events.size(), long_events.size() + 2);
    for (std::uint64_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq, i + 1);
    EXPECT_EQ(events.back().type, "completed");
}

// A database migrated by a newer server: this one refuses it with a clear message rather than
// writing into a schema it does not know.
TEST_P(StoreTest, ASchemaNewerThanTheServerKnowsIsRefused) {
    store.reset();
    backend->exec_raw("PRAGMA user_version = 99", "UPDATE confab_schema_version SET version = 99");
    if (sqlite()) {
        auto s = confab::server::SqliteStore::open(backend->dir().path());
        ASSERT_FALSE(s.ok());
        EXPECT_NE(s.error().message.find("schema version 99 is newer than this server knows (7)"), std::string::npos)
            << s.error().message;
    } else {
        auto s = confab::server::PgStore::open(backend->url(), 10000);
        ASSERT_FALSE(s.ok());
        EXPECT_NE(s.error().message.find("schema version 99 is newer than this server knows (7)"), std::string::npos)
            << s.error().message;
        EXPECT_EQ(s.error().message.find("confab-test"), std::string::npos) << "no password: " << s.error().message;
    }
}

// PostgreSQL: the server ends our connection (a restart, a failover, an admin): the next call fails
// fast with storage_unavailable and the store says writes fail; after the backoff it reconnects by
// itself, re-prepares its statements, and a committed write makes it healthy again.
TEST_P(StoreTest, ALostConnectionFailsFastThenReconnects) {
    if (sqlite()) GTEST_SKIP() << "postgres only: a database server connection";
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1")).ok());
    ASSERT_TRUE(store->get_execution_by_id("ex_1").has_value());  // its statements are prepared
    backend->exec_raw("", "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND pid <> pg_backend_pid()");
    auto lost = store->insert_execution(make_exec("ex_2"));
    ASSERT_FALSE(lost.ok());
    EXPECT_EQ(lost.error().code, "storage_unavailable") << lost.error().message;
    EXPECT_TRUE(store->writes_failing());
    Store* s = store.get();
    confab::Status probe = confab::make_error("storage_unavailable", "not probed");
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(std::chrono::milliseconds(50))) {
        probe = s->probe_write(1);
        if (probe.ok()) break;
    }
    ASSERT_TRUE(probe.ok()) << probe.error().message;
    EXPECT_FALSE(store->writes_failing());
    ASSERT_TRUE(store->insert_execution(make_exec("ex_2")).ok());
    EXPECT_TRUE(store->get_execution_by_id("ex_1").has_value());
    EXPECT_EQ(store->insert_execution(make_exec("ex_2")).error().code, "conflict");
}

// PostgreSQL: journal writes of a batch are pipelined and checked at its commit. One that the
// server refuses (here a trigger, as a full disk or a constraint would) fails the whole batch,
// leaves nothing behind, and the connection serves the next batch.
TEST_P(StoreTest, ARefusedPipelinedJournalWriteFailsTheWholeBatch) {
    if (sqlite()) GTEST_SKIP() << "postgres only: pipelined group commits";
    backend->exec_raw("", "CREATE FUNCTION refuse_seq_3() RETURNS trigger AS $$ BEGIN IF NEW.seq = 3 THEN "
                          "RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; "
                          "CREATE TRIGGER refuse_seq_3 BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION refuse_seq_3()");
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1")).ok());
    ASSERT_TRUE(store->begin_batch().ok());
    ASSERT_TRUE(store->journal_events("ex_1", {ev(1), ev(2)}).ok());
    ASSERT_TRUE(store->journal_events("ex_1", {ev(3)}).ok());  // answered at commit
    ASSERT_TRUE(store->journal_events("ex_1", {ev(4)}).ok());
    auto commit = store->commit_batch();
    ASSERT_FALSE(commit.ok());
    EXPECT_EQ(commit.error().code, "storage_error") << commit.error().message;
    EXPECT_NE(commit.error().message.find("refused"), std::string::npos) << commit.error().message;
    EXPECT_EQ(store->journal_rows(), 0);
    backend->exec_raw("", "DROP TRIGGER refuse_seq_3 ON journal");
    ASSERT_TRUE(store->begin_batch().ok());
    ASSERT_TRUE(store->journal_events("ex_1", {ev(1), ev(2)}).ok());
    ASSERT_TRUE(store->set_status("ex_1", ExecutionStatus::running, 5).ok());  // a synchronous job between
    ASSERT_TRUE(store->journal_events("ex_1", {ev(3)}).ok());
    ASSERT_TRUE(store->commit_batch().ok());
    EXPECT_EQ(store->journal_rows(), 3);
    EXPECT_EQ(store->get_execution_by_id("ex_1")->status, ExecutionStatus::running);
}

// PostgreSQL's TEXT holds neither NUL nor invalid UTF-8 (SQLite stores both). Such a value fails its
// own call, as a bad request, before anything is sent: the other jobs of its group commit commit.
TEST_P(StoreTest, TextPostgresCannotHoldFailsOnlyItsOwnCall) {
    if (sqlite()) GTEST_SKIP() << "postgres only: SQLite stores any bytes";
    ASSERT_TRUE(store->insert_execution(make_exec("ex_1")).ok());
    ASSERT_TRUE(store->insert_session(make_session("se_1", "w1", "u1", "assistant", 1)).ok());
    ASSERT_TRUE(store->begin_batch().ok());
    ASSERT_TRUE(store->journal_events("ex_1", {ev(1)}).ok());
    auto bad_event = store->journal_events("ex_1", {ev(2, "delta", "{\"content\":\"\xff\"}")});
    EXPECT_EQ(bad_event.error().code, "invalid_request");
    auto nul = store->append_message({"se_1", Role::user, std::string("hi\0there", 8), std::nullopt, 2});
    EXPECT_EQ(nul.error().code, "invalid_request");
    EXPECT_NE(nul.error().message.find("NUL"), std::string::npos) << nul.error().message;
    auto overlong = store->insert_execution(make_exec("ex_2", "w1", "\xc0\xaf"));
    EXPECT_EQ(overlong.error().code, "invalid_request");
    ASSERT_TRUE(store->append_message({"se_1", Role::user, "fine: é ✓ 😀", std::nullopt, 3}).ok());
    ASSERT_TRUE(store->journal_events("ex_1", {ev(2)}).ok());
    ASSERT_TRUE(store->commit_batch().ok());
    EXPECT_EQ(store->journal_rows(), 2);
    auto msgs = store->messages("se_1");
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].content, "fine: é ✓ 😀");
}

// The writer checkpoints every 250 WAL frames, not SQLite's 1,000: each checkpoint holds every
// commit behind it, and smaller ones keep the stream latency tail short. The WAL file (which SQLite
// reuses from its start after each checkpoint) therefore never grows past about 1 MiB here; at
// the default it reaches 4 MiB.
TEST(SqliteCheckpoints, TheWalIsCopiedEvery250Frames) {
    TempDir dir;
    auto opened = confab::server::SqliteStore::open(dir.path());
    ASSERT_TRUE(opened.ok());
    auto& store = **opened;
    ASSERT_TRUE(store.insert_execution(make_exec("ex_1")).ok());
    const auto wal = std::filesystem::path(dir.path()) / "confab.db-wal";
    std::uintmax_t largest = 0;
    const std::string data(1500, 'x');
    std::vector<EventRecord> round;
    for (std::uint64_t seq = 1; seq <= 12000; ++seq) {  // about 4,500 frames in 1,200 commits
        round.push_back(EventRecord{seq, "delta", data, static_cast<std::int64_t>(seq)});
        if (round.size() < 10) continue;
        ASSERT_TRUE(store.journal_events("ex_1", round).ok());
        round.clear();
        std::error_code ec;
        largest = std::max(largest, std::filesystem::file_size(wal, ec));
    }
    EXPECT_GT(largest, std::uintmax_t{200} * 4096);
    EXPECT_LT(largest, std::uintmax_t{400} * 4096);
    EXPECT_EQ(store.journal_rows(), 12000);
}

// Database URLs reach logs and errors only through redact_database_url: no form of a password
// may survive it.
TEST(DatabaseUrl, PasswordsAreRedactedInEveryForm) {
    using confab::server::redact_database_url;
    EXPECT_EQ(redact_database_url("postgresql://app:s3cret@db:5432/confab"), "postgresql://app:***@db:5432/confab");
    EXPECT_EQ(redact_database_url("postgres://app:p@ss:w0rd@db/confab?sslmode=require"),
              "postgres://app:***@db/confab?sslmode=require");
    EXPECT_EQ(redact_database_url("postgresql://app@db/confab?password=s3cret&sslmode=require"),
              "postgresql://app@db/confab?password=***&sslmode=require");
    EXPECT_EQ(redact_database_url("postgresql://db/confab?sslmode=require&password=s3cret"),
              "postgresql://db/confab?sslmode=require&password=***");
    EXPECT_EQ(redact_database_url("postgresql://app@db/confab"), "postgresql://app@db/confab");
    EXPECT_EQ(redact_database_url("postgresql:///confab?host=/run/postgresql"), "postgresql:///confab?host=/run/postgresql");
    EXPECT_TRUE(confab::server::is_postgres_url("postgres://x"));
    EXPECT_TRUE(confab::server::is_postgres_url("postgresql://x"));
    EXPECT_FALSE(confab::server::is_postgres_url("mysql://x"));
    EXPECT_FALSE(confab::server::is_postgres_url("host=db password=x"));
}
