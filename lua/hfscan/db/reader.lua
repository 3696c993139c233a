-- Reading a whole finished scan back: its extended rows (as records), errors,
-- and the commit of every finished repo. Used by diff, merge and --since.
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local hf = require "hfscan"
local names = require "hfscan.db.names"

local M = {}

local PROGRESS = database.index(database.PROGRESS_COLUMNS)

-- A row or error of a file as a record, its name in the text form whoever
-- wrote it (an older hfscan wrote names raw): what is read back compares
-- equal to what a scan writes now, and is text when it is written again.
local function record(columns, row)
  local rec = csvfile.record(columns, row)
  rec.filename = names.canonical(rec.filename)
  return rec
end

-- Where a folder's latest scan, or an extended CSV's scan, is. Returns paths,
-- or nil and a message.
local function locate(path)
  if hf.file_type(path) == "directory" then return database.locate(path) end
  if hf.file_type(path) == "file" then return database.locate(nil, path) end
  return nil, path .. ": No such file or directory"
end

-- Adds the progress file's finished repos to a scan, and its status.
local function add_progress(scan)
  local progress = csvfile.read_plain(scan.paths.progress, database.PROGRESS_COLUMNS)
  scan.finished = progress and {} or nil
  for _, row in ipairs(progress and progress.rows or {}) do
    scan.finished[row[PROGRESS.repo_id]] = row[PROGRESS.commit_hash]
  end
  scan.status = M.status(scan.paths.metadata)
end

-- The commits the progress file records win over the rows' (set once the rows
-- are read).
local function take_progress_commits(scan)
  for repo, commit in pairs(scan.finished or {}) do
    if commit ~= "" then scan.commits[repo] = commit end
  end
end

-- The errors of a scan, as records, read whole (they are a few per repo).
-- Returns the list, or nil and a message.
function M.errors(scan)
  local errs, err = csvfile.read(scan.paths.errors, database.ERROR_COLUMNS)
  if not errs then return nil, err end
  local list = {}
  for i, row in ipairs(errs.rows) do list[i] = record(database.ERROR_COLUMNS, row) end
  return list
end

-- A scan to stream: what M.read gives but rows and errors, which
-- scan.each_row(fn) hands over one by one as records (fn(record)) after
-- checking each (repair: see hfscan.db.files.screen_rows; a bad row raises
-- otherwise). finished and status are there at once; each_row fills
-- scan.commits and scan.dropped as it goes, then adds the progress file's
-- commits (which win): memory grows with repos, not rows. Returns the scan, or
-- nil and a message.
function M.open(path, repair)
  local paths, err = locate(path)
  if not paths then return nil, err end
  local ext, eerr = csvfile.open(paths.extended, database.columns_of("extended"))
  if not ext then return nil, eerr end
  local scan = { paths = paths, parameters = ext.parameters, columns = ext.header, commits = {},
    dropped = {} }
  add_progress(scan)
  scan.take_progress_commits = function() take_progress_commits(scan) end
  function scan.each_row(fn)
    for row, line in ext.next do
      local rec = record(ext.header, row)
      if not database.screen_row(paths.extended, line, rec, repair) then
        scan.dropped[rec.repo_id] = true
      else
        scan.commits[rec.repo_id] = rec.commit_hash
        fn(rec)
      end
    end
    take_progress_commits(scan)
  end
  return scan
end

-- A folder (its latest scan) or an extended CSV, read whole; repair: see
-- hfscan.db.files.screen_rows. Returns
-- { paths, parameters, columns, rows = {records}, errors = {records},
--   commits = { [repo] = commit }, finished = { [repo] = commit } or nil when
--   the scan has no progress file, status = the metadata's status ("completed",
--   "incomplete", "interrupted", "failed") or nil while it has none,
--   dropped = { [repo] = true } for the repos whose bad rows repair dropped }
-- or nil, message.
function M.read(path, repair)
  local scan, err = M.open(path, repair)
  if not scan then return nil, err end
  local errors, rerr = M.errors(scan)
  if not errors then return nil, rerr end
  scan.rows, scan.errors = {}, errors
  local ok, serr = pcall(scan.each_row, function(rec) scan.rows[#scan.rows + 1] = rec end)
  if not ok then return nil, serr end
  return scan
end

-- The status recorded in a scan's metadata JSON, or nil (a scan still running, or
-- killed, has none).
function M.status(metadata_path)
  local meta = database.read_metadata(metadata_path)
  return meta and type(meta.status) == "string" and meta.status or nil
end

return M
