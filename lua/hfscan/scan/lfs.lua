-- Git LFS pointer files, parsed strictly: the hash comes from them only when
-- they are exactly what git-lfs writes.
--
--   version https://git-lfs.github.com/spec/v1
--   oid sha256:<64 lowercase hex>
--   size <decimal bytes>
local hex = require "hfscan.hex"

local M = {}

M.VERSION_LINE = "version https://git-lfs.github.com/spec/v1"
M.MAX_POINTER_SIZE = 1024 -- git-lfs never treats a larger file as a pointer

-- Returns sha256, size; or nil and the reason the text is not a pointer.
function M.parse_pointer(text)
  if type(text) ~= "string" then return nil, "no pointer text" end
  if #text > M.MAX_POINTER_SIZE then return nil, "too large for an LFS pointer" end
  if text:sub(-1) ~= "\n" then return nil, "pointer does not end with a newline" end
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  if lines[1] ~= M.VERSION_LINE then return nil, "missing or unknown LFS version line" end
  local oid, size, previous
  for i = 2, #lines do
    local key, value = lines[i]:match("^([a-z0-9.-]+) (.+)$")
    if not key then return nil, ("malformed line %d"):format(i) end
    -- The spec: keys after the version line in alphabetical order, each once.
    if previous and key <= previous then
      return nil, ("line %d: key '%s' out of order or repeated"):format(i, key)
    end
    previous = key
    if key == "oid" then
      oid = value:match("^sha256:(.*)$")
      if not hex.is_stored_sha256(oid) then
        return nil, "oid is not sha256 with 64 lowercase hex digits"
      end
    elseif key == "size" then
      if not value:match("^%d+$") then return nil, "size is not a decimal number" end
      size = tonumber(value)
    elseif not key:match("^ext%-") then
      return nil, "unknown key '" .. key .. "'"
    end
  end
  if not oid then return nil, "no oid line" end
  if not size then return nil, "no size line" end
  return oid, size
end

return M
