#include "run_log.hpp"

#include <algorithm>

#include "confab/protocol.hpp"

namespace confab::server {

namespace {

enum Tag : unsigned char { kGeneric = 0, kAgentToken = 1, kDeltaContent = 2 };
constexpr std::size_t kLongText = 63;  // the head byte's length bits say "a varint follows"

std::uint64_t zigzag(std::int64_t v) {
    return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) {
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

using Bytes = RunLog::Bytes;

void reserve_for(Bytes& b, std::size_t more) {
    const std::size_t need = b.size() + more;
    if (need > b.capacity()) b.reserve(std::max(need, b.capacity() + b.capacity() / 4 + 32));
}

void append_bytes(Bytes& b, std::string_view s) {
    reserve_for(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
}

void put_varint(Bytes& out, std::uint64_t v) {
    reserve_for(out, 10);
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

std::uint64_t get_varint(const Bytes& in, std::size_t& pos) {
    std::uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        const auto b = static_cast<unsigned char>(in[pos++]);
        v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return v;
    }
}

}  // namespace

void RunLog::append(std::string_view type, std::string_view data, const std::string* reply_text,
                    bool text_only, std::int64_t created_at) {
    if (count_ == 0) last_ms_ = created_at;
    if (count_ % kMarkEvery == 0) marks_.push_back(Mark{entries_.size(), text_.size(), last_ms_});
    Tag tag = kGeneric;
    if (reply_text != nullptr && text_only) {
        if (type == "agent-response") tag = kAgentToken;
        if (type == "delta") tag = kDeltaContent;
    }
    const std::size_t text_len = reply_text != nullptr ? reply_text->size() : 0;
    const bool short_text = text_len < kLongText;
    reserve_for(entries_, 1);
    entries_.push_back(static_cast<char>((tag << 6) | (short_text ? text_len : kLongText)));
    if (!short_text) put_varint(entries_, text_len);
    put_varint(entries_, zigzag(created_at - last_ms_));
    last_ms_ = created_at;
    if (tag == kGeneric) {
        put_varint(entries_, type.size());
        append_bytes(entries_, type);
        put_varint(entries_, data.size());
        append_bytes(entries_, data);
    }
    if (reply_text != nullptr) append_bytes(text_, *reply_text);
    ++count_;
}

std::vector<EventRecord> RunLog::events_after(std::uint64_t after, std::size_t limit) const {
    std::vector<EventRecord> out;
    if (after >= count_ || limit == 0) return out;
    // From the mark at or before `after`: a compaction or a catch-up reads the log's tail only.
    const Mark& mark = marks_[static_cast<std::size_t>(after / kMarkEvery)];
    std::size_t pos = mark.entry, text_pos = mark.text;
    std::int64_t created = mark.before_ms;
    for (std::uint64_t seq = (after / kMarkEvery) * kMarkEvery + 1; seq <= count_ && out.size() < limit; ++seq) {
        const auto head = static_cast<unsigned char>(entries_[pos++]);
        const auto tag = static_cast<Tag>(head >> 6);
        std::size_t text_len = head & kLongText;
        if (text_len == kLongText) text_len = get_varint(entries_, pos);
        created += unzigzag(get_varint(entries_, pos));
        std::string_view type, data;
        if (tag == kGeneric) {
            const std::size_t tl = get_varint(entries_, pos);
            type = std::string_view(entries_.data() + pos, tl);
            pos += tl;
            const std::size_t dl = get_varint(entries_, pos);
            data = std::string_view(entries_.data() + pos, dl);
            pos += dl;
        }
        if (seq > after) {
            EventRecord& e = out.emplace_back();
            e.seq = seq;
            e.created_at = created;
            if (tag == kGeneric) {
                e.type = type;
                e.data = data;
            } else {
                const char* key = tag == kAgentToken ? "token" : "content";
                e.type = tag == kAgentToken ? "agent-response" : "delta";
                protocol::Json j = protocol::Json::object();
                j[key] = std::string(text_.data() + text_pos, text_len);
                e.data = protocol::dump(j);
            }
        }
        text_pos += text_len;
    }
    return out;
}

}  // namespace confab::server
