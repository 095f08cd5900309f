// Identity: SHA-256 (portable and SHA-NI), HMAC-SHA256, user hashes and expiring identity tokens.
#include "confab/identity.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <utility>

// SHA-NI is x86-64 only; wasm (even when built on x86-64) always runs the portable code.
#if defined(__x86_64__) && !defined(__EMSCRIPTEN__)
#define CONFAB_HAVE_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace confab {
namespace {

alignas(16) constexpr std::uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr std::uint32_t kInitialState[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                            0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

// memcpy + byte swap compiles to one load/store and bswap (or movbe); byte-at-a-time shifts made
// GCC's vectorizer emit long shuffle sequences for the 8-word digest stores.
inline std::uint32_t byte_swap32(std::uint32_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(v);
    return v;
}

inline std::uint32_t load_be32(const std::uint8_t* p) noexcept {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return byte_swap32(v);
}

inline void store_be32(std::uint8_t* p, std::uint32_t v) noexcept {
    v = byte_swap32(v);
    std::memcpy(p, &v, sizeof v);
}

inline void store_be64(std::uint8_t* p, std::uint64_t v) noexcept {
    store_be32(p, static_cast<std::uint32_t>(v >> 32));
    store_be32(p + 4, static_cast<std::uint32_t>(v));
}

// ---- Portable compression -------------------------------------------------------------------
// Every round is a separate template instance so all indices are compile-time constants: the 64
// rounds unroll completely, the message schedule lives in a 16-word ring, and there are no
// per-round branches or rotations of the a..h variables (the call sites rename them instead).

inline std::uint32_t big_sigma0(std::uint32_t x) noexcept {
    return std::rotr(x, 2) ^ std::rotr(x, 13) ^ std::rotr(x, 22);
}
inline std::uint32_t big_sigma1(std::uint32_t x) noexcept {
    return std::rotr(x, 6) ^ std::rotr(x, 11) ^ std::rotr(x, 25);
}
inline std::uint32_t small_sigma0(std::uint32_t x) noexcept {
    return std::rotr(x, 7) ^ std::rotr(x, 18) ^ (x >> 3);
}
inline std::uint32_t small_sigma1(std::uint32_t x) noexcept {
    return std::rotr(x, 17) ^ std::rotr(x, 19) ^ (x >> 10);
}

template <int I>
[[gnu::always_inline]] inline void portable_round(std::uint32_t a, std::uint32_t b, std::uint32_t c,
                                                  std::uint32_t& d, std::uint32_t e, std::uint32_t f,
                                                  std::uint32_t g, std::uint32_t& h,
                                                  std::uint32_t (&w)[16],
                                                  const std::uint8_t* block) noexcept {
    std::uint32_t wi;
    if constexpr (I < 16) {
        wi = load_be32(block + 4 * I);
        w[I] = wi;
    } else {
        w[I & 15] += small_sigma1(w[(I - 2) & 15]) + w[(I - 7) & 15] + small_sigma0(w[(I - 15) & 15]);
        wi = w[I & 15];
    }
    const std::uint32_t choose = g ^ (e & (f ^ g));
    const std::uint32_t majority = (a & b) | (c & (a | b));
    const std::uint32_t t1 = h + big_sigma1(e) + choose + kRound[I] + wi;
    d += t1;
    h = t1 + big_sigma0(a) + majority;
}

template <int I>
[[gnu::always_inline]] inline void portable_eight_rounds(std::uint32_t& a, std::uint32_t& b,
                                                         std::uint32_t& c, std::uint32_t& d,
                                                         std::uint32_t& e, std::uint32_t& f,
                                                         std::uint32_t& g, std::uint32_t& h,
                                                         std::uint32_t (&w)[16],
                                                         const std::uint8_t* block) noexcept {
    portable_round<I + 0>(a, b, c, d, e, f, g, h, w, block);
    portable_round<I + 1>(h, a, b, c, d, e, f, g, w, block);
    portable_round<I + 2>(g, h, a, b, c, d, e, f, w, block);
    portable_round<I + 3>(f, g, h, a, b, c, d, e, w, block);
    portable_round<I + 4>(e, f, g, h, a, b, c, d, w, block);
    portable_round<I + 5>(d, e, f, g, h, a, b, c, w, block);
    portable_round<I + 6>(c, d, e, f, g, h, a, b, w, block);
    portable_round<I + 7>(b, c, d, e, f, g, h, a, w, block);
}

void compress_portable(std::uint32_t* state, const std::uint8_t* blocks, std::size_t count) noexcept {
    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    std::uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (; count != 0; --count, blocks += 64) {
        std::uint32_t w[16];
        portable_eight_rounds<0>(a, b, c, d, e, f, g, h, w, blocks);
        portable_eight_rounds<8>(a, b, c, d, e, f, g, h, w, blocks);
        portable_eight_rounds<16>(a, b, c, d, e, f, g, h, w, blocks);
        portable_eight_rounds<24>(a, b, c, d, e, f, g, h, w, blocks);
        portable_eight_rounds<32>(a, b, c, d, e, f, g, h, w, blocks);
        portable_eight_rounds<40>(a, b, c, d, e, f, g, h, w, blocks);
        portable_eight_rounds<48>(a, b, c, d, e, f, g, h, w, blocks);
        portable_eight_rounds<56>(a, b, c, d, e, f, g, h, w, blocks);
        a = state[0] += a;
        b = state[1] += b;
        c = state[2] += c;
        d = state[3] += d;
        e = state[4] += e;
        f = state[5] += f;
        g = state[6] += g;
        h = state[7] += h;
    }
}

// ---- SHA-NI compression ---------------------------------------------------------------------
#if defined(CONFAB_HAVE_SHA_NI)

// Per-function target so the rest of the build needs no -msha; only called after CPUID says yes.
#define CONFAB_SHA_NI_TARGET __attribute__((target("sha,sse4.1,ssse3")))

bool cpu_has_sha_ni() noexcept {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
    const bool ssse3 = (ecx & (1u << 9)) != 0;
    const bool sse41 = (ecx & (1u << 19)) != 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
    const bool sha = (ebx & (1u << 29)) != 0;
    return ssse3 && sse41 && sha;
}

// Four rounds. `m` is a ring of the last four message-schedule vectors; the schedule for quad
// I+1 is finished here (msg2) and the one for quad I+3 started (msg1), as in Intel's reference.
template <int I>
[[gnu::always_inline]] CONFAB_SHA_NI_TARGET inline void sha_ni_quad(__m128i& abef, __m128i& cdgh,
                                                                   __m128i (&m)[4],
                                                                   const std::uint8_t* block,
                                                                   __m128i byte_swap) noexcept {
    constexpr int cur = I & 3;
    constexpr int prev = (I + 3) & 3;
    constexpr int next = (I + 1) & 3;
    if constexpr (I < 4) {
        m[cur] = _mm_shuffle_epi8(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * I)), byte_swap);
    }
    __m128i msg = _mm_add_epi32(m[cur], _mm_load_si128(reinterpret_cast<const __m128i*>(kRound + 4 * I)));
    cdgh = _mm_sha256rnds2_epu32(cdgh, abef, msg);
    if constexpr (I >= 3 && I <= 14) {
        m[next] = _mm_sha256msg2_epu32(_mm_add_epi32(m[next], _mm_alignr_epi8(m[cur], m[prev], 4)),
                                       m[cur]);
    }
    msg = _mm_shuffle_epi32(msg, 0x0E);
    abef = _mm_sha256rnds2_epu32(abef, cdgh, msg);
    if constexpr (I >= 1 && I <= 12) {
        m[prev] = _mm_sha256msg1_epu32(m[prev], m[cur]);
    }
}

