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

-- Prints "hfscan <command>: <message>" on stderr.
function M.warn(command, message)
  io.stderr:write("hfscan ", command, ": ", message, "\n")
end

-- Parses a subcommand's arguments. spec maps "--name" to "value" or "flag".
-- Returns options (keys without dashes, "-" as "_"), positionals; or nil and a
-- message naming the offending argument.
function M.parse(args, spec)
  local options, positionals = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-?[%w-]+)=(.*)$")
    name = name or a
    local kind = spec[name]
    local key = name:sub(3):gsub("-", "_")
    if a == "--" then
      table.move(args, i + 1, #args, #positionals + 1, positionals)
      break
    elseif kind == "flag" and not inline then
      options[key] = true
    elseif kind == "value" then
      local value = inline
      if value == nil then
        i = i + 1
        value = args[i]
      end
      if value == nil or value == "" then return nil, name .. " needs a value" end
      options[key] = value
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, ("unknown option '%s'"):format(a)
    else
      positionals[#positionals + 1] = a
    end
    i = i + 1
  end
  return options, positionals
end

-- Writes a value as JSON on stdout.
function M.print_json(value)
  io.stdout:write(require("hfscan.json").encode(value), "\n")
end

return M
