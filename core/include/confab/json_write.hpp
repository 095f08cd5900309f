// JSON written straight into a string, byte for byte as protocol::dump(protocol::encode(...))
// writes it (keys in nlohmann's sorted order, its escaping), for bodies built per request or per
// event where an nlohmann object would be built only to be dumped. Checked against dump/encode in
// tests/core/json_write_test.cpp, natively and as wasm.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "confab/protocol.hpp"

namespace confab::protocol {

// Appends `s` as a JSON string, exactly as dump writes one: `"` and `\` escaped, \b \f \n \r
// \t, other control characters as \u00xx, everything else as is. A string with any byte >= 0x80
// goes through nlohmann (its UTF-8 check and replacement of invalid bytes).
void append_json_string(std::string& out, std::string_view s);
void append_json_int(std::string& out, std::int64_t v);
// Appends `"name":` and the value; `first` omits the comma before it. `name` is written as is.
void append_json_member(std::string& out, std::string_view name, std::string_view value, bool first = false);
void append_json_member(std::string& out, std::string_view name, std::int64_t value, bool first = false);

// dump(encode(r)) and dump(encode(ApiError{message, code})), without the nlohmann object.
std::string identity_json(const IdentityResponse& r);
std::string error_json(std::string_view code, std::string_view message);

}  // namespace confab::protocol
