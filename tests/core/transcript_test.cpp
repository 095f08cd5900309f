// Tests of the transcript: exactly-once, in-order reply assembly (duplicates, resumed replays, gaps),
// completion and failure states, UTF-8, large replies, and the session history.
#include "confab/transcript.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace confab::transcript {

// Readable gtest output for the enums.
void PrintTo(Apply a, std::ostream* os) {
    *os << (a == Apply::applied ? "applied" : a == Apply::duplicate ? "duplicate" : "gap");
}
void PrintTo(ReplyStatus s, std::ostream* os) { *os << to_string(s); }

namespace {

Event delta(std::uint64_t seq, std::string_view content) {
    Event e;
    e.seq = seq;
    e.type = "delta";
    e.content = content;
    return e;
}

Event token(std::uint64_t seq, std::string_view t) {
    Event e;
    e.seq = seq;
    e.type = "agent-response";
    e.token = t;
    return e;
}

Event action(std::uint64_t seq, std::string_view tool, std::optional<std::string_view> input) {
    Event e;
    e.seq = seq;
    e.type = "agent-action";
    e.tool = tool;
    e.tool_input = input;
    return e;
}

Event action_error(std::uint64_t seq, std::string_view error) {
    Event e;
    e.seq = seq;
    e.type = "agent-action-error";
    e.error = error;
    return e;
}

Event failure(std::uint64_t seq, std::string_view error, std::optional<std::string_view> code) {
    Event e;
    e.seq = seq;
    e.type = "error";
    e.error = error;
    e.code = code;
    return e;
}

Event completed(std::uint64_t seq, std::optional<std::string_view> status) {
    Event e;
    e.seq = seq;
    e.type = "completed";
    e.status = status;
    return e;
}

Event chat_completed(std::uint64_t seq, std::optional<std::string_view> status, std::string_view result,
                     std::string_view session_id) {
    Event e = completed(seq, status);
    e.result = result;
    e.session_id = session_id;
    return e;
}

// The outcome of an apply that must not fail.
template <typename T>
Apply ok(T& target, const Event& ev) {
    auto r = target.apply(ev);
    if (!r) {
        ADD_FAILURE() << "apply(seq " << ev.seq << ", " << ev.type << ") failed: " << r.error().message;
        return Apply::gap;
    }
    return *r;
}

// The error of an apply that must fail.
template <typename T>
Error rejected(T& target, const Event& ev) {
    auto r = target.apply(ev);
    if (r) {
        ADD_FAILURE() << "apply(seq " << ev.seq << ", " << ev.type << ") was accepted";
        return Error{};
    }
    return r.error();
}

// A run's events as a server stores them: seq 1..n, the text in pieces, then "completed".
struct StoredRun {
    std::vector<std::string> pieces;
    std::vector<Event> events;
    std::string text;
};

StoredRun make_run(std::size_t n_pieces, std::uint32_t seed) {
    std::mt19937 rng(seed);
    StoredRun run;
    for (std::size_t i = 0; i < n_pieces; ++i) {
        std::string p;
        const std::size_t len = 1 + rng() % 7;
        for (std::size_t k = 0; k < len; ++k) p += static_cast<char>('a' + rng() % 26);
        run.text += p;
        run.pieces.push_back(std::move(p));
    }
    for (std::size_t i = 0; i < run.pieces.size(); ++i) run.events.push_back(delta(i + 1, run.pieces[i]));
    Event done = completed(run.pieces.size() + 1, "success");
    done.output = run.text;
    run.events.push_back(done);
    return run;
}

}  // namespace

TEST(TranscriptReply, AssemblesEventsInOrder) {
    Reply r;
    EXPECT_EQ(r.last_seq(), 0u);
    EXPECT_EQ(r.status(), ReplyStatus::streaming);
    EXPECT_FALSE(r.done());
    EXPECT_EQ(ok(r, delta(1, "Hel")), Apply::applied);
    EXPECT_EQ(ok(r, delta(2, "lo, ")), Apply::applied);
    EXPECT_EQ(ok(r, delta(3, "world")), Apply::applied);
    EXPECT_EQ(r.text(), "Hello, world");
    EXPECT_EQ(r.result(), "Hello, world") << "while streaming, the result is the text so far";
    EXPECT_EQ(r.last_seq(), 3u);
    EXPECT_FALSE(r.done());
    EXPECT_FALSE(r.error());
    EXPECT_TRUE(r.actions().empty());
}

