// See json_out.hpp.
#include "json_out.hpp"

namespace confab::server {

// Keys in the order nlohmann's std::map-backed objects dump them (byte-wise sorted), as
// protocol::encode(Execution) sets them (to_wire(ExecutionRecord) copies these fields).
std::string execution_json(const ExecutionRecord& e) {
    using protocol::append_json_member;
    std::string out;
    out.reserve(256);
    out += '{';
    append_json_member(out, "appId", e.app_id, true);
    append_json_member(out, "createdAt", e.created_at);
    if (e.error) append_json_member(out, "error", *e.error);
    append_json_member(out, "id", e.id);
    out += ",\"inputs\":";
    out += protocol::dump(e.inputs);
    out += ",\"output\":";
    out += protocol::dump(e.output);
    if (e.session_id) append_json_member(out, "sessionId", *e.session_id);
    append_json_member(out, "status", protocol::to_string(e.status));
    append_json_member(out, "updatedAt", e.updated_at);
    append_json_member(out, "version", e.version);
    out += '}';
    return out;
}

}  // namespace confab::server
