// Protocol: strict, non-throwing JSON decode and encode of the v1 wire types.
#include "confab/protocol.hpp"

#include "confab/identity.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace confab::protocol {

namespace {

constexpr const char* kInvalidRequest = "invalid_request";

Error invalid(std::string message) { return make_error(kInvalidRequest, std::move(message)); }

// ---- enum tables: the index is the enumerator's value ----
constexpr const char* kExecutionStatusNames[] = {"queued", "running", "success", "error",
                                                 "cancelled"};
constexpr const char* kAppTypeNames[] = {"template", "llm", "http", "agent", "workflow"};
constexpr const char* kInputTypeNames[] = {"string", "number", "integer", "boolean",
                                           "object", "array",  "any"};
constexpr const char* kRoleNames[] = {"user", "assistant", "system"};
// A "completed" event ends a run, so only terminal statuses make sense in it.
constexpr const char* kTerminalStatusNames[] = {"success", "error", "cancelled"};

template <typename E, std::size_t N>
const char* name_of(const char* const (&names)[N], E value) noexcept {
    const auto i = static_cast<std::size_t>(value);
    return i < N ? names[i] : "unknown";
}

template <typename E, std::size_t N>
std::optional<E> lookup(const char* const (&names)[N], std::string_view s) {
    for (std::size_t i = 0; i < N; ++i) {
        if (s == names[i]) return static_cast<E>(i);
    }
    return std::nullopt;
}

template <std::size_t N>
std::string one_of(const char* const (&names)[N]) {
    std::string out;
    for (std::size_t i = 0; i < N; ++i) {
        if (i != 0) out += ", ";
        out += names[i];
    }
    return out;
}

// An integral JSON number as int64, or nothing. Like JSON Schema's "integer", a float with no
// fractional part (1e3, 60.0) counts; 1.5, 1e300 (out of range) and non-numbers do not.
std::optional<std::int64_t> as_int64(const Json& v) {
    if (const auto* i = v.get_ptr<const Json::number_integer_t*>()) return *i;
    if (const auto* u = v.get_ptr<const Json::number_unsigned_t*>()) {
        if (*u > static_cast<Json::number_unsigned_t>(std::numeric_limits<std::int64_t>::max())) {
            return std::nullopt;
        }
        return static_cast<std::int64_t>(*u);
    }
    if (const auto* f = v.get_ptr<const Json::number_float_t*>()) {
        const double d = *f;
        // 2^63 is exactly representable; anything >= it (or NaN/inf) does not fit.
        if (!std::isfinite(d) || std::trunc(d) != d || d < -9223372036854775808.0 ||
            d >= 9223372036854775808.0) {
            return std::nullopt;
        }
        return static_cast<std::int64_t>(d);
    }
    return std::nullopt;
}

bool is_integral(const Json& v) {
    if (v.is_number_integer()) return true;  // signed or unsigned, any 64-bit value
    if (const auto* f = v.get_ptr<const Json::number_float_t*>()) {
        return std::isfinite(*f) && std::trunc(*f) == *f;
    }
    return false;
}

// A user-supplied key made safe to quote in an error message: no control characters, at most
// 64 bytes, cut on a UTF-8 boundary.
std::string printable_key(std::string_view key) {
    constexpr std::size_t kMax = 64;
    bool cut = false;
    if (key.size() > kMax) {
        std::size_t n = kMax;
        while (n > 0 && (static_cast<unsigned char>(key[n]) & 0xC0) == 0x80) --n;
        key = key.substr(0, n);
        cut = true;
    }
    std::string out;
    out.reserve(key.size() + 3);
    for (const char c : key) {
        const auto b = static_cast<unsigned char>(c);
        out += (b < 0x20 || b == 0x7F) ? '?' : c;
    }
    if (cut) out += "...";
    return out;
}

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool is_valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (b >= 0xC2 && b <= 0xDF) {
            len = 2;
            cp = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            len = 3;
            cp = b & 0x0F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            len = 4;
            cp = b & 0x07;
        } else {
            return false;
        }
        if (s.size() - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (c & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += len;
    }
    return true;
}


// Reads the fields of one JSON object. The first error sticks; later reads return defaults, so a
// decoder reads every field and checks `failed()` once. Optional fields that are absent or null
// are "not given" (JS clients often send `null` for an unset option). Unknown fields are ignored
// so that older readers accept newer writers.
class ObjectReader {
public:
    // `path` is the object's own path ("" for a request body) and prefixes every field name.
    ObjectReader(const Json& j, std::string_view path) : j_(j), path_(path) {
        if (!j.is_object()) {
            fail(path_.empty() ? std::string("body must be a JSON object")
                               : path_ + " must be an object");
        }
    }

