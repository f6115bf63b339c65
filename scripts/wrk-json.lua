-- wrk script for scripts/bench.sh: at the end of a run, writes the summary as JSON to the file
-- named by $WRK_JSON, with the field names ringlb-load uses, so the report generator reads both
-- tools alike. Times are microseconds. Must never hide errors: every wrk error class is kept.

done = function(summary, latency, requests)
  local path = os.getenv("WRK_JSON")
  if path == nil or path == "" then
    io.stderr:write("wrk-json.lua: WRK_JSON is not set\n")
    return
  end
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.status + e.timeout
  local f = assert(io.open(path, "w"))
  f:write(string.format(
    '{"tool":"wrk","duration_s":%.6f,"requests":%d,"ok":%d,' ..
    '"errors":{"total":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"bytes":%d,"request":{"count":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.duration / 1e6, summary.requests, summary.requests - e.status,
    failed, e.connect, e.read, e.write, e.status, e.timeout,
    summary.bytes, summary.requests,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
  f:close()
end