template <int... I>
[[gnu::always_inline]] CONFAB_SHA_NI_TARGET inline void sha_ni_all_quads(
    __m128i& abef, __m128i& cdgh, const std::uint8_t* block, __m128i byte_swap,
    std::integer_sequence<int, I...>) noexcept {
    __m128i m[4];
    (sha_ni_quad<I>(abef, cdgh, m, block, byte_swap), ...);
}

CONFAB_SHA_NI_TARGET void compress_sha_ni(std::uint32_t* state, const std::uint8_t* blocks,
                                          std::size_t count) noexcept {
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    // The instructions want the state as ABEF / CDGH rather than ABCD / EFGH.
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0xB1);
    __m128i cdgh = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4)), 0x1B);
    __m128i abef = _mm_alignr_epi8(tmp, cdgh, 8);
    cdgh = _mm_blend_epi16(cdgh, tmp, 0xF0);
    for (; count != 0; --count, blocks += 64) {
        const __m128i abef_save = abef;
        const __m128i cdgh_save = cdgh;
        sha_ni_all_quads(abef, cdgh, blocks, byte_swap, std::make_integer_sequence<int, 16>{});
        abef = _mm_add_epi32(abef, abef_save);
        cdgh = _mm_add_epi32(cdgh, cdgh_save);
    }
    tmp = _mm_shuffle_epi32(abef, 0x1B);
    cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(tmp, cdgh, 0xF0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(cdgh, tmp, 8));
}

