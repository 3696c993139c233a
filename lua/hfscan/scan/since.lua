-- What an incremental scan (--since) starts from, and the --since and --policy
-- files of a scan, checked together before anything is written.
local cli = require "hfscan.cli"
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local hf = require "hfscan"
local policies = require "hfscan.scan.policy"

local M = {}

-- The rows of the earlier scan wait in a private temporary SQLite file (SQLite
-- deletes it when the connection closes), indexed by repo: a 5M-row scan is
-- carried from in memory that grows with its repos, not its rows.
local function row_store(columns)
  local db = assert(hf.sqlite_open(""))
  db:exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-32768;"
    .. "CREATE TABLE rows (repo_id TEXT NOT NULL, line TEXT NOT NULL);")
  local insert = db:prepare("INSERT INTO rows VALUES (?, ?)")
  local store = {}
  function store.add(rec)
    local fields = {}
    for i, c in ipairs(columns) do fields[i] = rec[c] or "" end
    insert:run(rec.repo_id, hf.csv_format_row(fields))
  end
  function store.done()
    insert:close()
    db:exec("COMMIT; CREATE INDEX rows_by_repo ON rows(repo_id);")
  end
  -- A repo's rows as records, in the order the scan wrote them.
  function store.rows_of(repo)
    local rows = {}
    for _, r in ipairs(db:query("SELECT line FROM rows WHERE repo_id = ? ORDER BY rowid", repo)) do
      local fields = hf.csv_string_reader(r.line):next()
      rows[#rows + 1] = csvfile.record(columns, fields)
    end
    return rows
  end
  db:exec("BEGIN")
  return store
end

-- The columns the folder's database keeps of each row (a policy's own
-- columns are only in the CSV).
local STORED = { carried_over_from = true }
for _, c in ipairs(database.EXTENDED_COLUMNS) do STORED[c] = true end

-- The earlier scan's rows straight from its folder's database, when that is
-- current, the scan has a progress file and no column the database lacks:
-- nothing is loaded, a carried repo's rows are one indexed query. Returns
-- rows_of(repo) and the set of repos with a failed row, or nil.
local function rows_from_database(scan)
  if not scan.finished then return nil end
  for _, c in ipairs(scan.columns) do
    if not STORED[c] then return nil end
  end
  local db = require("hfscan.db.readonly").current(scan.paths.dir)
  if not db then return nil end
  local found = db.db:query("SELECT scan_id FROM scans WHERE timestamp = ?", scan.paths.ts)[1]
  if not found then
    db:close()
    return nil
  end
  local failed = {}
  for _, r in ipairs(db.db:query([[SELECT DISTINCT repo_id FROM files
    WHERE scan_id = ? AND hash LIKE 'FAILED%']], found.scan_id)) do
    failed[r.repo_id] = true
  end
  -- +scan_id: the rows are found by (repo, path), not among all the scan's.
  local function rows_of(repo)
    local rows = db.db:query([[SELECT hash, filename, repo_id, file_size, file_type, last_modified,
      download_url, hash_method, commit_hash FROM files WHERE +scan_id = ? AND repo_id = ?
      ORDER BY rowid]], found.scan_id, repo)
    for _, r in ipairs(rows) do
      r.file_size = r.file_size and tostring(r.file_size) or ""
      for _, c in ipairs(database.EXTENDED_COLUMNS) do r[c] = r[c] or "" end
    end
    return rows
  end
  return rows_of, failed
end

