-- Small helpers shared by the command-line front ends: usage errors and messages.
local M = {}

M.EXIT_USAGE = 2

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

-- Walks command-line arguments, "--name value" and "--name=value" alike.
-- takes(name) tells what an option is: "flag", a description of the value it
-- needs ("a whole number of models"), or nil for an unknown option.
-- on_option(name, value) gets each option (value nil for a flag) and returns true
-- or nil and a message; on_positional(arg) gets the rest (nil: none are taken).
-- After "--" everything is positional. Returns true, or nil and a message naming
-- the offending argument.
function M.walk(args, takes, on_option, on_positional)
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-?[%w-]+)=(.*)$")
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
      end
      if value == nil then return nil, ("%s needs %s"):format(name, kind) end
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

-- Parses a subcommand's arguments. spec maps "--name" to "value" or "flag".
-- Returns options (keys without dashes, "-" as "_"), positionals; or nil and a
-- message naming the offending argument.
function M.parse(args, spec)
  local options, positionals = {}, {}
  local function takes(name)
    local kind = spec[name]
    return kind == "value" and "a value" or kind
  end
  local function on_option(name, value)
    if value == "" then return nil, name .. " needs a value" end
    options[M.key_of(name)] = value == nil or value
    return true
  end
  local ok, err = M.walk(args, takes, on_option,
    function(a) positionals[#positionals + 1] = a end)
  if not ok then return nil, err end
  return options, positionals
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

-- Parses a subcommand's arguments (spec as for parse; --help is added) and deals
-- with --help and usage errors. Returns options, positionals; or nil and the exit
-- status, with the help or the error already printed.
function M.parse_command(command, help, args, spec)
  spec["--help"] = "flag"
  local options, positionals = M.parse(args, spec)
  if not options then return nil, M.command_usage_error(command, positionals) end
  if options.help then
    print(help)
    return nil, 0
  end
  return options, positionals
end

-- Writes a value as JSON on stdout.
function M.print_json(value)
  io.stdout:write(require("hfscan.json").encode(value), "\n")
end

return M