TEST(TranscriptReply, ContinuesAfterEventsAppliedElsewhere) {
    Reply r;
    ASSERT_TRUE(r.continue_after(5, "Hello, "));  // a page reload: events 1..5 were shown before
    EXPECT_EQ(r.last_seq(), 5u) << "a reconnection resumes after event 5";
    EXPECT_EQ(ok(r, delta(4, "old")), Apply::duplicate);
    EXPECT_EQ(ok(r, delta(5, "old")), Apply::duplicate);
    EXPECT_EQ(ok(r, delta(7, "later")), Apply::gap);
    EXPECT_EQ(ok(r, delta(6, "world")), Apply::applied);
    EXPECT_EQ(r.text(), "Hello, world");
    auto again = r.continue_after(9, "x");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, "invalid_event");
    EXPECT_EQ(r.text(), "Hello, world") << "nothing changed";
    EXPECT_EQ(ok(r, completed(7, "success")), Apply::applied);
    EXPECT_TRUE(r.done());
}

TEST(TranscriptReply, CompletionTakesTheServersOutputAndEndsTheStream) {
    Reply r;
    ok(r, delta(1, "ab"));
    ok(r, delta(2, "c"));
    Event done = completed(3, "success");
    done.output = "abc";
    EXPECT_EQ(ok(r, done), Apply::applied);
    EXPECT_TRUE(r.done());
    EXPECT_EQ(r.status(), ReplyStatus::success);
    EXPECT_EQ(r.result(), "abc");
    EXPECT_EQ(r.last_seq(), 3u);
    // The completed event replayed by a resumed stream is a duplicate, not a second completion.
    EXPECT_EQ(ok(r, done), Apply::duplicate);
    EXPECT_EQ(ok(r, delta(2, "c")), Apply::duplicate);
    // Anything newer than the terminal event is a broken stream, however far ahead it is.
    const Error after = rejected(r, delta(4, "x"));
    EXPECT_EQ(after.code, "invalid_event");
    EXPECT_EQ(after.message, "event 4 (delta): after the completed event 3");
    EXPECT_EQ(rejected(r, delta(9, "x")).code, "invalid_event");
    EXPECT_EQ(r.text(), "abc");
    EXPECT_EQ(r.last_seq(), 3u);
}

TEST(TranscriptReply, CompletionWithoutTextKeepsTheStreamedText) {
    Reply r;
    ok(r, delta(1, "streamed"));
    EXPECT_EQ(ok(r, completed(2, "success")), Apply::applied);  // e.g. an http app's JSON output
    EXPECT_EQ(r.result(), "streamed");
    EXPECT_EQ(r.session_id(), "");
}

TEST(TranscriptReply, TheServersFinalTextWinsOverTheStreamedOne) {
    Reply r;
    ok(r, token(1, "draft"));
    EXPECT_EQ(ok(r, chat_completed(2, "success", "final answer", "se_1")), Apply::applied);
    EXPECT_EQ(r.text(), "draft");
    EXPECT_EQ(r.result(), "final answer");
    EXPECT_EQ(r.session_id(), "se_1");

    Reply empty;  // an empty result is a result: a reply that said nothing
    ok(empty, token(1, "x"));
    ok(empty, chat_completed(2, "success", "", "se_1"));
    EXPECT_EQ(empty.result(), "");
}

