// Several confab-server instances on one PostgreSQL database (issue 14): two PgStore objects on one
// database stand for two instances. Leases, fencing, take-over of an expired instance's runs, the
// journal shared between instances, the LISTEN/NOTIFY payloads, migration 5 -> 6. PostgreSQL only:
// skipped without CONFAB_TEST_DATABASE_URL (make test-server-pg sets it).
// GCC 12 reports a std::string assignment of a short literal, inlined here, as an overlapping
// memcpy (-Wrestrict, GCC bug 105651, a false positive): not an error in this file.
#pragma GCC diagnostic ignored "-Wrestrict"
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <libpq-fe.h>
#include <unistd.h>

#include "store.hpp"
#include "store_pg.hpp"
#include "pg_sql.hpp"

namespace {

using confab::protocol::ExecutionStatus;
using confab::protocol::Json;
using confab::protocol::Role;
using confab::server::DocRecord;
using confab::server::EventRecord;
using confab::server::ExecutionRecord;
using confab::server::PgStore;
using confab::server::RunCompletion;
using confab::server::SessionRecord;
using confab::server::Store;

using confab::pgtest::with_database;

// One statement on a connection of its own: the first value of the first row ("" if none).
std::string sql(const std::string& url, const std::string& statement) {
    try {
        return confab::pgtest::first_value(url, statement);
    } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        return "";
    }
}

