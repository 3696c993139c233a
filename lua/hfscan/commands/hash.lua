-- `hfscan hash`: SHA-256 sums of local files in sha256sum's format, computed in
-- parallel on the native pool, and `hfscan hash -c` to check them.
local cli = require "hfscan.cli"
local flags = require "hfscan.commands.flags"
local hf = require "hfscan"

local M = {}

M.COMMAND = {
  name = "hash",
  usage = { "[-j N] FILE...", "-c [--quiet|--status] [--strict] SUMFILE..." },
  about = [[
  Prints "<sha256>  <file>" lines, as sha256sum does; with -c, checks the files
  that SUMFILEs list against their sums, as sha256sum -c does. A FILE or SUMFILE
  of "-" is standard input.]],
  flags = { flags.workers,
    { "-c", nil, nil, "check the files a SUMFILE lists", alias = "--check" },
    { "--quiet", nil, nil, "with -c: do not print OK for each file checked" },
    { "--status", nil, nil, "with -c: print nothing; the exit status tells" },
    { "--strict", nil, nil, "with -c: exit 1 on improperly formatted lines too" } },
}

-- sha256sum marks names holding a backslash, newline or CR with a leading "\"
-- when it prints sums; its check report does so only for newlines and CRs.
local function escape_name(name, only_line_breaks)
  if not name:find(only_line_breaks and "[\n\r]" or "[\\\n\r]") then return name, "" end
  local escaped = name:gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub("\r", "\\r")
  return escaped, "\\"
end

local function unescape_name(name)
  return (name:gsub("\\(.)", { ["\\"] = "\\", n = "\n", r = "\r" }))
end

local function hash_stdin()
  local hasher <close> = hf.sha256_hasher()
  while true do
    local block = io.stdin:read(1 << 20)
    if not block then break end
    hasher:update(block)
  end
  return { sha256 = hasher:hexdigest() }
end

-- Hashes names in order; "-" is standard input. Returns results like sha256_files.
local function hash_all(names, workers)
  local files, positions = {}, {}
  for i, name in ipairs(names) do
    if name ~= "-" then
      files[#files + 1] = name
      positions[#files] = i
    end
  end
  local hashed, err = hf.sha256_files(files, workers)
  if not hashed then return nil, err end
  local results = {}
  for k, result in ipairs(hashed) do results[positions[k]] = result end
  for i, name in ipairs(names) do
    if name == "-" then results[i] = hash_stdin() end
  end
  return results
end

local function print_sums(names, workers)
  local results, err = hash_all(names, workers)
  if not results then
    cli.warn("hash", err)
    return 1
  end
  local status = 0
  for i, name in ipairs(names) do
    local r = results[i]
    if r.sha256 then
      local shown, mark = escape_name(name)
      io.stdout:write(mark, r.sha256, "  ", shown, "\n")
    else
      cli.warn("hash", r.error) -- "<path>: <reason>", as sha256sum says it
      status = 1
    end
  end
  return status
end

-- Parses one line of a sum file: GNU ("<hex>  name", "<hex> *name") or BSD
-- ("SHA256 (name) = <hex>"). Returns hex, name or nil.
local function parse_sum_line(line)
  line = line:gsub("\r$", "")
  local escaped = line:sub(1, 1) == "\\"
  if escaped then line = line:sub(2) end
  local hex, name = line:match("^(%x+) [ *](.+)$")
  if not hex then
    name, hex = line:match("^SHA256 %((.+)%) = (%x+)$")
  end
  if not hex or #hex ~= 64 then return nil end
  if escaped then name = unescape_name(name) end
  return hex:lower(), name
end

local function plural(n, one, many)
  return n == 1 and one or many
end

local function read_sum_lines(sumfile)
  if sumfile == "-" then return io.stdin:read("a") end
  local f, err = io.open(sumfile, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return text
end

local function check_sums(sumfile, options)
  local text, err = read_sum_lines(sumfile)
  if not text then
    cli.warn("hash", err)
    return 1
  end
  local entries, malformed = {}, 0
  for line in text:gmatch("([^\n]*)\n?") do
    if line ~= "" then
      local hex, name = parse_sum_line(line)
      if hex then
        entries[#entries + 1] = { hex = hex, name = name }
      else
        malformed = malformed + 1
      end
    end
  end
  if #entries == 0 then
    cli.warn("hash", sumfile .. ": no properly formatted SHA256 checksum lines found")
    return 1
  end
  local names = {}
  for i, e in ipairs(entries) do names[i] = e.name end
  local results, herr = hash_all(names, options.workers)
  if not results then
    cli.warn("hash", herr)
    return 1
  end
  local mismatched, unreadable = 0, 0
  for i, e in ipairs(entries) do
    local r = results[i]
    local shown, mark = escape_name(e.name, true)
    local verdict
    if not r.sha256 then
      cli.warn("hash", r.error)
      unreadable = unreadable + 1
      verdict = "FAILED open or read"
    elseif r.sha256 ~= e.hex then
      mismatched = mismatched + 1
      verdict = "FAILED"
    end
    if not options.status and (verdict or not options.quiet) then
      io.stdout:write(mark, shown, ": ", verdict or "OK", "\n")
    end
  end
  if not options.status then
    if malformed > 0 then
      cli.warn("hash", ("WARNING: %d %s improperly formatted"):format(
        malformed, plural(malformed, "line is", "lines are")))
    end
    if unreadable > 0 then
      cli.warn("hash", ("WARNING: %d listed %s could not be read"):format(
        unreadable, plural(unreadable, "file", "files")))
    end
    if mismatched > 0 then
      cli.warn("hash", ("WARNING: %d computed %s did NOT match"):format(
        mismatched, plural(mismatched, "checksum", "checksums")))
    end
  end
  local failed = mismatched > 0 or unreadable > 0 or (options.strict and malformed > 0)
  return failed and 1 or 0
end

function M.run(args)
  local options, files = cli.parse_command(M.COMMAND, args)
  if not options then return files end
  options.workers = options.j or hf.cpu_count()
  local check = options.c
  if #files == 0 then files = { "-" } end
  if not check then return print_sums(files, options.workers) end
  local status = 0
  for _, sumfile in ipairs(files) do
    status = math.max(status, check_sums(sumfile, options))
  end
  return status
end

return M