    bool failed() const { return error_.has_value(); }
    Error take_error() { return std::move(*error_); }

    std::string path(std::string_view key) const {
        if (path_.empty()) return std::string(key);
        std::string p = path_;
        p += '.';
        p += key;
        return p;
    }

    // The value of `key`: nullptr if absent or null; an error first if it is required.
    const Json* field(std::string_view key, bool required) {
        if (failed()) return nullptr;
        const auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) {
            if (required) fail(path(key) + " is required");
            return nullptr;
        }
        return &*it;
    }

    // Present (possibly null) JSON value, or null when absent: for free-form payloads.
    Json any(std::string_view key) {
        if (failed()) return Json();
        const auto it = j_.find(key);
        return it == j_.end() ? Json() : *it;
    }

    std::optional<std::string> opt_string(std::string_view key, bool required, bool non_empty) {
        const Json* v = field(key, required);
        if (v == nullptr) return std::nullopt;
        const auto* s = v->get_ptr<const Json::string_t*>();
        if (s == nullptr) {
            fail(path(key) + " must be a string");
            return std::nullopt;
        }
        if (non_empty && s->empty()) {
            fail(path(key) + " must not be empty");
            return std::nullopt;
        }
        return *s;
    }
    std::string req_string(std::string_view key, bool non_empty = false) {
        return opt_string(key, true, non_empty).value_or(std::string());
    }

    std::optional<std::int64_t> opt_int(std::string_view key, bool required, std::int64_t min,
                                        std::int64_t max) {
        const Json* v = field(key, required);
        if (v == nullptr) return std::nullopt;
        const auto i = as_int64(*v);
        if (!i || *i < min || *i > max) {
            fail(path(key) + " must be an integer between " + std::to_string(min) + " and " +
                 std::to_string(max));
            return std::nullopt;
        }
        return i;
    }
    // Timestamps and counts: non-negative 64-bit integers.
    std::int64_t req_count(std::string_view key) {
        return opt_int(key, true, 0, std::numeric_limits<std::int64_t>::max()).value_or(0);
    }

    bool opt_bool(std::string_view key, bool fallback) {
        const Json* v = field(key, false);
        if (v == nullptr) return fallback;
        const auto* b = v->get_ptr<const Json::boolean_t*>();
        if (b == nullptr) {
            fail(path(key) + " must be a boolean");
            return fallback;
        }
        return *b;
    }

    const Json* array(std::string_view key, bool required) {
        const Json* v = field(key, required);
        if (v != nullptr && !v->is_array()) {
            fail(path(key) + " must be an array");
            return nullptr;
        }
        return v;
    }

    // An object-valued field; absent or null gives {}.
    Json object_or_empty(std::string_view key) {
        const Json* v = field(key, false);
        if (v == nullptr) return Json::object();
        if (!v->is_object()) {
            fail(path(key) + " must be an object");
            return Json::object();
        }
        return *v;
    }

    template <typename E, std::size_t N>
    std::optional<E> opt_enum(std::string_view key, bool required,
                              const char* const (&names)[N]) {
        const Json* v = field(key, required);
        if (v == nullptr) return std::nullopt;
        const auto* s = v->get_ptr<const Json::string_t*>();
        std::optional<E> e = s ? lookup<E>(names, *s) : std::nullopt;
        if (!e) fail(path(key) + " must be one of " + one_of(names));
        return e;
    }
    template <typename E, std::size_t N>
    E req_enum(std::string_view key, const char* const (&names)[N], E fallback) {
        return opt_enum<E>(key, true, names).value_or(fallback);
    }

