-- The scan's command line: the documented flags, their defaults and checks.
-- parse(args, env) returns options, or nil and a message naming the flag.
local cli = require "hfscan.cli"
local config = require "hfscan.config"
local database = require "hfscan.database"
local hub = require "hfscan.hub"

local M = {}

-- name, argument, default, help; the order of --help.
M.FLAGS = {
  { "--download-threshold", "N", 10000, "scan models with at least N downloads" },
  { "--output-dir", "DIR", database.DEFAULT_DIR, "where the database files go (created if missing)" },
  { "--max-workers", "N", 4, "concurrent workers" },
  { "--rate-limit", "S", 1.5, "each worker waits S seconds between its requests (0: no fixed delay)" },
  { "--max-file-size", "GB", 5.0, "largest file the download tier fetches" },
  { "--limit", "N", nil, "scan at most N models (testing)" },
  { "--restart", nil, nil, "resume the most recent scan in --output-dir" },
  { "--restart-from", "CSV", nil, "resume the scan of this extended CSV" },
  { "--token", "TOKEN", nil, "Hugging Face token (else HF_TOKEN, HUGGING_FACE_HUB_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token)" },
  { "--no-token", nil, nil, "scan anonymously: no token from the environment or the token file" },
  { "--update-failed-hashes", nil, nil, "retry the failed rows of the most recent scan (needs a token)" },
  { "--yes", nil, nil, "do not ask for confirmation" },
  { "--endpoint", "URL", hub.DEFAULT_ENDPOINT, "Hub endpoint (else HF_ENDPOINT)" },
  { "--policy", "FILE", nil, "a Lua scan policy: the hooks it returns replace the defaults" },
  { "--since", "PATH", nil, "incremental: carry over repos whose commit is unchanged since that scan (extended CSV or folder)" },
  { "--shard", "K/N", nil, "scan only the repos whose stable hash of the id falls in shard K of N (K from 0 to N-1)" },
  { "--retry-budget", "S", 30, "seconds a repo (or the listing) may wait on failures once every endpoint failed; then it is left unfinished for --restart" },
  { "--no-resolvers-route", nil, nil, "never ask /resolve/ per file to save api requests (the Hub counts those as downloads for GGUF files and many libraries' weights)" },
  { "--quiet", nil, nil, "no progress line; only warnings and errors on stderr" },
  { "--help", nil, nil, "show this help" },
  { "--version", nil, nil, "show the version" },
}

local by_name = {}
for _, f in ipairs(M.FLAGS) do by_name[f[1]] = f end

