// Tests for protocol: wire JSON field names, strict decoding with field-naming errors, parse_json
// limits on hostile text, and input validation. Runs natively and as wasm (exceptions off).
#include "confab/protocol.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace confab::protocol {
namespace {

// Parses test JSON that must be valid.
Json J(std::string_view text) {
    auto r = parse_json(text);
    if (!r) {
        ADD_FAILURE() << "bad test JSON: " << r.error().message << " in " << text;
        return Json();
    }
    return std::move(*r);
}

template <typename T>
void expect_error(const Result<T>& r, std::string_view code, std::string_view message) {
    ASSERT_FALSE(r.ok()) << "expected error: " << message;
    EXPECT_EQ(r.error().code, code);
    EXPECT_EQ(r.error().message, message);
}

// Round trip through text, as on the wire.
template <typename T, typename Decode>
T through_text(const T& value, Decode decode) {
    auto parsed = parse_json(dump(encode(value)));
    EXPECT_TRUE(parsed.ok());
    auto r = decode(parsed.ok() ? *parsed : Json());
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(*r) : T{};
}

bool is_ascii_printable(std::string_view s) {
    for (const char c : s) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) return false;
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// parse_json

TEST(ProtocolParseJson, ParsesValidJson) {
    auto r = parse_json(R"({"a": [1, -2, 3.5, true, null, "x\u00e9\ud83d\ude00"], "b": {}})");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(dump(*r), "{\"a\":[1,-2,3.5,true,null,\"x\xC3\xA9\xF0\x9F\x98\x80\"],\"b\":{}}");
    EXPECT_TRUE(parse_json("  42 \n").ok());
    EXPECT_TRUE(parse_json("\"just a string\"").ok());
}

TEST(ProtocolParseJson, MalformedInputsAreInvalidJsonWithPosition) {
    struct Case {
        std::string text;
        std::size_t byte;
    };
    const std::vector<Case> cases = {
        {"", 0},
        {"   ", 3},
        {"{", 1},
        {R"({"a":})", 5},
        {"[1,]", 3},
        {R"({"a":1,})", 7},
        {"{'a':1}", 1},
        {"NaN", 0},
        {"[Infinity]", 1},
        {"{} x", 3},
        {"[1] [2]", 4},
        {"\"\xFF\"", 1},              // invalid UTF-8 inside a string
        {"\"\xC0\xAF\"", 1},          // overlong encoding of '/'
        {"\"\\ud800\"", 7},           // lone high surrogate escape
        {"\"\\udc00\"", 6},           // lone low surrogate escape
        {"\xFF", 0},                  // invalid UTF-8 outside a string
        {"[1,2", 4},
        {"\"abc", 4},
        {"\"a\tb\"", 2},              // raw control character in a string
        {"01", 1},
        {"1e400", 4},                 // does not fit in a double
        {"-1e400", 5},
        {std::string("{}\0garbage", 10), 2},  // nlohmann alone would stop at the NUL
        {std::string("[\"a\0b\"]", 7), 3},
        {std::string("\0", 1), 0},
    };
    for (const auto& c : cases) {
        auto r = parse_json(c.text);
        ASSERT_FALSE(r.ok()) << "accepted: " << c.text;
        EXPECT_EQ(r.error().code, "invalid_json") << c.text;
        const std::string prefix = "invalid JSON at byte " + std::to_string(c.byte) + ": ";
        EXPECT_EQ(r.error().message.substr(0, prefix.size()), prefix)
            << "for " << c.text << ": " << r.error().message;
        // The message goes into JSON error bodies: it must not carry the bad bytes along.
        EXPECT_TRUE(is_ascii_printable(r.error().message)) << r.error().message;
    }
}

TEST(ProtocolParseJson, MessagesExplainTheProblem) {
    auto overflow = parse_json("[1e400]");
    ASSERT_FALSE(overflow.ok());
    EXPECT_NE(overflow.error().message.find("number overflow"), std::string::npos);
    auto utf8 = parse_json("\"\xFF\"");
    ASSERT_FALSE(utf8.ok());
    EXPECT_NE(utf8.error().message.find("UTF-8"), std::string::npos);
    EXPECT_NE(utf8.error().message.find("\\xFF"), std::string::npos);
    auto nul = parse_json(std::string("{}\0", 3));
    ASSERT_FALSE(nul.ok());
    EXPECT_EQ(nul.error().message, "invalid JSON at byte 2: NUL byte");
}

TEST(ProtocolParseJson, HugeNumbers) {
    auto big = parse_json("99999999999999999999999");
    ASSERT_TRUE(big.ok());  // too big for 64 bits: a double, which integer decoders reject
    EXPECT_TRUE(big->is_number_float());
    auto umax = parse_json("18446744073709551615");
    ASSERT_TRUE(umax.ok());
    EXPECT_TRUE(umax->is_number_unsigned());
    auto imin = parse_json("-9223372036854775808");
    ASSERT_TRUE(imin.ok());
    ASSERT_TRUE(imin->is_number_integer());
    EXPECT_EQ(*imin->get_ptr<const Json::number_integer_t*>(), INT64_MIN);
    EXPECT_TRUE(parse_json("-99999999999999999999999").ok());
    EXPECT_TRUE(parse_json("1e-400").ok());  // underflow to zero is fine
    EXPECT_TRUE(parse_json(std::string(300, '9')).value().is_number_float());
    // Past the double range a number is an error, however it is written.
    EXPECT_EQ(parse_json(std::string(5000, '9')).error().code, "invalid_json");
}

TEST(ProtocolParseJson, DeepNestingIsRejectedBeforeParsing) {
    const std::string arrays(100000, '[');
    expect_error(parse_json(arrays), "too_deep", "JSON nesting is deeper than 64 levels");
    std::string objects;
    for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
    EXPECT_EQ(parse_json(objects).error().code, "too_deep");
    // Balanced too, so nothing but the depth is wrong.
    const std::string balanced = std::string(100000, '[') + std::string(100000, ']');
    EXPECT_EQ(parse_json(balanced).error().code, "too_deep");
    const std::string mixed = "[{\"a\":" + std::string(70, '[');
    EXPECT_EQ(parse_json(mixed).error().code, "too_deep");
}

TEST(ProtocolParseJson, VeryDeepJsonWithinARaisedLimitParsesWithoutStackOverflow) {
    // nlohmann parses and destroys iteratively; this would crash if either recursed.
    const int depth = 20000;
    const std::string text = std::string(depth, '[') + std::string(depth, ']');
    ParseLimits limits;
    limits.max_depth = depth;
    auto r = parse_json(text, limits);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->is_array());
    limits.max_depth = depth - 1;
    EXPECT_EQ(parse_json(text, limits).error().code, "too_deep");
}