// A raw LISTEN connection on the store's channel.
class Listener {
public:
    explicit Listener(const std::string& url) : c_(PQconnectdb(url.c_str())) {
        EXPECT_EQ(PQstatus(c_), CONNECTION_OK) << PQerrorMessage(c_);
        PGresult* r = PQexec(c_, (std::string("LISTEN ") + Store::kNotifyChannel).c_str());
        EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
    }
    ~Listener() { PQfinish(c_); }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    // Every payload that arrives within `wait` (commits deliver at once on localhost).
    std::vector<std::string> drain(std::chrono::milliseconds wait = std::chrono::milliseconds(300)) {
        std::vector<std::string> out;
        const auto deadline = std::chrono::steady_clock::now() + wait;
        while (std::chrono::steady_clock::now() < deadline) {
            PQconsumeInput(c_);
            while (PGnotify* n = PQnotifies(c_)) {
                EXPECT_STREQ(n->relname, Store::kNotifyChannel);
                out.emplace_back(n->extra);
                PQfreemem(n);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return out;
    }

private:
    PGconn* c_;
};

ExecutionRecord make_exec(const std::string& id, std::string kind = "execution") {
    ExecutionRecord r;
    r.id = id;
    r.workspace_id = "w1";
    r.user_id = "u1";
    r.app_id = "assistant";
    r.version = "1";
    r.kind = std::move(kind);
    r.status = ExecutionStatus::running;
    r.created_at = 1000;
    r.updated_at = 1000;
    return r;
}

EventRecord ev(std::uint64_t seq, std::string type = "delta", std::string data = R"({"content":"x"})") {
    return EventRecord{seq, std::move(type), std::move(data), 2000 + static_cast<std::int64_t>(seq)};
}

class InstancesTest : public ::testing::TestWithParam<const char*> {
protected:
    void SetUp() override {
        const char* admin = std::getenv("CONFAB_TEST_DATABASE_URL");
        if (admin == nullptr || *admin == '\0') {
            GTEST_SKIP() << "CONFAB_TEST_DATABASE_URL is not set: the PostgreSQL store is not tested here "
                            "(make test-server-pg runs these tests against a throwaway cluster)";
        }
        admin_ = admin;
        std::random_device rd;
        db_ = "confab_inst_" + std::to_string(::getpid()) + "_" + std::to_string(rd() % 1000000);
        sql(admin_, "CREATE DATABASE " + db_);
        url_ = with_database(admin_, db_);
    }
    void TearDown() override {
        if (!db_.empty()) sql(admin_, "DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
    }
    std::unique_ptr<PgStore> open() {
        auto s = PgStore::open(url_, 10000);
        if (!s) ADD_FAILURE() << s.error().code << ": " << s.error().message;
        return s ? std::move(*s) : nullptr;
    }
    // An instance: a store registered as `id` with a lease of `lease_ms`.
    std::unique_ptr<PgStore> instance(const std::string& id, std::int64_t lease_ms) {
        auto s = open();
        if (!s) return nullptr;
        auto st = s->register_instance(id, id + ".local:8080", lease_ms);
        EXPECT_TRUE(st.ok()) << st.error().message;
        return s;
    }
    std::string q(const std::string& statement) { return sql(url_, statement); }
    static void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
    // Journals `events` of `id` in one group commit of `s`.
    static void journal(Store& s, const std::string& id, const std::vector<EventRecord>& events,
                        const std::vector<EventRecord>& compact = {}) {
        ASSERT_TRUE(s.begin_batch().ok());
        ASSERT_TRUE(s.journal_events(id, events, compact).ok());
        auto st = s.commit_batch();
        ASSERT_TRUE(st.ok()) << st.error().message;
    }

    std::string admin_, db_, url_;
};
INSTANTIATE_TEST_SUITE_P(Backends, InstancesTest, ::testing::Values("postgres"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

TEST_P(InstancesTest, TwoInstancesShareADatabaseAndOwnWhatTheyInsert) {
    auto a = instance("inst_a", 60000);
    auto b = instance("inst_b", 60000);
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(a->shared());
    EXPECT_EQ(a->schema_version(), 7);
    ASSERT_TRUE(a->insert_execution(make_exec("ex_a")).ok());
    ASSERT_TRUE(b->insert_execution(make_exec("ex_b")).ok());
    DocRecord run;
    run.id = "run_1";
    run.workspace_id = "w1";
    run.parent_id = "wf_1";
    run.label = "RUNNING";
    ASSERT_TRUE(a->put_run(run).ok());
    EXPECT_EQ(q("SELECT owner FROM workflow_runs WHERE id = 'run_1'"), "inst_a");
    ASSERT_TRUE(b->put_run(run).ok());  // the instance writing a run's state runs it
    EXPECT_EQ(q("SELECT owner FROM workflow_runs WHERE id = 'run_1'"), "inst_b");

    auto owner = b->execution_owner("ex_a");
    ASSERT_TRUE(owner.has_value());
    EXPECT_EQ(owner->instance_id, "inst_a");
    EXPECT_TRUE(owner->alive);
    EXPECT_EQ(a->execution_owner("ex_b")->instance_id, "inst_b");
    EXPECT_FALSE(a->execution_owner("ex_none").has_value());
    ASSERT_TRUE(a->finish_execution("ex_a", ExecutionStatus::success, Json("ok"), std::nullopt, 5).ok());
    EXPECT_FALSE(b->execution_owner("ex_a").has_value()) << "terminal: nobody owns it any more";

    // Renewing keeps the lease ahead of the database's clock.
    q("UPDATE confab_instances SET lease_until = clock_timestamp() + interval '1 second' WHERE id = 'inst_a'");
    ASSERT_TRUE(a->renew_lease().ok());
    EXPECT_EQ(q("SELECT lease_until > clock_timestamp() + interval '50 seconds' FROM confab_instances WHERE id = 'inst_a'"),
              "t");
    // B starting again (fail_interrupted at start) ends nothing of A's or its own live runs.
    ASSERT_TRUE(a->insert_execution(make_exec("ex_a2")).ok());
    journal(*a, "ex_a2", {ev(1), ev(2)});
    auto failed = b->fail_interrupted(9000);
    ASSERT_TRUE(failed.ok()) << failed.error().message;
    EXPECT_EQ(*failed, 0u);
    EXPECT_EQ(b->get_execution_by_id("ex_a2")->status, ExecutionStatus::running);
    EXPECT_EQ(b->get_execution_by_id("ex_b")->status, ExecutionStatus::running);
    EXPECT_EQ(q("SELECT COUNT(*) FROM journal WHERE instance = 'inst_a'"), "2");
    auto runs = b->fail_interrupted_runs(9000);
    ASSERT_TRUE(runs.ok());
    EXPECT_EQ(*runs, 0u);
    EXPECT_EQ(b->get_run("w1", "run_1")->label, "RUNNING");
}

// A's journal cut deletes only A's rows: B's live run still needs its own.
TEST_P(InstancesTest, AnInstancesJournalCutKeepsTheOtherInstancesRows) {
    auto a = instance("inst_a", 60000);
    auto b = instance("inst_b", 60000);
    ASSERT_TRUE(a && b);
    a->set_journal_cut_rows(1);
    ASSERT_TRUE(a->insert_execution(make_exec("ex_a")).ok());
    ASSERT_TRUE(b->insert_execution(make_exec("ex_b")).ok());
    journal(*b, "ex_b", {ev(1), ev(2), ev(3)});  // B's rows come first: ids below A's
    journal(*a, "ex_a", {ev(1), ev(2)});
    RunCompletion c;
    c.execution_id = "ex_a";
    c.events = {ev(1), ev(2), ev(3, "completed", R"({"status":"success"})")};
    c.status = ExecutionStatus::success;
    c.output = Json("x");
    c.now = 3000;
    ASSERT_TRUE(a->begin_batch().ok());
    ASSERT_TRUE(a->complete_run(c).ok());
    ASSERT_TRUE(a->commit_batch().ok());
    ASSERT_TRUE(a->insert_execution(make_exec("ex_a2")).ok());
    journal(*a, "ex_a2", {ev(1)});  // a row written: A cuts below its oldest live run's first row
    EXPECT_EQ(q("SELECT COUNT(*) FROM journal WHERE instance = 'inst_a'"), "1");
    EXPECT_EQ(q("SELECT COUNT(*) FROM journal WHERE instance = 'inst_b'"), "3");
    EXPECT_EQ(a->events_after("ex_b", 0, 100).size(), 3u);
}

// A reader on A catches up with a run live on B: its events rows, then its journal rows after
// them (compaction copies journal rows into events: no duplicates), in seq order, paged.
TEST_P(InstancesTest, AReaderOnOneInstanceSeesTheJournalOfARunLiveOnAnother) {
    auto a = instance("inst_a", 60000);
    auto b = instance("inst_b", 60000);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(b->insert_execution(make_exec("ex_b")).ok());
    ASSERT_TRUE(b->insert_execution(make_exec("ex_other")).ok());
    journal(*b, "ex_b", {ev(1), ev(2, "delta", R"({"content":"é"})"), ev(3)});
    journal(*b, "ex_other", {ev(1)});
    auto live = a->events_after("ex_b", 0, 100);
    ASSERT_EQ(live.size(), 3u);
    EXPECT_EQ(live[1].data, R"({"content":"é"})");
    EXPECT_EQ(live[1].created_at, 2002);
    // B compacts 1..3 into events rows while journalling 4 (its old journal rows stay until a cut).
    journal(*b, "ex_b", {ev(4)}, {ev(1), ev(2), ev(3)});
    auto all = a->events_after("ex_b", 0, 100);
    ASSERT_EQ(all.size(), 4u);
    for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].seq, i + 1);
    auto tail = a->events_after("ex_b", 2, 100);
    ASSERT_EQ(tail.size(), 2u);
    EXPECT_EQ(tail[0].seq, 3u);
    EXPECT_EQ(tail[1].seq, 4u);
    auto page = a->events_after("ex_b", 0, 2);
    ASSERT_EQ(page.size(), 2u);
    EXPECT_EQ(page[1].seq, 2u);
    auto from_journal = a->events_after("ex_b", 3, 2);
    ASSERT_EQ(from_journal.size(), 1u);
    EXPECT_EQ(from_journal[0].seq, 4u);

    // journal_range: the rows of an id range that belong to the followed runs, by run then seq.
    const auto first = std::stoll(q("SELECT MIN(id) FROM journal"));
    const auto last = std::stoll(q("SELECT MAX(id) FROM journal"));
    auto rows = a->journal_range(first, last, {"ex_b"});
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[0].execution_id, "ex_b");
    EXPECT_EQ(rows[0].event.seq, 1u);
    EXPECT_EQ(rows[3].event.seq, 4u);
    EXPECT_EQ(rows[1].event.data, R"({"content":"é"})");
    EXPECT_EQ(a->journal_range(first, last, {"ex_b", "ex_other"}).size(), 5u);
    EXPECT_EQ(a->journal_range(last, last, {"ex_b"}).size(), 1u);
    EXPECT_TRUE(a->journal_range(first, last, {"ex_none"}).empty());

    // Once the run completed, its events rows are the answer (the journal is not read).
    RunCompletion c;
    c.execution_id = "ex_b";
    c.events = {ev(1), ev(2), ev(3), ev(4), ev(5, "completed", R"({"status":"success"})")};
    c.status = ExecutionStatus::success;
    c.output = Json("x");
    ASSERT_TRUE(b->complete_run(c).ok());
    auto done = a->events_after("ex_b", 0, 100);
    ASSERT_EQ(done.size(), 5u);
    EXPECT_EQ(done[1].data, R"({"content":"x"})") << "the completion's events rows, not the journal's";
}

// The payloads other instances listen for, one "j" per group commit whatever the runs in it.
TEST_P(InstancesTest, NotificationsArriveWithTheDocumentedPayloads) {
    auto a = instance("inst_a", 60000);
    auto b = instance("inst_b", 60000);
    ASSERT_TRUE(a && b);
    Listener listener(url_);
    ASSERT_TRUE(a->insert_execution(make_exec("ex_1")).ok());
    ASSERT_TRUE(a->insert_execution(make_exec("ex_2")).ok());
    EXPECT_TRUE(listener.drain().empty());
    ASSERT_TRUE(a->begin_batch().ok());
    ASSERT_TRUE(a->journal_events("ex_1", {ev(1), ev(2)}).ok());
    ASSERT_TRUE(a->journal_events("ex_2", {ev(1)}).ok());
    ASSERT_TRUE(a->journal_events("ex_1", {ev(3)}).ok());
    EXPECT_TRUE(listener.drain(std::chrono::milliseconds(100)).empty()) << "nothing before the commit";
    ASSERT_TRUE(a->commit_batch().ok());
    auto j = listener.drain();
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0], "j " + q("SELECT MIN(id) FROM journal") + " " + q("SELECT MAX(id) FROM journal"));
    // A single journal write outside a group commit notifies too.
    ASSERT_TRUE(a->journal_events("ex_2", {ev(2)}).ok());
    auto single = listener.drain();
    ASSERT_EQ(single.size(), 1u);
    const std::string id = q("SELECT id FROM journal WHERE execution_id = 'ex_2' AND seq = 2");
    EXPECT_EQ(single[0], "j " + id + " " + id);

