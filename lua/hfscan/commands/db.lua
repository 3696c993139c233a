-- `hfscan db build [--output-dir DIR]`: (re)builds DIR/hfscan.sqlite from every
-- scan's extended CSV in the folder. Exit 0 when built, 2 when it could not be
-- (no such folder, no scan there, a bad row, another hfscan writing the folder).
local cli = require "hfscan.cli"
local database = require "hfscan.db.files"
local flags = require "hfscan.commands.flags"
local hf = require "hfscan"
local store = require "hfscan.db.store"

local M = {}

M.COMMAND = {
  name = "db",
  usage = { "build [--output-dir DIR]" },
  about = [[
  (Re)builds DIR/hfscan.sqlite from the extended CSVs of every scan in DIR.
  The CSVs are the source of truth; the database can always be rebuilt.
  Exit 2, nothing written, for no such folder, a folder without a scan, a CSV
  with a bad row, or another hfscan writing the folder.]],
  flags = { flags.output_dir },
}

function M.run(args)
  local o, rest = cli.parse_command(M.COMMAND, args)
  if not o then return rest end
  if rest[1] ~= "build" or #rest > 1 then
    return cli.command_usage_error("db", "expected 'hfscan db build'")
  end
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
  local rows, scans = store.build(dir)
  lock:close()
  if not rows then
    return cli.fail("db", scans, cli.EXIT_TROUBLE)
  end
  print(("%s: %d rows from %d scans"):format(store.path(dir), rows, scans))
  return 0
end

return M
