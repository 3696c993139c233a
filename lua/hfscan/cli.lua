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

return M
