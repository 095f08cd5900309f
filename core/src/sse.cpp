// Server-Sent Events: incremental WHATWG parser over bytes, and the matching encoder.
#include "confab/sse.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <utility>

namespace confab::sse {
namespace {

constexpr char kBom[3] = {'\xEF', '\xBB', '\xBF'};
constexpr const char* kTooLarge = "sse_event_too_large";

// Index of the first `c` in data[from, n), or n. memchr is vectorised (or word-at-a-time in
// wasm's libc), far faster than a byte loop on long lines.
std::size_t find_byte(const char* data, std::size_t from, std::size_t n, char c) noexcept {
    if (from >= n) return n;
    const void* hit = std::memchr(data + from, c, n - from);
    return hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - data) : n;
}

// Calls line_fn(line) for each line of `text` split at CR, LF or CRLF; `text` without a line
// end is one line, and a trailing line end yields a final empty line (so "a\n" is "a", "").
template <typename LineFn>
void for_each_line(std::string_view text, LineFn&& line_fn) {
    const char* d = text.data();
    const std::size_t n = text.size();
    std::size_t pos = 0;
    std::size_t lf = find_byte(d, 0, n, '\n');
    std::size_t cr = find_byte(d, 0, n, '\r');
    for (;;) {
        const std::size_t eol = std::min(lf, cr);
        line_fn(text.substr(pos, eol - pos));
        if (eol == n) return;
        pos = eol + 1;
        if (d[eol] == '\r' && pos < n && d[pos] == '\n') ++pos;
        if (lf < pos) lf = find_byte(d, pos, n, '\n');
        if (cr < pos) cr = find_byte(d, pos, n, '\r');
    }
}

bool is_framing_byte(char c) noexcept { return c == '\r' || c == '\n' || c == '\0'; }

// Appends `value` without CR, LF and NUL, in ranges rather than byte by byte.
void append_sanitised(std::string& out, std::string_view value) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (is_framing_byte(value[i])) {
            out.append(value.data() + start, i - start);
            start = i + 1;
        }
    }
    out.append(value.data() + start, value.size() - start);
}

bool has_content_after_sanitising(std::string_view value) noexcept {
    return std::any_of(value.begin(), value.end(), [](char c) { return !is_framing_byte(c); });
}

}  // namespace

Parser::Parser(ParserLimits limits) : limits_(limits) {}

namespace {

// Copies each event into a vector (the owning API).
void push_event(void* out, std::string_view type, std::string_view data, std::string_view id) {
    Event& ev = static_cast<std::vector<Event>*>(out)->emplace_back();
    ev.type.assign(type);
    ev.data.assign(data);
    ev.id.assign(id);
}

// Index of the first CR or LF in data[i, n), or n. One pass for both line ends, 8 bytes at a
// time: SSE lines are short (tens of bytes), where a memchr call per line end and per kind of
// line end cost more than the scan itself in wasm.
std::size_t find_eol(const char* data, std::size_t i, std::size_t n) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ull;
    constexpr std::uint64_t highs = 0x8080808080808080ull;
    while (n - i >= 8) {
        std::uint64_t w;
        std::memcpy(&w, data + i, 8);
        const std::uint64_t lf = w ^ (ones * '\n');
        const std::uint64_t cr = w ^ (ones * '\r');
        // Bit 7 of byte k is set where byte k is zero; exact for the lowest such byte (a borrow
        // only flags bytes above a zero byte), which is all we use.
        const std::uint64_t hit = (((lf - ones) & ~lf) | ((cr - ones) & ~cr)) & highs;
        if (hit != 0) {
            // Little-endian (x86, arm, wasm): the lowest set bit is the first byte in memory.
            return i + static_cast<std::size_t>(std::countr_zero(hit) >> 3);
        }
        i += 8;
    }
    for (; i < n; ++i) {
        if (data[i] == '\n' || data[i] == '\r') return i;
    }
    return n;
}

// field == name, without a memcmp call (-Oz keeps those as calls).
template <std::size_t N>
bool is_field(std::string_view field, const char (&name)[N]) noexcept {
    if (field.size() != N - 1) return false;
    for (std::size_t i = 0; i + 1 < N; ++i) {
        if (field[i] != name[i]) return false;
    }
    return true;
}

// Bytes of a line's value: after the first ':' and one optional space.
std::size_t value_bytes(std::string_view head, std::string_view rest) noexcept {
    const std::size_t total = head.size() + rest.size();
    auto at = [&](std::size_t i) { return i < head.size() ? head[i] : rest[i - head.size()]; };
    std::size_t i = 0;
    while (i < total && at(i) != ':') ++i;
    if (i == total) return 0;
    ++i;
    if (i < total && at(i) == ' ') ++i;
    return total - i;
}

}  // namespace

