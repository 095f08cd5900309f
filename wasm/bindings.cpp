// Embind bindings of confab_core: coarse plain-data functions for the browser SDK, no logic of their own.
//
// Everything crosses the boundary as copies (strings, numbers, plain JS objects built by
// value_object) and never as views into wasm memory, so JS may keep results as long as it likes.
// The one class, SseParser, owns C++ memory: JS must call .delete() on it (the web facade adds a
// FinalizationRegistry as a backstop). Errors are values ({ok, code, message}) rather than thrown
// JS exceptions: a JS exception unwinding through wasm frames would skip C++ destructors and leak.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <emscripten/bind.h>
#include <emscripten/emmalloc.h>
#include <emscripten/val.h>

#include "confab/identity.hpp"
#include "confab/protocol.hpp"
#include "confab/result.hpp"
#include "confab/sse.hpp"

namespace {

using emscripten::val;
namespace protocol = confab::protocol;
namespace sse = confab::sse;

// {ok, code, message}
struct StatusResult {
    bool ok = true;
    std::string code;
    std::string message;
};

// {ok, value, code, message}: `value` is a string (a token, or JSON text re-encoded by the core).
struct ValueResult {
    bool ok = true;
    std::string value;
    std::string code;
    std::string message;
};

// {ok, code, message, events}: `events` is a plain JS array of {type, data, id}. Events completed
// before an error in the same chunk are still delivered.
struct FeedResult {
    bool ok = true;
    std::string code;
    std::string message;
    val events = val::array();
};

StatusResult status_result(const confab::Status& s) {
    if (s.ok()) return {};
    return {false, s.error().code, s.error().message};
}

ValueResult value_error(const confab::Error& e) { return {false, {}, e.code, e.message}; }

ValueResult value_error(std::string code, std::string message) {
    return {false, {}, std::move(code), std::move(message)};
}

// JS numbers are doubles; only integers exactly representable in both a double and an int64 are
// accepted, so a fractional, NaN or out-of-range time is an error rather than a silent rounding.
bool to_int64(double x, std::int64_t& out) {
    constexpr double max_exact = 9007199254740992.0;  // 2^53
    if (!std::isfinite(x) || std::trunc(x) != x || x > max_exact || x < -max_exact) return false;
    out = static_cast<std::int64_t>(x);
    return true;
}

// ---- identity ----

// {ok, value}: a signer, so it refuses the user ids every signer refuses.
ValueResult user_hash(const std::string& secret, const std::string& user_id) {
    auto signed_id = confab::sign_user_hash(secret, user_id);
    if (!signed_id) return value_error(signed_id.error());
    return {true, std::move(signed_id.value()), {}, {}};
}

std::string sha256_hex(const std::string& data) { return confab::to_hex(confab::sha256(data)); }

std::string hmac_sha256_hex(const std::string& key, const std::string& message) {
    return confab::to_hex(confab::hmac_sha256(key, message));
}

ValueResult issue_token(const std::string& secret, const std::string& workspace_id,
                        const std::string& user_id, double expires_at) {
    std::int64_t exp = 0;
    if (!to_int64(expires_at, exp)) {
        return value_error("invalid_argument", "expiresAt must be an integer number of Unix seconds");
    }
    auto token = confab::sign_identity_token(secret, workspace_id, user_id, exp);
    if (!token) return value_error(token.error());
    return {true, std::move(token.value()), {}, {}};
}

// `secrets` is one string or an array of strings (several while a key is rotated).
StatusResult verify_identity(const std::string& workspace_id, const val& secrets,
                             const std::string& user_id, const std::string& presented,
                             double now_seconds) {
    std::vector<std::string> list;
    if (secrets.isString()) {
        list.push_back(secrets.as<std::string>());
    } else if (secrets.isArray()) {
        const auto n = secrets["length"].as<unsigned>();
        list.reserve(n);
        for (unsigned i = 0; i < n; ++i) {
            val item = secrets[i];
            if (!item.isString()) {
                return {false, "invalid_argument",
                        "secrets[" + std::to_string(i) + "] must be a string"};
            }
            list.push_back(item.as<std::string>());
        }
    } else {
        return {false, "invalid_argument", "secrets must be a string or an array of strings"};
    }
    std::int64_t now = 0;
    if (!to_int64(now_seconds, now)) {
        return {false, "invalid_argument", "nowSeconds must be an integer number of Unix seconds"};
    }
    const confab::IdentityVerifier verifier(workspace_id, std::move(list));
    return status_result(verifier.verify(user_id, presented, now));
}

// ---- SSE ----

// Owns a core parser and the vector its events are collected in, reused across feeds.
class SseParser {
public:
    SseParser() = default;  // the core's default limit (16 MiB per event)
    explicit SseParser(double max_event_bytes) : parser_(limits(max_event_bytes)) {}

