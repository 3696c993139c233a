-- A scan's manifest, hf_scan_manifest_<ts>.json: the size and SHA-256 of each
-- of its files as the last hfscan that wrote them left them. Written whole (a
-- temporary file renamed over it) at the end of every run and after every
-- rewrite, so that a file changed, cut short or grown since is found
-- (hfscan db check): appends leave no trace of their own in a CSV.
local cli = require "hfscan.cli"
local clock = require "hfscan.clock"
local hf = require "hfscan"
local json = require "hfscan.json"

local M = {}

M.VERSION = 1

-- The files a manifest covers, in the order a repo's rows are written, then
-- the metadata. The listing journal and the log are working files, not data.
M.KINDS = { "errors", "basic", "extended", "progress", "metadata" }

local function name_of(path) return path:match("[^/]*$") end

local function bytes(n) return ("%d byte%s"):format(n, n == 1 and "" or "s") end

-- Records the scan's files (those that exist: a scan killed before its first
-- metadata has none) in paths.manifest. Returns true, or nil and a message.
function M.write(paths)
  local files = {}
  for _, kind in ipairs(M.KINDS) do
    if hf.file_type(paths[kind]) == "file" then
      -- One file at a time, on this thread: a pool stops at Ctrl-C, and the
      -- manifest of an interrupted scan must still be written.
      local sha256, size, code = hf.sha256_file(paths[kind])
      if not sha256 then return nil, ("%s: %s"):format(paths.manifest, size), code end
      files[#files + 1] = { kind = kind, name = name_of(paths[kind]), size = size, sha256 = sha256 }
    end
  end
  local manifest = { manifest_version = M.VERSION, scan_timestamp = paths.ts,
    written = clock.utc_now(), files = json.array(files) }
  return hf.write_file_atomically(paths.manifest, json.encode(manifest) .. "\n")
end

-- Writes the manifest, or warns through log that it could not (the scan's rows
-- are safe; only db check loses its reference). Returns true or nil.
function M.write_or_warn(paths, log)
  local ok, err = M.write(paths)
  if not ok then
    log:warn("cannot write the manifest %s (%s); hfscan db check will report its files as changed",
      paths.manifest, tostring(err))
  end
  return ok
end

-- A finished scan made before manifests gets one from --restart, which changes
-- nothing else of it: the manifest vouches for the files as they are now.
-- Returns the exit status.
function M.write_if_missing(paths)
  if hf.file_type(paths.manifest) then return 0 end
  local ok, err = M.write(paths)
  if not ok then return cli.fail(nil, err) end
  cli.warn(nil, ("wrote %s: it records the scan's files as they are now"):format(paths.manifest))
  return 0
end

-- ---- checking ---------------------------------------------------------------

-- The SHA-256 of a file's first n bytes, streamed through the native hasher.
local CHUNK = 1 << 20
local function sha256_of_prefix(path, n)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local hasher <close> = hf.sha256_hasher()
  local left = n
  while left > 0 do
    local block = f:read(math.min(CHUNK, left))
    if not block then break end
    hasher:update(block)
    left = left - #block
  end
  f:close()
  return hasher:hexdigest()
end

-- How a file differs from its entry, or nil when it matches.
local function difference(path, entry)
  local sha256, size = hf.sha256_file(path)
  if not sha256 then
    return ("unreadable (%s); the manifest records %s"):format(tostring(size), bytes(entry.size))
  end
  if size == entry.size then
    if sha256 == entry.sha256 then return nil end
    return ("changed: %s as recorded, but another SHA-256 (%s, recorded %s)"):format(bytes(size),
      sha256, entry.sha256)
  end
  if size < entry.size then
    return ("truncated to %d of %s"):format(size, bytes(entry.size))
  end
  if sha256_of_prefix(path, entry.size) == entry.sha256 then
    return ("grew by %s after its first %s, which are unchanged: a run in progress or killed "
      .. "after the manifest was written (hfscan --restart finishes it)")
      :format(bytes(size - entry.size), bytes(entry.size))
  end
  return ("changed: its first %s differ from the manifest's, and it grew by %s")
    :format(bytes(entry.size), bytes(size - entry.size))
end

-- The manifest of a scan, checked for shape; or nil and a message.
local function read(paths)
  local f = io.open(paths.manifest, "rb")
  if not f then
    return nil, ("%s: no manifest (%s): a scan made before manifests; hfscan --restart-from %s "
      .. "writes one (and finishes the scan if it is not)"):format(paths.extended,
      name_of(paths.manifest), paths.extended)
  end
  local manifest = require("cjson.safe").decode(f:read("a"))
  f:close()
  if type(manifest) ~= "table" or manifest.manifest_version ~= M.VERSION
    or type(manifest.files) ~= "table" then
    return nil, ("%s is not an hfscan manifest (version %d)"):format(paths.manifest, M.VERSION)
  end
  for i, entry in ipairs(manifest.files) do
    local path = type(entry) == "table" and paths[entry.kind]
    -- cjson reads every number as a float.
    if path then entry.size = math.tointeger(entry.size) end
    if not (path and entry.name == name_of(path) and entry.size and type(entry.sha256) == "string") then
      return nil, ("%s: entry %d is not one of the scan's files with its size and SHA-256")
        :format(paths.manifest, i)
    end
  end
  return manifest
end

-- The size the manifest records of each of a scan's files ({ [kind] = bytes }),
-- or nil when it has none that can be read.
function M.recorded_sizes(paths)
  local manifest = read(paths)
  if not manifest then return nil end
  local sizes = {}
  for _, entry in ipairs(manifest.files) do sizes[entry.kind] = entry.size end
  return sizes
end

-- Checks a scan's files against its manifest. Returns { files = n checked,
-- differences = { "path: how" } }, or nil and a message (no manifest, or not
-- one): trouble, not an answer.
function M.check(paths)
  local manifest, err = read(paths)
  if not manifest then return nil, err end
  local report, recorded = { files = #manifest.files, differences = {} }, {}
  local function differs(path, how) report.differences[#report.differences + 1] = path .. ": " .. how end
  for _, entry in ipairs(manifest.files) do
    local path = paths[entry.kind]
    recorded[entry.kind] = true
    if hf.file_type(path) ~= "file" then
      differs(path, ("missing; the manifest records %s"):format(bytes(entry.size)))
    else
      local how = difference(path, entry)
      if how then differs(path, how) end
    end
  end
  for _, kind in ipairs(M.KINDS) do
    if not recorded[kind] and hf.file_type(paths[kind]) == "file" then
      differs(paths[kind], "not in the manifest: written after it")
    end
  end
  return report
end

return M
