-- Reading a database CSV back: the # SCAN_PARAMETERS block, the column header
-- (checked against what hfscan writes), and the rows. A torn last row (the
-- file cut inside a record) is reported, not returned, so callers can repair
-- the file knowingly.
local hf = require "hfscan"

local M = {}

-- Opens path for reading row by row, expecting the given columns (or the
-- columns a function of the header's parameters gives). Returns
--   { path, comments = {text...}, parameters = {key = value}, header = {...} }
-- with doc:next() -> row (a list of fields), its line; nil at the end, when
-- doc.torn_line says whether the last line was cut short; doc:close(). Or nil
-- and a message that names the file and what is wrong with it. Rows are not
-- kept: memory does not grow with the file.
function M.open(path, columns)
  local reader, err = hf.csv_reader(path)
  if not reader then return nil, err end
  local doc = { path = path, comments = {}, parameters = {} }
  local fields, is_comment, terminated, line
  while true do
    fields, is_comment, terminated, line = reader:next()
    if fields == nil then break end
    if is_comment then
      doc.comments[#doc.comments + 1] = fields[1]
    else
      break
    end
  end
  if fields == nil and is_comment ~= nil then -- a malformed record in the header area
    reader:close()
    return nil, ("%s: %s"):format(path, is_comment)
  end
  if doc.comments[1] ~= "SCAN_PARAMETERS" then
    reader:close()
    return nil, ("%s is not an hfscan CSV: it does not begin with the # SCAN_PARAMETERS block"):format(path)
  end
  local closed = false
  for _, c in ipairs(doc.comments) do
    if c == "END_PARAMETERS" then closed = true end
    local key, value = c:match("^([%w_]+): ?(.*)$")
    if key then doc.parameters[key] = value end
  end
  if not closed then
    reader:close()
    return nil, ("%s: the # SCAN_PARAMETERS block has no # END_PARAMETERS line"):format(path)
  end
  if type(columns) == "function" then columns = columns(doc.parameters) end
  local expected = table.concat(columns, ",")
  if not fields or table.concat(fields, ",") ~= expected then
    reader:close()
    return nil, ("%s: the column header is '%s', expected '%s'"):format(path,
      fields and table.concat(fields, ",") or "(missing)", expected)
  end
  doc.header = fields
  local width = #columns
  local whole = reader:offset() -- the bytes up to the end of the last whole row
  -- Raises (a message naming file and line) for a row of the wrong width: the
  -- file is not what hfscan writes.
  function doc.next()
    if not reader then return nil end
    local row, comment, term, at = reader:next()
    if row == nil then
      if comment then doc.torn_line = tonumber(comment:match("line (%d+)")) or -1 end
      doc.close()
      return nil
    end
    if not term then
      doc.torn_line = at -- the last line lacks its line break: it may be cut short
      doc.close()
      return nil
    end
    if #row ~= width then
      doc.close()
      error(("%s: line %d has %d fields, expected %d"):format(doc.path, at, #row, width), 0)
    end
    whole = reader:offset()
    return row, at
  end
  -- Where the rows read so far end (bytes): after the last whole row.
  function doc.offset() return whole end
  -- Reads on from byte offset, which must begin a row (such as an offset
  -- given before). Lines are counted from there, and messages say so.
  function doc.seek(offset)
    local ok, err = reader:seek(offset)
    if not ok then error(("%s: %s"):format(path, err), 0) end
    whole = offset
    doc.path = ("%s (from byte %d)"):format(path, offset)
  end
  function doc.close()
    if reader then reader:close() end
    reader = nil
  end
  return doc
end

-- Reads path whole: M.open's doc with rows = { {field...}... } and lines =
-- {line of each row}, or nil and a message.
function M.read(path, columns)
  local doc, err = M.open(path, columns)
  if not doc then return nil, err end
  doc.rows, doc.lines = {}, {}
  local ok, rerr = pcall(function()
    for row, line in doc.next do
      doc.rows[#doc.rows + 1] = row
      doc.lines[#doc.lines + 1] = line
    end
  end)
  if not ok then return nil, rerr end
  return doc
end

-- A row as a table keyed by column name.
function M.record(columns, row)
  local r = {}
  for i, c in ipairs(columns) do r[c] = row[i] end
  return r
end

-- Rewrites a database CSV atomically: comments, header, then the rows that
-- next_row() gives until it returns nil (they stream: a file of any size is
-- rewritten in bounded memory). A kill at any instant leaves either the old
-- file or the new one. Returns true, or nil and a message.
function M.rewrite_from(path, comments, columns, next_row)
  -- <close>: a raise from next_row aborts the rewrite, leaving the old file.
  local w <close>, err = hf.csv_writer(path, "rewrite")
  if not w then return nil, err end
  for _, c in ipairs(comments) do w:comment(c) end
  w:row(columns)
  local ok, ferr, n = true, nil, 0
  for row in next_row do
    w:row(row)
    n = n + 1
    if n % 4096 == 0 then ok, ferr = w:flush() end -- the temporary file, not the target
    if not ok then break end
  end
  if ok then ok, ferr = w:flush() end
  if not ok then
    w:abort()
    return nil, ferr
  end
  return w:commit()
end

-- The same from a list of rows.
function M.rewrite(path, comments, columns, rows)
  local i = 0
  return M.rewrite_from(path, comments, columns, function()
    i = i + 1
    return rows[i]
  end)
end

return M
