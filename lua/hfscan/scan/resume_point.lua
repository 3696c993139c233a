-- Where an interrupted scan stopped, from its progress file alone: each line
-- records the size of every CSV once that repo's rows were written. A repo's
-- rows are one block per file, written before its progress line, so whatever
-- follows the last line's sizes belongs to repos not finished, and a restart
-- cuts the files there: no row of a finished repo is read or rewritten. Cutting
-- to the same sizes again changes nothing, so a restart killed at any instant
-- of the cut resumes exactly. (hfscan.scan.survey reads the files row by row
-- when this cannot be done, and for --repair.)
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local hf = require "hfscan"
local manifest = require "hfscan.db.manifest"
local progress_file = require "hfscan.db.progress_file"
local scanner = require "hfscan.scan.scanner"
local store_db = require "hfscan.db.store"
local survey = require "hfscan.scan.survey"

local M = {}

-- Whether byte offset of path ends a line (or is 0).
local function ends_a_line(path, offset)
  if offset == 0 then return true end
  local f = io.open(path, "rb")
  if not f then return false end
  f:seek("set", offset - 1)
  local byte = f:read(1)
  f:close()
  return byte == "\n"
end

-- The resume point of a scan: { finished = a set of repos (see
-- hfscan.db.progress_file.scan), ends = { [kind] = bytes } (the last progress
-- line's), sizes (the CSVs' now), progress (what the progress file says) }; or
-- nil and why it cannot be used (the files are then read row by row).
function M.find(paths)
  if hf.file_type(paths.progress) ~= "file" then return nil, "the scan has no progress file" end
  local progress, err = progress_file.scan(paths.progress)
  if not progress then return nil, err end
  if not progress.with_ends then
    return nil, "its progress file records no file sizes (begun by an older hfscan, or updated since)"
  end
  if not progress.ends then return nil, "its progress file records no finished repo with sizes" end
  if progress.unfinished > 0 then
    return nil, ("%d repos left unfinished by temporary failures lie among the finished ones")
      :format(progress.unfinished)
  end
  local point = { finished = progress.finished, ends = progress.ends, sizes = {}, progress = progress }
  for _, kind in ipairs(database.CSV_KINDS) do
    local path, at = paths[kind], progress.ends[kind]
    local stat = hf.file_stat(path)
    if not (stat and stat.type == "file") then return nil, ("the scan's %s file is missing: %s"):format(kind, path) end
    if stat.size < at then
      return nil, ("%s holds %d bytes, fewer than the %d its progress file records"):format(path, stat.size, at)
    end
    if not ends_a_line(path, at) then
      return nil, ("%s: byte %d, where its progress file says the finished repos end, ends no line")
        :format(path, at)
    end
    point.sizes[kind] = stat.size
  end
  return point
end

-- Whether the files hold nothing past the resume point (no repo unfinished, no
-- cut line).
function M.nothing_past(point)
  for _, kind in ipairs(database.CSV_KINDS) do
    if point.sizes[kind] > point.ends[kind] then return false end
  end
  return not point.progress.torn
end

-- The repos whose rows lie between two offsets of an extended CSV (rows of
-- repos not finished, which the database may hold), as a set.
local function repos_between(path, from, upto)
  local doc = assert(csvfile.open(path, database.columns_of("extended")))
  local repos = {}
  doc.seek(from)
  local at = database.index(doc.header).repo_id
  for row in doc.next do
    repos[row[at]] = true
    if doc.offset() >= upto then break end
  end
  doc.close()
  return repos
end

-- Brings the folder's database to the scan's rows up to the resume point,
-- before the cut (the rows it holds past it name the repos to delete): from
-- where it was loaded through, it loads the rows up to the point, or deletes
-- the repos past it. Returns the store, scan_id and whether it is current (if
-- not, the scan's rows are imported whole after the cut); or nil and a message.
function M.catch_up_store(paths, point)
  local store, err = scanner.store_call(store_db.open, paths.dir)
  if not store then return nil, err end
  local scan_id, loaded = scanner.store_call(store.loaded_through, store, paths.ts)
  local upto = point.ends.extended
  if not (loaded and loaded <= point.sizes.extended) then return store, scan_id, false end
  local ok = scanner.store_call(function()
    local past = loaded > upto and repos_between(paths.extended, upto, loaded) or {}
    return assert(store:catch_up(paths, past, math.min(loaded, upto), upto))
  end)
  return store, scan_id, ok ~= nil
end

-- Whether the manifest still vouches for the files as the last run left them:
-- none shorter than it records (a cut file would be called truncated), and
-- the metadata as it was. Appends since are growth, which db check expects of
-- a run killed: the manifest is written again at the run's end, hashing every
-- file, which a restart's start need not wait for.
local function manifest_holds(paths)
  local recorded = manifest.recorded_sizes(paths)
  if not recorded then return false end
  for kind, size in pairs(recorded) do
    local stat = hf.file_stat(paths[kind])
    if not stat or stat.size < size or (kind == "metadata" and stat.size ~= size) then return false end
  end
  return true
end

-- Cuts each file at the resume point, saying what goes. Returns true, or nil
-- and a message.
function M.cut(paths, point, log)
  for _, kind in ipairs(database.CSV_KINDS) do
    local extra = point.sizes[kind] - point.ends[kind]
    if extra > 0 then
      local ok, err = hf.truncate_file(paths[kind], point.ends[kind])
      if not ok then return nil, err end
      log:warn("%s: removed the last %d bytes, rows of repos not finished (or a line cut by a kill); "
        .. "those repos are scanned again", paths[kind], extra)
    end
  end
  if point.progress.torn then
    local ok, err = hf.truncate_file(paths.progress, point.progress.whole)
    if not ok then return nil, err end
    log:warn("%s: removed its last line, cut short when the scan was killed", paths.progress)
  end
  if not manifest_holds(paths) then manifest.write_or_warn(paths, log) end
  return true
end

-- After the cut: a current database is told so again, which makes it newer
-- than the files just cut (readers judge it by that); one that was not is
-- given the scan's rows whole. Returns true, or nil and a message.
function M.settle_store(paths, point, store, scan_id, current)
  if current then return scanner.store_call(store.set_loaded_through, store, scan_id, point.ends.extended) end
  return scanner.store_call(store.import_scan, store, paths)
end

-- The scan's totals for the finished repos: the rows' from the database when
-- it is current, else from the extended file; the errors' from the errors file
-- (which, cut, holds only theirs). Returns stats, or nil and a message.
function M.totals(paths, point, store, scan_id)
  local stats, err = survey.count(paths, point.finished, store and { "errors" } or nil)
  if not stats then return nil, err end
  if store then
    local counts, cerr = scanner.store_call(store.row_counts, store, scan_id)
    if not counts then return nil, cerr end
    for _, r in ipairs(counts) do scanner.count_rows(stats, r.hash_method or "", r.failed == 1, r.n) end
  end
  stats.models_done = #point.finished
  return stats
end

return M
