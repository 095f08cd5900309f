-- wrk script: POST /v1/identity (server-to-server signing) with a JSON body; prints a JSON summary.
wrk.method = "POST"
wrk.path = "/v1/identity"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_API_KEY") or "bench-api-key-0123456789abcdef")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"userId":"user_8f3a2c91d04e7b65"}'

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"seconds":%.6f,"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, secs, summary.requests / secs, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
