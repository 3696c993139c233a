-- The scan: list models by downloads, hash every target file of each repo
-- (hfscan.scan.repo), and append the rows to the database files as each repo
-- completes. Many repos are in flight at once, as async tasks. Takes parsed
-- options (hfscan.scan.options), never argv: hfscan.commands.scan is the command.
local backoff = require "hfscan.hub.backoff"
local config = require "hfscan.config"
local database = require "hfscan.db.files"
local download_counts = require "hfscan.hub.download_counts"
local fingerprint = require "hfscan.scan.fingerprint"
local hf = require "hfscan"
local identity = require "hfscan.hub.identity"
local listing_journal = require "hfscan.scan.listing"
local manifest = require "hfscan.db.manifest"
local policies = require "hfscan.scan.policy"
local progress_line = require "hfscan.scan.progress"
local repo_scan = require "hfscan.scan.repo"
local scan_options = require "hfscan.scan.options"
local session = require "hfscan.hub.session"
local store_db = require "hfscan.db.store"
local targets = require "hfscan.scan.targets"
local tiers = require "hfscan.scan.tiers"
local urls = require "hfscan.hub.urls"

local M = {}

M.EXIT_INTERRUPTED = 130
-- siblings: the file names, so a repo can also be hashed through the larger
-- resolvers bucket (a request per file) when the api bucket is the bottleneck;
-- library_name: whether those requests would count as downloads.
M.LISTING_EXPAND = { "downloads", "sha", "lastModified", "gated", "private", "library_name",
  "siblings" }
M.PAGE_SIZE = 1000 -- the Hub's largest listing page

local GB = 1024 * 1024 * 1024

-- Counts one error row by its type (hash_mismatch apart from the rest); an
-- error superseded by an update is history, not a current failure.
function M.count_error(stats, error_type)
  if error_type == database.SUPERSEDED then return end
  stats.errors = stats.errors + 1
  stats.errors_by_type[error_type] = (stats.errors_by_type[error_type] or 0) + 1
end

-- Counts n rows of one hash_method in the scan's totals, failed (FAILED_*) or not.
function M.count_rows(stats, method, failed, n)
  stats.files = stats.files + n
  stats.methods[method] = (stats.methods[method] or 0) + n
  if failed then stats.failed_files = stats.failed_files + n end
end

-- Counts one row of the database in the scan's totals.
function M.count_row(stats, hash, method) M.count_rows(stats, method, database.is_failed(hash), 1) end

local function new_stats()
  -- models_queued: the repos this run works on (listed, and neither finished by
  -- an earlier run nor declined by the policy), for the progress line's rate and ETA.
  return { models_listed = 0, models_queued = 0, models_done = 0, unfinished = 0, files = 0,
    failed_files = 0, errors = 0, errors_by_type = {}, methods = {}, requests = {}, throttled = 0,
    listing_done = false, listed_without_tree = 0 }
end

-- What decides the rows besides the settings, taken once per run: the header
-- and the metadata must name the same policy file contents.
function M.fingerprint(o)
  o.fingerprint = o.fingerprint or fingerprint.of(o)
  return o.fingerprint
end

-- The header block's values for a scan: the recorded settings, then what
-- describes the scan itself.
function M.parameters(o, scan_start)
  local p = scan_options.recorded(o)
  p.scan_start = scan_start
  p.target_extensions = table.concat(targets.EXTENSIONS, ",")
  p.command_line = o.command_line
  p.authenticated = o.token ~= nil
  p.policy = o.policy
  p.extra_columns = o.extra_columns and #o.extra_columns > 0 and table.concat(o.extra_columns, ",") or nil
  p.shard = o.shard and o.shard.text
  p.since = o.since
  for k, v in pairs(M.fingerprint(o)) do p[k] = v end
  return p
end

-- The shard of a repo id: the first 32 bits of its SHA-256, modulo N. Stable
-- across machines and runs, and spread evenly whatever the names look like.
function M.shard_of(repo_id, n)
  return tonumber(hf.sha256(repo_id):sub(1, 8), 16) % n
end

local Scanner = {}
Scanner.__index = Scanner

