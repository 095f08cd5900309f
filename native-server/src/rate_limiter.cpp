// Token-bucket rate limits; idle buckets are swept so memory follows active users, not all users.
#include "rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include "db_executor.hpp"
#include "util.hpp"

namespace confab::server {

namespace {
std::int64_t retry_seconds(double tokens, double per_second) {
    if (per_second <= 0) return 3600;  // burst only, never refills: ask for a long wait
    double wait = (1.0 - tokens) / per_second;
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait)));
}
}  // namespace

boost::asio::awaitable<std::optional<std::int64_t>> RateLimiter::take(DbExecutor& db, const std::string& key,
                                                                      double per_second, double burst) {
    if (per_second <= 0 && burst <= 0) co_return std::nullopt;  // unlimited
    if (!db.shared()) co_return take(key, per_second, burst, now_ms());
    Result<Store::RateTake> got = make_error("storage_unavailable", "the database executor stopped");
    try {
        auto f = [&](Store& s) { return s.take_rate_token(key, per_second, burst); };
        got = co_await db.run(std::move(f));
    } catch (const std::exception&) {
        // stopping: answered below from the local buckets
    }
    if (!got) {
        if (!degraded_.exchange(true)) {
            log_line(R"({"level":"warn","msg":"shared rate limits unavailable: this instance limits on its own","reason":)" +
                     protocol::dump(protocol::Json(got.error().message)) + "}");
        }
        co_return take(key, per_second, burst, now_ms());
    }
    if (degraded_.exchange(false)) log_line(R"({"level":"info","msg":"shared rate limits are back"})");
    if (got->granted) co_return std::nullopt;
    co_return retry_seconds(got->tokens, per_second);
}

std::optional<std::int64_t> RateLimiter::take(const std::string& key, double per_second,
                                              double burst, std::int64_t now_ms) {
    if (per_second <= 0 && burst <= 0) return std::nullopt;  // unlimited
    Shard& shard = shards_[std::hash<std::string>{}(key) % kShards];
    std::lock_guard lock(shard.mu);
    auto [it, inserted] = shard.buckets.try_emplace(key);
    Bucket& b = it->second;
    if (inserted) {
        b.tokens = burst;
        b.last_ms = now_ms;
        // A bucket that has refilled completely is the same as no bucket: drop those now and then.
        if (++shard.inserts_since_sweep >= 4096) {
            shard.inserts_since_sweep = 0;
            for (auto i = shard.buckets.begin(); i != shard.buckets.end();) {
                double refill = static_cast<double>(now_ms - i->second.last_ms) / 1000.0 * per_second;
                if (i != it && i->second.tokens + refill >= burst) {
                    i = shard.buckets.erase(i);
                } else {
                    ++i;
                }
            }
        }
    } else if (now_ms > b.last_ms) {
        b.tokens = std::min(burst, b.tokens + static_cast<double>(now_ms - b.last_ms) / 1000.0 * per_second);
        b.last_ms = now_ms;
    }
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return std::nullopt;
    }
    return retry_seconds(b.tokens, per_second);
}

}  // namespace confab::server
