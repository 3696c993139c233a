-- What decides a scan's rows besides its recorded settings: the policy file's
-- contents, the scripts that replace the bundled ones, and whose token it runs
-- with. The header block and the metadata record them; a restart refuses a
-- command line that would change any of them (issue 15), since the rows before
-- and after would then answer two different questions.
local hf = require "hfscan"

local M = {}

-- The header keys a restart must find unchanged, and how a refusal names each.
M.KEYS = {
  { "endpoint", "the endpoint" },
  { "download_threshold", "--download-threshold" },
  { "model_limit", "--limit" },
  { "shard", "--shard" },
  { "policy", "--policy" },
  { "policy_sha256", "the policy file's SHA-256 (the file was edited)" },
  { "scripts", "--scripts-dir" },
  { "scripts_digest", "the digest of the --scripts-dir files (a script was edited, added or removed)" },
  { "target_extensions", "the target extensions" },
  { "token_user", "the token's user" },
}

-- Keys that scans made before they were recorded lack: absent means unknown,
-- not "none", and is not compared.
local RECORDED_SINCE_ISSUE_15 = { policy_sha256 = true, scripts = true, scripts_digest = true,
  token_user = true }

-- The .lua files under dir, as paths relative to it, sorted.
local function lua_files(dir, relative, out)
  for _, name in ipairs(hf.list_dir(dir .. relative) or {}) do
    local path = relative .. "/" .. name
    local kind = hf.file_type(dir .. path)
    if kind == "directory" then
      lua_files(dir, path, out)
    elseif kind == "file" and name:match("%.lua$") then
      out[#out + 1] = path
    end
  end
  return out
end

-- One SHA-256 over each overriding file's path and SHA-256: any edit, addition
-- or removal of a script changes it. The host loads overrides from dir/hfscan.
function M.scripts_digest(dir)
  local lines = {}
  for _, path in ipairs(lua_files(dir, "/hfscan", {})) do
    lines[#lines + 1] = path .. " " .. (hf.sha256_file(dir .. path) or "unreadable")
  end
  return hf.sha256(table.concat(lines, "\n"))
end

-- The values for the header block of a scan run with options o (o.policy is
-- already an absolute path, o.token_user the whoami answer).
function M.of(o)
  local scripts_dir = hf.scripts_dir and (hf.realpath(hf.scripts_dir) or hf.scripts_dir)
  return {
    policy_sha256 = o.policy and hf.sha256_file(o.policy) or nil,
    scripts = scripts_dir or "bundled",
    scripts_digest = scripts_dir and M.scripts_digest(scripts_dir) or nil,
    token_user = o.token_user,
  }
end

-- How the header block recorded and the one this command line would write
-- differ, as a sentence, or nil when they agree. A token user the Hub could not
-- tell (whoami failed, then or now) is not held against the restart.
function M.difference(recorded, current)
  local newer = recorded.scripts ~= nil
  for _, entry in ipairs(M.KEYS) do
    local key, label = entry[1], entry[2]
    local was, now = recorded[key], current[key]
    local comparable = newer or not RECORDED_SINCE_ISSUE_15[key]
    if key == "token_user" and (was == nil or now == nil) then comparable = false end
    if comparable and tostring(was or "") ~= tostring(now or "") then
      return ("%s: the scan has '%s', this command line '%s'"):format(label,
        tostring(was or "none"), tostring(now or "none"))
    end
  end
  return nil
end

return M