#endif  // CONFAB_HAVE_SHA_NI

// Turns a request into the backend that will actually run, so hot paths test one enum value.
ShaBackend resolve_backend(ShaBackend requested) noexcept {
    if (requested == ShaBackend::portable) return ShaBackend::portable;
    return sha_ni_available() ? ShaBackend::sha_ni : ShaBackend::portable;
}

// `backend` must already be resolved.
inline void compress(ShaBackend backend, std::uint32_t* state, const std::uint8_t* blocks,
                     std::size_t count) noexcept {
#if defined(CONFAB_HAVE_SHA_NI)
    if (backend == ShaBackend::sha_ni) {
        compress_sha_ni(state, blocks, count);
        return;
    }
#else
    (void)backend;
#endif
    compress_portable(state, blocks, count);
}

// Key material must not linger on the stack; volatile stops the compiler dropping the stores.
void wipe(void* p, std::size_t n) noexcept {
    volatile std::uint8_t* v = static_cast<volatile std::uint8_t*>(p);
    for (std::size_t i = 0; i < n; ++i) v[i] = 0;
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes exactly 64 hex chars (either case) into a digest; false on any other input.
bool decode_digest_hex(std::string_view hex, Sha256Digest& out) noexcept {
    if (hex.size() != 2 * out.size()) return false;
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = hex_value(hex[2 * i]);
        const int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    return true;
}

// Strict exp: 1..19 ASCII digits, no sign, no leading zero (except "0" itself), fits int64.
bool parse_expiry(std::string_view text, std::int64_t& out) noexcept {
    if (text.empty() || text.size() > 19) return false;
    if (text.size() > 1 && text[0] == '0') return false;
    std::int64_t value = 0;
    constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
    for (const char c : text) {
        if (c < '0' || c > '9') return false;
        const int digit = c - '0';
        if (value > (max - digit) / 10) return false;
        value = value * 10 + digit;
    }
    out = value;
    return true;
}

std::string token_mac_message(std::string_view workspace_id, std::string_view user_id,
                              std::string_view exp_text) {
    std::string m;
    m.reserve(3 + workspace_id.size() + 1 + user_id.size() + 1 + exp_text.size());
    m.append("v1\n").append(workspace_id).append("\n").append(user_id).append("\n").append(exp_text);
    return m;
}

std::string token_with_key(const HmacSha256Key& key, std::string_view workspace_id,
                           std::string_view user_id, std::int64_t expires_at) {
    // A negative time cannot be written in the format; 0 is the same thing (already expired).
    const std::string exp_text = std::to_string(std::max<std::int64_t>(expires_at, 0));
    std::string token = "v1.";
    token.append(exp_text).append(".").append(key.sign_hex(token_mac_message(workspace_id, user_id, exp_text)));
    return token;
}

Error identity_error(IdentityFailure f, std::string message) {
    return make_error(identity_failure_code(f), std::move(message));
}

}  // namespace

// ---- SHA-256 ----------------------------------------------------------------------------------

bool sha_ni_available() noexcept {
#if defined(CONFAB_HAVE_SHA_NI)
    static const bool available = cpu_has_sha_ni();
    return available;
#else
    return false;
#endif
}

void sha256_compress(std::uint32_t state[8], const std::uint8_t* blocks, std::size_t block_count,
                     ShaBackend backend) noexcept {
    compress(resolve_backend(backend), state, blocks, block_count);
}

