-- `hfscan lookup HASH...`: where each SHA-256 occurs in the database of an
-- output folder: every repo, path, commit and scan, with the Hub's verdict
-- where the scan recorded it. Exit 1 if any is unknown. `lookup --flagged`:
-- the files the Hub flags, a blocklist feed.
local cli = require "hfscan.cli"
local database = require "hfscan.db.files"
local flags = require "hfscan.commands.flags"
local hex = require "hfscan.hex"
local json = require "hfscan.json"
local readonly = require "hfscan.db.readonly"
local verdict = require "hfscan.commands.verdict"

local M = {}

M.COMMAND = {
  name = "lookup",
  usage = { "[--output-dir DIR] [--json] HASH...", "--flagged [--output-dir DIR] [--json]" },
  about = [[
  Prints every repo, path, commit and scan where each SHA-256 occurs (case does
  not matter), with the Hub's verdict where the scan recorded it (--security-status).
  A hash that occurs nowhere is reported as unknown; the exit status is then 1; no
  such folder, or one without a scan, exits 2.
  --flagged prints, as CSV (or JSON), every file whose latest recorded verdict is
  unsafe, suspicious or caution: hash,repo_id,filename,commit_hash,security_status,
  av_virus,pickle_safety,pickle_imports,scan. Exit 0 (none flagged too); 2 when no
  scan of the folder recorded verdicts.]],
  flags = { flags.output_dir, flags.json,
    { "--flagged", nil, nil, "list the files the Hub flags instead of looking hashes up" } },
}

M.FLAGGED_COLUMNS = { "hash", "repo_id", "filename", "commit_hash" }
for _, c in ipairs(database.SECURITY_COLUMNS) do M.FLAGGED_COLUMNS[#M.FLAGGED_COLUMNS + 1] = c end
M.FLAGGED_COLUMNS[#M.FLAGGED_COLUMNS + 1] = "scan"

local function print_flagged(db, as_json)
  if db:scans_with_verdicts() == 0 then
    return nil, "no scan in this folder recorded the Hub's verdicts (scan with --security-status)"
  end
  local rows = db:flagged()
  if as_json then
    cli.print_json(json.array(rows))
    return true
  end
  cli.print_csv(M.FLAGGED_COLUMNS, rows)
  return true
end

function M.run(args)
  local o, hashes = cli.parse_command(M.COMMAND, args)
  if not o then return hashes end
  if o.flagged and #hashes > 0 then
    return cli.command_usage_error("lookup", "--flagged takes no hashes")
  end
  if #hashes == 0 and not o.flagged then return cli.command_usage_error("lookup", "give at least one SHA-256") end
  for _, h in ipairs(hashes) do
    if not hex.sha256(h) then
      return cli.command_usage_error("lookup", ("'%s' is not a SHA-256 (64 hex digits)"):format(h))
    end
  end
  local db, note = readonly.open(o.output_dir)
  if not db then
    return cli.fail("lookup", note, cli.EXIT_TROUBLE)
  end
  if note then cli.warn("lookup", note) end
  if o.flagged then
    local ok, ferr = print_flagged(db, o.json)
    db:close()
    if not ok then return cli.fail("lookup", ferr, cli.EXIT_TROUBLE) end
    return 0
  end
  local results, unknown = {}, 0
  for _, h in ipairs(hashes) do
    local found = db:occurrences(h:lower())
    json.array(found)
    results[#results + 1] = { hash = h:lower(), known = #found > 0, occurrences = found }
    if #found == 0 then unknown = unknown + 1 end
  end
  db:close()
  if o.json then
    cli.print_json(results)
  else
    for _, r in ipairs(results) do
      if not r.known then print(r.hash .. "  unknown") end
      for _, f in ipairs(r.occurrences) do
        print(("%s  %s  %s  commit %s  scan %s%s"):format(r.hash, f.repo_id, f.filename,
          f.commit_hash or "", f.scan, verdict.text(f)))
      end
    end
  end
  return unknown > 0 and 1 or 0
end

return M
