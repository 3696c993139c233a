-- Merging finished shards by their bytes. A shard whose files are exactly as
-- its manifest records them (so as hfscan wrote them, each row checked then)
-- and whose progress file records where each repo's rows end in each CSV, with
-- nothing after its last finished repo, is a header per file followed by its
-- repos' blocks. The merged files are then the shards' blocks one after the
-- other, and the merged progress file their lines with the sizes moved on: one
-- read and one write of the files, no row through Lua. (hfscan.commands.merge
-- merges row by row a shard that is not so, and with --repair.)
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local manifest = require "hfscan.db.manifest"
local progress_file = require "hfscan.db.progress_file"
local hf = require "hfscan"

local M = {}

local CHUNK = 1 << 20
local ENDS_AT = #database.PROGRESS_COLUMNS_WITHOUT_ENDS -- the ends follow repo and commit

-- Why a finished scan (hfscan.db.reader.open) cannot be merged by its bytes,
-- or nil.
function M.unfit(scan)
  local progress, err = progress_file.scan(scan.paths.progress)
  if not progress then return err end
  if not (progress.with_ends and progress.ends) then return "its progress file records no file sizes" end
  if progress.unfinished ~= 0 or progress.torn then return "its progress file has more than finished repos" end
  for _, kind in ipairs(database.CSV_KINDS) do
    local stat = hf.file_stat(scan.paths[kind])
    if not stat or stat.size ~= progress.ends[kind] then return kind .. " rows follow its last finished repo" end
  end
  local meta = database.read_metadata(scan.paths.metadata) or {}
  if not (tonumber(meta.total_files_processed) and tonumber(meta.failed_files)) then
    return "its metadata does not count its rows"
  end
  local report, merr = manifest.check(scan.paths)
  if not report then return merr end
  if #report.differences > 0 then return report.differences[1] end
  return nil
end

-- Where the rows of each of a scan's CSVs begin (after the header block).
local function starts_of(scan)
  local starts = {}
  for _, kind in ipairs(database.CSV_KINDS) do
    local doc = assert(csvfile.open(scan.paths[kind], database.columns_of(kind)))
    starts[kind] = doc.offset()
    doc.close()
  end
  return starts
end

-- Appends the bytes of path from offset from to upto to writer.
local function copy_bytes(path, from, upto, writer)
  local f = assert(io.open(path, "rb"))
  f:seek("set", from)
  local left = upto - from
  while left > 0 do
    local chunk = f:read(math.min(CHUNK, left))
    if not chunk then
      f:close()
      error(("%s ends before byte %d"):format(path, upto), 0)
    end
    local ok, err = writer:write_raw(chunk)
    if not ok then
      f:close()
      error(err, 0)
    end
    left = left - #chunk
  end
  f:close()
end

-- Appends the scan's progress lines to db's, each size moved from the scan's
-- file (starts: where its rows begin) to where they now are (bases). Returns
-- the number of repos.
local function append_progress(db, scan, starts, bases)
  local reader = assert(hf.csv_reader(scan.paths.progress))
  reader:next() -- the column header
  local batch, repos = {}, 0
  local function flush()
    local ok, err = db.writers.progress:write_block(batch)
    if not ok then error(err, 0) end
    batch = {}
  end
  for row, _, terminated in function() return reader:next() end do
    if terminated and #row == #database.PROGRESS_COLUMNS then
      local ends = {}
      for i, kind in ipairs(database.CSV_KINDS) do
        ends[kind] = bases[kind] + math.tointeger(tonumber(row[ENDS_AT + i])) - starts[kind]
      end
      batch[#batch + 1] = database.progress_line(row[1], row[2], ends, 0)
      repos = repos + 1
      if #batch >= 4096 then flush() end
    end
  end
  reader:close()
  flush()
  return repos
end

-- Appends a fit scan (see unfit) to db: its rows' bytes, then its progress
-- lines. Adds to totals { repos, rows, failed } (the rows' from its metadata,
-- which its manifest vouches for). Raises on a write that fails.
function M.append(db, scan, totals)
  local starts, bases = starts_of(scan), {}
  for _, kind in ipairs(database.CSV_KINDS) do
    bases[kind] = assert(db.writers[kind]:size())
    local size = hf.file_stat(scan.paths[kind]).size
    copy_bytes(scan.paths[kind], starts[kind], size, db.writers[kind])
  end
  totals.repos = totals.repos + append_progress(db, scan, starts, bases)
  local meta = database.read_metadata(scan.paths.metadata)
  totals.rows = totals.rows + tonumber(meta.total_files_processed)
  totals.failed = totals.failed + tonumber(meta.failed_files)
end

return M
