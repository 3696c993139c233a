-- Finds the SHA-256 of every target file of one repo, at its pinned commit,
-- through the tiers of DESIGN.md, cheapest first:
--   api_metadata  one model-info request (blobs=true) gives every LFS file's
--                 SHA-256; the tree listing is the fallback for the same facts;
--                 or, on the resolvers route, a HEAD per file (X-Linked-Etag)
--   lfs_pointer   the /raw/ pointer of an LFS file, parsed strictly
--   downloaded    the file streamed through SHA-256 (plain git files, or when
--                 the cheaper tiers failed), checked against the Hub's claims
-- Runs inside an async task. Returns rows and errors (see hfscan.database).
local hf = require "hfscan"
local lfs = require "hfscan.lfs"
local policies = require "hfscan.policy"
local targets = require "hfscan.targets"

local M = {}

M.FAILED_NO_HASH = "FAILED_NO_HASH"
M.FAILED_TOO_LARGE = "FAILED_TOO_LARGE"

-- The error_type of the errors file for a hub error kind.
local ERROR_TYPES = {
  repository_not_found = "repository_not_found",
  gated_repository = "gated_repository",
  repository_disabled = "repository_disabled",
  entry_not_found = "file_not_found",
  revision_not_found = "revision_not_found",
  rate_limited = "rate_limited",
  network_error = "network_error",
  server_error = "server_error",
  http_error = "http_error",
  bad_response = "bad_response",
  too_large = "file_too_large",
}

-- Raised (as this table) when a stop was requested: the repo is not finished
-- and must not be recorded, so a resumed scan redoes it.
M.INTERRUPTED = setmetatable({}, { __tostring = function() return "interrupted" end })
-- Raised when the policy's on_error says to stop the whole scan.
M.STOPPED = setmetatable({}, { __tostring = function() return "stopped by the policy's on_error" end })
-- Raised when the Hub refuses the token itself (revoked mid-scan): every repo
-- left would fail the same way, so the scan stops and a restart redoes them.
M.TOKEN_REFUSED = setmetatable({}, { __tostring = function()
  return "the Hub refused the token (invalid credentials); the repos left are not scanned"
end })
-- Repo-level failures that say nothing about the repo (hub-api.md section 8: the
-- statuses worth retrying): the repo is left unfinished, for a restart to redo.
local TRANSIENT = { server_error = true, network_error = true, rate_limited = true }
-- Raised (and caught in run) when on_error says to skip the rest of the repo.
local SKIP_REPO = {}

-- Called after every Hub request: a stop requested, or a token the Hub refuses,
-- says nothing about this repo, so neither becomes a row or an error of it.
local function check_stop(err)
  if (err and err.kind == "interrupted") or hf.interrupted() then error(M.INTERRUPTED, 0) end
  if err and err.kind == "invalid_token" then error(M.TOKEN_REFUSED, 0) end
end

local function utc_now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

-- The files of a repo as { path, size, sha256, lfs, blob_id }, from model info
-- siblings or, failing that, the tree. Returns files, method_note | nil, error.
local function list_files(hub, repo_id, commit)
  local info, err = hub:model_info(repo_id, commit, { blobs = true })
  check_stop(err)
  if info then
    local files = {}
    for _, s in ipairs(type(info.siblings) == "table" and info.siblings or {}) do
      -- The Hub's JSON may hold nulls (cjson.null): keep only well-formed entries.
      if type(s) == "table" and type(s.rfilename) == "string" then
        local l = type(s.lfs) == "table" and s.lfs or nil
        files[#files + 1] = { path = s.rfilename, size = tonumber(s.size) or (l and tonumber(l.size)),
          sha256 = l and lfs.valid_sha256(l.sha256), lfs = l ~= nil,
          blob_id = type(s.blobId) == "string" and s.blobId or nil }
      end
    end
    return files, info
  end
  -- A repo we may not see will not show its tree either; anything else (a 5xx
  -- from blobs=true, a bad answer) may be the metadata request's own trouble.
  local terminal = { repository_not_found = true, revision_not_found = true,
    rate_limited = true }
  if terminal[err.kind] then return nil, err end
  local entries, terr = hub:tree(repo_id, commit)
  check_stop(terr)
  if not entries then return nil, err end
  local files = {}
  for _, e in ipairs(entries) do
    if type(e) == "table" and e.type == "file" and type(e.path) == "string" then
      local l = type(e.lfs) == "table" and e.lfs or nil
      files[#files + 1] = { path = e.path, size = tonumber(e.size), lfs = l ~= nil,
        sha256 = l and lfs.valid_sha256(l.oid), blob_id = type(e.oid) == "string" and e.oid or nil }
    end
  end
  return files, nil
end

-- Errors of a HEAD that concern the whole repo rather than one file.
local REPO_LEVEL = { gated_repository = true, repository_disabled = true,
  repository_not_found = true, revision_not_found = true }

