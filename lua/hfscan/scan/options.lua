-- The scan's command line: the documented flags, their defaults and checks.
-- parse(args, env) returns options, or nil and a message naming the flag.
local cli = require "hfscan.cli"
local config = require "hfscan.config"
local database = require "hfscan.db.files"
local hub = require "hfscan.hub.api"

local M = {}

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

local function text(v) return v ~= "" and v or nil end

-- The kinds of result --fail-on can name, and the exit status each one gives
-- a scan that otherwise completed (the first found in this order wins).
M.FAIL_ON = { { "mismatch", 3 }, { "failed", 4 }, { "errors", 4 } }

-- "mismatch,failed" -> { mismatch = true, failed = true }; "none" -> {}; nil
-- for an unknown kind.
function M.fail_on(v)
  local known, set = {}, {}
  for _, kind in ipairs(M.FAIL_ON) do known[kind[1]] = true end
  if v == "none" then return set end
  for word in (v .. ","):gmatch("([^,]*),") do
    if not known[word] then return nil end
    set[word] = true
  end
  return set
end

-- "K/N" -> { k, n, text }, or nil unless 0 <= K < N.
function M.shard(v)
  local k, n = v:match("^(%d+)/(%d+)$")
  k, n = tonumber(k), tonumber(n)
  if not k or n < 1 or k >= n then return nil end
  return { k = math.tointeger(k), n = math.tointeger(n), text = v }
end

-- Values read back from a header block (text) into options.
local from_header = {
  integer = function(v) return math.tointeger(tonumber(v)) end,
  float = function(v) local n = tonumber(v) return n and n + 0.0 end,
  text = tostring,
  flag = function(v) return v == "true" or nil end,
}

-- Every setting of the scan once, in the order of --help: its flag and
-- argument, default, help line, and check (value -> converted or nil, and what
-- was expected); record: its key in the CSV header block and in the metadata
-- JSON; resumed: how a restart reads it back from the header (the command line
-- wins), update = false when --update-failed-hashes keeps its own value.
M.SETTINGS = {
  { "--download-threshold", "N", 10000, "scan models with at least N downloads",
    check = function(v) return integer(v, 0), "a whole number of downloads, 0 or more" end,
    record = "download_threshold", resumed = from_header.integer },
  { "--output-dir", "DIR", database.DEFAULT_DIR, "where the database files go (created if missing)",
    check = function(v) return text(v), "a directory" end },
  { "--max-workers", "N", 4, "concurrent workers",
    check = function(v)
      local n = integer(v, 1)
      return n and n <= 256 and n or nil, "a whole number from 1 to 256"
    end,
    record = "max_workers", resumed = from_header.integer },
  { "--rate-limit", "S", 1.5, "each worker waits S seconds between its requests (0: no fixed delay)",
    check = function(v) return number(v, 0), "a number of seconds, 0 or more" end,
    record = "rate_limit_delay", resumed = from_header.float },
  { "--max-file-size", "GB", 5.0, "largest file the download tier fetches",
    check = function(v) return number(v, 0, true), "a number of GB above 0" end,
    record = "max_file_size_gb", resumed = from_header.float },
  { "--limit", "N", nil, "scan at most N models (testing)",
    check = function(v) return integer(v, 1), "a whole number of models, 1 or more" end,
    record = "model_limit", resumed = from_header.integer, update = false },
  { "--restart", nil, nil, "resume the most recent scan in --output-dir" },
  { "--restart-from", "CSV", nil, "resume the scan of this extended CSV",
    check = function(v) return text(v), "an extended CSV file" end },
  { "--token", "TOKEN", nil, "Hugging Face token (else HF_TOKEN, HUGGING_FACE_HUB_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token)",
    check = function(v) return text(v), "a token" end },
  { "--no-token", nil, nil, "scan anonymously: no token from the environment or the token file" },
  { "--update-failed-hashes", nil, nil, "retry the failed rows of the most recent scan (those of gated repos with a token)" },
  { "--yes", nil, nil, "do not ask for confirmation" },
  { "--endpoint", "URL", hub.DEFAULT_ENDPOINT, "Hub endpoint (else HF_ENDPOINT)",
    check = function(v) return config.valid_endpoint(v), config.ENDPOINT_EXPECTED end,
    record = "endpoint", resumed = from_header.text },
  { "--policy", "FILE", nil, "a Lua scan policy: the hooks it returns replace the defaults",
    check = function(v) return text(v), "a Lua file" end },
  { "--since", "PATH", nil, "incremental: carry over repos whose commit is unchanged since that scan (extended CSV or folder)",
    check = function(v) return text(v), "a scan's extended CSV or output folder" end },
  { "--repair", nil, nil, "with --since or --restart: drop that scan's rows with a malformed hash, method or commit (each reported) and rescan their repos, instead of refusing it" },
  { "--shard", "K/N", nil, "scan only the repos whose stable hash of the id falls in shard K of N (K from 0 to N-1)",
    check = function(v) return M.shard(v), "K/N with 0 <= K < N (e.g. 0/4)" end },
  { "--retry-budget", "S", 30, "seconds a repo (or the listing) may wait on failures once every endpoint failed; then it is left unfinished for --restart",
    check = function(v)
      local n = number(v, 0)
      return n and n <= 86400 and n or nil, "a number of seconds from 0 to 86400"
    end },
  { "--stall-timeout", "S", 30, "seconds a transfer may go without an answer, or below 1 KiB/s, before it is given up (and retried or left for --restart)",
    check = function(v)
      local n = number(v, 1)
      return n and n <= 3600 and n or nil, "a number of seconds from 1 to 3600"
    end },
  { "--fail-on", "KINDS", "mismatch", "which results of a completed scan fail it: mismatch (hash_mismatch rows: exit 3), failed (FAILED_* rows: exit 4), errors (any error row: exit 4), comma-separated, or none",
    check = function(v) return M.fail_on(v), "mismatch, failed, errors (comma-separated) or none" end },
  { "--security-status", nil, nil, "record the Hub's own verdict of each file (security_status, av_virus, pickle_safety, pickle_imports): one more api request per repo at most",
    record = "security_status", resumed = from_header.flag },
  { "--no-resolvers-route", nil, nil, "never ask /resolve/ per file to save api requests (the Hub counts those as downloads for GGUF files and many libraries' weights)" },
  { "--quiet", nil, nil, "no progress line; only warnings and errors on stderr" },
  { "--help", nil, nil, "show this help" },
  { "--version", nil, nil, "show the version" },
}

