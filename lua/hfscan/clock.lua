-- Time as every file, row and log line says it: UTC, ISO 8601, with Z; and the
-- stamp of a scan's file names, UTC too.
local M = {}

function M.utc_now() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

-- YYYYMMDD_HHMMSS, in UTC.
function M.file_stamp() return os.date("!%Y%m%d_%H%M%S") end

return M
