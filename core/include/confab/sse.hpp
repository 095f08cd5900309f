// Server-Sent Events: an incremental parser (WHATWG EventSource rules) and an encoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "confab/result.hpp"

namespace confab::sse {

struct Event {
    std::string type = "message";  // `event:` field, "message" when absent or empty
    std::string data;              // `data:` lines joined with '\n' (no trailing newline)
    std::string id;                // the last event ID in effect when this event was dispatched
    bool operator==(const Event&) const = default;
};

// Receives each event as the parser dispatches it. The views point into the chunk being fed or
// the parser's buffers and are valid only during the call: a sink that keeps an event copies it
// (feed's vector overload does). Lets a caller frame events straight into its own buffer, with no
// allocation per event. A function pointer, not a virtual interface: the wasm SDK then links no
// RTTI support code (~1.3 KB).
using EventFn = void (*)(void* context, std::string_view type, std::string_view data, std::string_view id);

// The default per-event limit: far above any reasonable reply (a browser's EventSource has none),
// low enough that a runaway or hostile stream cannot take all memory.
inline constexpr std::size_t default_max_event_bytes = std::size_t{16} << 20;  // 16 MiB
// A `retry` value longer than this is ignored (and never buffered): 2^32-1 ms has 10 digits, so
// only absurd values are affected; shorter ones over 2^32-1 saturate.
inline constexpr std::size_t kMaxRetryBytes = 32;
// The longest field name (with its colon and one space) a buffered partial line starts with: "retry: ".
inline constexpr std::size_t kMaxLinePrefixBytes = 7;

struct ParserLimits {
    // Bytes one event may buffer: its data (with a '\n' per data line) + event type + id. Lines the
    // spec ignores (comments, unknown fields) are skipped unbuffered whatever their length.
    std::size_t max_event_bytes = default_max_event_bytes;
};

// Feed bytes in chunks split anywhere (even inside a UTF-8 sequence or a CRLF pair); complete
// events come out in order. Follows the WHATWG "interpret an event stream" algorithm: a leading
// UTF-8 BOM is skipped, lines end at CR, LF or CRLF, ':' lines are comments, an empty `data`
// buffer dispatches nothing, `id` containing NUL is ignored, `retry` takes only ASCII digits.
// The parser works on bytes: UTF-8 (valid or not) passes through unchanged, where a browser would
// turn invalid sequences into U+FFFD. Memory is bounded whatever the input (see buffered_bytes()):
// comment and unknown-field lines are skipped as they stream by, never buffered, and an event over
// limits.max_event_bytes is dropped (its bytes counted, not kept) while the events around it are
// delivered. What stays buffered is at most the event (data + type + id <= max_event_bytes), a
// partial `id` or `retry` line (its value <= max_event_bytes, plus its field name: at most
// kMaxLinePrefixBytes) and the last event ID (<= max_event_bytes): 3 x max_event_bytes + 7.
class Parser {
public:
    explicit Parser(ParserLimits limits = {});

    // Appends the events completed by this chunk to `out`. The whole chunk is always consumed.
    // An error (code "sse_event_too_large") means an event whose data + type + id came to more
    // than limits.max_event_bytes ended in this chunk and was dropped; the message names the limit
    // and the event's size. It concerns that event only: the events before and after it are
    // delivered, and the next feed starts clean (no sticky state).
    Status feed(std::string_view chunk, std::vector<Event>& out);
    // The same, handing each completed event to on_event(context, ...) as it is dispatched.
    Status feed(std::string_view chunk, EventFn on_event, void* context);

    // At end of stream: an incomplete event is discarded, as the spec says (an `id` seen in it does
    // not take effect; a `retry` does, as it applies when read). The parser is then ready for the
    // next stream of the same source (a reconnection): a BOM is skipped again, last_event_id(),
    // retry_ms() and comments_seen() are kept.
    void finish() noexcept;
    // Back to a new parser's state (same limits).
    void reset() noexcept;

