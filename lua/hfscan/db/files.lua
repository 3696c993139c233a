-- The database files of one scan, in the seed's formats:
--   hf_model_hashes_basic_<ts>.csv     hash,filename,repo_id
--   hf_model_hashes_extended_<ts>.csv  hash,filename,repo_id,file_size,file_type,
--                                      last_modified,download_url,hash_method,commit_hash
--   hf_scan_errors_<ts>.csv            repo_id,filename,error_type,reason,timestamp
--   scan_metadata_<ts>.json
--   hf_scan_progress_<ts>.csv          repo_id,commit_hash,errors_end,basic_end,
--                                      extended_end: the repos finished, and where
--                                      their rows end in each CSV
--   hf_scan_listing_<ts>.jsonl         the listing's pages read (hfscan.scan.listing)
--   hf_scan_manifest_<ts>.json         size and SHA-256 of the others (hfscan.db.manifest)
-- Each database CSV opens with the # SCAN_PARAMETERS block. A repo's rows are
-- appended as one block per file, each with a single write(2): errors, basic,
-- extended, and last its line in the progress file. A repo is complete exactly
-- when it is in the progress file; rows of any other repo are the remains of an
-- interrupted write, which a resumed scan removes before redoing that repo.
local clock = require "hfscan.clock"
local hex = require "hfscan.hex"
local hf = require "hfscan"
local json = require "hfscan.json"
local logging = require "hfscan.log"
local manifest = require "hfscan.db.manifest"
local tiers = require "hfscan.scan.tiers" -- a list of names: the hash_method values a row may hold

local M = {}

-- Where a command reads and writes the database when --output-dir is not given.
M.DEFAULT_DIR = "./output"

-- The hash column of a file that has none, and why.
M.FAILED_NO_HASH = "FAILED_NO_HASH"
M.FAILED_TOO_LARGE = "FAILED_TOO_LARGE"
M.FAILURES = { M.FAILED_NO_HASH, M.FAILED_TOO_LARGE }

-- The error type of an error that a later --update-failed-hashes replaced: kept
-- as history (its old type in the reason), counted apart from current errors.
M.SUPERSEDED = "superseded"

function M.is_failed(hash) return hash == M.FAILED_NO_HASH or hash == M.FAILED_TOO_LARGE end

-- What a hash column may hold: 64 lowercase hex digits, or a failure marker.
function M.valid_hash(hash)
  return M.is_failed(hash) or hex.is_stored_sha256(hash)
end

-- Why an extended row (a record) is not one hfscan writes, or nil: every row
-- read back is checked, so a damaged or tampered file is refused, not diffed,
-- imported or carried forward.
-- (The same of a row's three checked fields.)
function M.fields_problem(hash, method, commit)
  if not M.valid_hash(hash) then
    return ("hash '%s' is neither 64 lowercase hex digits nor a FAILED_* marker"):format(
      tostring(hash):sub(1, 80))
  end
  if method ~= nil and not (tiers.known(method) or M.is_failed(method)) then
    return ("hash_method '%s' is none of %s, %s"):format(tostring(method):sub(1, 80),
      table.concat(tiers.NAMES, ", "), table.concat(M.FAILURES, ", "))
  end
  if commit ~= nil and commit ~= "" and not hex.is_stored_git_oid(commit) then
    return ("commit_hash '%s' is not 40 lowercase hex digits"):format(commit:sub(1, 80))
  end
  return nil
end
function M.row_problem(record) return M.fields_problem(record.hash, record.hash_method, record.commit_hash) end

-- Checks one row read back (a record, at line of path). A good row: true. A
-- bad one raises a message naming file and line, unless repair(text) is
-- given, which is told of it: then false, and the row is to be dropped.
function M.screen_row(path, line, record, repair)
  return M.screen_fields(path, line, record.hash, record.hash_method, record.commit_hash, repair)
end

-- The same of a row's three checked fields (a bulk load reads rows as lists).
function M.screen_fields(path, line, hash, method, commit, repair)
  local problem = M.fields_problem(hash, method, commit)
  if not problem then return true end
  local text = ("%s:%d: %s"):format(path, line, problem)
  if not repair then error(text .. M.REPAIR_HINT, 0) end
  repair(text)
  return false
end

M.REPAIR_HINT = " (--repair drops such rows, each reported)"

M.utc_now = clock.utc_now

M.BASIC_COLUMNS = { "hash", "filename", "repo_id" }
M.EXTENDED_COLUMNS = { "hash", "filename", "repo_id", "file_size", "file_type", "last_modified",
  "download_url", "hash_method", "commit_hash" }
-- The columns --security-status adds to the extended file (after any
-- carried_over_from, before a policy's own): the Hub's own verdict of the file
-- (hfscan.scan.verdicts says how each is read from its securityFileStatus).
M.SECURITY_COLUMNS = { "security_status", "av_virus", "pickle_safety", "pickle_imports" }
-- The statuses by which the Hub flags a file (lookup --flagged lists them).
M.FLAGGED_STATUSES = { "unsafe", "suspicious", "caution" }

-- Whether a scan's header block (or its options' record) says it recorded the
-- Hub's verdicts.
function M.records_verdicts(parameters) return tostring(parameters.security_status) == "true" end

-- A row's verdict columns as a table, or nil when its scan recorded none.
function M.verdict_of(row)
  if row.security_status == nil then return nil end
  local verdict = {}
  for _, c in ipairs(M.SECURITY_COLUMNS) do verdict[c] = row[c] end
  return verdict
end
M.ERROR_COLUMNS = { "repo_id", "filename", "error_type", "reason", "timestamp" }

-- { name = position } of a column list, to read rows by name.
function M.index(columns)
  local at = {}
  for i, name in ipairs(columns) do at[name] = i end
  return at
end

-- The CSVs of a scan in the order a repo's rows are written (errors first, so a
-- row never stands without its error), then with the progress file.
M.CSV_KINDS = { "errors", "basic", "extended" }
M.FILE_KINDS = { "errors", "basic", "extended", "progress" }

