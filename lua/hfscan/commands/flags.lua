-- The flags several subcommands share, declared once (see hfscan.cli.index_flags).
local cli = require "hfscan.cli"
local database = require "hfscan.db.files"

local M = {}

M.output_dir = { "--output-dir", "DIR", database.DEFAULT_DIR, "the output folder" }

M.json = { "--json", nil, nil, "print the answer as JSON" }

-- The default is the machine's CPU count, which the command looks up itself.
M.workers = { "-j", "N", nil, "hash N files at once (default: the number of CPUs)",
  alias = "--jobs",
  check = function(v) return cli.parse_workers(v), "a whole number from 1 to 256" end }

M.repair = { "--repair", nil, nil,
  "drop rows with a malformed hash or commit (each reported on stderr) instead of refusing their file" }

return M
