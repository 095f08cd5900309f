// The shipped SDK's wasm surface: SSE framing and the chat transcript as plain C exports (no embind).
// User hashes are in user_hash_bindings.cpp, which only the SDK's module links (the widget never signs).
//
// Why C exports and not embind: the SDK needs a handful of calls, all on bytes. Plain exports plus a
// small hand-written JS facade (web/src/core.js) measured smaller than embind's glue (see
// wasm/sdk.cmake) and cost one call per network chunk. Why not protocol.hpp: nlohmann's parser
// alone would cost more than the rest of the bundle; JS decodes event payloads with JSON.parse.
//
// Memory contract: JS owns each parser and transcript handle and frees it with confab_sse_delete /
// confab_transcript_delete (the facade's delete(), with a FinalizationRegistry backstop). Pointers
// returned by these functions point into buffers owned by the handle and stay valid until the next
// call on it; JS copies out of them at once (memory growth may move the heap).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <new>
#include <optional>
#include <string>
#include <string_view>

#include <emscripten/emscripten.h>

#include "confab/sse.hpp"
#include "confab/transcript.hpp"

namespace {

// A growable byte buffer for the per-event output. std::string's append is out of line in
// libc++ and costs several more calls per field at -Oz; this is one capacity check and a memcpy.
class ByteBuf {
public:
    ByteBuf() = default;
    ByteBuf(const ByteBuf&) = delete;
    ByteBuf& operator=(const ByteBuf&) = delete;
    ~ByteBuf() { std::free(p_); }

    const char* data() const noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }
    void clear() noexcept { n_ = 0; }
    void release() noexcept {
        std::free(p_);
        p_ = nullptr;
        n_ = cap_ = 0;
    }
    // Grows the buffer by `len` bytes and returns where they start, for the caller to fill.
    char* extend(std::size_t len) {
        if (cap_ - n_ < len) grow(len);
        char* at = p_ + n_;
        n_ += len;
        return at;
    }

private:
    void grow(std::size_t len) {
        std::size_t cap = cap_ < 256 ? 256 : cap_;
        while (cap - n_ < len) cap *= 2;
        void* p = std::realloc(p_, cap);
        if (!p) std::abort();  // as std::string does without exceptions
        p_ = static_cast<char*>(p);
        cap_ = cap;
    }

    char* p_ = nullptr;  // malloc'd: aligned for the u32 lengths JS reads with HEAPU32
    std::size_t n_ = 0;
    std::size_t cap_ = 0;
};

// Frames each event for JS as the parser dispatches it: no per-event allocation once the
// buffers have grown (they are reused across feeds).
struct SdkParser {
    explicit SdkParser(confab::sse::ParserLimits limits) : parser(limits) {}
    static void on_event(void* self, std::string_view type, std::string_view data, std::string_view id);

    confab::sse::Parser parser;
    int count = 0;             // events of this feed
    std::string input;         // JS copies each network chunk here
    ByteBuf out;               // the fields of the last feed's events, each CR-terminated
    ByteBuf lens;              // per field, utf16_units() of it, as u32
    std::string error;         // the message of the last failed feed
    // What JS reads after confab_sse_feed_text: {text pointer, text bytes, lens pointer}. Its
    // address is stable.
    std::uint32_t view[3] = {0, 0, 0};
};

// A lower bound of the length in UTF-16 code units that TextDecoder gives `s`, exact when `s` is
// well-formed UTF-8: one unit per byte that is not a continuation byte (each such byte starts a
// code point of its own, valid or U+FFFD), one more for a 4-byte lead followed by 3 continuation
// bytes (then a surrogate pair, or an invalid sequence of 4 U+FFFD). Never more than the truth,
// which lets JS trust it only where it lands on the field's CR. ASCII goes 8 bytes at a time.
std::uint32_t utf16_units(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    constexpr std::uint64_t highs = 0x8080808080808080ull;
    if (n >= 8) {
        // All ASCII (most fields)? Words, the last one overlapping, so no byte loop for the tail.
        std::uint64_t any = 0;
        std::uint64_t w;
        for (std::size_t i = 0; i + 8 < n; i += 8) {
            std::memcpy(&w, p + i, 8);
            any |= w;
        }
        std::memcpy(&w, p + n - 8, 8);
        if (((any | w) & highs) == 0) return static_cast<std::uint32_t>(n);
    }
    std::size_t units = 0;
    std::size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            std::uint64_t w;
            std::memcpy(&w, p + i, 8);
            if ((w & highs) == 0) {
                units += 8;
                i += 8;
                continue;
            }
        }
        const unsigned c = p[i];
        if ((c & 0xC0) != 0x80) ++units;
        if (c >= 0xF0 && c <= 0xF4 && n - i >= 4 && (p[i + 1] & 0xC0) == 0x80 &&
            (p[i + 2] & 0xC0) == 0x80 && (p[i + 3] & 0xC0) == 0x80) {
            ++units;
        }
        ++i;
    }
    return static_cast<std::uint32_t>(units);
}

