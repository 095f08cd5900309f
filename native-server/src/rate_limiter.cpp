// Token-bucket rate limits; idle buckets are swept so memory follows active users, not all users.
#include "rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "db_executor.hpp"
#include "util.hpp"

namespace confab::server {

namespace asio = boost::asio;

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
    auto ex = co_await asio::this_coro::executor;
    auto initiation = [this, &db, &key, per_second, burst, &ex](auto handler) {
        bool start = false;
        {
            std::lock_guard lock(wait_mu_);
            waiting_.push_back(Waiting{key, per_second, burst, ex, std::move(handler)});
            start = !flushing_;
            flushing_ = true;
        }
        if (start) asio::co_spawn(ex, flush(db), asio::detached);
    };
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>, void(std::optional<std::int64_t>)>(
        std::move(initiation), asio::use_awaitable);
}

asio::awaitable<void> RateLimiter::flush(DbExecutor& db) {
    for (;;) {
        std::vector<Waiting> batch;
        {
            std::lock_guard lock(wait_mu_);
            if (waiting_.empty()) {
                flushing_ = false;
                co_return;
            }
            batch.swap(waiting_);
        }
        // One request per key, asking for as many tokens as takes of it wait.
        std::vector<Store::RateTakeRequest> asks;
        std::unordered_map<std::string_view, std::size_t> ask_of;
        std::vector<std::size_t> which(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            auto [it, fresh] = ask_of.try_emplace(batch[i].key, asks.size());
            if (fresh) asks.push_back(Store::RateTakeRequest{batch[i].key, batch[i].per_second, batch[i].burst, 0});
            ++asks[it->second].count;
            which[i] = it->second;
        }
        Result<std::vector<Store::RateTake>> got = make_error("storage_unavailable", "the database executor stopped");
        try {
            auto f = [&asks](Store& s) { return s.take_rate_tokens(asks); };
            got = co_await db.aside(std::move(f));  // a reader connection when there is one
        } catch (const std::exception&) {
            // stopping: answered below from the local buckets
        }
        if (!got) {
            if (!degraded_.exchange(true)) {
                log_line(R"({"level":"warn","msg":"shared rate limits unavailable: this instance limits on its own","reason":)" +
                         protocol::dump(protocol::Json(got.error().message)) + "}");
            }
        } else if (degraded_.exchange(false)) {
            log_line(R"({"level":"info","msg":"shared rate limits are back"})");
        }
        // The granted tokens of a key go to its takes in the order they came.
        std::vector<std::int64_t> given(asks.size(), 0);
        for (std::size_t i = 0; i < batch.size(); ++i) {
            Waiting& w = batch[i];
            std::optional<std::int64_t> answer;
            if (!got) {
                answer = take(w.key, w.per_second, w.burst, now_ms());
            } else {
                const Store::RateTake& t = (*got)[which[i]];
                if (given[which[i]] < t.granted) {
                    ++given[which[i]];
                } else {
                    answer = retry_seconds(t.tokens, w.per_second);
                }
            }
            asio::post(w.executor, [h = std::move(w.handler), answer]() mutable { std::move(h)(answer); });
        }
    }
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
