-- `hfscan diff OLD NEW`: what changed between two scans (extended CSVs, or
-- output folders for their latest scans): files added, removed and changed
-- (same repo and path, another hash; or hashed now after failing, or failing now
-- after a hash), repos whose commit changed, and hashes
-- that moved between repos; with the Hub's verdicts recorded in both, files
-- whose verdict changed. CSV on stdout, or --json. Exit 0 when nothing
-- changed, 1 when something did (as diff(1)), 2 on trouble.
local cli = require "hfscan.cli"
local comparison = require "hfscan.db.comparison"
local database = require "hfscan.db.files"
local flags = require "hfscan.commands.flags"
local json = require "hfscan.json"
local readonly = require "hfscan.db.readonly"
local scan_reader = require "hfscan.db.reader"
local store = require "hfscan.db.store"

local M = {}

M.COMMAND = {
  name = "diff",
  usage = { "[--json] [--force] [--repair] OLD NEW" },
  about = [[
  OLD and NEW: extended CSVs, or output folders (their latest scans).
  CSV columns: change,repo_id,filename,old_hash,new_hash,old_commit,new_commit,moved_from,
  old_verdict,new_verdict
  change is added, removed, changed (another hash), hashed (FAILED_* before, a hash
  now), failed (a hash before, FAILED_* now), commit_changed, moved, or
  verdict_changed (both scans made with --security-status: the Hub's verdict of the
  file differs, e.g. safe then unsafe). Only repos both
  scans can speak of are compared (finished in it, or the scan completed); the others are
  counted on stderr as not compared (not_compared in --json). Scans that select different
  repos (endpoint, threshold, limit, shard, policy) are refused unless --force. A repo
  with a row whose hash or commit is malformed refuses the scan; --repair drops such
  rows (each reported) and leaves that repo not compared. Exit 0
  when the two scans hold the same files, 1 when they differ, 2 on trouble.]],
  flags = { flags.json,
    { "--force", nil, nil, "compare scans whose endpoint, threshold, limit, shard or policy differ" },
    flags.repair },
}

M.COLUMNS = { "change", "repo_id", "filename", "old_hash", "new_hash", "old_commit", "new_commit",
  "moved_from", "old_verdict", "new_verdict" }
M.KINDS = { "added", "removed", "changed", "hashed", "failed", "commit_changed", "moved",
  "verdict_changed" }

local function is_hash(h) return h and not database.is_failed(h) end

local function sorted_keys(set)
  local keys = {}
  for k in pairs(set) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- Whether a scan can speak of a repo: it finished it, or the scan completed
-- (then a repo it lacks is not in its selection). An interrupted or unfinished
-- scan says nothing of the repos it did not finish.
local function knows(scan, repo)
  -- Without the rows --repair dropped, its files would look removed or added.
  if scan.dropped[repo] then return false end
  if scan.status == "completed" then return true end
  if not scan.finished then return scan.commits[repo] ~= nil end -- an old scan without progress
  return scan.finished[repo] ~= nil
end

-- The repos of either scan that the other cannot speak of, sorted.
function M.not_compared(old, new)
  local repos = {}
  for _, scan in ipairs({ old, new }) do
    for repo in pairs(scan.commits) do
      if not (knows(old, repo) and knows(new, repo)) then repos[repo] = true end
    end
    for repo in pairs(scan.finished or {}) do
      if not (knows(old, repo) and knows(new, repo)) then repos[repo] = true end
    end
  end
  return sorted_keys(repos)
end

