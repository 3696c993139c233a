-- wrk script of bench/serve. `-- lookup FILE`: GET /lookup/sha256/<hash>,
-- cycling through the hashes of FILE (one a line), each thread from its own
-- place; `-- bulk FILE`: POST FILE as the body of /bulk/sha256. done() prints
-- one JSON line: requests, seconds, latency percentiles (microseconds), errors.
local paths, next_path = {}, 0

function init(args)
  local mode, file = args[1], args[2]
  local f = assert(io.open(file))
  if mode == "bulk" then
    wrk.method, wrk.path = "POST", "/bulk/sha256"
    wrk.body = f:read("a")
    wrk.headers["Content-Type"] = "application/json"
  else
    for line in f:lines() do paths[#paths + 1] = "/lookup/sha256/" .. line end
    next_path = math.random(#paths)
  end
  f:close()
end

function request()
  if #paths == 0 then return wrk.request() end
  next_path = next_path % #paths + 1
  return wrk.format(nil, paths[next_path])
end

function done(summary, latency)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "p50_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"socket_errors": %d, "bad_status": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
