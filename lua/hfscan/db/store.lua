-- The SQLite database of an output folder (hfscan.sqlite): every row of every
-- scan's extended CSV, with the scan it came from, indexed by hash and by
-- (repo, path). The CSVs stay the source of truth: scans keep this current as
-- they write, and build() makes it again from the CSVs at any time.
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local hf = require "hfscan"
local names = require "hfscan.db.names"

local M = {}

M.FILE = "hfscan.sqlite"

M.SCHEMA = [[
CREATE TABLE IF NOT EXISTS scans (
  scan_id            INTEGER PRIMARY KEY,
  timestamp          TEXT NOT NULL UNIQUE,  -- the <ts> of the scan's file names
  extended_csv       TEXT NOT NULL,         -- file name, in the same folder
  endpoint           TEXT,
  scan_start         TEXT,
  download_threshold INTEGER,
  shard              TEXT,                  -- "K/N" for a sharded scan
  loaded_through     INTEGER,               -- the bytes of the extended CSV whose rows files holds
  security_status    INTEGER                -- 1 when the scan recorded the Hub's verdicts
);
CREATE TABLE IF NOT EXISTS files (
  scan_id           INTEGER NOT NULL REFERENCES scans(scan_id),
  repo_id           TEXT NOT NULL,
  filename          TEXT NOT NULL,          -- the name's text form, as in the CSVs (hfscan.db.names)
  hash              TEXT NOT NULL,          -- lowercase hex, or FAILED_NO_HASH / FAILED_TOO_LARGE
  file_size         INTEGER,
  file_type         TEXT,
  last_modified     TEXT,
  download_url      TEXT,
  hash_method       TEXT,
  commit_hash       TEXT,
  carried_over_from TEXT,                   -- the earlier scan's <ts> when --since carried it over
  raw_filename      BLOB                    -- the name's bytes, as the Hub has them
);
-- The Hub's own verdict of a file (scans made with --security-status), for the
-- row of files with the same scan, repo and filename (files.SECURITY_COLUMNS).
CREATE TABLE IF NOT EXISTS verdicts (
  scan_id           INTEGER NOT NULL REFERENCES scans(scan_id),
  repo_id           TEXT NOT NULL,
  filename          TEXT NOT NULL,
  security_status   TEXT NOT NULL,          -- the Hub's status; '' when it gave none
  av_virus          TEXT,
  pickle_safety     TEXT,
  pickle_imports    TEXT,
  PRIMARY KEY (scan_id, repo_id, filename)
) WITHOUT ROWID;
]]

-- Made after the rows when a database is built: an index filled row by row
-- costs several times one made in one sorted pass.
M.INDEXES = [[
CREATE INDEX IF NOT EXISTS files_by_hash ON files(hash);
CREATE INDEX IF NOT EXISTS files_by_repo_path ON files(repo_id, filename);
CREATE INDEX IF NOT EXISTS files_by_scan ON files(scan_id);
CREATE INDEX IF NOT EXISTS verdicts_by_status ON verdicts(security_status);
]]

-- PRAGMA user_version of the schema above. An older hfscan left it 0, for
-- version 1: no raw_filename, and filename held the raw name. Version 2 had no
-- loaded_through; version 3 no verdicts (SCHEMA makes the table).
M.SCHEMA_VERSION = 4

local Store = {}
Store.__index = Store

-- A list of our own constants (no quote in them) as SQL text: 'a','b'.
local function sql_list(values) return ("'%s'"):format(table.concat(values, "','")) end

function M.path(dir) return dir .. "/" .. M.FILE end

-- A row's filename as the store keeps it: its text form and its bytes (bound
-- as a BLOB by CAST(? AS BLOB)).
local function name_columns(filename)
  if names.is_plain(filename) then return filename, filename end
  return names.canonical(filename), names.unescape(filename)
end

local function has_column(db, table_name, column)
  for _, c in ipairs(db:query(("PRAGMA table_info(%s)"):format(table_name))) do
    if c.name == column then return true end
  end
  return false
end

