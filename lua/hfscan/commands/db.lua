-- `hfscan db build [--output-dir DIR]`: (re)builds DIR/hfscan.sqlite from every
-- scan's extended CSV in the folder.
local cli = require "hfscan.cli"
local database = require "hfscan.db.files"
local flags = require "hfscan.commands.flags"
local store = require "hfscan.db.store"

local M = {}

M.COMMAND = {
  name = "db",
  usage = { "build [--output-dir DIR]" },
  about = [[
  (Re)builds DIR/hfscan.sqlite from the extended CSVs of every scan in DIR.
  The CSVs are the source of truth; the database can always be rebuilt.]],
  flags = { flags.output_dir },
}

function M.run(args)
  local o, rest = cli.parse_command(M.COMMAND, args)
  if not o then return rest end
  if rest[1] ~= "build" or #rest > 1 then
    return cli.command_usage_error("db", "expected 'hfscan db build'")
  end
  local dir = o.output_dir
  local lock, lerr = database.lock(dir)
  if not lock then
    return cli.fail("db", lerr)
  end
  local rows, scans = store.build(dir)
  lock:close()
  if not rows then
    return cli.fail("db", scans)
  end
  print(("%s: %d rows from %d scans"):format(store.path(dir), rows, scans))
  return 0
end

return M