    ASSERT_TRUE(b->request_cancel("ex_1").ok());
    EXPECT_EQ(listener.drain(), std::vector<std::string>{"c ex_1"});
    ASSERT_TRUE(a->finish_execution("ex_1", ExecutionStatus::cancelled, Json(), std::nullopt, 5).ok());
    EXPECT_EQ(listener.drain(), std::vector<std::string>{"d ex_1"});
    RunCompletion c;
    c.execution_id = "ex_2";
    c.events = {ev(1), ev(2), ev(3, "completed", R"({"status":"success"})")};
    c.status = ExecutionStatus::success;
    ASSERT_TRUE(a->complete_run(c).ok());
    EXPECT_EQ(listener.drain(), std::vector<std::string>{"d ex_2"});
    // A rolled-back completion notifies nothing.
    EXPECT_FALSE(a->complete_run(c).ok());
    EXPECT_TRUE(listener.drain(std::chrono::milliseconds(100)).empty());
}

// A's lease runs out; B takes over: A is fenced, its running chat execution ends with the
// interrupted terminal events and the partial reply in its session, its workflow run fails, its
// journal rows go; A's next write fails "fenced" and commits nothing, and so does every later one.
TEST_P(InstancesTest, AnExpiredInstanceIsFencedAndItsRunsAreTakenOver) {
    auto a = instance("inst_a", 300);
    auto b = instance("inst_b", 60000);
    ASSERT_TRUE(a && b);
    Listener listener(url_);
    SessionRecord s;
    s.id = "se_1";
    s.workspace_id = "w1";
    s.user_id = "u1";
    s.app_id = "assistant";
    ASSERT_TRUE(a->insert_session(s).ok());
    auto chat = make_exec("ex_chat", "chat");
    chat.session_id = "se_1";
    ASSERT_TRUE(a->insert_execution(chat).ok());
    ASSERT_TRUE(b->insert_execution(make_exec("ex_b")).ok());
    DocRecord run;
    run.id = "run_a";
    run.workspace_id = "w1";
    run.parent_id = "wf_1";
    run.label = "RUNNING";
    ASSERT_TRUE(a->put_run(run).ok());
    journal(*a, "ex_chat", {ev(1, "delta", R"({"content":"Hel"})"), ev(2, "delta", R"({"content":"lo"})")});
    journal(*b, "ex_b", {ev(1)});
    listener.drain(std::chrono::milliseconds(50));

    auto early = b->take_over_expired(9000);
    ASSERT_TRUE(early.ok());
    EXPECT_TRUE(early->empty()) << "A's lease is current";
    sleep_ms(400);
    EXPECT_FALSE(b->execution_owner("ex_chat")->alive);
    auto taken = b->take_over_expired(9000);
    ASSERT_TRUE(taken.ok()) << taken.error().message;
    EXPECT_EQ(*taken, std::vector<std::string>{"ex_chat"});
    EXPECT_EQ(listener.drain(), std::vector<std::string>{"d ex_chat"});
    EXPECT_EQ(q("SELECT fenced FROM confab_instances WHERE id = 'inst_a'"), "t");

    auto got = b->get_execution_by_id("ex_chat");
    EXPECT_EQ(got->status, ExecutionStatus::error);
    auto events = b->events_after("ex_chat", 0, 100);
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events[1].data, R"({"content":"lo"})");
    EXPECT_EQ(events[2].type, "error");
    EXPECT_EQ(Json::parse(events[2].data)["code"], "interrupted");
    EXPECT_EQ(events[3].type, "completed");
    EXPECT_EQ(Json::parse(events[3].data)["result"], "Hello");
    auto msgs = b->messages("se_1");
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].role, Role::assistant);
    EXPECT_EQ(msgs[0].content, "Hello");
    EXPECT_EQ(msgs[0].status, "interrupted");
    EXPECT_EQ(b->get_run("w1", "run_a")->label, "FAILED");
    EXPECT_EQ(b->get_run("w1", "run_a")->doc["errorCode"], "interrupted");
    EXPECT_EQ(q("SELECT COUNT(*) FROM journal WHERE instance = 'inst_a'"), "0");
    EXPECT_EQ(q("SELECT COUNT(*) FROM journal WHERE instance = 'inst_b'"), "1");
    EXPECT_EQ(b->get_execution_by_id("ex_b")->status, ExecutionStatus::running) << "B's own run lives on";
    auto again = b->take_over_expired(9001);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->empty()) << "taken over once";

    // A does not know yet: its next write reaches the database, which refuses it.
    EXPECT_FALSE(a->fenced());
    auto refused = a->insert_execution(make_exec("ex_late"));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "fenced") << refused.error().message;
    EXPECT_TRUE(a->fenced());
    EXPECT_EQ(q("SELECT COUNT(*) FROM executions WHERE id = 'ex_late'"), "0");
    // From now on every write fails at once: the database is not asked (even if it would accept).
    q("UPDATE confab_instances SET fenced = false, lease_until = clock_timestamp() + interval '1 minute' "
      "WHERE id = 'inst_a'");
    EXPECT_EQ(a->insert_execution(make_exec("ex_later")).error().code, "fenced");
    EXPECT_EQ(a->begin_batch().error().code, "fenced");
    EXPECT_EQ(a->journal_events("ex_chat", {ev(3)}).error().code, "fenced");
    EXPECT_EQ(a->renew_lease().error().code, "fenced");
    EXPECT_EQ(a->put_run(run).error().code, "fenced");
    EXPECT_EQ(q("SELECT COUNT(*) FROM executions WHERE id = 'ex_later'"), "0");
}

