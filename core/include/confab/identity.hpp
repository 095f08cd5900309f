// Identity: SHA-256, HMAC-SHA256, constant-time compare, user hashes and expiring identity tokens.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "confab/result.hpp"

namespace confab {

using Sha256Digest = std::array<std::uint8_t, 32>;

// Which compression implementation runs. `automatic` picks SHA-NI when the CPU has it (x86-64 only,
// checked once at run time) and the portable code otherwise (always in wasm).
enum class ShaBackend { automatic, portable, sha_ni };

// True when this build and CPU can run the SHA-NI path.
bool sha_ni_available() noexcept;

// The raw SHA-256 compression function over `block_count` whole 64-byte blocks (no padding, no
// length). Exposed so benchmarks can show the floor cost and tests can compare backends directly.
// Asking for sha_ni where it is unavailable runs the portable code (never an illegal instruction).
void sha256_compress(std::uint32_t state[8], const std::uint8_t* blocks, std::size_t block_count,
                     ShaBackend backend = ShaBackend::automatic) noexcept;

// Streaming SHA-256.
class Sha256 {
public:
    explicit Sha256(ShaBackend backend = ShaBackend::automatic) noexcept;
    void update(const void* data, std::size_t len) noexcept;
    void update(std::string_view s) noexcept { update(s.data(), s.size()); }
    Sha256Digest finish() noexcept;  // the object must be reset() before reuse
    void reset() noexcept;

private:
    friend class HmacSha256Key;
    std::uint32_t state_[8];
    std::uint8_t buf_[64];
    std::uint64_t total_len_ = 0;
    std::size_t buf_len_ = 0;
    ShaBackend backend_;
};

Sha256Digest sha256(std::string_view data, ShaBackend backend = ShaBackend::automatic) noexcept;

// A pre-keyed HMAC-SHA256: the inner and outer key midstates are computed once, so signing a
// message shorter than 56 bytes costs exactly two compression calls.
class HmacSha256Key {
public:
    explicit HmacSha256Key(std::string_view key, ShaBackend backend = ShaBackend::automatic) noexcept;
    Sha256Digest sign(std::string_view message) const noexcept;
    std::string sign_hex(std::string_view message) const;  // lowercase hex

private:
    std::uint32_t inner_[8];
    std::uint32_t outer_[8];
    ShaBackend backend_;
};

Sha256Digest hmac_sha256(std::string_view key, std::string_view message,
                         ShaBackend backend = ShaBackend::automatic) noexcept;

// Compares in time that depends only on the lengths, never on where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

std::string to_hex(const std::uint8_t* data, std::size_t len);
inline std::string to_hex(const Sha256Digest& d) { return to_hex(d.data(), d.size()); }

// Lowercase hex of HMAC-SHA256(key = secret, message = user_id). The reference SDK's convention.
// It signs any bytes: signers check the id with check_user_id() first.
std::string user_hash(std::string_view secret, std::string_view user_id);

// What a workspace secret MACs besides user hashes. Each purpose has its own key, derived from the
// secret, so a MAC made for one purpose is never valid for another: in particular no user hash
// (the secret's only direct use) can equal a token, whatever user id a site backend signs.
enum class KeyPurpose { identity_token, access_token };
// The derivation message of a purpose: "confab-key\0identity-token-v1", "confab-key\0access-token-at1".
// It holds a NUL, which check_user_id() refuses, so no signer ever hands out a derived key itself.
std::string_view key_purpose_label(KeyPurpose purpose) noexcept;
// HMAC-SHA256(key = secret, message = key_purpose_label(purpose)): the raw 32 bytes are the key.
Sha256Digest derive_key(std::string_view secret, KeyPurpose purpose) noexcept;

// True when `s` holds a C0 control, DEL or a C1 control (U+0080..U+009F, UTF-8 C2 80..C2 9F).
bool has_control_chars(std::string_view s) noexcept;

// A user id every signer accepts: not empty and no control character (U+0000..U+001F, U+007F..U+009F).
// Error code "user_id_invalid", with the same message for every signer (CLI, POST /v1/identity,
// the wasm userHash, the signing snippets).
Status check_user_id(std::string_view user_id);

// The signers every edge calls (CLI, wasm, server): check_user_id(), then user_hash() /
// issue_token(). Error code "user_id_invalid".
Result<std::string> sign_user_hash(std::string_view secret, std::string_view user_id);
Result<std::string> sign_identity_token(std::string_view secret, std::string_view workspace_id,
                                        std::string_view user_id, std::int64_t expires_at);

// Expiring identity token: "v1.<exp>.<hex mac>", where mac = HMAC-SHA256 with the identity_token
// key derived from the secret, over "v1\n"+workspace+"\n"+user+"\n"+exp, and exp is Unix seconds
// (decimal, no sign, no leading zeros). It signs any bytes: signers check the id first.
std::string issue_token(std::string_view secret, std::string_view workspace_id,
                        std::string_view user_id, std::int64_t expires_at);

bool looks_like_token(std::string_view value) noexcept;  // starts with "v1."

// Why a presented identity was rejected. Each has a stable code (see identity_failure_code).
enum class IdentityFailure {
    malformed,        // not a hex hash / not a well-formed v1 token
    expired,          // token past its exp
    bad_signature,    // MAC does not match under any active secret (wrong key, user or workspace)
    no_secrets,       // the workspace has no active secret
};
const char* identity_failure_code(IdentityFailure f) noexcept;  // "identity_malformed", ...

// The secrets a workspace accepts: several while a key is rotated. The first one signs new values.
class IdentityVerifier {
public:
    IdentityVerifier(std::string workspace_id, std::vector<std::string> secrets);

    // `presented` is either a legacy user hash (64 lowercase/uppercase hex chars) or a v1 token.
    // `now` is Unix seconds supplied by the caller (the core reads no clock).
    Status verify(std::string_view user_id, std::string_view presented, std::int64_t now) const;

    // On failure the Error's code is identity_failure_code(...). A token made for another user,
    // workspace or key is bad_signature: the MAC covers all three, so a mismatch cannot tell which.
    // A user id with a control character is malformed (no signer signs one).

    // Errors: "user_id_invalid" (check_user_id), "identity_no_secrets".
    Result<std::string> sign_user(std::string_view user_id) const;                          // legacy hash
    Result<std::string> sign_token(std::string_view user_id, std::int64_t expires_at) const;  // v1 token
    const std::string& workspace_id() const noexcept { return workspace_id_; }

private:
    std::string workspace_id_;
    std::vector<HmacSha256Key> keys_;        // the secrets themselves: user hashes
    std::vector<HmacSha256Key> token_keys_;  // derived for KeyPurpose::identity_token, same order
};

}  // namespace confab
