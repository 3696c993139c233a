-- The default scan: list models by downloads, hash every target file of each
-- repo (hfscan.repo_scan), and append the rows to the database files as each
-- repo completes. Many repos are in flight at once, as async tasks.
local async = require "hfscan.async"
local cli = require "hfscan.cli"
local database = require "hfscan.database"
local hf = require "hfscan"
local hub_client = require "hfscan.hub"
local logging = require "hfscan.log"
local policies = require "hfscan.policy"
local progress_line = require "hfscan.progress"
local repo_scan = require "hfscan.repo_scan"
local scan_options = require "hfscan.scan_options"
local store_db = require "hfscan.store"
local targets = require "hfscan.targets"

local M = {}

M.EXIT_INTERRUPTED = 130
-- siblings: the file names, so a repo can also be hashed through the larger
-- resolvers bucket (a HEAD per file) when the api bucket is the bottleneck.
M.LISTING_EXPAND = { "downloads", "sha", "lastModified", "gated", "private", "siblings" }
M.PAGE_SIZE = 1000 -- the Hub's largest listing page

local GB = 1024 * 1024 * 1024

-- The scan an incremental scan starts from (--since: an extended CSV or a
-- folder's latest scan): { ts, repos = { [id] = { commit, rows, errors } } }.
-- Only repos recorded as finished, without a repo-level error or a failed file,
-- can be carried: a failure may have been the Hub's day or a missing token.
function M.load_previous(path)
  local scan, err = require("hfscan.scan_reader").read(path)
  if not scan then return nil, err end
  local previous = { ts = scan.paths.ts, repos = {}, path = scan.paths.extended,
    policy = scan.parameters.policy }
  for id, commit in pairs(scan.finished or scan.commits) do
    previous.repos[id] = { commit = commit, rows = {}, errors = {} }
  end
  for _, rec in ipairs(scan.rows) do
    local r = previous.repos[rec.repo_id]
    if r then
      table.insert(r.rows, rec)
      -- A failure may have been the Hub's day or the lack of a token: rescan.
      if rec.hash:match("^FAILED_") then r.failed = true end
    end
  end
  for _, rec in ipairs(scan.errors) do
    local r = previous.repos[rec.repo_id]
    if r then
      if rec.filename == "" then r.failed = true end
      table.insert(r.errors, rec)
    end
  end
  for id, r in pairs(previous.repos) do
    if r.failed then previous.repos[id] = nil end
  end
  return previous
end

local function new_stats()
  return { models_listed = 0, models_done = 0, unfinished = 0, files = 0, failed_files = 0,
    errors = 0, methods = {}, requests = {}, throttled = 0, listing_done = false }
end

-- The header block's values for a scan.
function M.parameters(o, scan_start)
  return {
    download_threshold = o.download_threshold,
    max_file_size_gb = o.max_file_size,
    rate_limit_delay = o.rate_limit,
    max_workers = o.max_workers,
    scan_start = scan_start,
    target_extensions = table.concat(targets.EXTENSIONS, ","),
    command_line = o.command_line,
    authenticated = o.token ~= nil,
    endpoint = o.endpoint,
    model_limit = o.limit,
    policy = o.policy,
    extra_columns = o.extra_columns and #o.extra_columns > 0 and table.concat(o.extra_columns, ",") or nil,
    shard = o.shard and o.shard.text,
    since = o.since,
  }
end

-- The shard of a repo id: the first 32 bits of its SHA-256, modulo N. Stable
-- across machines and runs, and spread evenly whatever the names look like.
function M.shard_of(repo_id, n)
  return tonumber(hf.sha256(repo_id):sub(1, 8), 16) % n
end

-- Checks the output folder: a file there is a usage error; a missing one is made.
function M.prepare_output_dir(dir)
  local kind = hf.file_type(dir)
  if kind and kind ~= "directory" then
    return nil, ("--output-dir: '%s' exists and is not a directory"):format(dir)
  end
  return true
end

local Scanner = {}
Scanner.__index = Scanner

function M.new_scanner(o, db, log, stats)
  local limiter = hf.ratelimiter()
  -- Spend each window's quota at full speed and stop at r = 0 until the reset:
  -- spreading the tail would only slow the scan, whose work is known to exceed
  -- the quota (the resolvers route takes repos while the api window is spent).
  limiter:set_spread_fraction(0)
  local pool = hf.pool(o.max_workers, limiter)
  pool:set_worker_spacing(o.rate_limit)
  local loop = async.new(pool)
  local self = setmetatable({ o = o, db = db, log = log, stats = stats, pool = pool,
    limiter = limiter, loop = loop, seen = {}, fatal = nil, api_only_queued = 0 }, Scanner)
  self.hub = hub_client.new { endpoint = o.endpoint, token = o.token, loop = loop, limiter = limiter,
    on_request = function(bucket, res) self:count_request(bucket, res) end }
  self.policy = o.loaded_policy or policies.new()
  self.context = { hub = self.hub, max_file_size = math.floor(o.max_file_size * GB),
    policy = self.policy, loop = loop,
    route = function(model) return self:choose_route(model) end }
  self.progress = progress_line.new(stats, not o.quiet and hf.isatty(2))
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

-- The listing task: pushes models above the threshold, once each, into queue.
function Scanner:list_models(queue)
  local o, stats = self.o, self.stats
  -- No direction: the Hub always sorts descending, and huggingface_hub stopped
  -- sending it (hub-api.md section 1).
  local params = { { "sort", "downloads" },
    { "limit", math.min(M.PAGE_SIZE, o.limit or M.PAGE_SIZE) } }
  local expand, seen_field = {}, {}
  for _, list in ipairs({ M.LISTING_EXPAND, self.policy.listing_expand }) do
    for _, e in ipairs(list) do
      if not seen_field[e] then expand[#expand + 1], seen_field[e] = e, true end
    end
  end
  for _, e in ipairs(expand) do params[#params + 1] = { "expand", e } end
  local pok, ok, err = pcall(self.hub.list_models, self.hub, params, function(items)
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
  end)
  if not pok then
    self:stop_for(ok)
  elseif not ok and err.kind ~= "interrupted" then
    self.fatal = "cannot list models: " .. err.message
    self.log:error("%s", self.fatal)
  end
  stats.listing_done = true
  queue:close()
end

-- Queues a listed model, unless a resumed scan finished it (no request at all),
-- or the policy declines it. A model unchanged since the --since scan is queued
-- to be carried over rather than scanned.
function Scanner:consider(model, queue)
  if self.skip and self.skip[model.id] then return end
  if not self.policy:call("select_model", model) then return end
  local before = self.previous and self.previous.repos[model.id]
  if before and model.sha and before.commit == model.sha then
    queue:push({ carry = before, model = model })
  else
    if M.api_only(model) then self.api_only_queued = self.api_only_queued + 1 end
    queue:push(model)
  end
end

-- The rows and errors of a repo taken as they are from the --since scan.
function Scanner:carry_over(item)
  local rows, errors = {}, {}
  for i, r in ipairs(item.carry.rows) do
    local copy = {}
    for k, v in pairs(r) do copy[k] = v end
    copy.carried_over_from = self.previous.ts
    rows[i] = copy
  end
  for i, e in ipairs(item.carry.errors) do errors[i] = e end
  self.stats.carried = (self.stats.carried or 0) + 1
  return rows, errors
end

-- api (one model-info request) or resolvers (a HEAD per target file): api while
-- its window has room, else resolvers when its window holds the repo's files.
-- The Hub then serves about api_q + resolvers_q / files_per_repo repos a window.
function Scanner:choose_route(model)
  if M.api_only(model) then return "api" end
  local api = self.limiter:state("api")
  -- Keep what the api window has left for the queued repos that need it.
  if not api or api.remaining < 0 or (api.remaining > self.api_only_queued and api.blocked_for <= 0) then
    return "api"
  end
  local files = 0
  for _, s in ipairs(model.siblings) do
    if type(s) == "table" and type(s.rfilename) == "string" and targets.is_target(s.rfilename) then
      files = files + 1
    end
  end
  local res = self.limiter:state("resolvers")
  if not res or res.remaining < 0 or (res.remaining >= files and res.blocked_for <= 0) then
    return "resolvers"
  end
  return "api"
end

-- Gated repos show their LFS hashes only through the api route (a HEAD on their
-- files is refused); so do repos listed without their file names.
function M.api_only(model)
  return type(model.siblings) ~= "table" or (model.gated ~= nil and model.gated ~= false)
end

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
  if policies.is_policy_error(err) or err == repo_scan.STOPPED or err == repo_scan.TOKEN_REFUSED then
    self.fatal = tostring(err)
  else
    error(err, 0)
  end
  self.log:error("%s", self.fatal)
end

-- unfinished: the repo hit a temporary failure; its rows and errors are written
-- but it is not marked finished, so a restart redoes it.
function Scanner:record(model, rows, errors, unfinished)
  -- After a failed write (a full disk) the repos still in flight are not written:
  -- one message, and the restart redoes them.
  if self.fatal then return false end
  local ok, err = self.db:write_repo(rows, errors, model.id, model.sha, not unfinished)
  if not ok then
    self.fatal = "cannot write the database: " .. tostring(err)
    self.log:error("%s", self.fatal)
    return false
  end
  if self.store then
    local sok, serr = self.store:add_rows(self.scan_id, rows)
    if not sok then
      self.log:warn("the SQLite database is no longer kept current (%s); rebuild it with: hfscan db build --output-dir %s",
        tostring(serr), self.db.paths.dir)
      self.store = nil
    end
  end
  local s = self.stats
  if unfinished then
    s.unfinished = s.unfinished + 1
  else
    s.models_done = s.models_done + 1
  end
  s.errors = s.errors + #errors
  for _, r in ipairs(rows) do
    s.files = s.files + 1
    s.methods[r.hash_method] = (s.methods[r.hash_method] or 0) + 1
    if r.hash == repo_scan.FAILED_NO_HASH or r.hash == repo_scan.FAILED_TOO_LARGE then
      s.failed_files = s.failed_files + 1
    end
  end
  for _, e in ipairs(errors) do
    self.log:warn("%s %s: %s: %s", model.id, e.filename ~= "" and e.filename or "(repo)",
      e.error_type, e.reason)
  end
  self.log:info("%s@%s: %d files", model.id, model.sha or "?", #rows)
  self.progress:update()
  return true
end

-- A repo task: takes models from the queue until it is empty and closed.
function Scanner:repo_worker(queue)
  while not self.fatal and not hf.interrupted() do
    local item = queue:pop()
    if not item then return end
    local model, ok, rows, errors, unfinished = item, nil, nil, nil, nil
    if item.carry then
      model = item.model
      ok, rows, errors = true, self:carry_over(item)
    else
      if M.api_only(model) then self.api_only_queued = self.api_only_queued - 1 end
      ok, rows, errors, unfinished = pcall(repo_scan.scan, self.context, model)
    end
    if not ok then
      if rows == repo_scan.INTERRUPTED then return end
      return self:stop_for(rows)
    end
    if not self:record(model, rows, errors, unfinished) then return end
  end
end

function Scanner:run()
  local queue = self.loop:queue()
  self.loop:spawn(self.list_models, self, queue)
  -- Enough repos in flight to keep every worker busy while some wait on others.
  for _ = 1, self.o.max_workers * 4 do self.loop:spawn(self.repo_worker, self, queue) end
  self.loop:run()
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
  self.pool:close()
  self.limiter:close()
  if self.store then self.store:close() end
end

-- Opens the folder's SQLite database and makes it match this scan's extended
-- CSV (a resumed scan's rows are re-read from it). Failures only cost the
-- database, never the scan: it can be rebuilt from the CSVs.
function M.attach_store(o, db, ts, log)
  local dir = db.paths.dir
  local store, err = store_db.open(dir)
  if store then
    local n
    n, err = store:import_scan(db.paths)
    if n then return store, store:add_scan(ts, db.paths.extended) end
    store:close()
  end
  log:warn("cannot keep %s current (%s); rebuild it with: hfscan db build --output-dir %s",
    store_db.path(dir), tostring(err), dir)
  return nil
end

-- The metadata JSON of a scan (the seed's fields first).
function M.metadata(o, ts, stats, extra)
  local m = {
    scan_timestamp = ts,
    download_threshold = o.download_threshold,
    max_file_size_gb = o.max_file_size,
    total_models_scanned = stats.models_done,
    total_files_processed = stats.files,
    total_errors = stats.errors,
    target_extensions = targets.EXTENSIONS,
    rate_limit_delay = o.rate_limit,
    max_workers = o.max_workers,
    authenticated = o.token ~= nil,
    endpoint = o.endpoint,
    model_limit = o.limit,
    files_by_method = stats.methods,
    failed_files = stats.failed_files,
    unfinished_repos = stats.unfinished,
    rate_limited_responses = stats.throttled,
  }
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
  for _, method in ipairs({ "api_metadata", "lfs_pointer", "downloaded", "FAILED_NO_HASH",
    "FAILED_TOO_LARGE" }) do
    lines[#lines + 1] = ("    %-18s %d"):format(method, stats.methods[method] or 0)
  end
  lines[#lines + 1] = ("  errors             %d"):format(stats.errors)
  if stats.unfinished > 0 then
    lines[#lines + 1] = ("  unfinished repos   %d (temporary failures; --restart redoes them)")
      :format(stats.unfinished)
  end
  lines[#lines + 1] = ("  429 responses      %d"):format(stats.throttled)
  lines[#lines + 1] = "  extended CSV       " .. paths.extended
  io.stdout:write(table.concat(lines, "\n"), "\n")
end

-- The command that resumes this scan, for the messages of a scan that stops.
local function restart_command(o)
  return ("hfscan --restart --output-dir %s%s"):format(o.output_dir,
    o.token and " (with the same token: --token, HF_TOKEN or the token file)" or "")
end

-- Runs a whole scan with parsed options into db (created by the caller).
-- Returns the exit status.
function M.execute(o, db, ts, log, stats, extra)
  local started, scan_start = hf.now(), os.date("!%Y-%m-%dT%H:%M:%SZ")
  local scanner = M.new_scanner(o, db, log, stats)
  scanner.skip = extra and extra.skip
  scanner.previous = o.previous
  scanner.store, scanner.scan_id = M.attach_store(o, db, ts, log)
  log:info("scanning %s: threshold %d downloads, %d workers, %.3g s per worker, max file %.3g GB%s",
    o.endpoint, o.download_threshold, o.max_workers, o.rate_limit, o.max_file_size,
    o.token and ", authenticated" or "")
  local ok, err = pcall(scanner.run, scanner)
  local by_bucket, waited = scanner:bucket_stats()
  scanner:close()
  db:close()
  local interrupted = hf.interrupted()
  local unfinished = stats.unfinished
  local status = (not ok or scanner.fatal) and "failed" or interrupted and "interrupted"
    or unfinished > 0 and "incomplete" or "completed"
  local duration = hf.now() - started
  local metadata = M.metadata(o, ts, stats, {
    scan_start = (extra and extra.scan_start) or scan_start,
    scan_end = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    duration_seconds = math.floor(duration * 1000 + 0.5) / 1000,
    requests_by_bucket = by_bucket,
    rate_limit_wait_seconds = math.floor(waited * 1000 + 0.5) / 1000,
    status = status,
  })
  if extra and extra.metadata then extra.metadata(metadata) end
  database.maybe_crash("before_metadata")
  local mok, merr = database.write_metadata(db.paths.metadata, metadata)
  if not mok then log:error("cannot write %s: %s", db.paths.metadata, tostring(merr)) end
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
  if scanner.fatal then
    log:warn("stopped: everything written so far is valid; once the cause is fixed, resume with: %s",
      restart_command(o))
  end
  if status == "incomplete" then
    log:warn("%d repos hit temporary failures (listed in the errors file) and are not finished; redo them with: %s",
      unfinished, restart_command(o))
  end
  log:close()
  return (scanner.fatal or unfinished > 0) and 1 or 0
end

function M.run(args)
  local o, err = scan_options.parse(args)
  if not o then return cli.usage_error(err, "hfscan --help") end
  if o.help then
    print(scan_options.help())
    return 0
  end
  if o.version then
    print("hfscan " .. hf.version)
    return 0
  end
  local ok, derr = M.prepare_output_dir(o.output_dir)
  if not ok then return cli.usage_error(derr, "hfscan --help") end
  local resuming = o.restart or o.restart_from or o.update_failed_hashes
  if not resuming then
    -- What --since and --policy name is checked before the folder is made.
    local extra_columns, err, status = M.load_since_and_policy(o)
    if not extra_columns then
      io.stderr:write("hfscan: ", err, "\n")
      return status
    end
    o.extra_columns = extra_columns
    local made, merr = hf.mkdir_p(o.output_dir)
    if not made then
      io.stderr:write("hfscan: ", merr, "\n")
      return 1
    end
  end
  -- One writer per folder: a second scan, restart or update waits for none and
  -- refuses, naming the one at work.
  local lock_dir = o.restart_from and database.split_path(o.restart_from) or o.output_dir
  local lock, lerr = database.lock(lock_dir)
  if not lock then
    io.stderr:write("hfscan: ", lerr, "\n")
    return 1
  end
  local status
  if resuming then
    status = require("hfscan.resume").run(o)
  else
    status = M.new_scan(o)
  end
  lock:close()
  return status
end

-- Loads what --since and --policy name and records them as absolute paths (a
-- restart may run from another folder). Returns the extra columns they add, or
-- nil, a message and the exit status (2 for a --since that cannot be used, a
-- usage error; 1 for a policy that does not load, as for a policy that fails). The rows carried over from the --since scan were chosen by
-- its policy: carrying them into a scan with another policy would mix two
-- selections of files, so that is refused.
function M.load_since_and_policy(o)
  local extra = {}
  if o.since then
    local previous, err = M.load_previous(o.since)
    if not previous then return nil, "--since: " .. tostring(err), cli.EXIT_USAGE end
    o.previous = previous
    o.since = hf.realpath(previous.path) or previous.path
    extra[1] = "carried_over_from"
  end
  if o.policy then
    local ok, loaded = pcall(policies.load, o.policy)
    if not ok then return nil, tostring(loaded), 1 end
    o.loaded_policy = loaded
    o.policy = hf.realpath(o.policy) or o.policy
    for _, c in ipairs(loaded.extra_columns) do extra[#extra + 1] = c end
  end
  local theirs = o.previous and o.previous.policy
  theirs = theirs and (hf.realpath(theirs) or theirs)
  if o.previous and theirs ~= o.policy then
    local function named(p) return p and ("policy " .. p) or "no policy" end
    return nil, ("--since: %s was made with %s and this scan with %s; its rows would not follow "
      .. "this scan's choice of files: make a full scan with this policy first")
      :format(o.since, named(theirs), named(o.policy)), cli.EXIT_USAGE
  end
  return extra
end

-- A new scan of o into a fresh set of files in o.output_dir. Returns the exit status.
function M.new_scan(o)
  local log = logging.new { quiet = o.quiet }
  log:add_secret(o.token)
  local ts = database.fresh_timestamp(o.output_dir)
  local db, derr2 = database.create(o.output_dir, ts, M.parameters(o, os.date("%Y-%m-%dT%H:%M:%S")),
    o.extra_columns)
  if not db then
    io.stderr:write("hfscan: ", tostring(derr2), "\n")
    return 1
  end
  log:open_file(db.paths.log)
  database.maybe_crash("start")
  return M.execute(o, db, ts, log, new_stats())
end

M.new_stats = new_stats

return M
