// Fuzzes the server's request-head handling (request_head.hpp): the framing checks against an
// independent model of RFC 9112 section 6 (so smuggling-relevant heads are always refused), the
// Last-Event-ID parse against a plain reading of its rule, and target / path splitting.
// Input: a request head as text, "METHOD target\n" then "name: value" lines; the first byte picks
// HTTP/1.0 or 1.1 and is also read as the Last-Event-ID candidate's length.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "request_head.hpp"

namespace {

using confab::server::HeadField;
using confab::server::RequestHead;

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The model: the status the head deserves (0 = accepted).
int expected_status(const RequestHead& h) {
    std::vector<std::string> codings;
    bool te = false, cl = false, cl_bad = false;
    std::string cl_value;
    for (const auto& f : h.fields) {
        const std::string name = lowercase(f.name);
        if (name == "transfer-encoding") {
            te = true;
            std::string_view v = f.value;
            std::size_t start = 0;
            for (std::size_t i = 0; i <= v.size(); ++i) {
                if (i == v.size() || v[i] == ',') {
                    auto c = trim(v.substr(start, i - start));
                    if (!c.empty()) codings.push_back(lowercase(c));
                    start = i + 1;
                }
            }
        } else if (name == "content-length") {
            cl = true;
            std::string_view v = f.value;
            std::size_t start = 0;
            for (std::size_t i = 0; i <= v.size(); ++i) {
                if (i == v.size() || v[i] == ',') {
                    auto c = trim(v.substr(start, i - start));
                    bool digits = !c.empty();
                    for (char d : c) digits = digits && d >= '0' && d <= '9';
                    // Compared as text without leading zeros: equal lists are fine ("5, 05"), and
                    // the value must fit in 64 bits.
                    while (c.size() > 1 && c.front() == '0') c.remove_prefix(1);
                    const std::string_view max = "18446744073709551615";
                    if (c.size() > max.size() || (c.size() == max.size() && c > max)) digits = false;
                    if (!digits || (!cl_value.empty() && cl_value != c)) cl_bad = true;
                    if (digits) cl_value = std::string(c);
                    start = i + 1;
                }
            }
        }
    }
    if (cl_bad) return 400;
    if (!te) return 0;
    if (h.version < 11 || cl) return 400;
    if (codings.empty() || codings.back() != "chunked") return 400;
    std::size_t chunked = 0;
    for (const auto& c : codings) chunked += c == "chunked";
    if (chunked > 1) return 400;
    return codings.size() > 1 ? 501 : 0;
}

void check_event_id(std::string_view s) {
    auto got = confab::server::parse_event_id(s);
    bool digits = !s.empty() && s.size() <= 19;
    for (char c : s) digits = digits && c >= '0' && c <= '9';
    if (!digits) {
        FUZZ_CHECK(!got, "only ASCII digits, at most 19, are an event id");
        return;
    }
    // Compared as text with 2^63-1, leading zeros dropped.
    const std::string_view max = "9223372036854775807";
    std::string_view d = s;
    while (d.size() > 1 && d.front() == '0') d.remove_prefix(1);
    const bool in_range = d.size() < max.size() || (d.size() == max.size() && d <= max);
    FUZZ_CHECK(got.has_value() == in_range, "an event id is in 0 .. 2^63-1");
    if (got) FUZZ_CHECK(std::to_string(*got) == std::string(d), "the event id's value");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    confab::fuzz::Input in(data, size);
    const std::uint8_t control = in.byte();
    const std::string_view text = in.rest();

    RequestHead head;
    head.version = (control & 1) ? 10 : 11;
    std::size_t line_start = 0;
    bool first = true;
    while (line_start <= text.size()) {
        auto nl = text.find('\n', line_start);
        const std::string_view line = text.substr(line_start, nl == std::string_view::npos ? nl : nl - line_start);
        if (first) {
            auto sp = line.find(' ');
            head.method = line.substr(0, sp);
            head.target = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
            first = false;
        } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
            head.fields.push_back(HeadField{line.substr(0, colon), trim(line.substr(colon + 1))});
        }
        if (nl == std::string_view::npos) break;
        line_start = nl + 1;
    }

    auto verdict = confab::server::check_request_head(head);
    const int want = expected_status(head);
    FUZZ_CHECK((verdict ? verdict->status : 0) == want, "framing verdict matches the RFC 9112 model");
    if (verdict) {
        FUZZ_CHECK(!verdict->message.empty() && !verdict->code.empty(), "a refusal says why");
        FUZZ_CHECK(verdict->message.rfind("Transfer-Encoding: ", 0) == 0 ||
                       verdict->message.rfind("Content-Length: ", 0) == 0,
                   "a refusal names the header");
    }

    // Every header value, and the target, as a Last-Event-ID.
    check_event_id(head.target);
    for (const auto& f : head.fields) check_event_id(f.value);
    check_event_id(text.substr(0, control >> 3));

    // Target splitting: the path is the decoded part before '?'; split_path rebuilds it.
    auto split = confab::server::split_target(head.target);
    const auto q = head.target.find('?');
    FUZZ_CHECK(split.path == confab::server::percent_decode(head.target.substr(0, q), false), "path = decoded target up to '?'");
    if (q == std::string_view::npos) FUZZ_CHECK(split.query.empty(), "no '?', no query");
    std::size_t amps = 0;
    for (char c : head.target) amps += c == '&';
    FUZZ_CHECK(split.query.size() <= amps + 1, "at most one query pair per '&'-separated piece");
    auto segs = confab::server::split_path(split.path);
    if (split.path.empty() || split.path.front() != '/') {
        FUZZ_CHECK(segs.empty(), "a path not starting with '/' has no segments");
    } else {
        std::string joined;
        for (auto s : segs) {
            joined += '/';
            joined += s;
        }
        FUZZ_CHECK(joined == split.path, "segments joined by '/' give the path back");
    }
    return 0;
}
