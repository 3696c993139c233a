-- The rows of two scans side by side, so that diff compares millions of rows
-- in bounded memory, and only the changes come back to Lua. A scan whose
-- folder's database is current is read where it is (attached read-only, its
-- index on (repo, path) serving the joins: nothing is copied); another one's
-- extended CSV streams once into a private temporary SQLite file, indexed by
-- (repo, path) after its rows. What does grow in memory is per repo (commits,
-- finished repos), never per row.
local hf = require "hfscan"
local database = require "hfscan.db.files"
local store = require "hfscan.db.store"

local M = {}

local Comparison = {}
Comparison.__index = Comparison

local TABLES = [[
CREATE TABLE old (repo_id TEXT NOT NULL, filename TEXT NOT NULL, hash TEXT NOT NULL, commit_hash TEXT);
CREATE TABLE new (repo_id TEXT NOT NULL, filename TEXT NOT NULL, hash TEXT NOT NULL, commit_hash TEXT);
CREATE TABLE skipped (repo_id TEXT PRIMARY KEY);
CREATE TABLE candidates (hash TEXT PRIMARY KEY);
CREATE TABLE old_verdicts (repo_id TEXT, filename TEXT, security_status TEXT, PRIMARY KEY (repo_id, filename));
CREATE TABLE new_verdicts (repo_id TEXT, filename TEXT, security_status TEXT, PRIMARY KEY (repo_id, filename));
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
  -- Where each side's rows are: its table here, until a database is attached.
  local sides = { old = { rows = "old", only = "1" }, new = { rows = "new", only = "1" } }
  return setmetatable({ db = db, sides = sides }, Comparison)
end

-- The SQL of a side's rows under an alias: "FROM" text and the condition that
-- keeps that scan's rows of the repos compared.
function Comparison:rows(side, alias)
  local s = self.sides[side]
  return ("%s AS %s"):format(s.rows, alias),
    ("%s AND %s.repo_id NOT IN (SELECT repo_id FROM skipped)"):format((s.only:gsub("%$", alias)), alias)
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

-- Streams a scan (hfscan.db.reader.open) into side ("old" or "new"), and its
-- verdicts into side_verdicts. Raises on a bad row (see reader.open).
function Comparison:load(side, scan)
  local verdicts = database.records_verdicts(scan.parameters) and self.db:prepare(
    ("INSERT OR IGNORE INTO %s_verdicts VALUES (?, ?, ?)"):format(side))
  self:insert_into(side, 4, function(insert)
    scan.each_row(function(r)
      insert(r.repo_id, r.filename, r.hash, r.commit_hash)
      if verdicts then verdicts:run(r.repo_id, r.filename, r.security_status or "") end
    end)
  end)
  if verdicts then verdicts:close() end
end

-- The values of a list as rows of a one-column table.
local function each_of(list)
  return function(insert)
    for _, v in ipairs(list) do insert(v) end
  end
end

-- Reads side from a folder's current database (store_path, the scan's
-- timestamp ts) where it is: attached read-only, its rows checked when they
-- were stored. The scan's commits are taken by index(). Raises on an SQLite
-- error.
function Comparison:load_from_database(side, scan, store_path, ts)
  local schema = "src_" .. side
  self.db:run(("ATTACH DATABASE ? AS %s"):format(schema), store.read_only_uri(store_path))
  local found = self.db:query(("SELECT scan_id FROM %s.scans WHERE timestamp = ?"):format(schema), ts)[1]
  if not found then error(("%s holds no scan %s"):format(store_path, ts), 0) end
  -- +scan_id: the rows are walked and found by (repo, path), not by scan.
  self.sides[side] = { rows = schema .. ".files", only = ("+$.scan_id = %d"):format(found.scan_id),
    scan = scan, schema = schema, scan_id = found.scan_id }
  if database.records_verdicts(scan.parameters) then
    self.db:run(("INSERT OR IGNORE INTO %s_verdicts SELECT repo_id, filename, security_status "
      .. "FROM %s.verdicts WHERE scan_id = ?"):format(side, schema), found.scan_id)
  end
end

-- The keys whose verdict differs between the scans, when both recorded
-- verdicts: (repo, path, old and new verdict, new hash and commit), in (repo,
-- path) order.
function Comparison:verdict_changes()
  local new_rows, new_only = self:rows("new", "n")
  return self.db:query(([[
    SELECT nv.repo_id, nv.filename, ov.security_status AS old_verdict, nv.security_status AS new_verdict,
           n.hash, n.commit_hash
    FROM new_verdicts nv JOIN old_verdicts ov ON ov.repo_id = nv.repo_id AND ov.filename = nv.filename
    JOIN %s ON n.repo_id = nv.repo_id AND n.filename = nv.filename AND %s
    WHERE ov.security_status <> nv.security_status
    ORDER BY nv.repo_id, nv.filename]]):format(new_rows, new_only))
end

-- Indexes the sides loaded from CSV, and gives those read from a database
-- their commits: a completed scan's progress file has every repo's; other
-- scans' are read from their rows (one pass in repo order).
function Comparison:index()
  for side, s in pairs(self.sides) do
    if s.scan then
      local scan = s.scan
      if not (scan.status == "completed" and scan.finished) then
        for _, r in ipairs(self.db:query(("SELECT repo_id, commit_hash FROM %s.files WHERE scan_id = ? "
          .. "GROUP BY repo_id"):format(s.schema), s.scan_id)) do
          scan.commits[r.repo_id] = r.commit_hash
        end
      end
      scan.take_progress_commits()
    else -- after the rows, one sorted pass: the joins are all by (repo, path)
      self.db:exec(("CREATE INDEX %s_by_key ON %s(repo_id, filename)"):format(side, side))
    end
  end
end

-- Leaves the repos out of the comparison.
function Comparison:skip(repos)
  self:insert_into("skipped", 1, each_of(repos))
end

-- A key in both scans whose row differs, or a key of NEW alone: (repo, path,
-- new hash and commit, old hash and commit or nil), in (repo, path) order.
function Comparison:new_side()
  local new_rows, new_only = self:rows("new", "n")
  local old_rows, old_only = self:rows("old", "o")
  return self.db:query(([[
    SELECT n.repo_id, n.filename, n.hash, n.commit_hash, o.hash AS old_hash,
           o.commit_hash AS old_commit
    FROM %s LEFT JOIN %s ON o.repo_id = n.repo_id AND o.filename = n.filename AND %s
    WHERE %s AND (o.hash IS NULL OR o.hash <> n.hash)
    ORDER BY n.repo_id, n.filename]]):format(new_rows, old_rows, old_only, new_only))
end

-- The keys of OLD that NEW lacks, in (repo, path) order.
function Comparison:removed()
  local new_rows, new_only = self:rows("new", "n")
  local old_rows, old_only = self:rows("old", "o")
  return self.db:query(([[
    SELECT o.repo_id, o.filename, o.hash, o.commit_hash FROM %s
    WHERE %s AND NOT EXISTS (SELECT 1 FROM %s WHERE n.repo_id = o.repo_id
      AND n.filename = o.filename AND %s)
    ORDER BY o.repo_id, o.filename]]):format(old_rows, old_only, new_rows, new_only))
end

-- The places in OLD of the given hashes (those of NEW's added and changed
-- rows: the only places a hash can have moved to), each with whether NEW
-- still has that hash there: { [hash] = { {place = "repo/path", kept}... } },
-- places sorted. The hashes are looked up by OLD's index on hash when it has
-- one (a database), else in one pass over OLD.
function Comparison:old_places(hashes)
  self:insert_into("candidates", 1, each_of(hashes))
  local new_rows, new_only = self:rows("new", "n")
  local old_rows, old_only = self:rows("old", "o")
  local places = {}
  for _, r in ipairs(self.db:query(([[
    SELECT DISTINCT o.hash, o.repo_id || '/' || o.filename AS place,
           EXISTS (SELECT 1 FROM %s WHERE n.repo_id = o.repo_id AND n.filename = o.filename
                   AND n.hash = o.hash AND %s) AS kept
    FROM candidates c JOIN %s ON o.hash = c.hash WHERE %s ORDER BY o.hash, place]]):format(new_rows,
    new_only, old_rows, old_only))) do
    places[r.hash] = places[r.hash] or {}
    table.insert(places[r.hash], r)
  end
  return places
end

function Comparison:close()
  for _, s in pairs(self.sides) do
    if s.schema then pcall(self.db.exec, self.db, "DETACH DATABASE " .. s.schema) end
  end
  self.db:close()
end

return M