-- The progress file's columns: a finished repo, its commit, the size of each
-- CSV once the repo's rows were written (<kind>_end), and how many blocks of
-- repos left unfinished (a temporary failure) lie before them. When that is 0,
-- whatever follows the last line's sizes belongs to repos not finished, so a
-- restart cuts the files there instead of rewriting them. Scans begun before
-- the sizes were recorded, and updated ones, have the first two columns only.
M.PROGRESS_COLUMNS_WITHOUT_ENDS = { "repo_id", "commit_hash" }
M.PROGRESS_COLUMNS = { table.unpack(M.PROGRESS_COLUMNS_WITHOUT_ENDS) }
for _, kind in ipairs(M.CSV_KINDS) do M.PROGRESS_COLUMNS[#M.PROGRESS_COLUMNS + 1] = kind .. "_end" end
M.PROGRESS_COLUMNS[#M.PROGRESS_COLUMNS + 1] = "unfinished_blocks"

-- A progress line with sizes: ends = { [kind] = bytes }, unfinished: a count.
function M.progress_line(repo_id, commit, ends, unfinished)
  local row = { repo_id, commit or "" }
  for _, kind in ipairs(M.CSV_KINDS) do row[#row + 1] = ends[kind] end
  row[#row + 1] = unfinished
  return row
end

M.KINDS = {
  basic = { prefix = "hf_model_hashes_basic_", columns = M.BASIC_COLUMNS },
  extended = { prefix = "hf_model_hashes_extended_", columns = M.EXTENDED_COLUMNS },
  errors = { prefix = "hf_scan_errors_", columns = M.ERROR_COLUMNS },
}

-- The order of the header block's keys (the seed's, then ours).
M.PARAMETER_KEYS = { "download_threshold", "max_file_size_gb", "rate_limit_delay", "max_workers",
  "scan_start", "target_extensions", "command_line", "authenticated", "output_format",
  "endpoint", "model_limit", "policy", "policy_sha256", "scripts", "scripts_digest", "token_user",
  "extra_columns", "shard", "since", "merged_from", "security_status" }

-- The header values that decide which repos and files a scan holds: scans that
-- differ in one of them are not comparable (diff) nor parts of one scan (merge).
M.SELECTION_KEYS = { "endpoint", "download_threshold", "model_limit", "shard", "policy",
  "policy_sha256" }

-- The first of keys two header blocks differ in, as "key: 'a' vs 'b'", or nil.
function M.selection_difference(a, b, keys)
  for _, key in ipairs(keys or M.SELECTION_KEYS) do
    local x, y = a[key] or "", b[key] or ""
    if x ~= y then return ("%s: '%s' vs '%s'"):format(key, x, y) end
  end
  return nil
end

-- The extended file's columns: the standard ones, then a policy's own.
function M.extended_columns(extra)
  local columns = { table.unpack(M.EXTENDED_COLUMNS) }
  for _, c in ipairs(extra or {}) do columns[#columns + 1] = c end
  return columns
end

function M.paths(dir, ts)
  return {
    dir = dir,
    ts = ts,
    basic = ("%s/%s%s.csv"):format(dir, M.KINDS.basic.prefix, ts),
    extended = ("%s/%s%s.csv"):format(dir, M.KINDS.extended.prefix, ts),
    errors = ("%s/%s%s.csv"):format(dir, M.KINDS.errors.prefix, ts),
    metadata = ("%s/scan_metadata_%s.json"):format(dir, ts),
    progress = ("%s/hf_scan_progress_%s.csv"):format(dir, ts),
    listing = ("%s/hf_scan_listing_%s.jsonl"):format(dir, ts),
    manifest = ("%s/hf_scan_manifest_%s.json"):format(dir, ts),
    log = ("%s/hfscan_%s.log"):format(dir, ts),
  }
end

local EXT_PREFIX = M.KINDS.extended.prefix

-- The timestamp of an extended CSV's name, or nil.
local function timestamp_of(name)
  return name:match("^" .. EXT_PREFIX .. "(%d%d%d%d%d%d%d%d_%d%d%d%d%d%d)%.csv$")
end
M.timestamp_of = timestamp_of

-- A timestamp whose files do not exist yet in dir (two scans in one second wait).
function M.fresh_timestamp(dir)
  while true do
    local ts = clock.file_stamp()
    if not hf.file_type(M.paths(dir, ts).extended) then return ts end
    hf.sleep(0.2)
  end
end

-- The folder and the name of a file's path ("." for a bare name, "/" at the root).
function M.split_path(path)
  local folder, name = path:match("^(.*)/([^/]*)$")
  if not folder then return ".", path end
  return folder == "" and "/" or folder, name
end

-- The paths of the most recent scan in dir, or of the scan an extended CSV
-- names. Returns paths, or nil and a message.
function M.locate(dir, extended)
  if extended then
    local folder, name = M.split_path(extended)
    local ts = timestamp_of(name)
    if not ts then
      return nil, ("%s is not an hfscan extended CSV (expected a name like %sYYYYMMDD_HHMMSS.csv)")
        :format(extended, EXT_PREFIX)
    end
    return M.paths(folder, ts)
  end
  local names, err = hf.list_dir(dir)
  if not names then return nil, err end
  local latest
  for _, name in ipairs(names) do
    local ts = timestamp_of(name)
    if ts and (not latest or ts > latest) then latest = ts end
  end
  if not latest then return nil, ("no scan in %s (no %s*.csv)"):format(dir, EXT_PREFIX) end
  return M.paths(dir, latest)
end

-- The extra columns (--since, a policy) that a header block records.
function M.extra_columns_of(parameters)
  local list = {}
  for name in (parameters.extra_columns or ""):gmatch("[^,]+") do list[#list + 1] = name end
  return list
end

-- The columns a CSV of a kind has, as hfscan.db.csv.read takes them: a list, or
-- for the extended file a function of its header block (a policy's own columns).
function M.columns_of(kind)
  if kind == "extended" then
    return function(parameters) return M.extended_columns(M.extra_columns_of(parameters)) end
  end
  return M.KINDS[kind].columns
end

local Db = {}
Db.__index = Db

-- A record's fields in the order of columns, as text, with every secret the db
-- knows masked: a server may echo the token into a message.
function Db:select_columns(record, columns)
  local out, secrets = {}, self.secrets
  local masking = secrets[1] ~= nil -- none (a merge): millions of rows need no search
  for i, c in ipairs(columns) do
    local v = record[c]
    if v == nil then v = "" elseif type(v) ~= "string" then v = tostring(v) end
    out[i] = masking and logging.mask(v, secrets) or v
  end
  return out
end

-- Marks a db written in bulk: no sync per repo, every file synced by close.
-- For a merge, whose output is used only once it is complete.
function Db:write_in_bulk() self.bulk = true end

-- Masks these secrets (a list that may grow: the log's) in every field written.
function Db:mask_with(secrets) self.secrets = secrets end

local function write_header(writer, parameters, kind, columns)
  writer:comment("SCAN_PARAMETERS")
  for _, key in ipairs(M.PARAMETER_KEYS) do
    local value = key == "output_format" and kind or parameters[key]
    if value ~= nil then writer:comment(key .. ": " .. tostring(value)) end
  end
  writer:comment("END_PARAMETERS")
  writer:row(columns)
  return writer:flush()
end

-- Creates the three CSVs with their header blocks. parameters: the header's
-- values (see PARAMETER_KEYS); extra_columns: a policy's added columns. Returns
-- a db, or nil and a message.
-- The order in which a new scan's files appear under their names: the extended
-- file, by which a scan is found, last, so that once it is there all are.
local CREATION_ORDER = { "errors", "basic", "progress", "extended" }

local function temporary(path) return path .. ".tmp" end

-- Writes the four files' headers under temporary names, syncs them, and gives
-- them their names: a kill or a full disk at any point leaves either a whole
-- new scan or none (a restart removes the temporaries).
local function create_files(db, parameters)
  for _, kind in ipairs(M.CSV_KINDS) do
    local w, err = hf.csv_writer(temporary(db.paths[kind]), "create")
    if not w then return nil, err end
    db.writers[kind] = w
    local ok, werr = write_header(w, parameters, kind,
      kind == "extended" and db.extended or M.KINDS[kind].columns)
    if not ok then return nil, werr end
  end
  local p, perr = hf.csv_writer(temporary(db.paths.progress), "create")
  if not p then return nil, perr end
  db.writers.progress = p
  p:row(M.PROGRESS_COLUMNS)
  for _, kind in ipairs(M.FILE_KINDS) do
    local ok, err = db.writers[kind]:sync()
    if not ok then return nil, err end
  end
  for _, kind in ipairs(CREATION_ORDER) do
    local ok, err = db.writers[kind]:rename(db.paths[kind])
    if not ok then return nil, err end
  end
  -- From its first instant a scan has a manifest: a first run killed shows as
  -- files that grew, not as a scan made before manifests.
  return manifest.write(db.paths)
end

function M.create(dir, ts, parameters, extra_columns)
  local db = setmetatable({ paths = M.paths(dir, ts), writers = {}, secrets = {},
    extended = M.extended_columns(extra_columns) }, Db)
  local ok, err = create_files(db, parameters)
  if ok then return db end
  -- A disk that fills while the files are made leaves no half-made scan behind
  -- for --restart to refuse: the scan simply has not begun.
  for _, kind in ipairs(M.FILE_KINDS) do
    if db.writers[kind] then db.writers[kind]:abort() end
    os.remove(temporary(db.paths[kind]))
    os.remove(db.paths[kind])
  end
  return nil, err
end

-- Opens existing files for appending (a resumed scan, whose repair left its
-- progress file with the sizes: hfscan.scan.restart).
function M.open_append(paths, extra_columns)
  local db = setmetatable({ paths = paths, writers = {}, secrets = {},
    extended = M.extended_columns(extra_columns) }, Db)
  for _, kind in ipairs(M.FILE_KINDS) do
    local w, err = hf.csv_writer(paths[kind], "append")
    if not w then return nil, err end
    db.writers[kind] = w
  end
  return db
end

-- Takes the output folder's lock (hf.lock_dir) until it is closed or the process
-- ends. Returns the lock, or nil and a message. A folder that does not exist yet
-- needs no lock: nothing can be writing there.
function M.lock(dir)
  if hf.file_type(dir) ~= "directory" then return { close = function() end } end
  -- A reader building a missing or stale database holds the lock for a while
  -- (seconds; a minute at millions of rows): a writer waits for it, within a
  -- bound, rather than fail a nightly scan, and for a holder that has not yet
  -- said who it is. Another writer is refused at once.
  local deadline = hf.now() + M.READER_LOCK_WAIT
  while true do
    local lock, err, code = hf.lock_dir(dir)
    local wait = code == "busy_reader" or code == "busy_starting"
    if lock or not wait or hf.now() >= deadline or hf.interrupted() then
      return lock, err, code
    end
    hf.sleep(0.1)
  end
end

M.READER_LOCK_WAIT = 300 -- seconds

-- A test hook: HFSCAN_TEST_CRASH=<point>:<n> kills the process with SIGKILL at
-- that point of the n-th repo written, to test resuming from every state.
local crash_point, crash_count = (os.getenv("HFSCAN_TEST_CRASH") or ""):match("^([%w_]+):(%d+)$")
crash_count = tonumber(crash_count)
local written = 0

-- Kills the process at point when it is the hook's and, with count, when count
-- is the hook's n.
function M.maybe_crash(point, count)
  if crash_point == point and (count == nil or count == crash_count) then hf.kill_self_for_tests() end
end
local function maybe_crash(point) M.maybe_crash(point, written) end

-- A test hook: HFSCAN_TEST_IO_TRACE=<file> appends a line per sync and per
-- progress append, so a test can check their order without strace.
local trace_path = os.getenv("HFSCAN_TEST_IO_TRACE")
local function trace(event)
  if not trace_path then return end
  local f = io.open(trace_path, "a")
  if f then
    f:write(event, "\n")
    f:close()
  end
end

-- The size of each CSV: { [kind] = bytes }, or nil and a message.
function Db:sizes()
  local sizes = {}
  for _, kind in ipairs(M.CSV_KINDS) do
    local size, err = self.writers[kind]:size()
    if not size then return nil, err end
    sizes[kind] = size
  end
  return sizes
end

-- The progress line of a finished repo. A db begins with no unfinished
-- block: a restart removes them all before it appends.
function Db:progress_row(repo_id, commit, ends)
  return M.progress_line(repo_id, commit, ends, self.unfinished_blocks or 0)
end

-- Appends one repo's rows and errors, each file in one write, then records the
-- repo as complete (unless finished is false: a restart then redoes it).
-- Returns the size of each CSV after the repo's rows (see sizes), or nil and a
-- message.
function Db:write_repo(rows, errors, repo_id, commit, finished)
  local blocks = { errors = {}, basic = {}, extended = {} }
  for _, e in ipairs(errors) do blocks.errors[#blocks.errors + 1] = self:select_columns(e, M.ERROR_COLUMNS) end
  for _, r in ipairs(rows) do
    blocks.basic[#blocks.basic + 1] = self:select_columns(r, M.BASIC_COLUMNS)
    blocks.extended[#blocks.extended + 1] = self:select_columns(r, self.extended)
  end
  written = written + 1
  for _, kind in ipairs(M.CSV_KINDS) do
    if #blocks[kind] > 0 then
      local ok, err = self.writers[kind]:write_block(blocks[kind])
      if not ok then return nil, err end
      trace("write " .. kind)
    end
    maybe_crash("after_" .. kind)
  end
  local ends, serr = self:sizes()
  if not ends then return nil, serr end
  if finished == false then
    self.unfinished_blocks = (self.unfinished_blocks or 0) + 1
    return ends
  end
  -- The repo's rows reach the disk before the line that calls it finished: a
  -- power loss must not leave a finished repo without its rows. A bulk writer
  -- (merge, whose output is whole or discarded) syncs once, at close.
  for _, kind in ipairs(M.CSV_KINDS) do
    if #blocks[kind] > 0 and not self.bulk then
      local ok, err = self.writers[kind]:sync()
      if not ok then return nil, err end
      trace("sync " .. kind)
    end
  end
  trace("append progress")
  local ok, err = self.writers.progress:write_block({ self:progress_row(repo_id, commit, ends) })
  if not ok then return nil, err end
  return ends
end

-- Commits every file. Returns true, or nil and the first error (a full disk,
-- a failed sync): the scan must not say it completed then.
function Db:close()
  local ok, first_err = true, nil
  for _, kind in ipairs(M.FILE_KINDS) do
    if self.writers[kind] then
      local cok, err = self.writers[kind]:close()
      if not cok and ok then ok, first_err = nil, err end
    end
  end
  self.writers = {}
  return ok, first_err
end

-- A scan's metadata JSON as a table, or nil (none yet, or unreadable).
function M.read_metadata(path)
  local f = io.open(path)
  if not f then return nil end
  local meta = require("cjson.safe").decode(f:read("a"))
  f:close()
  return type(meta) == "table" and meta or nil
end

-- Writes the metadata JSON whole or not at all (a temporary file, synced and
-- renamed over it): a full disk leaves the previous one, never an empty one.
-- Returns true, or nil and a message.
function M.write_metadata(path, metadata)
  return hf.write_file_atomically(path, json.encode(metadata) .. "\n")
end

return M
