-- `hfscan repl [--endpoint URL] [--token TOKEN | --no-token]`: the prompt's
-- globals, set up by the host before it reads the first line (src/host/repl.c):
-- `hf` (the native module) and `hub` (a client of the Hub, connected on first
-- use so that starting the prompt costs nothing; its calls raise readable
-- errors). The token is given to the client only: never printed, never logged.
local cli = require "hfscan.cli"
local config = require "hfscan.config"
local hub_api = require "hfscan.hub.api"
local scan_options = require "hfscan.scan.options"

local M = {}

local SCAN_FLAGS = cli.index_flags(scan_options.SETTINGS)

M.COMMAND = {
  name = "repl",
  usage = { "[--endpoint URL] [--token TOKEN | --no-token]" },
  about = [[
  A Lua prompt with `hf` (the native module) and `hub` (a client of the Hub:
  hub.model_info(id), hub.tree(id), hub.whoami(), ...). Reads statements from
  stdin when it is not a terminal.]],
  flags = {
    { "--endpoint", "URL", nil, "the Hub (else HF_ENDPOINT, else " .. hub_api.DEFAULT_ENDPOINT .. ")",
      check = SCAN_FLAGS["--endpoint"].check },
    SCAN_FLAGS["--token"],
    { "--no-token", nil, nil, "no token from the environment or the token file" },
  },
}

-- The global `hub`: a table that connects on its first use.
local function lazy_hub(endpoint, token)
  return setmetatable({}, { __index = function(t, k)
    local client = require("hfscan.hub.client").connect { endpoint = endpoint, token = token,
      raise_errors = true }
    setmetatable(t, { __index = client })
    return client[k]
  end })
end

-- Parses args and sets the globals. Returns the banner (the host prints it at a
-- terminal), or nil and the exit status (help shown: 0; a usage error: 2).
function M.setup(args)
  local o, rest = cli.parse_command(M.COMMAND, args)
  if not o then return nil, rest end
  if #rest > 0 then
    return nil, cli.command_usage_error("repl", ("unexpected argument '%s'"):format(rest[1]))
  end
  if o.token and o.no_token then
    return nil, cli.command_usage_error("repl", "--token and --no-token cannot be used together")
  end
  local endpoint, err = o.endpoint, nil
  if not endpoint then endpoint, err = config.endpoint() end
  if not endpoint then return nil, cli.command_usage_error("repl", err) end
  local token, source = config.find_token(o)
  _G.hf = require "hfscan"
  _G.hub = lazy_hub(endpoint, token or false)
  return ("hfscan REPL (%s). `hf` is the native module; `hub` is a client of %s (%s),\n"
    .. "e.g. hub.model_info(\"org/name\"). Ctrl-D to leave."):format(_VERSION, endpoint,
    token and ("token from " .. source) or "no token")
end

return M
