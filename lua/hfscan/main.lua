-- The entry point of the hfscan host: dispatches subcommands.
-- Returns a table whose main(...) gets the command-line words and returns an
-- exit status.
local M = {}

local commands = {
  hash = "hfscan.commands.hash",
  scan = "hfscan.commands.scan",
  db = "hfscan.commands.db",
  lookup = "hfscan.commands.lookup",
  verify = "hfscan.commands.verify",
  diff = "hfscan.commands.diff",
  merge = "hfscan.commands.merge",
}

function M.main(...)
  local args = { ... }
  local name = args[1]
  if commands[name] then
    table.remove(args, 1)
    return require(commands[name]).run(args)
  end
  return require(commands.scan).run(args)
end

return M