    void fail(std::string message) {
        if (!failed()) error_ = invalid(std::move(message));
    }
    void fail(Error e) {
        if (!failed()) error_ = std::move(e);
    }

private:
    const Json& j_;
    std::string path_;
    std::optional<Error> error_;
};

std::optional<ExecutionStatus> terminal_status(ObjectReader& r, bool required) {
    const Json* v = r.field("status", required);
    if (v == nullptr) return std::nullopt;
    const auto* s = v->get_ptr<const Json::string_t*>();
    auto status = s ? lookup<ExecutionStatus>(kExecutionStatusNames, *s) : std::nullopt;
    if (!status || !is_terminal(*status)) {
        r.fail("status must be one of " + one_of(kTerminalStatusNames));
        return std::nullopt;
    }
    return status;
}

// ---- parse_json helpers ----

// Nesting depth of brackets outside strings, stopping as soon as it passes `max_depth`. Runs
// before the parser so that hostile input costs one linear scan and no allocation.
bool deeper_than(std::string_view text, int max_depth) {
    int depth = 0;
    const std::size_t n = text.size();
    for (std::size_t i = 0; i < n; ++i) {
        const char c = text[i];
        if (c == '"') {
            // Skip the string; a backslash escapes the next byte (covers \" and \\).
            for (++i; i < n && text[i] != '"'; ++i) {
                if (text[i] == '\\') ++i;
            }
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) return true;
        } else if (c == ']' || c == '}') {
            // An unmatched closer is a syntax error the parser stops at before going deeper.
            if (depth == 0) return false;
            --depth;
        }
    }
    return false;
}

// Records where and why the parser gave up; used only after a failed parse, to explain it.
class ErrorSax final : public nlohmann::json_sax<Json> {
public:
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t position, const std::string&,
                     const nlohmann::detail::exception& ex) override {
        failed = true;
        this->position = position;
        what = ex.what();
        return false;
    }

    bool failed = false;
    std::size_t position = 0;
    std::string what;
};

// nlohmann's message without its "[json.exception...] parse error at line 1, column 5: " prefix,
// with bytes outside printable ASCII shown as \xNN (the last-read token may be invalid UTF-8).
std::string describe_parse_error(const std::string& what) {
    std::string_view w = what;
    if (!w.empty() && w.front() == '[') {
        const auto end = w.find("] ");
        if (end != std::string_view::npos) w.remove_prefix(end + 2);
    }
    if (w.substr(0, 11) == "parse error") {
        const auto colon = w.find(": ");
        if (colon != std::string_view::npos) w.remove_prefix(colon + 2);
    }
    std::string out;
    out.reserve(w.size());
    for (const char c : w) {
        const auto b = static_cast<unsigned char>(c);
        if (b < 0x20 || b >= 0x7F) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", b);
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

void put_optional(Json& j, const char* key, const std::optional<std::string>& v) {
    if (v) j[key] = *v;
}

}  // namespace

// ---- text ----

Result<Json> parse_json(std::string_view text, const ParseLimits& limits) {
    if (text.size() > limits.max_bytes) {
        return make_error("too_large", "JSON text is " + std::to_string(text.size()) +
                                           " bytes; the limit is " +
                                           std::to_string(limits.max_bytes));
    }
    if (deeper_than(text, limits.max_depth)) {
        return make_error("too_deep", "JSON nesting is deeper than " +
                                          std::to_string(limits.max_depth) + " levels");
    }
    // nlohmann's lexer takes a NUL byte for the end of input, so "{}\0garbage" would pass. A raw
    // NUL is never valid JSON (inside a string it must be escaped as \u0000).
    if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
        return make_error("invalid_json",
                          "invalid JSON at byte " + std::to_string(nul) + ": NUL byte");
    }
    static constexpr char kEmpty[1] = {};
    const char* first = text.empty() ? kEmpty : text.data();
    const char* last = first + text.size();
    Json j = Json::parse(first, last, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) return j;

    ErrorSax sax;
    Json::sax_parse(first, last, &sax);
    if (!sax.failed) return make_error("invalid_json", "invalid JSON");
    // nlohmann counts bytes read including the offending one (or the end of input).
    std::size_t byte = sax.position > 0 ? sax.position - 1 : 0;
    if (byte > text.size()) byte = text.size();
    return make_error("invalid_json", "invalid JSON at byte " + std::to_string(byte) + ": " +
                                          describe_parse_error(sax.what));
}

