// The direct JSON writers (confab/json_write.hpp) against what they replace: dump of the
// nlohmann object encode builds, byte for byte, on tricky strings (escapes, every control
// character, DEL, valid and invalid UTF-8) and on random bytes. Natively and as wasm.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "confab/json_write.hpp"

namespace confab::protocol {
namespace {

std::vector<std::string> tricky_strings() {
    std::vector<std::string> out = {
        "", "plain", "ex_0123456789abcdef", "quote\"inside", "back\\slash", "\\\"", "slash/ok", "\x7f",
        "caf\xc3\xa9", "\xe2\x80\xa8 line separator", "emoji \xf0\x9f\x98\x80", "lone \xc3", "\xff\xfe",
        "trunc \xe2\x82", "overlong \xc0\xaf", "surrogate \xed\xa0\x80", "mixed \xc3\xa9\n\"\x01\xff",
        std::string("nul\0inside", 10),
    };
    for (int c = 0; c < 0x20; ++c) out.push_back(std::string("a") + static_cast<char>(c) + "b");
    std::string all;
    for (int c = 0; c < 0x80; ++c) all += static_cast<char>(c);
    out.push_back(all);
    // Random strings over an alphabet rich in the cases that matter.
    const std::string alphabet = std::string("aZ0 \"\\/\b\f\n\r\t\x01\x1f\x7f", 15) + "\xc3\xa9\x80\xff\xe2";
    std::mt19937 rng(13);
    for (int i = 0; i < 2000; ++i) {
        std::string s;
        const int n = static_cast<int>(rng() % 24);
        for (int j = 0; j < n; ++j) s += alphabet[rng() % alphabet.size()];
        out.push_back(std::move(s));
    }
    return out;
}

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