Sha256::Sha256(ShaBackend backend) noexcept : backend_(resolve_backend(backend)) { reset(); }

void Sha256::reset() noexcept {
    std::memcpy(state_, kInitialState, sizeof state_);
    total_len_ = 0;
    buf_len_ = 0;
}

void Sha256::update(const void* data, std::size_t len) noexcept {
    if (len == 0) return;  // data may be null then
    const auto* p = static_cast<const std::uint8_t*>(data);
    total_len_ += len;
    if (buf_len_ != 0) {
        const std::size_t take = std::min(sizeof buf_ - buf_len_, len);
        std::memcpy(buf_ + buf_len_, p, take);
        buf_len_ += take;
        p += take;
        len -= take;
        if (buf_len_ < sizeof buf_) return;
        compress(backend_, state_, buf_, 1);
        buf_len_ = 0;
    }
    if (len >= 64) {
        const std::size_t blocks = len / 64;
        compress(backend_, state_, p, blocks);
        p += blocks * 64;
        len -= blocks * 64;
    }
    if (len != 0) {
        std::memcpy(buf_, p, len);
        buf_len_ = len;
    }
}

Sha256Digest Sha256::finish() noexcept {
    const std::uint64_t bit_len = total_len_ * 8;
    buf_[buf_len_++] = 0x80;
    if (buf_len_ > 56) {
        std::memset(buf_ + buf_len_, 0, sizeof buf_ - buf_len_);
        compress(backend_, state_, buf_, 1);
        buf_len_ = 0;
    }
    std::memset(buf_ + buf_len_, 0, 56 - buf_len_);
    store_be64(buf_ + 56, bit_len);
    compress(backend_, state_, buf_, 1);
    Sha256Digest out;
    for (int i = 0; i < 8; ++i) store_be32(out.data() + 4 * i, state_[i]);
    return out;
}

Sha256Digest sha256(std::string_view data, ShaBackend backend) noexcept {
    Sha256 h(backend);
    h.update(data);
    return h.finish();
}

// ---- HMAC-SHA256 ------------------------------------------------------------------------------

HmacSha256Key::HmacSha256Key(std::string_view key, ShaBackend backend) noexcept
    : backend_(resolve_backend(backend)) {
    alignas(16) std::uint8_t block[64] = {};
    if (key.size() > sizeof block) {  // RFC 2104: long keys are hashed first
        const Sha256Digest d = sha256(key, backend_);
        std::memcpy(block, d.data(), d.size());
    } else if (!key.empty()) {
        std::memcpy(block, key.data(), key.size());
    }
    for (auto& byte : block) byte ^= 0x36;
    std::memcpy(inner_, kInitialState, sizeof inner_);
    compress(backend_, inner_, block, 1);
    for (auto& byte : block) byte ^= 0x36 ^ 0x5c;
    std::memcpy(outer_, kInitialState, sizeof outer_);
    compress(backend_, outer_, block, 1);
    wipe(block, sizeof block);
}

Sha256Digest HmacSha256Key::sign(std::string_view message) const noexcept {
    alignas(16) std::uint8_t block[64];
    std::uint32_t state[8];
    const std::size_t n = message.size();
    if (n < 56) {
        // The whole padded inner message fits one block after the cached key block.
        // A fixed-size clear is a few vector stores; a variable-length one became a loop.
        std::memcpy(state, inner_, sizeof state);
        std::memset(block, 0, sizeof block);
        if (n != 0) std::memcpy(block, message.data(), n);
        block[n] = 0x80;
        store_be64(block + 56, (64 + std::uint64_t{n}) * 8);
        compress(backend_, state, block, 1);
        for (int i = 0; i < 8; ++i) store_be32(block + 4 * i, state[i]);
    } else {
        Sha256 inner(backend_);
        std::memcpy(inner.state_, inner_, sizeof inner_);
        inner.total_len_ = 64;
        inner.update(message);
        const Sha256Digest d = inner.finish();
        std::memcpy(block, d.data(), d.size());
    }
    // Outer message: 64 key bytes (cached) + 32 digest bytes = 768 bits, one padded block.
    block[32] = 0x80;
    std::memset(block + 33, 0, 23);
    store_be64(block + 56, 768);
    std::memcpy(state, outer_, sizeof state);
    compress(backend_, state, block, 1);
    Sha256Digest out;
    for (int i = 0; i < 8; ++i) store_be32(out.data() + 4 * i, state[i]);
    return out;
}