-- The changes from what the comparison holds (both scans loaded): a list of
-- records with M.COLUMNS, in the order of the CSV output.
local function changes_of(cmp, old, new)
  local changes = {}
  local function add(change, r, fields)
    local c = { change = change, repo_id = r.repo_id, filename = r.filename or "" }
    for k, v in pairs(fields or {}) do c[k] = v end
    changes[#changes + 1] = c
  end
  local new_side = cmp:new_side()
  for _, n in ipairs(new_side) do
    if n.old_hash == nil then
      add("added", n, { new_hash = n.hash, new_commit = n.commit_hash })
    elseif is_hash(n.hash) or is_hash(n.old_hash) then
      -- changed: another hash; hashed: a failure then, a hash now (a token, a
      -- better day); failed: a hash then, a failure now (gated since, too large).
      local change = not is_hash(n.old_hash) and "hashed" or not is_hash(n.hash) and "failed" or "changed"
      add(change, n, { old_hash = n.old_hash, new_hash = n.hash, old_commit = n.old_commit,
        new_commit = n.commit_hash })
    end
  end
  for _, o in ipairs(cmp:removed()) do
    add("removed", o, { old_hash = o.hash, old_commit = o.commit_hash })
  end
  for _, repo in ipairs(sorted_keys(new.commits)) do
    local before = old.commits[repo]
    if before and before ~= new.commits[repo] then
      add("commit_changed", { repo_id = repo }, { old_commit = before, new_commit = new.commits[repo] })
    end
  end
  -- A hash known in both scans now published at a place it was not: the same
  -- bytes elsewhere (a copy, a rename, a new upload of old weights). Such a
  -- place is a row NEW added or changed; moved_from names the places the hash
  -- left, or all its old places when it left none.
  local arrivals, hashes = {}, {}
  for _, n in ipairs(new_side) do
    if is_hash(n.hash) then
      arrivals[#arrivals + 1] = n
      hashes[#hashes + 1] = n.hash
    end
  end
  local old_places = cmp:old_places(hashes)
  local function place(r) return r.repo_id .. "/" .. r.filename end
  table.sort(arrivals, function(a, b)
    if a.hash ~= b.hash then return a.hash < b.hash end
    return place(a) < place(b)
  end)
  local from_of = {}
  for _, r in ipairs(arrivals) do
    local before = old_places[r.hash]
    if before then
      if not from_of[r.hash] then
        local left, all = {}, {}
        for _, p in ipairs(before) do
          all[#all + 1] = p.place
          if p.kept == 0 then left[#left + 1] = p.place end
        end
        from_of[r.hash] = table.concat(#left > 0 and left or all, ";")
      end
      add("moved", r, { old_hash = r.hash, new_hash = r.hash, new_commit = r.commit_hash,
        moved_from = from_of[r.hash] })
    end
  end
  for _, v in ipairs(cmp:verdict_changes()) do
    add("verdict_changed", v, { new_hash = v.hash, new_commit = v.commit_hash,
      old_verdict = v.old_verdict, new_verdict = v.new_verdict })
  end
  return changes
end

-- Loads a scan into side: from its folder's database when that is current
-- (SQLite to SQLite, the rows checked when stored), else its CSV streamed and
-- checked row by row (always with --repair, whose dropped rows must be known).
local function load(cmp, side, scan, repair)
  local current = not repair and readonly.current(scan.paths.dir)
  if current then
    current:close()
    cmp:load_from_database(side, scan, store.path(scan.paths.dir), scan.paths.ts)
  else
    cmp:load(side, scan)
  end
end

-- Loads both scans (hfscan.db.reader.open) into a comparison and returns the
-- changes as a list of records with M.COLUMNS, and the repos not compared
-- (finished in only one of the scans); or nil and a message.
function M.compare(old, new, repair)
  local cmp, err = comparison.new()
  if not cmp then return nil, err end
  local ok, result, skipped = pcall(function()
    load(cmp, "old", old, repair)
    load(cmp, "new", new, repair)
    cmp:index()
    local skipped = M.not_compared(old, new)
    cmp:skip(skipped)
    return changes_of(cmp, old, new), skipped
  end)
  cmp:close()
  if not ok then return nil, tostring(result) end
  return result, skipped
end

function M.run(args)
  local o, paths = cli.parse_command(M.COMMAND, args)
  if not o then return paths end
  if #paths ~= 2 then return cli.command_usage_error("diff", "give OLD and NEW") end
  local repair, summary = cli.repairer("diff", o.repair)
  local old, err = scan_reader.open(paths[1], repair)
  if not old then
    return cli.fail("diff", err, cli.EXIT_TROUBLE)
  end
  local new, nerr = scan_reader.open(paths[2], repair)
  if not new then
    return cli.fail("diff", nerr, cli.EXIT_TROUBLE)
  end
  local difference = database.selection_difference(old.parameters, new.parameters)
  if difference and not o.force then
    return cli.fail("diff", ("the two scans select different repos (%s): their difference is "
      .. "not a change; --force compares them anyway"):format(difference), cli.EXIT_TROUBLE)
  end
  local changes, not_compared = M.compare(old, new, o.repair)
  summary()
  if not changes then return cli.fail("diff", not_compared, cli.EXIT_TROUBLE) end
  if #not_compared > 0 then
    cli.warn("diff", ("%d repos are not compared: finished in only one of the scans%s "
      .. "(an interrupted, unfinished or limited scan says nothing of the others)"):format(#not_compared,
      o.repair and ", or with rows --repair dropped" or ""))
  end
  if o.json then
    local grouped = {}
    for _, kind in ipairs(M.KINDS) do
      grouped[kind] = json.array({})
    end
    for _, c in ipairs(changes) do table.insert(grouped[c.change], c) end
    grouped.old = old.paths.extended
    grouped.new = new.paths.extended
    grouped.not_compared = json.array(not_compared)
    cli.print_json(grouped)
  else
    cli.print_csv(M.COLUMNS, changes)
  end
  return #changes == 0 and 0 or 1
end

return M
