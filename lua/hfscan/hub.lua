-- A client for the Hugging Face Hub's HTTP API (see docs: shared/hub-api.md),
-- running its requests as pool jobs from tasks of an async loop.
--
-- Every function returns its result, or nil and an error table:
--   { kind = "repository_not_found" | "gated_repository" | "repository_disabled"
--            | "entry_not_found" | "revision_not_found" | "invalid_token"
--            | "rate_limited" | "server_error" | "http_error" | "network_error"
--            | "interrupted" | "bad_response",
--     status = <HTTP status or nil>, code = <X-Error-Code or nil>, message = "..." }
local cjson = require "cjson.safe"
local hf = require "hfscan"
local urls = require "hfscan.urls"

local M = {}
local Hub = {}
Hub.__index = Hub

M.DEFAULT_ENDPOINT = "https://huggingface.co"

local RETRY_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true,
  [504] = true }
local RETRY_CODES = { connect = true, timeout = true, reset = true, dns = true }

-- options: endpoint, token, loop (hfscan.async), limiter (the pool's, so that
-- waits for the rate limit happen in the task, not on a worker), retries
-- (default 5), max_wait (8 s), on_request(bucket, response|nil) for accounting.
function M.new(options)
  local endpoint = (options.endpoint or M.DEFAULT_ENDPOINT):gsub("/+$", "")
  return setmetatable({
    endpoint = endpoint,
    origin = urls.origin(endpoint),
    token = options.token,
    loop = assert(options.loop, "hub.new needs an async loop"),
    retries = options.retries or 5,
    max_wait = options.max_wait or 8,
    on_request = options.on_request,
    limiter = options.limiter,
    timeout = options.timeout or 30,
  }, Hub)
end

-- Which rate-limit bucket a URL draws on (hub-api.md section 8).
function Hub:bucket_of(url)
  if urls.origin(url) ~= self.origin then return "cdn" end
  local path = (url:match("^%a[%w+.-]*://[^/?#]+([^?#]*)") or "")
  -- "Every URL containing /resolve/" (legacy ids like /gpt2/resolve/ too), then /api/
  -- (which /api/resolve-cache/ is: it does not contain "/resolve/").
  if path:find("/resolve/", 1, true) then return "resolvers" end
  if path:sub(1, 5) == "/api/" then return "api" end
  return "pages"
end

-- The headers for a URL: Authorization only for the endpoint's own origin.
function Hub:headers_for(url, extra)
  local headers = {}
  for k, v in pairs(extra or {}) do headers[k] = v end
  if self.token and urls.origin(url) == self.origin then
    headers.Authorization = "Bearer " .. self.token
  end
  return headers
end

local function error_message(res)
  local msg = res.headers["x-error-message"]
  if not msg and res.body and res.body ~= "" then
    local decoded = cjson.decode(res.body)
    if type(decoded) == "table" then
      local e = decoded.error
      if type(e) == "table" then e = table.concat(e, "; ") end
      msg = type(e) == "string" and e or nil
    end
    msg = msg or res.body:sub(1, 200)
  end
  return msg or ""
end

-- Turns an HTTP error response into an error table (hub-api.md section 6 order).
function Hub:classify(res)
  local code = res.headers["x-error-code"]
  local msg = error_message(res)
  local kind
  if code == "RevisionNotFound" then kind = "revision_not_found"
  elseif code == "EntryNotFound" then kind = "entry_not_found"
  elseif code == "GatedRepo" then kind = "gated_repository"
  elseif msg == "Access to this resource is disabled." then kind = "repository_disabled"
  elseif code == "RepoNotFound" then kind = "repository_not_found"
  elseif res.status == 401 and msg:find("Invalid credentials in Authorization header", 1, true) then
    kind = "invalid_token"
  elseif res.status == 401 then kind = "repository_not_found" -- private, gated or missing alike
  elseif res.status == 429 then kind = "rate_limited"
  elseif res.status >= 500 then kind = "server_error"
  else kind = "http_error" end
  return { kind = kind, status = res.status, code = code,
    message = ("HTTP %d%s: %s"):format(res.status, code and (" " .. code) or "", msg) }
end

local function failure(kind, message) return { kind = kind, message = message } end

-- Seconds to wait before retrying a response (hub-api.md section 8, as HH does):
-- a 429 with r=0 waits for the window; else Retry-After; else exponential.
function Hub:retry_delay(res, attempt)
  if res and res.status == 429 then
    local _, r, t = hf.parse_ratelimit(res.headers.ratelimit or "")
    if r == 0 and t then return t + 1 end
  end
  local after = res and tonumber(res.headers["retry-after"] or "")
  if after then return after end
  return math.min(2 ^ (attempt - 1), self.max_wait)
