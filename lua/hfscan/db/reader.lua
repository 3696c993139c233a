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

-- A folder (its latest scan) or an extended CSV; repair: see
-- hfscan.db.files.screen_rows. Returns
-- { paths, parameters, columns, rows = {records}, errors = {records},
--   commits = { [repo] = commit }, finished = { [repo] = commit } or nil when
--   the scan has no progress file, status = the metadata's status ("completed",
--   "incomplete", "interrupted", "failed") or nil while it has none,
--   dropped = { [repo] = true } for the repos whose bad rows repair dropped }
-- or nil, message.
function M.read(path, repair)
  local paths, err
  if hf.file_type(path) == "directory" then
    paths, err = database.locate(path)
  elseif hf.file_type(path) == "file" then
    paths, err = database.locate(nil, path)
  else
    return nil, path .. ": No such file or directory"
  end
  if not paths then return nil, err end
  local ext, eerr = csvfile.read(paths.extended, database.columns_of("extended"))
  if not ext then return nil, eerr end
  local errs, rerr = csvfile.read(paths.errors, database.ERROR_COLUMNS)
  if not errs then return nil, rerr end
  local records = {}
  for i, row in ipairs(ext.rows) do records[i] = record(ext.header, row) end
  local rows, dropped = database.screen_rows(paths.extended, records, ext.lines, repair)
  if not rows then return nil, dropped end
  local scan = { paths = paths, parameters = ext.parameters, columns = ext.header, rows = rows,
    errors = {}, commits = {}, dropped = {} }
  for _, rec in ipairs(rows) do scan.commits[rec.repo_id] = rec.commit_hash end
  for _, rec in ipairs(dropped) do scan.dropped[rec.repo_id] = true end
  for i, row in ipairs(errs.rows) do scan.errors[i] = record(database.ERROR_COLUMNS, row) end
  local progress = csvfile.read_plain(paths.progress, database.PROGRESS_COLUMNS)
  scan.finished = progress and {} or nil
  for _, row in ipairs(progress and progress.rows or {}) do
    local repo, commit = row[PROGRESS.repo_id], row[PROGRESS.commit_hash]
    scan.finished[repo] = commit
    if commit ~= "" then scan.commits[repo] = commit end
  end
  scan.status = M.status(paths.metadata)
  return scan
end

-- The status recorded in a scan's metadata JSON, or nil (a scan still running, or
-- killed, has none).
function M.status(metadata_path)
  local meta = database.read_metadata(metadata_path)
  return meta and type(meta.status) == "string" and meta.status or nil
end

return M
