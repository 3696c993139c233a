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
function M.link(header, rel)
  if not header then return nil end
  for url, rels in header:gmatch("<([^>]*)>%s*;%s*rel%s*=%s*\"([^\"]*)\"") do
    for r in rels:gmatch("%S+") do
      if r == rel then return url end
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
