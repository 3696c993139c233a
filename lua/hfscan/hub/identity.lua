-- Who the scan runs as: one whoami-v2 call to the endpoint the scan talks to
-- (the token never goes to another host), before anything is written.
local cli = require "hfscan.cli"
local logging = require "hfscan.log"
local session = require "hfscan.hub.session"

local M = {}

-- Asks the Hub who the token belongs to (one whoami-v2 call: it is heavily
-- rate-limited, hub-api.md section 7). Returns { user = name } (user nil for
-- an anonymous scan, unchecked = why when the Hub could not say), or nil and a
-- message when the Hub refuses the token.
function M.check(o, endpoint)
  if not o.token then return {} end
  local s <close> = session.open { endpoint = endpoint, token = o.token, workers = 1, retries = 2,
    stall_timeout = o.stall_timeout }
  local info, err
  s.loop:spawn(function() info, err = s.hub:whoami() end)
  local ok, lerr = pcall(s.loop.run, s.loop)
  if not ok then return { unchecked = tostring(lerr) } end
  if info then return { user = type(info.name) == "string" and info.name or "?" } end
  if err.kind == "invalid_token" then
    return nil, ("the Hub refuses the token from %s (%s)"):format(o.token_source or "--token", err.message)
  end
  return { unchecked = err.message }
end

-- Checks the token at endpoint, and keeps as whom the scan runs in o.identity
-- for say_who. Returns nil, or the exit status of a usage error when the Hub
-- refuses the token.
function M.check_or_refuse(o, endpoint)
  local who, err = M.check(o, endpoint)
  if not who then return cli.usage_error(err, "hfscan --help") end
  o.token_user = who.user -- recorded in the scan's header: never the token
  who.endpoint = endpoint
  o.identity = who
  return nil
end

-- Where the token came from, as the first line says it.
local function source_of(o)
  if not o.token then return o.no_token and "no token: --no-token" or "no token found" end
  return "token from " .. o.token_source
end

-- The first line a scan prints (unless --quiet), once every check has passed:
-- the endpoint, as whom the scan runs and where the token came from; never the
-- token. Said once, after check_or_refuse.
function M.say_who(o)
  local who = o.identity
  if o.quiet or not who or who.said then return end
  who.said = true
  local line
  if not o.token then
    line = ("hfscan: scanning %s anonymously (%s)"):format(who.endpoint, source_of(o))
  elseif who.user then
    line = ("hfscan: scanning %s as %s (%s)"):format(who.endpoint, who.user, source_of(o))
  else
    line = ("hfscan: scanning %s; cannot check the %s (%s); going on with it"):format(who.endpoint,
      source_of(o), who.unchecked)
  end
  -- The Hub's message may echo what it was sent.
  io.stderr:write(logging.mask(line, { o.token }), "\n")
end

return M
