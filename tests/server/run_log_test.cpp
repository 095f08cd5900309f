// RunLog: a live run's events in memory, compact, read back byte for byte.
#include <gtest/gtest.h>

#include "confab/protocol.hpp"
#include "run_log.hpp"

namespace {

using confab::protocol::Json;
using confab::server::RunLog;

struct In {
    std::string type;
    Json data;
    std::int64_t at;
};

// Appends as the hub does: the data dumped once, its reply text and whether it is text only.
void add(RunLog& log, const In& e) {
    const std::string data = confab::protocol::dump(e.data);
    const std::string* text = confab::protocol::reply_text_of(e.type, e.data);
    log.append(e.type, data, text, text != nullptr && e.data.size() == 1, e.at);
}

TEST(RunLogTest, EveryEventReadsBackByteForByteWithItsSeqAndTime) {
    const std::vector<In> in = {
        {"agent-response", Json{{"token", "Hel"}}, 1000},
        {"agent-response", Json{{"token", "lo \"wörld\"\n"}}, 1003},
        {"agent-action", Json{{"tool", "search"}, {"input", {{"q", "x"}}}}, 1003},
        {"delta", Json{{"content", "abc"}}, 1500},
        {"delta", Json{{"content", "d"}, {"extra", 1}}, 1400},  // not text only; time going back
        {"agent-response", Json{{"token", std::string("bad \xff utf8")}}, 99999},
        {"agent-response", Json{{"token", ""}}, 100000},
        {"agent-response", Json{{"token", std::string(62, 'a')}}, 100000},   // the longest short length
        {"agent-response", Json{{"token", std::string(63, 'b')}}, 100000},   // the first long one
        {"delta", Json{{"content", std::string(70000, 'c')}}, 50},           // long, and far back in time
        {"completed", Json{{"status", "success"}}, 100001},
    };
    RunLog log;
    for (const auto& e : in) add(log, e);
    ASSERT_EQ(log.size(), in.size());
    EXPECT_EQ(log.text(), std::string("Hello \"wörld\"\nabcdbad \xff utf8") + std::string(62, 'a') +
                              std::string(63, 'b') + std::string(70000, 'c'));
    auto all = log.events_after(0);
    ASSERT_EQ(all.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        EXPECT_EQ(all[i].seq, i + 1);
        EXPECT_EQ(all[i].type, in[i].type);
        EXPECT_EQ(all[i].data, confab::protocol::dump(in[i].data)) << i;
        // Times read back exactly, one earlier than the event before too (a clock set back).
        EXPECT_EQ(all[i].created_at, in[i].at) << i;
    }
    auto tail = log.events_after(5, 2);
    ASSERT_EQ(tail.size(), 2u);
    EXPECT_EQ(tail[0].seq, 6u);
    EXPECT_EQ(tail[1].seq, 7u);
    EXPECT_TRUE(log.events_after(in.size()).empty());
    EXPECT_TRUE(log.events_after(100).empty());
}

TEST(RunLogTest, AReplyTokenCostsItsTextAndAFewBytes) {
    RunLog log;
    for (int i = 0; i < 1000; ++i) add(log, {"agent-response", Json{{"token", "abcd"}}, 1000 + 50 * i});
    EXPECT_EQ(log.text().size(), 4000u);
    // text 4,000 bytes + 2 bytes an entry (head with the length, time since the last token) + a
    // mark every 256: a frame would be ~40 bytes.
    EXPECT_LE(log.bytes(), 4000u + 2u * 1000u);
    // Grown by a quarter at a time: at most about a quarter unused (doubling: up to a half).
    EXPECT_LE(log.capacity(), log.bytes() + log.bytes() / 4 + 64);
}

}  // namespace

namespace {

TEST(RunLogTest, ReadsFromAnyPointOfALongLogMatchTheWholeRead) {
    // Reads start at the mark before `after` (every 256 events): each must equal the whole read.
    RunLog log;
    for (int i = 0; i < 1000; ++i) {
        if (i % 97 == 0) {
            add(log, {"agent-action", Json{{"i", i}}, 1000 + i});
        } else {
            // Times jump back and forth (and across marks): each is read back exactly.
            add(log, {"agent-response", Json{{"token", std::to_string(i)}}, 1000 + (i % 3 == 0 ? -7 * i : 50 * i)});
        }
    }
    const auto all = log.events_after(0);
    ASSERT_EQ(all.size(), 1000u);
    for (int i = 0; i < 1000; ++i) {
        if (i % 97 != 0) {
            EXPECT_EQ(all[i].created_at, 1000 + (i % 3 == 0 ? -7 * i : 50 * i)) << i;
        }
    }
    for (std::uint64_t after : {1u, 255u, 256u, 257u, 511u, 512u, 700u, 999u}) {
        auto tail = log.events_after(after, 3);
        ASSERT_EQ(tail.size(), std::min<std::size_t>(3, 1000 - after)) << after;
        for (std::size_t k = 0; k < tail.size(); ++k) {
            EXPECT_EQ(tail[k].seq, after + k + 1);
            EXPECT_EQ(tail[k].type, all[after + k].type);
            EXPECT_EQ(tail[k].data, all[after + k].data) << after;
            EXPECT_EQ(tail[k].created_at, all[after + k].created_at);
        }
    }
}

}  // namespace
