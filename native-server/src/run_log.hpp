// The events of one live run, kept in memory while it runs (docs/STREAMING.md): readers that
// resume or fall behind are served from here, and the run's completion writes them to storage in
// one go. Compact: a reply token whose data is only its text (agent-response {"token": t},
// delta {"content": t}) costs its text, which the run keeps anyway as its reply, and 3-5 bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store.hpp"

namespace confab::server {

class RunLog {
public:
    // `reply_text`: the event's reply text (protocol::reply_text_of), or nullptr. `text_only`:
    // the event's data is exactly {"<key>": reply_text} with the key of its type, so it can be
    // rebuilt byte for byte from the text.
    void append(std::string_view type, std::string_view data, const std::string* reply_text,
                bool text_only, std::int64_t created_at);

    std::uint64_t size() const { return count_; }    // events held: seqs 1..size()
    std::string_view text() const { return {text_.data(), text_.size()}; }  // the reply text of all of them
    // Events with seq > after, at most `limit`, in order.
    std::vector<EventRecord> events_after(std::uint64_t after, std::size_t limit = SIZE_MAX) const;
    std::size_t bytes() const { return text_.size() + entries_.size(); }  // excluding growth slack
    std::size_t capacity() const { return text_.capacity() + entries_.capacity(); }  // including it

    // Grown by a quarter at a time, not doubled (std::string doubles): a live run's log is most
    // of what a stream costs, and doubling leaves a quarter of it unused on average.
    using Bytes = std::vector<char>;

private:
    Bytes text_;
    // Per event: a head byte (tag in the top two bits, the text's length in the low six when it is
    // under 63, else 63 and the length as a varint after it), created_at as a zigzag varint of
    // the difference to the event before (a token 50 ms after the last: one byte), then [type,
    // data] for a generic event. A reply token costs its text and 2 bytes.
    Bytes entries_;
    std::uint64_t count_ = 0;
    std::int64_t last_ms_ = 0;  // created_at of the last event
    // Where event k * kMarkEvery + 1 starts, in entries_ and text_, and the created_at before it
    // (24 bytes per 256 events).
    static constexpr std::uint64_t kMarkEvery = 256;
    struct Mark {
        std::size_t entry = 0, text = 0;
        std::int64_t before_ms = 0;
    };
    std::vector<Mark> marks_;
};

}  // namespace confab::server
