// Transcript: a chat session's messages and the assembly of a streamed reply from its events, each applied exactly once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "confab/result.hpp"

namespace confab::transcript {

// What apply() did with an event.
//   applied:   it was the next one (seq == last_seq() + 1) and changed the state.
//   duplicate: seq <= last_seq(): already applied (a resumed stream replays from an earlier point,
//              or a server replays from the start); ignored.
//   gap:       seq > last_seq() + 1: events are missing; nothing changed. The caller drops the
//              connection and resumes with Last-Event-ID = last_seq().
enum class Apply : std::uint8_t { applied, duplicate, gap };

// streaming until the "completed" event, then its status.
enum class ReplyStatus : std::uint8_t { streaming, success, error, cancelled };
const char* to_string(ReplyStatus s) noexcept;  // "streaming", "success", ...

// One stream event, decoded by the caller (the browser SDK uses JSON.parse; this module has no
// JSON so that it stays small in the SDK's wasm). The optional fields are the payload's string
// fields by wire name: nullopt when absent or not a string. Which ones are read depends on the
// type (DESIGN.md "Wire protocol"):
//   "delta"              {content}                      text of an execution
//   "agent-response"     {token}                        text of a chat reply
//   "agent-action"       {tool, tool_input}             tool_input as JSON text, any JSON value
//   "agent-action-error" {error}
//   "error"              {error, code?}                 precedes "completed" when a run fails
//   "completed"          {status?, result?, output?, error?, code?, sessionId?}   terminal
// Other types are applied (their seq is consumed) and otherwise ignored: newer servers may add some.
struct Event {
    std::uint64_t seq = 0;  // the SSE `id`: 1-based and dense per run
    std::string_view type;
    std::optional<std::string_view> content;
    std::optional<std::string_view> token;
    std::optional<std::string_view> tool;
    std::optional<std::string_view> tool_input;
    std::optional<std::string_view> error;
    std::optional<std::string_view> code;
    std::optional<std::string_view> status;
    std::optional<std::string_view> result;      // chat "completed"
    std::optional<std::string_view> output;      // execution "completed", when the output is a string
    std::optional<std::string_view> session_id;  // wire name "sessionId"
};

enum class ActionKind : std::uint8_t { call, error };

// A tool call ("agent-action") or a tool failure ("agent-action-error") of a chat reply, in order.
struct Action {
    ActionKind kind = ActionKind::call;
    std::uint64_t seq = 0;
    std::size_t text_offset = 0;  // bytes of text() before it, to interleave actions with the text
    std::string tool;             // call
    std::string tool_input;       // call: JSON text ("" when the event had none)
    std::string error;            // error
};

// One streamed run: an execution's output or a chat turn's reply. Events are applied strictly in
// seq order, each once, so a stream resumed any number of times (overlapping replays included)
// assembles exactly what an uninterrupted one does. Appending is amortised O(1) per byte.
class Reply {
public:
    // Errors (code "invalid_event", nothing changes): seq 0; an event after "completed"; a payload
    // missing the field its type needs; a "completed" status other than success, error, cancelled.
    Result<Apply> apply(const Event& ev);
    // Picks up a reply whose events 1..seq were applied elsewhere (e.g. before a page reload) and
    // streamed `text`: the next event to apply is seq + 1, and the text goes on from `text`. Only
    // on a fresh reply (nothing applied yet), else Error "invalid_event" and nothing changes.
    // Tool calls of the earlier events are not restored.
    Status continue_after(std::uint64_t seq, std::string text);

    // What a reconnection sends as Last-Event-ID (0: nothing applied yet, start from the beginning).
    std::uint64_t last_seq() const noexcept { return last_seq_; }
    ReplyStatus status() const noexcept { return status_; }
    bool done() const noexcept { return status_ != ReplyStatus::streaming; }

    // The streamed text so far: "delta" contents or "agent-response" tokens, concatenated as bytes
    // (a UTF-8 sequence split across events is whole again here).
    const std::string& text() const noexcept { return text_; }
    // The final text: the "completed" event's result (chat) or string output (execution) when it
    // has one, else text(). While streaming, text().
    const std::string& result() const noexcept { return final_ ? *final_ : text_; }
    const std::vector<Action>& actions() const noexcept { return actions_; }
    // From the "error" event, overridden by the "completed" event's own error/code when present.
    const std::optional<std::string>& error() const noexcept { return error_; }
    const std::optional<std::string>& error_code() const noexcept { return error_code_; }
    // The "completed" event's sessionId ("" for executions, or before completion).
    const std::string& session_id() const noexcept { return session_id_; }

private:
    Status complete(const Event& ev);

    std::uint64_t last_seq_ = 0;
    ReplyStatus status_ = ReplyStatus::streaming;
    std::string text_;
    std::optional<std::string> final_;
    std::vector<Action> actions_;
    std::optional<std::string> error_;
    std::optional<std::string> error_code_;
    std::string session_id_;
};

enum class Role : std::uint8_t { user, assistant, system };
const char* to_string(Role r) noexcept;  // "user", "assistant", "system"

struct Message {
    Role role = Role::user;
    std::string content;
    bool operator==(const Message&) const = default;
};

// A chat session as the client sees it: the history, and the reply of the current turn. It keeps
// the history the way the server stores it (GET /v1/sessions/{id}), so a widget can render the
// conversation from it: a turn's user message, then, once the reply completes with status success
// or cancelled and non-empty text, the assistant message with the reply's result(). A failed
// reply leaves no assistant message (reply() still has its partial text and error).
class Transcript {
public:
    // Appends a message as is, e.g. history loaded from the server.
    void add_message(Role role, std::string content);
    // Starts a turn: appends the user's message and a fresh reply (its seq starts again: a new
    // run). An unfinished reply is dropped: the caller stopped reading it; the server keeps it.
    void begin_turn(std::string user_message);
    // Applies an event to the current reply (see Reply::apply). The event that completes it also
    // appends the assistant message and takes the reply's sessionId when it has one.
    // A new Transcript has a reply ready before any begin_turn (e.g. resuming a stream after a
    // page reload, with the user's message already in the loaded history).
    Result<Apply> apply(const Event& ev);
    // The current reply picks up after events 1..seq applied elsewhere (see Reply::continue_after).
    Status continue_reply(std::uint64_t seq, std::string text) { return reply_.continue_after(seq, std::move(text)); }

    const Reply& reply() const noexcept { return reply_; }
    const std::vector<Message>& messages() const noexcept { return messages_; }
    const std::string& session_id() const noexcept { return session_id_; }
    // Known before the reply completes (the X-Confab-Session-Id response header).
    void set_session_id(std::string id) { session_id_ = std::move(id); }

private:
    Reply reply_;
    std::vector<Message> messages_;
    std::string session_id_;
};

}  // namespace confab::transcript
