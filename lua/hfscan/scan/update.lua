-- Retrying the failed rows of a finished scan (--update-failed-hashes) so that
-- the scan stays one consistent answer: each file is fetched at its row's own
-- commit; a repo whose commit is gone is scanned again whole at the new one (a
-- repo never spans two commits); the header, the progress file, the errors
-- file (each replaced error marked superseded) and the metadata are rewritten
-- with the rows. Every file is replaced by an atomic rename, and a run killed
-- between two of them is healed by running the update again: what the files
-- say is recomputed from the rows, not carried from the run that died.
local cli = require "hfscan.cli"
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local fingerprint = require "hfscan.scan.fingerprint"
local hf = require "hfscan"
local identity = require "hfscan.hub.identity"
local logging = require "hfscan.log"
local manifest = require "hfscan.db.manifest"
local policies = require "hfscan.scan.policy"
local progress_file = require "hfscan.db.progress_file"
local repo_scan = require "hfscan.scan.repo"
local restart = require "hfscan.scan.restart"
local scan_options = require "hfscan.scan.options"
local scanner = require "hfscan.scan.scanner"
local session = require "hfscan.hub.session"
local survey = require "hfscan.scan.survey"

local M = {}

local EXT = database.index(database.EXTENDED_COLUMNS)
local ERR = database.index(database.ERROR_COLUMNS)

-- Failures a token can lift. The others (network, server, too large, a
-- mismatch) need none, and are retried without one: their rows must answer
-- what the rest of the scan answers, whoever runs the update.
local ACCESS_FAILURES = { gated_repository = true, repository_not_found = true }

-- What the update must find as the scan was made: the rows of another policy or
-- other scripts would not belong to it. (Another token user is the point of an
-- update; the selection settings do not matter to rows already chosen.)
local UNCHANGEABLE = { endpoint = true, policy = true, policy_sha256 = true, scripts = true,
  scripts_digest = true, target_extensions = true }

local function key(repo, filename) return repo .. "\0" .. filename end


-- The latest error type of each file (and of each repo, filename ""), from the
-- errors file.
local function error_types(errors_doc)
  local types = {}
  for _, e in ipairs(errors_doc.rows) do
    if e[ERR.error_type] ~= database.SUPERSEDED then
      types[key(e[ERR.repo_id], e[ERR.filename])] = e[ERR.error_type]
    end
  end
  return types
end