// The other writes of a fenced instance, each its first after the take-over: a group commit, a
// transaction (complete_run), a lease renewal. Nothing of them commits.
TEST_P(InstancesTest, EveryKindOfWriteOfAFencedInstanceFailsFenced) {
    auto b = instance("inst_b", 60000);
    ASSERT_TRUE(b);
    for (int kind = 0; kind < 3; ++kind) {
        const std::string id = "inst_a" + std::to_string(kind);
        auto a = instance(id, 200);
        ASSERT_TRUE(a);
        const std::string ex = "ex_" + std::to_string(kind);
        ASSERT_TRUE(a->insert_execution(make_exec(ex)).ok());
        sleep_ms(300);
        auto taken = b->take_over_expired(9000);
        ASSERT_TRUE(taken.ok());
        ASSERT_EQ(*taken, std::vector<std::string>{ex});
        confab::Status st = confab::Ok{};
        if (kind == 0) {
            ASSERT_TRUE(a->begin_batch().ok());  // BEGIN and the fence check are pipelined: answered below
            EXPECT_TRUE(a->journal_events(ex, {ev(1)}).ok());  // gathered for the commit
            EXPECT_FALSE(a->insert_execution(make_exec(ex + "_2")).ok());
            st = a->commit_batch();
        } else if (kind == 1) {
            RunCompletion c;
            c.execution_id = ex;
            c.events = {ev(1, "completed", R"({"status":"success"})")};
            c.status = ExecutionStatus::success;
            st = a->complete_run(c);
        } else {
            st = a->renew_lease();
        }
        ASSERT_FALSE(st.ok()) << kind;
        EXPECT_EQ(st.error().code, "fenced") << kind << ": " << st.error().message;
        EXPECT_TRUE(a->fenced());
        EXPECT_EQ(q("SELECT status FROM executions WHERE id = '" + ex + "'"), "error");
        EXPECT_EQ(q("SELECT COUNT(*) FROM executions WHERE id = '" + ex + "_2'"), "0");
        EXPECT_EQ(q("SELECT COUNT(*) FROM journal"), "0");
    }
}