-- Brings a database made by an older hfscan up to SCHEMA_VERSION in place (a
-- folder's CSVs may be gone, so it is not rebuilt from them). Raises on failure.
local function migrate(db)
  if db:query("PRAGMA user_version")[1].user_version >= M.SCHEMA_VERSION then return end
  db:exec("BEGIN IMMEDIATE") -- a second process migrating at once waits, then finds it done
  local ok, err = pcall(function()
    if not has_column(db, "scans", "loaded_through") then
      db:exec("ALTER TABLE scans ADD COLUMN loaded_through INTEGER") -- unknown: NULL
    end
    if not has_column(db, "scans", "security_status") then
      db:exec("ALTER TABLE scans ADD COLUMN security_status INTEGER")
    end
    if not has_column(db, "files", "raw_filename") then
      db:exec("ALTER TABLE files ADD COLUMN raw_filename BLOB")
    end
    for _, r in ipairs(db:query("SELECT rowid, filename FROM files WHERE raw_filename IS NULL")) do
      local text, raw = name_columns(r.filename)
      db:run("UPDATE files SET filename = ?, raw_filename = CAST(? AS BLOB) WHERE rowid = ?", text,
        raw, r.rowid)
    end
    db:exec(("PRAGMA user_version = %d"):format(M.SCHEMA_VERSION))
    db:exec("COMMIT")
  end)
  if not ok then
    pcall(db.exec, db, "ROLLBACK")
    error(err, 0)
  end
end

-- Opens (creating if needed) a database for writing, in this journal mode,
-- made current (SCHEMA, migrate; the indexes too unless without_indexes: a
-- bulk load makes them after its rows).
local function open_for_writing(dir, path, journal_mode, without_indexes)
  local db, err = hf.sqlite_open(path)
  if not db then return nil, err end
  local ok, serr = pcall(function()
    db:exec(("PRAGMA journal_mode=%s;"):format(journal_mode))
    -- In WAL mode NORMAL syncs at checkpoints, not at every commit (one per
    -- repo): a power cut may lose the last commits, which the CSVs still hold
    -- and a restart or db build puts back; it never corrupts the file.
    db:exec("PRAGMA synchronous=NORMAL;")
    db:exec(M.SCHEMA)
    if not without_indexes then db:exec(M.INDEXES) end
    migrate(db)
  end)
  if not ok then
    db:close()
    return nil, tostring(serr)
  end
  return setmetatable({ db = db, dir = dir, writable = true, version = M.SCHEMA_VERSION }, Store)
end

-- Opens (creating if needed) the database of a folder, for a writer: WAL, so
-- that readers go on while it writes.
function M.open(dir, path) return open_for_writing(dir, path or M.path(dir), "WAL") end

-- Opens an existing database read-only (mode "ro" or "immutable", see
-- hf.sqlite_open): no schema made, nothing migrated, nothing written. Its
-- schema version and tables are read at once, so a file SQLite cannot read
-- here fails now. Returns the store, or nil and a message.
function M.open_readonly(dir, path, mode)
  local db, err = hf.sqlite_open(path, mode)
  if not db then return nil, err end
  local ok, info = pcall(function()
    local tables = {}
    for _, r in ipairs(db:query("SELECT name FROM sqlite_master WHERE type = 'table'")) do
      tables[r.name] = true
    end
    local version = db:query("PRAGMA user_version")[1].user_version
    -- An older hfscan left user_version 0, for schema 1.
    return { tables = tables, version = version == 0 and 1 or version }
  end)
  if not ok then
    db:close()
    return nil, ("cannot read %s: %s"):format(path, tostring(info))
  end
  return setmetatable({ db = db, dir = dir, tables = info.tables, version = info.version }, Store)
end

-- A database of schema 1 held each name's bytes in filename; a reader, which
-- does not migrate it, gives both forms as schema 2 holds them.
function Store:name_forms(rows)
  if self.version >= 2 then return rows end
  for _, r in ipairs(rows) do
    r.raw_filename, r.filename = r.filename, names.escape(r.filename)
  end
  return rows
end

local function basename(path) return path:match("[^/]*$") end

-- Registers a scan (once); returns its scan_id.
function Store:add_scan(ts, extended_path, parameters)
  parameters = parameters or {}
  local found = self.db:query("SELECT scan_id FROM scans WHERE timestamp = ?", ts)
  if found[1] then return found[1].scan_id end
  self.db:run([[INSERT INTO scans (timestamp, extended_csv, endpoint, scan_start,
    download_threshold, shard, security_status) VALUES (?, ?, ?, ?, ?, ?, ?)]], ts, basename(extended_path),
    parameters.endpoint, parameters.scan_start, tonumber(parameters.download_threshold),
    parameters.shard, database.records_verdicts(parameters) and 1 or nil)
  return self.db:query("SELECT scan_id FROM scans WHERE timestamp = ?", ts)[1].scan_id
end

local INSERT = [[INSERT INTO files (scan_id, repo_id, filename, hash, file_size, file_type,
  last_modified, download_url, hash_method, commit_hash, carried_over_from, raw_filename)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS BLOB))]]