TEST(TranscriptReply, DuplicatesAreIgnoredAndReported) {
    Reply r;
    ok(r, delta(1, "a"));
    ok(r, delta(2, "b"));
    ok(r, delta(3, "c"));
    EXPECT_EQ(ok(r, delta(3, "c")), Apply::duplicate);
    EXPECT_EQ(ok(r, delta(1, "a")), Apply::duplicate);
    EXPECT_EQ(ok(r, delta(2, "DIFFERENT")), Apply::duplicate) << "a seq is applied once, whatever it carries";
    EXPECT_EQ(r.text(), "abc");
    EXPECT_EQ(r.last_seq(), 3u);
    EXPECT_EQ(ok(r, delta(4, "d")), Apply::applied);
    EXPECT_EQ(r.text(), "abcd");
}

TEST(TranscriptReply, AGapChangesNothingAndTheStreamResumesFromLastSeq) {
    Reply r;
    ok(r, delta(1, "a"));
    ok(r, delta(2, "b"));
    EXPECT_EQ(ok(r, delta(4, "d")), Apply::gap);
    EXPECT_EQ(ok(r, delta(100, "z")), Apply::gap);
    Event early_end = completed(5, "success");
    EXPECT_EQ(ok(r, early_end), Apply::gap) << "a completion past a gap does not end the reply";
    EXPECT_FALSE(r.done());
    EXPECT_EQ(r.text(), "ab");
    EXPECT_EQ(r.last_seq(), 2u) << "the caller resumes with Last-Event-ID: 2";
    // The resumed stream starts after 2.
    EXPECT_EQ(ok(r, delta(3, "c")), Apply::applied);
    EXPECT_EQ(ok(r, delta(4, "d")), Apply::applied);
    EXPECT_EQ(ok(r, completed(5, "success")), Apply::applied);
    EXPECT_EQ(r.result(), "abcd");
}

TEST(TranscriptReply, AGapBeforeTheFirstEvent) {
    Reply r;
    EXPECT_EQ(ok(r, delta(2, "b")), Apply::gap);
    EXPECT_EQ(r.last_seq(), 0u);
    EXPECT_EQ(ok(r, delta(1, "a")), Apply::applied);
}

TEST(TranscriptReply, ResumedStreamsWithOverlappingReplaysAssembleTheUninterruptedOutput) {
    // A client that loses its connection at random points; each reconnection's server replays
    // from a random point at or before Last-Event-ID (overlap) and may again be cut short.
    for (std::uint32_t seed = 1; seed <= 20; ++seed) {
        const StoredRun run = make_run(300, seed);
        std::mt19937 rng(seed * 7919u);
        Reply r;
        std::size_t connections = 0;
        std::size_t applied = 0;
        std::size_t duplicates = 0;
        while (!r.done()) {
            ASSERT_LT(++connections, 10000u) << "seed " << seed << ": no progress";
            const std::size_t overlap = rng() % 20;
            const std::size_t from = r.last_seq() > overlap ? r.last_seq() - overlap : 0;  // index of the first event sent
            const std::size_t cut = from + 1 + rng() % 40;                                 // exclusive
            for (std::size_t i = from; i < run.events.size() && i < cut; ++i) {
                const Apply a = ok(r, run.events[i]);
                ASSERT_NE(a, Apply::gap) << "seed " << seed << " seq " << run.events[i].seq;
                (a == Apply::applied ? applied : duplicates)++;
            }
        }
        EXPECT_EQ(applied, run.events.size()) << "seed " << seed << ": each event applied exactly once";
        EXPECT_GT(duplicates, 0u) << "seed " << seed << ": the replays did overlap";
        EXPECT_EQ(r.text(), run.text);
        EXPECT_EQ(r.result(), run.text);
        EXPECT_EQ(r.status(), ReplyStatus::success);
        EXPECT_EQ(r.last_seq(), run.events.size());
    }
}

TEST(TranscriptReply, AServerThatReplaysFromTheStartEachTime) {
    const StoredRun run = make_run(50, 99);
    Reply r;
    for (std::size_t cut = 5; !r.done(); cut += 5) {
        for (std::size_t i = 0; i < run.events.size() && i < cut; ++i) ok(r, run.events[i]);
    }
    EXPECT_EQ(r.text(), run.text);
}

