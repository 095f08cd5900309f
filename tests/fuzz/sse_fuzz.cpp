// Fuzzes the SSE parser: the input (control bytes choose chunk boundaries) is fed split anywhere
// and must give exactly what a simple reference parser, written here from the WHATWG rules, gives
// for the whole stream; then once more as a reconnection after finish().
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "confab/sse.hpp"
#include "fuzz_support.hpp"

namespace {

using confab::sse::Event;

// https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation,
// byte for byte (no UTF-8 decoding, as the parser under test documents), one stream at a time.
struct Reference {
    std::vector<Event> events;
    std::string last_event_id;
    std::string id_buffer;
    std::optional<std::uint32_t> retry;
    std::uint64_t comments = 0;

    void run_stream(std::string_view s) {
        if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
        std::string data, type;
        bool have_data = false;
        // Lines end at CRLF, LF or CR; an unterminated last line is never processed.
        std::size_t start = 0;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] != '\r' && s[i] != '\n') continue;
            std::string_view line = s.substr(start, i - start);
            if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
            start = i + 1;
            if (line.empty()) {
                last_event_id = id_buffer;
                if (have_data) {
                    data.pop_back();  // the '\n' after the last data line
                    events.push_back(Event{type.empty() ? "message" : type, data, last_event_id});
                }
                data.clear();
                type.clear();
                have_data = false;
                continue;
            }
            if (line.front() == ':') {
                ++comments;
                continue;
            }
            std::string_view field = line, value;
            if (auto colon = line.find(':'); colon != std::string_view::npos) {
                field = line.substr(0, colon);
                value = line.substr(colon + 1);
                if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            }
            if (field == "event") {
                type.assign(value);
            } else if (field == "data") {
                data.append(value);
                data.push_back('\n');
                have_data = true;
            } else if (field == "id") {
                if (value.find('\0') == std::string_view::npos) id_buffer.assign(value);
            } else if (field == "retry") {
                bool digits = !value.empty() && value.size() <= confab::sse::kMaxRetryBytes;
                std::uint64_t v = 0;
                for (char c : value) {
                    if (c < '0' || c > '9') digits = false;
                    else if (v <= UINT32_MAX) v = v * 10 + static_cast<std::uint64_t>(c - '0');
                }
                if (digits) retry = v > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(v);
            }
        }
        // End of stream: the incomplete event is dropped, its id does not take effect.
        id_buffer = last_event_id;
    }
};

void collect(void* context, std::string_view type, std::string_view data, std::string_view id) {
    static_cast<std::vector<Event>*>(context)->push_back(Event{std::string(type), std::string(data), std::string(id)});
}

void check_same(const confab::sse::Parser& p, const std::vector<Event>& got, const Reference& ref) {
    FUZZ_CHECK(got.size() == ref.events.size(), "same number of events as the reference");
    for (std::size_t i = 0; i < got.size(); ++i) {
        FUZZ_CHECK(got[i].type == ref.events[i].type, "event type");
        FUZZ_CHECK(got[i].data == ref.events[i].data, "event data");
        FUZZ_CHECK(got[i].id == ref.events[i].id, "event id");
    }
    FUZZ_CHECK(p.last_event_id() == ref.last_event_id, "last event id");
    FUZZ_CHECK(p.retry_ms() == ref.retry, "retry");
    FUZZ_CHECK(p.comments_seen() == ref.comments, "comments seen");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    confab::fuzz::Input in(data, size);
    const bool use_callback = in.byte() & 1;
    auto cuts = in.cuts();
    const std::string_view stream = in.rest();
    if (stream.size() > (1u << 19)) return 0;  // under the parser's 1 MiB limits, so no error is expected

    Reference ref;
    ref.run_stream(stream);

    confab::sse::Parser parser;
    std::vector<Event> got;
    for (auto chunk : confab::fuzz::split_at(stream, cuts)) {
        auto st = use_callback ? parser.feed(chunk, collect, &got) : parser.feed(chunk, got);
        FUZZ_CHECK(st.ok(), "feed fails only over the limits");
    }
    parser.finish();
    check_same(parser, got, ref);

    // A reconnection: the same bytes again, now fed in one piece; state carries over as documented.
    ref.run_stream(stream);
    FUZZ_CHECK(parser.feed(stream, got).ok(), "feed after finish");
    parser.finish();
    check_same(parser, got, ref);

    // Under a small limit: oversized events are dropped (an error for them only), nothing that is
    // delivered exceeds the limit, and what the parser holds between feeds stays bounded.
    const std::size_t limit = 8 + (size % 248);
    confab::sse::Parser small(confab::sse::ParserLimits{limit});
    std::vector<Event> kept;
    for (auto chunk : confab::fuzz::split_at(stream, cuts)) {
        auto st = small.feed(chunk, kept);
        FUZZ_CHECK(st.ok() || st.error().code == "sse_event_too_large", "only oversized events are errors");
        FUZZ_CHECK(small.buffered_bytes() <= 3 * limit + confab::sse::kMaxLinePrefixBytes,
                   "buffered bytes stay within 3x the event limit plus a field name");
    }
    for (const auto& e : kept) {
        FUZZ_CHECK(e.data.size() <= limit, "no delivered event's data exceeds the limit");
    }
    return 0;
}
