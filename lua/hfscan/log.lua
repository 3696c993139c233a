-- Log lines to a file (everything) and to stderr (unless quiet). Any secret
-- registered with add_secret is masked in every line, wherever it came from.
local clock = require "hfscan.clock"

local M = {}
local Log = {}
Log.__index = Log

function M.new(options)
  return setmetatable({ file = nil, quiet = options and options.quiet, secrets = {},
    before_stderr = nil }, Log)
end

function Log:add_secret(secret)
  if secret and #secret > 0 then self.secrets[#self.secrets + 1] = secret end
end

-- text with every one of secrets (a list of strings) replaced by [TOKEN_MASKED].
-- Every field of every row passes here: a plain search first, so the common
-- text with no secret in it costs no pattern.
function M.mask(text, secrets)
  for _, s in ipairs(secrets) do
    if text:find(s, 1, true) then text = text:gsub(s:gsub("%p", "%%%0"), "[TOKEN_MASKED]") end
  end
  return text
end

function Log:mask(text) return M.mask(text, self.secrets) end

function Log:open_file(path)
  local f, err = io.open(path, "a")
  if not f then return nil, err end
  f:setvbuf("line")
  self.file = f
  return true
end

function Log:write(level, fmt, ...)
  local text = self:mask(select("#", ...) > 0 and fmt:format(...) or fmt)
  local line = ("%s %-5s %s\n"):format(clock.utc_now(), level, text)
  if self.file then self.file:write(line) end
  if not self.quiet or level ~= "INFO" then
    if self.before_stderr then self.before_stderr() end
    io.stderr:write(line)
  end
end

function Log:info(fmt, ...) self:write("INFO", fmt, ...) end
function Log:warn(fmt, ...) self:write("WARN", fmt, ...) end
function Log:error(fmt, ...) self:write("ERROR", fmt, ...) end

-- Says a failure (as an error line), closes the log, and returns the exit
-- status (default 1): how a command ends when it cannot go on.
function Log:fail(message, status)
  self:error("%s", message)
  self:close()
  return status or 1
end

function Log:close()
  if self.file then self.file:close() end
  self.file = nil
end

return M
