// See confab/json_write.hpp.
#include "confab/json_write.hpp"

#include <charconv>

namespace confab::protocol {

void append_json_string(std::string& out, std::string_view s) {
    for (unsigned char c : s) {
        if (c >= 0x80) {
            out += dump(Json(std::string(s)));
            return;
        }
    }
    static constexpr char kHex[] = "0123456789abcdef";
    out.reserve(out.size() + s.size() + 2);
    out += '"';
    std::size_t run = 0;  // start of the bytes not yet copied
    for (std::size_t i = 0; i < s.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: {
                const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
                out.append(esc, sizeof esc);
            }
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

void append_json_int(std::string& out, std::int64_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

namespace {

void append_name(std::string& out, std::string_view name, bool first) {
    if (!first) out += ',';
    out += '"';
    out += name;
    out += "\":";
}

}  // namespace

void append_json_member(std::string& out, std::string_view name, std::string_view value, bool first) {
    append_name(out, name, first);
    append_json_string(out, value);
}

void append_json_member(std::string& out, std::string_view name, std::int64_t value, bool first) {
    append_name(out, name, first);
    append_json_int(out, value);
}

std::string identity_json(const IdentityResponse& r) {
    std::string out;
    out.reserve(64 + r.workspace_id.size() + r.user_id.size() + r.hashed_user_id.size());
    out += '{';
    if (r.expires_at) append_json_member(out, "expiresAt", *r.expires_at, true);
    append_json_member(out, "hashedUserId", r.hashed_user_id, !r.expires_at);
    append_json_member(out, "userId", r.user_id);
    append_json_member(out, "workspaceId", r.workspace_id);
    out += '}';
    return out;
}

std::string error_json(std::string_view code, std::string_view message) {
    std::string out;
    out.reserve(24 + code.size() + message.size());
    out += '{';
    append_json_member(out, "code", code, true);
    append_json_member(out, "error", message);
    out += '}';
    return out;
}

}  // namespace confab::protocol