TEST(ProtocolParseJson, DepthExactlyAtTheLimitIsAccepted) {
    const std::string at = std::string(64, '[') + std::string(64, ']');
    EXPECT_TRUE(parse_json(at).ok());
    const std::string over = std::string(65, '[') + std::string(65, ']');
    EXPECT_EQ(parse_json(over).error().code, "too_deep");

    ParseLimits limits;
    limits.max_depth = 2;
    EXPECT_TRUE(parse_json(R"({"a":[1,2],"b":{"c":3}})", limits).ok());
    EXPECT_EQ(parse_json(R"({"a":[[1]]})", limits).error().code, "too_deep");
    // Depth is nesting, not the number of containers.
    EXPECT_TRUE(parse_json("[[],[],[],[],[],[],[]]", limits).ok());
    limits.max_depth = 0;
    EXPECT_TRUE(parse_json("\"[\"", limits).ok());
    EXPECT_EQ(parse_json("[]", limits).error().code, "too_deep");
}

TEST(ProtocolParseJson, BracketsInsideStringsDoNotCount) {
    ParseLimits limits;
    limits.max_depth = 1;
    EXPECT_TRUE(parse_json("[\"" + std::string(1000, '[') + std::string(1000, '{') + "\"]", limits).ok());
    // An escaped quote does not end the string...
    EXPECT_TRUE(parse_json(R"(["\"[[[[[[", "]]]]\\"])", limits).ok());
    // ...but an escaped backslash before a quote does, so these brackets are real.
    EXPECT_EQ(parse_json(R"(["a\\", [[[]]]])", limits).error().code, "too_deep");
    EXPECT_TRUE(parse_json(R"({"k[{":"v]}"})", limits).ok());
}

TEST(ProtocolParseJson, SizeLimitComesFirst) {
    ParseLimits limits;
    limits.max_bytes = 10;
    EXPECT_TRUE(parse_json("[1,2,3,45]", limits).ok());  // exactly 10 bytes
    expect_error(parse_json("[1,2,3,456]", limits), "too_large",
                 "JSON text is 11 bytes; the limit is 10");
    // Checked before depth and syntax.
    EXPECT_EQ(parse_json(std::string(11, '['), limits).error().code, "too_large");
    EXPECT_EQ(parse_json(std::string(11, 'x'), limits).error().code, "too_large");
    // Default: 1 MiB.
    const std::string exactly = "\"" + std::string((1 << 20) - 2, 'a') + "\"";
    EXPECT_TRUE(parse_json(exactly).ok());
    const std::string over = "\"" + std::string((1 << 20) - 1, 'a') + "\"";
    EXPECT_EQ(parse_json(over).error().code, "too_large");
}

TEST(ProtocolDump, ReplacesInvalidUtf8InsteadOfThrowing) {
    Json j = Json::object();
    j["s"] = std::string("a\xFF" "b");
    EXPECT_EQ(dump(j), "{\"s\":\"a\xEF\xBF\xBD" "b\"}");
    EXPECT_EQ(dump(Json("\xC3")), "\"\xEF\xBF\xBD\"");  // truncated sequence at the end
    EXPECT_EQ(dump(Json("tab\there")), R"("tab\there")");
}

// ---------------------------------------------------------------------------------------------
// enums

TEST(ProtocolEnums, RoundTripEveryValue) {
    for (auto s : {ExecutionStatus::queued, ExecutionStatus::running, ExecutionStatus::success,
                   ExecutionStatus::error, ExecutionStatus::cancelled}) {
        auto p = parse_execution_status(to_string(s));
        ASSERT_TRUE(p.ok());
        EXPECT_EQ(*p, s);
    }
    for (auto t : {AppType::template_, AppType::llm, AppType::http, AppType::agent, AppType::workflow}) {
        auto p = parse_app_type(to_string(t));
        ASSERT_TRUE(p.ok());
        EXPECT_EQ(*p, t);
    }
    for (auto t : {InputType::string, InputType::number, InputType::integer, InputType::boolean,
                   InputType::object, InputType::array, InputType::any}) {
        auto p = parse_input_type(to_string(t));
        ASSERT_TRUE(p.ok());
        EXPECT_EQ(*p, t);
    }
    for (auto r : {Role::user, Role::assistant, Role::system}) {
        auto p = parse_role(to_string(r));
        ASSERT_TRUE(p.ok());
        EXPECT_EQ(*p, r);
    }
    EXPECT_STREQ(to_string(AppType::template_), "template");
    EXPECT_STREQ(to_string(ExecutionStatus::cancelled), "cancelled");
}

TEST(ProtocolEnums, UnknownValuesNameTheAllowedOnes) {
    expect_error(parse_execution_status("done"), "invalid_request",
                 "status must be one of queued, running, success, error, cancelled");
    expect_error(parse_app_type("Template"), "invalid_request",
                 "app type must be one of template, llm, http, agent, workflow");
    expect_error(parse_input_type(""), "invalid_request",
                 "input type must be one of string, number, integer, boolean, object, array, any");
    expect_error(parse_role("bot"), "invalid_request", "role must be one of user, assistant, system");
}

TEST(ProtocolEnums, TerminalStatuses) {
    EXPECT_FALSE(is_terminal(ExecutionStatus::queued));
    EXPECT_FALSE(is_terminal(ExecutionStatus::running));
    EXPECT_TRUE(is_terminal(ExecutionStatus::success));
    EXPECT_TRUE(is_terminal(ExecutionStatus::error));
    EXPECT_TRUE(is_terminal(ExecutionStatus::cancelled));
}

// ---------------------------------------------------------------------------------------------
// errors