    // `chunk` is a string (sent as UTF-8) or a Uint8Array/ArrayBuffer (sent as raw bytes).
    FeedResult feed(const std::string& chunk) {
        out_.clear();
        const confab::Status s = parser_.feed(chunk, out_);
        FeedResult r;
        if (!s.ok()) {
            r.ok = false;
            r.code = s.error().code;
            r.message = s.error().message;
        }
        for (std::size_t i = 0; i < out_.size(); ++i) r.events.set(i, out_[i]);
        if (out_.capacity() > keep_capacity) std::vector<sse::Event>().swap(out_);
        return r;
    }

    void finish() { parser_.finish(); }
    void reset() { parser_.reset(); }
    std::string last_event_id() const { return parser_.last_event_id(); }
    double retry_ms() const {
        const auto r = parser_.retry_ms();
        return r ? static_cast<double>(*r) : -1.0;
    }
    double comments_seen() const { return static_cast<double>(parser_.comments_seen()); }

private:
    // A burst of events must not pin its buffer for the parser's whole life.
    static constexpr std::size_t keep_capacity = 64;

    static sse::ParserLimits limits(double max_event_bytes) {
        sse::ParserLimits l;
        // A constructor cannot return an error value, so anything but 1 B .. 1 GiB (0, negative,
        // NaN) means the core's default limit; the JS facade is where to reject such values.
        if (std::isfinite(max_event_bytes) && max_event_bytes >= 1 && max_event_bytes <= 1u << 30) {
            l.max_event_bytes = static_cast<std::size_t>(max_event_bytes);
        }
        return l;
    }