-- The scan an incremental scan starts from (--since: an extended CSV or a
-- folder's latest scan): { ts, path, policy, policy_sha256,
-- repos = { [id] = commit }, rows_of(id) -> its rows, errors_of(id) -> its
-- errors }. A string per repo, and a list only for repos with errors: a
-- scan of a million repos is carried from a few hundred megabytes. Only repos
-- recorded as finished, without a repo-level error or a failed file, can be
-- carried: a failure may have been the Hub's day or a missing token. repair:
-- see hfscan.db.files.screen_row; a repo whose rows it dropped is scanned
-- again.
function M.load_previous(path, repair)
  local reader = require "hfscan.db.reader"
  local scan, err = reader.open(path, repair)
  if not scan then return nil, err end
  local errors, eerr = reader.errors(scan)
  if not errors then return nil, eerr end
  local rows_of, failed = nil, nil
  if not repair then rows_of, failed = rows_from_database(scan) end
  if not rows_of then
    local store = row_store(scan.columns)
    failed = {}
    local ok, rerr = pcall(scan.each_row, function(rec)
      store.add(rec)
      -- A failure may have been the Hub's day or the lack of a token: rescan.
      if database.is_failed(rec.hash) then failed[rec.repo_id] = true end
    end)
    if not ok then return nil, rerr end
    store.done()
    rows_of = store.rows_of
  end
  -- The reader's own map of finished repos to commits becomes the carried one.
  local repos, errors_by_repo = scan.finished or scan.commits, {}
  for _, rec in ipairs(errors) do
    if repos[rec.repo_id] then
      if rec.filename == "" then failed[rec.repo_id] = true end
      errors_by_repo[rec.repo_id] = errors_by_repo[rec.repo_id] or {}
      table.insert(errors_by_repo[rec.repo_id], rec)
    end
  end
  for id in pairs(failed) do repos[id] = nil end
  for id in pairs(scan.dropped) do repos[id] = nil end
  return { ts = scan.paths.ts, repos = repos, path = scan.paths.extended,
    policy = scan.parameters.policy, policy_sha256 = scan.parameters.policy_sha256,
    security_status = database.records_verdicts(scan.parameters),
    rows_of = rows_of, errors_of = function(id) return errors_by_repo[id] or {} end }
end

-- Loads what --since and --policy name and records them as absolute paths (a
-- restart may run from another folder). Returns the extra columns they add, or
-- nil, a message and the exit status (2 for a --since that cannot be used, a
-- usage error; 1 for a policy that does not load, as for a policy that fails). The rows carried over from the --since scan were chosen by
-- its policy: carrying them into a scan with another policy would mix two
-- selections of files, so that is refused.
function M.load_since_and_policy(o)
  local extra = {}
  if o.since then
    local repair, summary = cli.repairer(nil, o.repair)
    local previous, err = M.load_previous(o.since, repair)
    summary()
    if not previous then return nil, "--since: " .. tostring(err), cli.EXIT_USAGE end
    o.previous = previous
    o.since = hf.realpath(previous.path) or previous.path
    extra[1] = "carried_over_from"
  end
  if o.security_status then
    for _, c in ipairs(database.SECURITY_COLUMNS) do extra[#extra + 1] = c end
  end
  if o.policy then
    local ok, loaded = pcall(policies.load, o.policy)
    if not ok then return nil, tostring(loaded), 1 end
    o.loaded_policy = loaded
    o.policy = hf.realpath(o.policy) or o.policy
    for _, c in ipairs(loaded.extra_columns) do extra[#extra + 1] = c end
  end
  local theirs = o.previous and o.previous.policy
  theirs = theirs and (hf.realpath(theirs) or theirs)
  local recorded_sha = o.previous and o.previous.policy_sha256
  if o.previous and theirs == o.policy and o.policy and recorded_sha
    and hf.sha256_file(o.policy) ~= recorded_sha then
    return nil, ("--since: %s was made with policy %s as it was then, and the file has been edited "
      .. "since; its rows would not follow this scan's choice of files: make a full scan with this "
      .. "policy first"):format(o.since, o.policy), cli.EXIT_USAGE
  end
  if o.previous and theirs ~= o.policy then
    local function named(p) return p and ("policy " .. p) or "no policy" end
    return nil, ("--since: %s was made with %s and this scan with %s; its rows would not follow "
      .. "this scan's choice of files: make a full scan with this policy first")
      :format(o.since, named(theirs), named(o.policy)), cli.EXIT_USAGE
  end
  if o.previous and o.security_status and not o.previous.security_status then
    return nil, ("--since: %s was made without --security-status, so the repos it carries over "
      .. "would have no verdict: make a full scan with --security-status first"):format(o.since),
      cli.EXIT_USAGE
  end
  return extra
end

return M