TEST(ProtocolApiError, EncodeDecode) {
    EXPECT_EQ(dump(encode(ApiError{"userId is required", "invalid_request"})),
              R"({"code":"invalid_request","error":"userId is required"})");
    auto e = through_text(ApiError{"nope", "not_found"}, decode_api_error);
    EXPECT_EQ(e.error, "nope");
    EXPECT_EQ(e.code, "not_found");
    expect_error(decode_api_error(J(R"({"error":"x"})")), "invalid_request", "code is required");
    expect_error(decode_api_error(J(R"({"error":1,"code":"c"})")), "invalid_request",
                 "error must be a string");
}

// ---------------------------------------------------------------------------------------------
// identity

TEST(ProtocolIdentity, RequestEncodeExactText) {
    EXPECT_EQ(dump(encode(IdentityRequest{"u-1", 3600})), R"({"ttlSeconds":3600,"userId":"u-1"})");
    EXPECT_EQ(dump(encode(IdentityRequest{"u-1", std::nullopt})), R"({"userId":"u-1"})");
}

TEST(ProtocolIdentity, RequestDecode) {
    auto r = decode_identity_request(J(R"({"userId":"alice@example.com","ttlSeconds":60,"extra":[1]})"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->user_id, "alice@example.com");
    EXPECT_EQ(r->ttl_seconds, 60);

    auto no_ttl = decode_identity_request(J(R"({"userId":"b"})"));
    ASSERT_TRUE(no_ttl.ok());
    EXPECT_FALSE(no_ttl->ttl_seconds.has_value());
    auto null_ttl = decode_identity_request(J(R"({"userId":"b","ttlSeconds":null})"));
    ASSERT_TRUE(null_ttl.ok());
    EXPECT_FALSE(null_ttl->ttl_seconds.has_value());

    // Bounds, and integral floats (JSON Schema "integer").
    EXPECT_EQ(decode_identity_request(J(R"({"userId":"b","ttlSeconds":1})")).value().ttl_seconds, 1);
    EXPECT_EQ(decode_identity_request(J(R"({"userId":"b","ttlSeconds":31536000})")).value().ttl_seconds,
              31536000);
    EXPECT_EQ(decode_identity_request(J(R"({"userId":"b","ttlSeconds":60.0})")).value().ttl_seconds, 60);
    EXPECT_EQ(decode_identity_request(J(R"({"userId":"b","ttlSeconds":6e1})")).value().ttl_seconds, 60);

    const std::string max_id(256, 'x');
    EXPECT_TRUE(decode_identity_request(Json{{"userId", max_id}}).ok());
    EXPECT_TRUE(decode_identity_request(Json{{"userId", "J\xC3\xBCrgen \xE2\x9C\x93"}}).ok());

    auto round = through_text(IdentityRequest{"z", 5}, decode_identity_request);
    EXPECT_EQ(round.user_id, "z");
    EXPECT_EQ(round.ttl_seconds, 5);
}

TEST(ProtocolIdentity, RequestDecodeErrorsNameTheField) {
    const std::string ttl_range = "ttlSeconds must be an integer between 1 and 31536000";
    struct Case {
        Json body;
        std::string message;
    };
    const std::vector<Case> cases = {
        {J("[]"), "body must be a JSON object"},
        {J("\"userId\""), "body must be a JSON object"},
        {J("null"), "body must be a JSON object"},
        {J("1"), "body must be a JSON object"},
        {J("{}"), "userId is required"},
        {J(R"({"userid":"a"})"), "userId is required"},  // names are case-sensitive
        {J(R"({"userId":null})"), "userId is required"},
        {J(R"({"userId":5})"), "userId must be a string"},
        {J(R"({"userId":["a"]})"), "userId must be a string"},
        {J(R"({"userId":true})"), "userId must be a string"},
        {J(R"({"userId":""})"), "userId must not be empty"},
        {Json{{"userId", std::string(257, 'x')}}, "userId must be at most 256 bytes"},
        {J(R"({"userId":"a\nb"})"), "user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)"},
        {J(R"({"userId":"a\u0000b"})"), "user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)"},
        {J(R"({"userId":"\u007f"})"), "user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)"},
        {J(R"({"userId":"x\u0085"})"), "user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)"},
        {Json{{"userId", "a\xFF"}}, "userId must be valid UTF-8"},
        {J(R"({"userId":"a","ttlSeconds":0})"), ttl_range},
        {J(R"({"userId":"a","ttlSeconds":-1})"), ttl_range},
        {J(R"({"userId":"a","ttlSeconds":31536001})"), ttl_range},
        {J(R"({"userId":"a","ttlSeconds":1.5})"), ttl_range},
        {J(R"({"userId":"a","ttlSeconds":"60"})"), ttl_range},
        {J(R"({"userId":"a","ttlSeconds":true})"), ttl_range},
        {J(R"({"userId":"a","ttlSeconds":99999999999999999999999})"), ttl_range},
        {J(R"({"userId":"a","ttlSeconds":18446744073709551615})"), ttl_range},
        {J(R"({"userId":"a","ttlSeconds":-9223372036854775808})"), ttl_range},
        {J(R"({"userId":"a","ttlSeconds":1e300})"), ttl_range},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(dump(c.body));
        expect_error(decode_identity_request(c.body), "invalid_request", c.message);
    }
}

TEST(ProtocolIdentity, Response) {
    IdentityResponse r{"ws_1", "u", "ab12", 1700000000};
    EXPECT_EQ(dump(encode(r)),
              R"({"expiresAt":1700000000,"hashedUserId":"ab12","userId":"u","workspaceId":"ws_1"})");
    auto back = through_text(r, decode_identity_response);
    EXPECT_EQ(back.workspace_id, "ws_1");
    EXPECT_EQ(back.user_id, "u");
    EXPECT_EQ(back.hashed_user_id, "ab12");
    EXPECT_EQ(back.expires_at, 1700000000);

    r.expires_at.reset();
    EXPECT_EQ(dump(encode(r)), R"({"hashedUserId":"ab12","userId":"u","workspaceId":"ws_1"})");
    EXPECT_FALSE(through_text(r, decode_identity_response).expires_at.has_value());

    expect_error(decode_identity_response(J(R"({"workspaceId":"w","userId":"u"})")), "invalid_request",
                 "hashedUserId is required");
    expect_error(decode_identity_response(
                     J(R"({"workspaceId":"w","userId":"u","hashedUserId":"h","expiresAt":"soon"})")),
                 "invalid_request", "expiresAt must be an integer between 0 and 9223372036854775807");
}

// ---------------------------------------------------------------------------------------------
// apps

AppInfo sample_app() {
    AppInfo a;
    a.id = "blog-writer";
    a.name = "Blog writer";
    a.type = AppType::llm;
    a.version = "v2";
    a.versions = {"v1", "v2"};
    a.inputs = {{"topic", InputType::string, true, "What to write about"},
                {"count", InputType::integer, false, ""}};
    a.is_public = true;
    return a;
}

TEST(ProtocolApps, AppInfoEncodeExactText) {
    EXPECT_EQ(dump(encode(sample_app())),
              R"({"id":"blog-writer","imageHosts":[],"inputs":[{"description":"What to write about","name":"topic",)"
              R"("required":true,"type":"string"},{"name":"count","required":false,"type":"integer"}],)"
              R"("name":"Blog writer","public":true,"starters":[],"type":"llm","version":"v2","versions":["v1","v2"]})");
}

TEST(ProtocolApps, AppInfoRoundTrip) {
    const AppInfo a = sample_app();
    const AppInfo b = through_text(a, decode_app_info);
    EXPECT_EQ(b.id, a.id);
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.type, AppType::llm);
    EXPECT_EQ(b.version, "v2");
    EXPECT_EQ(b.versions, a.versions);
    ASSERT_EQ(b.inputs.size(), 2u);
    EXPECT_EQ(b.inputs[0].name, "topic");
    EXPECT_EQ(b.inputs[0].type, InputType::string);
    EXPECT_TRUE(b.inputs[0].required);
    EXPECT_EQ(b.inputs[0].description, "What to write about");
    EXPECT_EQ(b.inputs[1].type, InputType::integer);
    EXPECT_FALSE(b.inputs[1].required);
    EXPECT_TRUE(b.is_public);
    EXPECT_EQ(encode(b), encode(a));

    AppInfo minimal;
    minimal.id = "t";
    minimal.name = "T";
    const AppInfo m = through_text(minimal, decode_app_info);
    EXPECT_EQ(m.type, AppType::template_);
    EXPECT_TRUE(m.inputs.empty());
    EXPECT_FALSE(m.is_public);
    EXPECT_EQ(encode(m), encode(minimal));

    // Defaults for what a minimal document leaves out.
    auto d = decode_app_info(J(R"({"id":"x","name":"X","type":"agent","inputs":[{"name":"q"}]})"));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->type, AppType::agent);
    ASSERT_EQ(d->inputs.size(), 1u);
    EXPECT_EQ(d->inputs[0].type, InputType::string);
    EXPECT_TRUE(d->inputs[0].required);
    EXPECT_FALSE(d->is_public);
}

