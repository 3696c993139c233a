-- Finds the SHA-256 of every target file of one repo, at its pinned commit.
--
-- The file list (hub-api.md section 12): the tree at the commit, paged to its
-- end, is the one complete list; if it fails, model info with blobs=true, whose
-- siblings the Hub's cache may cut short or empty, so they are trusted only with
-- a plausible count; then paths-info for every name known. Where two sources
-- answered, a file one of them lacks is looked up.
--
-- The hash of each file, cheapest first (DESIGN.md):
--   api_metadata  lfs.oid of the tree (lfs.sha256 of model info); on the
--                 resolvers route, the X-Linked-Etag of the file's /resolve/ answer
--   lfs_pointer   the /raw/ pointer of an LFS file, parsed strictly
--   downloaded    the file streamed through SHA-256, checked against every claim
--
-- Fall back first, back off later: when an endpoint fails, the next one is asked
-- at once; only when every one failed does the repo wait and ask again, within
-- its budget, after which it is left unfinished for a restart. Runs inside an
-- async task. Returns rows, errors, unfinished (see hfscan.db.files).
local backoff = require "hfscan.hub.backoff"
local database = require "hfscan.db.files"
local hex = require "hfscan.hex"
local hf = require "hfscan"
local hub_client = require "hfscan.hub.api"
local lfs = require "hfscan.scan.lfs"
local names = require "hfscan.db.names"
local policies = require "hfscan.scan.policy"
local targets = require "hfscan.scan.targets"
local tiers = require "hfscan.scan.tiers"
local urls = require "hfscan.hub.urls"
local verdicts = require "hfscan.scan.verdicts"

local M = {}

M.FAILED_NO_HASH = database.FAILED_NO_HASH
M.FAILED_TOO_LARGE = database.FAILED_TOO_LARGE
-- A file list of this many entries or fewer may be whole; the Hub's cache cuts
-- siblings short (huggingface_hub trusts them below 1000), or empties them.
M.PLAUSIBLE_FILES = 999

-- The error_type of the errors file for a hub error kind: the kind itself, but
-- for these.
local RENAMED = { entry_not_found = "file_not_found", too_large = "file_too_large" }
local function error_type(kind) return RENAMED[kind] or kind end

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
-- Raised when the Hub has stopped answering at all (hub.unreachable says how).
M.HUB_UNREACHABLE = setmetatable({}, { __tostring = function() return "the Hub cannot be reached" end })
-- Failures that may pass are backed off, then the repo is left unfinished.
local TRANSIENT, LIST_TRANSIENT = hub_client.TRANSIENT, hub_client.LIST_TRANSIENT
-- A repo the caller may not see, a commit that is not there, a disabled repo
-- (whose model info is refused too, hub-api.md section 12): no endpoint says otherwise.
local TERMINAL = { repository_not_found = true, revision_not_found = true,
  repository_disabled = true }
-- Failures of a file that are facts about it: a row says so.
local FILE_FACTS = { hash_mismatch = true, unverifiable = true, gated_repository = true, repository_disabled = true,
  region_blocked = true, entry_not_found = true }
-- Raised (and caught in run) when on_error says to skip the rest of the repo.
local SKIP_REPO = {}

local function plausible(count) return count >= 1 and count <= M.PLAUSIBLE_FILES end
M.plausible = plausible

-- A file from a tree or paths-info entry: { path, size, sha256, lfs, blob_id,
-- security (its securityFileStatus, when expanded) }.
local function file_from_entry(e)
  if type(e) ~= "table" or e.type ~= "file" or type(e.path) ~= "string" then return nil end
  local l = type(e.lfs) == "table" and e.lfs or nil
  return { path = e.path, size = tonumber(e.size), lfs = l ~= nil,
    sha256 = l and hex.sha256(l.oid), blob_id = type(e.oid) == "string" and e.oid or nil,
    security = type(e.securityFileStatus) == "table" and e.securityFileStatus or nil,
    -- The Hub answered for it (a JSON null too: it has no verdict to give).
    expanded = e.securityFileStatus ~= nil }
end

-- A file from a model info sibling (blobs=true): the hash is "sha256" there.
local function file_from_sibling(s)
  if type(s) ~= "table" or type(s.rfilename) ~= "string" then return nil end
  local l = type(s.lfs) == "table" and s.lfs or nil
  return { path = s.rfilename, size = tonumber(s.size) or (l and tonumber(l.size)),
    sha256 = l and hex.sha256(l.sha256), lfs = l ~= nil,
    blob_id = type(s.blobId) == "string" and s.blobId or nil }
