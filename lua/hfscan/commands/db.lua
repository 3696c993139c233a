-- `hfscan db build [--output-dir DIR] [--repair]`: (re)builds DIR/hfscan.sqlite
-- from every scan's extended CSV in the folder. Exit 0 when built, 2 when it
-- could not be (no such folder, no scan there, a bad row, another hfscan
-- writing the folder).
-- `hfscan db check [--output-dir DIR] [--all]`: checks the latest scan (every
-- scan) against its manifest, and every row.
local cli = require "hfscan.cli"
local csvfile = require "hfscan.db.csv"
local database = require "hfscan.db.files"
local flags = require "hfscan.commands.flags"
local hf = require "hfscan"
local manifest = require "hfscan.db.manifest"
local store = require "hfscan.db.store"

local M = {}

local ALL = { "--all", nil, nil, "check: every scan in DIR, not only the latest" }

M.COMMAND = {
  name = "db",
  usage = { "build [--output-dir DIR] [--repair]", "check [--output-dir DIR] [--all]" },
  about = [[
  build: (re)builds DIR/hfscan.sqlite from the extended CSVs of every scan in DIR.
  The CSVs are the source of truth; the database can always be rebuilt. A row whose
  hash or commit is malformed refuses its file, unless --repair drops such rows.
  Exit 2, nothing written, for no such folder, a folder without a scan, a CSV
  with a bad row, or another hfscan writing the folder.
  check: compares the latest scan's files (every scan's with --all) with its
  manifest (size and SHA-256 of each, as hfscan last wrote them) and checks every
  row. Exit 0 when all match, 1 when a file was changed, truncated or grew, or holds
  a bad row (each named), 2 on trouble (no scan, no manifest).]],
  flags = { flags.output_dir, flags.repair, ALL },
}

-- The flags that belong to one subcommand only.
local ONLY = { repair = "build", all = "check" }

local function build(o)
  local dir = o.output_dir
  if hf.file_type(dir) ~= "directory" then
    return cli.fail("db", dir .. ": no such folder", cli.EXIT_TROUBLE)
  end
  -- Without a scan there is nothing to build: an empty database would call
  -- every hash unknown.
  local found, ferr = database.locate(dir)
  if not found then return cli.fail("db", ferr, cli.EXIT_TROUBLE) end
  local lock, lerr = database.lock(dir)
  if not lock then
    return cli.fail("db", lerr, cli.EXIT_TROUBLE)
  end
  local repair, summary = cli.repairer("db", o.repair)
  local rows, scans = store.build(dir, nil, repair)
  lock:close()
  summary()
  if not rows then
    return cli.fail("db", scans, cli.EXIT_TROUBLE)
  end
  print(("%s: %d rows from %d scans"):format(store.path(dir), rows, scans))
  return 0
end

-- The bad rows of a scan's basic and extended files ("path:line: problem"),
-- streamed, and those of the two that cannot be read as an hfscan CSV at all.
local function bad_rows(paths)
  local found, unreadable = {}, {}
  local function note(text) found[#found + 1] = text end
  for _, kind in ipairs({ "basic", "extended" }) do
    local doc, err = csvfile.open(paths[kind], database.columns_of(kind))
    local ok = doc ~= nil
    if doc then
      ok, err = pcall(function()
        for row, line in doc.next do
          database.screen_row(doc.path, line, csvfile.record(doc.header, row), note)
        end
      end)
    end
    if not ok then unreadable[#unreadable + 1] = err end
  end
  return found, unreadable
end

local function count(n, what) return ("%d %s%s"):format(n, what, n == 1 and "" or "s") end

-- Checks one scan, printing what differs. Returns the exit status.
local function check_scan(paths)
  local report, err = manifest.check(paths)
  if not report then return cli.fail("db", err, cli.EXIT_TROUBLE) end
  local bad, unreadable = bad_rows(paths)
  for _, list in ipairs({ report.differences, unreadable, bad }) do
    for _, line in ipairs(list) do print(line) end
  end
  if #report.differences + #unreadable + #bad == 0 then
    print(("%s: all %d files match the manifest; every row is well-formed"):format(paths.extended,
      report.files))
    return 0
  end
  print(("%s: %d of %s differ from the manifest; %s%s"):format(paths.extended,
    #report.differences, count(report.files, "file"), count(#bad, "bad row"),
    #unreadable > 0 and ("; " .. count(#unreadable, "CSV") .. " not readable") or ""))
  return 1
end

local function check(o)
  local scans
  if o.all then
    local err
    scans, err = store.scans_in(o.output_dir)
    if not scans then return cli.fail("db", err, cli.EXIT_TROUBLE) end
  end
  if not scans or #scans == 0 then
    local latest, err = database.locate(o.output_dir)
    if not latest then return cli.fail("db", err, cli.EXIT_TROUBLE) end
    scans = { latest }
  end
  local status = 0
  for _, paths in ipairs(scans) do status = math.max(status, check_scan(paths)) end
  return status
end

local SUBCOMMANDS = { build = build, check = check }

function M.run(args)
  local o, rest = cli.parse_command(M.COMMAND, args)
  if not o then return rest end
  local run = SUBCOMMANDS[rest[1]]
  if not run or #rest > 1 then
    return cli.command_usage_error("db", "expected 'hfscan db build' or 'hfscan db check'")
  end
  for key, only in pairs(ONLY) do
    if o[key] and rest[1] ~= only then
      return cli.command_usage_error("db", ("--%s is for 'hfscan db %s'"):format(key, only))
    end
  end
  return run(o)
end

return M
