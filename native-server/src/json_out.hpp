// The body of a stored execution written directly (confab/json_write.hpp), without to_wire's
// copies of its inputs and output and the nlohmann object: the same bytes as
// protocol::dump(protocol::encode(to_wire(e))), checked in tests/server/json_out_test.cpp.
#pragma once

#include <string>

#include "confab/json_write.hpp"
#include "store.hpp"

namespace confab::server {

std::string execution_json(const ExecutionRecord& e);

}  // namespace confab::server