function M.new_scanner(o, db, log, stats)
  local self = setmetatable({ o = o, db = db, log = log, stats = stats, seen = {}, fatal = nil,
    api_only_queued = 0, facts_by_repo = {} }, Scanner)
  -- The secrets the log masks are masked in every field of the files too: a
  -- server may echo the token into an error message.
  db:mask_with(log.secrets)
  self.session = session.open { endpoint = o.endpoint, token = o.token, workers = o.max_workers,
    rate_limit = o.rate_limit, stall_timeout = o.stall_timeout,
    -- Spend each window's quota at full speed and stop at r = 0 until the reset:
    -- spreading the tail would only slow the scan, whose work is known to exceed
    -- the quota (the resolvers route takes repos while the api window is spent).
    spread_fraction = 0,
    on_request = function(bucket, res) self:count_request(bucket, res) end,
    on_warning = function(message) log:warn("%s", message) end }
  local loop = self.session.loop
  self.hub, self.loop, self.limiter = self.session.hub, loop, self.session.limiter
  self.policy = o.loaded_policy or policies.new()
  self.context = { hub = self.hub, max_file_size = math.floor(o.max_file_size * GB),
    policy = self.policy, loop = loop, retry_budget = o.retry_budget,
    security_status = o.security_status,
    route = function(model) return self:choose_route(model) end }
  self.progress = progress_line.new(stats, { enabled = not o.quiet and hf.isatty(2),
    waiting_for = function() return loop:waiting_for() end })
  log.before_stderr = function() self.progress:clear() end
  -- On a terminal the live line shows progress: per-repo lines go to the log file only.
  if self.progress.enabled then log.quiet = true end
  return self
end

function Scanner:count_request(bucket, res)
  local s = self.stats
  s.requests[bucket] = (s.requests[bucket] or 0) + 1
  if res and res.status == 429 then s.throttled = s.throttled + 1 end
end