    // The source's "last event ID string": set when an event boundary (blank line) is reached, even
    // if no event is dispatched. Send it as Last-Event-ID when reconnecting.
    const std::string& last_event_id() const noexcept { return last_event_id_; }
    // The last valid `retry` (values over 2^32-1 saturate), std::nullopt when none was seen.
    std::optional<std::uint32_t> retry_ms() const noexcept { return retry_ms_; }
    // Number of comment lines seen (heartbeats), useful for liveness tracking.
    std::uint64_t comments_seen() const noexcept { return comments_; }
    // Events dropped for exceeding limits.max_event_bytes, since construction or reset().
    std::uint64_t events_dropped() const noexcept { return events_dropped_; }
    // Bytes the parser holds between feeds (partial line, event buffers, last event ID): at most
    // 3 * max_event_bytes, whatever was fed (tests check it; the parser never buffers to skip).
    std::size_t buffered_bytes() const noexcept {
        return line_.size() + data_.size() + type_.size() + id_buffer_.size() + last_event_id_.size();
    }

private:
    // What a line is, judged from its first bytes (a partial line may be skipped before its end).
    enum class LineKind : std::uint8_t { undecided, comment, ignored, data, event, id, retry };
    static LineKind classify(std::string_view head, std::string_view rest) noexcept;
    void start_skipping(LineKind kind, std::size_t value_bytes);
    void end_skipped_line();
    void start_dropping(std::size_t bytes_so_far);
    bool process_line(std::string_view line, bool stable, EventFn on_event, void* context);
    void own_views();
    std::size_t data_size() const noexcept { return data_in_view_ ? data_view_.size() + 1 : data_.size(); }
    std::size_t type_size() const noexcept { return type_in_view_ ? type_view_.size() : type_.size(); }
    std::size_t id_size() const noexcept { return id_in_view_ ? id_view_.size() : id_buffer_.size(); }
    void dispatch(EventFn on_event, void* context);
    void note_dropped(std::size_t bytes);

    ParserLimits limits_;
    std::string line_;           // the unterminated tail of the previous chunk(s)
    std::string data_;           // data buffer (each line followed by '\n')
    std::string type_;           // event type buffer
    std::string id_buffer_;      // last event ID buffer
    std::string last_event_id_;  // last event ID string (id_buffer_ as of the last blank line)
    std::string error_;          // what the current feed dropped (empty: nothing)
    std::size_t dropped_in_feed_ = 0;  // events dropped in the current feed
    // Within one feed, a one-line data buffer, the type, the id buffer and the last event ID may
    // stay views into the chunk instead of copies (most events are event + id + one data line +
    // blank line, all in one chunk); own_views() copies them into the strings above before feed
    // returns, so between feeds every view flag is false.
    std::string_view data_view_;  // the data buffer is this + '\n' when data_in_view_
    std::string_view type_view_;
    std::string_view id_view_;
    std::string_view last_id_view_;
    bool data_in_view_ = false;
    bool type_in_view_ = false;
    bool id_in_view_ = false;
    bool last_id_in_view_ = false;
    std::optional<std::uint32_t> retry_ms_;
    std::uint64_t comments_ = 0;
    bool bom_checked_ = false;
    bool pending_cr_ = false;  // last chunk ended in CR: a following LF belongs to it
    // A line being skipped as it streams (not buffered): its kind, and for a data/event/id line of
    // an event being dropped, its value bytes count towards the dropped event's size.
    LineKind skipping_ = LineKind::undecided;  // undecided: not skipping
    bool dropping_event_ = false;               // the current event went over the limit
    std::size_t dropped_bytes_ = 0;             // its size so far (data + '\n' per line + type + id)
    std::uint64_t events_dropped_ = 0;
    std::size_t bom_bytes_seen_ = 0;  // BOM prefix bytes held back while a chunk split the BOM
};

// Encoding. `data` may contain any newlines (CR, LF, CRLF): each line becomes its own `data:`
// field, so the parser gives back exactly `data` with newlines normalised to '\n'. Empty data
// still gives one `data:` line, so the event is dispatched (with data ""). CR, LF and NUL are
// removed from `type` and `id` (they would break framing, and the parser ignores an id with NUL);
// an id that is empty after that gets no `id:` line (an empty `id:` would reset the last ID).
struct OutEvent {
    std::string_view type;  // empty: no `event:` line (a "message")
    std::string_view data;
    std::string_view id;    // empty: no `id:` line
    std::optional<std::uint32_t> retry_ms;
};
std::string encode(const OutEvent& ev);
void encode_to(std::string& out, const OutEvent& ev);  // appends, for reusing a buffer
// ':' + text + '\n' per line of `text` (split like data): comment lines the parser counts and
// otherwise ignores, usable as a heartbeat between events.
std::string encode_comment(std::string_view text);

}  // namespace confab::sse
