// Token-bucket rate limits per (workspace, user), shared by all I/O threads.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace confab::server {

class RateLimiter {
public:
    // Takes one token from `key`'s bucket (created full). Returns nullopt when allowed, otherwise
    // the whole seconds (>= 1) until a token is back, for Retry-After.
    std::optional<std::int64_t> take(const std::string& key, double per_second, double burst,
                                     std::int64_t now_ms);

private:
    struct Bucket {
        double tokens = 0;
        std::int64_t last_ms = 0;
    };
    struct Shard {
        std::mutex mu;
        std::unordered_map<std::string, Bucket> buckets;
        std::size_t inserts_since_sweep = 0;
    };
    static constexpr std::size_t kShards = 16;
    std::array<Shard, kShards> shards_;
};

}  // namespace confab::server