-- Gives each setting its key in the options (--max-workers: max_workers).
cli.index_flags(M.SETTINGS)

-- The settings a scan records (header block and metadata) and a restart reads back.
M.RECORDED = {}
for _, f in ipairs(M.SETTINGS) do
  if f.record then M.RECORDED[#M.RECORDED + 1] = f end
end

-- { [record key] = value } of the recorded settings of options o.
function M.recorded(o)
  local values = {}
  for _, f in ipairs(M.RECORDED) do values[f.record] = o[f.key] end
  return values
end

-- Takes the recorded settings from a header block's values (parameters) into o,
-- unless the command line gave them; for_update skips those an update keeps.
-- say(key, value, origin) tells where each one came from.
function M.take_recorded(o, parameters, say, for_update)
  for _, f in ipairs(M.RECORDED) do
    if not (for_update and f.update == false) then
      local from_file = parameters[f.record] and f.resumed(parameters[f.record])
      if o.given[f.key] or from_file == nil then
        if o[f.key] ~= nil and say then
          say(f.record, o[f.key], o.given[f.key] and "from the command line" or "default")
        end
      else
        o[f.key] = from_file
        if say then say(f.record, o[f.key], "from the scan's files") end
      end
    end
  end
end

-- The scan's flags as a table: flag, default, meaning (the part of hfscan --help
-- that hfscan.main does not write itself).
function M.flag_table()
  local lines = { "| flag | default | meaning |", "|---|---|---|" }
  for _, f in ipairs(M.SETTINGS) do
    local flag = f[1] .. (f[2] and (" " .. f[2]) or "")
    local default = f[3] == nil and "" or tostring(f[3])
    lines[#lines + 1] = ("| `%s` | %s | %s |"):format(flag, default, f[4])
  end
  return table.concat(lines, "\n")
end

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
  local o, given = cli.parse_flags(args, M.SETTINGS, nil)
  if not o then return nil, given end
  if o.restart and o.restart_from then
    return nil, "--restart and --restart-from cannot be used together"
  end
  if not given.endpoint then
    local endpoint, eerr = config.endpoint(env)
    if not endpoint then return nil, eerr end
    o.endpoint = endpoint
  end
  if o.token and o.no_token then return nil, "--token and --no-token cannot be used together" end
  -- A restart reads the --since of the scan's files.
  if o.repair and not (o.since or o.restart or o.restart_from) then
    return nil, "--repair is for the scan --since reads (or, from the command line, for db build, diff and merge)"
  end
  o.token, o.token_source, o.token_file = config.find_token(o, env)
  if type(o.fail_on) == "string" then o.fail_on = M.fail_on(o.fail_on) end -- the default
  o.given = given
  o.command_line = masked_command_line(args)
  return o
end

return M