end

-- Waits in this task (never on a worker) until the bucket has a slot, and books
-- it. Returns false if a stop was requested meanwhile.
function Hub:wait_for_slot(bucket)
  while true do
    local wait, booked = self.limiter:reserve(bucket)
    if wait > 0 then self.loop:sleep(wait) end
    if hf.interrupted() then
      if booked then self.limiter:cancel(bucket) end
      return false
    end
    if booked then return true end
  end
end

-- One URL, with retries. Returns the response (any status) or nil, error.
function Hub:request_once(req)
  req.bucket = req.bucket or self:bucket_of(req.url)
  req.headers = self:headers_for(req.url, req.headers)
  req.timeout = req.timeout or self.timeout
  for attempt = 1, self.retries + 1 do
    if hf.interrupted() then return nil, failure("interrupted", "interrupted") end
    if self.limiter and not self:wait_for_slot(req.bucket) then
      return nil, failure("interrupted", "interrupted")
    end
    req.reserved = self.limiter ~= nil
    local res, msg, code = self.loop:submit(req)
    if self.on_request then self.on_request(req.bucket, res) end
    if code == "interrupted" or hf.interrupted() then
      return nil, failure("interrupted", "interrupted")
    end
    local retry = (res and RETRY_STATUS[res.status]) or (not res and RETRY_CODES[code])
    if not retry or attempt > self.retries then
      if res then return res end
      local kind = code == "too_large" and "too_large" or "network_error"
      return nil, failure(kind, msg)
    end
    self.loop:sleep(self:retry_delay(res, attempt))
  end
end

-- An absolute URL for a Location header: the Hub's are absolute or start with "/".
local function absolute_location(origin, location)
  if urls.origin(location) then return location end
  if location:sub(1, 1) == "/" then return origin .. location end
  return nil
end

local MAX_HOPS = 5

-- Performs a request with retries. req is a pool job table (url, method, sink...).
-- Redirects within the endpoint's origin are followed here, one hop at a time, so
-- that each hop is booked in its own bucket: a /resolve/ of a regular file may
-- answer 307 to /api/resolve-cache/... (an api request), a renamed repo's /api/
-- path 307s to its new name. A redirect to another host is returned to the caller
-- (who asks the CDN without the token), unless req.cross_host lets libcurl follow
-- it. Returns the final response (any status) or nil, error.
function Hub:request(req)
  local extra_headers = req.headers
  if not req.cross_host then req.follow_redirects = false end
  local res, err = self:request_once(req)
  for _ = 1, MAX_HOPS do
    local location = res and res.status >= 300 and res.status < 400 and res.headers.location
    local next_url = location and absolute_location(self.origin, location)
    if not next_url or urls.origin(next_url) ~= self.origin then break end
    local hop = {}
    for k, v in pairs(req) do hop[k] = v end
    hop.url, hop.bucket, hop.headers = next_url, nil, extra_headers
    res, err = self:request_once(hop)
  end
  return res, err
end

-- GET a JSON document from the API. Returns the decoded value and the response.
function Hub:get_json(url)
  local res, err = self:request { url = url, max_body = 256 << 20 }
  if not res then return nil, err end
  if res.status ~= 200 then return nil, self:classify(res) end
  local value, jerr = cjson.decode(res.body or "")
  if value == nil then
    return nil, failure("bad_response", url .. ": invalid JSON: " .. tostring(jerr))
  end
  return value, res
end

function Hub:api_url(...)
  return self.endpoint .. "/api/" .. table.concat({ ... }, "/")
end

-- Pages through /api/models. params: { {key, value}, ... }. on_page(items)
-- returns false to stop. Returns true, or nil and an error.
function Hub:list_models(params, on_page)
  local url = self:api_url("models") .. "?" .. urls.query(params)
  while url do
    local items, res = self:get_json(url)
    if not items then return nil, res end
    if type(items) ~= "table" then
      return nil, failure("bad_response", "model listing is not a JSON array")
    end
    if on_page(items) == false then return true end
    url = urls.link(res.headers.link, "next")
  end
  return true
end

-- Model info at a revision; with blobs = true siblings carry sizes and LFS hashes.
function Hub:model_info(repo_id, revision, options)
  local url = self:api_url("models", repo_id, "revision", urls.segment(revision or "main"))
  if options and options.blobs then url = url .. "?blobs=true" end
  return self:get_json(url)