    sse::Parser parser_;
    std::vector<sse::Event> out_;
};

std::string sse_encode(const std::string& type, const std::string& data, const std::string& id) {
    return sse::encode(sse::OutEvent{type, data, id, std::nullopt});
}

// ---- protocol ----

// Decodes with the core's strict decoder and re-encodes with its encoder: the value JS receives is
// normalised (defaults filled in, unknown fields dropped) exactly as the server would see it.
template <typename Decode>
ValueResult round_trip(const protocol::Json& j, Decode decode_fn) {
    auto r = decode_fn(j);
    if (!r.ok()) return value_error(r.error());
    return {true, protocol::dump(protocol::encode(*r)), {}, {}};
}

ValueResult decode(const std::string& kind, const std::string& json_text) {
    auto parsed = protocol::parse_json(json_text);
    if (!parsed.ok()) return value_error(parsed.error());
    const protocol::Json& j = *parsed;
    const std::string_view k = kind;
    if (k == "execution") return round_trip(j, protocol::decode_execution);
    if (k == "executionCreated") return round_trip(j, protocol::decode_execution_created);
    if (k == "appInfo") return round_trip(j, protocol::decode_app_info);
    if (k == "session") return round_trip(j, protocol::decode_session);
    if (k == "identityRequest") return round_trip(j, protocol::decode_identity_request);
    if (k == "identityResponse") return round_trip(j, protocol::decode_identity_response);
    if (k == "apiError") return round_trip(j, protocol::decode_api_error);
    if (k == "executeRequest") return round_trip(j, protocol::decode_execute_request);
    if (k == "chatRequest") return round_trip(j, protocol::decode_chat_request);
    if (k == "delta") return round_trip(j, protocol::decode_delta);
    if (k == "executionCompleted") return round_trip(j, protocol::decode_execution_completed);
    if (k == "agentResponse") return round_trip(j, protocol::decode_agent_response);
    if (k == "agentAction") return round_trip(j, protocol::decode_agent_action);
    if (k == "agentActionError") return round_trip(j, protocol::decode_agent_action_error);
    if (k == "chatCompleted") return round_trip(j, protocol::decode_chat_completed);
    if (k == "message") {
        return round_trip(j, [](const protocol::Json& v) { return protocol::decode_message(v); });
    }
    return value_error("invalid_argument",
                       "unknown kind '" + kind +
                           "'; expected one of execution, executionCreated, appInfo, session, "
                           "identityRequest, identityResponse, apiError, executeRequest, "
                           "chatRequest, delta, executionCompleted, agentResponse, agentAction, "
                           "agentActionError, chatCompleted, message");
}

// `specs_json` is a JSON array of input specs ({name, type, required?, description?}).
StatusResult validate_inputs_opt(const std::string& specs_json, const std::string& inputs_json,
                                 bool allow_unknown) {
    auto specs_doc = protocol::parse_json(specs_json);
    if (!specs_doc.ok()) return {false, specs_doc.error().code, "specs: " + specs_doc.error().message};
    if (!specs_doc->is_array()) return {false, "invalid_request", "specs must be an array"};
    std::vector<protocol::InputSpec> specs;
    specs.reserve(specs_doc->size());
    for (std::size_t i = 0; i < specs_doc->size(); ++i) {
        auto spec = protocol::decode_input_spec((*specs_doc)[i], "specs[" + std::to_string(i) + "]");
        if (!spec.ok()) return {false, spec.error().code, spec.error().message};
        specs.push_back(std::move(*spec));
    }
    auto inputs = protocol::parse_json(inputs_json);
    if (!inputs.ok()) return {false, inputs.error().code, "inputs: " + inputs.error().message};
    return status_result(protocol::validate_inputs(specs, *inputs, allow_unknown));
}

StatusResult validate_inputs(const std::string& specs_json, const std::string& inputs_json) {
    return validate_inputs_opt(specs_json, inputs_json, false);
}

// ---- diagnostics ----

// Bytes of the malloc heap in use (allocations plus their headers). Tests compare it before and
// after a workload to prove nothing leaks; HEAPU8.length cannot tell, as the heap never shrinks.
double heap_used_bytes() {
    return static_cast<double>(emmalloc_dynamic_heap_size() - emmalloc_free_dynamic_memory());
}

}  // namespace

EMSCRIPTEN_BINDINGS(confab_core) {
    using namespace emscripten;

    value_object<StatusResult>("StatusResult")
        .field("ok", &StatusResult::ok)
        .field("code", &StatusResult::code)
        .field("message", &StatusResult::message);
    value_object<ValueResult>("ValueResult")
        .field("ok", &ValueResult::ok)
        .field("value", &ValueResult::value)
        .field("code", &ValueResult::code)
        .field("message", &ValueResult::message);
    value_object<FeedResult>("FeedResult")
        .field("ok", &FeedResult::ok)
        .field("code", &FeedResult::code)
        .field("message", &FeedResult::message)
        .field("events", &FeedResult::events);
    value_object<sse::Event>("SseEvent")
        .field("type", &sse::Event::type)
        .field("data", &sse::Event::data)
        .field("id", &sse::Event::id);

    function("userHash", &user_hash);
    function("sha256Hex", &sha256_hex);
    function("hmacSha256Hex", &hmac_sha256_hex);
    function("issueToken", &issue_token);
    function("verifyIdentity", &verify_identity);

    class_<SseParser>("SseParser")
        .constructor<>()
        .constructor<double>()
        .function("feed", &SseParser::feed)
        .function("finish", &SseParser::finish)
        .function("reset", &SseParser::reset)
        .function("lastEventId", &SseParser::last_event_id)
        .function("retryMs", &SseParser::retry_ms)
        .function("commentsSeen", &SseParser::comments_seen);
    function("sseEncode", &sse_encode);

    function("decode", &decode);
    // Overloaded by arity: validateInputs(specs, inputs[, allowUnknown]).
    function("validateInputs", &validate_inputs);
    function("validateInputs", &validate_inputs_opt);

    function("heapUsedBytes", &heap_used_bytes);
}
