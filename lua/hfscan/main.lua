-- The entry point of the hfscan host: dispatches subcommands, and answers the
-- global --help and --version. Returns a table whose main(...) gets the
-- command-line words and returns an exit status.
local hf = require "hfscan"

local M = {}

-- The subcommands, in the order of the global --help.
local SUBCOMMANDS = { "hash", "lookup", "verify", "diff", "merge", "db", "serve" }

local commands = { scan = "hfscan.commands.scan" }
for _, name in ipairs(SUBCOMMANDS) do commands[name] = "hfscan.commands." .. name end

-- The global usage: the scan's, each subcommand's own usage lines, the scripts'.
local function usage()
  local lines = { "usage: hfscan [options]" }
  for _, name in ipairs(SUBCOMMANDS) do
    for _, u in ipairs(require(commands[name]).COMMAND.usage) do
      lines[#lines + 1] = "       hfscan " .. name .. " " .. u
    end
  end
  lines[#lines + 1] = "       hfscan --script FILE [ARGS...]"
  lines[#lines + 1] = "       hfscan repl [--endpoint URL] [--token TOKEN | --no-token]"
  lines[#lines + 1] = "Each subcommand takes --help. Builds a database of the SHA-256 hashes of model"
  lines[#lines + 1] = "files on the Hugging Face Hub."
  lines[#lines + 1] = "Exit status of a scan: 0 completed; 1 incomplete or failed (--restart goes on);"
  lines[#lines + 1] = "2 usage error, nothing written; 3 completed, with downloads that differ from the"
  lines[#lines + 1] = "Hub's claims (hash_mismatch); 4 completed, with what --fail-on failed or errors"
  lines[#lines + 1] = "names; 130 interrupted. Of lookup, verify, diff and db: 0 all found or matching;"
  lines[#lines + 1] = "1 some unknown or different; 2 trouble (no such folder or scan, an unreadable"
  lines[#lines + 1] = "file, a bad argument)."
  return table.concat(lines, "\n")
end

M.HOST_OPTIONS = "host options (before the others): --scripts-dir DIR (also HFSCAN_SCRIPTS_DIR)"

-- Prints the answer to a global flag ("--help": every command, then the scan's
-- flags; "--version"). Returns the exit status.
function M.global(flag)
  if flag == "--version" then
    print("hfscan " .. hf.version)
  else
    print(table.concat({ usage(), "", require("hfscan.scan.options").flag_table(), "",
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
