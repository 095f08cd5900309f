// The cache of finished executions' bodies (execution_cache.hpp): only terminal executions, only
// to their own workspace and user, within its bytes (least recently used out first), from several
// threads at once (make test-tsan runs this under ThreadSanitizer).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "execution_cache.hpp"
#include "json_out.hpp"

namespace confab::server {
namespace {

using protocol::ExecutionStatus;

ExecutionRecord record(const std::string& id, ExecutionStatus status = ExecutionStatus::success,
                       const std::string& ws = "ws1", const std::string& user = "alice") {
    ExecutionRecord r;
    r.id = id;
    r.workspace_id = ws;
    r.user_id = user;
    r.app_id = "hello";
    r.version = "1";
    r.status = status;
    r.inputs = protocol::Json::object();
    r.inputs["name"] = "n-" + id;
    r.output = "Hello, " + id + "!";
    r.created_at = 1733300000000;
    r.updated_at = 1733300000005;
    return r;
}

std::size_t charge_of(const ExecutionRecord& r) {
    return ExecutionCache::charge(r.id, r.workspace_id, r.user_id, execution_json(r));
}

bool put(ExecutionCache& c, const ExecutionRecord& r) { return c.put(r, execution_json(r)); }

TEST(ExecutionCache, AnswersAFinishedExecutionToItsOwnWorkspaceAndUserOnly) {
    ExecutionCache c(1 << 20);
    const auto r = record("ex_1");
    ASSERT_TRUE(put(c, r));
    auto hit = c.find("ex_1", "ws1", "alice");
    ASSERT_TRUE(hit);
    EXPECT_EQ(*hit, execution_json(r));
    EXPECT_FALSE(c.find("ex_1", "ws1", "bob"));  // another user of the workspace
    EXPECT_FALSE(c.find("ex_1", "ws2", "alice"));  // the same user id in another workspace
    EXPECT_FALSE(c.find("ex_1", "ws1", ""));       // anonymous
    EXPECT_FALSE(c.find("ex_2", "ws1", "alice"));  // not kept
    // An anonymous caller's execution is the anonymous caller's only.
    const auto anon = record("ex_anon", ExecutionStatus::error, "ws1", "");
    ASSERT_TRUE(put(c, anon));
    EXPECT_TRUE(c.find("ex_anon", "ws1", ""));
    EXPECT_FALSE(c.find("ex_anon", "ws1", "alice"));
    const auto s = c.stats();
    EXPECT_EQ(s.hits, 2u);
    EXPECT_EQ(s.misses, 5u);
    EXPECT_EQ(s.entries, 2u);
    EXPECT_EQ(s.bytes, charge_of(r) + charge_of(anon));
}

TEST(ExecutionCache, KeepsOnlyTerminalExecutions) {
    ExecutionCache c(1 << 20);
    EXPECT_FALSE(put(c, record("ex_q", ExecutionStatus::queued)));
    EXPECT_FALSE(put(c, record("ex_r", ExecutionStatus::running)));
    EXPECT_FALSE(c.find("ex_q", "ws1", "alice"));
    EXPECT_FALSE(c.find("ex_r", "ws1", "alice"));
    EXPECT_EQ(c.stats().entries, 0u);
    EXPECT_EQ(c.stats().bytes, 0u);
    for (auto st : {ExecutionStatus::success, ExecutionStatus::error, ExecutionStatus::cancelled}) {
        const auto r = record(std::string("ex_") + protocol::to_string(st), st);
        EXPECT_TRUE(put(c, r)) << protocol::to_string(st);
        EXPECT_EQ(c.find(r.id, "ws1", "alice").value_or(""), execution_json(r));
    }
    EXPECT_EQ(c.stats().entries, 3u);
}

TEST(ExecutionCache, EvictsTheLeastRecentlyUsedToStayWithinItsBytes) {
    const auto a = record("ex_a"), b = record("ex_b"), cc = record("ex_c"), d = record("ex_d");
    // Same-length ids and bodies: every entry is charged alike, and three fit, not four.
    ASSERT_EQ(charge_of(a), charge_of(d));
    ExecutionCache c(3 * charge_of(a) + charge_of(a) / 2);
    ASSERT_TRUE(put(c, a));
    ASSERT_TRUE(put(c, b));
    ASSERT_TRUE(put(c, cc));
    EXPECT_EQ(c.stats().entries, 3u);
    ASSERT_TRUE(c.find("ex_a", "ws1", "alice"));  // a is now the most recently used; b the least
    ASSERT_TRUE(put(c, d));
    EXPECT_FALSE(c.find("ex_b", "ws1", "alice"));
    EXPECT_TRUE(c.find("ex_a", "ws1", "alice"));
    EXPECT_TRUE(c.find("ex_c", "ws1", "alice"));
    EXPECT_TRUE(c.find("ex_d", "ws1", "alice"));
    auto s = c.stats();
    EXPECT_EQ(s.entries, 3u);
    EXPECT_EQ(s.evictions, 1u);
    EXPECT_EQ(s.bytes, 3 * charge_of(a));
    EXPECT_LE(s.bytes, s.max_bytes);

    // Many more than fit: the bytes never pass the bound and the newest are the ones kept.
    for (int i = 0; i < 200; ++i) {
        ASSERT_TRUE(put(c, record("ex_" + std::to_string(1000 + i))));
        ASSERT_LE(c.stats().bytes, c.max_bytes());
    }
    EXPECT_TRUE(c.find("ex_1199", "ws1", "alice"));
    EXPECT_TRUE(c.find("ex_1197", "ws1", "alice"));
    EXPECT_FALSE(c.find("ex_1196", "ws1", "alice"));
    EXPECT_FALSE(c.find("ex_a", "ws1", "alice"));
    EXPECT_EQ(c.stats().entries, 3u);

    // One larger body evicts as many as it needs.
    auto big = record("ex_big");
    big.output = std::string(2 * charge_of(a), 'x');
    ASSERT_TRUE(put(c, big));
    s = c.stats();
    EXPECT_LE(s.bytes, s.max_bytes);
    EXPECT_EQ(s.entries, 1u);
    EXPECT_EQ(c.find("ex_big", "ws1", "alice").value_or(""), execution_json(big));
}

TEST(ExecutionCache, AnEntryOverTheWholeBoundIsNotKeptAndEvictsNothing) {
    const auto a = record("ex_a");
    ExecutionCache c(2 * charge_of(a));
    ASSERT_TRUE(put(c, a));
    auto huge = record("ex_huge");
    huge.output = std::string(2 * charge_of(a), 'x');
    EXPECT_FALSE(put(c, huge));
    EXPECT_FALSE(c.find("ex_huge", "ws1", "alice"));
    EXPECT_TRUE(c.find("ex_a", "ws1", "alice"));
    EXPECT_EQ(c.stats().evictions, 0u);
}

TEST(ExecutionCache, TheSameIdTwiceIsOneEntry) {
    ExecutionCache c(1 << 20);
    const auto a = record("ex_a");
    ASSERT_TRUE(put(c, a));
    ASSERT_TRUE(put(c, a));
    EXPECT_EQ(c.stats().entries, 1u);
    EXPECT_EQ(c.stats().bytes, charge_of(a));
}

TEST(ExecutionCache, ZeroBytesIsOff) {
    ExecutionCache c(0);
    EXPECT_FALSE(c.enabled());
    EXPECT_FALSE(put(c, record("ex_a")));
    EXPECT_FALSE(c.find("ex_a", "ws1", "alice"));
    const auto s = c.stats();
    EXPECT_EQ(s.entries, 0u);
    EXPECT_EQ(s.hits + s.misses, 0u);  // off: no lookups to count
}

// Threads put and find overlapping ids (owners and strangers) in a cache that holds a fraction of
// them: every hit is the right body of the right owner, the bound holds, the counts add up.
TEST(ExecutionCache, ManyThreadsAtOnce) {
    constexpr int kIds = 64, kThreads = 4, kRounds = 3000;
    std::vector<ExecutionRecord> recs;
    std::vector<std::string> bodies;
    for (int i = 0; i < kIds; ++i) {
        recs.push_back(record("ex_" + std::to_string(100 + i), ExecutionStatus::success, "ws1",
                              i % 2 ? "alice" : "carol"));  // same lengths: same charges
        bodies.push_back(execution_json(recs.back()));
    }
    ExecutionCache c(10 * charge_of(recs[0]));
    std::atomic<int> wrong{0};
    std::atomic<std::uint64_t> finds{0}, over{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            unsigned x = 2463534242u + static_cast<unsigned>(t);
            for (int i = 0; i < kRounds; ++i) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                const auto& r = recs[x % kIds];
                const std::string& body = bodies[x % kIds];
                switch ((x >> 8) % 4) {
                    case 0: c.put(r, body); break;
                    case 1: {  // the owner: the body, or nothing
                        ++finds;
                        auto got = c.find(r.id, r.workspace_id, r.user_id);
                        if (got && *got != body) ++wrong;
                        break;
                    }
                    case 2: {  // another user: never
                        ++finds;
                        if (c.find(r.id, r.workspace_id, r.user_id == "alice" ? "carol" : "alice")) ++wrong;
                        break;
                    }
                    default: {
                        const auto s = c.stats();
                        if (s.bytes > s.max_bytes) ++over;
                        break;
                    }
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(over.load(), 0u);
    const auto s = c.stats();
    EXPECT_EQ(s.hits + s.misses, finds.load());
    EXPECT_GT(s.hits, 0u);
    EXPECT_GT(s.evictions, 0u);
    EXPECT_LE(s.bytes, s.max_bytes);
    EXPECT_EQ(s.bytes, s.entries * charge_of(recs[0]));  // all the same size
}

}  // namespace
}  // namespace confab::server
