-- wrk script: GET /v1/executions/{id} as an end user (identity headers, an HMAC check per request);
-- BENCH_PATH, BENCH_USER and BENCH_HASH come from the runner. Prints a JSON summary.
wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH")
wrk.headers["X-Confab-Workspace"] = os.getenv("BENCH_WORKSPACE") or "bench"
wrk.headers["X-Confab-User"] = os.getenv("BENCH_USER")
wrk.headers["X-Confab-User-Hash"] = os.getenv("BENCH_HASH")

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"seconds":%.6f,"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, secs, summary.requests / secs, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