TEST(ProtocolApps, AppInfoDecodeErrors) {
    const std::string base = R"("id":"x","name":"X","type":"llm")";
    struct Case {
        std::string body;
        std::string message;
    };
    const std::vector<Case> cases = {
        {R"(["x"])", "body must be a JSON object"},
        {R"({"name":"X","type":"llm"})", "id is required"},
        {R"({"id":"x","name":"X","type":"chatbot"})",
         "type must be one of template, llm, http, agent, workflow"},
        {R"({"id":"x","name":"X","type":7})", "type must be one of template, llm, http, agent, workflow"},
        {"{" + base + R"(,"versions":"v1"})", "versions must be an array"},
        {"{" + base + R"(,"versions":["v1",2]})", "versions[1] must be a string"},
        {"{" + base + R"(,"inputs":{}})", "inputs must be an array"},
        {"{" + base + R"(,"inputs":[{"name":"a"},"b"]})", "inputs[1] must be an object"},
        {"{" + base + R"(,"inputs":[{"name":"a"},{"type":"string"}]})", "inputs[1].name is required"},
        {"{" + base + R"(,"inputs":[{"name":"a","type":"text"}]})",
         "inputs[0].type must be one of string, number, integer, boolean, object, array, any"},
        {"{" + base + R"(,"inputs":[{"name":"a","required":"yes"}]})",
         "inputs[0].required must be a boolean"},
        {"{" + base + R"(,"inputs":[{"name":"a","description":5}]})",
         "inputs[0].description must be a string"},
        {"{" + base + R"(,"public":1})", "public must be a boolean"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.body);
        expect_error(decode_app_info(J(c.body)), "invalid_request", c.message);
    }
    expect_error(decode_input_spec(J(R"({"name":""})"), "apps[3].inputs[0]"), "invalid_request",
                 "apps[3].inputs[0].name must not be empty");
}

// ---------------------------------------------------------------------------------------------
// validate_inputs

TEST(ProtocolValidateInputs, AcceptsValidInputs) {
    const std::vector<InputSpec> specs = {
        {"a", InputType::string, true, ""},   {"n", InputType::number, false, ""},
        {"i", InputType::integer, false, ""}, {"b", InputType::boolean, false, ""},
        {"o", InputType::object, false, ""},  {"l", InputType::array, false, ""},
        {"x", InputType::any, false, ""},
    };
    EXPECT_TRUE(validate_inputs(specs, J(R"({"a":"hi"})")).ok());
    EXPECT_TRUE(validate_inputs(
                    specs, J(R"({"a":"","n":1.5,"i":-3,"b":false,"o":{},"l":[1],"x":null})"))
                    .ok());
    EXPECT_TRUE(validate_inputs(specs, J(R"({"a":"s","n":7,"i":4.0,"x":[{"deep":true}]})")).ok());
    EXPECT_TRUE(validate_inputs(specs, J(R"({"a":"s","i":18446744073709551615})")).ok());
    EXPECT_TRUE(validate_inputs(specs, J(R"({"a":"s","i":null})")).ok());  // optional, unset
    EXPECT_TRUE(validate_inputs({}, J("{}")).ok());
    EXPECT_TRUE(validate_inputs(specs, J(R"({"a":"s","extra":1})"), /*allow_unknown=*/true).ok());
}

