// Strings that stress a JSON string writer: every control character, quotes and backslashes,
// valid and invalid UTF-8, a NUL inside, and 2,000 random strings over those cases. Shared by the
// core's writer test (json_write_test.cpp, native and wasm) and the server's (json_out_test.cpp).
#pragma once

#include <random>
#include <string>
#include <vector>

namespace confab::test_data {

inline std::vector<std::string> tricky_strings() {
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

}  // namespace confab::test_data
