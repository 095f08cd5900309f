// The SDK's user-hash export (Confab.userHash): HMAC-SHA256 of a user id, as a plain C export.
//
// Its own file so that only confab_sdk_wasm links it (and core/src/identity.cpp's SHA-256): the
// widget's module never signs (its page's backend does), and the hash code cost it ~3 KB gzip.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <emscripten/emscripten.h>

#include "confab/identity.hpp"

namespace {

// The buffer JS fills with secret then user id, and reads the answer from; the SDK is single-threaded.
std::string& scratch() {
    static std::string s;
    return s;
}

}  // namespace

extern "C" {

// Writes lowercase hex HMAC-SHA256(key = secret, message = user_id) to the scratch buffer and
// returns it (NUL-terminated), or "!" + why the user id is refused. Both inputs are read from one buffer JS filled: secret then user id.
EMSCRIPTEN_KEEPALIVE char* confab_scratch(std::uint32_t len) {
    auto& s = scratch();
    if (s.size() < len) s.resize(len);
    return s.data();
}
EMSCRIPTEN_KEEPALIVE const char* confab_user_hash(std::uint32_t secret_len, std::uint32_t user_len) {
    auto& s = scratch();
    const std::string_view user(s.data() + secret_len, user_len);
    // A refused id comes back as "!" + the message every signer gives (64 hex chars otherwise).
    auto signed_id = confab::sign_user_hash(std::string_view(s.data(), secret_len), user);
    std::string out = signed_id ? std::move(signed_id.value()) : "!" + signed_id.error().message;
    // Wipe the secret from the scratch buffer before the heap is reused.
    std::memset(s.data(), 0, s.size());
    s.assign(out);
    return s.c_str();
}

}  // extern "C"
