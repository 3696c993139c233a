-- The scan command: argv in, exit status out. Parses the scan's options, checks
-- what can be checked before anything is written (the output folder, the
-- token, --since and --policy), takes the folder's lock, and runs a new scan,
-- a restart or an update.
local cli = require "hfscan.cli"
local clock = require "hfscan.clock"
local database = require "hfscan.db.files"
local hf = require "hfscan"
local identity = require "hfscan.hub.identity"
local logging = require "hfscan.log"
local restart = require "hfscan.scan.restart"
local scan_options = require "hfscan.scan.options"
local scanner = require "hfscan.scan.scanner"
local since = require "hfscan.scan.since"

local M = {}

-- Checks the output folder: a file there is a usage error; a missing one is made.
function M.prepare_output_dir(dir)
  local kind = hf.file_type(dir)
  if kind and kind ~= "directory" then
    return nil, ("--output-dir: '%s' exists and is not a directory"):format(dir)
  end
  return true
end

function M.run(args)
  local o, err = scan_options.parse(args)
  if not o then return cli.usage_error(err, "hfscan --help") end
  -- Among the scan's flags too (hfscan --limit 3 --help), the global ones.
  if o.help or o.version then return require("hfscan.main").global(o.help and "--help" or "--version") end
  local ok, derr = M.prepare_output_dir(o.output_dir)
  if not ok then return cli.usage_error(derr, "hfscan --help") end
  local resuming = o.restart or o.restart_from or o.update_failed_hashes
  -- A path that names nothing is the same mistake for every flag (--since says so too).
  if o.restart_from and hf.file_type(o.restart_from) ~= "file" then
    return cli.fail(nil, ("--restart-from: %s: No such file or directory"):format(o.restart_from),
      cli.EXIT_USAGE)
  end
  -- The token is checked before anything is written: a refused one is a usage
  -- error. A resumed scan checks it at its own endpoint, which its files name.
  if not resuming then
    local status = identity.check_or_refuse(o, o.endpoint)
    if status then return status end
    -- What --since and --policy name is checked before the folder is made.
    local extra_columns, err, status = since.load_since_and_policy(o)
    if not extra_columns then
      return cli.fail(nil, err, status)
    end
    o.extra_columns = extra_columns
    local made, merr = hf.mkdir_p(o.output_dir)
    if not made then
      return cli.fail(nil, merr)
    end
  end
  -- Nothing to resume is trouble (exit 2), found before the lock: an empty or
  -- missing folder is left as it was.
  if resuming then
    local _, lerr0 = database.locate(o.output_dir, o.restart_from)
    if lerr0 then
      return cli.fail(nil, (o.update_failed_hashes and "cannot update: " or "cannot resume: ") .. lerr0,
        cli.EXIT_TROUBLE)
    end
  end
  -- One writer per folder: a second scan, restart or update waits for none and
  -- refuses, naming the one at work.
  local lock_dir = o.restart_from and database.split_path(o.restart_from) or o.output_dir
  local lock, lerr = database.lock(lock_dir)
  if not lock then
    return cli.fail(nil, lerr)
  end
  local status
  if resuming then
    status = restart.run(o)
  else
    status = M.new_scan(o)
  end
  lock:close()
  return status
end

-- A new scan of o into a fresh set of files in o.output_dir. Returns the exit status.
function M.new_scan(o)
  local log = logging.new { quiet = o.quiet }
  log:add_secret(o.token)
  local ts = database.fresh_timestamp(o.output_dir)
  local scan_start = clock.from_stamp(ts)
  local db, derr2 = database.create(o.output_dir, ts, scanner.parameters(o, scan_start),
    o.extra_columns)
  if not db then
    return cli.fail(nil, derr2)
  end
  log:open_file(db.paths.log)
  database.maybe_crash("start")
  return scanner.execute(o, db, ts, log, scanner.new_stats(), { scan_start = scan_start })
end

return M