-- A repo's files as the listing names them (expand=siblings): the rest comes
-- from a HEAD per file.
function M.files_from_listing(model)
  local files = {}
  for _, s in ipairs(model.siblings) do
    if type(s) == "table" and type(s.rfilename) == "string" then
      files[#files + 1] = { path = s.rfilename, needs_head = true }
    end
  end
  return files
end

local Scan = {}
Scan.__index = Scan

-- context: { hub, max_file_size (bytes), policy (hfscan.policy, optional) };
-- model: { id, sha, lastModified, ... } (without sha, the repo is pinned to its
-- current commit); only: a set of paths to hash instead of the policy's targets.
function M.new(context, model, only)
  return setmetatable({ ctx = context, model = model, rows = {}, errors = {}, only = only,
    policy = context.policy or policies.new() }, Scan)
end

-- Records an error, after asking the policy what to do about it.
function Scan:error(filename, error_type, reason)
  local err = { repo_id = self.model.id, filename = filename or "", error_type = error_type,
    reason = reason or "", timestamp = utc_now() }
  self.errors[#self.errors + 1] = err
  local decision = self.policy:call("on_error", err, self.model)
  if decision == "stop" then error(M.STOPPED, 0) end
  if decision == "skip_repo" then error(SKIP_REPO, 0) end
end

function Scan:row(file, hash, method)
  local m = self.model
  local row = {
    hash = hash, filename = file.path, repo_id = m.id,
    file_size = file.size and tostring(math.tointeger(file.size) or file.size) or "",
    file_type = targets.file_type(file.path), last_modified = m.lastModified or "",
    download_url = self.ctx.hub:file_url("resolve", m.id, m.sha, file.path),
    hash_method = method, commit_hash = m.sha, index = file.index,
  }
  row = self.policy:call("on_row", row, m)
  if row then self.rows[#self.rows + 1] = row end
end

function Scan:fail(file, err, hash)
  local error_type = ERROR_TYPES[err.kind] or err.kind
  self:row(file, hash or M.FAILED_NO_HASH, hash or M.FAILED_NO_HASH)
  self:error(file.path, error_type, err.message)
end

-- lfs_pointer tier. Returns the hash or nil and a reason.
function Scan:pointer_hash(file)
  local text, err = self.ctx.hub:raw(self.model.id, self.model.sha, file.path)
  check_stop(err)
  if not text then return nil, err.message end
  local sha, size = lfs.parse_pointer(text)
  if not sha then return nil, "pointer: " .. size end
  if file.size and size ~= file.size then
    return nil, ("pointer size %d differs from the listed size %d"):format(size, file.size)
  end
  return sha
end

-- downloaded tier: stream, hash, and check against every claim the Hub made.
function Scan:download_hash(file)
  local limit = self.ctx.max_file_size
  if file.size and file.size > limit then
    return nil, { kind = "too_large", message = ("%s is %d bytes, over --max-file-size (%d bytes)")
      :format(file.path, file.size, limit) }
  end
  local got, err = self.ctx.hub:download_sha256(self.model.id, self.model.sha, file.path, {
    max_bytes = limit, git_blob_size = (not file.lfs and file.size) or nil })
  check_stop(err)
  if not got then return nil, err end
  local expected_size = file.size or got.linked_size
  if expected_size and got.bytes ~= expected_size then
    return nil, { kind = "hash_mismatch", message = ("downloaded %d bytes, the Hub lists %d")
      :format(got.bytes, expected_size) }
  end
  if got.linked_etag and lfs.valid_sha256(got.linked_etag) and got.linked_etag ~= got.sha256 then
    return nil, { kind = "hash_mismatch", message = ("downloaded SHA-256 %s, the Hub claims %s")
      :format(got.sha256, got.linked_etag) }
  end
  if not file.lfs and file.blob_id and got.git_sha1 and got.git_sha1 ~= file.blob_id then
    return nil, { kind = "hash_mismatch", message = ("git blob id %s, the Hub lists %s")
      :format(got.git_sha1, file.blob_id) }
  end
  if got.commit and got.commit ~= self.model.sha then
    return nil, { kind = "hash_mismatch", message = ("served from commit %s, pinned %s")
      :format(got.commit, self.model.sha) }
  end
  return got.sha256
end

-- The resolvers route knows only a file's name (from the listing): a HEAD on
-- /resolve/ tells the rest. An LFS file's X-Linked-Etag is its SHA-256; a plain
-- git file answers 200 with its git blob id as ETag. Returns false on failure.
function Scan:head_file(file)
  local meta, err = self.ctx.hub:file_metadata(self.model.id, self.model.sha, file.path)
  check_stop(err)
  if not meta then
    -- A gated, disabled or hidden repo still shows its metadata to the api
    -- route: the repo is done that way instead, so the rows do not depend on
    -- the route.
    if REPO_LEVEL[err.kind] then
      self.use_api_route = true
    else
      self:fail(file, err)
    end
    return false
  end
  local linked = meta.linked_etag and lfs.valid_sha256(meta.linked_etag)
  file.lfs = meta.status >= 300 and meta.status < 400
  file.sha256 = file.lfs and linked or nil
  file.size = meta.size
  -- A plain file's ETag is its git blob id, when it looks like one (40 hex
  -- digits): after a 307 to /api/resolve-cache/ the ETag is not documented, and
  -- anything else must not turn a good download into a mismatch.
  local etag = not file.lfs and meta.etag
  file.blob_id = etag and #etag == 40 and etag:match("^%x+$") and etag:lower() or nil
  return true
end

-- Tries the policy's tiers in order; the first that gives a hash wins.
function Scan:hash_file(file)
  if file.needs_head and not self:head_file(file) then return end
  local problems = {}
  for _, tier in ipairs(self.policy:call("tiers", file, self.model)) do
    if tier == "api_metadata" then
      if file.sha256 then return self:row(file, file.sha256, "api_metadata") end
      problems[#problems + 1] = "no SHA-256 in the metadata"
    elseif tier == "lfs_pointer" and file.lfs then
      local sha, why = self:pointer_hash(file)
      if sha then return self:row(file, sha, "lfs_pointer") end
      problems[#problems + 1] = why
    elseif tier == "downloaded" then
      local sha, err = self:download_hash(file)
      if sha then return self:row(file, sha, "downloaded") end
      if err.kind == "too_large" then return self:fail(file, err, M.FAILED_TOO_LARGE) end
      if err.kind == "hash_mismatch" or err.kind == "gated_repository" or #problems == 0
        or not file.lfs then
        return self:fail(file, err)
      end
      problems[#problems + 1] = "download: " .. err.message
    end
  end
  self:fail(file, { kind = "hash_extraction_failed",
    message = #problems > 0 and table.concat(problems, "; ") or "no tier was tried" })
end

-- Scans the repo. Returns rows, errors. Raises M.INTERRUPTED on a stop.
function Scan:run()
  local m = self.model
  if m.sha and not self.only and self.ctx.route and self.ctx.route(m) == "resolvers" then
    self:hash_files(M.files_from_listing(m))
    if not self.use_api_route then return self.rows, self.errors end
    self.rows, self.errors = {}, {}
  end
  local files, info_or_err = list_files(self.ctx.hub, m.id, m.sha or "main")
  if files and not m.sha then
    -- The listing gave no commit: pin to the one model info answered for.
    m.sha = type(info_or_err) == "table" and type(info_or_err.sha) == "string" and info_or_err.sha or nil
    if not m.sha then
      self:error("", "bad_response", "no commit sha for this repo")
      return self.rows, self.errors
    end
  end
  if not files then
    local err = info_or_err
    self.unfinished = TRANSIENT[err.kind] or nil
    -- The listing showed this private repo to our token: "not found" now means the
    -- token stopped working (a private repo hides behind "not found" from a
    -- refused token), not that the repo is gone for good.
    if err.kind == "repository_not_found" and m.private == true then self.unfinished = true end
    self:error("", ERROR_TYPES[err.kind] or err.kind, err.message)
    return self.rows, self.errors
  end
  if type(info_or_err) == "table" and not m.lastModified and type(info_or_err.lastModified) == "string" then
    m.lastModified = info_or_err.lastModified
  end
  local seen = self:hash_files(files)
  for path in pairs(self.only or {}) do
    if not seen[path] then
      self:fail({ path = path }, { kind = "entry_not_found",
        message = ("%s is not in %s at commit %s"):format(path, m.id, m.sha) })
    end
  end
  return self.rows, self.errors
end

-- Hashes the wanted files of a list. Returns the set of paths that were wanted.
function Scan:hash_files(files)
  local m = self.model
  local seen, work = {}, {}
  for index, file in ipairs(files) do
    local wanted
    if self.only then
      wanted = self.only[file.path]
    else
      wanted = self.policy:call("select_file", file, m)
    end
    if wanted then
      seen[file.path] = true
      file.index = index
      work[#work + 1] = function() self:hash_file(file) end
    end
  end
  -- The files of a repo are hashed at once (their requests overlap on the pool),
  -- and their rows are then put back in the repo's order.
  if self.ctx.loop then self.ctx.loop:all(work) else for _, w in ipairs(work) do w() end end
  table.sort(self.rows, function(a, b) return (a.index or 0) < (b.index or 0) end)
  for _, r in ipairs(self.rows) do r.index = nil end
  return seen
end

-- Scans a repo. Returns rows, errors. Raises M.INTERRUPTED on a stop request,
-- M.STOPPED when the policy stops the scan, and a policy error for a broken hook.
function M.scan(context, model, only)
  local scan = M.new(context, model, only)
  local ok, err = pcall(scan.run, scan)
  if not ok and err ~= SKIP_REPO then error(err, 0) end
  return scan.rows, scan.errors, scan.unfinished
end

return M
