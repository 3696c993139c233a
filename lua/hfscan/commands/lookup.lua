-- `hfscan lookup HASH...`: where each SHA-256 occurs in the database of an
-- output folder: every repo, path, commit and scan. Exit 1 if any is unknown.
local cli = require "hfscan.cli"
local flags = require "hfscan.commands.flags"
local hex = require "hfscan.hex"
local readonly = require "hfscan.db.readonly"

local M = {}

M.COMMAND = {
  name = "lookup",
  usage = { "[--output-dir DIR] [--json] HASH..." },
  about = [[
  Prints every repo, path, commit and scan where each SHA-256 occurs (case does
  not matter). A hash that occurs nowhere is reported as unknown; the exit status
  is then 1; no such folder, or one without a scan, exits 2.]],
  flags = { flags.output_dir, flags.json },
}

function M.run(args)
  local o, hashes = cli.parse_command(M.COMMAND, args)
  if not o then return hashes end
  if #hashes == 0 then return cli.command_usage_error("lookup", "give at least one SHA-256") end
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
  local results, unknown = {}, 0
  for _, h in ipairs(hashes) do
    local found = db:occurrences(h:lower())
    require("hfscan.json").array(found)
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
        print(("%s  %s  %s  commit %s  scan %s"):format(r.hash, f.repo_id, f.filename,
          f.commit_hash or "", f.scan))
      end
    end
  end
  return unknown > 0 and 1 or 0
end

return M