TEST(TranscriptReply, ALossyConnectionIsResumedFromLastSeqUntilNothingIsMissing) {
    // Connections that sometimes start past the next event (a lossy proxy): the client stops at
    // the gap and reconnects from last_seq; nothing is lost, nothing repeated.
    const StoredRun run = make_run(200, 5);
    std::mt19937 rng(11);
    Reply r;
    std::size_t gaps = 0;
    for (std::size_t connections = 0; !r.done(); ++connections) {
        ASSERT_LT(connections, 10000u) << "no progress";
        const std::size_t skip = rng() % 3 == 0 ? 1 + rng() % 4 : 0;
        const std::size_t cut = r.last_seq() + skip + 1 + rng() % 30;
        for (std::size_t i = r.last_seq() + skip; i < run.events.size() && i < cut; ++i) {
            if (ok(r, run.events[i]) == Apply::gap) {
                ++gaps;
                break;  // drop the connection, resume with Last-Event-ID: last_seq()
            }
        }
    }
    EXPECT_GT(gaps, 0u);
    EXPECT_EQ(r.text(), run.text);
}

TEST(TranscriptReply, InvalidEventsAreErrorsThatChangeNothing) {
    Reply r;
    ok(r, delta(1, "a"));

    const Error zero = rejected(r, delta(0, "x"));
    EXPECT_EQ(zero.code, "invalid_event");
    EXPECT_EQ(zero.message, "event 0 (delta): sequence numbers start at 1");

    Event no_content = delta(2, "");
    no_content.content.reset();
    EXPECT_EQ(rejected(r, no_content).message, "event 2 (delta): no \"content\" string");
    Event no_token = token(2, "");
    no_token.token.reset();
    EXPECT_EQ(rejected(r, no_token).message, "event 2 (agent-response): no \"token\" string");
    Event no_tool = action(2, "", "{}");
    no_tool.tool.reset();
    EXPECT_EQ(rejected(r, no_tool).message, "event 2 (agent-action): no \"tool\" string");
    Event no_error = failure(2, "", std::nullopt);
    no_error.error.reset();
    EXPECT_EQ(rejected(r, no_error).message, "event 2 (error): no \"error\" string");
    Event no_action_error = action_error(2, "");
    no_action_error.error.reset();
    EXPECT_EQ(rejected(r, no_action_error).message, "event 2 (agent-action-error): no \"error\" string");
    const Error status = rejected(r, completed(2, "queued"));
    EXPECT_EQ(status.message, "event 2 (completed): status \"queued\" is not success, error or cancelled");

    EXPECT_EQ(r.last_seq(), 1u);
    EXPECT_EQ(r.text(), "a");
    EXPECT_FALSE(r.done());
    EXPECT_FALSE(r.error());
    EXPECT_TRUE(r.actions().empty());
    // The same seq with a valid payload is then applied.
    EXPECT_EQ(ok(r, delta(2, "b")), Apply::applied);
    EXPECT_EQ(r.text(), "ab");
}

TEST(TranscriptReply, AFailedRunHasStatusErrorWithMessageAndCode) {
    Reply r;
    ok(r, delta(1, "partial"));
    EXPECT_EQ(ok(r, failure(2, "upstream timed out", "upstream_error")), Apply::applied);
    EXPECT_FALSE(r.done()) << "the error event precedes the terminal one";
    ASSERT_TRUE(r.error());
    EXPECT_EQ(*r.error(), "upstream timed out");
    EXPECT_EQ(*r.error_code(), "upstream_error");
    EXPECT_EQ(ok(r, completed(3, "error")), Apply::applied);
    EXPECT_EQ(r.status(), ReplyStatus::error);
    EXPECT_EQ(*r.error(), "upstream timed out");
    EXPECT_EQ(r.result(), "partial");
}