// memcpy for the short fields of SSE events: 8-byte words (the last one overlapping), no call.
inline void copy_small(char* to, const char* from, std::size_t n) {
    if (n < 8 || n > 64) {
        std::memcpy(to, from, n);
        return;
    }
    std::uint64_t w;
    for (std::size_t i = 0; i + 8 < n; i += 8) {
        std::memcpy(&w, from + i, 8);
        std::memcpy(to + i, &w, 8);
    }
    std::memcpy(&w, from + n - 8, 8);
    std::memcpy(to + n - 8, &w, 8);
}

void SdkParser::on_event(void* self, std::string_view type, std::string_view data, std::string_view id) {
    auto* p = static_cast<SdkParser*>(self);
    ++p->count;
    // Each field followed by CR, which no field can contain (the parser splits lines at CR).
    // One capacity check per event, then plain copies.
    char* at = p->out.extend(type.size() + data.size() + id.size() + 3);
    std::uint32_t* units = reinterpret_cast<std::uint32_t*>(p->lens.extend(3 * sizeof(std::uint32_t)));
    int k = 0;
    for (const std::string_view f : {type, data, id}) {
        units[k++] = utf16_units(f);
        copy_small(at, f.data(), f.size());
        at += f.size();
        *at++ = '\r';
    }
}

int feed(SdkParser* p, std::uint32_t len) {
    p->out.clear();
    p->lens.clear();
    p->count = 0;
    const std::size_t n = len <= p->input.size() ? len : p->input.size();
    const confab::Status s = p->parser.feed(std::string_view(p->input.data(), n), SdkParser::on_event, p);
    const int count = p->count;
    p->view[0] = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(p->out.data()));
    p->view[1] = static_cast<std::uint32_t>(p->out.size());
    p->view[2] = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(p->lens.data()));
    if (s.ok()) return count;
    p->error = s.error().message;
    // Report the events that did complete: -1 - count distinguishes "error after count events".
    return -1 - count;
}

struct SdkTranscript {
    confab::transcript::Transcript transcript;
    std::string input;               // JS writes an event (or a message) here
    std::string error;               // the message of the last invalid event
    std::uint32_t view[2] = {0, 0};  // {pointer, length} of the string a getter returned
};

std::uint32_t get_u32(const char* p) {
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    return b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
}

constexpr std::uint32_t kAbsent = 0xffffffff;

}  // namespace

