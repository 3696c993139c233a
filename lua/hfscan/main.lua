-- The entry point of the hfscan host: dispatches subcommands.
-- Returns a table whose main(...) gets the command-line words and returns an
-- exit status.
local M = {}

local commands = {
  hash = "hfscan.hash_command",
  db = "hfscan.db_command",
  lookup = "hfscan.lookup_command",
  verify = "hfscan.verify_command",
  diff = "hfscan.diff_command",
  merge = "hfscan.merge_command",
}

function M.main(...)
  local args = { ... }
  local name = args[1]
  if commands[name] then
    table.remove(args, 1)
    return require(commands[name]).run(args)
  end
  return require("hfscan.scan").run(args)
end

return M
