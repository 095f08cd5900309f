// The direct JSON writers (confab/json_write.hpp) against what they replace: dump of the
// nlohmann object encode builds, byte for byte, on tricky strings (escapes, every control
// character, DEL, valid and invalid UTF-8) and on random bytes. Natively and as wasm.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "confab/json_write.hpp"
#include "json_test_strings.hpp"

namespace confab::protocol {
namespace {

using confab::test_data::tricky_strings;

TEST(JsonWrite, StringsAreEscapedAsNlohmannDumpsThem) {
    for (const auto& s : tricky_strings()) {
        std::string mine;
        append_json_string(mine, s);
        EXPECT_EQ(mine, protocol::dump(Json(s))) << "input bytes: " << testing::PrintToString(s);
    }
}

TEST(JsonWrite, IntegersAsNlohmann) {
    for (std::int64_t v : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1733300000000}, INT64_MIN, INT64_MAX}) {
        std::string mine;
        append_json_int(mine, v);
        EXPECT_EQ(mine, protocol::dump(Json(v)));
    }
}

TEST(JsonWrite, IdentityAsEncode) {
    const auto strings = tricky_strings();
    for (std::size_t k = 0; k < 200; ++k) {
        IdentityResponse r;
        r.workspace_id = strings[k % strings.size()];
        r.user_id = strings[(k * 7 + 3) % strings.size()];
        r.hashed_user_id = strings[(k * 13 + 5) % strings.size()];
        if (k % 2) r.expires_at = 1733300000 + static_cast<std::int64_t>(k);
        EXPECT_EQ(identity_json(r), dump(encode(r)));
    }
}

TEST(JsonWrite, ErrorAsEncodeOfApiError) {
    const auto strings = tricky_strings();
    for (std::size_t k = 0; k < strings.size(); ++k) {
        const std::string& code = strings[(k * 31 + 7) % strings.size()];
        const std::string& message = strings[k];
        EXPECT_EQ(error_json(code, message), dump(encode(ApiError{message, code})));
    }
}

}  // namespace
}  // namespace confab::protocol
