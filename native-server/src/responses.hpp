// JSON responses shared by the route files (api.cpp, workflows.cpp): one body encoding, one error shape.
#pragma once

#include <string>
#include <utility>

#include "confab/protocol.hpp"
#include "http_types.hpp"

namespace confab::server {

inline Response json_response(int status, const protocol::Json& j) {
    Response r;
    r.status = status;
    r.body = protocol::dump(j);
    return r;
}

inline Response error_response(int status, std::string code, std::string message) {
    return json_response(status, protocol::encode(protocol::ApiError{std::move(message), std::move(code)}));
}

}  // namespace confab::server
