-- The machinery every conversation with the Hub needs, built in one place: a
-- rate limiter, a worker pool that the limiter paces, the async loop over the
-- pool, and the Hub client, whose waits for the rate limit happen in the
-- caller's task, never on a worker. The scan, the update, scripts and the REPL
-- all open one.
local async = require "hfscan.async"
local hf = require "hfscan"
local hub_client = require "hfscan.hub.api"

local M = {}
local Session = {}
Session.__index = Session

-- settings: endpoint, token, workers (4), rate_limit (seconds between one
-- worker's requests, 0), spread_fraction (the limiter's; nil keeps its default),
-- retries (the Hub client's default), stall_timeout (seconds a transfer may stall:
-- no answer, or under 1 KiB/s; 30), on_request(bucket, response) for
-- accounting, on_warning(message) for the log. Returns a session with limiter, pool, loop and hub.
function M.open(settings)
  local limiter = hf.ratelimiter()
  if settings.spread_fraction then limiter:set_spread_fraction(settings.spread_fraction) end
  local pool = hf.pool(settings.workers or 4, limiter)
  pool:set_worker_spacing(settings.rate_limit or 0)
  local loop = async.new(pool)
  local hub = hub_client.new { endpoint = settings.endpoint, token = settings.token, loop = loop,
    limiter = limiter, on_request = settings.on_request, retries = settings.retries,
    timeout = settings.stall_timeout,
    on_warning = settings.on_warning }
  return setmetatable({ limiter = limiter, pool = pool, loop = loop, hub = hub }, Session)
end

function Session:close()
  self.pool:close()
  self.limiter:close()
end
Session.__close = Session.close

return M