end

-- The well-formed files of a JSON list (the Hub's JSON may hold nulls), once each.
local function files_of(list, convert, into, have)
  into, have = into or {}, have or {}
  for _, item in ipairs(type(list) == "table" and list or {}) do
    local file = convert(item)
    if file and not have[file.path] then
      have[file.path] = true
      into[#into + 1] = file
    end
  end
  return into, have
end

-- The file names the listing gave (expand=siblings), in order; {} without them.
local function listing_names(model)
  local names = {}
  for _, s in ipairs(type(model.siblings) == "table" and model.siblings or {}) do
    if type(s) == "table" and type(s.rfilename) == "string" then names[#names + 1] = s.rfilename end
  end
  return names
end
M.listing_names = listing_names

-- A repo's files as the listing names them, for the resolvers route.
function M.files_from_listing(model)
  local files = {}
  for _, name in ipairs(listing_names(model)) do files[#files + 1] = { path = name, via_resolvers = true } end
  return files
end

local Scan = {}
Scan.__index = Scan

-- context: { hub, max_file_size (bytes), policy (hfscan.scan.policy, optional),
-- route (model -> "api" | "resolvers", optional), retry_budget (seconds of
-- back-off per repo) }; model: { id, sha, lastModified, siblings, ... } (without
-- sha, the repo is pinned to its current commit first); only: the set of files
-- to hash instead of the policy's targets, named as the database files name
-- them (the text form of hfscan.db.names): a retry takes them from its CSV.
function M.new(context, model, only)
  return setmetatable({ ctx = context, hub = context.hub, model = model, rows = {}, errors = {},
    only = only, policy = context.policy or policies.new(),
    backoff = backoff.new(context.hub.loop, context.retry_budget) }, Scan)
end

-- Called after every Hub request: a stop requested, a token the Hub refuses, or
-- a Hub that no longer answers says nothing about this repo, so none becomes a
-- row or an error of it.
function Scan:check(err)
  if (err and err.kind == "interrupted") or hf.interrupted() then error(M.INTERRUPTED, 0) end
  if err and err.kind == "invalid_token" then error(M.TOKEN_REFUSED, 0) end
  if (err and err.kind == "unreachable") or self.hub.unreachable then error(M.HUB_UNREACHABLE, 0) end
end

-- Records an error about a file (its path) or the repo (no path), after asking
-- the policy what to do about it. The reason may quote a path or a server's
-- words, so it gets the text form of a name too: the errors file stays text.
function Scan:error(path, error_type, reason)
  local err = { repo_id = self.model.id, filename = names.escape(path or ""),
    error_type = error_type, reason = names.escape(reason or ""), timestamp = database.utc_now() }
  self.errors[#self.errors + 1] = err
  local decision = self.policy:call("on_error", err, self.model)
  if decision == "stop" then error(M.STOPPED, 0) end
  if decision == "skip_repo" then error(SKIP_REPO, 0) end
end

-- A file's row, as the CSVs hold it: names in their text form (hfscan.db.names);
-- the download URL is percent-encoded already.
function Scan:row(file, hash, method)
  local m = self.model
  local row = {
    hash = hash, filename = names.escape(file.path), repo_id = m.id,
    file_size = file.size and tostring(math.tointeger(file.size) or file.size) or "",
    file_type = names.escape(targets.file_type(file.path)), last_modified = m.lastModified or "",
    download_url = self.hub:file_url("resolve", m.id, m.sha, file.path),
    hash_method = method, commit_hash = m.sha, index = file.index,
  }
  if self.ctx.security_status then verdicts.put(row, file.security) end
  row = self.policy:call("on_row", row, m)
  if row then self.rows[#self.rows + 1] = row end
end

function Scan:fail(file, err, hash)
  local error_type = error_type(err.kind)
  self:row(file, hash or M.FAILED_NO_HASH, hash or M.FAILED_NO_HASH)
  self:error(file.path, error_type, err.message)
end

-- Keeps what model info tells of the repo that the listing may not have given.
function Scan:take_metadata(info)
  if not self.model.lastModified and type(info.lastModified) == "string" then
    self.model.lastModified = info.lastModified
  end
end

-- ---- the commit and the file list ------------------------------------------

-- A repo given without a commit (an update, a script) is pinned to the one
-- model info names (without blobs=true: one light request), so that no tier
-- ever reads `main`. Returns true, or nil and the error.
function Scan:pin_commit()
  local m = self.model
  while true do
    local info, err = self.hub:model_info(m.id, nil, { retries = 0 })
    self:check(err)
    if info then
      if type(info.sha) ~= "string" or not info.sha:match("^%x+$") then
        return nil, hub_client.failure("bad_response", "model info of " .. m.id .. " names no commit")
      end
      m.sha = info.sha
      self:take_metadata(info)
      return true
    end
    if not TRANSIENT[err.kind] or not self.backoff:wait(self.hub:what_failed(err)) then
      return nil, err
    end
  end
end

-- Adds the files a second source names (the listing's siblings) and the list
-- lacks: they are looked up with paths-info, not dropped.
function Scan:add_listing_names(files, have)
  local m, missing = self.model, {}
  for _, name in ipairs(listing_names(m)) do
    if not have[name] and self:wanted({ path = name }) then missing[#missing + 1] = name end
  end
  if #missing == 0 then return files end
  local found, err = self.hub:paths_info(m.id, m.sha, missing, { retries = 0 })
  self:check(err)
  if not found then
    -- The list is whole but for these few: the repo is redone by a restart.
    self.unfinished = true
    self:error("", error_type(err.kind), ("cannot look up %d files the listing names: %s")
      :format(#missing, err.message))
    return files
  end
  return (files_of(found, file_from_entry, files, have))
end

-- The tree entries a repo has, as far as the listing's names tell: its files
-- and their folders (nil without names).
local function listed_entries(model)
  local names, folders, n = listing_names(model), {}, 0
  if #names == 0 then return nil end
  for _, name in ipairs(names) do
    for folder in name:gmatch("()/") do
      local path = name:sub(1, folder - 1)
      if not folders[path] then folders[path], n = true, n + 1 end
    end
  end
  return #names + n
end

-- With --security-status, the Hub's verdict of each listed file that its list
-- did not carry (a plain tree, siblings): one paths-info with expand=true per
-- PATHS_PER_REQUEST files, backed off like the list. A file the Hub no longer
-- has keeps empty columns. When the lookup fails for a reason that may pass,
-- the repo is left unfinished (its rows would say nothing of what the Hub
-- thinks of them). Returns whether the repo goes on to be hashed.
function Scan:look_up_verdicts(files)
  local missing, by_path = {}, {}
  for _, file in ipairs(files) do
    if not file.expanded and self:wanted(file) then
      missing[#missing + 1], by_path[file.path] = file.path, file
    end
  end
  if #missing == 0 then return true end
  while true do
    local found, err = self.hub:paths_info(self.model.id, self.model.sha, missing,
      { retries = 0, expand = true })
    self:check(err)
    if found then
      for _, entry in ipairs(found) do
        local file = type(entry) == "table" and by_path[entry.path]
        if file and type(entry.securityFileStatus) == "table" then file.security = entry.securityFileStatus end
      end
      return true
    end
    if not TRANSIENT[err.kind] or not self.backoff:wait(self.hub:what_failed(err)) then
      self:error("", error_type(err.kind), ("cannot read the Hub's verdicts of %d files: %s")
        :format(#missing, err.message))
      if not TRANSIENT[err.kind] then return true end
      self.unfinished = true
      return false
    end
  end
end

-- Returned by list_files when the resolvers route did the repo instead.
local DONE_ELSEWHERE = {}

-- When the tree fails while the api window is spent, the resolvers route is the
-- other source at hand (the scanner's route choice says so): it does the repo
-- at once instead of waiting for the api window. Returns true when it did.
function Scan:resolvers_instead()
  if self.resolvers_tried or self.only or not self.ctx.route then return false end
  self.resolvers_tried = true
  return self.ctx.route(self.model) == "resolvers" and self:resolvers_route()
end

-- One round over the sources of the file list. Returns files (or
-- DONE_ELSEWHERE), or nil and the errors of the sources that failed.
function Scan:list_round()
  local m, hub = self.model, self.hub
  -- Only the wanted files of the tree are kept (a huge tree of others costs no
  -- memory), but every name the listing gave that the tree has is noted, so
  -- that add_listing_names looks up only what the tree really lacks.
  local listed, in_tree = {}, {}
  for _, name in ipairs(listing_names(m)) do listed[name] = true end
  local entries, err = hub:tree(m.id, m.sha, { retries = 0, expand = self.expand_tree, keep = function(entry)
    local file = file_from_entry(entry)
    if not file then return false end
    if listed[file.path] then in_tree[file.path] = true end
    return self:wanted(file)
  end })
  self:check(err)
  if entries then
    local files, have = files_of(entries, file_from_entry)
    for name in pairs(in_tree) do have[name] = true end
    return self:add_listing_names(files, have)
  end
  if TERMINAL[err.kind] then return nil, { err } end
  if LIST_TRANSIENT[err.kind] and self:resolvers_instead() then return DONE_ELSEWHERE end
  local failures = { err }
  local info, ierr = hub:model_info(m.id, m.sha, { blobs = true, retries = 0 })
  self:check(ierr)
  local names, known = {}, {}
  for _, name in ipairs(listing_names(m)) do names[#names + 1], known[name] = name, true end
  local listing_count = #names
  if info then
    self:take_metadata(info)
    local files, have = files_of(info.siblings, file_from_sibling)
    if plausible(#files) then
      self.listed_without_tree = "model info's siblings"
      return self:add_listing_names(files, have)
    end
    for _, f in ipairs(files) do
      if not known[f.path] then names[#names + 1], known[f.path] = f.path, true end
    end
    failures[#failures + 1] = hub_client.failure("bad_response",
      ("model info lists %d files, which may be cut short"):format(#files))
  else
    failures[#failures + 1] = ierr
    if TERMINAL[ierr.kind] or not LIST_TRANSIENT[ierr.kind] then return nil, failures end
  end
  -- paths-info says which of the names exist: whole only if the names were.
  if plausible(listing_count) then
    local found, perr = hub:paths_info(m.id, m.sha, names, { retries = 0 })
    self:check(perr)
    if found then
      self.listed_without_tree = "paths-info of the listing's names"
      return (files_of(found, file_from_entry))
    end
    failures[#failures + 1] = perr
  end
  return nil, failures
end

-- The repo's files, or nil and the error to record (transient: the repo is
-- left unfinished).
function Scan:list_files()
  while true do
    local files, failures = self:list_round()
    if files then return files end
    local transient
    for _, f in ipairs(failures) do
      if LIST_TRANSIENT[f.kind] then transient = transient or f end
    end
    -- Every source refused the repo (disabled, gated, gone): that is the answer.
    if not transient then return nil, failures[#failures] end
    if not self.backoff:wait(self.hub:what_failed(transient)) then return nil, transient end
  end
end

-- ---- the tiers -----------------------------------------------------------------

-- lfs_pointer tier. Returns the hash or nil, a reason and the Hub's error.
function Scan:pointer_hash(file)
  local text, err = self.hub:raw(self.model.id, self.model.sha, file.path, nil, { retries = 0 })
  self:check(err)
  if not text then return nil, err.message, err end
  local sha, size = lfs.parse_pointer(text)
  if not sha then return nil, "pointer: " .. size end
  if file.size and size ~= file.size then
    return nil, ("pointer size %d differs from the listed size %d"):format(size, file.size)
  end
  return sha
end

local function mismatch(message, ...)
  return nil, hub_client.failure("hash_mismatch", message:format(...))
end

local function unverifiable(message, ...)
  return nil, hub_client.failure("unverifiable", message:format(...))
end

-- Checks a download against the Hub's claims of the file, and fails closed: the
-- bytes are a good hash only when a valid claim was there to compare them with
-- (an LFS file: a SHA-256 from the metadata or X-Linked-Etag; a plain file: its
-- git blob id and size). Substituted bytes of the right size never pass.
function Scan:verify_download(file, got)
  local claim = got.claim
  local expected_size = file.size or (claim.kind == "lfs" and claim.size) or nil
  if expected_size and got.bytes ~= expected_size then
    return mismatch("downloaded %d bytes, the Hub lists %d", got.bytes, expected_size)
  end
  if claim.commit and claim.commit ~= self.model.sha then
    return mismatch("served from commit %s, pinned %s", claim.commit, self.model.sha)
  end
  if file.lfs or claim.kind == "lfs" then
    local expected = hex.sha256(file.sha256) or hex.sha256(claim.sha256)
    if not expected then
      return unverifiable("an LFS file with no valid SHA-256 claim to check the download against")
    end
    if expected ~= got.sha256 then
      return mismatch("downloaded SHA-256 %s, the Hub claims %s", got.sha256, expected)
    end
    return got.sha256
  end
  local blob_id = hex.git_oid(file.blob_id) or hex.git_oid(claim.git_oid)
  if not (blob_id and expected_size and got.git_sha1) then
    return unverifiable("a plain file with no git blob id and size to check the download against")
  end
  if got.git_sha1 ~= blob_id then
    return mismatch("git blob id %s, the Hub lists %s", got.git_sha1, blob_id)
  end
  return got.sha256
end

-- downloaded tier: stream, hash, and check. The resolvers route may have
-- fetched the file already.
function Scan:download_hash(file)
  local limit = self.ctx.max_file_size
  if file.size and file.size > limit then
    return nil, hub_client.failure("too_large", ("%s is %d bytes, over --max-file-size (%d bytes)")
      :format(file.path, file.size, limit))
  end
  local got, err = file.fetched, nil
  file.fetched = nil -- a second round downloads again
  if not got then
    got, err = self.hub:fetch_file(self.model.id, self.model.sha, file.path, {
      max_bytes = limit, expected_size = file.size, git_blob_size = (not file.lfs and file.size) or nil,
      git_blob = not file.lfs and not file.size, retries = 0 })
    self:check(err)
    if not got then return nil, err end
  end
  return self:verify_download(file, got)
end

-- The resolvers route knows only a file's name (from the listing): one GET on
-- /resolve/ tells the rest. An LFS file answers a redirect whose X-Linked-Etag
-- is its SHA-256 (the CDN is not asked); a plain file answers the file itself,
-- hashed as it streams. Any failure sends the repo to the api route, whose
-- metadata still gives the LFS hashes of a repo that refuses its files (gated,
-- region blocked, ...). Returns false then.
function Scan:fetch_via_resolvers(file)
  local got, err = self.hub:fetch_file(self.model.id, self.model.sha, file.path,
    { claim_only = true, git_blob = true, max_bytes = self.ctx.max_file_size, retries = 0 })
  self:check(err)
  local claim = got and got.claim
  if not got or (claim.commit and claim.commit ~= self.model.sha) then
    self.use_api_route = true
    return false
  end
  file.lfs = claim.kind == "lfs"
  if file.lfs then
    file.sha256, file.size = claim.sha256, claim.size
  elseif claim.git_oid and got.git_sha1 then
    file.fetched, file.size, file.blob_id = got, got.bytes, claim.git_oid
  else
    -- Nothing to check the bytes against (no git blob id claimed, or no size
    -- announced to compute one): the api route's tree gives both.
    self.use_api_route = true
    return false
  end
  return true
end

-- One function per tier of hfscan.scan.tiers. Each gets the file and the attempt so
-- far ({ problems, passing }) and returns true when the file has its row (a
-- hash, or a failure that is a fact about it); nil and an error to stop at a
-- failure that may pass; or nothing, having noted why it gave no hash. A tier
-- that failed for a reason that may pass leaves attempt.passing: then the file
-- gets no row yet (the caller backs off, or leaves the repo unfinished).
local TIER = {}

function TIER.api_metadata(self, file, attempt)
  if file.sha256 then
    self:row(file, file.sha256, "api_metadata")
    return true
  end
  attempt.problems[#attempt.problems + 1] = "no SHA-256 in the metadata"
end

function TIER.lfs_pointer(self, file, attempt)
  if not file.lfs then return end
  local sha, why, err = self:pointer_hash(file)
  if sha then
    self:row(file, sha, "lfs_pointer")
    return true
  end
  if err and TRANSIENT[err.kind] then attempt.passing = attempt.passing or err end
  attempt.problems[#attempt.problems + 1] = why
end

function TIER.downloaded(self, file, attempt)
  local sha, err = self:download_hash(file)
  if sha then
    self:row(file, sha, "downloaded")
    return true
  end
  if err.kind == "too_large" then
    self:fail(file, err, M.FAILED_TOO_LARGE)
    return true
  end
  if TRANSIENT[err.kind] then return nil, err end
  if FILE_FACTS[err.kind] then
    self:fail(file, err)
    return true
  end
  if attempt.passing then return nil, attempt.passing end
  if #attempt.problems == 0 or not file.lfs then
    self:fail(file, err)
    return true
  end
  attempt.problems[#attempt.problems + 1] = "download: " .. err.message
end

for _, name in ipairs(tiers.NAMES) do assert(TIER[name], "repo_scan: no function for tier " .. name) end

-- Tries the policy's tiers in order; the first that gives a hash wins. Returns
-- true when the file has its row, or false and a failure that may pass.
function Scan:try_tiers(file)
  local attempt = { problems = {}, passing = nil }
  for _, tier in ipairs(self.policy:call("tiers", file, self.model)) do
    local done, err = TIER[tier](self, file, attempt)
    if done then return true end
    if err then return false, err end
  end
  if attempt.passing then return false, attempt.passing end
  local problems = attempt.problems
  self:fail(file, hub_client.failure("hash_extraction_failed",
    #problems > 0 and table.concat(problems, "; ") or "no tier was tried"))
  return true
end

-- A file's row, after backing off failures that may pass within the repo's
-- budget; past it the file has an error but no row, and the repo is unfinished.
function Scan:hash_file(file)
  if file.via_resolvers and (self.use_api_route or not self:fetch_via_resolvers(file)) then return end
  while true do
    local done, err = self:try_tiers(file)
    if done then return end
    if not self.backoff:wait(self.hub:what_failed(err)) then
      self.unfinished = true
      self:error(file.path, error_type(err.kind), err.message)
      return
    end
  end
end

function Scan:wanted(file)
  if self.only then return self.only[names.escape(file.path)] or false end
  return self.policy:call("select_file", file, self.model)
end

-- Hashes the wanted files of a list. Returns the set of paths that were wanted.
function Scan:hash_files(files)
  local seen, work = {}, {}
  for index, file in ipairs(files) do
    if self:wanted(file) then
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

-- A repo that could not be read: one error, and unfinished when it may pass.
function Scan:repo_failed(err)
  self.unfinished = LIST_TRANSIENT[err.kind] or nil
  -- The listing showed this private repo to our token: "not found" now means the
  -- token stopped working (a private repo hides behind "not found" from a
  -- refused token), not that the repo is gone for good.
  if err.kind == "repository_not_found" and self.model.private == true then self.unfinished = true end
  self:error("", error_type(err.kind), err.message)
  return self.rows, self.errors
end

-- The resolvers route, for a repo the scanner sends there (the api window is
-- spent): true when it did the repo, false when the api route must.
function Scan:resolvers_route()
  self:hash_files(M.files_from_listing(self.model))
  if not self.use_api_route then return true end
  self.rows, self.errors, self.unfinished = {}, {}, nil
  return false
end

-- Scans the repo. Returns rows, errors. Raises M.INTERRUPTED on a stop.
function Scan:run()
  local m = self.model
  local bad_id = urls.repo_id_problem(m.id)
  if bad_id then return self:repo_failed(hub_client.failure("invalid_repo_id", bad_id)) end
  if not m.sha then
    local ok, err = self:pin_commit()
    if not ok then return self:repo_failed(err) end
  end
  if not self.only and self.ctx.route and self.ctx.route(m) == "resolvers" then
    self.resolvers_tried = true
    if self:resolvers_route() then return self.rows, self.errors end
  end
  if self.ctx.security_status then
    self.expand_tree = verdicts.expanded_tree_is_cheaper(listed_entries(m))
  end
  local files, err = self:list_files()
  if not files then return self:repo_failed(err) end
  if files == DONE_ELSEWHERE then return self.rows, self.errors end
  if self.ctx.security_status and not self:look_up_verdicts(files) then
    return self.rows, self.errors
  end
  local seen = self:hash_files(files)
  for name in pairs(self.only or {}) do
    local path = names.unescape(name)
    if not seen[path] then
      self:fail({ path = path }, hub_client.failure("entry_not_found",
        ("%s is not in %s at commit %s"):format(path, m.id, m.sha)))
    end
  end
  return self.rows, self.errors
end

-- Scans a repo. Returns rows, errors, unfinished, and where the file list came
-- from when the tree failed (nil when it answered: a list from siblings may have
-- been cut short unseen). Raises M.INTERRUPTED on a stop request, M.STOPPED when
-- the policy stops the scan, M.TOKEN_REFUSED and M.HUB_UNREACHABLE, and a policy
-- error for a broken hook.
function M.scan(context, model, only)
  local scan = M.new(context, model, only)
  local ok, err = pcall(scan.run, scan)
  if not ok and err ~= SKIP_REPO then error(err, 0) end
  return scan.rows, scan.errors, scan.unfinished, scan.listed_without_tree
end

return M
