-- Reading a scan's progress file (hf_scan_progress_<ts>.csv; its columns are
-- in hfscan.db.files): the repos finished, in order, with their commits, and
-- where the last one's rows end in each CSV. Streamed: memory grows with
-- repos, never with rows.
local database = require "hfscan.db.files"
local hf = require "hfscan"

local M = {}

local WITH_ENDS = database.PROGRESS_COLUMNS
local WITHOUT_ENDS = database.PROGRESS_COLUMNS_WITHOUT_ENDS

local function count(field)
  local n = math.tointeger(tonumber(field))
  return n and n >= 0 and n or nil
end

-- The sizes a progress line records ({ [kind] = bytes }) and its count of
-- unfinished blocks, or nil when a field is not a whole number.
local function ends_of(row)
  local ends = {}
  for i, kind in ipairs(database.CSV_KINDS) do
    ends[kind] = count(row[#WITHOUT_ENDS + i])
    if not ends[kind] then return nil end
  end
  local unfinished = count(row[#WITHOUT_ENDS + #database.CSV_KINDS + 1])
  if not unfinished then return nil end
  return ends, unfinished
end

-- Reads path. Returns
--   { finished = { [repo] = commit }, order = { repo... }, with_ends (the file
--     records sizes), ends = the last line's sizes (nil without them or
--     without lines), unfinished = its count of unfinished blocks before them,
--     whole = the bytes up to the end of the last whole line, torn = a cut
--     line follows them }
-- or nil and a message. Lines of another width are left out, as a cut one is.
function M.read(path)
  local reader, err = hf.csv_reader(path)
  if not reader then return nil, err end
  local header = table.concat(reader:next() or {}, ",")
  local columns = header == table.concat(WITH_ENDS, ",") and WITH_ENDS
    or header == table.concat(WITHOUT_ENDS, ",") and WITHOUT_ENDS
  if not columns then
    reader:close()
    return nil, ("%s: the column header is '%s', expected '%s'"):format(path, header,
      table.concat(WITH_ENDS, ","))
  end
  local read = { finished = {}, order = {}, with_ends = columns == WITH_ENDS, whole = reader:offset() }
  local finished, order = read.finished, read.order
  while true do
    local before = reader:offset()
    local row, _, terminated = reader:next()
    if row and not terminated then row = nil end
    if not row then
      read.torn = before < reader:offset()
      break
    end
    if #row == #columns then
      local repo = row[1]
      if finished[repo] == nil then order[#order + 1] = repo end
      finished[repo] = row[2]
      if read.with_ends then read.ends, read.unfinished = ends_of(row) end
    end
    read.whole = reader:offset()
  end
  reader:close()
  return read
end

return M
