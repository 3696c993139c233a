-- Reading a finished scan back, streamed: its extended rows (as records),
-- errors, and the commit of every finished repo. Used by diff, merge and --since.
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local hf = require "hfscan"
local names = require "hfscan.db.names"
local progress_file = require "hfscan.db.progress_file"

local M = {}


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

-- Gives a scan its status, and its progress file's finished repos when first
-- asked for (scan.finished): a merge that copies a shard by its bytes never
-- reads a map of its repos.
local function add_progress(scan)
  scan.status = M.status(scan.paths.metadata)
  setmetatable(scan, { __index = function(_, key)
    if key ~= "finished" then return nil end
    local progress = progress_file.read(scan.paths.progress)
    local finished = progress and progress.finished
    rawset(scan, "finished", finished)
    return finished
  end })
end

-- The commits the progress file records win over the rows' (set once the rows
-- are read). With none from the rows (a scan read from its database), the
-- progress file's map is taken as it is, unless it lacks a commit: a second
-- map of a million repos is worth not making.
local function take_progress_commits(scan)
  local finished = scan.finished or {}
  if next(scan.commits) == nil then
    local whole = true
    for _, commit in pairs(finished) do
      if commit == "" then whole = false break end
    end
    if whole then
      scan.commits = finished
      return
    end
  end
  for repo, commit in pairs(finished) do
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

-- A folder's latest scan, or an extended CSV's, to stream:
-- { paths, parameters, columns, finished = { [repo] = commit } (nil without a
--   progress file), status (the metadata's, nil while it has none),
--   commits = { [repo] = commit }, dropped = { [repo] = true } }.
-- scan.each_row(fn) hands the rows over one by one as records (fn(record))
-- after checking each (repair: see hfscan.db.files.screen_row; a bad row
-- raises otherwise, and with repair its repo goes in dropped). It fills
-- commits as it goes, then adds the progress file's (which win): memory grows
-- with repos, not rows. reader.errors(scan) reads the errors. Returns the
-- scan, or nil and a message.
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

-- The status recorded in a scan's metadata JSON, or nil (a scan still running, or
-- killed, has none).
function M.status(metadata_path)
  local meta = database.read_metadata(metadata_path)
  return meta and type(meta.status) == "string" and meta.status or nil
end

return M