// A group commit of A in flight while B takes A over: the take-over's fencing UPDATE waits for the
// batch (its fence check holds A's row FOR SHARE), the batch commits entirely, and the take-over
// then closes what it wrote. In the other order the batch fails "fenced" and commits nothing.
TEST_P(InstancesTest, ABatchInFlightDuringATakeOverCommitsEntirelyBeforeItOrNotAtAll) {
    auto b = instance("inst_b", 60000);
    ASSERT_TRUE(b);
    {
        auto a = instance("inst_a", 300);
        ASSERT_TRUE(a);
        ASSERT_TRUE(a->insert_execution(make_exec("ex_1")).ok());
        sleep_ms(400);  // expired, not yet fenced
        ASSERT_TRUE(a->begin_batch().ok());
        ASSERT_TRUE(a->journal_events("ex_1", {ev(1), ev(2)}).ok());
        ASSERT_TRUE(a->insert_execution(make_exec("ex_2")).ok());  // the fence check is answered: A holds its row
        auto takeover = std::async(std::launch::async, [&] { return b->take_over_expired(9000); });
        EXPECT_EQ(takeover.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout)
            << "the take-over waits for A's transaction (within its lock timeout)";
        ASSERT_TRUE(a->journal_events("ex_2", {ev(1)}).ok());
        auto st = a->commit_batch();
        ASSERT_TRUE(st.ok()) << st.error().message;
        auto taken = takeover.get();
        ASSERT_TRUE(taken.ok()) << taken.error().message;
        EXPECT_EQ(*taken, (std::vector<std::string>{"ex_1", "ex_2"}));
        auto events = b->events_after("ex_1", 0, 100);
        ASSERT_EQ(events.size(), 4u) << "the batch's journal rows, then the interrupted terminal events";
        EXPECT_EQ(events[1].seq, 2u);
        EXPECT_EQ(events[1].type, "delta");
        EXPECT_EQ(events[2].type, "error");
        EXPECT_EQ(b->events_after("ex_2", 0, 100).size(), 3u);
        EXPECT_EQ(q("SELECT COUNT(*) FROM journal"), "0");
    }
    {
        auto a = instance("inst_c", 300);
        ASSERT_TRUE(a);
        ASSERT_TRUE(a->insert_execution(make_exec("ex_3")).ok());
        sleep_ms(400);
        // B's take-over is inside a group commit of B's: A's row stays locked until B commits.
        ASSERT_TRUE(b->begin_batch().ok());
        auto taken = b->take_over_expired(9000);
        ASSERT_TRUE(taken.ok()) << taken.error().message;
        EXPECT_EQ(*taken, std::vector<std::string>{"ex_3"});
        auto batch = std::async(std::launch::async, [&]() -> confab::Status {
            if (auto st = a->begin_batch(); !st) return st;
            (void)a->journal_events("ex_3", {ev(1)});
            (void)a->insert_execution(make_exec("ex_4"));  // its fence check waits for B here
            return a->commit_batch();
        });
        EXPECT_EQ(batch.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout)
            << "A's fence check waits for the take-over";
        ASSERT_TRUE(b->commit_batch().ok());
        auto st = batch.get();
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.error().code, "fenced") << st.error().message;
        EXPECT_EQ(q("SELECT COUNT(*) FROM executions WHERE id = 'ex_4'"), "0");
        EXPECT_EQ(q("SELECT COUNT(*) FROM journal"), "0");
        EXPECT_EQ(b->events_after("ex_3", 0, 100).size(), 2u);
    }
}