TEST(ProtocolValidateInputs, ErrorsNameTheInput) {
    const std::vector<InputSpec> specs = {
        {"topic", InputType::string, true, ""},
        {"count", InputType::integer, false, ""},
        {"ratio", InputType::number, false, ""},
        {"flag", InputType::boolean, false, ""},
        {"opts", InputType::object, false, ""},
        {"tags", InputType::array, false, ""},
    };
    struct Case {
        std::string inputs;
        std::string message;
    };
    const std::vector<Case> cases = {
        {"[]", "inputs must be an object"},
        {"\"topic\"", "inputs must be an object"},
        {"null", "inputs must be an object"},
        {"{}", "inputs.topic is required"},
        {R"({"topic":null})", "inputs.topic is required"},
        {R"({"topic":3})", "inputs.topic must be a string"},
        {R"({"topic":"t","count":1.5})", "inputs.count must be an integer"},
        {R"({"topic":"t","count":"3"})", "inputs.count must be an integer"},
        {R"({"topic":"t","count":true})", "inputs.count must be an integer"},
        {R"({"topic":"t","ratio":"0.5"})", "inputs.ratio must be a number"},
        {R"({"topic":"t","flag":0})", "inputs.flag must be a boolean"},
        {R"({"topic":"t","opts":[]})", "inputs.opts must be an object"},
        {R"({"topic":"t","tags":{}})", "inputs.tags must be an array"},
        {R"({"topic":"t","foo":1})",
         "inputs.foo is not an input of this app (known: topic, count, ratio, flag, opts, tags)"},
        // A misspelt name is reported as such, not as the required input it was meant to be.
        {R"({"topc":"t"})",
         "inputs.topc is not an input of this app (known: topic, count, ratio, flag, opts, tags)"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.inputs);
        expect_error(validate_inputs(specs, J(c.inputs)), "invalid_request", c.message);
    }
    expect_error(validate_inputs({}, J(R"({"a":1})")), "invalid_request",
                 "inputs.a is not an input of this app (it takes no inputs)");
}

TEST(ProtocolValidateInputs, HostileNamesAreSanitisedInMessages) {
    Json inputs = Json::object();
    inputs[std::string("a\nb\x1b[31m") + std::string(100, 'z')] = 1;
    auto r = validate_inputs({{"a", InputType::any, false, ""}}, inputs);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message,
              "inputs.a?b?[31m" + std::string(56, 'z') + "... is not an input of this app (known: a)");
}

// ---------------------------------------------------------------------------------------------
// executions

