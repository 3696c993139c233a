-- What a restart learns of a scan's files, in one streaming pass over each CSV
-- (memory grows with repos, never with rows: a 5M-row scan resumes on a small
-- machine), and the repair that removes what unfinished repos left behind.
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local hf = require "hfscan"
local progress_file = require "hfscan.db.progress_file"
local scanner = require "hfscan.scan.scanner"

local M = {}

local EXT = database.index(database.EXTENDED_COLUMNS)
local ERROR_TYPE = database.index(database.ERROR_COLUMNS).error_type
local REPO_COLUMN = { basic = database.index(database.BASIC_COLUMNS).repo_id, extended = EXT.repo_id,
  errors = database.index(database.ERROR_COLUMNS).repo_id }

M.COLUMNS = { basic = database.BASIC_COLUMNS, errors = database.ERROR_COLUMNS,
  extended = function(parameters) return database.extended_columns(database.extra_columns_of(parameters)) end }

-- The extended file first: it is the one a user names.
M.READ_ORDER = { "extended", "basic", "errors" }

-- Opens a CSV of the scan for one pass. Returns the doc, or nil and a message.
local function open(paths, kind)
  if hf.file_type(paths[kind]) ~= "file" then
    return nil, ("the scan's %s file is missing: %s"):format(kind, paths[kind])
  end
  return csvfile.open(paths[kind], M.COLUMNS[kind])
end

-- The header of each CSV (comments, parameters, columns), checked: a restart
-- refuses before it reads a row. Returns { [kind] = doc without rows }, or nil
-- and a message.
function M.headers(paths)
  local heads = {}
  for _, kind in ipairs(M.READ_ORDER) do
    local doc, err = open(paths, kind)
    if not doc then return nil, err end
    doc.close()
    heads[kind] = { path = doc.path, comments = doc.comments, parameters = doc.parameters,
      header = doc.header }
  end
  return heads
end