// A lease renewed while a take-over is deciding wins: the fencing UPDATE re-checks the lease on the
// row it waited for (here A's renewal holds the row, as a renewal in flight does).
TEST_P(InstancesTest, ALeaseRenewedDuringATakeOverKeepsTheInstanceAlive) {
    auto a = instance("inst_a", 300);
    auto b = instance("inst_b", 60000);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(a->insert_execution(make_exec("ex_a")).ok());
    sleep_ms(400);
    PGconn* renewal = PQconnectdb(url_.c_str());
    ASSERT_EQ(PQstatus(renewal), CONNECTION_OK);
    PQclear(PQexec(renewal, "BEGIN; UPDATE confab_instances SET lease_until = clock_timestamp() + interval '1 minute' "
                            "WHERE id = 'inst_a'"));
    auto takeover = std::async(std::launch::async, [&] { return b->take_over_expired(9000); });
    EXPECT_EQ(takeover.wait_for(std::chrono::milliseconds(60)), std::future_status::timeout)
        << "the take-over found A expired and waits for the row (within its 200 ms lock timeout)";
    PQclear(PQexec(renewal, "COMMIT"));
    PQfinish(renewal);
    auto taken = takeover.get();
    ASSERT_TRUE(taken.ok()) << taken.error().message;
    EXPECT_TRUE(taken->empty());
    EXPECT_EQ(q("SELECT fenced FROM confab_instances WHERE id = 'inst_a'"), "f");
    EXPECT_EQ(b->get_execution_by_id("ex_a")->status, ExecutionStatus::running);
    EXPECT_TRUE(a->insert_execution(make_exec("ex_a2")).ok());
}

