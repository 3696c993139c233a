-- The entry point of the hfscan host: dispatches subcommands.
-- Returns a table whose main(...) gets the command-line words and returns an
-- exit status.
local cli = require "hfscan.cli"

local M = {}

local commands = {
  hash = "hfscan.hash_command",
}

local function usage()
  return table.concat({
    "usage: hfscan [options]                 scan the Hub (see the options below)",
    "       hfscan hash [-j N] FILE...       print SHA-256 sums like sha256sum",
    "       hfscan hash -c SUMFILE           check sums like sha256sum -c",
    "       hfscan --script FILE [ARGS...]   run a Lua script with the hfscan modules",
    "       hfscan repl | -i                 interactive Lua prompt (native module as `hf`)",
    "",
    "host options (before anything else):",
    "  --scripts-dir DIR   load bundled modules from DIR first (also HFSCAN_SCRIPTS_DIR)",
    "",
    "options:",
    "  --help              show this help",
    "  --version           show the version",
  }, "\n")
end

function M.main(...)
  local args = { ... }
  local name = args[1]
  if commands[name] then
    table.remove(args, 1)
    return require(commands[name]).run(args)
  end
  if name == "--help" or name == "-h" or name == nil then
    print(usage())
    return 0
  end
  if name == "--version" then
    print("hfscan " .. require("hfscan").version)
    return 0
  end
  return cli.usage_error("unknown option '" .. name .. "'", "hfscan --help")
end

return M
