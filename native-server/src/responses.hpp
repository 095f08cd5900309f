// JSON responses shared by the route files (api.cpp, workflows.cpp): one body encoding, one error
// shape, one wire form of a stored execution.
#pragma once

#include <string>
#include <utility>

#include "confab/protocol.hpp"
#include "http_types.hpp"
#include "json_out.hpp"
#include "store.hpp"

namespace confab::server {

inline Response json_response(int status, const protocol::Json& j) {
    Response r;
    r.status = status;
    r.body = protocol::dump(j);
    return r;
}

// The body protocol::encode(ApiError) dumps to, written directly (json_out.hpp).
inline Response error_response(int status, std::string code, std::string message) {
    Response r;
    r.status = status;
    r.body = protocol::error_json(code, message);
    return r;
}

inline protocol::Execution to_wire(const ExecutionRecord& r) {
    protocol::Execution e;
    e.id = r.id;
    e.app_id = r.app_id;
    e.version = r.version;
    e.status = r.status;
    e.inputs = r.inputs;
    e.output = r.output;
    e.error = r.error;
    e.session_id = r.session_id;
    e.created_at = r.created_at;
    e.updated_at = r.updated_at;
    return e;
}

inline protocol::Session to_wire(const SessionRecord& s) {
    protocol::Session w;
    w.id = s.id;
    w.app_id = s.app_id;
    w.title = s.title;
    w.created_at = s.created_at;
    w.updated_at = s.updated_at;
    w.message_count = s.message_count;
    return w;
}

inline protocol::Feedback to_wire(const FeedbackRecord& r) {
    protocol::Feedback f;
    f.execution_id = r.execution_id;
    f.app_id = r.app_id;
    f.user_id = r.user_id;
    f.rating = r.rating;
    f.comment = r.comment;
    f.created_at = r.created_at;
    f.updated_at = r.updated_at;
    return f;
}

}  // namespace confab::server