-- A field of a row: r[c] of a table keyed by column, or r[at[c]] of a list
-- of fields read from a CSV whose header gave at = { column = position }.
local function field(r, at, c)
  if not at then return r[c] end
  local i = at[c]
  return i and r[i]
end

local INSERT_VERDICT = ("INSERT OR REPLACE INTO verdicts (scan_id, repo_id, filename, %s) "
  .. "VALUES (?, ?, ?%s)"):format(table.concat(database.SECURITY_COLUMNS, ", "),
  (", ?"):rep(#database.SECURITY_COLUMNS))

-- Inserts one row (a table keyed by the extended columns, or a list of fields
-- with at: see field), through the one prepared INSERT of this connection;
-- with its verdict when the row has the security columns.
function Store:insert_row(scan_id, r, at)
  self.insert = self.insert or self.db:prepare(INSERT)
  local filename, raw_filename = name_columns(field(r, at, "filename"))
  local carried = field(r, at, "carried_over_from")
  local repo = field(r, at, "repo_id")
  self.insert:run(scan_id, repo, filename, field(r, at, "hash"),
    tonumber(field(r, at, "file_size")), field(r, at, "file_type"), field(r, at, "last_modified"),
    field(r, at, "download_url"), field(r, at, "hash_method"), field(r, at, "commit_hash"),
    carried ~= "" and carried or nil, raw_filename)
  if field(r, at, "security_status") == nil then return end
  self.insert_verdict = self.insert_verdict or self.db:prepare(INSERT_VERDICT)
  local values = {}
  for i, c in ipairs(database.SECURITY_COLUMNS) do values[i] = field(r, at, c) or "" end
  self.insert_verdict:run(scan_id, repo, filename, table.unpack(values))
end

-- Checks and inserts one row of doc (an extended CSV as hfscan.db.csv.open
-- reads it) at line: see files.screen_fields. Returns whether it was inserted.
local function load_row(self, scan_id, doc, at, row, line, repair)
  if not database.screen_fields(doc.path, line, row[at.hash], row[at.hash_method], row[at.commit_hash],
    repair) then
    return false
  end
  self:insert_row(scan_id, row, at)
  return true
end

-- Runs fn(self) in one transaction: all of it is committed or none (readers
-- never see a state between). Returns what fn returns, or nil and the error.
function Store:transaction(fn)
  local results = table.pack(pcall(function()
    self.db:exec("BEGIN IMMEDIATE")
    local r = table.pack(fn(self))
    self.db:exec("COMMIT")
    return table.unpack(r, 1, r.n)
  end))
  if not results[1] then
    pcall(self.db.exec, self.db, "ROLLBACK")
    return nil, results[2]
  end
  return table.unpack(results, 2, results.n)
end

-- Records that files holds the rows of the first bytes of the scan's extended CSV.
function Store:set_loaded_through(scan_id, bytes)
  self.db:run("UPDATE scans SET loaded_through = ? WHERE scan_id = ?", bytes, scan_id)
  return true
end

-- A scan's id and loaded_through (nil when unknown), or nil when the scan is not here.
function Store:loaded_through(ts)
  local found = self.db:query("SELECT scan_id, loaded_through FROM scans WHERE timestamp = ?", ts)[1]
  if not found then return nil end
  return found.scan_id, math.tointeger(found.loaded_through)
end

-- Adds rows (tables keyed by the extended columns) of a scan, which end at
-- byte extended_end of its extended CSV, in one transaction.
function Store:add_rows(scan_id, rows, extended_end)
  if #rows == 0 then return true end
  local ok, err = self:transaction(function()
    for _, r in ipairs(rows) do self:insert_row(scan_id, r) end
    if extended_end then self:set_loaded_through(scan_id, extended_end) end
    return true
  end)
  return ok, err
end

-- Loads the rows of an extended CSV as a scan's, streaming (memory does not
-- grow with the file); inside the caller's transaction. A bad row raises
-- (naming file and line) unless repair(text) is given, which is told of each
-- one dropped. Returns the number of rows.
local function load_rows(self, scan_id, doc, repair)
  local n, at = 0, database.index(doc.header)
  for row, line in doc.next do
    if load_row(self, scan_id, doc, at, row, line, repair) then n = n + 1 end
  end
  return n
end

-- Runs fn(scan_id, doc) in one transaction, with the scan registered and its
-- extended CSV open to stream (doc, hfscan.db.csv.open). Returns what fn
-- returns, or nil and a message.
function Store:with_scan(paths, fn)
  local doc, err = csvfile.open(paths.extended, database.columns_of("extended"))
  if not doc then return nil, err end
  local ts = paths.extended:match("(%d+_%d+)%.csv$")
  local n, ferr = self:transaction(function()
    return fn(self:add_scan(ts, paths.extended, doc.parameters), doc)
  end)
  doc.close()
  if n == nil then return nil, tostring(ferr) end
  return n
end

-- Replaces a scan's rows with what its extended CSV holds now, in one
-- transaction: a reader sees the old rows or the new, never none. repair: see
-- load_rows; fresh: the scan is not in the database (a build), so there is
-- nothing to delete. Returns the number of rows, or nil and a message.
function Store:import_scan(paths, repair, fresh)
  return self:with_scan(paths, function(scan_id, doc)
    if not fresh then
      self.db:run("DELETE FROM files WHERE scan_id = ?", scan_id)
      self.db:run("DELETE FROM verdicts WHERE scan_id = ?", scan_id)
    end
    database.maybe_crash("store_after_delete") -- a test kills here: nothing of this is committed
    local n = load_rows(self, scan_id, doc, repair)
    self:set_loaded_through(scan_id, doc.offset())
    return n
  end)
end

-- Deletes the rows of repos (a set) of a scan, inside the caller's transaction.
local function delete_repos(self, scan_id, repos)
  for repo in pairs(repos) do
    -- +scan_id: by (repo, path), not by scan, whose every row it would visit.
    self.db:run("DELETE FROM files WHERE +scan_id = ? AND repo_id = ?", scan_id, repo)
    self.db:run("DELETE FROM verdicts WHERE scan_id = ? AND repo_id = ?", scan_id, repo)
  end
  database.maybe_crash("store_after_delete") -- a test kills here: nothing of this is committed
end

-- Brings a scan's rows from loaded_through up to byte upto of its extended
-- CSV, in one transaction: the rows of the repos named in unfinished (those
-- past upto, which a restart cuts off) are deleted, and the rows from byte
-- from to upto loaded. Returns the number of rows loaded, or nil and a message.
function Store:catch_up(paths, unfinished, from, upto)
  return self:with_scan(paths, function(scan_id, doc)
    delete_repos(self, scan_id, unfinished)
    local n = 0
    if from < upto then
      doc.seek(from)
      local at = database.index(doc.header)
      for row, line in doc.next do
        load_row(self, scan_id, doc, at, row, line)
        n = n + 1
        if doc.offset() >= upto then break end
      end
    end
    self:set_loaded_through(scan_id, upto)
    return n
  end)
end

-- Deletes the rows of repos (a set) and loads theirs again from doc (the
-- scan's extended CSV, streamed to its end), inside the caller's transaction;
-- the database then holds the whole file. Returns the number of rows loaded.
local function reload_repos(self, scan_id, doc, repos)
  delete_repos(self, scan_id, repos)
  local at, n = database.index(doc.header), 0
  for row in doc.next do
    if repos[row[at.repo_id]] then
      self:insert_row(scan_id, row, at)
      n = n + 1
    end
  end
  self:set_loaded_through(scan_id, doc.offset())
  return n
end

-- Replaces the rows of repos (a set) with those the scan's extended CSV now
-- holds, in one transaction: an update that changed some repos of a large
-- scan. Returns the number of rows loaded, or nil and a message.
function Store:replace_repos(paths, repos)
  return self:with_scan(paths, function(scan_id, doc) return reload_repos(self, scan_id, doc, repos) end)
end

-- A scan's rows counted by hash_method and by whether they failed:
-- { { hash_method, failed (0/1), n }... }.
function Store:row_counts(scan_id)
  local failures = sql_list(database.FAILURES)
  return self.db:query(("SELECT hash_method, hash IN (%s) AS failed, count(*) AS n FROM files "
    .. "WHERE scan_id = ? GROUP BY hash_method, failed"):format(failures), scan_id)
end

-- The repos whose rows in the database differ in number from counts (rows per
-- repo of the scan's CSV), as a set.
local function stale_repos(db, scan_id, counts)
  local stale, held = {}, {}
  for _, r in ipairs(db:query(
    "SELECT repo_id, count(*) AS n FROM files WHERE scan_id = ? GROUP BY repo_id", scan_id)) do
    held[r.repo_id] = r.n
    if counts[r.repo_id] ~= r.n then stale[r.repo_id] = true end
  end
  for repo in pairs(counts) do
    if held[repo] == nil then stale[repo] = true end
  end
  return stale
end

-- Brings a scan's rows up to its extended CSV when the CSV is known to hold
-- counts[repo] rows of each repo (a restart knows this from its own pass):
-- only the repos whose count differs are deleted and loaded again, in one
-- transaction, instead of the whole scan. Returns the number of repos
-- reloaded, or nil and a message.
function Store:sync_scan(paths, counts)
  return self:with_scan(paths, function(scan_id, doc)
    local stale, reloaded = stale_repos(self.db, scan_id, counts), 0
    if next(stale) == nil then return 0 end
    for _ in pairs(stale) do reloaded = reloaded + 1 end
    reload_repos(self, scan_id, doc, stale)
    return reloaded
  end)
end

-- A writer leaves the database in rollback-journal mode: one self-contained
-- file at rest, which a read-only user (or a copy of the folder) reads without
-- the -shm that WAL mode needs. Leaving WAL needs the only connection; when a
-- reader holds one a moment too long, the database simply stays in WAL mode.
function Store:close()
  if self.insert then self.insert:close() end
  if self.insert_verdict then self.insert_verdict:close() end
  if self.writable then pcall(self.db.exec, self.db, "PRAGMA journal_mode=DELETE") end
  self.db:close()
end

-- ---- the questions the commands ask -----------------------------------------

-- Whether the database has the verdicts table (one an older hfscan made, and
-- no writer opened since, has not).
function Store:has_verdicts() return not self.tables or self.tables.verdicts == true end

-- How many scans recorded the Hub's verdicts.
function Store:scans_with_verdicts()
  if not self:has_verdicts() then return 0 end
  return self.db:query("SELECT count(*) AS n FROM scans WHERE security_status = 1")[1].n
end

-- The verdict columns of a query over files f (as v.<column>, NULL without a
-- verdict), and the join that gives them.
function Store:verdict_columns()
  if not self:has_verdicts() then
    local nulls = {}
    for i, c in ipairs(database.SECURITY_COLUMNS) do nulls[i] = "NULL AS " .. c end
    return table.concat(nulls, ", "), ""
  end
  return "v." .. table.concat(database.SECURITY_COLUMNS, ", v."),
    "LEFT JOIN verdicts v ON v.scan_id = f.scan_id AND v.repo_id = f.repo_id AND v.filename = f.filename"
end

-- The query of a SHA-256's occurrences (?1: lower case): repo, path, commit,
-- size, method, URL, the scan and the Hub's verdict there (NULL when the scan
-- recorded none), in a stable order. lookup runs it, and so does each thread
-- of hfscan serve, which gives each row's columns as lookup --json does.
function Store:occurrences_sql()
  local columns, join = self:verdict_columns()
  return ([[
    SELECT f.repo_id, f.filename, f.commit_hash, f.file_size, f.hash_method, f.download_url,
           s.timestamp AS scan, %s
    FROM files f JOIN scans s ON s.scan_id = f.scan_id %s
    WHERE f.hash = ?1
    ORDER BY f.repo_id, f.filename, s.timestamp]]):format(columns, join)
end

-- Every occurrence of a SHA-256 (lower case), as occurrences_sql gives them.
function Store:occurrences(sha256)
  return self:name_forms(self.db:query(self:occurrences_sql(), sha256))
end

local FLAGGED = sql_list(database.FLAGGED_STATUSES)

-- The files the Hub flags (FLAGGED_STATUSES): each (repo, path, commit) whose
-- latest recorded verdict flags it, with its hash, verdict and that scan, in
-- (hash, repo, path) order. Only the places with a flagged verdict in some scan
-- are looked at (by the status index).
function Store:flagged()
  if not self:has_verdicts() then return {} end
  return self.db:query(([[
    WITH latest AS (
      SELECT f.hash, f.repo_id, f.filename, f.commit_hash, s.timestamp AS scan,
             v.security_status, v.av_virus, v.pickle_safety, v.pickle_imports,
             row_number() OVER (PARTITION BY f.repo_id, f.filename, f.commit_hash
                                ORDER BY s.timestamp DESC) AS recency
      FROM verdicts v
      JOIN files f ON f.scan_id = v.scan_id AND f.repo_id = v.repo_id AND f.filename = v.filename
      JOIN scans s ON s.scan_id = v.scan_id
      WHERE (v.repo_id, v.filename) IN
            (SELECT repo_id, filename FROM verdicts WHERE security_status IN (%s)))
    SELECT hash, repo_id, filename, commit_hash, scan, security_status, av_virus, pickle_safety,
           pickle_imports
    FROM latest WHERE recency = 1 AND security_status IN (%s)
    ORDER BY hash, repo_id, filename]]):format(FLAGGED, FLAGGED))
end

-- Where a SHA-256 was published: distinct repo, path and commit, each with
-- the latest verdict a scan recorded for it (none: no verdict columns).
function Store:published(sha256)
  local columns, join = self:verdict_columns()
  local places, by_key = {}, {}
  for _, r in ipairs(self:name_forms(self.db:query(([[
    SELECT f.repo_id, f.filename, f.commit_hash, %s FROM files f JOIN scans s ON s.scan_id = f.scan_id %s
    WHERE f.hash = ? ORDER BY f.repo_id, f.filename, f.commit_hash, s.timestamp]]):format(columns, join),
    sha256))) do
    local key = r.repo_id .. "\0" .. r.filename .. "\0" .. (r.commit_hash or "")
    local place = by_key[key]
    if not place then
      place = { repo_id = r.repo_id, filename = r.filename, commit_hash = r.commit_hash }
      by_key[key], places[#places + 1] = place, place
    end
    for c, v in pairs(database.verdict_of(r) or {}) do place[c] = v end
  end
  return places
end

-- The query of a repo's files (?1: the repo id) at its latest scanned commit:
-- path, hash, size, method, URL, that commit and scan, the verdict columns,
-- and with raw_name the name's bytes; by path. hfscan serve's threads run it
-- without raw_name (bytes are not JSON text).
function Store:repo_files_sql(raw_name)
  local columns, join = self:verdict_columns()
  return ([[
    WITH latest AS (
      SELECT f.scan_id, f.commit_hash FROM files f JOIN scans s ON s.scan_id = f.scan_id
      WHERE f.repo_id = ?1 ORDER BY s.timestamp DESC LIMIT 1)
    SELECT f.filename, %s f.hash, f.file_size, f.hash_method, f.download_url, f.commit_hash,
           s.timestamp AS scan, %s
    FROM latest l JOIN files f ON f.scan_id = l.scan_id AND f.commit_hash = l.commit_hash
    JOIN scans s ON s.scan_id = f.scan_id %s
    WHERE f.repo_id = ?1
    ORDER BY f.filename]]):format(raw_name and self.version >= 2 and "f.raw_filename," or "",
    columns, join)
end

-- A repo's rows (as repo_files_sql gives them, with raw_filename) at its
-- latest scanned commit, that commit and the scan's timestamp; nil when no
-- scan has the repo.
function Store:latest_repo_files(repo)
  local rows = self:name_forms(self.db:query(self:repo_files_sql(true), repo))
  if not rows[1] then return nil end
  return rows, rows[1].commit_hash, rows[1].scan
end

-- What hfscan serve's /info tells of the database: rows, repos, scans, and
-- the latest scan (timestamp, endpoint, whether it recorded verdicts).
function Store:summary()
  local counts = self.db:query([[
    SELECT (SELECT count(*) FROM files) AS rows,
           (SELECT count(*) FROM (SELECT DISTINCT repo_id FROM files)) AS repos,
           (SELECT count(*) FROM scans) AS scans]])[1]
  local latest = self.db:query(("SELECT timestamp, endpoint, %s AS security_status FROM scans "
    .. "ORDER BY timestamp DESC LIMIT 1"):format(self:has_verdicts() and "security_status" or "NULL"))[1]
  return counts, latest
end

-- Every scan of a folder, oldest first, as database.paths tables.
function M.scans_in(dir)
  local names, err = hf.list_dir(dir)
  if not names then return nil, err end
  local scans = {}
  for _, name in ipairs(names) do
    local ts = database.timestamp_of(name)
    if ts then scans[#scans + 1] = database.paths(dir, ts) end
  end
  return scans
end

-- Loads every scan's extended CSV into a database made without its indexes,
-- then makes them; repair: see load_rows. Returns the number of rows, or nil
-- and a message.
local function import_all(s, scans, repair)
  local total = 0
  for _, paths in ipairs(scans) do
    local n, err = s:import_scan(paths, repair, true)
    if not n then return nil, err end
    total = total + n
  end
  local ok, xerr = pcall(s.db.exec, s.db, M.INDEXES) -- after the rows: one sorted pass each
  if not ok then return nil, tostring(xerr) end
  return total
end

-- Whoever builds holds the folder's lock, so any other build's temporary file
-- (hfscan.sqlite.<pid>.building, or .building from an older hfscan) is what a
-- killed build left behind.
local function is_build_temporary(name)
  return name == M.FILE .. ".building" or name:match("^" .. (M.FILE:gsub("%.", "%%.")) .. "%.%d+%.building$")
end

local function remove_abandoned_builds(dir)
  for _, name in ipairs(hf.list_dir(dir) or {}) do
    if is_build_temporary(name) then
      os.remove(dir .. "/" .. name)
      os.remove(dir .. "/" .. name .. "-journal")
    end
  end
end

-- Renames a database built into temp over final when the build went well
-- (built), else removes it. Returns true, or nil and a message (err: the
-- build's).
local function put_in_place(temp, final, built, err)
  if not built then
    os.remove(temp)
    return nil, err
  end
  os.remove(final .. "-wal")
  os.remove(final .. "-shm")
  local ok, rerr = os.rename(temp, final)
  if not ok then
    os.remove(temp)
    return nil, rerr
  end
  return true
end

-- Builds the folder's database from the CSVs of scans (default: every scan of
-- the folder) into a temporary file of this process, renamed over the old one
-- only when complete: hfscan.sqlite is never partial or empty. The caller holds
-- the folder's lock. repair: as for import_all. Returns the number of rows and
-- of scans, or nil and a message.
function M.build(dir, scans, repair)
  local err
  if not scans then
    scans, err = M.scans_in(dir)
    if not scans then return nil, err end
  end
  remove_abandoned_builds(dir)
  local final = M.path(dir)
  local temp = ("%s.%d.building"):format(final, hf.pid())
  -- A rollback journal: WAL would write every page twice, and the file renamed
  -- into place must be self-contained.
  local store, oerr = open_for_writing(dir, temp, "DELETE", true)
  if not store then
    os.remove(temp)
    return nil, oerr
  end
  local total, ierr = import_all(store, scans, repair)
  store:close()
  local placed, perr = put_in_place(temp, final, total, ierr)
  if not placed then return nil, perr end
  return total, #scans
end

-- A file URI that SQLite opens read-only: '%', '?' and '#' would end or
-- escape its path part.
function M.read_only_uri(path)
  return "file:" .. path:gsub("[%%?#]", function(c) return ("%%%02X"):format(c:byte()) end) .. "?mode=ro"
end

-- The columns of files a copy from another database takes as they are.
local COPIED = "repo_id, filename, hash, file_size, file_type, last_modified, download_url, hash_method, "
  .. "commit_hash, carried_over_from, raw_filename"

local VERDICT_COPIED = "repo_id, filename, " .. table.concat(database.SECURITY_COLUMNS, ", ")

-- Builds dir's database, whose one scan (paths) is the concatenation of parts
-- ({ store_path, ts }... : scans in other folders' databases, each holding
-- that scan's rows as its CSV does), by copying their rows SQLite to SQLite:
-- no row passes through Lua. As build, into a temporary file renamed into
-- place. Returns the number of rows, or nil and a message.
function M.build_from_parts(dir, paths, parameters, parts)
  remove_abandoned_builds(dir)
  local final = M.path(dir)
  local temp = ("%s.%d.building"):format(final, hf.pid())
  local s, oerr = open_for_writing(dir, temp, "DELETE", true)
  if not s then return nil, oerr end
  local ok, result = pcall(function()
    local scan_id = s:add_scan(paths.ts, paths.extended, parameters)
    for _, part in ipairs(parts) do
      s.db:run("ATTACH DATABASE ? AS part", M.read_only_uri(part.store_path))
      local found = s.db:query("SELECT scan_id FROM part.scans WHERE timestamp = ?", part.ts)[1]
      if not found then error(("%s holds no scan %s"):format(part.store_path, part.ts), 0) end
      s.db:run(("INSERT INTO files (scan_id, %s) SELECT ?, %s FROM part.files WHERE scan_id = ? ORDER BY rowid")
        :format(COPIED, COPIED), scan_id, found.scan_id)
      if s.db:query("SELECT 1 FROM part.sqlite_master WHERE name = 'verdicts'")[1] then
        s.db:run(("INSERT OR REPLACE INTO verdicts (scan_id, %s) SELECT ?, %s FROM part.verdicts WHERE scan_id = ?")
          :format(VERDICT_COPIED, VERDICT_COPIED), scan_id, found.scan_id)
      end
      s.db:exec("DETACH DATABASE part")
    end
    s:set_loaded_through(scan_id, hf.file_stat(paths.extended).size)
    s.db:exec(M.INDEXES)
    return s.db:query("SELECT count(*) AS n FROM files")[1].n
  end)
  s:close()
  local placed, perr = put_in_place(temp, final, ok, tostring(result))
  if not placed then return nil, perr end
  return result
end

-- A database in memory holding the CSVs of scans: how a reader answers when
-- the folder's database cannot serve and cannot be rebuilt. Returns the store,
-- or nil and a message.
function M.in_memory(dir, scans)
  local store, err = open_for_writing(dir, ":memory:", "MEMORY", true)
  if not store then return nil, err end
  local total, ierr = import_all(store, scans)
  if not total then
    store:close()
    return nil, ierr
  end
  store.in_memory = true
  return store
end

return M
