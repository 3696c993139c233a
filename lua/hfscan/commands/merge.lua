-- `hfscan merge --output-dir OUT DIR...`: combines the latest scans of several
-- output folders (the shards of one scan, run on different machines) into one
-- scan in OUT, with its SQLite database. Shards hold disjoint repos, so this is
-- a concatenation; a repo found in more than one input is taken from the input
-- whose scan is the most recent.
local cli = require "hfscan.cli"
local database = require "hfscan.db.files"
local flags = require "hfscan.commands.flags"
local hf = require "hfscan"
local manifest = require "hfscan.db.manifest"
local scan_reader = require "hfscan.db.reader"
local store = require "hfscan.db.store"

local M = {}

M.COMMAND = {
  name = "merge",
  usage = { "[--output-dir DIR] [--repair] FOLDER..." },
  about = [[
  Writes one scan into DIR holding the rows of the latest scan of every FOLDER,
  and builds DIR/hfscan.sqlite. A row whose hash or commit is malformed refuses
  its scan; --repair drops such rows (each reported) and merges the rest.]],
  flags = { flags.output_dir, flags.repair },
}

local function group_by_repo(scan)
  local repos, order = {}, {}
  local function repo(id)
    if not repos[id] then
      repos[id] = { rows = {}, errors = {}, commit = scan.commits[id] }
      order[#order + 1] = id
    end
    return repos[id]
  end
  -- Only finished repos: rows of a repo cut short by a kill are not a result.
  local done = scan.finished
  for _, r in ipairs(scan.rows) do
    if not done or done[r.repo_id] then table.insert(repo(r.repo_id).rows, r) end
  end
  for _, e in ipairs(scan.errors) do
    if not done or done[e.repo_id] then table.insert(repo(e.repo_id).errors, e) end
  end
  for id in pairs(done or scan.commits) do repo(id) end
  return repos, order
end

-- What every part of one scan shares: the selection (its shard aside), and the
-- extra columns, which the merged file has once for all.
local SHARED_KEYS = { "extra_columns" }
for _, key in ipairs(database.SELECTION_KEYS) do
  if key ~= "shard" then SHARED_KEYS[#SHARED_KEYS + 1] = key end
end

-- Why these scans are not the parts of one scan, or nil: they must share every
-- selection setting and, when sharded, be shards 0 to N-1 of one N, each once.
function M.parts_problem(scans)
  for i = 2, #scans do
    local difference = database.selection_difference(scans[1].parameters, scans[i].parameters,
      SHARED_KEYS)
    if difference then
      return ("%s and %s are not parts of one scan (%s)"):format(scans[1].paths.dir,
        scans[i].paths.dir, difference)
    end
  end
  local seen, n, whole = {}, nil, nil
  for _, scan in ipairs(scans) do
    local k, count = (scan.parameters.shard or ""):match("^(%d+)/(%d+)$")
    if k then
      if n and n ~= count then
        return ("shards of different counts: %s/%s and %s"):format(k, count, n)
      end
      n = count
      if seen[k] then return ("shard %s/%s is given twice (%s and %s)"):format(k, n, seen[k], scan.paths.dir) end
      seen[k] = scan.paths.dir
    else
      whole = scan.paths.dir
    end
  end
  if n and whole then return whole .. " is not a shard, but the others are" end
  if not n and #scans > 1 then
    return ("%s and %s are whole scans, not shards of one: diff them, or keep the newer")
      :format(scans[1].paths.dir, scans[2].paths.dir)
  end
  if not n then return nil end
  local missing = {}
  for k = 0, tonumber(n) - 1 do
    if not seen[tostring(k)] then missing[#missing + 1] = ("%d/%s"):format(k, n) end
  end
  if #missing > 0 then
    return ("shards missing: %s (a merge of some shards is not the whole scan)"):format(
      table.concat(missing, ", "))
  end
  return nil
end

function M.run(args)
  local o, dirs = cli.parse_command(M.COMMAND, args)
  if not o then return dirs end
  if #dirs == 0 then return cli.command_usage_error("merge", "give the folders to merge") end
  local scans = {}
  local repair, summary = cli.repairer("merge", o.repair)
  for i, dir in ipairs(dirs) do
    local scan, err = scan_reader.read(dir, repair)
    if not scan then
      return cli.fail("merge", err, cli.EXIT_TROUBLE)
    end
    -- A shard that is not done would leave its repos out without a trace.
    if scan.status ~= "completed" then
      io.stderr:write(("hfscan merge: %s: the scan is %s; finish it first with: hfscan --restart --output-dir %s\n")
        :format(dir, scan.status or "unfinished (no metadata yet)", scan.paths.dir))
      return 1
    end
    scans[i] = scan
  end
  summary()
  local problem = M.parts_problem(scans)
  if problem then return cli.fail("merge", problem, cli.EXIT_TROUBLE) end
  -- Oldest first, so that a later scan's copy of a repo wins.
  table.sort(scans, function(a, b) return a.paths.ts < b.paths.ts end)
  local out = o.output_dir
  local made, merr = hf.mkdir_p(out)
  if not made then
    return cli.fail("merge", merr)
  end
  local lock, lerr = database.lock(out)
  if not lock then
    return cli.fail("merge", lerr)
  end
  local merged, order = {}, {}
  local extras = database.extra_columns_of(scans[1].parameters)
  for _, scan in ipairs(scans) do
    local repos, scan_order = group_by_repo(scan)
    for _, id in ipairs(scan_order) do
      if not merged[id] then order[#order + 1] = id end
      merged[id] = repos[id]
    end
  end
  local parameters = {}
  for k, v in pairs(scans[1].parameters) do parameters[k] = v end
  local sources = {}
  for _, s in ipairs(scans) do sources[#sources + 1] = s.paths.extended end
  parameters.shard = nil
  parameters.command_line = "hfscan merge " .. table.concat(dirs, " ")
  parameters.merged_from = table.concat(sources, ";")
  local ts = database.fresh_timestamp(out)
  local db, derr = database.create(out, ts, parameters, extras)
  if not db then
    return cli.fail("merge", derr)
  end
  local rows, failed = 0, 0
  for _, id in ipairs(order) do
    local r = merged[id]
    local ok, werr = db:write_repo(r.rows, r.errors, id, r.commit)
    if not ok then
      db:close()
      return cli.fail("merge", werr)
    end
    rows = rows + #r.rows
    for _, row in ipairs(r.rows) do
      if database.is_failed(row.hash) then failed = failed + 1 end
    end
  end
  db:close()
  -- Finished inputs make a finished scan: a later merge or --since can take it.
  local mok, merr = database.write_metadata(db.paths.metadata, {
    scan_timestamp = ts, status = "completed", merged_from = sources,
    total_models_scanned = #order, total_files_processed = rows, failed_files = failed,
    endpoint = parameters.endpoint,
  })
  if not mok then
    return cli.fail("merge", ("cannot write %s: %s"):format(db.paths.metadata, tostring(merr)))
  end
  local wrote, werr = manifest.write(db.paths)
  if not wrote then return cli.fail("merge", werr) end
  local built, berr = store.build(out)
  if not built then cli.warn("merge", berr) end
  print(("%d repos, %d rows from %d scans: %s"):format(#order, rows, #scans, db.paths.extended))
  return 0
end

return M