TEST(ProtocolExecutions, ExecuteRequest) {
    auto r = decode_execute_request(J(R"({"version":"v2","inputs":{"topic":"owls"},"future":1})"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->version, "v2");
    EXPECT_EQ(r->inputs, J(R"({"topic":"owls"})"));

    auto empty = decode_execute_request(J("{}"));
    ASSERT_TRUE(empty.ok());
    EXPECT_FALSE(empty->version.has_value());
    EXPECT_EQ(empty->inputs, Json::object());
    auto null_inputs = decode_execute_request(J(R"({"inputs":null,"version":null})"));
    ASSERT_TRUE(null_inputs.ok());
    EXPECT_EQ(null_inputs->inputs, Json::object());

    EXPECT_EQ(dump(encode(*r)), R"({"inputs":{"topic":"owls"},"version":"v2"})");
    EXPECT_EQ(dump(encode(ExecuteRequest{})), R"({"inputs":{}})");
    EXPECT_EQ(through_text(*r, decode_execute_request).inputs, r->inputs);

    expect_error(decode_execute_request(J("[]")), "invalid_request", "body must be a JSON object");
    expect_error(decode_execute_request(J(R"({"inputs":[1]})")), "invalid_request",
                 "inputs must be an object");
    expect_error(decode_execute_request(J(R"({"inputs":"a=1"})")), "invalid_request",
                 "inputs must be an object");
    expect_error(decode_execute_request(J(R"({"version":2})")), "invalid_request",
                 "version must be a string");
    expect_error(decode_execute_request(J(R"({"version":""})")), "invalid_request",
                 "version must not be empty");
}

Execution sample_execution() {
    Execution e;
    e.id = "ex_1";
    e.app_id = "blog";
    e.version = "v1";
    e.status = ExecutionStatus::error;
    e.inputs = Json{{"topic", "owls"}};
    e.output = "partial";
    e.error = "upstream timed out";
    e.session_id = "s_9";
    e.created_at = 1700000000123;
    e.updated_at = 1700000000456;
    return e;
}

TEST(ProtocolExecutions, ExecutionEncodeExactText) {
    Execution e;
    e.id = "ex_1";
    e.app_id = "blog";
    e.version = "v1";
    e.created_at = 5;
    e.updated_at = 6;
    // output is always present (null until set); error and sessionId only when set.
    EXPECT_EQ(dump(encode(e)),
              R"({"appId":"blog","createdAt":5,"id":"ex_1","inputs":{},"output":null,)"
              R"("status":"queued","updatedAt":6,"version":"v1"})");
    EXPECT_EQ(dump(encode(sample_execution())),
              R"({"appId":"blog","createdAt":1700000000123,"error":"upstream timed out","id":"ex_1",)"
              R"("inputs":{"topic":"owls"},"output":"partial","sessionId":"s_9","status":"error",)"
              R"("updatedAt":1700000000456,"version":"v1"})");
}

TEST(ProtocolExecutions, ExecutionRoundTrip) {
    const Execution a = sample_execution();
    const Execution b = through_text(a, decode_execution);
    EXPECT_EQ(b.id, "ex_1");
    EXPECT_EQ(b.app_id, "blog");
    EXPECT_EQ(b.version, "v1");
    EXPECT_EQ(b.status, ExecutionStatus::error);
    EXPECT_EQ(b.inputs, a.inputs);
    EXPECT_EQ(b.output, Json("partial"));
    EXPECT_EQ(b.error, "upstream timed out");
    EXPECT_EQ(b.session_id, "s_9");
    EXPECT_EQ(b.created_at, 1700000000123);
    EXPECT_EQ(b.updated_at, 1700000000456);

    Execution plain;
    plain.id = "e";
    plain.app_id = "a";
    plain.status = ExecutionStatus::running;
    plain.output = Json{{"structured", {1, 2}}};
    const Execution c = through_text(plain, decode_execution);
    EXPECT_EQ(c.status, ExecutionStatus::running);
    EXPECT_EQ(c.output, plain.output);
    EXPECT_FALSE(c.error.has_value());
    EXPECT_FALSE(c.session_id.has_value());
    EXPECT_EQ(encode(c), encode(plain));
}

TEST(ProtocolExecutions, ExecutionDecodeErrors) {
    const Json good = encode(sample_execution());
    auto with = [&](const char* key, Json value) {
        Json j = good;
        j[key] = std::move(value);
        return j;
    };
    auto without = [&](const char* key) {
        Json j = good;
        j.erase(key);
        return j;
    };
    EXPECT_TRUE(decode_execution(good).ok());
    EXPECT_TRUE(decode_execution(without("output")).ok());  // absent output reads as null
    expect_error(decode_execution(without("appId")), "invalid_request", "appId is required");
    expect_error(decode_execution(with("id", 1)), "invalid_request", "id must be a string");
    expect_error(decode_execution(with("status", "done")), "invalid_request",
                 "status must be one of queued, running, success, error, cancelled");
    expect_error(decode_execution(with("status", "SUCCESS")), "invalid_request",
                 "status must be one of queued, running, success, error, cancelled");
    expect_error(decode_execution(with("inputs", Json::array())), "invalid_request",
                 "inputs must be an object");
    expect_error(decode_execution(with("error", false)), "invalid_request", "error must be a string");
    expect_error(decode_execution(with("createdAt", -1)), "invalid_request",
                 "createdAt must be an integer between 0 and 9223372036854775807");
    expect_error(decode_execution(with("updatedAt", 1.25)), "invalid_request",
                 "updatedAt must be an integer between 0 and 9223372036854775807");
    expect_error(decode_execution(without("createdAt")), "invalid_request", "createdAt is required");
}

TEST(ProtocolExecutions, ExecutionCreated) {
    ExecutionCreated c{"ex_42", ExecutionStatus::queued};
    EXPECT_EQ(dump(encode(c)), R"({"executionId":"ex_42","status":"queued"})");
    const auto back = through_text(ExecutionCreated{"ex_43", ExecutionStatus::running},
                                   decode_execution_created);
    EXPECT_EQ(back.execution_id, "ex_43");
    EXPECT_EQ(back.status, ExecutionStatus::running);
    expect_error(decode_execution_created(J(R"({"status":"queued"})")), "invalid_request",
                 "executionId is required");
    expect_error(decode_execution_created(J(R"({"executionId":"e","status":"new"})")),
                 "invalid_request", "status must be one of queued, running, success, error, cancelled");
}

// ---------------------------------------------------------------------------------------------
// chat

TEST(ProtocolChat, ChatRequest) {
    auto r = decode_chat_request(J(R"({"message":"hi","sessionId":"s_1","inputs":{"tone":"dry"}})"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->message, "hi");
    EXPECT_EQ(r->session_id, "s_1");
    EXPECT_EQ(r->inputs, J(R"({"tone":"dry"})"));
    EXPECT_EQ(dump(encode(*r)), R"({"inputs":{"tone":"dry"},"message":"hi","sessionId":"s_1"})");

    auto first = decode_chat_request(J(R"({"message":"hello","sessionId":null})"));
    ASSERT_TRUE(first.ok());
    EXPECT_FALSE(first->session_id.has_value());
    EXPECT_EQ(first->inputs, Json::object());
    EXPECT_EQ(dump(encode(*first)), R"({"message":"hello"})");
    const auto back = through_text(*r, decode_chat_request);
    EXPECT_EQ(back.session_id, "s_1");
    EXPECT_EQ(back.inputs, r->inputs);

    expect_error(decode_chat_request(J("{}")), "invalid_request", "message is required");
    expect_error(decode_chat_request(J(R"({"message":""})")), "invalid_request",
                 "message must not be empty");
    expect_error(decode_chat_request(J(R"({"message":["hi"]})")), "invalid_request",
                 "message must be a string");
    expect_error(decode_chat_request(J(R"({"message":"hi","sessionId":7})")), "invalid_request",
                 "sessionId must be a string");
    expect_error(decode_chat_request(J(R"({"message":"hi","inputs":3})")), "invalid_request",
                 "inputs must be an object");
}

Session sample_session() {
    Session s;
    s.id = "s_1";
    s.app_id = "helper";
    s.title = "What is";
    s.created_at = 10;
    s.updated_at = 20;
    s.message_count = 3;
    s.messages = {{Role::system, "Be brief.", 10}, {Role::user, "What is 2+2?", 11},
                  {Role::assistant, "4", 12}};
    return s;
}

TEST(ProtocolChat, SessionEncodeExactText) {
    Session s = sample_session();
    s.messages.resize(1);
    EXPECT_EQ(dump(encode(s)),
              R"({"appId":"helper","createdAt":10,"id":"s_1","messageCount":3,)"
              R"("messages":[{"content":"Be brief.","createdAt":10,"role":"system"}],)"
              R"("title":"What is","updatedAt":20})");
    EXPECT_EQ(dump(encode(s, /*with_messages=*/false)),
              R"({"appId":"helper","createdAt":10,"id":"s_1","messageCount":3,"title":"What is","updatedAt":20})");
}

TEST(ProtocolChat, SessionRoundTrip) {
    const Session a = sample_session();
    const Session b = through_text(a, decode_session);
    EXPECT_EQ(b.id, "s_1");
    EXPECT_EQ(b.app_id, "helper");
    EXPECT_EQ(b.title, "What is");
    EXPECT_EQ(b.created_at, 10);
    EXPECT_EQ(b.updated_at, 20);
    EXPECT_EQ(b.message_count, 3);
    ASSERT_EQ(b.messages.size(), 3u);
    EXPECT_EQ(b.messages[0].role, Role::system);
    EXPECT_EQ(b.messages[1].content, "What is 2+2?");
    EXPECT_EQ(b.messages[2].role, Role::assistant);
    EXPECT_EQ(b.messages[2].created_at, 12);

    auto listed = decode_session(encode(a, false));
    ASSERT_TRUE(listed.ok());
    EXPECT_TRUE(listed->messages.empty());
    EXPECT_EQ(listed->message_count, 3);
}

TEST(ProtocolChat, SessionDecodeErrorsNameThePath) {
    Json j = encode(sample_session());
    j["messages"][2]["role"] = "bot";
    expect_error(decode_session(j), "invalid_request",
                 "messages[2].role must be one of user, assistant, system");
    j = encode(sample_session());
    j["messages"][1].erase("content");
    expect_error(decode_session(j), "invalid_request", "messages[1].content is required");
    j = encode(sample_session());
    j["messages"][0] = "hello";
    expect_error(decode_session(j), "invalid_request", "messages[0] must be an object");
    j = encode(sample_session());
    j["messages"] = Json::object();
    expect_error(decode_session(j), "invalid_request", "messages must be an array");
    j = encode(sample_session());
    j["messageCount"] = 2.5;
    expect_error(decode_session(j), "invalid_request",
                 "messageCount must be an integer between 0 and 9223372036854775807");
    j = encode(sample_session());
    j.erase("title");
    expect_error(decode_session(j), "invalid_request", "title is required");

    expect_error(decode_message(J(R"({"role":"user","content":1})")), "invalid_request",
                 "message.content must be a string");
    auto m = decode_message(J(R"({"role":"user","content":"x"})"));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->created_at, 0);
}

// ---------------------------------------------------------------------------------------------
// stream events

TEST(ProtocolEvents, EncodeExactText) {
    EXPECT_EQ(dump(encode(Delta{"Hel"})), R"({"content":"Hel"})");
    EXPECT_EQ(dump(encode(ExecutionCompleted{ExecutionStatus::success, Json("Hello"), std::nullopt})),
              R"({"output":"Hello","status":"success"})");
    EXPECT_EQ(dump(encode(ExecutionCompleted{ExecutionStatus::error, Json(), "boom"})),
              R"({"error":"boom","output":null,"status":"error"})");
    EXPECT_EQ(dump(encode(AgentResponse{"tok"})), R"({"token":"tok"})");
    EXPECT_EQ(dump(encode(AgentAction{"search", Json{{"q", "owls"}}})),
              R"({"tool":"search","tool_input":{"q":"owls"}})");
    EXPECT_EQ(dump(encode(AgentActionError{"tool failed"})), R"({"error":"tool failed"})");
    EXPECT_EQ(dump(encode(ChatCompleted{"4", "s_1", ExecutionStatus::success})),
              R"({"result":"4","sessionId":"s_1","status":"success"})");
}

TEST(ProtocolEvents, RoundTrip) {
    EXPECT_EQ(through_text(Delta{"a\"b\n"}, decode_delta).content, "a\"b\n");
    EXPECT_EQ(through_text(Delta{""}, decode_delta).content, "");
    EXPECT_EQ(through_text(AgentResponse{" world"}, decode_agent_response).token, " world");
    EXPECT_EQ(through_text(AgentActionError{"x"}, decode_agent_action_error).error, "x");

    const auto done = through_text(
        ExecutionCompleted{ExecutionStatus::cancelled, Json{{"k", 1}}, "stopped"},
        decode_execution_completed);
    EXPECT_EQ(done.status, ExecutionStatus::cancelled);
    EXPECT_EQ(done.output, Json({{"k", 1}}));
    EXPECT_EQ(done.error, "stopped");
    const auto ok = through_text(ExecutionCompleted{ExecutionStatus::success, Json(), std::nullopt},
                                 decode_execution_completed);
    EXPECT_TRUE(ok.output.is_null());
    EXPECT_FALSE(ok.error.has_value());

    const auto action = through_text(AgentAction{"calc", Json{{"expr", "2+2"}}}, decode_agent_action);
    EXPECT_EQ(action.tool, "calc");
    EXPECT_EQ(action.tool_input, Json({{"expr", "2+2"}}));

    const auto chat = through_text(ChatCompleted{"four", "s_2", ExecutionStatus::error},
                                   decode_chat_completed);
    EXPECT_EQ(chat.result, "four");
    EXPECT_EQ(chat.session_id, "s_2");
    EXPECT_EQ(chat.status, ExecutionStatus::error);
    // The reference SDK's completed event has no status: it means success.
    auto legacy = decode_chat_completed(J(R"({"result":"r","sessionId":"s"})"));
    ASSERT_TRUE(legacy.ok());
    EXPECT_EQ(legacy->status, ExecutionStatus::success);
}

TEST(ProtocolEvents, DecodeErrors) {
    const std::string terminal = "status must be one of success, error, cancelled";
    expect_error(decode_delta(J("\"text\"")), "invalid_request", "body must be a JSON object");
    expect_error(decode_delta(J("{}")), "invalid_request", "content is required");
    expect_error(decode_delta(J(R"({"content":1})")), "invalid_request", "content must be a string");
    expect_error(decode_agent_response(J(R"({"text":"a"})")), "invalid_request", "token is required");
    expect_error(decode_agent_action(J(R"({"tool_input":{}})")), "invalid_request", "tool is required");
    expect_error(decode_agent_action_error(J(R"({"error":null})")), "invalid_request",
                 "error is required");
    expect_error(decode_execution_completed(J(R"({"output":"x"})")), "invalid_request",
                 "status is required");
    expect_error(decode_execution_completed(J(R"({"status":"running"})")), "invalid_request", terminal);
    expect_error(decode_execution_completed(J(R"({"status":"ok"})")), "invalid_request", terminal);
    expect_error(decode_execution_completed(J(R"({"status":"error","error":{}})")), "invalid_request",
                 "error must be a string");
    expect_error(decode_chat_completed(J(R"({"result":"r"})")), "invalid_request",
                 "sessionId is required");
    expect_error(decode_chat_completed(J(R"({"result":"r","sessionId":"s","status":"queued"})")),
                 "invalid_request", terminal);
}

// ---------------------------------------------------------------------------------------------
// the chat widget's fields (issue 15)

TEST(ProtocolWidget, AppInfoCarriesStartersImageHostsAndAvatar) {
    AppInfo a = sample_app();
    a.starters = {"Hi", "Help"};
    a.image_hosts = {"img.example.com", "*.cdn.example.org"};
    a.avatar_url = "https://example.com/a.png";
    const AppInfo b = through_text(a, decode_app_info);
    EXPECT_EQ(b.starters, a.starters);
    EXPECT_EQ(b.image_hosts, a.image_hosts);
    EXPECT_EQ(b.avatar_url, a.avatar_url);
    Json j = encode(a);
    j["starters"][1] = 3;
    expect_error(decode_app_info(j), "invalid_request", "starters[1] must be a string");
}

TEST(ProtocolWidget, RegenerateAndEditLastChatRequests) {
    auto r = decode_chat_request(J(R"({"sessionId":"s_1","regenerate":true})"));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->regenerate);
    EXPECT_EQ(r->message, "");
    EXPECT_EQ(dump(encode(*r)), R"({"message":"","regenerate":true,"sessionId":"s_1"})");
    auto e = decode_chat_request(J(R"({"sessionId":"s_1","message":"fixed","editLast":true})"));
    ASSERT_TRUE(e.ok());
    EXPECT_TRUE(e->edit_last);
    EXPECT_TRUE(through_text(*e, decode_chat_request).edit_last);

    expect_error(decode_chat_request(J(R"({"regenerate":true})")), "invalid_request",
                 "sessionId is required with regenerate");
    expect_error(decode_chat_request(J(R"({"message":"x","editLast":true})")), "invalid_request",
                 "sessionId is required with editLast");
    expect_error(decode_chat_request(J(R"({"sessionId":"s","editLast":true})")), "invalid_request",
                 "message is required");
    expect_error(decode_chat_request(J(R"({"sessionId":"s","message":"x","editLast":true,"regenerate":true})")),
                 "invalid_request", "regenerate and editLast cannot both be true");
    expect_error(decode_chat_request(J(R"({"sessionId":"s","regenerate":1})")), "invalid_request",
                 "regenerate must be a boolean");
}

