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

-- The form of a progress file's header, WITH_ENDS or WITHOUT_ENDS, or nil
-- and a message.
local function form_of(path, header)
  local text = table.concat(header or {}, ",")
  if text == table.concat(WITH_ENDS, ",") then return WITH_ENDS end
  if text == table.concat(WITHOUT_ENDS, ",") then return WITHOUT_ENDS end
  return nil, ("%s: the column header is '%s', expected '%s'"):format(path, text, table.concat(WITH_ENDS, ","))
end

-- Reads path. Returns
--   { finished = { [repo] = commit }, order = { repo... } (only when in_order
--     is given: a list of a million repos is worth not making), with_ends (the file
--     records sizes), ends = the last line's sizes (nil without them or
--     without lines), unfinished = its count of unfinished blocks before them,
--     whole = the bytes up to the end of the last whole line, torn = a cut
--     line follows them }
-- or nil and a message. Lines of another width are left out, as a cut one is.
-- The table read and scan give, from what hf.csv_key_map or hf.csv_key_set
-- read (finished, and its info).
local function described(path, finished, info)
  local columns, ferr = form_of(path, info.header)
  if not columns then return nil, ferr end
  local read = { finished = finished, with_ends = columns == WITH_ENDS, whole = info.whole, torn = info.torn }
  if read.with_ends and info.last then read.ends, read.unfinished = ends_of(info.last) end
  return read
end

function M.read(path, in_order)
  if not in_order then -- in C: a million lines leave no table per line behind
    local map, info = hf.csv_key_map(path)
    if not map then return nil, info end
    return described(path, map, info)
  end
  local reader, err = hf.csv_reader(path)
  if not reader then return nil, err end
  local columns, ferr = form_of(path, (reader:next()))
  if not columns then
    reader:close()
    return nil, ferr
  end
  local read = { finished = {}, order = in_order and {} or nil, with_ends = columns == WITH_ENDS,
    whole = reader:offset() }
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
      if order and finished[repo] == nil then order[#order + 1] = repo end
      finished[repo] = row[2]
      if read.with_ends then read.ends, read.unfinished = ends_of(row) end
    end
    read.whole = reader:offset()
  end
  reader:close()
  return read
end

-- Reads path as a restart needs it, in C: the same table as read, but with
-- finished a set (finished[repo] is true or nil; #finished counts them) and no
-- order nor commits. Memory: tens of bytes per repo.
function M.scan(path)
  local set, info, code = hf.csv_key_set(path)
  if not set then return nil, info, code end
  return described(path, set, info)
end

return M
