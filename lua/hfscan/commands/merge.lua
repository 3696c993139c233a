-- `hfscan merge --output-dir OUT DIR...`: combines the latest scans of several
-- output folders (the shards of one scan, run on different machines) into one
-- scan in OUT, with its SQLite database. Shards hold disjoint repos, so this is
-- a concatenation: of the shards' bytes when their files are as hfscan wrote
-- them (hfscan.db.block_merge), else streamed repo block by repo block: memory
-- grows with repos, not rows.
local block_merge = require "hfscan.db.block_merge"
local cli = require "hfscan.cli"
local database = require "hfscan.db.files"
local flags = require "hfscan.commands.flags"
local hf = require "hfscan"
local manifest = require "hfscan.db.manifest"
local readonly = require "hfscan.db.readonly"
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

-- Appends one finished input to db, repo block by repo block, as its rows
-- stream (a scan writes each repo as one block); its errors, read whole (a few
-- per repo), go with their repo. Only finished repos: rows of a repo cut short
-- by a kill are not a result. Adds to totals { repos, rows, failed }. Raises
-- on a write that fails or a bad row.
local function append_scan(db, scan, totals)
  local done = scan.finished
  local errors_of = {}
  for _, e in ipairs(assert(scan_reader.errors(scan))) do
    if not done or done[e.repo_id] then
      errors_of[e.repo_id] = errors_of[e.repo_id] or {}
      table.insert(errors_of[e.repo_id], e)
    end
  end
  local written, current, block = {}, nil, {}
  local function write(repo, rows, commit)
    local ok, err = db:write_repo(rows, errors_of[repo] or {}, repo, commit)
    if not ok then error(err, 0) end
    if not written[repo] then totals.repos = totals.repos + 1 end
    written[repo] = true
    errors_of[repo] = nil
  end
  scan.each_row(function(r)
    if done and not done[r.repo_id] then return end
    if r.repo_id ~= current then
      if current then write(current, block, block[#block].commit_hash) end
      current, block = r.repo_id, {}
    end
    block[#block + 1] = r
    totals.rows = totals.rows + 1
    if database.is_failed(r.hash) then totals.failed = totals.failed + 1 end
  end)
  if current then write(current, block, block[#block].commit_hash) end
  -- Finished repos without a row: no target file, or only errors.
  local rest = {}
  for repo in pairs(done or {}) do
    if not written[repo] then rest[#rest + 1] = repo end
  end
  table.sort(rest)
  for _, repo in ipairs(rest) do write(repo, {}, scan.commits[repo]) end
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

-- The part's database when it holds the scan's rows as its extended CSV does
-- (current, and loaded through the whole file), as build_from_parts takes it;
-- else nil.
local function part_database(scan)
  local current = readonly.current(scan.paths.dir)
  if not current then return nil end
  local ok, _, loaded = pcall(current.loaded_through, current, scan.paths.ts)
  current:close()
  local csv = hf.file_stat(scan.paths.extended)
  if not (ok and csv and loaded == csv.size) then return nil end
  return { store_path = store.path(scan.paths.dir), ts = scan.paths.ts }
end

-- The merged folder's database: copied from the parts' own when every part
-- was copied by its bytes and each one's database holds it (and the folder has
-- no other scan), else built from the CSVs. Returns as store.build does.
local function build_database(out, paths, parameters, scans, all_by_bytes)
  local parts = {}
  if all_by_bytes and #(store.scans_in(out) or {}) == 1 then
    for _, scan in ipairs(scans) do parts[#parts + 1] = part_database(scan) end -- nil: not appended
  end
  if #parts == #scans then return store.build_from_parts(out, paths, parameters, parts) end
  return store.build(out)
end

function M.run(args)
  local o, dirs = cli.parse_command(M.COMMAND, args)
  if not o then return dirs end
  if #dirs == 0 then return cli.command_usage_error("merge", "give the folders to merge") end
  local scans = {}
  local repair, summary = cli.repairer("merge", o.repair)
  for i, dir in ipairs(dirs) do
    local scan, err = scan_reader.open(dir, repair)
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
  local problem = M.parts_problem(scans)
  if problem then return cli.fail("merge", problem, cli.EXIT_TROUBLE) end
  -- The rows in the order of the scans (shards hold disjoint repos).
  table.sort(scans, function(a, b) return a.paths.ts < b.paths.ts end)
  local out = o.output_dir
  local existed = hf.file_type(out) ~= nil
  local made, merr = hf.mkdir_p(out)
  if not made then
    return cli.fail("merge", merr)
  end
  local lock, lerr = database.lock(out)
  if not lock then
    return cli.fail("merge", lerr)
  end
  local extras = database.extra_columns_of(scans[1].parameters)
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
  db:write_in_bulk() -- one sync per file at the end: a merge cut short is removed or redone
  local totals = { repos = 0, rows = 0, failed = 0, by_bytes = 0 }
  local ok, werr = pcall(function()
    for _, scan in ipairs(scans) do
      -- By its bytes when its files are as hfscan wrote them, else row by row
      -- (which checks each row, and finds what is wrong with one).
      if not o.repair and block_merge.unfit(scan) == nil then
        block_merge.append(db, scan, totals)
        totals.by_bytes = totals.by_bytes + 1
      else
        append_scan(db, scan, totals)
      end
    end
  end)
  summary()
  if not ok then
    -- A bad row found on the way (or a full disk): the new scan is removed
    -- whole, so that a refused merge leaves no half scan behind.
    db:close()
    for _, path in pairs(db.paths) do
      if path ~= db.paths.dir and path ~= db.paths.ts then os.remove(path) end
    end
    lock:close()
    if not existed then
      os.remove(out .. "/.hfscan.lock")
      os.remove(out)
    end
    return cli.fail("merge", werr, cli.EXIT_TROUBLE)
  end
  db:close()
  -- Finished inputs make a finished scan: a later merge or --since can take it.
  local mok, merr = database.write_metadata(db.paths.metadata, {
    scan_timestamp = ts, status = "completed", merged_from = sources,
    total_models_scanned = totals.repos, total_files_processed = totals.rows,
    failed_files = totals.failed,
    endpoint = parameters.endpoint,
  })
  if not mok then
    return cli.fail("merge", ("cannot write %s: %s"):format(db.paths.metadata, tostring(merr)))
  end
  local wrote, merr2 = manifest.write(db.paths)
  if not wrote then return cli.fail("merge", merr2) end
  local built, berr = build_database(out, db.paths, parameters, scans, totals.by_bytes == #scans)
  if not built then cli.warn("merge", berr) end
  print(("%d repos, %d rows from %d scans (%d copied by their bytes, %d row by row): %s"):format(
    totals.repos, totals.rows, #scans, totals.by_bytes, #scans - totals.by_bytes, db.paths.extended))
  return 0
end

return M
