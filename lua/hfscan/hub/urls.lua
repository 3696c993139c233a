-- URL building for the Hub: percent-encoding as huggingface_hub does it.
local M = {}

local function encode(s, safe)
  return (s:gsub("[^%w%-%._~" .. safe .. "]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

-- A path inside a repo: every byte escaped except unreserved ones and "/".
function M.path(s) return encode(s, "/") end

-- One segment (a revision, a query value): "/" escaped too.
function M.segment(s) return encode(s, "") end

-- A query string from { {key, value}, ... } (repeated keys allowed, order kept).
function M.query(pairs_list)
  local parts = {}
  for _, kv in ipairs(pairs_list) do
    parts[#parts + 1] = M.segment(kv[1]) .. "=" .. M.segment(tostring(kv[2]))
  end
  return table.concat(parts, "&")
end

-- "<https://h/p?x>; rel=\"next\", <...>; rel=\"xet-auth\"" -> the URL of rel.
-- Linear in the header's length, whatever a server sends: each "<" is matched
-- with the next ">" by a plain search, and the search moves on past it.
function M.link(header, rel)
  if not header then return nil end
  local at = 1
  while true do
    local open = header:find("<", at, true)
    if not open then return nil end
    local close = header:find(">", open + 1, true)
    if not close then return nil end
    local params_end = (header:find("<", close + 1, true) or #header + 1) - 1
    local params = header:sub(close + 1, params_end)
    local rels = params:match('^%s*;%s*rel%s*=%s*"([^"]*)"')
    for r in (rels or ""):gmatch("%S+") do
      if r == rel then return header:sub(open + 1, close - 1) end
    end
    at = close + 1
  end
end

-- The longest repo id the Hub accepts.
M.MAX_REPO_ID = 96

-- Why a repo id is not one the Hub can have (its rules, as huggingface_hub's
-- validate_repo_id checks them: "name" or "namespace/name", each of letters,
-- digits, "_", "-" and ".", neither "--" nor "..", no "-" or "." at either end
-- of a part, at most 96 characters), or nil when it is one. Checked before any
-- request: such an id in a URL is refused, or asks for something else.
function M.repo_id_problem(id)
  if type(id) ~= "string" or id == "" then return "an empty repo id" end
  local shown = ("%q"):format(id:sub(1, 120)):gsub("\\\n", "\\n")
  if #id > M.MAX_REPO_ID then return ("repo id %s is longer than %d characters"):format(shown, M.MAX_REPO_ID) end
  local parts = {}
  for part in (id .. "/"):gmatch("([^/]*)/") do parts[#parts + 1] = part end
  if #parts > 2 then return ("repo id %s has more than one '/'"):format(shown) end
  for _, part in ipairs(parts) do
    if not part:match("^[%w_.-]+$") or part:find("--", 1, true) or part:find("..", 1, true)
      or part:match("^[.-]") or part:match("[.-]$") then
      return ("repo id %s is not made of the characters the Hub allows"):format(shown)
    end
  end
  return nil
end

local DEFAULT_PORT = { http = "80", https = "443" }

-- scheme://host[:port] of an absolute URL, lower-cased, without a default port
-- (https://huggingface.co:443 is https://huggingface.co).
function M.origin(url)
  local origin = url:match("^(%a[%w+.-]*://[^/?#]+)")
  if not origin then return nil end
  origin = origin:lower()
  local scheme, host, port = origin:match("^(.-)://(.-):(%d+)$")
  if port and DEFAULT_PORT[scheme] == port then origin = scheme .. "://" .. host end
  return origin
end

return M
