-- Where the Hub and the token come from, as huggingface_hub finds them
-- (hub-api.md section 12): HF_ENDPOINT; --token, HF_TOKEN, the legacy
-- HUGGING_FACE_HUB_TOKEN, the token file. The scan's options, scripts and the
-- REPL all read them here.
local hub = require "hfscan.hub.api"

local M = {}

M.ENDPOINT_EXPECTED = "an http:// or https:// URL"

-- An endpoint without its trailing slashes, or nil when it is not an http(s) URL.
function M.valid_endpoint(value)
  if type(value) ~= "string" or not value:match("^https?://[^/]+") then return nil end
  return (value:gsub("/+$", ""))
end

-- The endpoint: HF_ENDPOINT when set, else the Hub's. Returns it, or nil and a
-- message for a value that is not an http(s) URL.
function M.endpoint(env)
  local value = (env or os.getenv)("HF_ENDPOINT")
  if not value then return hub.DEFAULT_ENDPOINT end
  local endpoint = M.valid_endpoint(value)
  if not endpoint then return nil, ("HF_ENDPOINT: '%s' is not %s"):format(value, M.ENDPOINT_EXPECTED) end
  return endpoint
end

-- A path as huggingface_hub reads one from the environment: $VAR and ${VAR}
-- expanded (unknown ones left as they are), then a leading ~ (hub-api.md section 12).
function M.expand_path(path, env)
  path = path:gsub("%$(%b{})", function(braced)
    return env(braced:sub(2, -2)) or nil
  end)
  path = path:gsub("%$([%a_][%w_]*)", function(name) return env(name) or nil end)
  if path == "~" or path:sub(1, 2) == "~/" then path = (env("HOME") or "") .. path:sub(2) end
  return path
end

-- The token file of huggingface_hub: $HF_TOKEN_PATH, else $HF_HOME/token, where
-- HF_HOME defaults to $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
function M.token_file(env)
  local function var(name)
    local v = env(name)
    return v and v ~= "" and M.expand_path(v, env) or nil
  end
  if var("HF_TOKEN_PATH") then return var("HF_TOKEN_PATH") end
  local home = var("HF_HOME") or ((var("XDG_CACHE_HOME") or M.expand_path("~/.cache", env)) .. "/huggingface")
  return home .. "/token"
end

function M.read_token_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local token = (f:read("a") or ""):match("^%s*(.-)%s*$")
  f:close()
  return token ~= "" and token or nil
end

-- huggingface_hub's reading of a boolean variable.
local function is_true(value)
  local v = (value or ""):upper()
  return v == "1" or v == "ON" or v == "YES" or v == "TRUE"
end

-- The token and where it came from, in huggingface_hub's order: o.token (the
-- --token flag), then (unless HF_HUB_DISABLE_IMPLICIT_TOKEN or o.no_token)
-- HF_TOKEN, the legacy HUGGING_FACE_HUB_TOKEN, the token file. Returns token,
-- source, file (the token file's path when it came from there, so it can be
-- read again).
function M.find_token(o, env)
  o, env = o or {}, env or os.getenv
  if o.token then return o.token, "--token" end
  if o.no_token or is_true(env("HF_HUB_DISABLE_IMPLICIT_TOKEN")) then return nil end
  for _, name in ipairs({ "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN" }) do
    local v = env(name)
    if v and v ~= "" then return v, name end
  end
  local file = M.token_file(env)
  local token = M.read_token_file(file)
  if token then return token, "the token file " .. file, file end
  return nil
end

return M