std::string dump(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// ---- enums ----

const char* to_string(ExecutionStatus s) noexcept { return name_of(kExecutionStatusNames, s); }

Result<ExecutionStatus> parse_execution_status(std::string_view s) {
    if (auto v = lookup<ExecutionStatus>(kExecutionStatusNames, s)) return *v;
    return invalid("status must be one of " + one_of(kExecutionStatusNames));
}

bool is_terminal(ExecutionStatus s) noexcept {
    return s == ExecutionStatus::success || s == ExecutionStatus::error ||
           s == ExecutionStatus::cancelled;
}

const char* to_string(AppType t) noexcept { return name_of(kAppTypeNames, t); }

Result<AppType> parse_app_type(std::string_view s) {
    if (auto v = lookup<AppType>(kAppTypeNames, s)) return *v;
    return invalid("app type must be one of " + one_of(kAppTypeNames));
}

const char* to_string(InputType t) noexcept { return name_of(kInputTypeNames, t); }

Result<InputType> parse_input_type(std::string_view s) {
    if (auto v = lookup<InputType>(kInputTypeNames, s)) return *v;
    return invalid("input type must be one of " + one_of(kInputTypeNames));
}

const char* to_string(Role r) noexcept { return name_of(kRoleNames, r); }

Result<Role> parse_role(std::string_view s) {
    if (auto v = lookup<Role>(kRoleNames, s)) return *v;
    return invalid("role must be one of " + one_of(kRoleNames));
}

// ---- errors ----

Json encode(const ApiError& e) { return Json{{"error", e.error}, {"code", e.code}}; }

Result<ApiError> decode_api_error(const Json& j) {
    ObjectReader r(j, "");
    ApiError e;
    e.error = r.req_string("error");
    e.code = r.req_string("code", true);
    if (r.failed()) return r.take_error();
    return e;
}

// ---- identity ----

const std::string* reply_text_of(std::string_view type, const Json& data) noexcept {
    const char* key = type == "delta" ? "content" : type == "agent-response" ? "token" : nullptr;
    if (key == nullptr || !data.is_object()) return nullptr;
    auto it = data.find(key);
    return it != data.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

Result<FeedbackRequest> decode_feedback_request(const Json& j) {
    if (!j.is_object()) return invalid("body must be a JSON object");
    for (const auto& item : j.items()) {
        if (item.key() != "rating" && item.key() != "comment") {
            return invalid(item.key() + " is not a known field (rating, comment)");
        }
    }
    FeedbackRequest out;
    auto rating = j.find("rating");
    if (rating == j.end() || !rating->is_string() ||
        (rating->get_ref<const std::string&>() != "up" && rating->get_ref<const std::string&>() != "down")) {
        return invalid(R"(rating: must be "up" or "down")");
    }
    out.rating = rating->get<std::string>();
    if (auto comment = j.find("comment"); comment != j.end() && !comment->is_null()) {
        if (!comment->is_string()) return invalid("comment: must be a string");
        out.comment = comment->get<std::string>();
        std::size_t chars = 0;
        for (const char ch : out.comment) chars += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
        if (chars > 2000) return invalid("comment: must be at most 2000 characters");
    }
    return out;
}

Json encode(const Feedback& f, bool with_owner) {
    Json j{{"executionId", f.execution_id}, {"rating", f.rating}, {"comment", f.comment},
           {"createdAt", f.created_at}, {"updatedAt", f.updated_at}};
    if (with_owner) {
        j["appId"] = f.app_id;
        j["userId"] = f.user_id;
    }
    return j;
}

Result<IdentityRequest> decode_identity_request(const Json& j) {
    constexpr std::size_t kMaxUserId = 256;
    ObjectReader r(j, "");
    IdentityRequest out;
    out.user_id = r.req_string("userId", true);
    if (!r.failed()) {
        if (out.user_id.size() > kMaxUserId) {
            r.fail("userId must be at most 256 bytes");
        } else if (auto st = check_user_id(out.user_id); !st) {
            r.fail(st.error().message);  // every signer's wording
        } else if (!is_valid_utf8(out.user_id)) {  // only a Json built in code can hold this
            r.fail("userId must be valid UTF-8");
        }
    }
    out.ttl_seconds = r.opt_int("ttlSeconds", false, 1, 31536000);
    if (r.failed()) return r.take_error();
    return out;
}

Json encode(const IdentityRequest& r) {
    Json j = Json::object();
    j["userId"] = r.user_id;
    if (r.ttl_seconds) j["ttlSeconds"] = *r.ttl_seconds;
    return j;
}

Json encode(const IdentityResponse& r) {
    Json j = Json::object();
    j["workspaceId"] = r.workspace_id;
    j["userId"] = r.user_id;
    j["hashedUserId"] = r.hashed_user_id;
    if (r.expires_at) j["expiresAt"] = *r.expires_at;
    return j;
}

Result<IdentityResponse> decode_identity_response(const Json& j) {
    ObjectReader r(j, "");
    IdentityResponse out;
    out.workspace_id = r.req_string("workspaceId", true);
    out.user_id = r.req_string("userId", true);
    out.hashed_user_id = r.req_string("hashedUserId", true);
    out.expires_at =
        r.opt_int("expiresAt", false, 0, std::numeric_limits<std::int64_t>::max());
    if (r.failed()) return r.take_error();
    return out;
}

// ---- apps ----

namespace {
Json encode_input_spec(const InputSpec& s) {
    Json j = Json::object();
    j["name"] = s.name;
    j["type"] = to_string(s.type);
    j["required"] = s.required;
    if (!s.description.empty()) j["description"] = s.description;
    return j;
}
}  // namespace

Json encode(const AppInfo& a) {
    Json j = Json::object();
    j["id"] = a.id;
    j["name"] = a.name;
    j["type"] = to_string(a.type);
    j["version"] = a.version;
    j["versions"] = a.versions;
    Json inputs = Json::array();
    for (const auto& s : a.inputs) inputs.push_back(encode_input_spec(s));
    j["inputs"] = std::move(inputs);
    j["public"] = a.is_public;
    j["starters"] = a.starters;
    j["imageHosts"] = a.image_hosts;
    if (!a.avatar_url.empty()) j["avatarUrl"] = a.avatar_url;
    return j;
}

Result<InputSpec> decode_input_spec(const Json& j, std::string_view path) {
    ObjectReader r(j, path);
    InputSpec s;
    s.name = r.req_string("name", true);
    s.type = r.opt_enum<InputType>("type", false, kInputTypeNames).value_or(InputType::string);
    s.required = r.opt_bool("required", true);
    s.description = r.opt_string("description", false, false).value_or(std::string());
    if (r.failed()) return r.take_error();
    return s;
}

Result<AppInfo> decode_app_info(const Json& j) {
    ObjectReader r(j, "");
    AppInfo a;
    a.id = r.req_string("id", true);
    a.name = r.req_string("name");
    a.type = r.req_enum("type", kAppTypeNames, AppType::template_);
    a.version = r.opt_string("version", false, false).value_or(std::string());
    if (const Json* versions = r.array("versions", false)) {
        for (std::size_t i = 0; i < versions->size() && !r.failed(); ++i) {
            const auto* s = (*versions)[i].get_ptr<const Json::string_t*>();
            if (s == nullptr) {
                r.fail("versions[" + std::to_string(i) + "] must be a string");
            } else {
                a.versions.push_back(*s);
            }
        }
    }
    if (const Json* inputs = r.array("inputs", false)) {
        for (std::size_t i = 0; i < inputs->size() && !r.failed(); ++i) {
            auto spec = decode_input_spec((*inputs)[i], "inputs[" + std::to_string(i) + "]");
            if (!spec) {
                r.fail(spec.error());
            } else {
                a.inputs.push_back(std::move(*spec));
            }
        }
    }
    a.is_public = r.opt_bool("public", false);
    for (auto [key, out] : {std::pair{"starters", &a.starters}, std::pair{"imageHosts", &a.image_hosts}}) {
        const Json* list = r.array(key, false);
        for (std::size_t i = 0; list != nullptr && i < list->size() && !r.failed(); ++i) {
            const auto* s = (*list)[i].get_ptr<const Json::string_t*>();
            if (s == nullptr) {
                r.fail(std::string(key) + "[" + std::to_string(i) + "] must be a string");
            } else {
                out->push_back(*s);
            }
        }
    }
    a.avatar_url = r.opt_string("avatarUrl", false, false).value_or(std::string());
    if (r.failed()) return r.take_error();
    return a;
}

Status validate_inputs(const std::vector<InputSpec>& specs, const Json& inputs,
                       bool allow_unknown) {
    if (!inputs.is_object()) return invalid("inputs must be an object");
    // Unknown names first: a misspelt name then reads "inputs.topc is not an input" rather than
    // the less helpful "inputs.topic is required".
    if (!allow_unknown) {
        for (const auto& item : inputs.items()) {
            bool known = false;
            for (const auto& s : specs) known = known || s.name == item.key();
            if (known) continue;
            std::string msg = "inputs." + printable_key(item.key()) + " is not an input of this app";
            if (specs.empty()) {
                msg += " (it takes no inputs)";
            } else {
                msg += " (known: ";
                for (std::size_t i = 0; i < specs.size(); ++i) {
                    if (i != 0) msg += ", ";
                    msg += specs[i].name;
                }
                msg += ")";
            }
            return invalid(std::move(msg));
        }
    }
    for (const auto& s : specs) {
        const auto it = inputs.find(s.name);
        if (it == inputs.end() || it->is_null()) {
            if (s.required) return invalid("inputs." + s.name + " is required");
            continue;
        }
        const Json& v = *it;
        const char* want = nullptr;
        switch (s.type) {
            case InputType::string: if (!v.is_string()) want = "a string"; break;
            case InputType::number: if (!v.is_number()) want = "a number"; break;
            case InputType::integer: if (!is_integral(v)) want = "an integer"; break;
            case InputType::boolean: if (!v.is_boolean()) want = "a boolean"; break;
            case InputType::object: if (!v.is_object()) want = "an object"; break;
            case InputType::array: if (!v.is_array()) want = "an array"; break;
            case InputType::any: break;
        }
        if (want != nullptr) return invalid("inputs." + s.name + " must be " + want);
    }
    return Ok{};
}

// ---- executions ----

Result<ExecuteRequest> decode_execute_request(const Json& j) {
    ObjectReader r(j, "");
    ExecuteRequest out;
    out.version = r.opt_string("version", false, true);
    out.inputs = r.object_or_empty("inputs");
    if (r.failed()) return r.take_error();
    return out;
}

Json encode(const ExecuteRequest& r) {
    Json j = Json::object();
    put_optional(j, "version", r.version);
    j["inputs"] = r.inputs;
    return j;
}

Json encode(const Execution& e) {
    Json j = Json::object();
    j["id"] = e.id;
    j["appId"] = e.app_id;
    j["version"] = e.version;
    j["status"] = to_string(e.status);
    j["inputs"] = e.inputs;
    j["output"] = e.output;  // always present: null until there is output
    put_optional(j, "error", e.error);
    put_optional(j, "sessionId", e.session_id);
    j["createdAt"] = e.created_at;
    j["updatedAt"] = e.updated_at;
    return j;
}

Result<Execution> decode_execution(const Json& j) {
    ObjectReader r(j, "");
    Execution e;
    e.id = r.req_string("id", true);
    e.app_id = r.req_string("appId", true);
    e.version = r.req_string("version");
    e.status = r.req_enum("status", kExecutionStatusNames, ExecutionStatus::queued);
    e.inputs = r.object_or_empty("inputs");
    e.output = r.any("output");
    e.error = r.opt_string("error", false, false);
    e.session_id = r.opt_string("sessionId", false, true);
    e.created_at = r.req_count("createdAt");
    e.updated_at = r.req_count("updatedAt");
    if (r.failed()) return r.take_error();
    return e;
}

Json encode(const ExecutionCreated& e) {
    return Json{{"executionId", e.execution_id}, {"status", to_string(e.status)}};
}

Result<ExecutionCreated> decode_execution_created(const Json& j) {
    ObjectReader r(j, "");
    ExecutionCreated e;
    e.execution_id = r.req_string("executionId", true);
    e.status = r.req_enum("status", kExecutionStatusNames, ExecutionStatus::queued);
    if (r.failed()) return r.take_error();
    return e;
}

// ---- chat ----

Result<ChatRequest> decode_chat_request(const Json& j) {
    ObjectReader r(j, "");
    ChatRequest out;
    out.regenerate = r.opt_bool("regenerate", false);
    out.edit_last = r.opt_bool("editLast", false);
    if (out.regenerate) {
        // The message to re-run is the session's; one sent along is ignored (but must be text).
        out.message = r.opt_string("message", false, false).value_or(std::string());
    } else {
        out.message = r.req_string("message", true);
    }
    out.session_id = r.opt_string("sessionId", false, true);
    out.inputs = r.object_or_empty("inputs");
    if (r.failed()) return r.take_error();
    if (out.regenerate && out.edit_last) return invalid("regenerate and editLast cannot both be true");
    if ((out.regenerate || out.edit_last) && !out.session_id) {
        return invalid(std::string("sessionId is required with ") + (out.regenerate ? "regenerate" : "editLast"));
    }
    return out;
}

Json encode(const ChatRequest& r) {
    Json j = Json::object();
    j["message"] = r.message;
    put_optional(j, "sessionId", r.session_id);
    // `inputs` is optional on the wire; an empty object says nothing.
    if (!(r.inputs.is_object() && r.inputs.empty())) j["inputs"] = r.inputs;
    if (r.regenerate) j["regenerate"] = true;
    if (r.edit_last) j["editLast"] = true;
    return j;
}

Json encode(const Message& m) {
    Json j{{"role", to_string(m.role)}, {"content", m.content}, {"createdAt", m.created_at}};
    put_optional(j, "turnId", m.turn_id);
    put_optional(j, "executionId", m.execution_id);
    put_optional(j, "status", m.status);
    if (m.error_code || m.error_message) {
        j["error"] = Json{{"code", m.error_code.value_or("")}, {"message", m.error_message.value_or("")}};
    }
    return j;
}

Json encode(const Session& s, bool with_messages) {
    Json j = Json::object();
    j["id"] = s.id;
    j["appId"] = s.app_id;
    j["title"] = s.title;
    j["createdAt"] = s.created_at;
    j["updatedAt"] = s.updated_at;
    j["messageCount"] = s.message_count;
    if (with_messages) {
        Json messages = Json::array();
        for (const auto& m : s.messages) messages.push_back(encode(m));
        j["messages"] = std::move(messages);
    }
    return j;
}

Result<Message> decode_message(const Json& j, std::string_view path) {
    ObjectReader r(j, path);
    Message m;
    m.role = r.req_enum("role", kRoleNames, Role::user);
    m.content = r.req_string("content");
    m.created_at = r.opt_int("createdAt", false, 0, std::numeric_limits<std::int64_t>::max())
                       .value_or(0);
    m.turn_id = r.opt_string("turnId", false, true);
    m.execution_id = r.opt_string("executionId", false, true);
    m.status = r.opt_string("status", false, true);
    if (const Json* err = r.field("error", false); err != nullptr) {
        ObjectReader er(*err, r.path("error"));
        m.error_code = er.req_string("code");
        m.error_message = er.req_string("message");
        if (er.failed()) r.fail(er.take_error());
    }
    if (r.failed()) return r.take_error();
    if (m.status && *m.status != "success" && *m.status != "error" && *m.status != "cancelled" &&
        *m.status != "interrupted") {
        return invalid(r.path("status") + " must be one of success, error, cancelled, interrupted");
    }
    return m;
}

Result<Session> decode_session(const Json& j) {
    ObjectReader r(j, "");
    Session s;
    s.id = r.req_string("id", true);
    s.app_id = r.req_string("appId", true);
    s.title = r.req_string("title");
    s.created_at = r.req_count("createdAt");
    s.updated_at = r.req_count("updatedAt");
    s.message_count = r.req_count("messageCount");
    if (const Json* messages = r.array("messages", false)) {
        for (std::size_t i = 0; i < messages->size() && !r.failed(); ++i) {
            auto m = decode_message((*messages)[i], "messages[" + std::to_string(i) + "]");
            if (!m) {
                r.fail(m.error());
            } else {
                s.messages.push_back(std::move(*m));
            }
        }
    }
    if (r.failed()) return r.take_error();
    return s;
}

// ---- stream events ----

Json encode(const Delta& e) { return Json{{"content", e.content}}; }

Json encode(const ExecutionCompleted& e) {
    Json j = Json::object();
    j["status"] = to_string(e.status);
    j["output"] = e.output;
    put_optional(j, "error", e.error);
    return j;
}

Json encode(const AgentResponse& e) { return Json{{"token", e.token}}; }

Json encode(const AgentAction& e) {
    Json j = Json::object();
    j["tool"] = e.tool;
    j["tool_input"] = e.tool_input;
    return j;
}

Json encode(const AgentActionError& e) { return Json{{"error", e.error}}; }

Json encode(const ChatCompleted& e) {
    Json j = Json::object();
    j["result"] = e.result;
    j["sessionId"] = e.session_id;
    j["status"] = to_string(e.status);
    return j;
}

Result<Delta> decode_delta(const Json& j) {
    ObjectReader r(j, "");
    Delta d;
    d.content = r.req_string("content");
    if (r.failed()) return r.take_error();
    return d;
}

Result<ExecutionCompleted> decode_execution_completed(const Json& j) {
    ObjectReader r(j, "");
    ExecutionCompleted e;
    e.status = terminal_status(r, true).value_or(ExecutionStatus::success);
    e.output = r.any("output");
    e.error = r.opt_string("error", false, false);
    if (r.failed()) return r.take_error();
    return e;
}

Result<AgentResponse> decode_agent_response(const Json& j) {
    ObjectReader r(j, "");
    AgentResponse a;
    a.token = r.req_string("token");
    if (r.failed()) return r.take_error();
    return a;
}

Result<AgentAction> decode_agent_action(const Json& j) {
    ObjectReader r(j, "");
    AgentAction a;
    a.tool = r.req_string("tool", true);
    a.tool_input = r.any("tool_input");
    if (r.failed()) return r.take_error();
    return a;
}

Result<AgentActionError> decode_agent_action_error(const Json& j) {
    ObjectReader r(j, "");
    AgentActionError a;
    a.error = r.req_string("error");
    if (r.failed()) return r.take_error();
    return a;
}

Result<ChatCompleted> decode_chat_completed(const Json& j) {
    ObjectReader r(j, "");
    ChatCompleted c;
    c.result = r.req_string("result");
    c.session_id = r.req_string("sessionId", true);
    // `status` is optional on the wire (the reference SDK sends none): absent means success.
    c.status = terminal_status(r, false).value_or(ExecutionStatus::success);
    if (r.failed()) return r.take_error();
    return c;
}

}  // namespace confab::protocol