extern "C" {

// A new parser; max_event_bytes 0 keeps the core's default limit. Returns null on allocation failure.
EMSCRIPTEN_KEEPALIVE SdkParser* confab_sse_new(std::uint32_t max_event_bytes) {
    confab::sse::ParserLimits limits;
    if (max_event_bytes != 0) limits.max_event_bytes = max_event_bytes;
    return new (std::nothrow) SdkParser(limits);
}

EMSCRIPTEN_KEEPALIVE void confab_sse_delete(SdkParser* p) { delete p; }

// A buffer of at least `len` bytes for the next chunk: JS writes the chunk there, then calls feed.
// Reused across chunks, so a stream costs no allocation per chunk once the buffer has grown.
EMSCRIPTEN_KEEPALIVE char* confab_sse_input(SdkParser* p, std::uint32_t len) {
    if (p->input.size() < len) p->input.resize(len);
    return p->input.data();
}

// Parses the first `len` bytes of the input buffer: what the SDK calls per network chunk. Returns
// the number of events completed, or -1 - count after an error (then confab_sse_error has the
// message; the `count` events completed before the error in the same chunk are in the output).
// The output, described by confab_sse_view: the fields of the events (type, data, id of each),
// each followed by a CR, which no field can contain, and per field a u32 lower bound of its
// UTF-16 length (exact for well-formed UTF-8). JS decodes the whole text once and cuts it at the
// CRs: invalid UTF-8 never swallows an ASCII byte, so that gives exactly what decoding each field
// alone gives, U+FFFD replacements included. The lengths save JS the search for most CRs.
EMSCRIPTEN_KEEPALIVE int confab_sse_feed_text(SdkParser* p, std::uint32_t len) { return feed(p, len); }

// The address of the u32[3] {text pointer, text bytes, lengths pointer}, stable for the parser's
// life; its values are those of the last confab_sse_feed_text.
EMSCRIPTEN_KEEPALIVE const std::uint32_t* confab_sse_view(SdkParser* p) { return p->view; }

EMSCRIPTEN_KEEPALIVE const char* confab_sse_error(SdkParser* p) { return p->error.c_str(); }

// End of one connection's body: an incomplete event is dropped, last id and retry are kept.
// Also releases the buffers, which only a long stream needed.
EMSCRIPTEN_KEEPALIVE void confab_sse_finish(SdkParser* p) {
    p->parser.finish();
    std::string().swap(p->input);
    p->out.release();
    p->lens.release();
}

// No last-event-id export: the SDK resumes from the transcript's last applied seq, which the
// transcript (not the framing) knows to be exactly-once.
// The stream's last `retry:` value in ms, or -1 when none was seen.
EMSCRIPTEN_KEEPALIVE double confab_sse_retry_ms(SdkParser* p) {
    const auto r = p->parser.retry_ms();
    return r ? static_cast<double>(*r) : -1.0;
}

// ---- transcript: exactly-once assembly of a streamed reply, and the session's messages ----

EMSCRIPTEN_KEEPALIVE SdkTranscript* confab_transcript_new() { return new (std::nothrow) SdkTranscript(); }
EMSCRIPTEN_KEEPALIVE void confab_transcript_delete(SdkTranscript* t) { delete t; }

// A buffer of at least `len` bytes for the next event or message (reused, like confab_sse_input).
EMSCRIPTEN_KEEPALIVE char* confab_transcript_input(SdkTranscript* t, std::uint32_t len) {
    if (t->input.size() < len) t->input.resize(len);
    return t->input.data();
}

// Applies the event framed in the first `len` bytes of the input buffer: its type, then the
// payload's string fields content, token, tool, tool_input, error, code, status, result, output,
// sessionId, each as a little-endian u32 length (0xffffffff: absent) and that many bytes. seq is a
// JS number (a safe integer). Returns 0 applied, 1 duplicate, 2 gap, -1 invalid (then
// confab_transcript_error has the message and nothing changed).
EMSCRIPTEN_KEEPALIVE int confab_transcript_apply(SdkTranscript* t, double seq, std::uint32_t len) {
    const char* at = t->input.data();
    const char* end = at + (len <= t->input.size() ? len : t->input.size());
    std::optional<std::string_view> fields[11];
    for (auto& f : fields) {
        const std::uint32_t n = end - at < 4 ? 0 : get_u32(at);
        if (end - at < 4 || (n != kAbsent && static_cast<std::size_t>(end - at - 4) < n)) {
            t->error = "malformed event buffer";  // a bug in the facade, not in the stream
            return -1;
        }
        at += 4;
        if (n == kAbsent) continue;
        f = std::string_view(at, n);
        at += n;
    }
    confab::transcript::Event ev;
    // Seq 0 is rejected by the core with its own message; so is anything that is not a safe integer.
    ev.seq = seq >= 1 && seq <= 9007199254740991.0 && static_cast<double>(static_cast<std::uint64_t>(seq)) == seq
                 ? static_cast<std::uint64_t>(seq) : 0;
    ev.type = fields[0].value_or(std::string_view());
    ev.content = fields[1];
    ev.token = fields[2];
    ev.tool = fields[3];
    ev.tool_input = fields[4];
    ev.error = fields[5];
    ev.code = fields[6];
    ev.status = fields[7];
    ev.result = fields[8];
    ev.output = fields[9];
    ev.session_id = fields[10];
    const auto r = t->transcript.apply(ev);
    if (!r) {
        t->error = r.error().message;
        return -1;
    }
    return static_cast<int>(*r);
}

EMSCRIPTEN_KEEPALIVE const char* confab_transcript_error(SdkTranscript* t) { return t->error.c_str(); }

// The current reply picks up after events 1..seq shown elsewhere, whose text is the first `len`
// bytes of the input buffer (Reply::continue_after). 0, or -1 (confab_transcript_error says why).
EMSCRIPTEN_KEEPALIVE int confab_transcript_continue(SdkTranscript* t, double seq, std::uint32_t len) {
    if (!(seq >= 0 && seq <= 9007199254740991.0) || static_cast<double>(static_cast<std::uint64_t>(seq)) != seq) {
        t->error = "continue: seq must be a non-negative safe integer";
        return -1;
    }
    const auto st = t->transcript.continue_reply(
        static_cast<std::uint64_t>(seq), std::string(t->input.data(), len <= t->input.size() ? len : t->input.size()));
    if (!st) {
        t->error = st.error().message;
        return -1;
    }
    return 0;
}

// The first `len` bytes of the input buffer are the user's message / a message's content.
EMSCRIPTEN_KEEPALIVE void confab_transcript_begin_turn(SdkTranscript* t, std::uint32_t len) {
    t->transcript.begin_turn(std::string(t->input.data(), len <= t->input.size() ? len : t->input.size()));
}
EMSCRIPTEN_KEEPALIVE void confab_transcript_add_message(SdkTranscript* t, int role, std::uint32_t len) {
    const auto r = role == 1 ? confab::transcript::Role::assistant
                 : role == 2 ? confab::transcript::Role::system : confab::transcript::Role::user;
    t->transcript.add_message(r, std::string(t->input.data(), len <= t->input.size() ? len : t->input.size()));
}
EMSCRIPTEN_KEEPALIVE void confab_transcript_set_session_id(SdkTranscript* t, std::uint32_t len) {
    t->transcript.set_session_id(std::string(t->input.data(), len <= t->input.size() ? len : t->input.size()));
}

// Numbers, one getter to keep the export list short. which: 0 last seq, 1 status (0 streaming,
// 1 success, 2 error, 3 cancelled), 2 message count, 3 role of message `index` (0 user,
// 1 assistant, 2 system), 4 action count, 5 kind of action `index` (0 call, 1 error), 6 its seq.
// -1 for an index out of range.
EMSCRIPTEN_KEEPALIVE double confab_transcript_num(SdkTranscript* t, int which, std::uint32_t index) {
    const auto& reply = t->transcript.reply();
    const auto& messages = t->transcript.messages();
    const auto& actions = reply.actions();
    switch (which) {
        case 0: return static_cast<double>(reply.last_seq());
        case 1: return static_cast<double>(reply.status());
        case 2: return static_cast<double>(messages.size());
        case 3: return index < messages.size() ? static_cast<double>(messages[index].role) : -1;
        case 4: return static_cast<double>(actions.size());
    }
    if (index >= actions.size()) return -1;
    const auto& a = actions[index];
    return which == 5 ? static_cast<double>(a.kind) : which == 6 ? static_cast<double>(a.seq) : -1;
}

// Strings: a pointer to {u32 pointer, u32 length}, or null when absent. which: 0 text, 1 result,
// 2 error, 3 error code, 4 session id (the transcript's), 5 content of message `index`, 6 tool of
// action `index`, 7 its tool_input (JSON text), 8 its error.
EMSCRIPTEN_KEEPALIVE const std::uint32_t* confab_transcript_str(SdkTranscript* t, int which, std::uint32_t index) {
    const auto& reply = t->transcript.reply();
    const auto& messages = t->transcript.messages();
    const auto& actions = reply.actions();
    const std::string* s = nullptr;
    switch (which) {
        case 0: s = &reply.text(); break;
        case 1: s = &reply.result(); break;
        case 2: s = reply.error() ? &*reply.error() : nullptr; break;
        case 3: s = reply.error_code() ? &*reply.error_code() : nullptr; break;
        case 4: s = &t->transcript.session_id(); break;
        case 5: s = index < messages.size() ? &messages[index].content : nullptr; break;
        default:
            if (index < actions.size()) {
                const auto& a = actions[index];
                s = which == 6 ? &a.tool : which == 7 ? &a.tool_input : which == 8 ? &a.error : nullptr;
            }
    }
    if (!s) return nullptr;
    t->view[0] = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(s->data()));
    t->view[1] = static_cast<std::uint32_t>(s->size());
    return t->view;
}

// Bytes currently allocated on the wasm heap (emmalloc), for the SDK's leak test.
EMSCRIPTEN_KEEPALIVE double confab_heap_used() {
    return static_cast<double>(mallinfo().uordblks);
}

}  // extern "C"