TEST(ProtocolWidget, HistoryMessagesSayHowTheirTurnEnded) {
    Message m;
    m.role = Role::assistant;
    m.content = "";
    m.created_at = 5;
    m.turn_id = "tu_1";
    m.execution_id = "ex_1";
    m.status = "error";
    m.error_code = "upstream_unavailable";
    m.error_message = "the upstream is unavailable";
    EXPECT_EQ(dump(encode(m)),
              R"({"content":"","createdAt":5,"error":{"code":"upstream_unavailable","message":"the upstream is unavailable"},)"
              R"("executionId":"ex_1","role":"assistant","status":"error","turnId":"tu_1"})");
    const Message back = through_text(m, [](const Json& j) { return decode_message(j); });
    EXPECT_EQ(back.status, "error");
    EXPECT_EQ(back.error_code, "upstream_unavailable");
    EXPECT_EQ(back.turn_id, "tu_1");
    Message plain;
    plain.content = "hi";
    EXPECT_EQ(dump(encode(plain)), R"({"content":"hi","createdAt":0,"role":"user"})");  // as before
    expect_error(decode_message(J(R"({"role":"assistant","content":"","status":"lost"})")), "invalid_request",
                 "message.status must be one of success, error, cancelled, interrupted");
    expect_error(decode_message(J(R"({"role":"assistant","content":"","error":{"code":"x"}})")), "invalid_request",
                 "message.error.message is required");
}

