-- `hfscan verify PATH...`: hashes local files (folders recursively, in parallel
-- on the native pool) and says for each whether it is a published file and
-- where. With --repo ID, checks a folder against that repo's files at its
-- latest scanned commit: missing, extra and changed files. Paths are compared
-- as bytes and shown in their text form (hfscan.db.names), as the files hold them.
local cli = require "hfscan.cli"
local database = require "hfscan.db.files"
local flags = require "hfscan.commands.flags"
local hf = require "hfscan"
local json = require "hfscan.json"
local names = require "hfscan.db.names"
local readonly = require "hfscan.db.readonly"
local targets = require "hfscan.scan.targets"
local verdict = require "hfscan.commands.verdict"

local M = {}

M.COMMAND = {
  name = "verify",
  usage = { "[--output-dir DIR] [--json] [-j N] [--all] PATH...",
    "[--output-dir DIR] [--json] --repo ID FOLDER" },
  about = [[
  Without --repo: each weight file (a target extension of the scan; every file
  with --all) is "known" (with every repo, path and commit where its hash was
  published) or "unknown"; other files are "not covered", and dangling links,
  FIFOs and sockets "skipped", neither changing the exit status: 0 when all
  judged files are known, else 1 (2: a path, the folder or its scans are
  missing, or a file could not be read).
  With --repo: FOLDER is compared with the repo's target files at its latest
  scanned commit; exit 0 when nothing is missing, extra or changed, else 1 (2:
  a file could not be read).]],
  flags = { flags.output_dir, flags.json, flags.workers,
    { "--repo", "ID", nil, "compare FOLDER with this repo's files" },
    { "--all", nil, nil, "judge every file, not only weight files (the scan's target extensions)" } },
}