// The field of the line head + rest (a line's start, possibly incomplete): decided as soon as its
// name is known (no known name is longer than 5 bytes), so an ignored line need not be buffered.
Parser::LineKind Parser::classify(std::string_view head, std::string_view rest) noexcept {
    const std::size_t total = head.size() + rest.size();
    if (total == 0) return LineKind::undecided;
    auto at = [&](std::size_t i) { return i < head.size() ? head[i] : rest[i - head.size()]; };
    if (at(0) == ':') return LineKind::comment;
    char name[6];
    std::size_t len = 0;
    while (len < total && len < sizeof name && at(len) != ':') {
        name[len] = at(len);
        ++len;
    }
    const std::string_view field(name, len);
    if (len < total && at(len) == ':') {
        if (is_field(field, "data")) return LineKind::data;
        if (is_field(field, "event")) return LineKind::event;
        if (is_field(field, "id")) return LineKind::id;
        if (is_field(field, "retry")) return LineKind::retry;
        return LineKind::ignored;
    }
    if (len == sizeof name) return LineKind::ignored;  // a name longer than every known one
    // No colon yet: still undecided while the bytes so far begin a known name.
    for (std::string_view known : {"data", "event", "id", "retry"}) {
        if (known.substr(0, len) == field) return LineKind::undecided;
    }
    return LineKind::ignored;
}

// The rest of the current line is read past, not buffered. A data/event/id line of an event being
// dropped counts towards its size.
void Parser::start_skipping(LineKind kind, std::size_t bytes) {
    skipping_ = kind;
    if (dropping_event_) dropped_bytes_ += bytes;
    if (!line_.empty()) line_.clear();
}

void Parser::end_skipped_line() {
    if (skipping_ == LineKind::comment) ++comments_;
    skipping_ = LineKind::undecided;
}

// The current event went over the limit: what it buffered is released, and its further data,
// type and id bytes are only counted until its blank line.
void Parser::start_dropping(std::size_t bytes_so_far) {
    own_views();
    dropping_event_ = true;
    dropped_bytes_ = bytes_so_far;
    std::string().swap(data_);
    std::string().swap(type_);
}

void Parser::note_dropped(std::size_t bytes) {
    ++events_dropped_;
    if (dropped_in_feed_++ == 0) {
        error_ = "SSE event of " + std::to_string(bytes) +
                 " bytes (data + event type + id) is over the limit of " +
                 std::to_string(limits_.max_event_bytes) +
                 " bytes (max_event_bytes): dropped; the events after it go on";
    }
}

Status Parser::feed(std::string_view chunk, std::vector<Event>& out) {
    return feed(chunk, push_event, &out);
}

Status Parser::feed(std::string_view chunk, EventFn on_event, void* context) {
    dropped_in_feed_ = 0;
    const char* d = chunk.data();
    const std::size_t n = chunk.size();
    std::size_t pos = 0;

    if (!bom_checked_) {
        while (pos < n && bom_bytes_seen_ < 3) {
            if (d[pos] != kBom[bom_bytes_seen_]) {
                // Not a BOM after all: the bytes held back start the first line.
                line_.assign(kBom, bom_bytes_seen_);
                bom_checked_ = true;
                break;
            }
            ++pos;
            ++bom_bytes_seen_;
        }
        if (bom_bytes_seen_ == 3) bom_checked_ = true;
        if (!bom_checked_) return Ok{};  // the chunk ended inside what may still be a BOM
    }

    if (pending_cr_ && pos < n) {
        if (d[pos] == '\n') ++pos;  // second half of a CRLF split across chunks
        pending_cr_ = false;
    }

    const std::size_t max = limits_.max_event_bytes;
    // Whether the line line_ + rest (of `kind`) may still be buffered: its value must fit in the
    // event beside what the event holds, as process_line judges a complete line, so the outcome
    // does not depend on where chunks split. A data/event line of an event being dropped is
    // never buffered, only counted.
    auto fits = [&](LineKind kind, std::string_view rest) {
        const std::size_t value = value_bytes(line_, rest);
        switch (kind) {
            case LineKind::data: return !dropping_event_ && data_size() + value + 1 + type_size() + id_size() <= max;
            case LineKind::event: return !dropping_event_ && data_size() + value + id_size() <= max;
            case LineKind::id: return value <= max;
            case LineKind::retry: return value <= std::min(max, kMaxRetryBytes);
            default: return line_.size() + rest.size() <= max;
        }
    };
    // A line that may not be buffered: a data/event line drops its event (its bytes are counted
    // as they stream by); an id or retry over the limit on its own is ignored, as is anything else.
    auto skip_line = [&](LineKind kind, std::string_view rest) {
        std::size_t bytes = 0;
        if (kind == LineKind::data || kind == LineKind::event) {
            bytes = value_bytes(line_, rest) + (kind == LineKind::data ? 1 : 0);
            if (!dropping_event_) start_dropping(data_size() + type_size() + id_size());
        } else if (kind == LineKind::undecided) {
            kind = LineKind::ignored;
        }
        start_skipping(kind, bytes);
    };
    while (pos < n) {
        const std::size_t eol = find_eol(d, pos, n);
        const std::string_view piece(d + pos, eol - pos);
        if (skipping_ != LineKind::undecided) {
            if (dropping_event_ && (skipping_ == LineKind::data || skipping_ == LineKind::event)) {
                dropped_bytes_ += piece.size();
            }
            if (eol == n) break;
            end_skipped_line();
        } else if (eol == n) {
            // No line end: keep the tail, unless it is a line the spec ignores (skipped as it
            // streams, whatever its length) or more than an event may hold.
            const LineKind kind = classify(line_, piece);
            if (kind == LineKind::comment || kind == LineKind::ignored || !fits(kind, piece)) {
                skip_line(kind, piece);
            } else {
                line_.append(piece);
            }
            break;
        } else if (line_.empty()) {
            process_line(piece, true, on_event, context);  // the common case: the line lies within the chunk
        } else if (const LineKind kind = classify(line_, piece);
                   kind != LineKind::comment && kind != LineKind::ignored && !fits(kind, piece)) {
            skip_line(kind, piece);
            end_skipped_line();
        } else {
            line_.append(piece);
            process_line(line_, false, on_event, context);
            line_.clear();
        }
        pos = eol + 1;
        if (d[eol] == '\r') {
            if (pos < n) {
                if (d[pos] == '\n') ++pos;
            } else {
                pending_cr_ = true;
            }
        }
    }
    own_views();
    if (dropped_in_feed_ == 0) return Ok{};
    std::string message = error_;
    if (dropped_in_feed_ > 1) message += " (" + std::to_string(dropped_in_feed_) + " events dropped in this chunk)";
    return make_error(kTooLarge, std::move(message));
}