// An instance frozen inside a transaction (SIGSTOP, a stalled VM) holds its row FOR SHARE. The
// server ends its session once it sat idle in the transaction for half its lease, so the
// take-over goes through instead of stalling the taker's db thread behind the frozen one.
TEST_P(InstancesTest, AnInstanceFrozenInsideATransactionIsTakenOverWithoutStallingTheTaker) {
    auto b = instance("inst_b", 60000);
    auto a = instance("inst_a", 400);  // sessions idle in a transaction end after 200 ms
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(a->insert_execution(make_exec("ex_frozen")).ok());
    ASSERT_TRUE(a->begin_batch().ok());
    ASSERT_TRUE(a->insert_execution(make_exec("ex_frozen2")).ok());  // the fence check answered: A holds its row
    sleep_ms(600);  // A "frozen": its lease runs out and its transaction sits idle
    {
        // Whatever else holds the row (here a plain session, with no idle timeout), the take-over
        // waits at most its lock timeout, 200 ms, and leaves the instance for its next scan.
        PGconn* holder = PQconnectdb(url_.c_str());
        ASSERT_EQ(PQstatus(holder), CONNECTION_OK);
        PQclear(PQexec(holder, "BEGIN; SELECT 1 FROM confab_instances WHERE id = 'inst_a' FOR SHARE"));
        const auto t0 = std::chrono::steady_clock::now();
        auto waited = b->take_over_expired(9000);
        const auto waited_for = std::chrono::steady_clock::now() - t0;
        PQclear(PQexec(holder, "COMMIT"));
        PQfinish(holder);
        ASSERT_TRUE(waited.ok()) << waited.error().message;
        EXPECT_TRUE(waited->empty());
        EXPECT_LT(waited_for, std::chrono::milliseconds(1000));
        EXPECT_EQ(q("SELECT fenced FROM confab_instances WHERE id = 'inst_a'"), "f");
    }
    const auto started = std::chrono::steady_clock::now();
    auto taken = b->take_over_expired(9000);
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_TRUE(taken.ok()) << taken.error().message;
    EXPECT_EQ(*taken, std::vector<std::string>{"ex_frozen"});
    EXPECT_LT(took, std::chrono::milliseconds(150)) << "the take-over did not wait on the frozen transaction";
    EXPECT_EQ(q("SELECT COUNT(*) FROM executions WHERE id = 'ex_frozen2'"), "0");
    auto st = a->commit_batch();  // A wakes up: its transaction is gone, nothing of it commits
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(q("SELECT COUNT(*) FROM executions WHERE id = 'ex_frozen2'"), "0");
    auto again = a->insert_execution(make_exec("ex_frozen3"));
    for (int i = 0; i < 50 && !again.ok() && again.error().code != "fenced"; ++i) {
        sleep_ms(100);  // reconnecting
        again = a->insert_execution(make_exec("ex_frozen3"));
    }
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, "fenced");
}

// A database restart (here: every session of the database ended) longer than the lease leaves
// every lease run out, though every instance lives. The first instance back must not fence the
// others: for two leases after its own reconnection it takes nobody over, time in which the others
// reconnect and renew. An instance that stays away longer is taken over as usual.
TEST_P(InstancesTest, InstancesBackFromADatabaseOutageDoNotFenceEachOther) {
    auto a = instance("inst_a", 300);
    auto b = instance("inst_b", 300);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(a->insert_execution(make_exec("ex_a")).ok());
    q("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid()");
    sleep_ms(500);  // both leases ran out meanwhile
    confab::Status back = b->renew_lease();  // B is back first (its first call finds the connection gone)
    for (int i = 0; i < 20 && !back.ok() && back.error().code != "fenced"; ++i) {
        sleep_ms(20);
        back = b->renew_lease();
    }
    ASSERT_TRUE(back.ok()) << back.error().code << ": " << back.error().message;
    auto taken = b->take_over_expired(9000);
    ASSERT_TRUE(taken.ok()) << taken.error().message;
    EXPECT_TRUE(taken->empty()) << "B fenced A right after the outage";
    EXPECT_EQ(q("SELECT fenced FROM confab_instances WHERE id = 'inst_a'"), "f");
    confab::Status renewed = a->renew_lease();
    for (int i = 0; i < 20 && !renewed.ok() && renewed.error().code != "fenced"; ++i) {
        sleep_ms(50);  // reconnecting
        renewed = a->renew_lease();
    }
    ASSERT_TRUE(renewed.ok()) << renewed.error().code << ": " << renewed.error().message;
    EXPECT_EQ(a->get_execution_by_id("ex_a")->status, ExecutionStatus::running);
    // A stays away for good now: once B's grace (two leases) has passed, B takes it over.
    sleep_ms(700);
    ASSERT_TRUE(b->renew_lease().ok());
    taken = b->take_over_expired(9000);
    ASSERT_TRUE(taken.ok()) << taken.error().message;
    EXPECT_EQ(*taken, std::vector<std::string>{"ex_a"});
}

