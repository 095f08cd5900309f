// Fuzzes the server's config parser: arbitrary JSON text gives a config or an invalid_config error
// with a message; never a crash, an exception or a hang. A config that loads loads the same again.
#include <cstdint>
#include <string_view>

#include "config.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto r = confab::server::parse_config(text, "fuzz.json");
    if (!r.ok()) {
        FUZZ_CHECK(r.error().code == "invalid_config", "config errors are invalid_config");
        FUZZ_CHECK(!r.error().message.empty(), "config errors say what is wrong");
        return 0;
    }
    for (const auto& ws : r->workspaces) {
        FUZZ_CHECK(!ws.id.empty(), "a workspace has an id");
        FUZZ_CHECK(!ws.secrets.empty(), "a workspace has at least one secret");
        FUZZ_CHECK(r->find_workspace(ws.id) == &ws, "a workspace is found by its id");
    }
    auto again = confab::server::parse_config(text, "fuzz.json");
    FUZZ_CHECK(again.ok() && again->workspaces.size() == r->workspaces.size(), "parsing is deterministic");
    return 0;
}