void Parser::own_views() {
    if (data_in_view_) {
        data_.assign(data_view_);
        data_.push_back('\n');
        data_in_view_ = false;
    }
    if (type_in_view_) {
        type_.assign(type_view_);
        type_in_view_ = false;
    }
    if (id_in_view_) {
        id_buffer_.assign(id_view_);
        id_in_view_ = false;
    }
    if (last_id_in_view_) {
        last_event_id_.assign(last_id_view_);
        last_id_in_view_ = false;
        // finish() copies the last event ID into the id buffer and must not need to allocate.
        if (id_buffer_.capacity() < last_event_id_.size()) id_buffer_.reserve(last_event_id_.size());
    }
}

// `stable`: `line` stays valid until feed returns, so data and type may be kept as views of it.
bool Parser::process_line(std::string_view line, bool stable, EventFn on_event, void* context) {
    if (line.empty()) {
        dispatch(on_event, context);
        return true;
    }
    if (line.front() == ':') {
        ++comments_;
        return true;
    }
    // Field names are a few bytes: a byte loop beats a memchr call here.
    const char* p = line.data();
    const std::size_t n = line.size();
    std::size_t colon = 0;
    while (colon < n && p[colon] != ':') ++colon;
    const std::string_view field(p, colon);
    std::string_view value;
    if (colon < n) {
        std::size_t v = colon + 1;
        if (v < n && p[v] == ' ') ++v;
        value = std::string_view(p + v, n - v);
    }
    const std::size_t max = limits_.max_event_bytes;
    if (is_field(field, "data")) {
        if (dropping_event_) {
            dropped_bytes_ += value.size() + 1;
        } else if (data_size() + value.size() + 1 + type_size() + id_size() > max) {
            start_dropping(data_size() + value.size() + 1 + type_size() + id_size());
        } else if (stable && data_.empty() && !data_in_view_) {
            data_view_ = value;
            data_in_view_ = true;
        } else {
            if (data_in_view_) own_views();
            data_.append(value);
            data_.push_back('\n');
        }
    } else if (is_field(field, "event")) {
        if (dropping_event_) {
            dropped_bytes_ += value.size();
        } else if (data_size() + value.size() + id_size() > max) {
            start_dropping(data_size() + type_size() + id_size() + value.size());
        } else if (stable) {
            type_view_ = value;
            type_in_view_ = true;
        } else {
            type_.assign(value);
            type_in_view_ = false;
        }
    } else if (is_field(field, "id")) {
        bool nul = false;
        for (const char c : value) nul |= c == '\0';
        // The id keeps its meaning for reconnection even when its event is dropped; only an id
        // over the limit on its own is ignored.
        if (!nul && value.size() <= max) {
            if (!dropping_event_ && data_size() + type_size() + value.size() > max) {
                start_dropping(data_size() + type_size() + id_size() + value.size());
            }
            if (stable) {
                id_view_ = value;
                id_in_view_ = true;
            } else {
                id_buffer_.assign(value);
                id_in_view_ = false;
            }
        }
    } else if (is_field(field, "retry")) {
        const bool digits = !value.empty() && value.size() <= std::min(max, kMaxRetryBytes) && std::all_of(value.begin(), value.end(), [](char c) {
            return c >= '0' && c <= '9';
        });
        if (digits) {
            std::uint32_t ms = 0;
            const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
            (void)end;
            // Only digits, so the one possible failure is overflow: the nearest value is the max.
            retry_ms_ = ec == std::errc{} ? ms : UINT32_MAX;
        }
    }
    // Any other field name is ignored, as the spec says.
    return true;
}