-- The failed rows to retry, as jobs { repo, commit, last_modified, only, token }
-- (one per repo and per kind of failure), and the count of those left for want
-- of a token.
local function plan_retries(docs, has_token)
  local types = error_types(docs.errors)
  local jobs, by_group, count, need_token = {}, {}, 0, 0
  for _, row in ipairs(docs.failed) do
    do
      local repo, filename = row[EXT.repo_id], row[EXT.filename]
      local kind = types[key(repo, filename)] or types[key(repo, "")]
      local with_token = ACCESS_FAILURES[kind] == true
      if with_token and not has_token then
        need_token = need_token + 1
      else
        local group = key(repo, with_token and "token" or "anonymous")
        local job = by_group[group]
        if not job then
          job = { repo = repo, commit = row[EXT.commit_hash], last_modified = row[EXT.last_modified],
            only = {}, token = with_token }
          by_group[group] = job
          jobs[#jobs + 1] = job
        end
        job.only[filename] = true
        count = count + 1
      end
    end
  end
  table.sort(jobs, function(a, b) return key(a.repo, tostring(a.token)) < key(b.repo, tostring(b.token)) end)
  return jobs, count, need_token
end

-- A policy's hooks see a model as the scan's listing gave it (gated, private,
-- downloads, library_name...): the update asks model info for them at the
-- row's commit, one request per repo and only for a scan with a policy. Without
-- an answer the hooks see what the rows name.
local function add_listing_fields(hub, model)
  local info = hub:model_info(model.id, model.sha, { retries = 1 })
  if type(info) ~= "table" then return end
  for k, v in pairs(info) do
    local t = type(v)
    if model[k] == nil and (t == "string" or t == "number" or t == "boolean") then model[k] = v end
  end
end

-- Runs each job's repo scan on one session (with the token or without).
-- Fills job.rows, job.errors, job.unfinished.
local function run_jobs(o, jobs, token, log)
  if #jobs == 0 then return end
  local s <close> = session.open { endpoint = o.endpoint, token = token, workers = o.max_workers,
    rate_limit = o.rate_limit, stall_timeout = o.stall_timeout }
  local context = { hub = s.hub, max_file_size = math.huge, retry_budget = o.retry_budget,
    loop = s.loop, policy = o.loaded_policy }
  local next_index = 0
  local function worker()
    while not hf.interrupted() do
      next_index = next_index + 1
      local job = jobs[next_index]
      if not job then return end
      local model = { id = job.repo, sha = job.commit, lastModified = job.last_modified }
      if context.policy then add_listing_fields(s.hub, model) end
      local ok, rows, errors, unfinished = pcall(repo_scan.scan, context, model, job.only)
      if not ok then
        if rows == repo_scan.INTERRUPTED then return end
        error(rows, 0)
      end
      job.rows, job.errors, job.unfinished, job.commit_now = rows, errors, unfinished, model.sha
      log:info("%s: retried %d files at %s", job.repo, #rows, job.commit or model.sha)
    end
  end
  for _ = 1, math.min(#jobs, o.max_workers * 2) do s.loop:spawn(worker) end
  s.loop:run()
end

-- A job whose commit the Hub no longer serves.
local function commit_gone(job)
  if not job.errors then return false end
  for _, e in ipairs(job.errors) do
    if e.error_type == "revision_not_found" and e.filename == "" then return true end
  end
  return false
end

-- Runs the jobs that lift access failures with the token, the others without.
local function run_by_token(o, jobs, log)
  local with, without = {}, {}
  for _, job in ipairs(jobs) do table.insert(job.token and with or without, job) end
  run_jobs(o, with, o.token, log)
  run_jobs(o, without, nil, log)
end

-- Runs the jobs, then scans again whole (at the current commit, every target
-- file) each repo whose commit is gone. Returns the rescans, { [repo] = job }.
local function retry(o, jobs, log)
  run_by_token(o, jobs, log)
  local again, rescans = {}, {}
  for _, job in ipairs(jobs) do
    if commit_gone(job) and not rescans[job.repo] then
      local whole = { repo = job.repo, token = job.token, rescan = true }
      rescans[job.repo] = whole
      again[#again + 1] = whole
      log:info("%s: commit %s is gone; the repo is scanned again at its current commit", job.repo,
        job.commit)
    end
  end
  run_by_token(o, again, log)
  return rescans
end

-- A new row in the extended file's columns, from a repo scan's record; old
-- fills the columns the record lacks (a retried row keeps its own).
local function as_row(header, record, old, secrets)
  local row = {}
  for k, c in ipairs(header) do
    local v = record[c]
    if v == nil then v = old and old[k] or "" end
    row[k] = logging.mask(tostring(v), secrets)
  end
  return row
end

-- The extended rows after the update, streamed from the file as it is: failed
-- rows replaced in place by their retry, and each rescanned repo's block by
-- its new rows. Returns next_row() for csvfile.rewrite_from; as the rows pass
-- it counts them into seen.stats and notes in seen.hashed the keys of
-- error_keys whose row now holds a hash.
local function updated_rows(paths, docs, jobs, rescans, secrets, error_keys, seen)
  local header = docs.extended.header
  local carried = nil
  for k, c in ipairs(header) do if c == "carried_over_from" then carried = k end end
  local replacement = {}
  for _, job in ipairs(jobs) do
    for _, r in ipairs(job.rows or {}) do replacement[key(job.repo, r.filename)] = r end
  end
  local doc = assert(csvfile.open(paths.extended, header))
  local pending, emitted = {}, {}
  local function out(row)
    scanner.count_row(seen.stats, row[EXT.hash], row[EXT.hash_method])
    local k = key(row[EXT.repo_id], row[EXT.filename])
    if error_keys[k] and not database.is_failed(row[EXT.hash]) then seen.hashed[k] = true end
    return row
  end
  -- The rows an old row becomes: none (a rescanned repo's later rows), one, or
  -- a rescanned repo's new block (at its first old row).
  local function replace(row)
    local repo = row[EXT.repo_id]
    local whole = rescans[repo]
    if whole and whole.rows and not whole.unfinished then
      if emitted[repo] then return {} end
      emitted[repo] = true
      local block = {}
      for i, r in ipairs(whole.rows) do block[i] = as_row(header, r, nil, secrets) end
      return block
    end
    local r = database.is_failed(row[EXT.hash]) and replacement[key(repo, row[EXT.filename])]
    if not (r and not database.is_failed(r.hash)) then return { row } end -- a failure stays as made
    local new = as_row(header, r, row, secrets)
    if carried then new[carried] = "" end -- hashed now, not carried over
    return { new }
  end
  return function()
    while #pending == 0 do
      local row = doc.next()
      if not row then return nil end
      pending = replace(row)
      pending.at = 1
    end
    local row = pending[pending.at]
    pending.at = pending.at + 1
    if pending.at > #pending then pending = {} end
    return out(row)
  end
end

-- The errors file after the update: an error is superseded once its file was
-- tried again (or its row holds a hash: a run killed before this rewrite), or
-- its repo scanned again whole; the new errors follow.
local function updated_errors(docs, jobs, rescans, hashed, when, secrets)
  local retried, repo_retried = {}, {}
  for _, job in ipairs(jobs) do
    if job.rows and not job.unfinished then
      repo_retried[job.repo] = true
      for filename in pairs(job.only) do retried[key(job.repo, filename)] = true end
    end
  end
  local out = {}
  for _, e in ipairs(docs.errors.rows) do
    local repo, filename, kind = e[ERR.repo_id], e[ERR.filename], e[ERR.error_type]
    local whole = rescans[repo]
    local replaced = (whole and whole.rows and not whole.unfinished)
      or (filename == "" and repo_retried[repo])
      or (filename ~= "" and (retried[key(repo, filename)] or hashed[key(repo, filename)]))
    if kind ~= database.SUPERSEDED and replaced then
      e = { repo, filename, database.SUPERSEDED,
        ("%s: %s (superseded at %s by --update-failed-hashes)"):format(kind, e[ERR.reason], when),
        e[ERR.timestamp] }
    end
    out[#out + 1] = e
  end
  local function add(errors)
    for _, x in ipairs(errors or {}) do
      out[#out + 1] = { x.repo_id, x.filename, x.error_type, logging.mask(x.reason, secrets), x.timestamp }
    end
  end
  for _, job in ipairs(jobs) do
    if not (rescans[job.repo] and commit_gone(job)) then add(job.errors) end
  end
  for _, whole in pairs(rescans) do add(whole.errors) end
  return out
end

-- The progress file's lines with each rescanned repo's new commit. They lose
-- the CSVs' sizes, which the rewrite changes: a restart of the updated scan
-- reads its files row by row.
local function updated_progress(paths, rescans)
  local progress, err = progress_file.read(paths.progress, true)
  if not progress then return nil, err end
  local rows = {}
  for i, repo in ipairs(progress.order) do
    local whole = rescans[repo]
    local commit = progress.finished[repo]
    if whole and whole.commit_now and whole.rows and not whole.unfinished then commit = whole.commit_now end
    rows[i] = { repo, commit }
  end
  return rows
end

-- The header comments with the record of this update; a token used makes the
-- scan authenticated, and says whose it was (never the token).
local function updated_comments(comments, when, token_user)
  local out, count = {}, 0
  for _, c in ipairs(comments) do
    local n = c:match("^failed_hashes_updates: (%d+)$")
    if n then count = tonumber(n)
    elseif not c:match("^failed_hashes_updated: ") and not c:match("^failed_hashes_token_user: ") then
      if c == "END_PARAMETERS" then
        out[#out + 1] = "failed_hashes_updated: " .. when
        out[#out + 1] = "failed_hashes_updates: " .. (count + 1)
        if token_user then out[#out + 1] = "failed_hashes_token_user: " .. token_user end
      end
      out[#out + 1] = (token_user and c == "authenticated: false") and "authenticated: true" or c
    end
  end
  return out
end

-- The metadata with its counts recomputed from the files as they are now.
local function updated_metadata(paths, stats, errors, when, used_token, token_user)
  local m = database.read_metadata(paths.metadata) or {}
  for _, e in ipairs(errors) do scanner.count_error(stats, e[ERR.error_type]) end
  m.total_files_processed, m.failed_files, m.files_by_method = stats.files, stats.failed_files, stats.methods
  m.total_errors, m.errors_by_type = stats.errors, stats.errors_by_type
  m.hash_mismatches = stats.errors_by_type.hash_mismatch or 0
  m.failed_hashes_updated = when
  m.failed_hashes_updates = (tonumber(m.failed_hashes_updates) or 0) + 1
  if used_token then
    m.authenticated = true
    m.failed_hashes_token_user = token_user
  end
  return m, stats
end

local function confirm(question)
  io.stderr:write(question, " [y/N] ")
  io.stderr:flush()
  local answer = io.stdin:read("l") or ""
  return answer:lower():match("^y") ~= nil
end

-- Reads what the update needs of the scan, streaming its rows once: the
-- headers, the failed rows (a few in a hundred), and the errors file whole.
-- Refuses a file that ends in a torn line. Returns paths and { extended,
-- basic (headers), errors (read whole), failed (rows) }, or nil and a message.
local function open_scan(o, log)
  local paths, err = restart.locate(o.output_dir, o.restart_from)
  if not paths then return nil, err end
  restart.remove_stale_temporaries(paths, log)
  local heads, herr = survey.headers(paths)
  if not heads then return nil, "cannot update: " .. herr end
  local docs = { extended = heads.extended, basic = heads.basic, failed = {} }
  local torn = {}
  for _, kind in ipairs({ "extended", "basic" }) do
    local doc, oerr = csvfile.open(paths[kind], heads[kind].header)
    if not doc then return nil, "cannot update: " .. oerr end
    local ok, rerr = pcall(function()
      for row in doc.next do
        if kind == "extended" and database.is_failed(row[EXT.hash]) then docs.failed[#docs.failed + 1] = row end
      end
    end)
    if not ok then return nil, "cannot update: " .. rerr end
    torn[kind] = doc.torn_line
  end
  local errors, eerr = csvfile.read(paths.errors, database.ERROR_COLUMNS)
  if not errors then return nil, "cannot update: " .. eerr end
  docs.errors, torn.errors = errors, errors.torn_line
  for _, kind in ipairs(database.CSV_KINDS) do
    if torn[kind] then
      return nil, ("cannot update: %s ends in a torn line; resume the scan first (hfscan --restart-from %s)")
        :format(paths[kind], paths.extended)
    end
  end
  return paths, docs
end

-- Settings that choose which rows a scan has: the update retries the rows
-- there are, so a command line giving one is told it does not apply.
local SELECTION_FLAGS = { "download_threshold", "limit", "shard", "since" }

-- Loads the scan's own policy, and refuses a policy or scripts changed since,
-- and selection flags (which an update does not apply).
local function check_unchanged(o, parameters)
  for _, key in ipairs(SELECTION_FLAGS) do
    if o.given[key] then
      return ("%s does not apply to --update-failed-hashes, which retries the scan's own failed rows")
        :format("--" .. key:gsub("_", "-"))
    end
  end
  if o.given.policy and (hf.realpath(o.policy) or o.policy) ~= parameters.policy then
    return ("cannot update the scan: --policy: the scan has '%s', this command line '%s'; the update "
      .. "runs the scan's own policy"):format(tostring(parameters.policy or "none"), o.policy)
  end
  o.policy = parameters.policy
  if o.policy then
    local ok, loaded = pcall(policies.load, o.policy)
    if not ok then return ("cannot update: the scan's policy does not load: %s"):format(tostring(loaded)) end
    o.loaded_policy = loaded
  end
  local all_now = scanner.parameters(o, parameters.scan_start)
  local recorded, now = {}, {}
  for k in pairs(UNCHANGEABLE) do recorded[k], now[k] = parameters[k], all_now[k] end
  local changed = fingerprint.difference(recorded, now)
  return changed and ("cannot update the scan: %s; the update must run what made the scan"):format(changed)
end

-- Rewrites the rows, streaming: the extended file from next_row, then the
-- basic file from the new extended file (its first columns, row for row).
-- Returns true, or nil and a message.
local function rewrite_rows(paths, docs, next_row, comments_of)
  local ok, err = csvfile.rewrite_from(paths.extended, comments_of(docs.extended.comments),
    docs.extended.header, next_row)
  if not ok then return nil, ("cannot rewrite %s: %s"):format(paths.extended, tostring(err)) end
  database.maybe_crash("update_after_extended")
  local ext, oerr = csvfile.open(paths.extended, docs.extended.header)
  if not ext then return nil, oerr end
  ok, err = csvfile.rewrite_from(paths.basic, comments_of(docs.basic.comments), database.BASIC_COLUMNS,
    function()
      local row = ext.next()
      if not row then return nil end
      local basic = {}
      for k, name in ipairs(database.BASIC_COLUMNS) do basic[k] = row[EXT[name]] end
      return basic
    end)
  ext.close()
  if not ok then return nil, ("cannot rewrite %s: %s"):format(paths.basic, tostring(err)) end
  return true
end

-- Then what describes the rows: the progress file, the errors, the metadata.
local function rewrite_descriptions(paths, docs, progress, errors, metadata, comments_of)
  for _, step in ipairs({
    { paths.progress, {}, database.PROGRESS_COLUMNS_WITHOUT_ENDS, progress },
    { paths.errors, comments_of(docs.errors.comments), database.ERROR_COLUMNS, errors },
  }) do
    local ok, err = csvfile.rewrite(table.unpack(step))
    if not ok then return nil, ("cannot rewrite %s: %s"):format(step[1], tostring(err)) end
  end
  return database.write_metadata(paths.metadata, metadata)
end

-- The repos whose rows the update may have changed: those it retried, and
-- those it scanned again.
local function changed_repos(jobs, rescans)
  local changed = {}
  for _, job in ipairs(jobs) do
    if job.rows then changed[job.repo] = true end
  end
  for repo in pairs(rescans) do changed[repo] = true end
  return changed
end

-- Whether the folder's database holds the scan's rows as the extended file
-- does now (old_size, its size): if so, it is marked as no longer knowing how
-- far it holds them, before any file is rewritten, so that an update killed
-- before its database step leaves it to be imported whole, never taken as
-- current. Returns whether it was current.
local function database_before_rewrite(paths, old_size)
  local store_call = scanner.store_call
  local store = store_call(require("hfscan.db.store").open, paths.dir)
  if not store then return false end
  local scan_id, loaded = store_call(store.loaded_through, store, paths.ts)
  local current = scan_id ~= nil and loaded == old_size
    and store_call(store.set_loaded_through, store, scan_id, nil) == true
  store_call(store.close, store)
  return current
end

-- Brings the folder's database to the rewritten extended file: when it was
-- current before (see database_before_rewrite), only the changed repos' rows
-- are replaced; else the scan is imported whole.
local function update_database(paths, log, seen, was_current)
  local store_call = scanner.store_call
  local store, err = store_call(require("hfscan.db.store").open, paths.dir)
  local imported
  if store and was_current then
    imported, err = store_call(store.replace_repos, store, paths, seen.changed)
  elseif store then
    imported, err = store_call(store.import_scan, store, paths)
  end
  if not imported then
    log:warn("cannot update the SQLite database (%s); rebuild it with: hfscan db build --output-dir %s",
      tostring(err), paths.dir)
  end
  if store then store_call(store.close, store) end
end

function M.run(o)
  local log = logging.new { quiet = o.quiet }
  log:add_secret(o.token)
  local paths, docs = open_scan(o, log)
  if not paths then return log:fail(docs) end
  local parameters = docs.extended.parameters
  local refused = restart.check_token(o, parameters) -- no request without a token
  if refused then return refused end
  identity.say_who(o)
  log:open_file(paths.log)
  scan_options.take_recorded(o, parameters, nil, true)
  local err = check_unchanged(o, parameters)
  if err then return log:fail(err, cli.EXIT_USAGE) end
  local jobs, count, need_token = plan_retries(docs, o.token ~= nil)
  if count == 0 and need_token > 0 then
    return log:fail(("--update-failed-hashes: the %d failed rows of %s are of gated repos and need a "
      .. "token: --token, HF_TOKEN or the token file ($HF_TOKEN_PATH or $HF_HOME/token)")
      :format(need_token, paths.extended), cli.EXIT_USAGE)
  end
  log:info("%s: %d failed rows to retry in %d repos%s", paths.extended, count, #jobs,
    need_token > 0 and (", %d more need a token"):format(need_token) or "")
  if count > 0 and hf.isatty(0) and not o.yes then
    if not confirm(("Retry %d failed rows of %s%s?"):format(count, paths.extended,
      o.token and " (those of gated repos with your token)" or "")) then
      return log:fail("cancelled; nothing was changed")
    end
  end
  local rescans = retry(o, jobs, log)
  if hf.interrupted() then
    log:warn("interrupted before any file was changed; run the update again")
    log:close()
    return scanner.EXIT_INTERRUPTED
  end
  local when = database.utc_now()
  local used_token = false
  for _, job in ipairs(jobs) do used_token = used_token or (job.token and job.rows ~= nil) end
  -- An earlier update that used a token (perhaps killed before the metadata)
  -- made some rows with it: that stays said.
  local token_user = used_token and (o.token_user or "unknown user") or parameters.failed_hashes_token_user
  used_token = token_user ~= nil
  local progress, perr = updated_progress(paths, rescans)
  if not progress then return log:fail("cannot update: " .. tostring(perr)) end
  local comments_of = function(comments) return updated_comments(comments, when, token_user) end
  local error_keys = {}
  for _, e in ipairs(docs.errors.rows) do error_keys[key(e[ERR.repo_id], e[ERR.filename])] = true end
  local seen = { stats = scanner.new_stats(), hashed = {}, changed = changed_repos(jobs, rescans) }
  local database_was_current = database_before_rewrite(paths, hf.file_stat(paths.extended).size)
  local ok, werr = rewrite_rows(paths, docs,
    updated_rows(paths, docs, jobs, rescans, log.secrets, error_keys, seen), comments_of)
  if not ok then return log:fail(tostring(werr)) end
  local errors = updated_errors(docs, jobs, rescans, seen.hashed, when, log.secrets)
  local metadata, stats = updated_metadata(paths, seen.stats, errors, when, used_token, token_user)
  ok, werr = rewrite_descriptions(paths, docs, progress, errors, metadata, comments_of)
  if not ok then return log:fail(tostring(werr)) end
  manifest.write_or_warn(paths, log) -- last: it records the files as rewritten
  update_database(paths, log, seen, database_was_current)
  local before, after, rescanned = count + need_token, stats.failed_files, 0
  for _ in pairs(rescans) do rescanned = rescanned + 1 end
  local summary = ("%d of %d failed rows now have a hash; %d still fail"):format(
    math.max(before - after, 0), before, after)
  if rescanned > 0 then summary = summary .. ("; %d repos scanned again at their new commit"):format(rescanned) end
  if need_token > 0 then summary = summary .. ("; %d need a token (not retried)"):format(need_token) end
  log:info("updated %s: %s", paths.extended, summary)
  if not o.quiet then print(("%s (%s)"):format(summary, paths.extended)) end
  local code, why = scanner.result_status(o.fail_on, scanner.result_counts(stats))
  if code ~= 0 then log:warn("%s (see %s); exit %d", why, paths.errors, code) end
  log:close()
  return code
end

return M
