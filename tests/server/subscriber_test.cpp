// The hub's Subscriber wake-up on a plain multi-threaded io_context (readers on no strand): every
// notification wakes its reader, whichever threads publish, wake and wait.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "hub.hpp"

namespace {

namespace asio = boost::asio;
using namespace confab::server;

constexpr int kThreads = 4;
constexpr int kReaders = 8;
constexpr std::uint64_t kEvents = 2000;

struct Shared {
    std::atomic<int> remaining{kReaders};
    std::promise<void> all_done;
    std::atomic<std::uint64_t> received{0};
};

// Reads until the run is closed. It sleeps far longer than the test waits: only a wake-up ends a
// sleep, so a lost one leaves the reader asleep and the test fails on its bound.
asio::awaitable<void> read_all(std::shared_ptr<Subscriber> sub, Shared* shared) {
    for (;;) {
        auto batch = sub->take();
        shared->received += batch.events.size();
        if (batch.closed) break;
        co_await sub->wait(std::chrono::hours(1));
    }
    if (--shared->remaining == 0) shared->all_done.set_value();
}

TEST(SubscriberTest, NoWakeUpIsLostWhenReadersRunOnAPlainMultiThreadedContext) {
    asio::io_context ioc(kThreads);
    Shared shared;
    std::vector<std::shared_ptr<Subscriber>> subs;
    for (int i = 0; i < kReaders; ++i) {
        subs.push_back(std::make_shared<Subscriber>(ioc.get_executor(), kEvents + 1));
        asio::co_spawn(ioc, read_all(subs.back(), &shared), asio::detached);
    }
    std::vector<std::thread> pool;
    for (int i = 0; i < kThreads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
    // The publisher is a thread of its own, as the hub's runs are to their readers.
    std::thread publisher([&subs] {
        for (std::uint64_t seq = 1; seq <= kEvents; ++seq) {
            auto ev = std::make_shared<const StoredEvent>(StoredEvent{seq, "delta", ""});
            for (auto& s : subs) s->push(ev);
            std::this_thread::yield();  // let readers go back to sleep between events
        }
        for (auto& s : subs) s->close();
    });
    auto done = shared.all_done.get_future();
    // A liveness bound, not a timing claim: the readers need well under a second.
    const bool finished = done.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
    publisher.join();
    ioc.stop();
    for (auto& t : pool) t.join();
    EXPECT_TRUE(finished) << shared.remaining << " of " << kReaders
                          << " readers slept through a notification (lost wake-up)";
    if (finished) {
        EXPECT_EQ(shared.received, kEvents * kReaders);
    }
}

// Runs started together compact at different seqs: the first compaction of 4,000 runs (distinct
// ids) is spread evenly over [every/2, every*3/2), not all at seq `every`.
TEST(FirstCompaction, SpreadsRunsStartedTogether) {
    constexpr std::uint64_t kEvery = 256;
    std::vector<int> buckets(8, 0);
    std::uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 4000; ++i) {
        const std::string id = "ex_" + std::to_string(0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(i + 1));
        const std::uint64_t at = first_compaction(kEvery, id);
        EXPECT_EQ(at, first_compaction(kEvery, id));  // the same run, the same seq
        lo = std::min(lo, at);
        hi = std::max(hi, at);
        ASSERT_GE(at, kEvery / 2);
        ASSERT_LT(at, kEvery / 2 + kEvery);
        ++buckets[(at - kEvery / 2) * buckets.size() / kEvery];
    }
    for (int n : buckets) {  // 500 expected in each eighth
        EXPECT_GT(n, 380);
        EXPECT_LT(n, 620);
    }
    EXPECT_LT(lo, kEvery / 2 + 8);
    EXPECT_GT(hi, kEvery / 2 + kEvery - 8);
    // --compact-every 1 still compacts at every flush; 2 at seq 1 or 2.
    EXPECT_EQ(first_compaction(1, "ex_a"), 1u);
    for (const char* id : {"ex_a", "ex_b", "ex_c", "ex_d"}) {
        EXPECT_GE(first_compaction(2, id), 1u);
        EXPECT_LE(first_compaction(2, id), 2u);
    }
}

}  // namespace