TEST(TranscriptReply, TheCompletedEventsOwnErrorOverridesTheErrorEvent) {
    Reply r;
    ok(r, failure(1, "first", "code_a"));
    Event done = completed(2, "error");
    done.error = "the run failed";
    EXPECT_EQ(ok(r, done), Apply::applied);
    EXPECT_EQ(*r.error(), "the run failed");
    EXPECT_EQ(*r.error_code(), "code_a") << "the completed event had no code of its own";

    Reply second;  // a later error event replaces the earlier one, code included
    ok(second, failure(1, "first", "code_a"));
    ok(second, failure(2, "second", std::nullopt));
    EXPECT_EQ(*second.error(), "second");
    EXPECT_FALSE(second.error_code());
}

TEST(TranscriptReply, ACompletionWithoutStatusIsSuccessUnlessAnErrorCameFirst) {
    Reply fine;
    ok(fine, token(1, "hi"));
    ok(fine, chat_completed(2, std::nullopt, "hi", "se_2"));
    EXPECT_EQ(fine.status(), ReplyStatus::success);

    Reply failed;
    ok(failed, failure(1, "boom", "run_failed"));
    ok(failed, chat_completed(2, std::nullopt, "", "se_2"));
    EXPECT_EQ(failed.status(), ReplyStatus::error);
}

TEST(TranscriptReply, ACancelledRunKeepsWhatWasStreamed) {
    Reply r;
    ok(r, token(1, "tick "));
    ok(r, token(2, "tick "));
    EXPECT_EQ(ok(r, chat_completed(3, "cancelled", "tick tick ", "se_3")), Apply::applied);
    EXPECT_EQ(r.status(), ReplyStatus::cancelled);
    EXPECT_TRUE(r.done());
    EXPECT_EQ(r.result(), "tick tick ");
    EXPECT_FALSE(r.error());
}

TEST(TranscriptReply, ToolActionsAreRecordedInOrderWithTheirPlaceInTheText) {
    Reply r;
    ok(r, token(1, "Let me look. "));
    ok(r, action(2, "search", R"({"q":"wasm","n":3})"));
    ok(r, action_error(3, "search is down"));
    ok(r, action(4, "clock", std::nullopt));
    ok(r, token(5, "Done."));
    ok(r, chat_completed(6, "success", "Let me look. Done.", "se_4"));
    ASSERT_EQ(r.actions().size(), 3u);
    const Action& a = r.actions()[0];
    EXPECT_EQ(a.kind, ActionKind::call);
    EXPECT_EQ(a.seq, 2u);
    EXPECT_EQ(a.tool, "search");
    EXPECT_EQ(a.tool_input, R"({"q":"wasm","n":3})");
    EXPECT_EQ(a.text_offset, 13u);
    const Action& e = r.actions()[1];
    EXPECT_EQ(e.kind, ActionKind::error);
    EXPECT_EQ(e.error, "search is down");
    EXPECT_EQ(e.seq, 3u);
    EXPECT_EQ(r.actions()[2].tool, "clock");
    EXPECT_EQ(r.actions()[2].tool_input, "");
    EXPECT_EQ(r.text(), "Let me look. Done.");
}

TEST(TranscriptReply, UnknownEventTypesConsumeTheirSeqOnly) {
    Reply r;
    ok(r, delta(1, "a"));
    Event future;
    future.seq = 2;
    future.type = "progress";
    future.content = "must not be appended";
    EXPECT_EQ(ok(r, future), Apply::applied);
    Event message;  // an SSE event without `event:` is a "message"
    message.seq = 3;
    message.type = "message";
    EXPECT_EQ(ok(r, message), Apply::applied);
    EXPECT_EQ(ok(r, delta(4, "b")), Apply::applied);
    EXPECT_EQ(r.text(), "ab");
    EXPECT_EQ(r.last_seq(), 4u);
}

