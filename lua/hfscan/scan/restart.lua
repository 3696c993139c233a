-- Resuming an interrupted scan (--restart, --restart-from), safe against kill -9
-- at any instant: appends are whole blocks, rewrites are atomic renames. The
-- update of a finished scan's failed rows is hfscan.scan.update.
local cli = require "hfscan.cli"
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local fingerprint = require "hfscan.scan.fingerprint"
local hf = require "hfscan"
local identity = require "hfscan.hub.identity"
local listing_journal = require "hfscan.scan.listing"
local logging = require "hfscan.log"
local manifest = require "hfscan.db.manifest"
local scan_options = require "hfscan.scan.options"
local scanner = require "hfscan.scan.scanner"
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

-- Whether the metadata says completed and the files still hold all of it: no
-- torn line or bad row, and a progress line for every repo the metadata counts.
local function completed_and_whole(paths, found, order, had_progress)
  local recorded = database.read_metadata(paths.metadata)
  if not (recorded and recorded.status == "completed") then return false end
  for _, kind in ipairs(database.CSV_KINDS) do
    if found[kind].torn_line then return false end
  end
  return had_progress and next(found.damaged) == nil and #order == recorded.total_models_scanned
end

local function milliseconds(x) return math.floor(x * 1000 + 0.5) / 1000 end

-- Takes the repos with bad rows out of the finished ones: they are purged
-- from every file and scanned again. Returns how many were taken.
local function unfinish(finished, order, repos)
  local kept, taken = {}, 0
  for _, repo in ipairs(order) do
    if repos[repo] then
      finished[repo] = nil
      taken = taken + 1
    else
      kept[#kept + 1] = repo
    end
  end
  for i = #order, 1, -1 do order[i] = nil end
  table.move(kept, 1, #kept, 1, order)
  return taken
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

function M.restart(o)
  local log = logging.new { quiet = o.quiet }
  log:add_secret(o.token)
  local paths, err = M.locate(o.output_dir, o.restart_from)
  if not paths then return log:fail("cannot resume: " .. err, cli.EXIT_TROUBLE) end
  -- One streaming pass over each file tells what the restart needs (memory
  -- per repo, not per row): nothing is changed before every refusal is past.
  local heads, rerr = survey.headers(paths)
  if not heads then return log:fail("cannot resume: " .. rerr) end
  local finished, order, had_progress = survey.finished_repos(paths, log)
  if not finished then return log:fail("cannot resume: " .. tostring(order)) end
  local repair, repair_summary = cli.repairer(nil, o.repair)
  local found, serr = survey.survey(paths, finished, repair)
  if not found then return log:fail("cannot resume: " .. serr) end
  repair_summary()
  -- A finished scan is a fact: a restart neither lists the Hub again nor adds
  -- the repos that appeared since (a new scan, or --since, does that). Files
  -- damaged since are repaired as for any restart.
  if completed_and_whole(paths, found, order, had_progress) then
    cli.warn(nil, ("%s is already completed; nothing to do"):format(paths.extended))
    local status = manifest.write_if_missing(paths)
    if status ~= 0 then return status end
    -- The scan's news stays news: a job that runs its restart again hears it.
    local recorded = database.read_metadata(paths.metadata)
    local code, why = scanner.result_status(o.fail_on, { mismatch = tonumber(recorded.hash_mismatches) or 0,
      failed = tonumber(recorded.failed_files) or 0, errors = tonumber(recorded.total_errors) or 0 })
    if code ~= 0 then cli.warn(nil, ("%s; exit %d"):format(why, code)) end
    return code
  end
  local parameters = heads.extended.parameters
  local refused = M.check_token(o, parameters)
  if refused then return refused end
  log:open_file(paths.log)
  log:info("resuming the scan of %s", paths.extended)
  -- Everything that can refuse the restart comes before the files are repaired.
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
  M.remove_stale_temporaries(paths, log)
  if unfinish(finished, order, found.damaged) > 0 then had_progress = false end -- rewritten without them
  local ok, perr = survey.purge_unfinished(paths, found, finished, log)
  if not ok then return log:fail("cannot repair the scan's files: " .. tostring(perr)) end
  if not had_progress then
    local rows = {}
    for _, repo in ipairs(order) do rows[#rows + 1] = { repo, finished[repo] } end
    local wok, werr = csvfile.rewrite_plain(paths.progress, database.PROGRESS_COLUMNS, rows)
    if not wok then return log:fail(werr) end
  end
  manifest.write_or_warn(paths, log)
  log:info("%d repos already finished are skipped", #order)
  local db, derr = database.open_append(paths, extras)
  if not db then return log:fail(derr) end
  local ts = paths.ts
  local previous = database.read_metadata(paths.metadata) or {}
  local listing = listing_journal.read(paths.listing)
  if listing then
    log:info("the listing goes on from its journal: %d pages read%s", #listing.pages,
      (listing.done or not listing.next) and ", and it was over" or "")
  end
  local stats, rows_per_repo = survey.totals(paths, found, finished, #order)
  if not stats then return log:fail("cannot resume: " .. tostring(rows_per_repo)) end
  return scanner.execute(o, db, ts, log, stats, {
    skip = finished,
    listing = listing,
    scan_start = parameters.scan_start,
    rows_per_repo = rows_per_repo,
    metadata = function(m) add_earlier_runs(m, previous) end,
  })
end

function M.run(o)
  if o.update_failed_hashes then return require("hfscan.scan.update").run(o) end
  return M.restart(o)
end

return M
