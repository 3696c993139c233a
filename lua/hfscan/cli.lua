-- Small helpers shared by the command-line front ends: usage errors and messages.
local M = {}

M.EXIT_USAGE = 2
-- A command that could not give its answer (no such folder or file, no scan, an
-- unreadable database): not "unknown" (1), which is an answer.
M.EXIT_TROUBLE = 2

-- Prints "hfscan: <message>" and a hint, and returns the usage exit status.
function M.usage_error(message, help_command)
  io.stderr:write("hfscan: ", message, "\n")
  if help_command then
    io.stderr:write("Try '", help_command, "' for more information.\n")
  end
  return M.EXIT_USAGE
end

-- Prints "hfscan <command>: <message>" (or "hfscan: <message>" for the scan,
-- command nil) on stderr.
function M.warn(command, message)
  io.stderr:write("hfscan", command and (" " .. command) or "", ": ", tostring(message), "\n")
end

-- A command's failure: the message, as warn prints it; returns status (default 1).
function M.fail(command, message, status)
  M.warn(command, message)
  return status or 1
end

-- "--max-workers" -> "max_workers", "-j" -> "j": the option's key in a parsed table.
function M.key_of(name) return (name:gsub("^%-%-?", ""):gsub("-", "_")) end

-- Walks command-line arguments, "--name value", "--name=value" and "-jN" alike.
-- takes(name) tells what an option is: "flag", the name of the value it needs
-- ("N", "DIR"), or nil for an unknown option.
-- on_option(name, value) gets each option (value nil for a flag) and returns true
-- or nil and a message; on_positional(arg) gets the rest (nil: none are taken).
-- After "--" everything is positional. Returns true, or nil and a message naming
-- the offending argument.
function M.walk(args, takes, on_option, on_positional)
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-?[%w-]+)=(.*)$")
    if not name then
      -- A short option with its value attached, as sha256sum and make take -j4.
      local short, attached = a:match("^(%-%a)(.+)$")
      if short and takes(a) == nil and takes(short) and takes(short) ~= "flag" then
        name, inline = short, attached
      end
    end
    name = name or a
    local kind = takes(name)
    local value, ok, err = inline, true, nil
    if a == "--" and on_positional then
      for j = i + 1, #args do on_positional(args[j]) end
      return true
    elseif kind == "flag" then
      if inline then return nil, name .. " takes no value" end
      ok, err = on_option(name, nil)
    elseif kind then
      if value == nil then
        i = i + 1
        value = args[i]
        -- "--output-dir --quiet" forgot the folder: it must not make one named
        -- "--quiet", nor "--token --quiet" send that as the token.
        if value and value:sub(1, 1) == "-" and takes(value:match("^(%-%-?[%w-]+)") or value) then
          return nil, ("%s needs %s, not the option '%s' (write %s=VALUE for a value that starts with -)")
            :format(name, kind, value, name)
        end
      end
      if value == nil or value == "" then return nil, ("%s needs %s"):format(name, kind) end
      ok, err = on_option(name, value)
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, ("unknown option '%s'"):format(a)
    elseif not on_positional then
      return nil, ("unexpected argument '%s'"):format(a)
    else
      on_positional(a)
    end
    if not ok then return nil, err end
    i = i + 1
  end
  return true
end

-- Flags are declared once, with what --help says of them, in the shape of the
-- scan's settings (hfscan.scan.options): { "--name", ARG, default, help line,
-- check = fn, alias = "-x" }. ARG names the value (nil: a flag); check(value)
-- returns the converted value, or nil and what was expected (no check: any
-- text). Returns the declarations by name, aliases included, each with its key.
function M.index_flags(flags)
  local by_name = {}
  for _, f in ipairs(flags) do
    f.key = M.key_of(f[1])
    by_name[f[1]] = f
    if f.alias then by_name[f.alias] = f end
  end
  return by_name
end

