-- Resuming an interrupted scan (--restart, --restart-from), safe against kill -9
-- at any instant: appends are whole blocks, rewrites are atomic renames. The
-- update of a finished scan's failed rows is hfscan.scan.update.
local cli = require "hfscan.cli"
local database = require "hfscan.db.files"
local fingerprint = require "hfscan.scan.fingerprint"
local hf = require "hfscan"
local identity = require "hfscan.hub.identity"
local listing_journal = require "hfscan.scan.listing"
local logging = require "hfscan.log"
local manifest = require "hfscan.db.manifest"
local scan_options = require "hfscan.scan.options"
local scanner = require "hfscan.scan.scanner"
local resume_point = require "hfscan.scan.resume_point"
local since = require "hfscan.scan.since"
local survey = require "hfscan.scan.survey"

local M = {}

-- Where a scan's files are: the most recent in a folder, or the one an
-- extended CSV names.
M.locate = function(dir, extended) return database.locate(dir, extended) end

-- The files replaced through a temporary (a rewrite, the metadata).
local REWRITTEN = { "metadata", "manifest", table.unpack(database.CSV_KINDS) }

-- Removes temporaries left by a rewrite that was killed before its rename.
function M.remove_stale_temporaries(paths, log)
  local dir = paths.dir
  local names = hf.list_dir(dir) or {}
  for _, kind in ipairs(REWRITTEN) do
    local base = paths[kind]:match("[^/]*$")
    for _, name in ipairs(names) do
      if name:sub(1, #base + 4) == base .. ".tmp" then
        os.remove(dir .. "/" .. name)
        log:warn("removed %s/%s, left by an interrupted rewrite", dir, name)
      end
    end
  end
end

-- ---- restart --------------------------------------------------------------

-- The scan's recorded settings: the files', unless given on this command line.
local function merge_parameters(o, parameters, log)
  scan_options.take_recorded(o, parameters, function(key, value, origin)
    log:info("%s = %s (%s)", key, tostring(value), origin)
  end)
end

-- The token is checked at the endpoint the scan's files name (unless given):
-- it must never go to another host. Returns the exit status of a refusal, or nil.
function M.check_token(o, parameters)
  local endpoint = (not o.given.endpoint and parameters.endpoint) or o.endpoint
  return identity.check_or_refuse(o, endpoint)
end


-- A command line that would change what the scan's rows answer: exit 2.
local function refuse(log, message) return log:fail(message, cli.EXIT_USAGE) end

-- Whether the metadata says completed and the files still hold all of it: a
-- progress line for every repo it counts, and nothing past them (whole says so).
local function completed_and_whole(paths, finished_count, whole)
  local recorded = database.read_metadata(paths.metadata)
  return recorded and recorded.status == "completed" and whole
    and finished_count == recorded.total_models_scanned or false
end

-- Whether a row-by-row survey found the files whole: no torn line or bad row,
-- and a progress file.
local function surveyed_whole(found, had_progress)
  for _, kind in ipairs(database.CSV_KINDS) do
    if found[kind].torn_line then return false end
  end
  return had_progress and next(found.damaged) == nil
end

local function milliseconds(x) return math.floor(x * 1000 + 0.5) / 1000 end

-- Takes the repos with bad rows out of the finished ones: they are purged
-- from every file and scanned again.
local function unfinish(finished, order, repos)
  local kept = {}
  for _, repo in ipairs(order) do
    if repos[repo] then
      finished[repo] = nil
    else
      kept[#kept + 1] = repo
    end
  end
  for i = #order, 1, -1 do order[i] = nil end
  table.move(kept, 1, #kept, 1, order)
end

-- Makes a resumed scan's metadata cover the whole scan, not only this run: the
-- runs before it are added to its duration, requests, 429s and waits.
local function add_earlier_runs(m, previous)
  m.resumed = (tonumber(previous.resumed) or 0) + 1
  m.duration_seconds = milliseconds(m.duration_seconds + (tonumber(previous.duration_seconds) or 0))
  m.rate_limit_wait_seconds = milliseconds(m.rate_limit_wait_seconds
    + (tonumber(previous.rate_limit_wait_seconds) or 0))
  m.rate_limited_responses = m.rate_limited_responses + (tonumber(previous.rate_limited_responses) or 0)
  if type(previous.requests_by_bucket) == "table" then
    for bucket, n in pairs(previous.requests_by_bucket) do
      if tonumber(n) then m.requests_by_bucket[bucket] = (m.requests_by_bucket[bucket] or 0) + n end
    end
  end
end

-- A finished scan is a fact: a restart neither lists the Hub again nor adds
-- the repos that appeared since (a new scan, or --since, does that). Its
-- --fail-on news stays news: a job that runs its restart again hears it.
-- Returns the exit status.
local function already_completed(o, paths)
  cli.warn(nil, ("%s is already completed; nothing to do"):format(paths.extended))
  local status = manifest.write_if_missing(paths)
  if status ~= 0 then return status end
  local recorded = database.read_metadata(paths.metadata)
  local code, why = scanner.result_status(o.fail_on, { mismatch = tonumber(recorded.hash_mismatches) or 0,
    failed = tonumber(recorded.failed_files) or 0, errors = tonumber(recorded.total_errors) or 0 })
  if code ~= 0 then cli.warn(nil, ("%s; exit %d"):format(why, code)) end
  return code
end

-- Everything on the command line that can refuse the restart, checked before
-- any file is changed; the scan's recorded settings are taken into o. Returns
-- nil, or the exit status of a refusal.
local function refusal(o, paths, parameters, log)
  local refused = M.check_token(o, parameters)
  if refused then return refused end
  log:open_file(paths.log)
  log:info("resuming the scan of %s", paths.extended)
  if parameters.authenticated == "true" and not o.token then
    return refuse(log, "this scan was made with a token: give it again (--token, HF_TOKEN or the "
      .. "token file) to resume it, or its gated and private repos would come out differently")
  end
  if parameters.authenticated == "false" and o.token then
    if o.given.token then
      return refuse(log, "this scan was made without a token: resume it without --token, or its "
        .. "gated and private repos would come out differently")
    end
    log:warn("this scan was made without a token: the one from HF_TOKEN or the token file is not used")
    o.token = nil
  end
  merge_parameters(o, parameters, log)
  local extras = database.extra_columns_of(parameters)
  o.since = o.since or parameters.since
  o.policy = o.policy or parameters.policy
  local expected, lerr = since.load_since_and_policy(o)
  if not expected then return log:fail(lerr) end
  if o.since then log:info("since = %s", o.since) end
  if o.policy then log:info("policy = %s", o.policy) end
  if table.concat(expected, ",") ~= table.concat(extras, ",") then
    return refuse(log, ("the scan's files have the extra columns '%s', but this command line gives '%s'")
      :format(table.concat(extras, ","), table.concat(expected, ",")))
  end
  if parameters.shard and not o.shard then o.shard = scan_options.shard(parameters.shard) end
  local changed = fingerprint.difference(parameters, scanner.parameters(o, parameters.scan_start))
  if changed then
    return refuse(log, ("cannot resume %s with this command line, which changes what its rows answer: %s; "
      .. "resume it as it was made, or start a new scan"):format(paths.extended, changed))
  end
  return nil
end

-- The two ways a restart learns and repairs a scan's state. Each gives
-- { finished (finished[repo] is true for each finished repo), count (of them),
--   whole = nothing to repair,
--   repair = function(log) -> true or nil and a message, which leaves the
--   files holding exactly the finished repos and sets stats (the totals to go
--   on from), and rows_per_repo or store (the SQLite database's state) }.

-- From the progress file's sizes alone (hfscan.scan.resume_point).
local function by_resume_point(paths, point)
  local state = { finished = point.finished, count = #point.finished, whole = resume_point.nothing_past(point) }
  function state.repair(log)
    local store, scan_id, current = resume_point.catch_up_store(paths, point)
    local ok, err = resume_point.cut(paths, point, log)
    if not ok then return nil, err end
    if store and not resume_point.settle_store(paths, point, store, scan_id, current) then
      scanner.store_call(store.close, store)
      store = nil
    end
    state.stats, err = resume_point.totals(paths, point, store, scan_id)
    if not state.stats then return nil, err end
    state.store = store and { store = store, scan_id = scan_id }
    return true
  end
  return state
end

-- Row by row (hfscan.scan.survey): for scans whose progress file records no
-- sizes, files that disagree with it, and --repair. Returns the state, or nil
-- and a message.
local function by_survey(o, paths, log)
  local finished, order, had_progress = survey.finished_repos(paths, log)
  if not finished then return nil, tostring(order) end
  local repair, repair_summary = cli.repairer(nil, o.repair)
  local found, serr = survey.survey(paths, finished, repair)
  if not found then return nil, serr end
  repair_summary()
  local state = { finished = finished, count = #order, whole = surveyed_whole(found, had_progress) }
  function state.repair()
    unfinish(finished, order, found.damaged)
    local ok, perr = survey.purge_unfinished(paths, found, finished, log)
    if not ok then return nil, "cannot repair the scan's files: " .. tostring(perr) end
    -- With the sizes of the files as they are now: the next restart cuts.
    local wok, werr = survey.rewrite_progress(paths, finished, order)
    if not wok then return nil, werr end
    manifest.write_or_warn(paths, log)
    state.count = #order
    state.stats, state.rows_per_repo = survey.totals(paths, found, finished, #order)
    if not state.stats then return nil, "cannot resume: " .. tostring(state.rows_per_repo) end
    return true
  end
  return state
end

function M.restart(o)
  local log = logging.new { quiet = o.quiet }
  log:add_secret(o.token)
  local paths, err = M.locate(o.output_dir, o.restart_from)
  if not paths then return log:fail("cannot resume: " .. err, cli.EXIT_TROUBLE) end
  -- What the restart needs is learnt before anything is changed, and every
  -- refusal comes before the files are repaired.
  local heads, rerr = survey.headers(paths)
  if not heads then return log:fail("cannot resume: " .. rerr) end
  local point, why
  if o.repair then why = "--repair checks every row" else point, why = resume_point.find(paths) end
  local state, serr
  if point then
    state = by_resume_point(paths, point)
  else
    if hf.file_type(paths.progress) == "file" then log:info("reading every row: %s", why) end
    state, serr = by_survey(o, paths, log)
    if not state then return log:fail("cannot resume: " .. serr) end
  end
  if completed_and_whole(paths, state.count, state.whole) then return already_completed(o, paths) end
  local parameters = heads.extended.parameters
  local refused = refusal(o, paths, parameters, log)
  if refused then return refused end
  M.remove_stale_temporaries(paths, log)
  local ok, perr = state.repair(log)
  if not ok then return log:fail(perr) end
  log:info("%d repos already finished are skipped", state.count)
  local db, derr = database.open_append(paths, database.extra_columns_of(parameters))
  if not db then return log:fail(derr) end
  local previous = database.read_metadata(paths.metadata) or {}
  local listing = listing_journal.read(paths.listing)
  if listing then
    log:info("the listing goes on from its journal: %d pages read%s", #listing.pages,
      (listing.done or not listing.next) and ", and it was over" or "")
  end
  return scanner.execute(o, db, paths.ts, log, state.stats, {
    skip = state.finished,
    listing = listing,
    scan_start = parameters.scan_start,
    rows_per_repo = state.rows_per_repo,
    store = state.store,
    metadata = function(m) add_earlier_runs(m, previous) end,
  })
end

function M.run(o)
  if o.update_failed_hashes then return require("hfscan.scan.update").run(o) end
  return M.restart(o)
end

return M
