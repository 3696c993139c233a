-- The entry point of the hfscan host: dispatches subcommands, and answers the
-- global --help and --version. Returns a table whose main(...) gets the
-- command-line words and returns an exit status.
local hf = require "hfscan"

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

M.USAGE = [[
usage: hfscan [options]
       hfscan hash [-j N] FILE... | hfscan hash -c SUMFILE
       hfscan --script FILE [ARGS...] | hfscan repl
       hfscan lookup HASH... | hfscan verify PATH... | hfscan diff OLD NEW
       hfscan merge DIR... | hfscan db build   (each takes --output-dir DIR; --help for more)

Builds a database of the SHA-256 hashes of model files on the Hugging Face Hub.]]

M.HOST_OPTIONS = "host options (before the others): --scripts-dir DIR (also HFSCAN_SCRIPTS_DIR)"

-- Prints the answer to a global flag ("--help": every command, then the scan's
-- flags; "--version"). Returns the exit status.
function M.global(flag)
  if flag == "--version" then
    print("hfscan " .. hf.version)
  else
    print(table.concat({ M.USAGE, "", require("hfscan.scan.options").flag_table(), "",
      M.HOST_OPTIONS }, "\n"))
  end
  return 0
end

function M.main(...)
  local args = { ... }
  local name = args[1]
  if name == "--help" or name == "--version" then return M.global(name) end
  if commands[name] then
    table.remove(args, 1)
    return require(commands[name]).run(args)
  end
  return require(commands.scan).run(args)
end

return M
