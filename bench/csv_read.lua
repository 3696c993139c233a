-- bench/csv_read's reader: reads an extended CSV with hf.csv_reader and prints
-- the seconds the read took, the rows (records after the comment block, the
-- column header included) and the fields.
local hf = require "hfscan"
local path = ... or error("usage: csv_read.lua FILE.csv")
local started = hf.now()
local reader = assert(hf.csv_reader(path))
local rows, fields = 0, 0
while true do
  local record, is_comment = reader:next()
  if record == nil then
    assert(is_comment == nil, is_comment) -- a malformed record
    break
  end
  if not is_comment then
    rows = rows + 1
    fields = fields + #record
  end
end
reader:close()
print(string.format("%.6f %d %d", hf.now() - started, rows, fields))
