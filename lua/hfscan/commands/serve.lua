-- `hfscan serve`: the folder's database as an HTTP lookup service, read-only.
-- The server's threads (C, libmicrohttpd) answer every request from their own
-- SQLite connections; this script opens the database, computes the documents
-- (/info, /flagged, /openapi.json), watches the database file for a newer
-- scan (or SIGHUP) and publishes each new edition, and at SIGTERM or Ctrl-C
-- drains the requests in flight and exits 0.
local cli = require "hfscan.cli"
local database = require "hfscan.db.files"
local flags = require "hfscan.commands.flags"
local hf = require "hfscan"
local json = require "hfscan.json"
local openapi = require "hfscan.commands.serve_openapi"
local readonly = require "hfscan.db.readonly"
local store = require "hfscan.db.store"

local M = {}

-- Bounds on what clients may ask: hashlookup's bulk limit; a body that holds
-- that many hashes (67 bytes each in a compact list) with room for any layout;
-- the bodies being received at once, over all clients; one answer (a hash in
-- a great many places, or many such hashes asked at once).
M.MAX_HASHES = 10000
M.BODY_LIMIT = 1024 * 1024
M.BUFFERED_LIMIT = 64 * 1024 * 1024
M.ANSWER_LIMIT = 64 * 1024 * 1024
-- A test hook: HFSCAN_TEST_SERVE_LIMITS=<answer>:<buffered> lowers those two
-- limits (bytes), so that a test reaches them with a small database.
local function answer_and_buffered_limits()
  local answer, buffered = (os.getenv("HFSCAN_TEST_SERVE_LIMITS") or ""):match("^(%d+):(%d+)$")
  return tonumber(answer) or M.ANSWER_LIMIT, tonumber(buffered) or M.BUFFERED_LIMIT
end
-- How often the database file is looked at for a newer scan, and how long the
-- requests in flight get to finish at the end.
local WATCH_SECONDS = 1
local DRAIN_SECONDS = 10

local function parse_listen(text)
  local host, port = text:match("^%[([^%]]+)%]:(%d+)$")
  if not host then host, port = text:match("^([^:]+):(%d+)$") end
  port = math.tointeger(tonumber(port))
  if not host or not port or port > 65535 then return nil end
  return { host = host, port = port }
end

local function is_loopback(host)
  return host == "localhost" or host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

local function whole_number(low, high)
  return function(v)
    local n = math.tointeger(tonumber(v))
    return n and n >= low and n <= high and n or nil, ("a whole number from %d to %d"):format(low, high)
  end
end

M.COMMAND = {
  name = "serve",
  usage = { "[--output-dir DIR] [--listen HOST:PORT] [--threads N] [--client-timeout SECONDS]" },
  about = ([[
  Serves the folder's database over HTTP, read-only (hashlookup's conventions):
  GET /lookup/sha256/HASH, POST /bulk/sha256 {"hashes": [...]} (up to %d),
  GET /info, GET /repo/ORG/NAME, GET /flagged, GET /openapi.json. A newer scan in
  the folder is served without a restart (SIGHUP forces a reopen); SIGTERM or
  Ctrl-C finishes the requests in flight and exits 0. Exit 2 when the folder has
  no database to serve or the address cannot be listened on.]]):format(M.MAX_HASHES),
  flags = { flags.output_dir,
    { "--listen", "HOST:PORT", "127.0.0.1:8585", "the address to listen on ([v6]:PORT; port 0: any)",
      check = function(v) return parse_listen(v) and v, "HOST:PORT, such as 127.0.0.1:8585" end },
    { "--threads", "N", nil, "answer on N threads (default: the number of CPUs)",
      check = whole_number(1, 256) },
    { "--client-timeout", "SECONDS", 10, "close a connection silent for this long",
      check = whole_number(1, 3600) },
  },
}

-- What tells a newer database: the file's identity, size and time, and the
-- -wal's (a writer commits there) when it holds anything.
local function fingerprint(path)
  local main, wal = hf.file_stat(path), hf.file_stat(path .. "-wal")
  if not main then return "missing" end
  local text = ("%d/%d/%d"):format(main.inode, main.size, main.mtime_ns)
  if wal and wal.size > 0 then text = text .. ("+%d/%d"):format(wal.size, wal.mtime_ns) end
  return text
end

-- The documents of the database as it is: /info's, and /flagged's (nil when
-- no scan recorded verdicts).
local function documents_of(s, dir, generation)
  local counts, latest = s:summary()
  latest = latest or {}
  local meta = latest.timestamp and database.read_metadata(database.paths(dir, latest.timestamp).metadata)
  local flagged = s:scans_with_verdicts() > 0 and s:flagged() or nil
  return json.encode({
    rows = counts.rows, repos = counts.repos, scans = counts.scans,
    latest_scan = latest.timestamp, endpoint = latest.endpoint,
    status = latest.timestamp and (meta and meta.status or "running") or nil,
    security_status = latest.security_status == 1,
    flagged = flagged and #flagged or nil,
    generation = generation,
    ["hfscan-version"] = hf.version,
  }), flagged and json.encode(json.array(flagged)) or nil
