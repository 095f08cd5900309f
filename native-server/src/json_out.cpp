// Direct JSON writers for per-request responses: see json_out.hpp.
#include "json_out.hpp"

#include <charconv>

namespace confab::server {

void append_json_string(std::string& out, std::string_view s) {
    for (unsigned char c : s) {
        if (c >= 0x80) {
            out += protocol::dump(protocol::Json(std::string(s)));
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

// Keys in the order nlohmann's std::map-backed objects dump them (byte-wise sorted), as
// protocol::encode(Execution) sets them (to_wire(ExecutionRecord) copies these fields).
std::string execution_json(const ExecutionRecord& e) {
    std::string out;
    out.reserve(256);
    out += "{\"appId\":";
    append_json_string(out, e.app_id);
    out += ",\"createdAt\":";
    append_json_int(out, e.created_at);
    if (e.error) {
        out += ",\"error\":";
        append_json_string(out, *e.error);
    }
    out += ",\"id\":";
    append_json_string(out, e.id);
    out += ",\"inputs\":";
    out += protocol::dump(e.inputs);
    out += ",\"output\":";
    out += protocol::dump(e.output);
    if (e.session_id) {
        out += ",\"sessionId\":";
        append_json_string(out, *e.session_id);
    }
    out += ",\"status\":";
    append_json_string(out, protocol::to_string(e.status));
    out += ",\"updatedAt\":";
    append_json_int(out, e.updated_at);
    out += ",\"version\":";
    append_json_string(out, e.version);
    out += '}';
    return out;
}

std::string identity_json(const protocol::IdentityResponse& r) {
    std::string out;
    out.reserve(64 + r.workspace_id.size() + r.user_id.size() + r.hashed_user_id.size());
    out += '{';
    if (r.expires_at) {
        out += "\"expiresAt\":";
        append_json_int(out, *r.expires_at);
        out += ',';
    }
    out += "\"hashedUserId\":";
    append_json_string(out, r.hashed_user_id);
    out += ",\"userId\":";
    append_json_string(out, r.user_id);
    out += ",\"workspaceId\":";
    append_json_string(out, r.workspace_id);
    out += '}';
    return out;
}

std::string error_json(std::string_view code, std::string_view message) {
    std::string out;
    out.reserve(24 + code.size() + message.size());
    out += "{\"code\":";
    append_json_string(out, code);
    out += ",\"error\":";
    append_json_string(out, message);
    out += '}';
    return out;
}

}  // namespace confab::server
