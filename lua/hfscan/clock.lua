-- Time as every file, row and log line says it: UTC, ISO 8601, with Z; and the
-- stamp of a scan's file names, UTC too.
local M = {}

function M.utc_now() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

-- YYYYMMDD_HHMMSS, in UTC.
function M.file_stamp() return os.date("!%Y%m%d_%H%M%S") end

-- The ISO form of a file stamp: a scan's start, the same instant its names carry.
function M.from_stamp(stamp)
  local y, mo, d, h, mi, s = stamp:match("^(%d%d%d%d)(%d%d)(%d%d)_(%d%d)(%d%d)(%d%d)$")
  return y and ("%s-%s-%sT%s:%s:%sZ"):format(y, mo, d, h, mi, s) or nil
end

return M
