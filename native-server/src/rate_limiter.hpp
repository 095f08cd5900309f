// Token-bucket rate limits per (workspace, user), shared by all I/O threads, and by all
// instances when the store is shared (PostgreSQL).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace confab::server {

class DbExecutor;

class RateLimiter {
public:
    // The limit as every instance sees it: on a shared store the bucket lives in the database,
    // otherwise in memory. Takes are gathered: while one statement of takes is with the database,
    // the takes that arrive wait and go together in the next (one round trip for all of them,
    // like a group commit), so the database's cost follows the round trips, not the requests.
    // When the database cannot answer, this instance's own buckets stand in (a limit per
    // instance beats no limit; the request itself will most likely fail on storage anyway).
    boost::asio::awaitable<std::optional<std::int64_t>> take(DbExecutor& db, const std::string& key,
                                                             double per_second, double burst);

    // In memory, this process only.
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
    std::atomic<bool> degraded_{false};  // the shared buckets failed: local ones stand in

    // Shared store: the takes waiting for the next statement.
    struct Waiting {
        std::string key;
        double per_second = 0, burst = 0;
        boost::asio::any_io_executor executor;  // where the waiting coroutine resumes
        boost::asio::any_completion_handler<void(std::optional<std::int64_t>)> handler;
    };
    boost::asio::awaitable<void> flush(DbExecutor& db);  // until nothing waits
    std::mutex wait_mu_;
    std::vector<Waiting> waiting_;
    bool flushing_ = false;  // a flush() runs: it will take what waits
};

}  // namespace confab::server
