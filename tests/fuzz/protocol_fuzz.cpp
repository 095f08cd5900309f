// Fuzzes every protocol decoder on arbitrary JSON text: no crash, no exception, errors are values
// with a code and a message; a decoded value, encoded, sent as text and decoded again, encodes
// the same (the wire form is a fixed point).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "confab/protocol.hpp"
#include "fuzz_support.hpp"

namespace {

namespace p = confab::protocol;
using p::Json;

template <typename T>
void check_error(const confab::Result<T>& r) {
    if (r.ok()) return;
    FUZZ_CHECK(!r.error().code.empty(), "a decode error has a code");
    FUZZ_CHECK(!r.error().message.empty(), "a decode error has a message");
}

// decode(j) -> encode -> text -> parse -> decode -> encode: the same text as the first encode.
template <typename Decode, typename Encode>
void round_trip(const Json& j, Decode decode, Encode encode) {
    auto first = decode(j);
    check_error(first);
    if (!first.ok()) return;
    const std::string text = p::dump(encode(*first));
    auto parsed = p::parse_json(text);
    FUZZ_CHECK(parsed.ok(), "an encoded value is valid JSON");
    auto second = decode(*parsed);
    FUZZ_CHECK(second.ok(), "an encoded value decodes again");
    FUZZ_CHECK(p::dump(encode(*second)) == text, "decode(encode(x)) encodes like x");
}

template <typename T>
auto enc() {
    return [](const T& v) { return p::encode(v); };
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    p::ParseLimits limits;
    limits.max_bytes = 1 << 16;
    limits.max_depth = 32;
    auto parsed = p::parse_json(text, limits);
    check_error(parsed);
    // Strings are also tried as enum names, whatever the JSON parse said.
    check_error(p::parse_execution_status(text));
    check_error(p::parse_app_type(text));
    check_error(p::parse_input_type(text));
    check_error(p::parse_role(text));
    if (!parsed.ok()) return 0;
    const Json& j = *parsed;
    // dump never throws, whatever the value holds.
    (void)p::dump(j);

    round_trip(j, p::decode_api_error, enc<p::ApiError>());
    round_trip(j, p::decode_identity_request, enc<p::IdentityRequest>());
    round_trip(j, p::decode_identity_response, enc<p::IdentityResponse>());
    round_trip(j, p::decode_app_info, enc<p::AppInfo>());
    round_trip(j, p::decode_execute_request, enc<p::ExecuteRequest>());
    round_trip(j, p::decode_execution, enc<p::Execution>());
    round_trip(j, p::decode_execution_created, enc<p::ExecutionCreated>());
    round_trip(j, p::decode_chat_request, enc<p::ChatRequest>());
    round_trip(j, [](const Json& v) { return p::decode_message(v); }, enc<p::Message>());
    round_trip(j, p::decode_session, [](const p::Session& s) { return p::encode(s, true); });
    round_trip(j, p::decode_delta, enc<p::Delta>());
    round_trip(j, p::decode_execution_completed, enc<p::ExecutionCompleted>());
    round_trip(j, p::decode_agent_response, enc<p::AgentResponse>());
    round_trip(j, p::decode_agent_action, enc<p::AgentAction>());
    round_trip(j, p::decode_agent_action_error, enc<p::AgentActionError>());
    round_trip(j, p::decode_chat_completed, enc<p::ChatCompleted>());

    // An input spec has no encoder of its own: it travels inside an app's info.
    auto spec = p::decode_input_spec(j, "inputs[0]");
    check_error(spec);
    if (spec.ok()) {
        // Aggregate-initialised: assigning "1" to a member trips g++ 12's -Wrestrict false positive.
        const p::AppInfo app{"app", "app", p::AppType::template_, "1", {"1"}, {*spec}, false, {"Hi?"}, {"*.example.com"}, "/a.png"};
        round_trip(p::encode(app), p::decode_app_info, enc<p::AppInfo>());
        // The value under "inputs" (or the whole value) checked against that spec.
        const Json& inputs = j.is_object() && j.contains("inputs") ? j["inputs"] : j;
        check_error(p::validate_inputs(app.inputs, inputs, false));
        check_error(p::validate_inputs(app.inputs, inputs, true));
    }
    return 0;
}