-- The listing's URL parameters: the scan's expands and the policy's.
function Scanner:listing_params()
  local o = self.o
  -- No direction: the Hub always sorts descending, and huggingface_hub stopped
  -- sending it (hub-api.md section 1).
  local params = { { "sort", "downloads" },
    { "limit", math.min(M.PAGE_SIZE, o.limit or M.PAGE_SIZE) } }
  local seen_field = {}
  for _, list in ipairs({ M.LISTING_EXPAND, self.policy.listing_expand }) do
    for _, e in ipairs(list) do
      if not seen_field[e] then params[#params + 1], seen_field[e] = { "expand", e }, true end
    end
  end
  return params
end

-- Takes a page of the listing: pushes models above the threshold, once each,
-- into queue. Returns false once the listing is over.
function Scanner:take_page(items, queue)
  local o, stats = self.o, self.stats
  for _, m in ipairs(items) do
    if hf.interrupted() or self.fatal then return false end
    local downloads = tonumber(m.downloads) or 0
    if downloads < o.download_threshold then return false end
    if o.limit and stats.models_listed >= o.limit then return false end
    -- The cursor can repeat items while counts change: keep the first.
    if type(m.id) == "string" and not self.seen[m.id] then
      self.seen[m.id] = true
      if not o.shard or M.shard_of(m.id, o.shard.n) == o.shard.k then
        stats.models_listed = stats.models_listed + 1
        self:consider(M.model_from_listing(m), queue)
      end
    end
  end
  self.progress:update()
  return true
end

-- A next-page URL as the journal keeps it: without the endpoint's origin, so a
-- restart against another address of the same Hub goes on there.
function Scanner:relative_url(url)
  local origin = self.hub.origin
  if url and urls.origin(url) == origin then return url:sub(#url:match("^[^/]*//[^/]*") + 1) end
  return url
end

function Scanner:absolute_url(url)
  if url and url:sub(1, 1) == "/" then return self.hub.origin .. url end
  return url
end

-- Opens the listing's journal; without one a restart lists from page 1.
function Scanner:open_journal()
  local journal, err = listing_journal.open(self.db.paths.listing)
  if not journal then
    self.log:warn("cannot record the listing's progress in %s (%s): a restart would list from the start",
      self.db.paths.listing, tostring(err))
  end
  return journal
end

-- Writes to the journal; the first failure (a full disk) ends the journal.
function Scanner:journal_write(method, ...)
  if not self.journal then return end
  local ok, err = self.journal[method](self.journal, ...)
  if not ok then
    self.log:warn("cannot record the listing's progress in %s (%s): a restart would list again from this page",
      self.db.paths.listing, tostring(err))
    self.journal:close()
    self.journal = nil
  end
end

-- What a listing that failed means for the scan: a Hub gone stops it; anything
-- else ends the listing while the repos already listed are finished, and a
-- restart goes on from the saved page.
function Scanner:listing_failed(err)
  if err.kind == "interrupted" then return end
  if err.kind == "invalid_token" then return self:stop_for(repo_scan.TOKEN_REFUSED) end
  if err.kind == "unreachable" or self.hub.unreachable or (err.kind == "network_error"
      and (err.code == "dns" or err.code == "connect" or err.code == "tls")) then
    self.fatal = self.hub.unreachable or ("cannot reach %s: %s"):format(self.hub.host, err.message)
    self.log:error("%s", self.fatal)
    return
  end
  self.listing_stopped = ("the listing stopped at %s: %s"):format(err.url or "?", err.message)
  self.log:error("%s", self.listing_stopped)
end

-- The listing task: replays the pages a resumed scan had read, then lists the
-- Hub from where they stopped, recording each page before its models are queued.
function Scanner:list_models(queue)
  local saved = self.saved_listing
  self.journal = self:open_journal()
  local over = false
  for _, items in ipairs(saved and saved.pages or {}) do
    if self:take_page(items, queue) == false then over = true break end
  end
  if saved and (saved.done or not saved.next) then over = true end
  if not over and not self.fatal and not hf.interrupted() then
    local start = saved and self:absolute_url(saved.next)
    local pok, ok, err
    repeat
      local token_used = self.hub.token
      pok, ok, err = pcall(self.hub.list_models, self.hub, self:listing_params(),
        function(items, next_url)
          self:journal_write("page", items, self:relative_url(next_url))
          return self:take_page(items, queue)
        end, { start_url = start, backoff = backoff.new(self.loop, self.o.retry_budget) })
      -- A token refused from the token file is read again once (perhaps by a repo
      -- task meanwhile), and the page asked again with the new one.
      local refused = pok and not ok and err.kind == "invalid_token"
      local again = refused and (self.hub.token ~= token_used or self:token_reread())
      start = again and err.url or start
    until not again
    if not pok then
      self:stop_for(ok)
    elseif ok then
      over = true
    else
      self:listing_failed(err)
    end
  end
  if over and not self.fatal and not hf.interrupted() then self:journal_write("done") end
  if self.journal then self.journal:close() end
  self.stats.listing_done = true
  queue:close()
end

-- Queues a listed model, unless a resumed scan finished it (no request at all),
-- or the policy declines it. A model unchanged since the --since scan is queued
-- to be carried over rather than scanned.
function Scanner:consider(model, queue)
  if self.skip and self.skip[model.id] then return end
  if not self.policy:call("select_model", model) then return end
  self.stats.models_queued = self.stats.models_queued + 1
  local commit_before = self.previous and self.previous.repos[model.id]
  if commit_before and model.sha and commit_before == model.sha then
    queue:push({ carry = true, model = model })
  else
    self:requeue(model, queue)
  end
end

-- The rows and errors of a repo taken as they are from the --since scan.
function Scanner:carry_over(item)
  local rows, errors = {}, {}
  for i, r in ipairs(self.previous.rows_of(item.model.id)) do
    local copy = {}
    for k, v in pairs(r) do copy[k] = v end
    copy.carried_over_from = self.previous.ts
    rows[i] = copy
  end
  for i, e in ipairs(self.previous.errors_of(item.model.id)) do errors[i] = e end
  self.stats.carried = (self.stats.carried or 0) + 1
  return rows, errors
end


-- api (one tree request) or resolvers (a request per target file on /resolve/): api while
-- its window has room, else resolvers when its window holds the repo's files.
-- The Hub then serves about api_q + resolvers_q / files_per_repo repos a window.
-- A test hook: HFSCAN_TEST_ROUTE=resolvers sends every repo that may take the
-- resolvers route there, whatever the windows say.
local FORCED_ROUTE = os.getenv("HFSCAN_TEST_ROUTE")

function Scanner:choose_route(model)
  local facts = self:route_facts(model)
  if facts.api_only then return "api" end
  if FORCED_ROUTE == "resolvers" then return "resolvers" end
  local api = self.limiter:state("api")
  -- Keep what the api window has left for the queued repos that need it.
  if not api or api.remaining < 0 or (api.remaining > self.api_only_queued and api.blocked_for <= 0) then
    return "api"
  end
  local res = self.limiter:state("resolvers")
  if not res or res.remaining < 0 or (res.remaining >= facts.targets and res.blocked_for <= 0) then
    return "resolvers"
  end
  return "api"
end

-- What the route choice needs of a repo, worked out once from its listing:
-- { targets = the target files it names, api_only }. Repos only the api route
-- takes: gated ones (their files refuse a request), those listed without a
-- plausible count of file names (the listing's siblings may be cut short or
-- empty, hub-api.md section 12), those whose files a request on /resolve/ would
-- count as downloads, and every repo with --no-resolvers-route or
-- --security-status (the Hub's verdicts are an api answer: the resolvers route
-- would save no api request).
function Scanner:route_facts(model)
  local facts = self.facts_by_repo[model.id]
  if facts then return facts end
  local names, listed = repo_scan.listing_names(model), {}
  for _, name in ipairs(names) do
    if targets.is_target(name) then listed[#listed + 1] = name end
  end
  local api_only = self.o.no_resolvers_route or self.o.security_status or (model.gated ~= nil and model.gated ~= false)
    or not repo_scan.plausible(#names) or download_counts.any_counted(model, listed)
  facts = { targets = #listed, api_only = api_only }
  self.facts_by_repo[model.id] = facts
  return facts
end

function Scanner:api_only(model) return self:route_facts(model).api_only end

-- A model as the policy and repo_scan see it: the listing's fields, with
-- cjson's null turned into nil.
function M.model_from_listing(m)
  local model = {}
  for k, v in pairs(m) do
    if type(v) ~= "userdata" then model[k] = v end
  end
  model.sha = type(m.sha) == "string" and m.sha or nil
  model.lastModified = type(m.lastModified) == "string" and m.lastModified or nil
  model.downloads = tonumber(m.downloads) or 0
  return model
end

-- Stops the scan for a broken policy or the policy's own decision; anything
-- else is a bug and is raised again.
function Scanner:stop_for(err)
  if self.fatal then return end -- the first reason is the one told, once
  if policies.is_policy_error(err) or err == repo_scan.STOPPED or err == repo_scan.TOKEN_REFUSED then
    self.fatal = tostring(err)
    self.policy_broke = policies.is_policy_error(err)
  elseif err == repo_scan.HUB_UNREACHABLE then
    self.fatal = self.hub.unreachable or tostring(err)
  else
    error(err, 0)
  end
  self.log:error("%s", self.fatal)
end

-- A token from the token file that the Hub refuses is read again once: a
-- browser login rotates it there (hub-api.md section 12). Returns true when
-- the hub now holds a new token.
function Scanner:token_reread()
  local o = self.o
  if not o.token_file or self.token_was_reread then return false end
  self.token_was_reread = true
  local token = config.read_token_file(o.token_file)
  if not token or token == self.hub.token then return false end
  self.log:add_secret(token)
  self.log:warn("the Hub refused the token from %s; read it again and go on with the new one", o.token_file)
  self.hub.token, o.token = token, token
  return true
end

-- unfinished: the repo hit a temporary failure; its rows and errors are written
-- but it is not marked finished, so a restart redoes it.
function Scanner:record(model, rows, errors, unfinished)
  -- After a failed write (a full disk) the repos still in flight are not written:
  -- one message, and the restart redoes them.
  if self.fatal then return false end
  local ends, err = self.db:write_repo(rows, errors, model.id, model.sha, not unfinished)
  if not ends then
    self.fatal = "cannot write the database: " .. tostring(err)
    self.log:error("%s", self.fatal)
    return false
  end
  if self.store then
    local sok, serr = M.store_call(self.store.add_rows, self.store, self.scan_id, rows, ends.extended)
    if not sok then
      self.log:warn("the SQLite database is no longer kept current (%s); rebuild it with: hfscan db build --output-dir %s",
        tostring(serr), self.db.paths.dir)
      M.store_call(self.store.close, self.store)
      self.store = nil
    end
  end
  local s = self.stats
  if unfinished then
    s.unfinished = s.unfinished + 1
  else
    s.models_done = s.models_done + 1
  end
  for _, e in ipairs(errors) do M.count_error(s, e.error_type) end
  for _, r in ipairs(rows) do M.count_row(s, r.hash, r.hash_method) end
  for _, e in ipairs(errors) do
    self.log:warn("%s %s: %s: %s", model.id, e.filename ~= "" and e.filename or "(repo)",
      e.error_type, e.reason)
  end
  self.log:info("%s@%s: %d files", model.id, model.sha or "?", #rows)
  self.progress:update()
  return true
end

-- Queues a repo again, to be scanned with the token read again.
function Scanner:requeue(model, queue)
  if self:api_only(model) then self.api_only_queued = self.api_only_queued + 1 end
  queue:push(model)
end

-- A repo task: takes models from the queue until it is empty and closed.
function Scanner:repo_worker(queue)
  while not self.fatal and not hf.interrupted() do
    local item = queue:pop()
    if not item then return end
    local model, ok, rows, errors, unfinished, listed_from = item, nil, nil, nil, nil, nil
    local token_used = self.hub.token
    if item.carry then
      model = item.model
      ok, rows, errors = true, self:carry_over(item)
    else
      if self:api_only(model) then self.api_only_queued = self.api_only_queued - 1 end
      ok, rows, errors, unfinished, listed_from = pcall(repo_scan.scan, self.context, model)
    end
    if not ok then
      if rows == repo_scan.INTERRUPTED then return end
      local redo = rows == repo_scan.TOKEN_REFUSED
        and (self.hub.token ~= token_used or self:token_reread())
      if not redo then return self:stop_for(rows) end
      self:requeue(model, queue)
    elseif unfinished and self.hub.token ~= token_used then
      -- It met the old token's refusal ("not found" for a private repo): again.
      self:requeue(model, queue)
    elseif not self:record(model, rows, errors, unfinished) then
      return
    elseif listed_from then
      -- Below 1000 entries nothing tells a cut-short list from a whole one.
      self.stats.listed_without_tree = self.stats.listed_without_tree + 1
      self.log:warn("%s: its tree failed; its files were listed from %s, which the Hub may cut short",
        model.id, listed_from)
    end
  end
end

function Scanner:run()
  local queue = self.loop:queue()
  self.loop:spawn(self.list_models, self, queue)
  -- Enough repos in flight to keep every worker busy while some wait on others.
  for _ = 1, self.o.max_workers * 4 do self.loop:spawn(self.repo_worker, self, queue) end
  -- While nothing completes (a spent window, an outage) the line still moves;
  -- off a terminal there is no line, and no tick to wake the loop for it.
  local stop_tick = self.progress.enabled
    and self.loop:every(progress_line.TICK, function() self.progress:update() end)
  local ok, err = pcall(self.loop.run, self.loop)
  if stop_tick then stop_tick() end
  if not ok then error(err, 0) end
  self.progress:update(true)
  self.progress:clear()
end

function Scanner:bucket_stats()
  local waited, by_bucket = 0, {}
  for _, b in ipairs({ "api", "resolvers", "pages", "cdn" }) do
    local st = self.limiter:state(b)
    if st then waited = waited + st.waited end
    by_bucket[b] = self.stats.requests[b] or 0
  end
  return by_bucket, waited
end

function Scanner:close()
  self.session:close()
  if self.store then M.store_call(self.store.close, self.store) end
end

-- Calls a method of the SQLite store under pcall: SQLite trouble (a lock held
-- too long, a full disk, a corrupt file) raises in the binding, and must cost
-- only the database, never the scan. Returns what fn returns, or nil and the error.
function M.store_call(fn, ...)
  local results = table.pack(pcall(fn, ...))
  if not results[1] then return nil, results[2] end
  return table.unpack(results, 2, results.n)
end

-- Opens the folder's SQLite database and makes it match this scan's extended
-- CSV: a new scan's rows are none yet; a resumed scan's are brought up to the
-- CSV, repo by repo where counts (rows per repo in the CSV) is known. Failures
-- only cost the database, never the scan: it can be rebuilt from the CSVs.
function M.attach_store(o, db, ts, log, counts, current)
  if current then return current.store, current.scan_id end -- a restart brought it up to date
  local dir = db.paths.dir
  local store, err = M.store_call(store_db.open, dir)
  if store then
    local n, scan_id
    if counts then
      n, err = M.store_call(store.sync_scan, store, db.paths, counts)
    else
      n, err = M.store_call(store.import_scan, store, db.paths)
    end
    if n then scan_id, err = M.store_call(store.add_scan, store, ts, db.paths.extended) end
    if scan_id then return store, scan_id end
    M.store_call(store.close, store)
  end
  log:warn("cannot keep %s current (%s); rebuild it with: hfscan db build --output-dir %s",
    store_db.path(dir), tostring(err), dir)
  return nil
end

-- The metadata JSON of a scan (the seed's fields first).
function M.metadata(o, ts, stats, extra)
  local m = scan_options.recorded(o)
  for k, v in pairs({
    scan_timestamp = ts,
    total_models_scanned = stats.models_done,
    total_files_processed = stats.files,
    total_errors = stats.errors,
    errors_by_type = stats.errors_by_type,
    hash_mismatches = stats.errors_by_type.hash_mismatch or 0,
    target_extensions = targets.EXTENSIONS,
    authenticated = o.token ~= nil,
    files_by_method = stats.methods,
    failed_files = stats.failed_files,
    unfinished_repos = stats.unfinished,
    repos_listed_without_tree = stats.listed_without_tree,
    rate_limited_responses = stats.throttled,
    policy = o.policy,
    shard = o.shard and o.shard.text,
  }) do m[k] = v end
  for k, v in pairs(M.fingerprint(o)) do m[k] = v end
  for k, v in pairs(extra or {}) do m[k] = v end
  -- An empty count is still an object: {} (cjson would guess the same).
  return m
end

function M.print_summary(stats, duration, paths, status)
  local lines = {
    ("Scan %s in %.1f s"):format(status, duration),
    ("  models scanned     %d"):format(stats.models_done),
    ("  files              %d"):format(stats.files),
  }
  local methods = { table.unpack(tiers.NAMES) }
  for _, failure in ipairs(database.FAILURES) do methods[#methods + 1] = failure end
  for _, method in ipairs(methods) do
    lines[#lines + 1] = ("    %-18s %d"):format(method, stats.methods[method] or 0)
  end
  lines[#lines + 1] = ("  errors             %d"):format(stats.errors)
  local mismatches = stats.errors_by_type.hash_mismatch or 0
  if mismatches > 0 then
    lines[#lines + 1] = ("  hash mismatches    %d (downloads that differ from the Hub's own claims: see the errors file)")
      :format(mismatches)
  end
  if stats.unfinished > 0 then
    lines[#lines + 1] = ("  unfinished repos   %d (temporary failures; --restart redoes them)")
      :format(stats.unfinished)
  end
  if stats.listed_without_tree > 0 then
    lines[#lines + 1] = ("  listed w/o tree    %d (their tree failed; see the log)")
      :format(stats.listed_without_tree)
  end
  lines[#lines + 1] = ("  429 responses      %d"):format(stats.throttled)
  lines[#lines + 1] = "  extended CSV       " .. paths.extended
  io.stdout:write(table.concat(lines, "\n"), "\n")
end

-- What --fail-on can find in a completed scan's totals.
function M.result_counts(stats)
  return { mismatch = stats.errors_by_type.hash_mismatch or 0, failed = stats.failed_files,
    errors = stats.errors }
end

local RESULT_WORDS = {
  mismatch = "%d downloads differ from what the Hub claims of them (hash_mismatch)",
  failed = "%d rows have no hash (FAILED_*)",
  errors = "%d error rows",
}

-- The exit status of a completed scan (or update) under --fail-on, and why.
function M.result_status(fail_on, counts)
  for _, kind in ipairs(scan_options.FAIL_ON) do
    local name, code = kind[1], kind[2]
    if fail_on[name] and counts[name] > 0 then
      return code, RESULT_WORDS[name]:format(counts[name]) .. ", and --fail-on names " .. name
    end
  end
  return 0
end

-- The command that resumes this scan, for the messages of a scan that stops.
local function restart_command(o)
  return ("hfscan --restart --output-dir %s%s"):format(o.output_dir,
    o.token and " (with the same token: --token, HF_TOKEN or the token file)" or "")
end

-- Runs a whole scan with parsed options into db (created by the caller).
-- Returns the exit status.
function M.execute(o, db, ts, log, stats, extra)
  local started, scan_start = hf.now(), database.utc_now()
  identity.say_who(o)
  local scanner = M.new_scanner(o, db, log, stats)
  scanner.skip = extra and extra.skip
  scanner.saved_listing = extra and extra.listing
  scanner.previous = o.previous
  scanner.store, scanner.scan_id = M.attach_store(o, db, ts, log, extra and extra.rows_per_repo,
    extra and extra.store)
  log:info("scanning %s: threshold %d downloads, %d workers, %.3g s per worker, max file %.3g GB%s",
    o.endpoint, o.download_threshold, o.max_workers, o.rate_limit, o.max_file_size,
    o.token and ", authenticated" or "")
  local ok, err = pcall(scanner.run, scanner)
  local by_bucket, waited = scanner:bucket_stats()
  scanner:close()
  local closed, cerr = db:close()
  if not closed and not scanner.fatal then -- a write that failed before is said once
    scanner.fatal = scanner.fatal or ("cannot write the database: " .. tostring(cerr))
    log:error("%s", scanner.fatal)
  end
  local interrupted = hf.interrupted()
  local unfinished = stats.unfinished
  local status = (not ok or scanner.fatal) and "failed" or interrupted and "interrupted"
    or (unfinished > 0 or scanner.listing_stopped) and "incomplete" or "completed"
  local duration = hf.now() - started
  local metadata = M.metadata(o, ts, stats, {
    scan_start = (extra and extra.scan_start) or scan_start,
    scan_end = database.utc_now(),
    duration_seconds = math.floor(duration * 1000 + 0.5) / 1000,
    requests_by_bucket = by_bucket,
    rate_limit_wait_seconds = math.floor(waited * 1000 + 0.5) / 1000,
    status = status,
  })
  if extra and extra.metadata then extra.metadata(metadata) end
  database.maybe_crash("before_metadata")
  local mok, merr = database.write_metadata(db.paths.metadata, metadata)
  if not mok then
    -- The rows are safe; without its metadata the scan must not say it completed.
    log:error("%s", tostring(merr))
    scanner.fatal = scanner.fatal or tostring(merr)
    status = "failed"
  end
  manifest.write_or_warn(db.paths, log)
  if not ok then
    log:error("%s", tostring(err))
    log:close()
    return 1
  end
  if not o.quiet then M.print_summary(stats, duration, db.paths, status) end
  if interrupted then
    log:warn("interrupted: everything written so far is valid; resume with: %s", restart_command(o))
    log:close()
    return M.EXIT_INTERRUPTED
  end
  if scanner.fatal and scanner.policy_broke then
    -- A restart must run the policy the scan began with (its SHA-256 is in the
    -- header): an edited policy makes another selection, so another scan.
    log:warn("stopped by the policy: the rows written so far are valid; fix the policy and start a "
      .. "new scan (a restart runs only the policy file this scan began with)")
  elseif scanner.fatal then
    log:warn("stopped: everything written so far is valid; once the cause is fixed, resume with: %s",
      restart_command(o))
  end
  if status == "incomplete" and unfinished > 0 then
    log:warn("%d repos hit temporary failures (listed in the errors file) and are not finished; redo them with: %s",
      unfinished, restart_command(o))
  end
  if status == "incomplete" and scanner.listing_stopped then
    log:warn("the repos listed so far are done; list the rest (from the page that failed) with: %s",
      restart_command(o))
  end
  if status == "completed" then
    local code, why = M.result_status(o.fail_on, M.result_counts(stats))
    if code ~= 0 then
      log:warn("%s (see %s); exit %d", why, db.paths.errors, code)
      log:close()
      return code
    end
  end
  log:close()
  return status == "completed" and 0 or 1
end

M.new_stats = new_stats

return M