-- Parses args against declared flags. on_positional as for walk (nil: none are
-- taken). Returns the options (keys as key_of makes them, defaults filled in)
-- and the set of keys the command line gave; or nil and a message.
function M.parse_flags(args, flags, on_positional)
  local by_name = M.index_flags(flags)
  local o, given = {}, {}
  local function takes(name)
    local f = by_name[name]
    return f and (f[2] or "flag")
  end
  local function on_option(name, value)
    local f = by_name[name]
    if value ~= nil and f.check then
      local converted, expected = f.check(value)
      if converted == nil then return nil, ("%s: '%s' is not %s"):format(name, value, expected) end
      value = converted
    end
    o[f.key] = value == nil or value
    given[f.key] = true
    return true
  end
  local ok, err = M.walk(args, takes, on_option, on_positional)
  if not ok then return nil, err end
  for _, f in ipairs(flags) do
    if o[f.key] == nil and f[3] ~= nil then o[f.key] = f[3] end
  end
  return o, given
end

-- The value of -j: a whole number of threads from 1 to 256, or nil.
function M.parse_workers(value)
  local n = math.tointeger(tonumber(value))
  if not n or n < 1 or n > 256 then return nil end
  return n
end

-- A subcommand's usage error: "hfscan: <command>: <message>", then the hint to
-- its --help. Returns the usage exit status.
function M.command_usage_error(command, message)
  return M.usage_error(command .. ": " .. message, "hfscan " .. command .. " --help")
end

local HELP_FLAG = { "--help", nil, nil, "show this help" }

-- A subcommand's help, made from its declaration: { name, usage = { lines after
-- "hfscan NAME" }, about = text, flags = { declarations } }.
function M.help(command)
  local lines = {}
  for i, usage in ipairs(command.usage) do
    lines[i] = (i == 1 and "usage: " or "       ") .. "hfscan " .. command.name .. " " .. usage
  end
  lines[#lines + 1] = command.about
  lines[#lines + 1] = "options:"
  for _, f in ipairs(command.flags) do lines[#lines + 1] = M.flag_line(f) end
  lines[#lines + 1] = M.flag_line(HELP_FLAG)
  return table.concat(lines, "\n")
end

-- One flag's line of a subcommand's help.
function M.flag_line(f)
  local names = f[1] .. (f.alias and (", " .. f.alias) or "") .. (f[2] and (" " .. f[2]) or "")
  local default = f[3] ~= nil and (" (default " .. tostring(f[3]) .. ")") or ""
  return ("  %-18s %s%s"):format(names, f[4], default)
end

-- Parses a subcommand's arguments against its declaration (see help; --help is
-- added) and deals with --help and usage errors. Returns options, positionals;
-- or nil and the exit status, with the help or the error already printed.
function M.parse_command(command, args)
  local flags = table.move(command.flags, 1, #command.flags, 1, {})
  flags[#flags + 1] = HELP_FLAG
  local positionals = {}
  local options, err = M.parse_flags(args, flags,
    function(a) positionals[#positionals + 1] = a end)
  if not options then return nil, M.command_usage_error(command.name, err) end
  if options.help then
    print(M.help(command))
    return nil, 0
  end
  return options, positionals
end

-- What the readers get for --repair (see hfscan.db.files.screen_row), or nil
-- without it: a function that reports each row dropped on stderr, and a second
-- that reports their count, once the command has read everything.
function M.repairer(command, given)
  if not given then return nil, function() end end
  local dropped = 0
  local function drop(text)
    dropped = dropped + 1
    M.warn(command, "--repair: dropped " .. text)
  end
  local function summary()
    if dropped > 0 then
      M.warn(command, ("--repair: dropped %d malformed row%s"):format(dropped, dropped == 1 and "" or "s"))
    end
  end
  return drop, summary
end

-- Writes a value as JSON on stdout.
function M.print_json(value)
  io.stdout:write(require("hfscan.json").encode(value), "\n")
end

-- Writes records as CSV on stdout: a header of columns, then each record's
-- fields in that order (a missing one empty).
function M.print_csv(columns, records)
  local format_row = require("hfscan").csv_format_row
  io.stdout:write(format_row(columns))
  for _, r in ipairs(records) do
    local fields = {}
    for i, c in ipairs(columns) do fields[i] = r[c] or "" end
    io.stdout:write(format_row(fields))
  end
end

return M