TEST(TranscriptReply, Utf8TokensAreJoinedAsBytes) {
    Reply r;
    ok(r, token(1, "ünï"));
    ok(r, token(2, "cödé "));
    // A server that split code points between events: the bytes come together again.
    const std::string dragon = "\xF0\x9F\x90\x89";  // U+1F409
    for (std::size_t i = 0; i < dragon.size(); ++i) ok(r, token(3 + i, dragon.substr(i, 1)));
    ok(r, token(7, "\xC3"));
    ok(r, token(8, "\xA9"));
    ok(r, token(9, "日本語"));
    EXPECT_EQ(r.text(), "ünïcödé \xF0\x9F\x90\x89\xC3\xA9日本語");
    EXPECT_EQ(r.text().size(), 27u);
    // Bytes are kept as given, including NUL and invalid sequences (the renderer decides).
    ok(r, token(10, std::string_view("\0\xFF", 2)));
    EXPECT_EQ(r.text().substr(27), std::string("\0\xFF", 2));
}

TEST(TranscriptReply, ALargeReplyIsAssembledWithLogarithmicallyManyReallocations) {
    // One byte per event, a million events: a reply buffer that grew by a constant (or exactly
    // to size) on each append would reallocate on nearly every event; geometric growth does it
    // a few dozen times, which is what keeps the total cost linear.
    constexpr std::size_t n = 1 << 20;
    Reply r;
    std::set<const char*> buffers;
    std::size_t reallocations = 0;
    std::size_t capacity = r.text().capacity();
    const char alphabet[] = "abcdefghijklmnopqrstuvwxyz";
    for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(r.apply(delta(i + 1, std::string_view(alphabet + i % 26, 1))).ok(), true);
        if (r.text().capacity() != capacity) {
            capacity = r.text().capacity();
            ++reallocations;
        }
    }
    EXPECT_LE(reallocations, 64u);
    ASSERT_EQ(r.text().size(), n);
    for (std::size_t i = 0; i < n; i += 4099) ASSERT_EQ(r.text()[i], alphabet[i % 26]) << i;
    Event done = completed(n + 1, "success");
    ok(r, done);
    EXPECT_EQ(r.result().size(), n);

    // And a single 4 MB event.
    Reply big;
    const std::string chunk(4u << 20, 'x');
    ok(big, delta(1, chunk));
    ok(big, delta(2, "!"));
    EXPECT_EQ(big.text().size(), chunk.size() + 1);
    EXPECT_EQ(big.text().back(), '!');
}

TEST(TranscriptReply, StatusNames) {
    EXPECT_STREQ(to_string(ReplyStatus::streaming), "streaming");
    EXPECT_STREQ(to_string(ReplyStatus::success), "success");
    EXPECT_STREQ(to_string(ReplyStatus::error), "error");
    EXPECT_STREQ(to_string(ReplyStatus::cancelled), "cancelled");
    EXPECT_STREQ(to_string(Role::user), "user");
    EXPECT_STREQ(to_string(Role::assistant), "assistant");
    EXPECT_STREQ(to_string(Role::system), "system");
}

TEST(Transcript, ATurnAddsTheUserMessageAndOnCompletionTheReply) {
    Transcript t;
    t.begin_turn("Hello, **Confab**!");
    ASSERT_EQ(t.messages().size(), 1u);
    EXPECT_EQ(t.messages()[0], (Message{Role::user, "Hello, **Confab**!"}));
    ok(t, token(1, "You said: "));
    ok(t, token(2, "Hello"));
    EXPECT_EQ(t.messages().size(), 1u) << "no assistant message while streaming";
    EXPECT_EQ(t.reply().text(), "You said: Hello");
    EXPECT_EQ(ok(t, chat_completed(3, "success", "You said: Hello", "se_42")), Apply::applied);
    ASSERT_EQ(t.messages().size(), 2u);
    EXPECT_EQ(t.messages()[1], (Message{Role::assistant, "You said: Hello"}));
    EXPECT_EQ(t.session_id(), "se_42");

    // The completed event replayed: still one assistant message.
    EXPECT_EQ(ok(t, chat_completed(3, "success", "You said: Hello", "se_42")), Apply::duplicate);
    EXPECT_EQ(t.messages().size(), 2u);

    // The next turn is a new run: its seq starts at 1 again.
    t.begin_turn("second turn");
    EXPECT_EQ(t.reply().last_seq(), 0u);
    EXPECT_EQ(t.reply().text(), "");
    EXPECT_FALSE(t.reply().done());
    EXPECT_EQ(ok(t, token(1, "again")), Apply::applied);
    ok(t, chat_completed(2, std::nullopt, "again", "se_42"));
    ASSERT_EQ(t.messages().size(), 4u);
    EXPECT_EQ(t.messages()[2], (Message{Role::user, "second turn"}));
    EXPECT_EQ(t.messages()[3], (Message{Role::assistant, "again"}));
}

