-- Hex digests as the Hub and hfscan's files state them: a SHA-256 is 64 hex
-- digits, a git object id (a blob, a commit) 40. What a server sends is taken in
-- either case and lower-cased; what hfscan's own files hold must already be
-- lower case.
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

-- Whether value is a SHA-256 in the files' form (lower case).
function M.is_stored_sha256(value) return value ~= nil and M.sha256(value) == value end

-- Whether value is a git object id in the files' form (lower case).
function M.is_stored_git_oid(value) return value ~= nil and M.git_oid(value) == value end

return M