TEST(ProtocolEvents, ReplyTextOfIsTheDeltaContentOrTheAgentResponseToken) {
    EXPECT_EQ(*reply_text_of("delta", Json{{"content", "a"}}), "a");
    EXPECT_EQ(*reply_text_of("agent-response", Json{{"token", "b"}}), "b");
    EXPECT_EQ(reply_text_of("delta", Json{{"token", "b"}}), nullptr);         // the other event's field
    EXPECT_EQ(reply_text_of("agent-response", Json{{"token", 5}}), nullptr);  // not a string
    EXPECT_EQ(reply_text_of("completed", Json{{"result", "x"}}), nullptr);
    EXPECT_EQ(reply_text_of("delta", Json::array()), nullptr);
}

TEST(ProtocolFeedback, DecodeNamesTheFieldAndEncodeHasTheOwnerOnlyWhenAsked) {
    auto ok = decode_feedback_request(Json{{"rating", "down"}, {"comment", std::string(2000, 'x')}});
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok->rating, "down");
    // 2000 characters, not bytes.
    std::string e_acute;
    for (int i = 0; i < 2000; ++i) e_acute += "\xc3\xa9";
    EXPECT_TRUE(decode_feedback_request(Json{{"rating", "up"}, {"comment", e_acute}}).ok());
    const std::pair<Json, std::string> bad[] = {
        {Json::array(), "body must be a JSON object"},
        {Json::object(), R"(rating: must be "up" or "down")"},
        {Json{{"rating", "meh"}}, R"(rating: must be "up" or "down")"},
        {Json{{"rating", "up"}, {"comment", 5}}, "comment: must be a string"},
        {Json{{"rating", "up"}, {"comment", std::string(2001, 'x')}}, "comment: must be at most 2000 characters"},
        {Json{{"rating", "up"}, {"stars", 5}}, "stars is not a known field (rating, comment)"},
    };
    for (const auto& [j, msg] : bad) {
        auto r = decode_feedback_request(j);
        ASSERT_FALSE(r.ok()) << j.dump();
        EXPECT_EQ(r.error().code, "invalid_request");
        EXPECT_EQ(r.error().message, msg);
    }
    Feedback f{"ex_1", "app", "alice", "up", "nice", 1, 2};
    EXPECT_EQ(dump(encode(f, false)), R"({"comment":"nice","createdAt":1,"executionId":"ex_1","rating":"up","updatedAt":2})");
    EXPECT_EQ(encode(f, true).value("userId", ""), "alice");
    EXPECT_EQ(encode(f, true).value("appId", ""), "app");
}

}  // namespace
}  // namespace confab::protocol