TEST(Transcript, OnlyRepliesTheServerStoresBecomeMessages) {
    Transcript t;
    t.begin_turn("fail please");
    ok(t, token(1, "part"));
    ok(t, failure(2, "model unavailable", "upstream_error"));
    ok(t, chat_completed(3, "error", "part", "se_1"));
    EXPECT_EQ(t.messages().size(), 1u) << "a failed reply is not stored";
    EXPECT_EQ(t.reply().status(), ReplyStatus::error);
    EXPECT_EQ(t.reply().result(), "part") << "but its partial text is still there to show";

    t.begin_turn("stop me");
    ok(t, token(1, "tick "));
    ok(t, chat_completed(2, "cancelled", "tick ", "se_1"));
    ASSERT_EQ(t.messages().size(), 3u);
    EXPECT_EQ(t.messages()[2], (Message{Role::assistant, "tick "})) << "a stopped reply is stored";

    t.begin_turn("stopped at once");
    ok(t, chat_completed(1, "cancelled", "", "se_1"));
    t.begin_turn("silence");
    ok(t, chat_completed(1, "success", "", "se_1"));
    ASSERT_EQ(t.messages().size(), 5u) << "empty replies are not stored";
    EXPECT_EQ(t.messages()[3].content, "stopped at once");
    EXPECT_EQ(t.messages()[4].content, "silence");
}

TEST(Transcript, HistoryLoadedFromTheServerAndAResumedReply) {
    Transcript t;
    t.set_session_id("se_7");
    t.add_message(Role::system, "be brief");
    t.add_message(Role::user, "hi");
    t.add_message(Role::assistant, "hello");
    t.add_message(Role::user, "and?");
    // A reply resumed after a reload: the user's message is already in the history, so no
    // begin_turn; the stream is read from after the events already shown.
    EXPECT_EQ(ok(t, token(3, "x")), Apply::gap) << "a fresh reply starts at event 1";
    ok(t, token(1, "and "));
    ok(t, token(2, "more"));
    Event done = completed(3, "success");  // no sessionId: the known one stays
    done.result = "and more";
    ok(t, done);
    EXPECT_EQ(t.session_id(), "se_7");
    const std::vector<Message> want = {{Role::system, "be brief"}, {Role::user, "hi"}, {Role::assistant, "hello"},
                                       {Role::user, "and?"}, {Role::assistant, "and more"}};
    EXPECT_EQ(t.messages(), want);
}

TEST(Transcript, ANewTurnDropsAnUnfinishedReply) {
    Transcript t;
    t.begin_turn("first");
    ok(t, token(1, "half a rep"));
    t.begin_turn("never mind");
    EXPECT_EQ(t.reply().text(), "");
    EXPECT_EQ(t.reply().last_seq(), 0u);
    ok(t, token(1, "ok"));
    ok(t, chat_completed(2, "success", "ok", "se_9"));
    const std::vector<Message> want = {{Role::user, "first"}, {Role::user, "never mind"}, {Role::assistant, "ok"}};
    EXPECT_EQ(t.messages(), want);
}

TEST(Transcript, InvalidEventsAreReportedAndLeaveTheHistoryAlone) {
    Transcript t;
    t.begin_turn("q");
    EXPECT_EQ(rejected(t, completed(1, "running")).code, "invalid_event");
    EXPECT_EQ(t.messages().size(), 1u);
    EXPECT_FALSE(t.reply().done());
}

}  // namespace confab::transcript
