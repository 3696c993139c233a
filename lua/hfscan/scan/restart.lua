-- Resuming an interrupted scan (--restart, --restart-from) and retrying the
-- failed rows of a finished one (--update-failed-hashes). Both are safe against
-- kill -9 at any instant: appends are whole blocks, rewrites are atomic renames.
local cli = require "hfscan.cli"
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local hf = require "hfscan"
local identity = require "hfscan.hub.identity"
local listing_journal = require "hfscan.scan.listing"
local logging = require "hfscan.log"
local repo_scan = require "hfscan.scan.repo"
local scan_options = require "hfscan.scan.options"
local scanner = require "hfscan.scan.scanner"
local session = require "hfscan.hub.session"
local since = require "hfscan.scan.since"

local M = {}

-- Where a scan's files are: the most recent in a folder, or the one an
-- extended CSV names.
M.locate = function(dir, extended) return database.locate(dir, extended) end

-- Where each column is, by name (the extended file's own come first, a
-- policy's after them).
local EXT = database.index(database.EXTENDED_COLUMNS)
local PROGRESS = database.index(database.PROGRESS_COLUMNS)
local REPO_COLUMN = { basic = database.index(database.BASIC_COLUMNS).repo_id, extended = EXT.repo_id,
  errors = database.index(database.ERROR_COLUMNS).repo_id }

local COLUMNS = { basic = database.BASIC_COLUMNS, errors = database.ERROR_COLUMNS,
  extended = function(parameters) return database.extended_columns(database.extra_columns_of(parameters)) end }

-- The extended file first: it is the one a user names.
local READ_ORDER = { "extended", "basic", "errors" }

-- Reads and checks the three CSVs of a scan. Returns docs, or nil, message.
function M.read_scan(paths)
  local docs = {}
  for _, kind in ipairs(READ_ORDER) do
    if hf.file_type(paths[kind]) ~= "file" then
      return nil, ("the scan's %s file is missing: %s"):format(kind, paths[kind])
    end
    local doc, err = csvfile.read(paths[kind], COLUMNS[kind])
    if not doc then return nil, err end
    docs[kind] = doc
  end
  return docs
end

-- The files replaced through a temporary (a rewrite, the metadata).
local REWRITTEN = { "metadata", table.unpack(database.CSV_KINDS) }

-- Removes temporaries left by a rewrite that was killed before its rename.
local function remove_stale_temporaries(paths, log)
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

-- A progress file that a full disk or a kill left empty, or cut inside its
-- header line, says nothing: it is rebuilt like a missing one (issue 14).
local function progress_file_says_nothing(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local text = f:read(4096) or ""
  f:close()
  local header = table.concat(database.PROGRESS_COLUMNS, ",") .. "\r\n"
  return #text < #header and header:sub(1, #text) == text
end

-- The repos a progress file names, { [repo] = commit } and in order; or nil
-- and a message.
local function recorded_progress(path)
  local doc, err = csvfile.read_plain(path, database.PROGRESS_COLUMNS)
  if not doc then return nil, err end
  local finished, order = {}, {}
  for _, row in ipairs(doc.rows) do
    local repo = row[PROGRESS.repo_id]
    if not finished[repo] then order[#order + 1] = repo end
    finished[repo] = row[PROGRESS.commit_hash]
  end
  return finished, order
end

-- The repos recorded as finished, in order. Without a progress file (an older
-- scan), every repo of the extended file but the last one, which may have been
-- cut short.
local function finished_repos(paths, docs, log)
  if hf.file_type(paths.progress) == "file" and progress_file_says_nothing(paths.progress) then
    log:warn("%s is empty or cut short: it is rebuilt from the extended file", paths.progress)
  elseif hf.file_type(paths.progress) == "file" then
    local finished, order = recorded_progress(paths.progress)
    if not finished then return nil, order end
    return finished, order, true
  end
  local finished, order = {}, {}
  log:warn("%s is missing or empty: taking the repos of the extended file as finished, except the last",
    paths.progress)
  for _, row in ipairs(docs.extended.rows) do
    local repo = row[EXT.repo_id]
    if not finished[repo] then
      order[#order + 1] = repo
      finished[repo] = row[EXT.commit_hash]
    end
  end
  local last = table.remove(order)
  if last then finished[last] = nil end
  return finished, order, false
end

-- Drops rows of unfinished repos and a torn last line from each CSV, rewriting
-- only the files that need it.
local function purge_unfinished(docs, finished, log)
  for _, kind in ipairs(database.CSV_KINDS) do
    local doc = docs[kind]
    local kept = {}
    for _, row in ipairs(doc.rows) do
      if finished[row[REPO_COLUMN[kind]]] then kept[#kept + 1] = row end
    end
    local dropped = #doc.rows - #kept
    if dropped > 0 or doc.torn_line then
      if doc.torn_line then
        log:warn("%s: removing the torn last line (line %d), written when the scan was killed",
          doc.path, doc.torn_line)
      end
      if dropped > 0 then
        log:warn("%s: removing %d rows of a repo that was not finished; it is scanned again",
          doc.path, dropped)
      end
      local ok, err = csvfile.rewrite(doc.path, doc.comments, doc.header, kept)
      if not ok then return nil, err end
      doc.rows = kept
    end
  end
  return true
end

local function index_of(list, value)
  for i, v in ipairs(list) do
    if v == value then return i end
  end
  return nil
end

-- The scan's recorded settings: the files', unless given on this command line.
local function merge_parameters(o, parameters, log)
  scan_options.take_recorded(o, parameters, function(key, value, origin)
    log:info("%s = %s (%s)", key, tostring(value), origin)
  end)
end

-- Totals of what the files already hold.
local function stats_from(docs, finished_count)
  local stats = scanner.new_stats()
  stats.models_done = finished_count
  for _, row in ipairs(docs.extended.rows) do
    scanner.count_row(stats, row[EXT.hash], row[EXT.hash_method])
  end
  local error_type = database.index(database.ERROR_COLUMNS).error_type
  for _, row in ipairs(docs.errors.rows) do scanner.count_error(stats, row[error_type]) end
  return stats
end

-- The token is checked at the endpoint the scan's files name (unless given):
-- it must never go to another host. Returns the exit status of a refusal, or nil.
function M.check_token(o, parameters)
  local endpoint = (not o.given.endpoint and parameters.endpoint) or o.endpoint
  return identity.check_or_refuse(o, endpoint)
end

local function fail(log, message)
  log:error("%s", message)
  log:close()
  return 1
end

-- Whether the metadata says completed and the files still hold all of it: no
-- torn line, and a progress line for every repo the metadata counts.
local function completed_and_whole(paths, docs)
  local recorded = database.read_metadata(paths.metadata)
  if not (recorded and recorded.status == "completed") then return false end
  for _, kind in ipairs(database.CSV_KINDS) do
    if docs[kind].torn_line then return false end
  end
  local finished, order = nil, nil
  if hf.file_type(paths.progress) == "file" then finished, order = recorded_progress(paths.progress) end
  return finished ~= nil and #order == recorded.total_models_scanned
end

local function milliseconds(x) return math.floor(x * 1000 + 0.5) / 1000 end

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
  if not paths then return fail(log, "cannot resume: " .. err) end
  local docs, rerr = M.read_scan(paths)
  if not docs then return fail(log, "cannot resume: " .. rerr) end
  -- A finished scan is a fact: a restart neither lists the Hub again nor adds
  -- the repos that appeared since (a new scan, or --since, does that). Files
  -- damaged since are repaired as for any restart.
  if completed_and_whole(paths, docs) then
    cli.warn(nil, ("%s is already completed; nothing to do"):format(paths.extended))
    return 0
  end
  local refused = M.check_token(o, docs.extended.parameters)
  if refused then return refused end
  log:open_file(paths.log)
  log:info("resuming the scan of %s", paths.extended)
  -- Everything that can refuse the restart comes before the files are repaired.
  local parameters = docs.extended.parameters
  if parameters.authenticated == "true" and not o.token then
    return fail(log, "this scan was made with a token: give it again (--token, HF_TOKEN or the "
      .. "token file) to resume it, or its gated and private repos would come out differently")
  end
  if parameters.authenticated == "false" and o.token then
    if o.given.token then
      return fail(log, "this scan was made without a token: resume it without --token, or its "
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
  if not expected then return fail(log, lerr) end
  if o.since then log:info("since = %s", o.since) end
  if o.policy then log:info("policy = %s", o.policy) end
  if table.concat(expected, ",") ~= table.concat(extras, ",") then
    return fail(log, ("the scan's files have the extra columns '%s', but this command line gives '%s'")
      :format(table.concat(extras, ","), table.concat(expected, ",")))
  end
  if parameters.shard and not o.shard then o.shard = scan_options.shard(parameters.shard) end
  remove_stale_temporaries(paths, log)
  local finished, order, had_progress = finished_repos(paths, docs, log)
  if not finished then return fail(log, "cannot resume: " .. tostring(order)) end
  local ok, perr = purge_unfinished(docs, finished, log)
  if not ok then return fail(log, "cannot repair the scan's files: " .. tostring(perr)) end
  if not had_progress then
    local rows = {}
    for _, repo in ipairs(order) do rows[#rows + 1] = { repo, finished[repo] } end
    local wok, werr = csvfile.rewrite_plain(paths.progress, database.PROGRESS_COLUMNS, rows)
    if not wok then return fail(log, werr) end
  end
  log:info("%d repos already finished are skipped", #order)
  local db, derr = database.open_append(paths, extras)
  if not db then return fail(log, derr) end
  local ts = paths.ts
  local previous = database.read_metadata(paths.metadata) or {}
  local listing = listing_journal.read(paths.listing)
  if listing then
    log:info("the listing goes on from its journal: %d pages read%s", #listing.pages,
      (listing.done or not listing.next) and ", and it was over" or "")
  end
  return scanner.execute(o, db, ts, log, stats_from(docs, #order), {
    skip = finished,
    listing = listing,
    scan_start = docs.extended.parameters.scan_start,
    metadata = function(m) add_earlier_runs(m, previous) end,
  })
end

-- ---- update failed hashes -------------------------------------------------

-- The header comments with the record of this update.
local function updated_comments(comments, when)
  local out, count = {}, 0
  for _, c in ipairs(comments) do
    local n = c:match("^failed_hashes_updates: (%d+)$")
    if n then count = tonumber(n)
    elseif not c:match("^failed_hashes_updated: ") then
      if c == "END_PARAMETERS" then
        out[#out + 1] = "failed_hashes_updated: " .. when
        out[#out + 1] = "failed_hashes_updates: " .. (count + 1)
      end
      out[#out + 1] = c
    end
  end
  return out
end

local function confirm(question)
  io.stderr:write(question, " [y/N] ")
  io.stderr:flush()
  local answer = io.stdin:read("l") or ""
  return answer:lower():match("^y") ~= nil
end

-- Retries the failed files of each repo. Returns { [repo] = { rows, errors } }.
local function retry_failed(o, failed_by_repo, log)
  local s <close> = session.open { endpoint = o.endpoint, token = o.token, workers = o.max_workers,
    rate_limit = o.rate_limit, stall_timeout = o.stall_timeout }
  local loop = s.loop
  local context = { hub = s.hub, max_file_size = math.huge, retry_budget = o.retry_budget, loop = loop }
  local results = {}
  local repos = {}
  for repo in pairs(failed_by_repo) do repos[#repos + 1] = repo end
  table.sort(repos)
  local next_index = 0
  local function worker()
    while not hf.interrupted() do
      next_index = next_index + 1
      local repo = repos[next_index]
      if not repo then return end
      local ok, rows, errors = pcall(repo_scan.scan, context, { id = repo }, failed_by_repo[repo])
      if not ok then
        if rows == repo_scan.INTERRUPTED then return end
        error(rows, 0)
      end
      results[repo] = { rows = rows, errors = errors }
      log:info("%s: retried %d files", repo, #rows)
    end
  end
  for _ = 1, math.min(#repos, o.max_workers * 2) do loop:spawn(worker) end
  loop:run()
  return results
end

function M.update_failed(o)
  if not o.token then
    return cli.usage_error("--update-failed-hashes needs a token: --token, HF_TOKEN or the token file ($HF_TOKEN_PATH or $HF_HOME/token)",
      "hfscan --help")
  end
  local log = logging.new { quiet = o.quiet }
  log:add_secret(o.token)
  local paths, err = M.locate(o.output_dir, o.restart_from)
  if not paths then return fail(log, err) end
  remove_stale_temporaries(paths, log)
  local docs, rerr = M.read_scan(paths)
  if not docs then return fail(log, "cannot update: " .. rerr) end
  local refused = M.check_token(o, docs.extended.parameters)
  if refused then return refused end
  for _, kind in ipairs(READ_ORDER) do
    if docs[kind].torn_line then
      return fail(log, ("cannot update: %s ends in a torn line; resume the scan first (hfscan --restart-from %s)")
        :format(paths[kind], paths.extended))
    end
  end
  identity.say_who(o)
  log:open_file(paths.log)
  scan_options.take_recorded(o, docs.extended.parameters, nil, true)
  local failed_by_repo, count, repos = {}, 0, 0
  for _, row in ipairs(docs.extended.rows) do
    local repo = row[EXT.repo_id]
    if database.is_failed(row[EXT.hash]) then
      if not failed_by_repo[repo] then
        failed_by_repo[repo] = {}
        repos = repos + 1
      end
      failed_by_repo[repo][row[EXT.filename]] = true
      count = count + 1
    end
  end
  log:info("%s: %d failed rows in %d repos", paths.extended, count, repos)
  if count > 0 and hf.isatty(0) and not o.yes then
    if not confirm(("Retry %d failed rows of %d repos in %s with your token?"):format(count, repos,
      paths.extended)) then
      return fail(log, "cancelled; nothing was changed")
    end
  end
  local results = retry_failed(o, failed_by_repo, log)
  if hf.interrupted() then
    log:warn("interrupted before any file was changed; run the update again")
    log:close()
    return scanner.EXIT_INTERRUPTED
  end
  -- New rows replace the failed ones in place; the rest stay as they were.
  local replacement, new_errors, fixed = {}, {}, 0
  for repo, result in pairs(results) do
    for _, r in ipairs(result.rows) do
      replacement[repo .. "\0" .. r.filename] = r
      if not database.is_failed(r.hash) then fixed = fixed + 1 end
    end
    for _, e in ipairs(result.errors) do new_errors[#new_errors + 1] = e end
    -- A repo that could not be read at all: each of its files still fails.
    if #result.rows == 0 and #result.errors > 0 then
      for path in pairs(failed_by_repo[repo]) do
        local e = result.errors[1]
        new_errors[#new_errors + 1] = { repo_id = repo, filename = path, error_type = e.error_type,
          reason = e.reason, timestamp = e.timestamp }
      end
    end
  end
  local when = database.utc_now()
  local extended_rows, carried_column = {}, nil
  for i, row in ipairs(docs.extended.rows) do
    local r = replacement[row[EXT.repo_id] .. "\0" .. row[EXT.filename]]
    if r and database.is_failed(row[EXT.hash]) then
      local new = {}
      for k, c in ipairs(docs.extended.header) do new[k] = tostring(r[c] or row[k]) end
      if database.is_failed(r.hash) then
        -- keep the failure as it was
        new[EXT.hash], new[EXT.hash_method] = row[EXT.hash], row[EXT.hash_method]
      else
        carried_column = carried_column or index_of(docs.extended.header, "carried_over_from")
        if carried_column then new[carried_column] = "" end -- hashed now, not carried
      end
      extended_rows[i] = new
    else
      extended_rows[i] = row
    end
  end
  local ok, werr = csvfile.rewrite(paths.extended, updated_comments(docs.extended.comments, when),
    docs.extended.header, extended_rows)
  if not ok then return fail(log, "cannot rewrite " .. paths.extended .. ": " .. tostring(werr)) end
  database.maybe_crash("update_after_extended")
  -- The basic file is the extended file's first three columns, row for row.
  local basic_rows = {}
  for i, row in ipairs(extended_rows) do
    local basic = {}
    for k, name in ipairs(database.BASIC_COLUMNS) do basic[k] = row[EXT[name]] end
    basic_rows[i] = basic
  end
  ok, werr = csvfile.rewrite(paths.basic, updated_comments(docs.basic.comments, when),
    database.BASIC_COLUMNS, basic_rows)
  if not ok then return fail(log, "cannot rewrite " .. paths.basic .. ": " .. tostring(werr)) end
  if #new_errors > 0 then
    local block = {}
    for i, e in ipairs(new_errors) do
      block[i] = { e.repo_id, e.filename, e.error_type, e.reason, e.timestamp }
    end
    local w, oerr = hf.csv_writer(paths.errors, "append")
    local wok, werr2 = w, oerr
    if w then wok, werr2 = w:write_block(block) end
    if w then w:close() end
    if not wok then return fail(log, "cannot append to " .. paths.errors .. ": " .. tostring(werr2)) end
  end
  local dir = paths.dir
  local store_call = scanner.store_call
  local store, serr = store_call(require("hfscan.db.store").open, dir)
  local imported
  if store then imported, serr = store_call(store.import_scan, store, paths) end
  if not imported then
    log:warn("cannot update the SQLite database (%s); rebuild it with: hfscan db build --output-dir %s",
      tostring(serr), dir)
  end
  if store then store_call(store.close, store) end
  log:info("updated %s: %d of %d failed rows now have a hash, %d still fail", paths.extended,
    fixed, count, count - fixed)
  if not o.quiet then
    print(("%d of %d failed rows now have a hash; %d still fail (%s)"):format(fixed, count,
      count - fixed, paths.extended))
  end
  log:close()
  return 0
end

function M.run(o)
  if o.update_failed_hashes then return M.update_failed(o) end
  return M.restart(o)
end

return M
