// Shared by the fuzz harnesses: a failed property aborts with a message (libFuzzer and the replay
// driver both report an abort as a crash), and a tiny reader of the input's leading control bytes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#define FUZZ_CHECK(cond, what)                                                              \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            std::fprintf(stderr, "fuzz property failed at %s:%d: %s\n  (%s)\n", __FILE__,   \
                         __LINE__, (what), #cond);                                          \
            std::abort();                                                                   \
        }                                                                                   \
    } while (0)

namespace confab::fuzz {

// Reads control bytes from the front of the input; what is left is the payload.
class Input {
public:
    Input(const std::uint8_t* data, std::size_t size)
        : bytes_(reinterpret_cast<const char*>(data), size) {}

    std::uint8_t byte() {
        if (bytes_.empty()) return 0;
        auto b = static_cast<std::uint8_t>(bytes_.front());
        bytes_.remove_prefix(1);
        return b;
    }
    std::string_view rest() const { return bytes_; }

    // Cut points (sorted, within 0..size of what is left after them) for splitting the payload
    // into chunks: up to 15 of them, chosen by the control bytes.
    std::vector<std::size_t> cuts() {
        std::vector<std::size_t> out;
        const int n = byte() % 16;
        for (int i = 0; i < n; ++i) {
            std::size_t hi = byte(), lo = byte();
            out.push_back((hi << 8) | lo);
        }
        for (auto& c : out) c %= bytes_.size() + 1;  // the payload is what is left now
        std::sort(out.begin(), out.end());
        return out;
    }

private:
    std::string_view bytes_;
};

// The chunks of `s` between the cut points (empty chunks included: feeding nothing must be harmless).
inline std::vector<std::string_view> split_at(std::string_view s, const std::vector<std::size_t>& cuts) {
    std::vector<std::string_view> out;
    std::size_t prev = 0;
    for (auto c : cuts) {
        out.push_back(s.substr(prev, c - prev));
        prev = c;
    }
    out.push_back(s.substr(prev));
    return out;
}

}  // namespace confab::fuzz
