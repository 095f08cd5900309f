// App runners: template, llm, http and agent (echo / llm) runs, streamed through an emit callback.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config.hpp"
#include "confab/protocol.hpp"
#include "confab/result.hpp"

namespace confab::server {

// Run one app version. Output is produced incrementally through `emit`, which the caller
// (the execution manager) implements: it assigns seq, stores the event (awaiting the db), then
// publishes it to live SSE subscribers. Awaiting emit is the backpressure.
struct RunContext {
    const ServerConfig* server = nullptr;
    const WorkspaceConfig* workspace = nullptr;
    const AppConfig* app = nullptr;
    const AppVersion* version = nullptr;
    protocol::Json inputs = protocol::Json::object();  // validated already
    std::string message;                      // chat: the user's new message
    std::vector<protocol::Message> history;   // chat: prior turns (oldest first), excluding `message`
    bool chat = false;                        // chat turn -> "agent-response"{token}; else "delta"{content}
    // workflow apps: the stored steps of a workflow of this workspace (a JSON array), or an Error
    // ("workflow_not_found"); set by the hub, which owns the store
    std::function<boost::asio::awaitable<Result<protocol::Json>>(std::string workflow_id)> load_workflow;
    std::function<boost::asio::awaitable<void>(std::string type, protocol::Json data)> emit;
    // Optional, set by the hub: a text token ("agent-response"{token} in chat, else
    // "delta"{content}) queued at once, without a JSON object or a coroutine. It throws what
    // emit throws (cancelled, storage failed). `queued_wait`: the run's queue is full, and the
    // runner awaits emit_wait() before its next event (the backpressure emit applies itself).
    enum class TextQueued { queued, queued_wait };
    std::function<TextQueued(std::string_view text)> emit_text_now;
    std::function<boost::asio::awaitable<void>()> emit_wait;
    // Set by the hub on the run it starts (not on a workflow's steps): the hub keeps the text the
    // run streams (the run's log), so a runner whose output is exactly that text keeps no copy of
    // its own; it returns null and sets `output_is_streamed_text`, and the hub's copy becomes the
    // output (a long reply held once per run, not twice).
    bool streamed_text_kept = false;
    bool output_is_streamed_text = false;

    // What the run was asked (inputs, message, history), dropped by a runner once it has read
    // what it needs (built its upstream request, rendered its text, counted its tokens): a
    // stream then holds what it streams, not a chat's whole conversation for the reply's length.
    void release_request() {
        inputs = protocol::Json();
        std::string().swap(message);
        std::vector<protocol::Message>().swap(history);
    }
};

// Returns the final output (string for text apps; the JSON body (or text) for http apps) or an
// Error (code "upstream_error" | "upstream_timeout" | "template_error" | "not_configured" |
// "unsupported" (a workflow with a human_approval step) | "agent_not_found" | "workflow_error" |
// "workflow_not_found" | "cancelled").
// Cancellation: the caller co_spawns the run bound to an asio cancellation slot
// (asio::bind_cancellation_slot) and emits the terminal events itself; runners stop within one
// timer tick or socket read (timers and socket reads are cancelled -> Error{"cancelled", ...}).
// What each type does:
//   template  render version->template_text, stream chunk_chars characters per event, delay_ms apart
//   llm       POST {model, stream:true, messages:[system?, history..., user]} to
//             <llm.base_url>/v1/chat/completions; user = rendered `prompt`, or the inputs as JSON
//             when `prompt` is empty (chat: the message); tokens = choices[0].delta.content
//   agent     model "echo": echo_reply(message, turn) streamed like template; model "llm": as llm
//             with the history (chat mode); model "clock" (benchmarks): one clock_stamp token per
//             character of the message, delay_ms apart. Outside chat, the message is
//             inputs["message"] when it is a string, else the inputs as JSON.
//   workflow  the workflow's agent steps in stepOrder (see run_workflow in runners.cpp): an
//             "agent-action" per step, the last step's output streamed and returned
//   http      POST the inputs JSON to version->url; the output is the response parsed as JSON if it
//             is JSON, else the text; emitted as one "delta" (content = the text / JSON dump)
boost::asio::awaitable<Result<protocol::Json>> run_app(RunContext& ctx);

// run_app's parts, for a caller that awaits the runner in its own coroutine frame (the hub: a
// run's frames are most of what an open stream costs). check_run_context: the error run_app
// returns for an incomplete context. dispatch_runner: the app's runner, which throws what run_app
// turns into an Error: run_failure(the exception) ("cancelled" for operation_aborted, else
// "internal_error"). run_app also reads the caller's cancellation state before and after.
std::optional<Error> check_run_context(const RunContext& ctx);
boost::asio::awaitable<Result<protocol::Json>> dispatch_runner(RunContext& ctx);
Error run_failure(std::exception_ptr e);

// Workflows (a workflow app here, a server-to-server run in workflows.cpp), one meaning for both:
// the steps in stepOrder (stable; not an array -> none), and the message a step's agent gets: its
// action, a blank line, then the previous step's output (the run's input for the first step);
// either alone when the other is empty.
protocol::Json sorted_workflow_steps(const protocol::Json& steps);
std::string workflow_step_message(const std::string& action, const std::string& carry);

// Replaces {{name}} (spaces inside the braces allowed) with the input: strings as they are, other
// JSON dumped. An unknown name or an unclosed "{{" -> Error "template_error" naming it.
Result<std::string> render_template(std::string_view text, const protocol::Json& inputs);

// The placeholder names used by a template, in order of first use (config validation uses it).
// An unclosed "{{" or an empty name -> Error "template_error".
Result<std::vector<std::string>> template_placeholders(std::string_view text);

// Splits `text` into pieces of at most `chunk_chars` characters (code points), never inside a
// UTF-8 sequence. chunk_chars < 1 is treated as 1.
std::vector<std::string> split_chunks(std::string_view text, int chunk_chars);
// Where the chunk of `chunk_chars` code points (at least 1) that starts at byte `start` ends.
std::size_t chunk_end(std::string_view text, std::size_t start, int chunk_chars);

// The deterministic echo model: a Markdown reply (a heading, a bullet list, a fenced code block)
// that quotes the user's message verbatim; streamed chunk_chars characters per event (never
// splitting a UTF-8 character) with delay_ms between chunks. The fence is one backtick longer than
// the longest backtick run in the message (at least 3), so a message containing ``` stays inside.
// `turn_number` is 1 for the first user message of a session.
std::string echo_reply(std::string_view message, std::size_t turn_number);

// The clock model's token: microseconds of CLOCK_MONOTONIC (std::chrono::steady_clock) mod 2^24
// (16.7 s) as 4 characters of the base64url alphabet, most significant first. The same clock in
// every process of a machine, so a local client measures emit-to-arrival as (its now - stamp) mod
// 2^24 us; bench/server/sse_load, node-sse-baseline.mjs and sse_floor.cpp use this encoding.
std::string clock_stamp(std::uint64_t monotonic_us);

}  // namespace confab::server
