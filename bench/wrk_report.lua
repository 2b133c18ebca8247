-- wrk script of the benchmark harness (bench/wrk.py): at the end of a run it
-- prints one line `BENCH_WRK_JSON {...}` with the counts and the latency
-- percentiles (microseconds) that the harness parses. It defines no `request`
-- function, so wrk keeps sending its one pre-built request (no Lua per request).

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH_WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