// Two live instances take the same dead one over at once: one of them closes each run, once.
TEST_P(InstancesTest, ConcurrentTakeOversCloseEachRunOnce) {
    auto a = instance("inst_a", 300);
    auto b = instance("inst_b", 60000);
    auto c = instance("inst_c", 60000);
    ASSERT_TRUE(a && b && c);
    for (int i = 0; i < 20; ++i) {
        const std::string id = "ex_" + std::to_string(i);
        ASSERT_TRUE(a->insert_execution(make_exec(id)).ok());
        journal(*a, id, {ev(1)});
    }
    sleep_ms(400);
    auto by_b = std::async(std::launch::async, [&] { return b->take_over_expired(9000); });
    auto by_c = std::async(std::launch::async, [&] { return c->take_over_expired(9000); });
    auto rb = by_b.get();
    auto rc = by_c.get();
    ASSERT_TRUE(rb.ok()) << rb.error().message;
    ASSERT_TRUE(rc.ok()) << rc.error().message;
    EXPECT_EQ(rb->size() + rc->size(), 20u);
    EXPECT_TRUE(rb->empty() || rc->empty()) << "one transaction per dead instance: one taker";
    EXPECT_EQ(q("SELECT COUNT(*) FROM events WHERE type = 'error'"), "20");
    EXPECT_EQ(q("SELECT COUNT(*) FROM events"), "60");
}

// Migration 5 -> 6 on a database with rows: they are kept, with no owner; a restart then closes the
// unfinished ones (from before migration 6: no live instance owns them), moving their journal rows.
TEST_P(InstancesTest, Migration5To6KeepsRowsAndARestartClosesTheirUnfinishedRuns) {
    {
        auto s = open();
        ASSERT_TRUE(s);
    }
    // Back to schema 5, then rows as a version-5 server wrote them.
    q("DROP TABLE rate_buckets; DROP TABLE mcp_sessions; "  // migration 7 (shared14)
      "DROP FUNCTION confab_fence; DROP TABLE confab_instances; DROP INDEX journal_execution; "
      "ALTER TABLE executions DROP COLUMN owner; "
      "ALTER TABLE workflow_runs DROP COLUMN owner; ALTER TABLE journal DROP COLUMN instance; "
      "UPDATE confab_schema_version SET version = 5");
    q("INSERT INTO executions (id, workspace_id, user_id, app_id, version, kind, status, inputs, created_at, updated_at) "
      "VALUES ('ex_old_live', 'w1', 'u1', 'a', '1', 'execution', 'running', '{}', 1, 1), "
      "('ex_old_done', 'w1', 'u1', 'a', '1', 'execution', 'success', '{}', 1, 1); "
      "INSERT INTO journal (execution_id, seq, type, data, created_at) VALUES ('ex_old_live', 1, 'delta', '{}', 5); "
      "INSERT INTO workflow_runs (id, workspace_id, workflow_id, status, created_at, updated_at, doc) "
      "VALUES ('run_old', 'w1', 'wf', 'RUNNING', 1, 1, '{}')");
    auto s = instance("inst_new", 60000);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->schema_version(), 7);
    EXPECT_EQ(q("SELECT COUNT(*) FROM executions WHERE owner IS NULL"), "2");
    EXPECT_EQ(q("SELECT COUNT(*) FROM journal WHERE instance IS NULL"), "1");
    ASSERT_TRUE(s->insert_execution(make_exec("ex_new")).ok());
    journal(*s, "ex_new", {ev(1)});
    auto n = s->fail_interrupted(9000);
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_EQ(*n, 1u);
    EXPECT_EQ(s->get_execution_by_id("ex_old_live")->status, ExecutionStatus::error);
    EXPECT_EQ(s->get_execution_by_id("ex_old_done")->status, ExecutionStatus::success);
    EXPECT_EQ(s->get_execution_by_id("ex_new")->status, ExecutionStatus::running) << "its own live run";
    EXPECT_EQ(s->events_after("ex_old_live", 0, 10).size(), 3u);
    EXPECT_EQ(q("SELECT COUNT(*) FROM journal"), "1") << "its own row stays";
    auto runs = s->fail_interrupted_runs(9000);
    ASSERT_TRUE(runs.ok());
    EXPECT_EQ(*runs, 1u);
    EXPECT_EQ(s->get_run("w1", "run_old")->label, "FAILED");
}

}  // namespace