-- Every file under the given paths, with its path relative to the folder it
-- was found in. A path given that is not there is missing (the caller's
-- mistake); inside a folder, a dangling link, a FIFO or a socket is skipped
-- (reported, and the run goes on).
local function collect(paths)
  local files = {}
  local function walk(path, relative)
    local kind = hf.file_type(path)
    if kind == "directory" then
      for _, name in ipairs(hf.list_dir(path) or {}) do
        walk(path .. "/" .. name, relative and (relative .. "/" .. name) or name)
      end
    elseif kind == "file" then
      files[#files + 1] = { path = path, relative = relative or path:match("[^/]*$") }
    elseif kind == nil and relative == nil then
      files[#files + 1] = { path = path, relative = path, missing = true }
    else
      files[#files + 1] = { path = path, relative = relative or path, skipped =
        kind == nil and "a link to nothing" or "not a regular file" }
    end
  end
  for _, p in ipairs(paths) do walk((p:gsub("/+$", "")), nil) end
  return files
end

-- Hashes the files that are to be judged (not skipped, not left uncovered).
local function hash_all(files, workers)
  local list, which = {}, {}
  for _, f in ipairs(files) do
    if not f.skipped and not f.not_covered then
      list[#list + 1], which[#which + 1] = f.path, f
    end
  end
  local results, err = hf.sha256_files(list, workers)
  if not results then return nil, err end
  for i, r in ipairs(results) do
    which[i].sha256, which[i].error = r.sha256, r.error
  end
  return files
end

-- Exit 0 when every judged file is known, 1 when some is unknown, 2 when some
-- could not be read: the answer is then incomplete, whatever the rest says.
local function verify_known(db, files, o)
  local unknown, unreadable, report = 0, 0, {}
  for _, f in ipairs(files) do
    local entry = { path = names.escape(f.path), sha256 = f.sha256 }
    if f.skipped then
      entry.status, entry.error = "skipped", f.skipped
    elseif f.not_covered then
      entry.status = "not covered"
    elseif not f.sha256 then
      entry.status, entry.error = "unreadable", names.escape(f.error) -- it names the path
      unreadable = unreadable + 1
    else
      local found = db:published(f.sha256)
      entry.status = #found > 0 and "known" or "unknown"
      entry.published = json.array(found)
      if #found == 0 then unknown = unknown + 1 end
    end
    report[#report + 1] = entry
  end
  if o.json then
    cli.print_json({ files = report, all_known = unknown == 0 and unreadable == 0 })
  else
    for _, e in ipairs(report) do
      if e.status == "known" then
        for _, p in ipairs(e.published) do
          print(("known    %s  %s/%s@%s%s"):format(e.path, p.repo_id, p.filename, p.commit_hash,
            verdict.text(p)))
        end
      elseif e.status == "unknown" then
        print(("unknown  %s  %s"):format(e.path, e.sha256))
      elseif e.status == "not covered" then
        print(("not covered  %s  (not a weight file: the database holds weight files; --all judges it)")
          :format(e.path))
      elseif e.status == "skipped" then
        print(("skipped  %s  (%s)"):format(e.path, e.error))
      else
        print(("error    %s  %s"):format(e.path, e.error))
      end
    end
  end
  if unreadable > 0 then return cli.EXIT_TROUBLE end
  return unknown == 0 and 0 or 1
end

local function verify_repo(db, files, o)
  local expected, commit, scan = db:latest_repo_files(o.repo)
  if not expected then
    return cli.fail("verify", o.repo .. " is in no scan of this folder")
  end
  local local_by_path = {}
  for _, f in ipairs(files) do
    if not f.skipped then local_by_path[f.relative] = f end
  end
  local report = { repo = o.repo, commit = commit, scan = scan, matching = {}, changed = {},
    missing = {}, extra = {}, unverifiable = {}, unreadable = {} }
  local published, verdicts = {}, {}
  for _, row in ipairs(expected) do
    published[row.raw_filename] = true
    verdicts[row.filename] = database.verdict_of(row)
    local f = local_by_path[row.raw_filename]
    if not f then
      table.insert(report.missing, row.filename)
    elseif database.is_failed(row.hash) then
      table.insert(report.unverifiable, row.filename)
    elseif not f.sha256 then
      table.insert(report.unreadable, { path = row.filename, error = names.escape(f.error) })
    elseif f.sha256 == row.hash then
      table.insert(report.matching, row.filename)
    else
      table.insert(report.changed, { path = row.filename, expected = row.hash, actual = f.sha256 })
    end
  end
  for _, f in ipairs(files) do
    if not f.skipped and not published[f.relative] and targets.is_target(f.relative) then
      table.insert(report.extra, names.escape(f.relative))
    end
  end
  for _, k in ipairs({ "matching", "changed", "missing", "extra", "unverifiable", "unreadable" }) do
    table.sort(report[k], function(a, b) return (a.path or a) < (b.path or b) end)
    json.array(report[k])
  end
  local ok = #report.changed == 0 and #report.missing == 0 and #report.extra == 0
  report.match = ok
  if next(verdicts) then report.verdicts = verdicts end
  if o.json then
    cli.print_json(report)
  else
    print(("%s at commit %s (scan %s)"):format(o.repo, commit, scan))
    local function verdict_of(path) return verdicts[path] and verdict.text(verdicts[path]) or "" end
    for _, p in ipairs(report.matching) do print("ok       " .. p .. verdict_of(p)) end
    for _, c in ipairs(report.changed) do
      print(("changed  %s  expected %s, found %s%s"):format(c.path, c.expected, c.actual, verdict_of(c.path)))
    end
    for _, p in ipairs(report.missing) do print("missing  " .. p) end
    for _, p in ipairs(report.extra) do print("extra    " .. p) end
    for _, p in ipairs(report.unverifiable) do print("no hash  " .. p .. " (the scan could not hash it)") end
    for _, u in ipairs(report.unreadable) do print(("error    %s  %s"):format(u.path, u.error)) end
  end
  if #report.unreadable > 0 then return cli.EXIT_TROUBLE end -- the answer is incomplete
  return ok and 0 or 1
end

function M.run(args)
  local o, paths = cli.parse_command(M.COMMAND, args)
  if not o then return paths end
  if #paths == 0 then return cli.command_usage_error("verify", "give files or folders") end
  if o.repo and (#paths ~= 1 or hf.file_type(paths[1]) ~= "directory") then
    return cli.command_usage_error("verify", "--repo needs exactly one folder")
  end
  local workers = o.j or hf.cpu_count()
  local files = collect(paths)
  for _, f in ipairs(files) do
    if f.missing then
      return cli.fail("verify", f.path .. ": No such file or directory", cli.EXIT_TROUBLE)
    end
  end
  -- Without --all only weight files are judged: a model folder's README and
  -- config are not in the database, and saying "unknown" of them means nothing.
  if not o.all and not o.repo then
    for _, f in ipairs(files) do
      if not f.skipped and not targets.is_target(f.relative) then f.not_covered = true end
    end
  end
  local hashed, err = hash_all(files, workers)
  if not hashed then
    return cli.fail("verify", err, cli.EXIT_TROUBLE)
  end
  local db, note = readonly.open(o.output_dir)
  if not db then
    return cli.fail("verify", note, cli.EXIT_TROUBLE)
  end
  if note then cli.warn("verify", note) end
  local status = o.repo and verify_repo(db, hashed, o) or verify_known(db, hashed, o)
  db:close()
  return status
end

return M