std::string HmacSha256Key::sign_hex(std::string_view message) const { return to_hex(sign(message)); }

Sha256Digest hmac_sha256(std::string_view key, std::string_view message, ShaBackend backend) noexcept {
    return HmacSha256Key(key, backend).sign(message);
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    // Accumulate every difference; no data-dependent exit. volatile keeps the loop from being
    // turned into an early-out comparison.
    volatile std::uint8_t diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = static_cast<std::uint8_t>(diff | (static_cast<std::uint8_t>(a[i]) ^ static_cast<std::uint8_t>(b[i])));
    }
    return diff == 0;
}

std::string to_hex(const std::uint8_t* data, std::size_t len) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(2 * len, '\0');
    for (std::size_t i = 0; i < len; ++i) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0x0f];
    }
    return out;
}

std::string user_hash(std::string_view secret, std::string_view user_id) {
    return HmacSha256Key(secret).sign_hex(user_id);
}

// ---- Key derivation and user ids --------------------------------------------------------------

std::string_view key_purpose_label(KeyPurpose purpose) noexcept {
    using namespace std::string_view_literals;
    switch (purpose) {
        case KeyPurpose::identity_token: return "confab-key\0identity-token-v1"sv;
        case KeyPurpose::access_token: return "confab-key\0access-token-at1"sv;
    }
    return "confab-key\0identity-token-v1"sv;
}

Sha256Digest derive_key(std::string_view secret, KeyPurpose purpose) noexcept {
    return hmac_sha256(secret, key_purpose_label(purpose));
}

namespace {
HmacSha256Key derived_hmac_key(std::string_view secret, KeyPurpose purpose) {
    const Sha256Digest k = derive_key(secret, purpose);
    return HmacSha256Key(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

}  // namespace

bool has_control_chars(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) return true;
        if (c == 0xc2 && i + 1 < s.size()) {
            const auto n = static_cast<unsigned char>(s[i + 1]);
            if (n >= 0x80 && n <= 0x9f) return true;
        }
    }
    return false;
}

Status check_user_id(std::string_view user_id) {
    if (user_id.empty()) {
        return make_error("user_id_invalid", "user id must not be empty (an empty user is anonymous)");
    }
    if (has_control_chars(user_id)) {
        return make_error("user_id_invalid",
                          "user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)");
    }
    return Ok{};
}

Result<std::string> sign_user_hash(std::string_view secret, std::string_view user_id) {
    if (auto st = check_user_id(user_id); !st) return st.error();
    return user_hash(secret, user_id);
}

Result<std::string> sign_identity_token(std::string_view secret, std::string_view workspace_id,
                                        std::string_view user_id, std::int64_t expires_at) {
    if (auto st = check_user_id(user_id); !st) return st.error();
    return issue_token(secret, workspace_id, user_id, expires_at);
}

// ---- Identity tokens --------------------------------------------------------------------------

std::string issue_token(std::string_view secret, std::string_view workspace_id,
                        std::string_view user_id, std::int64_t expires_at) {
    return token_with_key(derived_hmac_key(secret, KeyPurpose::identity_token), workspace_id, user_id,
                          expires_at);
}

bool looks_like_token(std::string_view value) noexcept { return value.starts_with("v1."); }

const char* identity_failure_code(IdentityFailure f) noexcept {
    switch (f) {
        case IdentityFailure::malformed: return "identity_malformed";
        case IdentityFailure::expired: return "identity_expired";
        case IdentityFailure::bad_signature: return "identity_bad_signature";
        case IdentityFailure::no_secrets: return "identity_no_secrets";
    }
    return "identity_malformed";
}

IdentityVerifier::IdentityVerifier(std::string workspace_id, std::vector<std::string> secrets)
    : workspace_id_(std::move(workspace_id)) {
    keys_.reserve(secrets.size());
    token_keys_.reserve(secrets.size());
    for (const std::string& secret : secrets) {
        // An empty secret would let anyone compute valid hashes: treat it as "not configured".
        if (secret.empty()) continue;
        keys_.emplace_back(secret);
        token_keys_.push_back(derived_hmac_key(secret, KeyPurpose::identity_token));
    }
}

