-- A client for the Hugging Face Hub's HTTP API (see docs: shared/hub-api.md),
-- running its requests as pool jobs from tasks of an async loop.
--
-- Every function returns its result, or nil and an error table:
--   { kind = "repository_not_found" | "gated_repository" | "repository_disabled"
--            | "region_blocked" | "entry_not_found" | "revision_not_found"
--            | "invalid_token" | "rate_limited" | "server_error" | "http_error"
--            | "network_error" | "unreachable" | "interrupted" | "bad_response"
--            | "too_large",
--     status = <HTTP status or nil>, code = <X-Error-Code or nil>, message = "...",
--     partial = <a download hashed part-way, for hf.http's continue, or nil> }
local cjson = require "cjson.safe"
local hex = require "hfscan.hex"
local hf = require "hfscan"
local retry_reason = require("hfscan.hub.backoff").retry_reason
local urls = require "hfscan.hub.urls"

local M = {}
local Hub = {}
Hub.__index = Hub

M.DEFAULT_ENDPOINT = "https://huggingface.co"
-- paths-info takes up to 2000 paths a request (hub-api.md section 12).
M.PATHS_PER_REQUEST = 2000
-- Tree pages hold this many entries, and this many with expand=true (JS spec).
M.TREE_PAGE, M.TREE_PAGE_EXPANDED = 1000, 50
-- No page loop runs for ever: a Link that points back, or a listing of more pages
-- than any real answer has, ends it.
M.MAX_PAGES = 100000
-- The Hub is taken as gone after this many requests in a row, for at least two
-- repos, got no answer at all (hub-api.md section 12: stop, rather than fail
-- every repo left).
M.UNREACHABLE_RUN = 8

local RETRY_STATUS = { [408] = true, [500] = true, [502] = true, [503] = true, [504] = true }
local RETRY_CODES = { connect = true, timeout = true, reset = true, dns = true }
-- Failures in which the server said nothing at all.
local NO_ANSWER = { connect = true, timeout = true, dns = true, tls = true }
local REGION_BLOCKED = "This model is not available in your region."

-- Failures that say nothing about what was asked (hub-api.md section 8: the
-- statuses worth retrying), and for a whole list, a bad answer (invalid JSON,
-- a looping Link) too: they may pass, so they are backed off.
M.TRANSIENT = { server_error = true, network_error = true, rate_limited = true }
M.LIST_TRANSIENT = { server_error = true, network_error = true, rate_limited = true,
  bad_response = true }

-- The host[:port] of an absolute URL, or nil.
function M.host_of(url)
  return url:match("^%a[%w+.-]*://([^/?#]+)")
end

-- options: endpoint, token, loop (hfscan.async), limiter (the pool's, so that
-- waits for the rate limit happen in the task, not on a worker), retries (how
-- often a 5xx or a network failure is retried when the caller has no other
-- endpoint to ask; default 5), max_wait (8 s), timeout (seconds a transfer may
-- go without an answer, or below 1 KiB/s, default 30), on_request(bucket, response|nil)
-- for accounting, on_warning(message) for what the log should say once.
function M.new(options)
  local endpoint = (options.endpoint or M.DEFAULT_ENDPOINT):gsub("/+$", "")
  return setmetatable({
    endpoint = endpoint,
    origin = urls.origin(endpoint),
    host = M.host_of(endpoint) or endpoint,
    token = options.token,
    loop = assert(options.loop, "hub.new needs an async loop"),
    retries = options.retries or 5,
    max_wait = options.max_wait or 8,
    on_request = options.on_request,
    on_warning = options.on_warning,
    limiter = options.limiter,
    timeout = options.timeout or 30,
    learnt_buckets = {},
    silence = { count = 0, repos = {}, distinct = 0 },
    unreachable = nil, -- the message, once the Hub is taken as gone
  }, Hub)
end

-- The resolve-cache hop's bucket is not settled (hub-api.md section 12): each
-- answer's RateLimit header says which one counted it, and later hops are booked there.
local RESOLVE_CACHE = "/api/resolve-cache/"

local function path_class(path)
  if path:sub(1, #RESOLVE_CACHE) == RESOLVE_CACHE then return "resolve-cache" end
  return nil
end

local function path_of(url)
  return url:match("^%a[%w+.-]*://[^/?#]+([^?#]*)") or ""
end

-- Which rate-limit bucket a URL draws on (hub-api.md section 8).
function Hub:bucket_of(url)
  if urls.origin(url) ~= self.origin then return "cdn" end
  local path = path_of(url)
  -- "Every URL containing /resolve/" (legacy ids like /gpt2/resolve/ too), then /api/
  -- (which /api/resolve-cache/ is: it does not contain "/resolve/").
  if path:find("/resolve/", 1, true) then return "resolvers" end
  local class = path_class(path)
  if class and self.learnt_buckets[class] then return self.learnt_buckets[class] end
  if path:sub(1, 5) == "/api/" then return "api" end
  return "pages"
end

-- The bucket an answer was counted in: the one its RateLimit header names
-- (own: the request went to the endpoint's origin; default: work it out).
function Hub:answered_bucket(req, res, own)
  local named = res and res.headers.ratelimit and res.headers.ratelimit:match('^%s*"([%w_-]+)"')
  if not named then return req.bucket end
  if own == nil then own = urls.origin(req.url) == self.origin end
  local class = own and path_class(path_of(req.url))
  if class then self.learnt_buckets[class] = named end
  return named
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
  elseif res.status == 403 and msg:find(REGION_BLOCKED, 1, true) then kind = "region_blocked"
  elseif code == "RepoNotFound" then kind = "repository_not_found"
  elseif res.status == 401 and msg:find("Invalid credentials in Authorization header", 1, true) then
    kind = "invalid_token"
  elseif res.status == 401 then kind = "repository_not_found" -- private, gated or missing alike
  elseif res.status == 429 then kind = "rate_limited"
  elseif res.status >= 500 or res.status == 408 then kind = "server_error"
  else kind = "http_error" end
  return { kind = kind, status = res.status, code = code,
    message = ("HTTP %d%s: %s"):format(res.status, code and (" " .. code) or "", msg) }
end

local function failure(kind, message, partial, code)
  return { kind = kind, message = message, partial = partial, code = code }
end
M.failure = failure

-- No wait the server asks for is longer than its bucket's window (the Hub's last
-- 5 minutes), or than this when no window is known: a server that asks for more
-- is broken or hostile, and the wait is cut (issue 14).
M.MAX_SERVER_WAIT = 900

-- Retry-After (RFC 9110): delta-seconds, or an HTTP-date taken against now
-- (seconds since the epoch; default the clock), read as the limiter reads it.
-- Returns seconds (0 for a date past), or nil for anything else: negative,
-- fractional, "1e309".
function M.parse_retry_after(value, now)
  if type(value) ~= "string" then return nil end
  return hf.parse_retry_after(value, now)
end

-- The longest wait the server may ask of a bucket: its window, once known.
function Hub:wait_ceiling(bucket)
  local state = self.limiter and bucket and self.limiter:state(bucket)
  local window = state and state.window
  if window and window > 0 and window < M.MAX_SERVER_WAIT then return window end
  return M.MAX_SERVER_WAIT
end

-- Tells the caller, once per client, that the server sent a value no client
-- should honour (message: what and how it was bounded; nil: ask the limiter,
-- which bounds the RateLimit values itself).
function Hub:note_suspicious(message)
  if self.warned_suspicious then return end
  if not message and self.limiter then
    local count, latest = self.limiter:suspicious()
    message = count > 0 and latest or nil
  end
  if not message then return end
  self.warned_suspicious = true
  if self.on_warning then
    self.on_warning(("the Hub sent a suspicious value, which was bounded: %s (further ones are not logged)")
      :format(message))
  end
end

-- Seconds to wait before retrying a response (hub-api.md section 8, as HH does):
-- a 429 with r=0 waits for the window; else Retry-After; else exponential. A
-- wait the server asks for is cut to the bucket's ceiling.
function Hub:retry_delay(res, attempt, bucket)
  local asked, what
  if res and res.status == 429 then
    local _, r, t = hf.parse_ratelimit(res.headers.ratelimit or "")
    if r == 0 and t then asked, what = t + 1, "RateLimit t=" .. t end
  end
  if not asked and res and res.headers["retry-after"] then
    asked, what = M.parse_retry_after(res.headers["retry-after"]), "Retry-After: " .. res.headers["retry-after"]
    if not asked then self:note_suspicious(what .. " is not a wait; backing off instead") end
  end
  if asked then
    local ceiling = self:wait_ceiling(bucket)
    if asked > ceiling then
      self:note_suspicious(("%s cut to %d s"):format(what:sub(1, 80), ceiling))
      asked = ceiling
    end
    return asked
  end
  return math.min(2 ^ (attempt - 1), self.max_wait)
end

-- How long a task waits for a window it was told is spent before it asks the
-- limiter again: answers still coming in may show room after all.
M.SLOT_RECHECK = 0.5

-- A booked slot this far off is worth naming on the progress line; a nearer one
-- is the limiter's pacing, which would only flicker there.
M.NAMED_PACING = 1

-- Waits in this task (never on a worker) until the bucket has a slot, and books
-- it. Returns false if a stop was requested meanwhile.
function Hub:wait_for_slot(bucket)
  while true do
    local wait, booked = self.limiter:reserve(bucket)
    if wait > 0 and booked then
      self.loop:sleep(wait, wait >= M.NAMED_PACING
        and { text = bucket .. " window paced, next request in", ends = hf.now() + wait } or nil)
    elseif wait > 0 then
      local slept = math.min(wait, M.SLOT_RECHECK)
      self.loop:sleep(slept, { text = bucket .. " window spent, resets in", ends = hf.now() + wait })
      self.limiter:note_wait(bucket, slept)
    end
    if hf.interrupted() then
      if booked then self.limiter:cancel(bucket) end
      return false
    end
    if booked then return true end
  end
end

-- Keeps count of the requests to the Hub that got no answer at all, in a row.
function Hub:note_silence(req, res, code, message)
  local s = self.silence
  if res then
    if s.count > 0 then self.silence = { count = 0, repos = {}, distinct = 0 } end
    return
  end
  if not NO_ANSWER[code] then return end
  s.count = s.count + 1
  local repo = req.repo or "(listing)"
  if not s.repos[repo] then s.repos[repo], s.distinct = true, s.distinct + 1 end
  if s.count >= M.UNREACHABLE_RUN and s.distinct >= 2 then
    self.unreachable = ("cannot reach %s: %d requests in a row got no answer (%s)")
      :format(self.host, s.count, message or code)
  end
end

-- What failed, in a few words for the progress line while it is waited out:
-- err is an error table (or an answer: its status), url the request's (nil:
-- err.url, else the endpoint's).
function Hub:what_failed(err, url)
  url = url or err.url
  local host = url and M.host_of(url) or self.host
  if err.status == 429 then return host .. " answered 429" end
  if err.status then return ("%s answered HTTP %d"):format(host, err.status) end
  if err.kind == "bad_response" then return "bad answer from " .. host end
  if err.code == "timeout" then return host .. " does not answer in time" end
  if err.code == "reset" then return "connection to " .. host .. " reset" end
  return "cannot reach " .. host
end

-- A task's sleep before its attempt-th retry of a request, named for the progress line.
function Hub:retry_sleep(seconds, what, attempt)
  self.loop:sleep(seconds, retry_reason(what, attempt, seconds))
end

local function retryable(res, code)
  if res then return RETRY_STATUS[res.status] or false end
  return RETRY_CODES[code] or false
end

-- One URL, with retries. req.retries (default self.retries) bounds the retries of
-- a 5xx or a network failure: 0 for a caller with another endpoint to ask and a
-- budget of its own (fall back first, back off later), which then gets a 429 at
-- once too (the limiter holds the bucket meanwhile). Otherwise a 429 is waited
-- out, at most self.retries times. A download into the sha256 sink that dropped
-- continues from the bytes already hashed. Returns the response (any status)
-- or nil, error.
function Hub:request_once(req)
  req.bucket = req.bucket or self:bucket_of(req.url)
  req.headers = self:headers_for(req.url, req.headers)
  req.timeout = req.timeout or self.timeout
  req.first_byte_timeout = req.first_byte_timeout or self.timeout
  local retries = req.retries or self.retries
  local failures_left, throttled = retries, 0
  local own = urls.origin(req.url) == self.origin
  while true do
    if hf.interrupted() then return nil, failure("interrupted", "interrupted") end
    if self.unreachable then return nil, failure("unreachable", self.unreachable) end
    if self.limiter and not self:wait_for_slot(req.bucket) then
      return nil, failure("interrupted", "interrupted")
    end
    req.reserved = self.limiter ~= nil
    local res, msg, code, partial = self.loop:submit(req)
    req.continue = nil
    local bucket = self:answered_bucket(req, res, own)
    if self.on_request then self.on_request(bucket, res) end
    if res and self.limiter then self:note_suspicious() end
    if code == "interrupted" or hf.interrupted() then
      return nil, failure("interrupted", "interrupted")
    end
    if own then self:note_silence(req, res, code, msg) end
    partial = partial or (res and res.partial)
    if res and res.status == 429 then
      throttled = throttled + 1
      if throttled > self.retries or retries == 0 then return res end
      self:retry_sleep(self:retry_delay(res, throttled, bucket), self:what_failed(res, req.url),
        throttled)
    elseif retryable(res, code) and failures_left > 0 and not self.unreachable then
      failures_left = failures_left - 1
      req.continue = partial
      local attempt = retries - failures_left
      self:retry_sleep(self:retry_delay(res, self.retries - failures_left, bucket),
        self:what_failed(res or { code = code }, req.url), attempt)
    elseif res then
      return res
    else
      return nil, failure(code == "too_large" and "too_large" or "network_error", msg, partial, code)
    end
  end
end

-- An absolute URL for a Location header: the Hub's are absolute or start with "/".
local function absolute_location(origin, location)
  if urls.origin(location) then return location end
  if location:sub(1, 1) == "/" then return origin .. location end
  return nil
end

local MAX_HOPS = 5

local function redirect_target(self, res)
  local location = res and res.status >= 300 and res.status < 400 and res.headers.location
  return location and absolute_location(self.origin, location)
end

-- Performs a request with retries. req is a pool job table (url, method, sink...).
-- Redirects within the endpoint's origin are followed here, one hop at a time, so
-- that each hop is booked in its own bucket: a /resolve/ of a regular file may
-- answer 307 to /api/resolve-cache/... (a hop whose bucket its answer names), a
-- renamed repo's path 307s to its new name. req.stop_at(url) says which hops not
-- to follow. A redirect to another host is returned to the caller (who asks the
-- CDN without the token), unless req.cross_host lets libcurl follow it. Returns
-- the final response (any status; .first_headers holds the first answer's
-- headers when hops were followed) or nil, error.
function Hub:request(req)
  local extra_headers, stop_at = req.headers, req.stop_at
  req.stop_at = nil
  if not req.cross_host then req.follow_redirects = false end
  local res, err = self:request_once(req)
  local first_headers = res and res.headers
  for _ = 1, MAX_HOPS do
    local next_url = redirect_target(self, res)
    if not next_url or urls.origin(next_url) ~= self.origin or (stop_at and stop_at(next_url)) then
      break
    end
    local hop = {}
    for k, v in pairs(req) do hop[k] = v end
    hop.url, hop.bucket, hop.headers, hop.continue = next_url, nil, extra_headers, nil
    res, err = self:request_once(hop)
    if res then res.first_headers = first_headers end
  end
  return res, err
end

-- The largest JSON answer of each kind. Real ones are far smaller (a tree page
-- of 1000 entries is about 300 KB, model info of a 5000-file repo about 1.5 MB);
-- the caps bound what a broken server can make the scan hold: decoded, a JSON
-- body takes several times its size.
M.JSON_CAPS = { listing = 16 << 20, model_info = 8 << 20, tree = 8 << 20,
  paths_info = 8 << 20, other = 8 << 20 }

-- GET a JSON document from the API. options: retries, repo (for accounting),
-- kind (a key of JSON_CAPS; default other). Returns the decoded value and the
-- response.
function Hub:get_json(url, options)
  options = options or {}
  local cap = M.JSON_CAPS[options.kind or "other"]
  local res, err = self:request { url = url, max_body = cap, retries = options.retries,
    repo = options.repo, method = options.method, body = options.body, headers = options.headers }
  if not res and err.kind == "too_large" then
    -- An answer past its kind's cap is a broken one, not a fact about a file.
    return nil, failure("bad_response", err.message, nil, "too_large")
  end
  if not res then return nil, err end
  if res.status ~= 200 then return nil, self:classify(res) end
  local value, jerr = cjson.decode(res.body or "")
  res.body = nil -- decoded: the text need not stay alive beside the tables
  if value == nil then
    return nil, failure("bad_response", url .. ": invalid JSON: " .. tostring(jerr))
  end
  return value, res
end

-- The same, for an answer that must be a JSON array (a listing, a tree page,
-- paths-info): anything else is a bad answer.
function Hub:get_json_array(url, options)
  local value, res = self:get_json(url, options)
  if value == nil then return nil, res end
  if type(value) ~= "table" then return nil, failure("bad_response", url .. ": not a JSON array") end
  return value, res
end

-- The most entries a tree may have: far above any real model repo, and a
-- bound on the memory a server can make the list take.
M.MAX_TREE_ENTRIES = 200000

-- Tells, page by page, whether a page adds anything: key(item) names an item,
-- and a page whose items are all known already (or that is empty while it
-- names a next page) adds nothing. all = false keeps only the last page's keys
-- (the listing, whose pages are many; a loop of one page is caught by its URL).
local function novelty(key, all)
  local known = {}
  return function(items, has_next)
    if #items == 0 then return not has_next end
    local new = false
    local page = all and known or {}
    for _, item in ipairs(items) do
      local k = type(item) == "table" and key(item) or nil
      if k == nil or not known[k] then new = true end
      if k ~= nil then page[k] = true end
    end
    known = page
    return new
  end
end

-- Follows a Link rel="next" chain from url. fetch(url) gives items, response
-- or nil, error; take(items, next_url, url) returns false to stop. No page is
-- read twice, a page that adds nothing (adds(items, has_next) false) ends the
-- chain as a bad answer, and no chain is longer than MAX_PAGES (what names it in
-- the message). Returns true, or nil and an error (err.url: the page that failed).
local function follow_pages(url, what, fetch, take, adds)
  local seen = {}
  for _ = 1, M.MAX_PAGES do
    if seen[url] then
      return nil, failure("bad_response", ("%s: its next page is one already read: %s"):format(what, url))
    end
    seen[url] = true
    local items, res = fetch(url)
    if not items then
      res.url = url
      return nil, res
    end
    local next_url = urls.link(res.headers.link, "next")
    if not adds(items, next_url ~= nil) then
      return nil, failure("bad_response", ("%s: the page %s adds nothing to those before it"):format(what, url))
    end
    if take(items, next_url, url) == false or not next_url then return true end
    url = next_url
  end
  return nil, failure("bad_response", ("%s has more than %d pages"):format(what, M.MAX_PAGES))
end

function Hub:api_url(...)
  return self.endpoint .. "/api/" .. table.concat({ ... }, "/")
end

-- ---- the listing ---------------------------------------------------------

-- The same URL with one query parameter set (value) or removed (nil), or with
-- the pair key=drop removed when drop is given.
local function edit_query(url, key, value, drop)
  local base, query = url:match("^([^?]*)%??(.*)$")
  local parts, seen = {}, false
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    local name = k:gsub("%%5B%%5D$", ""):gsub("%[%]$", "")
    if drop then
      if not (name == key and v == drop) then parts[#parts + 1] = pair end
    elseif name == key then
      if value and not seen then parts[#parts + 1] = k .. "=" .. urls.segment(tostring(value)) end
      seen = true
    else
      parts[#parts + 1] = pair
    end
  end
  if not drop and value and not seen then parts[#parts + 1] = key .. "=" .. urls.segment(tostring(value)) end
  return base .. (#parts > 0 and ("?" .. table.concat(parts, "&")) or "")
end

-- The ways to ask one listing page: the page as given, twice (a 504 may be a
-- passing one); heavy expands can time out (hub-api.md section 12), so then
-- smaller pages, then no siblings.
function M.listing_variants(url)
  local limit = tonumber(url:match("[?&]limit=(%d+)")) or 1000
  local variants = { url, url }
  for _, smaller in ipairs({ 250, 100 }) do
    if smaller < limit then variants[#variants + 1] = edit_query(url, "limit", smaller) end
  end
  local last = variants[#variants]
  local plain = edit_query(last, "expand", nil, "siblings")
  if plain ~= last then variants[#variants + 1] = plain end
  return variants
end

-- One page of the listing, trying each variant at once when one fails (no
-- sleep), and backing off only when all failed: backoff:wait() says whether to
-- go round again. Returns items, the response, or nil and the last error.
function Hub:listing_page(url, backoff)
  local variants = M.listing_variants(url)
  while true do
    local err
    for _, variant in ipairs(variants) do
      local items, res = self:get_json_array(variant, { retries = 0, repo = "(listing)",
        kind = "listing" })
      if items then return items, res end
      err = res
      -- Only an overloaded or an oversized answer says a lighter page may do better.
      if err.kind ~= "server_error" and err.code ~= "timeout" and err.code ~= "too_large" then
        break
      end
    end
    if not M.LIST_TRANSIENT[err.kind] or not backoff or not backoff:wait(self:what_failed(err)) then
      return nil, err
    end
  end
end

-- Pages through /api/models. params: { {key, value}, ... }; options.start_url
-- continues a listing at a page saved earlier; options.backoff (see
-- listing_page). on_page(items, next_url, page_url) returns false to stop.
-- Returns true, or nil and an error (err.url: the page that failed).
function Hub:list_models(params, on_page, options)
  options = options or {}
  local url = options.start_url or (self:api_url("models") .. "?" .. urls.query(params))
  return follow_pages(url, "the listing", function(page_url)
    return self:listing_page(page_url, options.backoff)
  end, on_page, novelty(function(model) return model.id end, false))
end

-- ---- a repo's files --------------------------------------------------------

-- Model info at a revision (nil: the default branch, whatever its name); with
-- blobs = true siblings carry sizes and LFS hashes. options: blobs, retries.
function Hub:model_info(repo_id, revision, options)
  options = options or {}
  local url = revision and self:api_url("models", repo_id, "revision", urls.segment(revision))
    or self:api_url("models", repo_id)
  if options.blobs then url = url .. "?blobs=true" end
  return self:get_json(url, { retries = options.retries, repo = repo_id, kind = "model_info" })
end

-- Every entry of a repo's tree at a revision, following pages to the end: the
-- one complete file list (hub-api.md section 12). options: retries, keep(entry)
-- (only the entries it returns true for are kept, page by page: a huge tree of
-- files nobody wants costs no memory), expand (entries with lastCommit and the
-- Hub's scan results, securityFileStatus, in pages of 50 instead of 1000).
function Hub:tree(repo_id, revision, options)
  options = options or {}
  local url = self:api_url("models", repo_id, "tree", urls.segment(revision))
    .. "?recursive=true&expand=" .. tostring(options.expand == true)
  local entries, what = {}, "the tree of " .. repo_id
  local too_many
  local ok, err = follow_pages(url, what, function(page_url)
    return self:get_json_array(page_url, { retries = options.retries, repo = repo_id, kind = "tree" })
  end, function(page)
    if options.keep then
      local kept = {}
      for _, entry in ipairs(page) do
        if options.keep(entry) then kept[#kept + 1] = entry end
      end
      page = kept
    end
    if #entries + #page > M.MAX_TREE_ENTRIES then
      too_many = failure("bad_response", ("%s has more than %d entries"):format(what, M.MAX_TREE_ENTRIES))
      return false
    end
    table.move(page, 1, #page, #entries + 1, entries)
  end, novelty(function(entry) return entry.path end, true))
  if too_many then return nil, too_many end
  if not ok then return nil, err end
  return entries
end

-- The tree entries of the paths that exist (missing ones are left out by the
-- Hub), in requests of up to PATHS_PER_REQUEST. options: retries, expand (as
-- for tree).
function Hub:paths_info(repo_id, revision, paths, options)
  options = options or {}
  local url = self:api_url("models", repo_id, "paths-info", urls.segment(revision))
  local entries = {}
  for first = 1, #paths, M.PATHS_PER_REQUEST do
    local parts = {}
    for i = first, math.min(#paths, first + M.PATHS_PER_REQUEST - 1) do
      parts[#parts + 1] = "paths=" .. urls.segment(paths[i])
    end
    parts[#parts + 1] = "expand=" .. tostring(options.expand == true)
    local page, err = self:get_json_array(url, { method = "POST", body = table.concat(parts, "&"),
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
      retries = options.retries, repo = repo_id, kind = "paths_info" })
    if not page then return nil, err end
    table.move(page, 1, #page, #entries + 1, entries)
  end
  return entries
end

function Hub:file_url(kind, repo_id, revision, path)
  return ("%s/%s/%s/%s/%s"):format(self.endpoint, repo_id, kind, urls.segment(revision),
    urls.path(path))
end

-- The /raw/ text of a file (for LFS files, the pointer), capped at max_bytes.
-- options: retries.
function Hub:raw(repo_id, revision, path, max_bytes, options)
  local res, err = self:request { url = self:file_url("raw", repo_id, revision, path),
    max_body = max_bytes or 4096, repo = repo_id, retries = options and options.retries }
  if not res then return nil, err end
  if res.status ~= 200 then return nil, self:classify(res) end
  return res.body
end

local function unquote_etag(etag)
  if not etag then return nil end
  return (etag:gsub("^W/", ""):gsub('^"(.*)"$', "%1"))
end


local function is_resolve_cache(url) return path_class(path_of(url)) == "resolve-cache" end

-- What the Hub says of a file in the answer to /resolve/, as a claim:
-- { kind = "lfs" | "plain", commit, sha256 (lfs: X-Linked-Etag when it is a
-- SHA-256), size, git_oid (plain: the git blob id), location (lfs: the CDN URL) }.
function Hub:claim_of(res)
  local h, first = res.headers, res.first_headers or res.headers
  local claim = { commit = h["x-repo-commit"] or first["x-repo-commit"], status = res.status }
  local target = redirect_target(self, res)
  if target and urls.origin(target) ~= self.origin then
    claim.kind, claim.location = "lfs", target
    local linked = unquote_etag(h["x-linked-etag"])
    claim.sha256 = hex.sha256(linked)
    claim.size = tonumber(h["x-linked-size"] or "")
  else
    claim.kind = "plain"
    -- The resolve-cache 307's X-Linked-Etag is the git blob id (40 hex), never a
    -- SHA-256; so is a plain answer's ETag when it has that shape.
    claim.git_oid = hex.git_oid(unquote_etag(first["x-linked-etag"])) or hex.git_oid(unquote_etag(h.etag))
    claim.size = tonumber(h["x-linked-size"] or "") or (res.status < 300 and tonumber(h["content-length"] or "")) or nil
  end
  return claim
end

-- HEAD on /resolve/: what the Hub says of a file, without following the CDN
-- redirect nor the resolve-cache hop (its 307 already tells a plain file).
-- Returns the claim (see claim_of) with etag, linked_etag, linked_size, size,
-- location and url as before.
function Hub:file_metadata(repo_id, revision, path)
  local url = self:file_url("resolve", repo_id, revision, path)
  local res, err = self:request { method = "HEAD", url = url, repo = repo_id,
    headers = { ["Accept-Encoding"] = "identity" }, stop_at = is_resolve_cache }
  if not res then return nil, err end
  if res.status >= 400 then return nil, self:classify(res) end
  local claim = self:claim_of(res)
  local h = res.headers
  claim.etag = unquote_etag(h.etag)
  claim.linked_etag = unquote_etag(h["x-linked-etag"])
  claim.linked_size = tonumber(h["x-linked-size"] or "")
  claim.url = res.url
  return claim
end

-- How often a download refused by the CDN (its signed URL expired) asks
-- /resolve/ for a fresh URL and goes on from the bytes already hashed.
M.CDN_REFRESHES = 3
local CDN_REFUSED = { [400] = true, [401] = true, [403] = true }

-- Streams a CDN URL through SHA-256. When the CDN refuses it (an expired signed
-- URL: hub-api.md section 12), a HEAD on resolve_url gives a fresh one and the
-- download continues with Range from the bytes already hashed: one hash over one
-- continuous stream. Returns the response or nil, error.
function Hub:download_from_cdn(resolve_url, location, options, repo_id)
  local partial
  for refresh = 0, M.CDN_REFRESHES do
    local res, err = self:request { url = location, sink = "sha256", max_body = options.max_bytes,
      expected_size = options.expected_size, cross_host = true,
      git_blob_size = options.git_blob_size, git_blob = options.git_blob,
      continue = partial, repo = repo_id, retries = options.retries }
    if not res or not CDN_REFUSED[res.status] or refresh == M.CDN_REFRESHES then return res, err end
    partial = res.partial
    local fresh, ferr = self:request { method = "HEAD", url = resolve_url, repo = repo_id,
      headers = { ["Accept-Encoding"] = "identity" }, retries = options.retries }
    if not fresh then return nil, ferr end
    local next_location = redirect_target(self, fresh)
    if not next_location or urls.origin(next_location) == self.origin then
      return res -- /resolve/ no longer redirects: the refusal stands
    end
    local refusal = hf.redirect_refusal(resolve_url, next_location)
    if refusal then return nil, failure("bad_response", refusal .. " (to " .. next_location .. ")") end
    location = next_location
  end
end

-- GET on /resolve/: a plain file's bytes are streamed through SHA-256 (after the
-- resolve-cache hop if there is one); an LFS file answers a 302 to the CDN,
-- whose X-Linked-* headers are kept as the Hub's claim, and its bytes are then
-- fetched from the CDN without Authorization, unless options.claim_only.
-- options: max_bytes (abort past it), git_blob_size (also compute the git blob
-- SHA-1 of a body that size), git_blob (the same, with the size the answer
-- announces), expected_size (the listed size: the download's deadline scales
-- with it), claim_only, retries. Returns { sha256, bytes, git_sha1, claim } (no
-- sha256 for an LFS file with claim_only) or nil, error.
function Hub:fetch_file(repo_id, revision, path, options)
  options = options or {}
  local url = self:file_url("resolve", repo_id, revision, path)
  local res, err = self:request { url = url, sink = "sha256", max_body = options.max_bytes,
    expected_size = options.expected_size, git_blob_size = options.git_blob_size,
    git_blob = options.git_blob, repo = repo_id,
    headers = { ["Accept-Encoding"] = "identity" }, retries = options.retries }
  if not res then return nil, err end
  if res.status >= 400 then return nil, self:classify(res) end
  local claim = self:claim_of(res)
  if claim.kind == "lfs" then
    -- Hashes the Hub gives are not limited by size: only downloads are.
    if options.claim_only then return { claim = claim } end
    if options.max_bytes and claim.size and claim.size > options.max_bytes then
      return nil, failure("too_large", ("%s is %d bytes"):format(path, claim.size))
    end
    -- The CDN hop is a new request, not one libcurl follows: check it the same way.
    local refusal = hf.redirect_refusal(res.url or url, claim.location)
    if refusal then
      return nil, failure("bad_response", ("%s: %s (to %s)"):format(url, refusal, claim.location))
    end
    local cdn_options = setmetatable({ expected_size = options.expected_size or claim.size },
      { __index = options })
    res, err = self:download_from_cdn(url, claim.location, cdn_options, repo_id)
    if not res then return nil, err end
  end
  if res.status ~= 200 and res.status ~= 206 then return nil, self:classify(res) end
  return { sha256 = res.sha256, bytes = res.bytes, git_sha1 = res.git_sha1, claim = claim }
end

-- The same, in the shape scripts used before: { sha256, bytes, git_sha1,
-- linked_etag, linked_size, commit }.
function Hub:download_sha256(repo_id, revision, path, options)
  local got, err = self:fetch_file(repo_id, revision, path, options)
  if not got then return nil, err end
  local c = got.claim
  return { sha256 = got.sha256, bytes = got.bytes, git_sha1 = got.git_sha1, commit = c.commit,
    linked_etag = c.kind == "lfs" and c.sha256 or nil, linked_size = c.kind == "lfs" and c.size or nil }
end

function Hub:whoami(options)
  return self:get_json(self:api_url("whoami-v2"), options)
end

return M
