// Identity tests: SHA-256/HMAC vectors on every backend, OpenSSL differential, hashes and tokens.
#include "confab/identity.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#ifdef CONFAB_HAVE_OPENSSL
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#endif

namespace confab {
namespace {

std::string from_hex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    return out;
}

std::string bytes(const Sha256Digest& d) { return std::string(d.begin(), d.end()); }

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

// HMAC written straight from RFC 2104 on the streaming hash: an independent formulation of what
// HmacSha256Key does with cached midstates and its one-block fast path.
Sha256Digest reference_hmac(std::string_view key, std::string_view message, ShaBackend backend) {
    std::string k(key);
    if (k.size() > 64) k = bytes(sha256(k, backend));
    k.resize(64, '\0');
    std::string ipad = k, opad = k;
    for (auto& c : ipad) c = static_cast<char>(c ^ 0x36);
    for (auto& c : opad) c = static_cast<char>(c ^ 0x5c);
    Sha256 inner(backend);
    inner.update(ipad);
    inner.update(message);
    const Sha256Digest inner_digest = inner.finish();
    Sha256 outer(backend);
    outer.update(opad);
    outer.update(inner_digest.data(), inner_digest.size());
    return outer.finish();
}

const char* backend_name(ShaBackend b) {
    switch (b) {
        case ShaBackend::automatic: return "automatic";
        case ShaBackend::portable: return "portable";
        case ShaBackend::sha_ni: return "sha_ni";
    }
    return "?";
}

class ShaBackendTest : public ::testing::TestWithParam<ShaBackend> {
protected:
    void SetUp() override {
        if (GetParam() == ShaBackend::sha_ni && !sha_ni_available()) {
            GTEST_SKIP() << "SHA-NI is not available in this build or on this CPU";
        }
    }
    ShaBackend backend() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ShaBackendTest,
                         ::testing::Values(ShaBackend::portable, ShaBackend::sha_ni,
                                           ShaBackend::automatic),
                         [](const ::testing::TestParamInfo<ShaBackend>& info) {
                             return std::string(backend_name(info.param));
                         });

// ---- NIST SHA-256 vectors -------------------------------------------------------------------

TEST_P(ShaBackendTest, NistVectors) {
    EXPECT_EQ(to_hex(sha256("abc", backend())),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(to_hex(sha256("", backend())),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(to_hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", backend())),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(to_hex(sha256("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                            "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                            backend())),
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST_P(ShaBackendTest, OneMillionA) {
    const std::string million(1000000, 'a');
    EXPECT_EQ(to_hex(sha256(million, backend())),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    // The same through many odd-sized updates, so buffered and direct block paths interleave.
    Sha256 h(backend());
    std::size_t fed = 0;
    for (std::size_t step = 1; fed < million.size(); step = step % 157 + 1) {
        const std::size_t n = std::min(step, million.size() - fed);
        h.update(million.data() + fed, n);
        fed += n;
    }
    EXPECT_EQ(to_hex(h.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_P(ShaBackendTest, StreamingByteByByteMatchesOneShot) {
    const std::string msg =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
        "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    Sha256 h(backend());
    for (char c : msg) h.update(&c, 1);
    EXPECT_EQ(to_hex(h.finish()), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    // reset() makes the object reusable, and a zero-length update with a null pointer is a no-op.
    h.reset();
    h.update(nullptr, 0);
    h.update("ab");
    h.update("c");
    EXPECT_EQ(to_hex(h.finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_P(ShaBackendTest, EveryLengthAroundBlockBoundaries) {
    // Padding changes shape at 55/56 and 63/64 bytes: each length, one-shot vs byte-by-byte.
    std::mt19937_64 rng(7);
    const std::string data = random_bytes(rng, 200);
    for (std::size_t len = 0; len <= data.size(); ++len) {
        const std::string_view m(data.data(), len);
        Sha256 h(backend());
        for (char c : m) h.update(&c, 1);
        EXPECT_EQ(h.finish(), sha256(m, backend())) << "len " << len;
        EXPECT_EQ(sha256(m, backend()), sha256(m, ShaBackend::portable)) << "len " << len;
    }
}

// ---- RFC 4231 HMAC-SHA256 -------------------------------------------------------------------

struct HmacVector {
    std::string key;
    std::string data;
    std::string mac_hex;  // case 5 is truncated to 128 bits
};

std::vector<HmacVector> rfc4231_vectors() {
    return {
        {std::string(20, '\x0b'), "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {std::string(20, '\xaa'), std::string(50, '\xdd'),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {from_hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), std::string(50, '\xcd'),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {std::string(20, '\x0c'), "Test With Truncation", "a3b6167473100ee06e0c796c2955552b"},
        {std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {std::string(131, '\xaa'),
         "This is a test using a larger than block-size key and a larger than block-size data. The "
         "key needs to be hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
}

TEST_P(ShaBackendTest, Rfc4231) {
    int n = 0;
    for (const HmacVector& v : rfc4231_vectors()) {
        ++n;
        const std::string got = to_hex(hmac_sha256(v.key, v.data, backend()));
        EXPECT_EQ(got.substr(0, v.mac_hex.size()), v.mac_hex) << "RFC 4231 case " << n;
        const HmacSha256Key key(v.key, backend());
        EXPECT_EQ(key.sign_hex(v.data).substr(0, v.mac_hex.size()), v.mac_hex) << "case " << n;
        // A key is reusable: signing twice gives the same answer.
        EXPECT_EQ(key.sign(v.data), key.sign(v.data)) << "case " << n;
    }
}

// Values computed at authoring time with `printf %s MSG | openssl dgst -sha256 -hmac KEY`,
// chosen at the one-block fast path's edges (55/56/64-byte messages, 64/65-byte keys).
TEST_P(ShaBackendTest, HardCodedOpensslValues) {
    const auto b = backend();
    EXPECT_EQ(to_hex(hmac_sha256("key", std::string(55, 'x'), b)),
              "8c651b04682b91cd68fbf9ac58caf787ffc03284547515d401f5e1c5601451b6");
    EXPECT_EQ(to_hex(hmac_sha256("key", std::string(56, 'x'), b)),
              "d5cac94b0fd173ce3333b3b300b7f706664336f391dbcd8afa3a141163cdc2f3");
    EXPECT_EQ(to_hex(hmac_sha256("key", std::string(64, 'x'), b)),
              "5c33171380a475dce5d7e2172be298346bb4b8076016e057952de0317e15e370");
    EXPECT_EQ(to_hex(hmac_sha256(std::string(64, 'k'), "abc", b)),
              "ae0c0e4a2340cf50185eb46aaa8723f4769153661612e212fb0d1fa3170c6202");
    EXPECT_EQ(to_hex(hmac_sha256(std::string(65, 'k'), "abc", b)),
              "ed378e5dfa30dc98814ba09b2e610d9b6af66054922ceef9480da094a3f11b2d");
    EXPECT_EQ(to_hex(hmac_sha256("confab", "", b)),
              "7f6c0302cf03f21f3fad118cd340c41a22241cdd6df0d039d68aef8c2418ff2d");
}

TEST_P(ShaBackendTest, CachedKeyMatchesRfc2104ReferenceAtEveryLength) {
    std::mt19937_64 rng(11);
    const std::string data = random_bytes(rng, 300);
    for (std::size_t key_len : {0u, 1u, 20u, 63u, 64u, 65u, 131u}) {
        const std::string key_bytes = random_bytes(rng, key_len);
        const HmacSha256Key key(key_bytes, backend());
        for (std::size_t len = 0; len <= data.size(); ++len) {
            const std::string_view m(data.data(), len);
            EXPECT_EQ(key.sign(m), reference_hmac(key_bytes, m, backend()))
                << "key " << key_len << " msg " << len;
        }
    }
}

TEST_P(ShaBackendTest, RawCompressionMatchesPortable) {
    std::mt19937_64 rng(3);
    for (int i = 0; i < 200; ++i) {
        const std::string blocks = random_bytes(rng, 64 * (1 + i % 4));
        std::uint32_t a[8], b[8];
        for (int j = 0; j < 8; ++j) a[j] = b[j] = static_cast<std::uint32_t>(rng());
        const auto* p = reinterpret_cast<const std::uint8_t*>(blocks.data());
        sha256_compress(a, p, blocks.size() / 64, backend());
        sha256_compress(b, p, blocks.size() / 64, ShaBackend::portable);
        EXPECT_EQ(std::vector<std::uint32_t>(a, a + 8), std::vector<std::uint32_t>(b, b + 8));
    }
}

// Runs everywhere (also wasm): random keys and messages, each backend against the portable one.
TEST(IdentityCrossCheck, BackendsAgreeOnRandomInputs) {
    if (!sha_ni_available()) GTEST_SKIP() << "only one backend in this build";
    std::mt19937_64 rng(0xc0f4b);
    for (int i = 0; i < 2000; ++i) {
        const std::string key = random_bytes(rng, rng() % 201);
        const std::string msg = random_bytes(rng, rng() % 1001);
        ASSERT_EQ(hmac_sha256(key, msg, ShaBackend::sha_ni), hmac_sha256(key, msg, ShaBackend::portable))
            << "iteration " << i;
        ASSERT_EQ(sha256(msg, ShaBackend::sha_ni), sha256(msg, ShaBackend::portable)) << i;
    }
}

TEST(IdentityCrossCheck, ForcingShaNiWhereUnavailableFallsBackToPortable) {
    // On a CPU or build without SHA-NI, asking for it must still give correct digests.
    EXPECT_EQ(to_hex(sha256("abc", ShaBackend::sha_ni)),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
#if defined(__EMSCRIPTEN__)
    EXPECT_FALSE(sha_ni_available());
#endif
}

// ---- OpenSSL differential (native only) -----------------------------------------------------
// The tests exist in every build so native and wasm list the same names; without OpenSSL they skip.
#ifdef CONFAB_HAVE_OPENSSL

Sha256Digest openssl_hmac(std::string_view key, std::string_view msg) {
    Sha256Digest out{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out.data(), &len);
    EXPECT_EQ(len, 32u);
    return out;
}

Sha256Digest openssl_sha256(std::string_view msg) {
    Sha256Digest out{};
    SHA256(reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out.data());
    return out;
}

#endif  // CONFAB_HAVE_OPENSSL

TEST_P(ShaBackendTest, DifferentialAgainstOpenssl) {
#ifdef CONFAB_HAVE_OPENSSL
    std::mt19937_64 rng(20240601);
    for (int i = 0; i < 3000; ++i) {
        const std::string key = random_bytes(rng, rng() % 201);
        const std::string msg = random_bytes(rng, rng() % 1001);
        ASSERT_EQ(hmac_sha256(key, msg, backend()), openssl_hmac(key, msg))
            << "iteration " << i << " key " << key.size() << " msg " << msg.size();
        ASSERT_EQ(HmacSha256Key(key, backend()).sign(msg), openssl_hmac(key, msg)) << i;
        ASSERT_EQ(sha256(msg, backend()), openssl_sha256(msg)) << i;
        // Streaming in random pieces.
        Sha256 h(backend());
        for (std::size_t at = 0; at < msg.size();) {
            const std::size_t n = std::min<std::size_t>(rng() % 130, msg.size() - at);
            h.update(msg.data() + at, n);
            at += n;
        }
        ASSERT_EQ(h.finish(), openssl_sha256(msg)) << i;
    }
#else
    GTEST_SKIP() << "OpenSSL is the oracle only in the native build";
#endif
}

TEST(IdentityOpenssl, UserHashMatchesOpensslHmac) {
#ifdef CONFAB_HAVE_OPENSSL
    std::mt19937_64 rng(99);
    for (int i = 0; i < 500; ++i) {
        const std::string secret = random_bytes(rng, 1 + rng() % 100);
        const std::string user = random_bytes(rng, rng() % 60);
        const Sha256Digest d = openssl_hmac(secret, user);
        EXPECT_EQ(user_hash(secret, user), to_hex(d.data(), d.size()));
    }
#else
    GTEST_SKIP() << "OpenSSL is the oracle only in the native build";
#endif
}

// ---- Small helpers --------------------------------------------------------------------------

TEST(Identity, ConstantTimeEqual) {
    EXPECT_TRUE(constant_time_equal("abc", "abc"));
    EXPECT_FALSE(constant_time_equal("abc", "abd"));
    EXPECT_FALSE(constant_time_equal("xbc", "abc"));
    EXPECT_FALSE(constant_time_equal("abc", "abcd"));
    EXPECT_FALSE(constant_time_equal("", "a"));
    EXPECT_TRUE(constant_time_equal("", ""));
    EXPECT_TRUE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
    EXPECT_FALSE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

TEST(Identity, ToHex) {
    const std::uint8_t data[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    EXPECT_EQ(to_hex(data, sizeof data), "00017f80abff");
    EXPECT_EQ(to_hex(data, 0), "");
}

TEST(Identity, UserHashKnownValue) {
    // printf %s user-42 | openssl dgst -sha256 -hmac secret
    EXPECT_EQ(user_hash("secret", "user-42"),
              "e286b7b944100ab478fe553b39122922de0000aee1d04087dc3e96eefc3a8d47");
    // printf %s alice@example.com | openssl dgst -sha256 -hmac whsec_confab_demo
    EXPECT_EQ(user_hash("whsec_confab_demo", "alice@example.com"),
              "57e6dbdf741d5243e3aeee1bef839a4865d8e5e1dad11e3e03ced67bc3a0bd91");
}

// ---- Tokens and the verifier ----------------------------------------------------------------

constexpr std::int64_t kNow = 1700000000;

std::string code_of(const Status& s) { return s.ok() ? "ok" : s.error().code; }

TEST(IdentityToken, KnownTokenLayout) {
    // key=$(printf 'confab-key\0identity-token-v1' | openssl dgst -sha256 -hmac secret -binary | xxd -p -c 64)
    // printf 'v1\nws_demo\nuser-42\n1700000000' | openssl dgst -sha256 -mac HMAC -macopt hexkey:$key
    EXPECT_EQ(to_hex(derive_key("secret", KeyPurpose::identity_token)),
              "f542ee0914859e39520405c6254c43c7f7261f00beb1785eb4476a8200c87192");
    EXPECT_EQ(issue_token("secret", "ws_demo", "user-42", 1700000000),
              "v1.1700000000.987825269f9973d1ecc1bbc213345ff26849e90ca6a097b4e05b3a75021dda02");
    EXPECT_TRUE(looks_like_token("v1.1.ab"));
    EXPECT_FALSE(looks_like_token("v2.1.ab"));
    EXPECT_FALSE(looks_like_token("v1"));
}

TEST(IdentityToken, RoundTrip) {
    const IdentityVerifier v("ws_demo", {"secret"});
    EXPECT_EQ(v.workspace_id(), "ws_demo");
    const std::string token = v.sign_token("user-42", kNow + 3600).value();
    EXPECT_EQ(token, issue_token("secret", "ws_demo", "user-42", kNow + 3600));
    EXPECT_TRUE(v.verify("user-42", token, kNow).ok());
    const std::string hash = v.sign_user("user-42").value();
    EXPECT_EQ(hash, user_hash("secret", "user-42"));
    EXPECT_TRUE(v.verify("user-42", hash, kNow).ok());
}

TEST(IdentityToken, LegacyHashIsCaseInsensitive) {
    const IdentityVerifier v("ws", {"secret"});
    std::string upper = user_hash("secret", "user-42");
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_TRUE(v.verify("user-42", upper, kNow).ok());
    std::string mixed = user_hash("secret", "user-42");
    mixed[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(mixed[0])));
    mixed[63] = static_cast<char>(std::toupper(static_cast<unsigned char>(mixed[63])));
    EXPECT_TRUE(v.verify("user-42", mixed, kNow).ok());
}

TEST(IdentityToken, ExpiryBoundary) {
    const IdentityVerifier v("ws", {"secret"});
    const std::string token = v.sign_token("u", kNow).value();
    EXPECT_TRUE(v.verify("u", token, kNow - 1).ok());  // valid while now < exp
    const Status at = v.verify("u", token, kNow);
    ASSERT_FALSE(at.ok());
    EXPECT_EQ(at.error().code, "identity_expired");
    EXPECT_NE(at.error().message.find("expired"), std::string::npos);
    EXPECT_EQ(code_of(v.verify("u", token, kNow + 1)), "identity_expired");
    // A negative expiry is issued as 0: well-formed and already expired.
    const std::string past = v.sign_token("u", -5).value();
    EXPECT_TRUE(past.starts_with("v1.0."));
    EXPECT_EQ(code_of(v.verify("u", past, kNow)), "identity_expired");
    // The largest representable expiry parses.
    const std::int64_t max = std::numeric_limits<std::int64_t>::max();
    EXPECT_TRUE(v.verify("u", v.sign_token("u", max).value(), kNow).ok());
}

TEST(IdentityToken, BadSignatureForWrongKeyUserOrWorkspace) {
    const IdentityVerifier v("ws", {"secret"});
    const std::int64_t exp = kNow + 60;
    EXPECT_EQ(code_of(v.verify("u", issue_token("other", "ws", "u", exp), kNow)), "identity_bad_signature");
    EXPECT_EQ(code_of(v.verify("u", issue_token("secret", "ws", "someone", exp), kNow)),
              "identity_bad_signature");
    EXPECT_EQ(code_of(v.verify("u", issue_token("secret", "ws2", "u", exp), kNow)), "identity_bad_signature");
    EXPECT_EQ(code_of(v.verify("u", user_hash("other", "u"), kNow)), "identity_bad_signature");
    EXPECT_EQ(code_of(v.verify("v", user_hash("secret", "u"), kNow)), "identity_bad_signature");
    // Changing the exp of a genuine token breaks the MAC: the signature is checked before expiry.
    std::string token = issue_token("secret", "ws", "u", exp);
    token.replace(3, 10, std::to_string(kNow + 999999));
    EXPECT_EQ(code_of(v.verify("u", token, kNow)), "identity_bad_signature");
    // A forged token with a past exp is reported as forged, not as expired.
    EXPECT_EQ(code_of(v.verify("u", issue_token("other", "ws", "u", kNow - 10), kNow)),
              "identity_bad_signature");
    // One flipped MAC digit.
    std::string flipped = issue_token("secret", "ws", "u", exp);
    flipped.back() = flipped.back() == '0' ? '1' : '0';
    EXPECT_EQ(code_of(v.verify("u", flipped, kNow)), "identity_bad_signature");
    const Status s = v.verify("u", flipped, kNow);
    EXPECT_FALSE(s.error().message.empty());
}

TEST(IdentityToken, NoSecrets) {
    const IdentityVerifier none("ws", {});
    const Status s = none.verify("u", user_hash("secret", "u"), kNow);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "identity_no_secrets");
    EXPECT_NE(s.error().message.find("ws"), std::string::npos);
    EXPECT_EQ(none.sign_user("u").error().code, "identity_no_secrets");
    EXPECT_EQ(none.sign_token("u", kNow + 10).error().code, "identity_no_secrets");
    // An empty string is not a secret: it would let anyone compute hashes.
    const IdentityVerifier empty("ws", {""});
    EXPECT_EQ(code_of(empty.verify("u", user_hash("", "u"), kNow)), "identity_no_secrets");
}

TEST(IdentityToken, FailureCodes) {
    EXPECT_STREQ(identity_failure_code(IdentityFailure::malformed), "identity_malformed");
    EXPECT_STREQ(identity_failure_code(IdentityFailure::expired), "identity_expired");
    EXPECT_STREQ(identity_failure_code(IdentityFailure::bad_signature), "identity_bad_signature");
    EXPECT_STREQ(identity_failure_code(IdentityFailure::no_secrets), "identity_no_secrets");
}

TEST(IdentityToken, Rotation) {
    const std::int64_t exp = kNow + 600;
    const IdentityVerifier old_only("ws", {"old"});
    const std::string old_token = old_only.sign_token("u", exp).value();
    const std::string old_hash = old_only.sign_user("u").value();

    // During rotation the new secret signs, and both verify.
    const IdentityVerifier rotating("ws", {"new", "old"});
    EXPECT_TRUE(rotating.verify("u", old_token, kNow).ok());
    EXPECT_TRUE(rotating.verify("u", old_hash, kNow).ok());
    const std::string new_token = rotating.sign_token("u", exp).value();
    EXPECT_EQ(new_token, issue_token("new", "ws", "u", exp));
    EXPECT_EQ(rotating.sign_user("u").value(), user_hash("new", "u"));
    EXPECT_TRUE(rotating.verify("u", new_token, kNow).ok());

    // Once the old secret is removed, what it signed stops verifying.
    const IdentityVerifier rotated("ws", {"new"});
    EXPECT_EQ(code_of(rotated.verify("u", old_token, kNow)), "identity_bad_signature");
    EXPECT_EQ(code_of(rotated.verify("u", old_hash, kNow)), "identity_bad_signature");
    EXPECT_TRUE(rotated.verify("u", new_token, kNow).ok());
}

TEST(IdentityToken, Malformed) {
    const IdentityVerifier v("ws", {"secret"});
    const std::string good = v.sign_token("u", kNow + 60).value();
    const std::string mac = good.substr(good.rfind('.') + 1);
    ASSERT_EQ(mac.size(), 64u);
    const std::string exp = std::to_string(kNow + 60);
    const std::vector<std::string> bad = {
        "",                                    // empty
        "1700000060." + mac,                   // no prefix
        exp + "." + mac,                       // no prefix, different shape
        "v2." + exp + "." + mac,               // wrong version
        "V1." + exp + "." + mac,               // version is case-sensitive
        "v1.",                                 // missing parts
        "v1." + exp,                           // missing signature
        "v1." + exp + ".",                     // empty signature
        "v1.." + mac,                          // empty exp
        "v1.17000000a0." + mac,                // non-digit exp
        "v1.+1700000060." + mac,               // sign
        "v1.-1." + mac,                        // negative
        "v1. 1700000060." + mac,               // space
        "v1.01700000060." + mac,               // leading zero
        "v1.00." + mac,                        // leading zero
        "v1.9223372036854775808." + mac,       // int64 overflow by one
        "v1.99999999999999999999." + mac,      // 20 digits
        "v1.1" + std::string(100, '0') + "." + mac,  // far too long
        "v1." + exp + "." + mac.substr(1),     // odd-length mac
        "v1." + exp + "." + mac.substr(2),     // 62 hex chars
        "v1." + exp + "." + mac + "ab",        // 66 hex chars
        "v1." + exp + "." + mac.substr(0, 63) + "g",  // non-hex
        "v1." + exp + "." + mac + ".x",        // extra part
        "v1." + exp + "." + mac.substr(0, 32), // truncated mac
        mac.substr(1),                         // 63-char legacy hash
        mac + "0",                             // 65-char legacy hash
        mac.substr(0, 63) + "z",               // non-hex legacy hash
        std::string(64, ' '),                  // right length, not hex
    };
    for (const std::string& b : bad) {
        const Status s = v.verify("u", b, kNow);
        ASSERT_FALSE(s.ok()) << "accepted: '" << b << "'";
        EXPECT_EQ(s.error().code, "identity_malformed") << "input: '" << b << "'";
        EXPECT_FALSE(s.error().message.empty());
    }
    // The well-formed original still verifies, so the cases above fail for the stated reason.
    EXPECT_TRUE(v.verify("u", good, kNow).ok());
    // Tokens carry the exp in the canonical form only: "0" is well-formed (and long expired).
    EXPECT_EQ(code_of(v.verify("u", "v1.0." + mac, kNow)), "identity_bad_signature");
    EXPECT_EQ(code_of(v.verify("u", "v1.9223372036854775807." + mac, kNow)), "identity_bad_signature");
}

TEST(IdentityToken, TokenMacIsUppercaseTolerant) {
    const IdentityVerifier v("ws", {"secret"});
    std::string token = v.sign_token("u", kNow + 60).value();
    for (std::size_t i = token.rfind('.') + 1; i < token.size(); ++i) {
        token[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(token[i])));
    }
    EXPECT_TRUE(v.verify("u", token, kNow).ok());
}

TEST(IdentityToken, NewlineInIdsCannotBeSplitDifferently) {
    // "v1\nws\na\nb\n<exp>" would also be workspace "ws\na" + user "b": such ids get no tokens.
    const IdentityVerifier ws("ws", {"secret"});
    const IdentityVerifier ws_a("ws\na", {"secret"});
    const std::string token = issue_token("secret", "ws", "a\nb", kNow + 60);
    EXPECT_EQ(code_of(ws.verify("a\nb", token, kNow)), "identity_malformed");
    EXPECT_EQ(code_of(ws_a.verify("b", token, kNow)), "identity_malformed");
    // Nor a legacy hash: no signer signs an id with a control character (domain separation below).
    EXPECT_EQ(code_of(ws.verify("a\nb", user_hash("secret", "a\nb"), kNow)), "identity_malformed");
}

// ---- Domain separation: no user hash is ever a token -------------------------------------------

// Before the keys were derived per purpose, the user hash of the id "v1\n<ws>\n<user>\n<exp>" WAS
// that user's v1 token (same key, same message). Now the token is keyed differently, and no signer
// signs such an id in the first place.
TEST(DomainSeparation, UserHashOfATokenMessageIsNotAToken) {
    IdentityVerifier v("ws", {"secret"});
    const std::int64_t exp = kNow + 3600;
    const std::string crafted = "v1\nws\nalice\n" + std::to_string(exp);
    const std::string forged = "v1." + std::to_string(exp) + "." + user_hash("secret", crafted);
    EXPECT_EQ(code_of(v.verify("alice", forged, kNow)), "identity_bad_signature");
    EXPECT_TRUE(v.verify("alice", v.sign_token("alice", exp).value(), kNow).ok());
    EXPECT_EQ(v.sign_user(crafted).error().code, "user_id_invalid");
}

TEST(DomainSeparation, DerivedKeysDifferPerPurposeAndFromTheHashOfTheirLabel) {
    const auto tok = derive_key("secret", KeyPurpose::identity_token);
    const auto at = derive_key("secret", KeyPurpose::access_token);
    EXPECT_NE(tok, at);
    EXPECT_NE(to_hex(tok), to_hex(derive_key("other", KeyPurpose::identity_token)));
    // Each label holds a NUL: the user hash that would equal a derived key can never be signed.
    for (auto p : {KeyPurpose::identity_token, KeyPurpose::access_token}) {
        EXPECT_NE(key_purpose_label(p).find('\0'), std::string_view::npos);
        EXPECT_EQ(user_hash("secret", key_purpose_label(p)), to_hex(derive_key("secret", p)));
        EXPECT_EQ(check_user_id(key_purpose_label(p)).error().code, "user_id_invalid");
    }
}

TEST(DomainSeparation, EverySignerRefusesControlCharactersWithOneMessage) {
    IdentityVerifier v("ws", {"secret"});
    const std::string msg = "user id must not contain control characters (U+0000-U+001F, U+007F-U+009F)";
    for (const std::string& bad : {std::string("a\nb"), std::string("a\0b", 3), std::string("tab\t"),
                                  std::string("del\x7f"), std::string("c1\xc2\x85")}) {
        ASSERT_FALSE(check_user_id(bad).ok());
        EXPECT_EQ(check_user_id(bad).error().message, msg);
        EXPECT_EQ(v.sign_user(bad).error().message, msg);
        EXPECT_EQ(v.sign_token(bad, kNow + 10).error().message, msg);
        EXPECT_EQ(sign_user_hash("secret", bad).error().message, msg);
        EXPECT_EQ(sign_identity_token("secret", "ws", bad, kNow + 10).error().message, msg);
        // A hash or token presented for such an id is refused before any MAC is compared.
        EXPECT_EQ(code_of(v.verify(bad, user_hash("secret", bad), kNow)), "identity_malformed");
    }
    EXPECT_TRUE(check_user_id("Zo\xc3\xab \xe2\x9c\x93").ok());  // non-ASCII text is fine
    EXPECT_EQ(sign_user_hash("secret", "alice").value(), user_hash("secret", "alice"));
    EXPECT_EQ(sign_identity_token("secret", "ws", "alice", kNow).value(), issue_token("secret", "ws", "alice", kNow));
    EXPECT_EQ(check_user_id("").error().code, "user_id_invalid");
}

}  // namespace
}  // namespace confab
