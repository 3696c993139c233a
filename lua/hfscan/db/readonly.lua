-- The database as the readers (lookup, verify) open it: read-only, and only
-- when it is current. A reader never writes hfscan.sqlite in place and never
-- makes one where no scan is. A missing or stale database is built afresh
-- under the folder's lock (hfscan.db.store.build: a temporary file renamed into
-- place when complete); when that cannot be done (a folder this user cannot
-- write, another hfscan writing it, a database a reader must not replace), the
-- CSVs are read into a database in memory, which gives the same answers.
local database = require "hfscan.db.files"
local hf = require "hfscan"
local store = require "hfscan.db.store"

local M = {}

local SQLITE_MAGIC = "SQLite format 3\0"

-- Whether a file is an SQLite database, and whether its header says WAL mode
-- (the write-version byte, offset 18, is 2).
local function header_of(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local head = f:read(20) or ""
  f:close()
  if #head < 20 or head:sub(1, 16) ~= SQLITE_MAGIC then return nil end
  return { wal = head:byte(19) == 2 }
end

-- Opens the database read-only. A WAL-mode database needs its -shm, which a
-- user who cannot write the folder cannot create; when there is no -wal
-- either, every commit is in the database file itself (the last connection to
-- close checkpointed and removed them) and it is read as immutable: a writer
-- starting meanwhile writes to a new -wal, not to that file, until its first
-- checkpoint, long after a lookup's few queries.
local function open_readonly(dir, path, header)
  local s, err = store.open_readonly(dir, path, "ro")
  if s or not header.wal or hf.file_type(path .. "-wal") then return s, err end
  return store.open_readonly(dir, path, "immutable")
end

-- The newest modification time of the database's contents: in WAL mode a
-- commit changes the -wal file, not the database file, until a checkpoint.
-- Taken before the database is opened: a read-only connection to a WAL-mode
-- database in a folder it can write makes an empty -wal, which says nothing.
local function contents_mtime(path)
  local newest = hf.file_stat(path).mtime_ns
  local wal = hf.file_stat(path .. "-wal")
  if wal and wal.mtime_ns > newest then newest = wal.mtime_ns end
  return newest
end

-- Why an opened database cannot answer for the folder's scans, and whether a
-- reader may replace it; nil when it is current.
local function staleness(s, scans, built)
  if not (s.tables.scans and s.tables.files) then return "has no hfscan tables", true end
  if s.version > store.SCHEMA_VERSION then
    -- A newer hfscan's database is read around, not downgraded.
    return ("has schema version %d, newer than this hfscan's %d"):format(s.version,
      store.SCHEMA_VERSION), false
  end
  local known = {}
  for _, r in ipairs(s.db:query("SELECT timestamp FROM scans")) do known[r.timestamp] = true end
  for _, paths in ipairs(scans) do
    if not known[paths.ts] then return "has no rows of the scan " .. paths.ts, true end
    local csv = hf.file_stat(paths.extended)
    if csv and csv.mtime_ns > built then
      return "is older than " .. paths.extended:match("[^/]*$"), true
    end
  end
  return nil
end

-- The folder's database if it is current. Else nil, why not, and whether a
-- reader may replace it.
local function open_current(dir, scans)
  local path = store.path(dir)
  local info = hf.file_stat(path)
  if not info then return nil, "is missing", true end
  if info.size == 0 then return nil, "is empty (0 bytes)", true end
  local header = header_of(path)
  if not header then return nil, "is not an SQLite database", true end
  local built = contents_mtime(path)
  local s, err = open_readonly(dir, path, header)
  if not s then return nil, ("cannot be read (%s)"):format(err), false end
  local why, replace = staleness(s, scans, built)
  if not why then return s end
  s:close()
  return nil, why, replace
end

-- Builds the database afresh under the folder's lock (unless another process
-- did while this one looked) and opens it. Returns the store, or nil and why not.
local function rebuild(dir, scans)
  local lock, lerr = hf.lock_dir(dir, "reader")
  if not lock then return nil, lerr end
  local s = open_current(dir, scans)
  local err
  if not s then
    local built
    built, err = store.build(dir, scans)
    -- Just built from these CSVs: current, whatever their clocks say.
    if built then s, err = store.open_readonly(dir, store.path(dir), "ro") end
  end
  lock:close()
  return s, err
end

-- The folder's database when it is current (schema 2 or later, holding every
-- scan of the folder, newer than their CSVs), opened read-only; else nil. It
-- is never built or replaced here.
function M.current(dir)
  local scans = store.scans_in(dir)
  if not scans then return nil end
  local s = open_current(dir, scans)
  if s and s.version < 2 then
    s:close()
    return nil
  end
  return s
end

-- The store to ask about the scans of dir, and a note for stderr when it is
-- not the folder's database as it was (rebuilt, or the CSVs read instead).
-- Nothing to ask (no such folder; no scan and no usable database: an empty
-- one would call every hash unknown) returns nil, the message and "nothing".
function M.open(dir)
  if hf.file_type(dir) ~= "directory" then
    return nil, ("%s: no such folder"):format(dir), "nothing"
  end
  local scans, serr = store.scans_in(dir)
  if not scans then return nil, serr end
  local s, why, replace = open_current(dir, scans)
  if s then return s end
  local path = store.path(dir)
  if #scans == 0 then
    local _, none = database.locate(dir)
    if why == "is missing" then return nil, none, "nothing" end
    return nil, ("%s %s, and there is nothing to build it from: %s"):format(path, why, none), "nothing"
  end
  local not_rebuilt = "a reader does not replace it"
  if replace then
    local rebuilt, rerr = rebuild(dir, scans)
    if rebuilt then
      return rebuilt, ("%s %s; built it from the CSVs"):format(path, why)
    end
    not_rebuilt = "cannot build it: " .. tostring(rerr)
  end
  local memory, merr = store.in_memory(dir, scans)
  if not memory then
    -- A reader takes no --repair: the command that has it is named instead.
    local hint = database.REPAIR_HINT
    if tostring(merr):sub(-#hint) == hint then
      merr = tostring(merr):sub(1, -#hint - 1)
        .. (" (hfscan db build --repair --output-dir %s drops such rows, each reported)"):format(dir)
    end
    return nil, merr
  end
  return memory, ("%s %s (%s); reading the CSVs instead"):format(path, why, not_rebuilt)
end

return M
