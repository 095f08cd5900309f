// JSON bodies written straight into a string for the per-request responses (an execution, an
// identity, an error), instead of building an nlohmann object only to dump it: the same bytes as
// protocol::dump(protocol::encode(...)) (keys in nlohmann's sorted order, its escaping), checked
// against it in tests/server/json_out_test.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "confab/protocol.hpp"
#include "store.hpp"

namespace confab::server {

// Appends `s` as a JSON string, exactly as protocol::dump writes one: `"` and `\` escaped, \b \f
// \n \r \t, other control characters as \u00xx, everything else as is. A string with any byte
// >= 0x80 goes through nlohmann (its UTF-8 check and replacement of invalid bytes).
void append_json_string(std::string& out, std::string_view s);
void append_json_int(std::string& out, std::int64_t v);

// protocol::dump(protocol::encode(x)) (of to_wire(r) for a stored execution), without the
// nlohmann object (nor to_wire's copies of the inputs and output).
std::string execution_json(const ExecutionRecord& e);
std::string identity_json(const protocol::IdentityResponse& r);
std::string error_json(std::string_view code, std::string_view message);

}  // namespace confab::server
