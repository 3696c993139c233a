-- Hex digests as the Hub and hfscan's files state them: a SHA-256 is 64 hex
-- digits, a git object id (a blob, a commit) 40. What a server sends is taken in
-- either case and lower-cased; what hfscan's own files hold must already be
-- lower case.
local is_lower_hex = require("hfscan").is_lower_hex

local M = {}

local function of_length(value, length)
  if type(value) == "string" and #value == length and value:match("^%x+$") then
    return value:lower()
  end
  return nil
end

-- A SHA-256, lower-cased, or nil.
function M.sha256(value) return of_length(value, 64) end

-- A git object id, lower-cased, or nil.
function M.git_oid(value) return of_length(value, 40) end

-- Whether value is a SHA-256 in the files' form (lower case). Asked of every
-- row read back, so in C (hf.is_lower_hex).
function M.is_stored_sha256(value) return is_lower_hex(value, 64) end

-- Whether value is a git object id in the files' form (lower case).
function M.is_stored_git_oid(value) return is_lower_hex(value, 40) end

return M
