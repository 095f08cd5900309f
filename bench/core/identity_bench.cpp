// Identity benchmarks: HMAC of a typical user id (cached key, both backends) vs OpenSSL and the
// raw compression floor (a short-message HMAC with a cached key is exactly two compressions).
#include "confab/identity.hpp"

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace {

const std::string kSecret = "whsec_confab_benchmark_secret_0123456789";  // 40 bytes, typical
const std::string kUserId = "user_8f3a2c91d04e7b65";                     // 20 bytes, typical

void skip_unless_available(benchmark::State& state, confab::ShaBackend backend) {
    if (backend == confab::ShaBackend::sha_ni && !confab::sha_ni_available()) {
        state.SkipWithError("SHA-NI is not available on this CPU");
    }
}

// Floor: one compression call on one block.
void BM_Compress(benchmark::State& state, confab::ShaBackend backend) {
    skip_unless_available(state, backend);
    std::uint8_t block[64];
    for (int i = 0; i < 64; ++i) block[i] = static_cast<std::uint8_t>(i * 7);
    std::uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    for (auto _ : state) {
        confab::sha256_compress(h, block, 1, backend);
        benchmark::DoNotOptimize(h);
        benchmark::ClobberMemory();
    }
}
BENCHMARK_CAPTURE(BM_Compress, portable, confab::ShaBackend::portable);
BENCHMARK_CAPTURE(BM_Compress, sha_ni, confab::ShaBackend::sha_ni);

// The server's hot path: the workspace key is built once, each request signs one user id.
void BM_UserHashCachedKey(benchmark::State& state, confab::ShaBackend backend) {
    skip_unless_available(state, backend);
    const confab::HmacSha256Key key(kSecret, backend);
    for (auto _ : state) {
        confab::Sha256Digest d = key.sign(kUserId);
        benchmark::DoNotOptimize(d);
    }
}
BENCHMARK_CAPTURE(BM_UserHashCachedKey, automatic, confab::ShaBackend::automatic);
BENCHMARK_CAPTURE(BM_UserHashCachedKey, portable, confab::ShaBackend::portable);

// The same with the lowercase hex string a user hash is sent as.
void BM_UserHashCachedKeyHex(benchmark::State& state, confab::ShaBackend backend) {
    skip_unless_available(state, backend);
    const confab::HmacSha256Key key(kSecret, backend);
    for (auto _ : state) {
        std::string hex = key.sign_hex(kUserId);
        benchmark::DoNotOptimize(hex);
    }
}
BENCHMARK_CAPTURE(BM_UserHashCachedKeyHex, automatic, confab::ShaBackend::automatic);
BENCHMARK_CAPTURE(BM_UserHashCachedKeyHex, portable, confab::ShaBackend::portable);

// Uncached: derives the key midstates on every call (4 compressions) and returns hex.
void BM_UserHashFunction(benchmark::State& state) {
    for (auto _ : state) {
        std::string hex = confab::user_hash(kSecret, kUserId);
        benchmark::DoNotOptimize(hex);
    }
}
BENCHMARK(BM_UserHashFunction);

// Baseline: OpenSSL's one-shot HMAC() (sets up a context and the key every call).
void BM_OpensslHmacOneShot(benchmark::State& state) {
    unsigned char out[32];
    unsigned int len = 0;
    for (auto _ : state) {
        HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
             reinterpret_cast<const unsigned char*>(kUserId.data()), kUserId.size(), out, &len);
        benchmark::DoNotOptimize(out);
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_OpensslHmacOneShot);

// Baseline: OpenSSL 3 EVP_MAC keyed once and reused; EVP_MAC_init(ctx, NULL, 0, NULL) restarts
// with the same key, which is OpenSSL's best case for many short messages under one key.
void BM_OpensslEvpMacReused(benchmark::State& state) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX* ctx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
    char digest_name[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", digest_name, 0),
        OSSL_PARAM_construct_end(),
    };
    if (ctx == nullptr ||
        EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(kSecret.data()), kSecret.size(),
                     params) != 1) {
        state.SkipWithError("EVP_MAC HMAC-SHA256 setup failed");
    } else {
        unsigned char out[32];
        std::size_t len = 0;
        for (auto _ : state) {
            EVP_MAC_init(ctx, nullptr, 0, nullptr);
            EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(kUserId.data()), kUserId.size());
            EVP_MAC_final(ctx, out, &len, sizeof out);
            benchmark::DoNotOptimize(out);
            benchmark::ClobberMemory();
        }
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}
BENCHMARK(BM_OpensslEvpMacReused);

}  // namespace

BENCHMARK_MAIN();
