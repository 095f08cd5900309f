// Server-Sent Events: incremental WHATWG parser over bytes, and the matching encoder.
#include "confab/sse.hpp"

#include <algorithm>
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

Error Parser::fail(std::string message) {
    failed_ = true;
    // Release what the oversized input made us hold: the parser is dead until reset().
    std::string().swap(line_);
    std::string().swap(data_);
    std::string().swap(type_);
    return make_error(kTooLarge, std::move(message));
}

Status Parser::feed(std::string_view chunk, std::vector<Event>& out) {
    if (failed_) {
        return make_error(kTooLarge, "SSE parser stopped after input over the limit of " +
                                         std::to_string(limits_.max_event_bytes) +
                                         " bytes; call reset() before feeding it again");
    }
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
    // Next LF and CR at or after pos; each is searched again only once passed, so a chunk is
    // scanned about once per kind of line end whatever mix of CR and LF it uses.
    std::size_t lf = find_byte(d, pos, n, '\n');
    std::size_t cr = find_byte(d, pos, n, '\r');
    while (pos < n) {
        const std::size_t eol = std::min(lf, cr);
        if (eol == n) {
            // No line end: keep the tail, but never more than a line may hold.
            if (line_.size() + (n - pos) > max) {
                return fail("SSE line longer than the limit of " + std::to_string(max) + " bytes");
            }
            line_.append(d + pos, n - pos);
            break;
        }
        const std::string_view piece(d + pos, eol - pos);
        if (line_.size() + piece.size() > max) {
            return fail("SSE line longer than the limit of " + std::to_string(max) + " bytes");
        }
        Status st = Ok{};
        if (line_.empty()) {
            st = process_line(piece, out);  // the common case: the line lies within the chunk
        } else {
            line_.append(piece);
            st = process_line(line_, out);
            line_.clear();
        }
        if (!st) return st;
        pos = eol + 1;
        if (d[eol] == '\r') {
            if (pos < n) {
                if (d[pos] == '\n') ++pos;
            } else {
                pending_cr_ = true;
            }
        }
        if (lf < pos) lf = find_byte(d, pos, n, '\n');
        if (cr < pos) cr = find_byte(d, pos, n, '\r');
    }
    return Ok{};
}

Status Parser::process_line(std::string_view line, std::vector<Event>& out) {
    if (line.empty()) {
        dispatch(out);
        return Ok{};
    }
    if (line.front() == ':') {
        ++comments_;
        return Ok{};
    }
    std::string_view field = line;
    std::string_view value;
    if (const std::size_t colon = line.find(':'); colon != std::string_view::npos) {
        field = line.substr(0, colon);
        value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    const std::size_t max = limits_.max_event_bytes;
    auto too_large = [&] {
        return fail("SSE event larger than the limit of " + std::to_string(max) +
                    " bytes (data + event type + id)");
    };
    if (field == "data") {
        if (data_.size() + value.size() + 1 + type_.size() + id_buffer_.size() > max) {
            return too_large();
        }
        data_.append(value);
        data_.push_back('\n');
    } else if (field == "event") {
        if (data_.size() + value.size() + id_buffer_.size() > max) return too_large();
        type_.assign(value);
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) {
            if (data_.size() + type_.size() + value.size() > max) return too_large();
            id_buffer_.assign(value);
        }
    } else if (field == "retry") {
        const bool digits = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
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
    return Ok{};
}

void Parser::dispatch(std::vector<Event>& out) {
    last_event_id_ = id_buffer_;
    if (data_.empty()) {
        type_.clear();
        return;
    }
    data_.pop_back();  // every data line appended a '\n': drop the last one
    Event& ev = out.emplace_back();
    if (!type_.empty()) ev.type = type_;
    ev.data = std::move(data_);
    ev.id = last_event_id_;
    data_.clear();
    type_.clear();
}

void Parser::finish() noexcept {
    line_.clear();
    data_.clear();
    type_.clear();
    id_buffer_ = last_event_id_;  // same size or smaller buffers: assign needs no allocation
    pending_cr_ = false;
    bom_checked_ = false;
    bom_bytes_seen_ = 0;
}

void Parser::reset() noexcept {
    std::string().swap(line_);
    std::string().swap(data_);
    std::string().swap(type_);
    std::string().swap(id_buffer_);
    std::string().swap(last_event_id_);
    retry_ms_.reset();
    comments_ = 0;
    bom_checked_ = false;
    pending_cr_ = false;
    failed_ = false;
    bom_bytes_seen_ = 0;
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