Status IdentityVerifier::verify(std::string_view user_id, std::string_view presented,
                                std::int64_t now) const {
    if (keys_.empty()) {
        return identity_error(IdentityFailure::no_secrets,
                              "workspace '" + workspace_id_ + "' has no active identity secret");
    }
    // No signer signs such an id (check_user_id), so no genuine hash or token can name one.
    if (has_control_chars(user_id)) {
        return identity_error(IdentityFailure::malformed,
                              "user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)");
    }
    Sha256Digest expected_mac;
    if (looks_like_token(presented)) {
        const std::string_view rest = presented.substr(3);
        const std::size_t dot = rest.find('.');
        if (dot == std::string_view::npos) {
            return identity_error(IdentityFailure::malformed,
                                  "identity token is malformed: expected v1.<expiry>.<signature>");
        }
        const std::string_view exp_text = rest.substr(0, dot);
        std::int64_t exp = 0;
        if (!parse_expiry(exp_text, exp)) {
            return identity_error(IdentityFailure::malformed,
                                  "identity token is malformed: the expiry must be Unix seconds "
                                  "(decimal digits, no sign or leading zeros)");
        }
        if (!decode_digest_hex(rest.substr(dot + 1), expected_mac)) {
            return identity_error(IdentityFailure::malformed,
                                  "identity token is malformed: the signature must be 64 hex characters");
        }
        // The MAC message separates fields with '\n', so ids holding one could be re-split.
        if (user_id.find('\n') != std::string_view::npos ||
            workspace_id_.find('\n') != std::string::npos) {
            return identity_error(IdentityFailure::malformed,
                                  "identity token cannot be used with a user or workspace id that "
                                  "contains a newline");
        }
        const std::string message = token_mac_message(workspace_id_, user_id, exp_text);
        bool match = false;
        for (const HmacSha256Key& key : token_keys_) {
            const Sha256Digest mac = key.sign(message);
            match |= constant_time_equal(
                std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()),
                std::string_view(reinterpret_cast<const char*>(expected_mac.data()), expected_mac.size()));
        }
        if (!match) {
            return identity_error(IdentityFailure::bad_signature,
                                  "identity token does not match this user and workspace under any "
                                  "active secret");
        }
        // Checked after the signature, so "expired" is only ever said of a genuine token.
        if (!(now < exp)) {
            return identity_error(IdentityFailure::expired,
                                  "identity token expired at " + std::string(exp_text) +
                                      " (now " + std::to_string(now) + ")");
        }
        return Ok{};
    }
    if (!decode_digest_hex(presented, expected_mac)) {
        return identity_error(IdentityFailure::malformed,
                              "user hash is malformed: expected 64 hex characters or a v1 token");
    }
    bool match = false;
    for (const HmacSha256Key& key : keys_) {
        const Sha256Digest mac = key.sign(user_id);
        match |= constant_time_equal(
            std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()),
            std::string_view(reinterpret_cast<const char*>(expected_mac.data()), expected_mac.size()));
    }
    if (!match) {
        return identity_error(IdentityFailure::bad_signature,
                              "user hash does not match this user under any active secret");
    }
    return Ok{};
}

Result<std::string> IdentityVerifier::sign_user(std::string_view user_id) const {
    if (auto st = check_user_id(user_id); !st) return st.error();
    if (keys_.empty()) {
        return identity_error(IdentityFailure::no_secrets,
                              "workspace '" + workspace_id_ + "' has no active identity secret");
    }
    return keys_.front().sign_hex(user_id);
}

Result<std::string> IdentityVerifier::sign_token(std::string_view user_id, std::int64_t expires_at) const {
    if (auto st = check_user_id(user_id); !st) return st.error();
    if (keys_.empty()) {
        return identity_error(IdentityFailure::no_secrets,
                              "workspace '" + workspace_id_ + "' has no active identity secret");
    }
    return token_with_key(token_keys_.front(), workspace_id_, user_id, expires_at);
}

}  // namespace confab