function M.help()
  local lines = {
    "usage: hfscan [options]",
    "       hfscan hash [-j N] FILE... | hfscan hash -c SUMFILE",
    "       hfscan --script FILE [ARGS...] | hfscan repl",
    "       hfscan lookup HASH... | hfscan verify PATH... | hfscan diff OLD NEW",
    "       hfscan merge DIR... | hfscan db build   (each takes --output-dir DIR; --help for more)",
    "",
    "Builds a database of the SHA-256 hashes of model files on the Hugging Face Hub.",
    "",
    "| flag | default | meaning |",
    "|---|---|---|",
  }
  for _, f in ipairs(M.FLAGS) do
    local flag = f[1] .. (f[2] and (" " .. f[2]) or "")
    local default = f[3] == nil and "" or tostring(f[3])
    lines[#lines + 1] = ("| `%s` | %s | %s |"):format(flag, default, f[4])
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "host options (before the others): --scripts-dir DIR (also HFSCAN_SCRIPTS_DIR)"
  return table.concat(lines, "\n")
end

local function integer(value, min)
  local n = tonumber(value)
  if not n or n ~= math.floor(n) or n < min or n > 2^53 then return nil end
  return math.tointeger(n)
end

local function number(value, min, exclusive)
  local n = tonumber(value)
  if not n or n ~= n or n == math.huge then return nil end
  if n < min or (exclusive and n == min) then return nil end
  return n
end

-- Checks each valued flag. Returns the converted value or nil, reason.
local CHECKS = {
  ["--download-threshold"] = function(v) return integer(v, 0), "a whole number of downloads, 0 or more" end,
  ["--max-workers"] = function(v)
    local n = integer(v, 1)
    return n and n <= 256 and n or nil, "a whole number from 1 to 256"
  end,
  ["--rate-limit"] = function(v) return number(v, 0), "a number of seconds, 0 or more" end,
  ["--retry-budget"] = function(v)
    local n = number(v, 0)
    return n and n <= 86400 and n or nil, "a number of seconds from 0 to 86400"
  end,
  ["--max-file-size"] = function(v) return number(v, 0, true), "a number of GB above 0" end,
  ["--limit"] = function(v) return integer(v, 1), "a whole number of models, 1 or more" end,
  ["--output-dir"] = function(v) return v ~= "" and v or nil, "a directory" end,
  ["--restart-from"] = function(v) return v ~= "" and v or nil, "an extended CSV file" end,
  ["--token"] = function(v) return v ~= "" and v or nil, "a token" end,
  ["--policy"] = function(v) return v ~= "" and v or nil, "a Lua file" end,
  ["--since"] = function(v) return v ~= "" and v or nil, "a scan's extended CSV or output folder" end,
  ["--shard"] = function(v)
    local k, n = v:match("^(%d+)/(%d+)$")
    k, n = tonumber(k), tonumber(n)
    if not k or n < 1 or k >= n then return nil, "K/N with 0 <= K < N (e.g. 0/4)" end
    return { k = math.tointeger(k), n = math.tointeger(n), text = v }, nil
  end,
  ["--endpoint"] = function(v) return config.valid_endpoint(v), config.ENDPOINT_EXPECTED end,
}

-- The command line as recorded in the files, with the token masked.
local function masked_command_line(args)
  local words, mask_next = { "hfscan" }, false
  for _, a in ipairs(args) do
    local word = a
    if mask_next then
      word = "[TOKEN_MASKED]"
    elseif a:match("^%-%-token=") then
      word = "--token=[TOKEN_MASKED]"
    end
    mask_next = a == "--token"
    if word:find("[%s'\"]") then word = "'" .. word:gsub("'", "'\\''") .. "'" end
    words[#words + 1] = word
  end
  return table.concat(words, " ")
end

-- Parses args. env(name) reads the environment (os.getenv by default).
-- Returns options, or nil and a message naming the offending flag.
function M.parse(args, env)
  env = env or os.getenv
  local o, given = {}, {}
  local function takes(name)
    local flag = by_name[name]
    return flag and (flag[2] or "flag")
  end
  local function on_option(name, value)
    if value ~= nil then
      local converted, expected = CHECKS[name](value)
      if converted == nil then return nil, ("%s: '%s' is not %s"):format(name, value, expected) end
      value = converted
    end
    o[cli.key_of(name)] = value == nil or value
    given[cli.key_of(name)] = true
    return true
  end
  local ok, err = cli.walk(args, takes, on_option, nil)
  if not ok then return nil, err end
  if o.restart and o.restart_from then
    return nil, "--restart and --restart-from cannot be used together"
  end
  for _, f in ipairs(M.FLAGS) do
    local key = cli.key_of(f[1])
    if o[key] == nil and f[3] ~= nil then o[key] = f[3] end
  end
  if not given.endpoint then
    local endpoint, eerr = config.endpoint(env)
    if not endpoint then return nil, eerr end
    o.endpoint = endpoint
  end
  o.endpoint = o.endpoint:gsub("/+$", "")
  if o.token and o.no_token then return nil, "--token and --no-token cannot be used together" end
  o.token, o.token_source, o.token_file = config.find_token(o, env)
  o.given = given
  o.command_line = masked_command_line(args)
  return o
end

return M
