// Prometheus metrics: requests by route and status, latency histogram, open streams.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace confab::server {

// Route labels are the route patterns, never raw paths (ids would explode the label set).
enum class Route : int {
    unmatched, healthz, readyz, metrics, identity, app_get, execute, chat, execution_get,
    execution_events, execution_cancel, sessions_list, session, preflight,
    workflows, agents, jobs, app_token,  // server-to-server API (workflows.cpp)
    identity_proxy,                      // GET /v1/identity/proxy (proxy_identity.cpp)
    feedback, feedback_list,             // /v1/executions/{id}/feedback, GET /v1/feedback (s2s)
    openapi,                             // GET /v1/openapi.json
    mcp,                                 // /v1/mcp, the MCP endpoint (mcp.cpp)
    count_
};
const char* route_label(Route r) noexcept;

// The cache of finished executions' bodies (execution_cache.hpp), as /metrics shows it.
struct ExecutionCacheStats {
    std::uint64_t hits = 0, misses = 0, evictions = 0;
    std::size_t entries = 0, bytes = 0, max_bytes = 0;
};

class Metrics {
public:
    void record(Route route, int status, double seconds) noexcept;
    void stream_opened() noexcept { open_streams_.fetch_add(1, std::memory_order_relaxed); }
    void stream_closed() noexcept { open_streams_.fetch_sub(1, std::memory_order_relaxed); }
    void stream_caught_up() noexcept { catchups_.fetch_add(1, std::memory_order_relaxed); }
    // A run (execution or workflow run) whose storage failed: ended for its readers, stored later.
    void storage_failed_run() noexcept { storage_failed_runs_.fetch_add(1, std::memory_order_relaxed); }
    std::int64_t open_streams() const noexcept { return open_streams_.load(std::memory_order_relaxed); }
    // A stored feedback submission (a new rating or a change of one); `up` false = "down".
    void feedback_submitted(bool up) noexcept { (up ? feedback_up_ : feedback_down_).fetch_add(1, std::memory_order_relaxed); }

    // Prometheus text exposition format 0.0.4; executions by status come from the store, the
    // execution cache's figures from the cache.
    std::string render(const std::map<std::string, std::int64_t>& executions_by_status,
                       const ExecutionCacheStats& execution_cache = {}) const;

private:
    static constexpr int kRoutes = static_cast<int>(Route::count_);
    static constexpr int kStatuses = 600;
    static constexpr std::array<double, 11> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.05, 0.1, 0.25, 1.0, 5.0};
    struct RouteStats {
        std::array<std::atomic<std::uint64_t>, kStatuses> by_status{};
        std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> buckets{};  // last: +Inf
        std::atomic<std::uint64_t> count{0};
        std::atomic<std::uint64_t> sum_ns{0};
    };
    std::array<RouteStats, kRoutes> routes_{};
    std::atomic<std::int64_t> open_streams_{0};
    std::atomic<std::uint64_t> catchups_{0};
    std::atomic<std::uint64_t> storage_failed_runs_{0};
    std::atomic<std::uint64_t> feedback_up_{0}, feedback_down_{0};
};

}  // namespace confab::server
