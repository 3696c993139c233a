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
]]

-- After the rows: one sorted pass per index.
local INDEXES = [[
CREATE INDEX old_by_key ON old(repo_id, filename);
CREATE INDEX new_by_key ON new(repo_id, filename);
CREATE INDEX old_by_hash ON old(hash, repo_id, filename);
CREATE INDEX new_by_hash ON new(hash, repo_id, filename);
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

-- Streams a scan (hfscan.db.reader.open) into side ("old" or "new"). Raises on
-- a bad row (see reader.open).
function Comparison:load(side, scan)
  local insert = self.db:prepare(("INSERT INTO %s VALUES (?, ?, ?, ?)"):format(side))
  self.db:exec("BEGIN")
  scan.each_row(function(r) insert:run(r.repo_id, r.filename, r.hash, r.commit_hash) end)
  self.db:exec("COMMIT")
  insert:close()
end

-- A file URI that SQLite opens read-only: '%', '?' and '#' would end or
-- escape its path part.
local function read_only_uri(path)
  return "file:" .. path:gsub("[%%?#]", function(c) return ("%%%02X"):format(c:byte()) end) .. "?mode=ro"
end

-- Copies a scan's rows into side straight from a folder's current database
-- (store_path, the scan's timestamp ts): SQLite to SQLite, no row through Lua.
-- Its rows were checked when they were stored. Fills scan.commits as each_row
-- would. Raises on an SQLite error.
function Comparison:load_from_database(side, scan, store_path, ts)
  self.db:run("ATTACH DATABASE ? AS src", read_only_uri(store_path))
  local ok, err = pcall(function()
    local id = self.db:query("SELECT scan_id FROM src.scans WHERE timestamp = ?", ts)[1].scan_id
    self.db:run(("INSERT INTO %s SELECT repo_id, filename, hash, commit_hash FROM src.files "
      .. "WHERE scan_id = ?"):format(side), id)
    for _, r in ipairs(self.db:query([[SELECT repo_id, commit_hash FROM src.files WHERE scan_id = ?
      GROUP BY repo_id]], id)) do
      scan.commits[r.repo_id] = r.commit_hash
    end
  end)
  self.db:exec("DETACH DATABASE src")
  if not ok then error(err, 0) end
  scan.take_progress_commits()
end

-- Leaves the repos out of the comparison, then indexes what is left.
function Comparison:skip(repos)
  local insert = self.db:prepare("INSERT OR IGNORE INTO skipped VALUES (?)")
  self.db:exec("BEGIN")
  for _, repo in ipairs(repos) do insert:run(repo) end
  insert:close()
  self.db:exec([[DELETE FROM old WHERE repo_id IN (SELECT repo_id FROM skipped);
    DELETE FROM new WHERE repo_id IN (SELECT repo_id FROM skipped); COMMIT;]])
  self.db:exec(INDEXES)
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

-- Places of NEW whose hash OLD has, but not at that place: the same bytes now
-- published elsewhere. In (hash, "repo/path") order; failures are no hash.
function Comparison:new_places_of_known_hashes()
  return self.db:query([[
    SELECT DISTINCT n.hash, n.repo_id, n.filename, n.commit_hash FROM new n
    WHERE n.hash NOT LIKE 'FAILED%'
      AND EXISTS (SELECT 1 FROM old o WHERE o.hash = n.hash)
      AND NOT EXISTS (SELECT 1 FROM old o WHERE o.hash = n.hash AND o.repo_id = n.repo_id
                      AND o.filename = n.filename)
    ORDER BY n.hash, n.repo_id || '/' || n.filename]])
end

-- The "repo/path" places of a hash in OLD, and whether NEW still has each.
function Comparison:old_places(hash)
  return self.db:query([[
    SELECT DISTINCT o.repo_id || '/' || o.filename AS place,
           EXISTS (SELECT 1 FROM new n WHERE n.hash = o.hash AND n.repo_id = o.repo_id
                   AND n.filename = o.filename) AS kept
    FROM old o WHERE o.hash = ? ORDER BY place]], hash)
end

function Comparison:close() self.db:close() end

return M