void Parser::dispatch(EventFn on_event, void* context) {
    if (id_in_view_) {
        last_id_view_ = id_view_;
        last_id_in_view_ = true;
    } else {
        last_event_id_ = id_buffer_;
        last_id_in_view_ = false;
    }
    if (dropping_event_) {
        // The event over the limit ends here: reported, not dispatched. The stream goes on.
        note_dropped(dropped_bytes_);
        dropping_event_ = false;
        dropped_bytes_ = 0;
    } else if (data_in_view_ || !data_.empty()) {
        const std::string_view id = last_id_in_view_ ? last_id_view_ : std::string_view(last_event_id_);
        const std::string_view type = type_in_view_ ? type_view_ : std::string_view(type_);
        // Every data line appended a '\n' (a view stands for one line and its '\n'): the last one
        // is not part of the data. The buffers keep their capacity, so a stream of events
        // allocates nothing per event.
        const std::string_view data =
            data_in_view_ ? data_view_ : std::string_view(data_.data(), data_.size() - 1);
        on_event(context, type.empty() ? std::string_view("message") : type, data, id);
    }
    // Most events were views: nothing to clear then.
    if (!data_.empty()) data_.clear();
    if (!type_.empty()) type_.clear();
    data_in_view_ = false;
    type_in_view_ = false;
}

void Parser::finish() noexcept {
    // No view is pending between feeds (own_views), so nothing to copy here.
    line_.clear();
    data_.clear();
    type_.clear();
    id_buffer_ = last_event_id_;  // same size or smaller buffers: assign needs no allocation
    pending_cr_ = false;
    bom_checked_ = false;
    bom_bytes_seen_ = 0;
    skipping_ = LineKind::undecided;  // an incomplete line or event is discarded, as the spec says
    dropping_event_ = false;
    dropped_bytes_ = 0;
}

void Parser::reset() noexcept {
    std::string().swap(line_);
    std::string().swap(data_);
    std::string().swap(type_);
    std::string().swap(id_buffer_);
    std::string().swap(last_event_id_);
    std::string().swap(error_);
    data_in_view_ = type_in_view_ = id_in_view_ = last_id_in_view_ = false;
    retry_ms_.reset();
    comments_ = 0;
    bom_checked_ = false;
    pending_cr_ = false;
    bom_bytes_seen_ = 0;
    skipping_ = LineKind::undecided;
    dropping_event_ = false;
    dropped_bytes_ = 0;
    events_dropped_ = 0;
    dropped_in_feed_ = 0;
}

void encode_to(std::string& out, const OutEvent& ev) {
    out.reserve(out.size() + ev.data.size() + ev.type.size() + ev.id.size() + 40);
    if (has_content_after_sanitising(ev.type)) {
        out.append("event: ");
        append_sanitised(out, ev.type);
        out.push_back('\n');
    }
    if (has_content_after_sanitising(ev.id)) {
        out.append("id: ");
        append_sanitised(out, ev.id);
        out.push_back('\n');
    }
    if (ev.retry_ms) {
        char digits[16];
        const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, *ev.retry_ms);
        (void)ec;  // 10 digits always fit
        out.append("retry: ");
        out.append(digits, end);
        out.push_back('\n');
    }
    for_each_line(ev.data, [&](std::string_view line) {
        // "data: x" keeps a leading space of x (the parser strips exactly one); an empty line
        // needs no space.
        if (line.empty()) {
            out.append("data:\n");
        } else {
            out.append("data: ");
            out.append(line);
            out.push_back('\n');
        }
    });
    out.push_back('\n');
}

std::string encode(const OutEvent& ev) {
    std::string out;
    encode_to(out, ev);
    return out;
}

std::string encode_comment(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    for_each_line(text, [&](std::string_view line) {
        out.push_back(':');
        out.append(line);
        out.push_back('\n');
    });
    return out;
}

}  // namespace confab::sse