end

-- The same in every edition.
local OPENAPI = openapi.document(M.MAX_HASHES, M.BODY_LIMIT)

-- The edition of the folder's database file as it is now, or nil and why not.
local function edition_of(dir, generation)
  local path = store.path(dir)
  local s, err = store.open_readonly(dir, path, "ro")
  if not s then return nil, err end
  if not (s.tables.files and s.tables.scans) or s.version < 2 then
    s:close()
    return nil, ("%s is from an older hfscan; rebuild it: hfscan db build --output-dir %s"):format(path, dir)
  end
  local ok, info, flagged = pcall(documents_of, s, dir, generation)
  local e = ok and { generation = generation, database_uri = store.read_only_uri(path),
    lookup_sql = s:occurrences_sql(), repo_sql = s:repo_files_sql(false), info = info,
    flagged = flagged, openapi = OPENAPI }
  s:close()
  if not ok then return nil, ("cannot read %s: %s"):format(path, tostring(info)) end
  return e
end

-- Makes sure the folder has a current database file (built from the CSVs when
-- missing or stale, as the other readers do). Returns true, or nil and why not.
local function ensure_database(dir)
  local s, note = readonly.open(dir)
  if not s then return nil, note end
  local in_memory = s.in_memory
  s:close()
  if in_memory then
    return nil, ("%s; serve answers from the database file: hfscan db build --output-dir %s makes it")
      :format(note, dir)
  end
  if note then cli.warn("serve", note) end
  return true
end

-- Publishes the folder's database as it is now; returns the generation served.
local function republish(server, dir, generation, replaced)
  local next_edition, err = edition_of(dir, generation + 1)
  if not next_edition then
    cli.warn("serve", ("still serving the database as it was: %s"):format(err))
    return generation
  end
  server:publish(next_edition)
  if replaced then
    cli.warn("serve", ("serving %s as it is now (generation %d)"):format(store.path(dir), generation + 1))
  end
  return generation + 1
end

-- Serves until SIGTERM or Ctrl-C. A scan writing the folder changes the
-- database at every repo: the documents are computed again at most once per
-- REFRESH_FACTOR times what computing them took (a fraction of a core at
-- millions of rows), and at once for SIGHUP.
local REFRESH_FACTOR = 10

local function serve(server, dir, edition)
  local path, generation = store.path(dir), edition.generation
  local seen, inode = fingerprint(path), (hf.file_stat(path) or {}).inode
  local changed, not_before = false, 0
  while true do
    local why = server:wait(WATCH_SECONDS)
    if why == "stop" then return end
    local now = fingerprint(path)
    changed = changed or now ~= seen
    seen = now
    if why == "reopen" or (changed and hf.now() >= not_before) then
      local started, current = hf.now(), (hf.file_stat(path) or {}).inode
      generation = republish(server, dir, generation, why == "reopen" or current ~= inode)
      inode, changed = current, false
      not_before = hf.now() + REFRESH_FACTOR * (hf.now() - started)
    end
  end
end

function M.run(args)
  local o, rest = cli.parse_command(M.COMMAND, args)
  if not o then return rest end
  if #rest > 0 then return cli.command_usage_error("serve", "unexpected argument " .. rest[1]) end
  local dir = o.output_dir
  local ok, err = ensure_database(dir)
  if not ok then return cli.fail("serve", err, cli.EXIT_TROUBLE) end
  local edition, eerr = edition_of(dir, 1)
  if not edition then return cli.fail("serve", eerr, cli.EXIT_TROUBLE) end
  local listen = parse_listen(o.listen)
  local answer_limit, buffered_limit = answer_and_buffered_limits()
  local server, serr = hf.serve({ address = listen.host, port = listen.port,
    threads = o.threads or hf.cpu_count(), client_timeout = o.client_timeout,
    body_limit = M.BODY_LIMIT, max_hashes = M.MAX_HASHES, buffered_limit = buffered_limit,
    answer_limit = answer_limit }, edition)
  if not server then return cli.fail("serve", serr, cli.EXIT_TROUBLE) end
  local shown = listen.host:find(":") and ("[%s]"):format(listen.host) or listen.host
  if not is_loopback(listen.host) then
    cli.warn("serve", ("listening beyond this machine on %s: it has no authentication"):format(shown))
  end
  print(("listening on http://%s:%d"):format(shown, server:port()))
  io.stdout:flush()
  serve(server, dir, edition)
  local cut = server:stop(DRAIN_SECONDS)
  -- Stopping is what SIGTERM asks of a service: a drained stop exits 0, not 130.
  hf.clear_interrupt()
  if cut > 0 then cli.warn("serve", ("stopped with %d request(s) unanswered after %d s"):format(cut, DRAIN_SECONDS)) end
  return 0
end

return M
