// The shipped SDK's wasm surface: SSE framing, the chat transcript and user hashes as plain C exports (no embind).
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
#include <cstring>
#include <malloc.h>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <emscripten/emscripten.h>

#include "confab/identity.hpp"
#include "confab/sse.hpp"
#include "confab/transcript.hpp"

namespace {

struct SdkParser {
    explicit SdkParser(confab::sse::ParserLimits limits) : parser(limits) {}
    confab::sse::Parser parser;
    std::vector<confab::sse::Event> events;  // reused across feeds
    std::string input;                       // JS copies each network chunk here
    std::string out;                         // the events of the last feed, framed for JS
    std::string error;                       // the message of the last failed feed
};

void put_u32(std::string& out, std::size_t v) {
    const auto n = static_cast<std::uint32_t>(v);
    const char bytes[4] = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                           static_cast<char>((n >> 16) & 0xff), static_cast<char>((n >> 24) & 0xff)};
    out.append(bytes, 4);
}

void put_field(std::string& out, std::string_view s) {
    put_u32(out, s.size());
    out.append(s.data(), s.size());
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

// One buffer shared by the stateless helpers (user hash); the SDK is single-threaded.
std::string& scratch() {
    static std::string s;
    return s;
}

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

// Parses the first `len` bytes of the input buffer. Returns the number of events completed, or -1
// after an error (then confab_sse_error has the message; events completed before the error in
// the same chunk are still in the output). The output (confab_sse_out / _out_len) holds, per
// event, three fields each prefixed by its length as a little-endian u32: type, data, id.
EMSCRIPTEN_KEEPALIVE int confab_sse_feed(SdkParser* p, std::uint32_t len) {
    p->events.clear();
    p->out.clear();
    const std::size_t n = len <= p->input.size() ? len : p->input.size();
    const confab::Status s = p->parser.feed(std::string_view(p->input.data(), n), p->events);
    for (const auto& ev : p->events) {
        put_field(p->out, ev.type);
        put_field(p->out, ev.data);
        put_field(p->out, ev.id);
    }
    const int count = static_cast<int>(p->events.size());
    p->events.clear();
    if (s.ok()) return count;
    p->error = s.error().message;
    // Report the events that did complete: -1 - count distinguishes "error after count events".
    return -1 - count;
}

EMSCRIPTEN_KEEPALIVE const char* confab_sse_out(SdkParser* p) { return p->out.data(); }
EMSCRIPTEN_KEEPALIVE std::uint32_t confab_sse_out_len(SdkParser* p) {
    return static_cast<std::uint32_t>(p->out.size());
}
EMSCRIPTEN_KEEPALIVE const char* confab_sse_error(SdkParser* p) { return p->error.c_str(); }

// End of one connection's body: an incomplete event is dropped, last id and retry are kept.
// Also releases the buffers, which only a long stream needed.
EMSCRIPTEN_KEEPALIVE void confab_sse_finish(SdkParser* p) {
    p->parser.finish();
    std::string().swap(p->input);
    std::string().swap(p->out);
    std::vector<confab::sse::Event>().swap(p->events);
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

// Writes lowercase hex HMAC-SHA256(key = secret, message = user_id) to a 64-byte scratch buffer
// and returns it. Both inputs are read from one buffer JS filled: secret then user id.
EMSCRIPTEN_KEEPALIVE char* confab_scratch(std::uint32_t len) {
    auto& s = scratch();
    if (s.size() < len) s.resize(len);
    return s.data();
}
EMSCRIPTEN_KEEPALIVE const char* confab_user_hash(std::uint32_t secret_len, std::uint32_t user_len) {
    auto& s = scratch();
    const std::string hex = confab::user_hash(std::string_view(s.data(), secret_len),
                                              std::string_view(s.data() + secret_len, user_len));
    // Wipe the secret from the scratch buffer before the heap is reused.
    std::memset(s.data(), 0, s.size());
    s.assign(hex);
    return s.c_str();
}

// Bytes currently allocated on the wasm heap (emmalloc), for the SDK's leak test.
EMSCRIPTEN_KEEPALIVE double confab_heap_used() {
    return static_cast<double>(mallinfo().uordblks);
}

}  // extern "C"
