// Protocol: the v1 wire types (DESIGN.md "Wire protocol") with strict JSON decode and encode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "confab/result.hpp"

namespace confab::protocol {

using Json = nlohmann::json;

// Decoding never throws (the wasm build has exceptions off). Every decode error has code
// "invalid_request" (or the more specific ones below) and a message that names the field with a
// path such as `inputs.topic` or `messages[2].role`.
// Forward compatible: unknown extra fields are ignored, so older readers accept newer writers.
// An optional field that is null counts as absent (JS clients often send `sessionId: null`).
// Integers follow JSON Schema: 60 and 60.0 are integers, 60.5 and out-of-range values are not.
struct ParseLimits {
    std::size_t max_bytes = 1 << 20;  // larger text: code "too_large"
    int max_depth = 64;               // deeper nesting: code "too_deep" (checked before parsing)
};

// Parses JSON text. Errors: "invalid_json" (with the byte offset), "too_large", "too_deep".
// Integers that do not fit in 64 bits parse as doubles; decoders that want an integer reject them.
Result<Json> parse_json(std::string_view text, const ParseLimits& limits = {});

// Compact JSON text. Never throws or aborts: invalid UTF-8 in strings becomes U+FFFD (plain
// `Json::dump()` throws on it, which aborts the wasm build). Use it for every body and event.
std::string dump(const Json& j);

// ---- enums ----
enum class ExecutionStatus { queued, running, success, error, cancelled };
const char* to_string(ExecutionStatus s) noexcept;
Result<ExecutionStatus> parse_execution_status(std::string_view s);  // unknown: "invalid_request"
bool is_terminal(ExecutionStatus s) noexcept;  // success, error, cancelled

enum class AppType { template_, llm, http, agent, workflow };
const char* to_string(AppType t) noexcept;  // "template", "llm", ...
Result<AppType> parse_app_type(std::string_view s);

enum class InputType { string, number, integer, boolean, object, array, any };
const char* to_string(InputType t) noexcept;
Result<InputType> parse_input_type(std::string_view s);

// ---- errors on the wire: {"error": "<human message>", "code": "<machine_code>"} ----
struct ApiError {
    std::string error;
    std::string code;
};
Json encode(const ApiError& e);
Result<ApiError> decode_api_error(const Json& j);

// ---- identity ----
struct IdentityRequest {  // POST /v1/identity
    std::string user_id;                     // "userId": non-empty, <= 256 bytes, no control chars
    std::optional<std::int64_t> ttl_seconds;  // "ttlSeconds": 1 .. 31536000
};
Result<IdentityRequest> decode_identity_request(const Json& j);
Json encode(const IdentityRequest& r);

struct IdentityResponse {
    std::string workspace_id;
    std::string user_id;
    std::string hashed_user_id;
    std::optional<std::int64_t> expires_at;  // Unix seconds; present for tokens
};
Json encode(const IdentityResponse& r);
Result<IdentityResponse> decode_identity_response(const Json& j);

// ---- apps ----
struct InputSpec {
    std::string name;
    InputType type = InputType::string;
    bool required = true;
    std::string description;
};
struct AppInfo {  // GET /v1/apps/{appId}
    std::string id;
    std::string name;
    AppType type = AppType::template_;
    std::string version;   // latest version label
    std::vector<std::string> versions;
    std::vector<InputSpec> inputs;
    bool is_public = false;  // "public"
    // For the chat widget (issue 15): suggested first prompts, the hosts whose images a reply may
    // show (exact "img.example.com" or "*.example.com"), the bot's avatar. Empty: none.
    std::vector<std::string> starters;
    std::vector<std::string> image_hosts;  // "imageHosts"
    std::string avatar_url;                // "avatarUrl", omitted when empty
};
Json encode(const AppInfo& a);
Result<AppInfo> decode_app_info(const Json& j);
Result<InputSpec> decode_input_spec(const Json& j, std::string_view path);

// Checks `inputs` (must be an object) against the specs: missing required input, wrong type and
// (when `allow_unknown` is false) unknown names are errors that name the input, e.g.
// `inputs.topic is required`.
Status validate_inputs(const std::vector<InputSpec>& specs, const Json& inputs,
                       bool allow_unknown = false);

// ---- executions ----
struct ExecuteRequest {  // POST /v1/apps/{appId}/executions
    std::optional<std::string> version;
    Json inputs = Json::object();  // object; absent means {}
};
Result<ExecuteRequest> decode_execute_request(const Json& j);
Json encode(const ExecuteRequest& r);

struct Execution {  // GET /v1/executions/{id}
    std::string id;
    std::string app_id;
    std::string version;
    ExecutionStatus status = ExecutionStatus::queued;
    Json inputs = Json::object();
    Json output;                       // null until there is output; text apps give a string
    std::optional<std::string> error;  // set when status == error
    std::optional<std::string> session_id;
    std::int64_t created_at = 0;  // Unix milliseconds
    std::int64_t updated_at = 0;
};
Json encode(const Execution& e);
Result<Execution> decode_execution(const Json& j);

struct ExecutionCreated {  // 202 {executionId, status}
    std::string execution_id;
    ExecutionStatus status = ExecutionStatus::queued;
};
Json encode(const ExecutionCreated& e);
Result<ExecutionCreated> decode_execution_created(const Json& j);

// ---- chat ----
struct ChatRequest {  // POST /v1/apps/{appId}/chat
    std::string message;  // non-empty, except with `regenerate` (then ignored, may be absent)
    std::optional<std::string> session_id;
    Json inputs = Json::object();
    bool regenerate = false;  // re-run the session's last user message, replacing its reply
    bool edit_last = false;   // "editLast": replace the session's last user message and its reply
};
Result<ChatRequest> decode_chat_request(const Json& j);
Json encode(const ChatRequest& r);

enum class Role { user, assistant, system };
const char* to_string(Role r) noexcept;
Result<Role> parse_role(std::string_view s);

struct Message {
    Role role = Role::user;
    std::string content;
    std::int64_t created_at = 0;
    // Session history only (never sent to a model): the turn a message belongs to, the execution
    // that produced (assistant) or answers (user) it, and on assistant messages how it ended:
    // "success" | "error" | "cancelled" | "interrupted" (the server restarted mid-reply), with
    // `error_code`/`error_message` (a short text a visitor may see) when it did not succeed.
    std::optional<std::string> turn_id{};       // "turnId"
    std::optional<std::string> execution_id{};  // "executionId"
    std::optional<std::string> status{};
    std::optional<std::string> error_code{};    // "error": {"code", "message"}
    std::optional<std::string> error_message{};
};
struct Session {  // GET /v1/sessions/{id}; list entries omit messages
    std::string id;
    std::string app_id;
    std::string title;  // first user message, truncated
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
    std::int64_t message_count = 0;
    std::vector<Message> messages;
};
Json encode(const Message& m);
Json encode(const Session& s, bool with_messages = true);
Result<Message> decode_message(const Json& j, std::string_view path = "message");
Result<Session> decode_session(const Json& j);

// ---- feedback (POST /v1/executions/{id}/feedback; GET /v1/feedback for the site owner) ----
struct FeedbackRequest {
    std::string rating;   // "up" | "down"
    std::string comment;  // at most 2000 characters (code points), "" when none
};
// Errors "invalid_request" naming the field; unknown fields are refused.
Result<FeedbackRequest> decode_feedback_request(const Json& j);
struct Feedback {
    std::string execution_id;
    std::string app_id, user_id;  // the owner's list only (with_owner)
    std::string rating, comment;
    std::int64_t created_at = 0, updated_at = 0;
};
// {executionId, rating, comment, createdAt, updatedAt}, plus appId and userId with_owner.
Json encode(const Feedback& f, bool with_owner);

// ---- stream events (the `data:` of each SSE event; `event:` is the type, `id:` the seq) ----
// Executions:  "delta" {content}, "completed" {status, output, error?}; workflow apps also
//              "agent-action" {tool, tool_input} as each step starts
// Chat turns:  "agent-response" {token}, "agent-action" {tool, tool_input},
//              "agent-action-error" {error}, "completed" {result, sessionId, status?}
// Either:      "error" {error, code} precedes the terminal "completed" when a run fails.

// The text an event adds to the reply ("delta" content, "agent-response" token); nullptr for
// other events or a payload without it. The rule transcript.hpp's Reply applies, on JSON.
const std::string* reply_text_of(std::string_view type, const Json& data) noexcept;

struct Delta {
    std::string content;
};
struct ExecutionCompleted {
    ExecutionStatus status = ExecutionStatus::success;
    Json output;
    std::optional<std::string> error;
};
struct AgentResponse {
    std::string token;
};
struct AgentAction {
    std::string tool;
    Json tool_input;
};
struct AgentActionError {
    std::string error;
};
struct ChatCompleted {
    std::string result;
    std::string session_id;
    ExecutionStatus status = ExecutionStatus::success;
};
Json encode(const Delta& e);
Json encode(const ExecutionCompleted& e);
Json encode(const AgentResponse& e);
Json encode(const AgentAction& e);
Json encode(const AgentActionError& e);
Json encode(const ChatCompleted& e);
Result<Delta> decode_delta(const Json& j);
Result<ExecutionCompleted> decode_execution_completed(const Json& j);
Result<AgentResponse> decode_agent_response(const Json& j);
Result<AgentAction> decode_agent_action(const Json& j);
Result<AgentActionError> decode_agent_action_error(const Json& j);
Result<ChatCompleted> decode_chat_completed(const Json& j);

// A stored/streamed event: seq is 1-based and dense per execution.
struct StreamEvent {
    std::uint64_t seq = 0;
    std::string type;
    Json data;
};

}  // namespace confab::protocol
