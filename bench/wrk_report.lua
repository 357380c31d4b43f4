-- wrk_report.lua - wrk's summary as one JSON line, p99.9 included.
--   wrk -s bench/wrk_report.lua ... URL
-- Prints "WRK_JSON {...}" after wrk's own report; bench/run parses it.
-- Latencies are in microseconds; "non_2xx" is wrk's errors.status (any
-- answer that is not 2xx or 3xx).
done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"mean":%.1f,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p99_9":%d,"max":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
