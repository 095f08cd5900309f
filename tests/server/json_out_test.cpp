// The server's direct JSON bodies (json_out.hpp, responses.hpp) against what they replace: protocol::dump of the
// nlohmann object protocol::encode builds, byte for byte, on tricky strings (escapes, every
// control character, DEL, valid and invalid UTF-8) and on random bytes.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "json_out.hpp"
#include "../core/json_test_strings.hpp"
#include "responses.hpp"

namespace confab::server {
namespace {

using protocol::Json;

using confab::test_data::tricky_strings;

TEST(JsonOut, ExecutionAsEncodeOfToWire) {
    const auto strings = tricky_strings();
    std::vector<Json> outputs = {Json(), Json("Hello, bench!"), Json(3.25), Json(-7), Json(true),
                                 Json::parse(R"({"b":[1,2.5,"x\u0001"],"a":{"z":null,"\u00e9":"\u2028"}})")};
    std::size_t k = 0;
    for (auto status : {protocol::ExecutionStatus::queued, protocol::ExecutionStatus::running,
                        protocol::ExecutionStatus::success, protocol::ExecutionStatus::error,
                        protocol::ExecutionStatus::cancelled}) {
        for (int variant = 0; variant < 40; ++variant, ++k) {
            ExecutionRecord r;
            r.id = strings[k % strings.size()];
            r.app_id = strings[(k * 7 + 1) % strings.size()];
            r.version = strings[(k * 13 + 2) % strings.size()];
            r.workspace_id = strings[1];  // not in the body (a literal here trips a false g++ 12 -Wrestrict)
            r.user_id = strings[2];
            r.status = status;
            r.inputs = Json::object();
            r.inputs[strings[(k * 3) % strings.size()]] = strings[(k * 5) % strings.size()];
            r.inputs["n"] = static_cast<std::int64_t>(k);
            r.output = outputs[k % outputs.size()];
            if (variant % 2) r.error = strings[(k * 11) % strings.size()];
            if (variant % 3) r.session_id = strings[(k * 17) % strings.size()];
            r.created_at = 1733300000000 + static_cast<std::int64_t>(k);
            r.updated_at = variant == 5 ? -1 : r.created_at + 5;
            EXPECT_EQ(execution_json(r), protocol::dump(protocol::encode(to_wire(r))));
        }
    }
}

TEST(JsonOut, ErrorResponseIsEncodeOfApiError) {
    const auto strings = tricky_strings();
    for (std::size_t k = 0; k < strings.size(); ++k) {
        const std::string& code = strings[(k * 31 + 7) % strings.size()];
        EXPECT_EQ(error_response(400, code, strings[k]).body,
                  protocol::dump(protocol::encode(protocol::ApiError{strings[k], code})));
    }
}

}  // namespace
}  // namespace confab::server
