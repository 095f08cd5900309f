// Prometheus metrics: lock-free counters updated by every I/O thread, rendered on /metrics.
#include "metrics.hpp"

#include <cstdio>
#include <initializer_list>
#include <utility>

namespace confab::server {

const char* route_label(Route r) noexcept {
    switch (r) {
        case Route::unmatched: return "unmatched";
        case Route::healthz: return "/healthz";
        case Route::readyz: return "/readyz";
        case Route::metrics: return "/metrics";
        case Route::identity: return "/v1/identity";
        case Route::app_get: return "/v1/apps/{appId}";
        case Route::execute: return "/v1/apps/{appId}/executions";
        case Route::chat: return "/v1/apps/{appId}/chat";
        case Route::execution_get: return "/v1/executions/{id}";
        case Route::execution_events: return "/v1/executions/{id}/events";
        case Route::execution_cancel: return "/v1/executions/{id}/cancel";
        case Route::sessions_list: return "/v1/sessions";
        case Route::session: return "/v1/sessions/{id}";
        case Route::preflight: return "preflight";
        case Route::workflows: return "/v1/workflows";
        case Route::agents: return "/v1/agents";
        case Route::jobs: return "/v1/jobs";
        case Route::app_token: return "/v1/applications/token";
        case Route::identity_proxy: return "/v1/identity/proxy";
        case Route::feedback: return "/v1/executions/{id}/feedback";
        case Route::feedback_list: return "/v1/feedback";
        case Route::openapi: return "/v1/openapi.json";
        case Route::mcp: return "/v1/mcp";
        case Route::count_: break;
    }
    return "unmatched";
}

void Metrics::record(Route route, int status, double seconds) noexcept {
    int r = static_cast<int>(route);
    if (r < 0 || r >= kRoutes) r = 0;
    if (status < 0 || status >= kStatuses) status = 0;
    RouteStats& st = routes_[static_cast<std::size_t>(r)];
    st.by_status[static_cast<std::size_t>(status)].fetch_add(1, std::memory_order_relaxed);
    std::size_t b = 0;
    while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
    st.buckets[b].fetch_add(1, std::memory_order_relaxed);
    st.count.fetch_add(1, std::memory_order_relaxed);
    st.sum_ns.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

std::string Metrics::render(const std::map<std::string, std::int64_t>& executions_by_status,
                            const ExecutionCacheStats& execution_cache) const {
    std::string out;
    char line[256];
    out += "# HELP confab_http_requests_total HTTP requests by route and status.\n";
    out += "# TYPE confab_http_requests_total counter\n";
    for (int r = 0; r < kRoutes; ++r) {
        const RouteStats& st = routes_[static_cast<std::size_t>(r)];
        for (int s = 0; s < kStatuses; ++s) {
            auto n = st.by_status[static_cast<std::size_t>(s)].load(std::memory_order_relaxed);
            if (n == 0) continue;
            std::snprintf(line, sizeof line, "confab_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                          route_label(static_cast<Route>(r)), s, static_cast<unsigned long long>(n));
            out += line;
        }
    }
    out += "# HELP confab_http_request_duration_seconds Time to the response head (streams: to the first byte).\n";
    out += "# TYPE confab_http_request_duration_seconds histogram\n";
    for (int r = 0; r < kRoutes; ++r) {
        const RouteStats& st = routes_[static_cast<std::size_t>(r)];
        auto count = st.count.load(std::memory_order_relaxed);
        if (count == 0) continue;
        const char* label = route_label(static_cast<Route>(r));
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b <= kBuckets.size(); ++b) {
            cumulative += st.buckets[b].load(std::memory_order_relaxed);
            if (b < kBuckets.size()) {
                std::snprintf(line, sizeof line,
                              "confab_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                              label, kBuckets[b], static_cast<unsigned long long>(cumulative));
            } else {
                std::snprintf(line, sizeof line,
                              "confab_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                              label, static_cast<unsigned long long>(cumulative));
            }
            out += line;
        }
        std::snprintf(line, sizeof line, "confab_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n",
                      label, static_cast<double>(st.sum_ns.load(std::memory_order_relaxed)) / 1e9);
        out += line;
        std::snprintf(line, sizeof line, "confab_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                      label, static_cast<unsigned long long>(count));
        out += line;
    }
    out += "# HELP confab_open_streams SSE streams currently open.\n";
    out += "# TYPE confab_open_streams gauge\n";
    out += "confab_open_streams " + std::to_string(open_streams()) + "\n";
    out += "# HELP confab_stream_catchups_total Times a stream fell behind its live queue and caught up from the run's log.\n";
    out += "# TYPE confab_stream_catchups_total counter\n";
    out += "confab_stream_catchups_total " + std::to_string(catchups_.load(std::memory_order_relaxed)) + "\n";
    out += "# HELP confab_storage_failed_runs_total Runs that storage refused to record; each ended as error storage_unavailable.\n";
    out += "# TYPE confab_storage_failed_runs_total counter\n";
    out += "confab_storage_failed_runs_total " + std::to_string(storage_failed_runs_.load(std::memory_order_relaxed)) + "\n";
    out += "# HELP confab_feedback_total Feedback submissions (new ratings and changes) since the process started.\n";
    out += "# TYPE confab_feedback_total counter\n";
    out += "confab_feedback_total{rating=\"up\"} " + std::to_string(feedback_up_.load(std::memory_order_relaxed)) + "\n";
    out += "confab_feedback_total{rating=\"down\"} " + std::to_string(feedback_down_.load(std::memory_order_relaxed)) + "\n";
    const ExecutionCacheStats& c = execution_cache;
    // One metric: its HELP, its TYPE and one sample (or a labelled sample per entry).
    auto metric = [&out](const char* name, const char* type, const char* help,
                         std::initializer_list<std::pair<const char*, std::uint64_t>> samples) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
        for (const auto& [labels, value] : samples) out += std::string(name) + labels + " " + std::to_string(value) + "\n";
    };
    metric("confab_execution_cache_lookups_total", "counter",
           "GET /v1/executions/{id} answered from the cache of finished executions (hit) or not (miss).",
           {{"{result=\"hit\"}", c.hits}, {"{result=\"miss\"}", c.misses}});
    metric("confab_execution_cache_evictions_total", "counter",
           "Finished executions dropped from the cache to stay within its bytes.", {{"", c.evictions}});
    metric("confab_execution_cache_entries", "gauge", "Finished executions in the cache.", {{"", c.entries}});
    metric("confab_execution_cache_bytes", "gauge",
           "Bytes the cache's entries are charged (bodies, ids, per-entry overhead).", {{"", c.bytes}});
    metric("confab_execution_cache_max_bytes", "gauge", "The cache's bound (--execution-cache-bytes; 0: off).",
           {{"", c.max_bytes}});
    out += "# HELP confab_executions Stored executions by status.\n";
    out += "# TYPE confab_executions gauge\n";
    for (const char* s : {"queued", "running", "success", "error", "cancelled"}) {
        auto it = executions_by_status.find(s);
        std::snprintf(line, sizeof line, "confab_executions{status=\"%s\"} %lld\n", s,
                      static_cast<long long>(it == executions_by_status.end() ? 0 : it->second));
        out += line;
    }
    return out;
}

}  // namespace confab::server