end

-- Every entry of a repo's tree at a revision, following pages.
function Hub:tree(repo_id, revision)
  local url = self:api_url("models", repo_id, "tree", urls.segment(revision))
    .. "?recursive=true&expand=false"
  local entries = {}
  while url do
    local page, res = self:get_json(url)
    if not page then return nil, res end
    for _, e in ipairs(page) do entries[#entries + 1] = e end
    url = urls.link(res.headers.link, "next")
  end
  return entries
end

function Hub:file_url(kind, repo_id, revision, path)
  return ("%s/%s/%s/%s/%s"):format(self.endpoint, repo_id, kind, urls.segment(revision),
    urls.path(path))
end

-- The /raw/ text of a file (for LFS files, the pointer), capped at max_bytes.
function Hub:raw(repo_id, revision, path, max_bytes)
  local res, err = self:request { url = self:file_url("raw", repo_id, revision, path),
    max_body = max_bytes or 4096 }
  if not res then return nil, err end
  if res.status ~= 200 then return nil, self:classify(res) end
  return res.body
end

local function unquote_etag(etag)
  if not etag then return nil end
  return (etag:gsub("^W/", ""):gsub('^"(.*)"$', "%1"))
end

-- HEAD on /resolve/ without following the CDN redirect: what the Hub says of a
-- file. Returns { commit, etag, linked_etag, linked_size, size, location, status }.
function Hub:file_metadata(repo_id, revision, path)
  local url = self:file_url("resolve", repo_id, revision, path)
  local res, err = self:request { method = "HEAD", url = url,
    headers = { ["Accept-Encoding"] = "identity" } }
  if not res then return nil, err end
  if res.status >= 400 then return nil, self:classify(res) end
  local h = res.headers
  return {
    status = res.status,
    commit = h["x-repo-commit"],
    etag = unquote_etag(h.etag),
    linked_etag = unquote_etag(h["x-linked-etag"]),
    linked_size = tonumber(h["x-linked-size"] or ""),
    size = tonumber(h["x-linked-size"] or (res.status < 300 and h["content-length"]) or ""),
    location = h.location,
    url = res.url,
  }
end

-- Streams a file through SHA-256 without storing it. options: max_bytes (abort
-- past it), git_blob_size (also compute the git blob SHA-1 of a body that size).
-- Returns { sha256, bytes, git_sha1, linked_etag, linked_size, commit } or nil, error.
-- LFS files answer a 302 to the CDN: its X-Linked-* headers are kept as the Hub's
-- claim, and the CDN is asked without Authorization.
function Hub:download_sha256(repo_id, revision, path, options)
  options = options or {}
  local url = self:file_url("resolve", repo_id, revision, path)
  local req = { url = url, sink = "sha256", max_body = options.max_bytes,
    git_blob_size = options.git_blob_size, headers = { ["Accept-Encoding"] = "identity" } }
  local res, err = self:request(req)
  if not res then return nil, err end
  local claim = { commit = res.headers["x-repo-commit"] }
  if res.status >= 300 and res.status < 400 and res.headers.location then
    claim.linked_etag = unquote_etag(res.headers["x-linked-etag"])
    claim.linked_size = tonumber(res.headers["x-linked-size"] or "")
    if options.max_bytes and claim.linked_size and claim.linked_size > options.max_bytes then
      return nil, failure("too_large", ("%s is %d bytes"):format(path, claim.linked_size))
    end
    local location = absolute_location(self.origin, res.headers.location)
    if not location then
      return nil, failure("bad_response", "unusable redirect: " .. res.headers.location)
    end
    -- The CDN hop is a new request, not one libcurl follows: check it the same way.
    local refusal = hf.redirect_refusal(res.url or url, location)
    if refusal then
      return nil, failure("bad_response", ("%s: %s (to %s)"):format(url, refusal, location))
    end
    res, err = self:request { url = location,
      sink = "sha256", max_body = options.max_bytes, cross_host = true,
      git_blob_size = options.git_blob_size }
    if not res then return nil, err end
  end
  if res.status ~= 200 and res.status ~= 206 then return nil, self:classify(res) end
  return { sha256 = res.sha256, bytes = res.bytes, git_sha1 = res.git_sha1,
    linked_etag = claim.linked_etag, linked_size = claim.linked_size, commit = claim.commit }
end

function Hub:whoami()
  return self:get_json(self:api_url("whoami-v2"))
end

return M