-- A progress file that a full disk or a kill left empty, or cut inside its
-- header line, says nothing: it is rebuilt like a missing one (issue 14).
local function progress_file_says_nothing(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local text = f:read(4096) or ""
  f:close()
  for _, columns in ipairs({ database.PROGRESS_COLUMNS, database.PROGRESS_COLUMNS_WITHOUT_ENDS }) do
    local header = table.concat(columns, ",") .. "\r\n"
    if #text < #header and header:sub(1, #text) == text then return true end
  end
  return false
end


-- The repos of the extended file, as finished, in order: all but the last,
-- which may have been cut short. Or nil and a message.
local function repos_of_extended(paths)
  local doc, err = open(paths, "extended")
  if not doc then return nil, err end
  local finished, order = {}, {}
  local ok, rerr = pcall(function()
    for row in doc.next do
      local repo = row[EXT.repo_id]
      if not finished[repo] then
        order[#order + 1] = repo
        finished[repo] = row[EXT.commit_hash]
      end
    end
  end)
  if not ok then return nil, rerr end
  local last = table.remove(order)
  if last then finished[last] = nil end
  return finished, order
end

-- The repos recorded as finished, in order, and whether the progress file
-- said so. Without a usable progress file (an older scan, a full disk), every
-- repo of the extended file but the last one.
function M.finished_repos(paths, log)
  if hf.file_type(paths.progress) == "file" and progress_file_says_nothing(paths.progress) then
    log:warn("%s is empty or cut short: it is rebuilt from the extended file", paths.progress)
  elseif hf.file_type(paths.progress) == "file" then
    local progress, err = progress_file.read(paths.progress, true)
    if not progress then return nil, err end
    return progress.finished, progress.order, true
  end
  log:warn("%s is missing or empty: taking the repos of the extended file as finished, except the last",
    paths.progress)
  local finished, order = repos_of_extended(paths)
  if not finished then return nil, order end
  return finished, order, false
end

-- One pass over a CSV: its torn last line, the repos with a malformed row (in
-- the basic and extended files: without repair the first refuses, naming file
-- and line; with it each is told to repair(text)), how many rows belong to
-- repos not finished, and each row to on_row(repo, row). Returns
-- { torn_line, damaged = { [repo] = true }, stray = n }, or nil and a message.
local function pass(paths, kind, finished, repair, on_row)
  local doc, err = open(paths, kind)
  if not doc then return nil, err end
  local result = { damaged = {}, stray = 0 }
  local checked = kind ~= "errors"
  local ok, perr = pcall(function()
    for row, line in doc.next do
      local repo = row[REPO_COLUMN[kind]]
      if checked and not database.screen_row(doc.path, line, csvfile.record(doc.header, row), repair) then
        result.damaged[repo] = true
      end
      if not finished[repo] then result.stray = result.stray + 1 end
      if on_row then on_row(repo, row) end
    end
  end)
  doc.close()
  if not ok then return nil, perr end
  result.torn_line = doc.torn_line
  return result
end

-- The counters of a survey for the finished repos: the scan's totals to go
-- on from (stats), and the rows per repo of the extended file (what the SQLite
-- store is brought up to). Memory: one count per repo.
local function counters(finished)
  local stats, rows_per_repo = scanner.new_stats(), {}
  return stats, rows_per_repo, {
    extended = function(repo, row)
      if not finished[repo] then return end
      rows_per_repo[repo] = (rows_per_repo[repo] or 0) + 1
      scanner.count_row(stats, row[EXT.hash], row[EXT.hash_method])
    end,
    errors = function(repo, row)
      if finished[repo] then scanner.count_error(stats, row[ERROR_TYPE]) end
    end,
  }
end

-- Surveys the three CSVs against the finished repos. Returns
-- { [kind] = pass result, damaged = { [repo] = true } (either file), stats,
--   rows_per_repo } (see counters), or nil and a message.
function M.survey(paths, finished, repair)
  local stats, rows_per_repo, on_row = counters(finished)
  local found = { damaged = {}, stats = stats, rows_per_repo = rows_per_repo }
  for _, kind in ipairs(M.READ_ORDER) do
    local result, err = pass(paths, kind, finished, repair, on_row[kind])
    if not result then return nil, err end
    found[kind] = result
    for repo in pairs(result.damaged) do found.damaged[repo] = true end
  end
  return found
end

-- Rewrites, streaming, each CSV that holds rows of repos not finished or a
-- torn last line, keeping only the finished repos' rows. Returns true, or nil
-- and a message.
function M.purge_unfinished(paths, found, finished, log)
  local any_damaged = next(found.damaged) ~= nil
  for _, kind in ipairs(database.CSV_KINDS) do
    local seen = found[kind]
    if seen.stray > 0 or seen.torn_line or any_damaged then
      local doc, err = open(paths, kind)
      if not doc then return nil, err end
      local dropped = 0
      local function next_kept()
        for row in doc.next do
          if finished[row[REPO_COLUMN[kind]]] then return row end
          dropped = dropped + 1
        end
        return nil
      end
      local ok, werr = csvfile.rewrite_from(doc.path, doc.comments, doc.header, next_kept)
      doc.close()
      if not ok then return nil, werr end
      if seen.torn_line then
        log:warn("%s: removing the torn last line (line %d), written when the scan was killed",
          doc.path, seen.torn_line)
      end
      if dropped > 0 then
        log:warn("%s: removing %d rows of a repo that was not finished; it is scanned again",
          doc.path, dropped)
      end
    end
  end
  return true
end

-- Counts what the files of kinds (default: the extended file and the errors)
-- hold for the finished repos, in one pass each. Returns the scan's totals
-- (stats) and the rows per repo of the extended file, or nil and a message.
function M.count(paths, finished, kinds)
  local stats, rows_per_repo, on_row = counters(finished)
  for _, kind in ipairs(kinds or { "extended", "errors" }) do
    local result, err = pass(paths, kind, finished, nil, on_row[kind])
    if not result then return nil, err end
  end
  return stats, rows_per_repo
end

-- Writes the progress file again for the finished repos, in order, with the
-- size each CSV had after each one's rows: one more pass over each file (which
-- must hold only their rows, as after purge_unfinished), so that the next
-- restart cuts instead of reading. Returns true, or nil and a message.
function M.rewrite_progress(paths, finished, order)
  local ends_at, current = {}, {}
  for _, kind in ipairs(database.CSV_KINDS) do
    local doc, err = open(paths, kind)
    if not doc then return nil, err end
    local at, column = {}, REPO_COLUMN[kind]
    current[kind] = doc.offset()
    local ok, perr = pcall(function()
      for row in doc.next do at[row[column]] = doc.offset() end
    end)
    doc.close()
    if not ok then return nil, perr end
    ends_at[kind] = at
  end
  local i = 0
  return csvfile.rewrite_from(paths.progress, {}, database.PROGRESS_COLUMNS, function()
    i = i + 1
    local repo = order[i]
    if not repo then return nil end
    for _, kind in ipairs(database.CSV_KINDS) do current[kind] = ends_at[kind][repo] or current[kind] end
    return database.progress_line(repo, finished[repo], current, 0)
  end)
end

-- The totals of what the files hold for the finished repos, and their rows
-- per repo. The survey counted them already, unless repos with bad rows were
-- taken out of the finished ones since (rare: then the purged files are
-- counted again). Returns stats, rows_per_repo, or nil and a message.
function M.totals(paths, found, finished, finished_count)
  local stats, rows_per_repo = found.stats, found.rows_per_repo
  if next(found.damaged) ~= nil then
    stats, rows_per_repo = M.count(paths, finished)
    if not stats then return nil, rows_per_repo end
  end
  stats.models_done = finished_count
  return stats, rows_per_repo
end

return M
