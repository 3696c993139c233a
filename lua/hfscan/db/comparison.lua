-- The rows of two scans side by side in a temporary SQLite file, so that diff
-- compares millions of rows in bounded memory: each scan's extended CSV
-- streams in once, SQLite sorts and joins on disk (indexes on (repo, path) and
-- hash), and only the changes come back to Lua. What does grow in memory is
-- per repo (commits, finished repos), never per row.
local hf = require "hfscan"

local M = {}

local Comparison = {}
Comparison.__index = Comparison

local TABLES = [[
CREATE TABLE old (repo_id TEXT NOT NULL, filename TEXT NOT NULL, hash TEXT NOT NULL, commit_hash TEXT);
CREATE TABLE new (repo_id TEXT NOT NULL, filename TEXT NOT NULL, hash TEXT NOT NULL, commit_hash TEXT);
CREATE TABLE skipped (repo_id TEXT PRIMARY KEY);
CREATE TABLE candidates (hash TEXT PRIMARY KEY);
]]

-- After the rows, one sorted pass each: the joins are all by (repo, path);
-- hashes are looked up only for the few rows that changed (candidates).
local INDEXES = [[
CREATE INDEX old_by_key ON old(repo_id, filename);
CREATE INDEX new_by_key ON new(repo_id, filename);
]]

-- A new, empty comparison in a private temporary file: SQLite removes it when
-- the connection closes, and a killed diff leaves nothing named behind.
-- Returns it, or nil and a message.
function M.new()
  local db, err = hf.sqlite_open("")
  if not db then return nil, err end
  -- Scratch data: no journal, no sync; a bounded page cache.
  db:exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536; "
    .. "PRAGMA temp_store=FILE;")
  db:exec(TABLES)
  return setmetatable({ db = db }, Comparison)
end

-- Runs feed(insert) in one transaction, where insert(...) adds a row of the
-- values to the table by one prepared statement.
function Comparison:insert_into(table_name, width, feed)
  local statement = self.db:prepare(("INSERT OR IGNORE INTO %s VALUES (%s)"):format(table_name,
    ("?, "):rep(width - 1) .. "?"))
  self.db:exec("BEGIN")
  feed(function(...) statement:run(...) end)
  self.db:exec("COMMIT")
  statement:close()
end

-- Streams a scan (hfscan.db.reader.open) into side ("old" or "new"). Raises on
-- a bad row (see reader.open).
function Comparison:load(side, scan)
  self:insert_into(side, 4, function(insert)
    scan.each_row(function(r) insert(r.repo_id, r.filename, r.hash, r.commit_hash) end)
  end)
end

-- The values of a list as rows of a one-column table.
local function each_of(list)
  return function(insert)
    for _, v in ipairs(list) do insert(v) end
  end
end

-- A file URI that SQLite opens read-only: '%', '?' and '#' would end or
-- escape its path part.
local function read_only_uri(path)
  return "file:" .. path:gsub("[%%?#]", function(c) return ("%%%02X"):format(c:byte()) end) .. "?mode=ro"
end

-- Copies a scan's rows into side straight from a folder's current database
-- (store_path, the scan's timestamp ts): SQLite to SQLite, no row through Lua.
-- Its rows were checked when they were stored; the scan's commits are taken
-- by index() (a scan from its CSV has them from each_row). Raises on an
-- SQLite error.
function Comparison:load_from_database(side, scan, store_path, ts)
  self.db:run("ATTACH DATABASE ? AS src", read_only_uri(store_path))
  local ok, err = pcall(function()
    local id = self.db:query("SELECT scan_id FROM src.scans WHERE timestamp = ?", ts)[1].scan_id
    self.db:run(("INSERT INTO %s SELECT repo_id, filename, hash, commit_hash FROM src.files "
      .. "WHERE scan_id = ?"):format(side), id)
  end)
  self.db:exec("DETACH DATABASE src")
  if not ok then error(err, 0) end
  self.commits_wanted = self.commits_wanted or {}
  self.commits_wanted[side] = scan
end

-- Indexes both sides once loaded, and gives the scans loaded from a database
-- their commits (by the index: one pass in repo order).
function Comparison:index()
  self.db:exec(INDEXES)
  for side, scan in pairs(self.commits_wanted or {}) do
    for _, r in ipairs(self.db:query(("SELECT repo_id, commit_hash FROM %s GROUP BY repo_id")
      :format(side))) do
      scan.commits[r.repo_id] = r.commit_hash
    end
    scan.take_progress_commits()
  end
end

-- Leaves the repos out of the comparison.
function Comparison:skip(repos)
  self:insert_into("skipped", 1, each_of(repos))
  self.db:exec([[DELETE FROM old WHERE repo_id IN (SELECT repo_id FROM skipped);
    DELETE FROM new WHERE repo_id IN (SELECT repo_id FROM skipped);]])
end

-- A key in both scans whose row differs, or a key of NEW alone: (repo, path,
-- new hash and commit, old hash and commit or nil), in (repo, path) order.
function Comparison:new_side()
  return self.db:query([[
    SELECT n.repo_id, n.filename, n.hash, n.commit_hash, o.hash AS old_hash,
           o.commit_hash AS old_commit
    FROM new n LEFT JOIN old o ON o.repo_id = n.repo_id AND o.filename = n.filename
    WHERE o.hash IS NULL OR o.hash <> n.hash
    ORDER BY n.repo_id, n.filename]])
end

-- The keys of OLD that NEW lacks, in (repo, path) order.
function Comparison:removed()
  return self.db:query([[
    SELECT o.repo_id, o.filename, o.hash, o.commit_hash FROM old o
    WHERE NOT EXISTS (SELECT 1 FROM new n WHERE n.repo_id = o.repo_id AND n.filename = o.filename)
    ORDER BY o.repo_id, o.filename]])
end

-- The places in OLD of the given hashes (those of NEW's added and changed
-- rows: the only places a hash can have moved to), each with whether NEW
-- still has that hash there: { [hash] = { {place = "repo/path", kept}... } },
-- places sorted. One pass over OLD.
function Comparison:old_places(hashes)
  self:insert_into("candidates", 1, each_of(hashes))
  local places = {}
  for _, r in ipairs(self.db:query([[
    SELECT DISTINCT o.hash, o.repo_id || '/' || o.filename AS place,
           EXISTS (SELECT 1 FROM new n WHERE n.repo_id = o.repo_id AND n.filename = o.filename
                   AND n.hash = o.hash) AS kept
    FROM old o WHERE o.hash IN (SELECT hash FROM candidates) ORDER BY o.hash, place]])) do
    places[r.hash] = places[r.hash] or {}
    table.insert(places[r.hash], r)
  end
  return places
end

function Comparison:close() self.db:close() end

return M
