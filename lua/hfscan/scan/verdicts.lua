-- The Hub's own verdict of a file (--security-status): its securityFileStatus,
-- which tree and paths-info give with expand=true (hub-api.md sections 3, 4),
-- read into the columns database.SECURITY_COLUMNS names.
--
-- The Hub's OpenAPI document gives each scanner's report as { status, message,
-- pickleImports = { { module, name, safety } } }, status one of unscanned, safe,
-- queued, error, caution, suspicious, unsafe; an older form (huggingface.js
-- ApiFileScanResult) has avScan { virusFound, virusNames } and
-- pickleImportScan { highestSafetyLevel, imports }. Both are read.
local hub = require "hfscan.hub.api"

local M = {}

-- Pickle imports' safety levels, least worrying first.
local SAFETY_RANK = { innocuous = 1, suspicious = 2, dangerous = 3 }
-- A scanner's statuses that report a finding (its message names it).
local FINDING = { caution = true, suspicious = true, unsafe = true }

local function table_or_empty(v) return type(v) == "table" and v or {} end
local function text(v) return type(v) == "string" and v or "" end

-- What ClamAV found: its virus names, else the message of a finding.
local function av_virus(av)
  if type(av.virusNames) == "table" then
    local found = {}
    for _, name in ipairs(av.virusNames) do
      if type(name) == "string" then found[#found + 1] = name end
    end
    if #found > 0 then return table.concat(found, ";") end
  end
  if FINDING[av.status] then return text(av.message) ~= "" and text(av.message) or av.status end
  if av.virusFound == true then return "virus found" end
  return ""
end

-- The pickle imports as "module.name:safety;..." (in the Hub's order, once
-- each), and the worst safety among them (or the scan's highestSafetyLevel).
local function pickle_columns(scan)
  local list = scan.pickleImports or scan.imports
  local parts, seen, worst = {}, {}, nil
  for _, i in ipairs(type(list) == "table" and list or {}) do
    if type(i) == "table" and type(i.module) == "string" and type(i.name) == "string" then
      local safety = text(i.safety)
      local part = ("%s.%s:%s"):format(i.module, i.name, safety)
      if not seen[part] then
        seen[part], parts[#parts + 1] = true, part
      end
      if SAFETY_RANK[safety] and (not worst or SAFETY_RANK[safety] > SAFETY_RANK[worst]) then
        worst = safety
      end
    end
  end
  local highest = SAFETY_RANK[scan.highestSafetyLevel] and scan.highestSafetyLevel or worst
  return highest or "", table.concat(parts, ";")
end

-- The columns of a file whose securityFileStatus is status (a table; anything
-- else, as a file the Hub gave none for, leaves them empty).
function M.columns(status)
  if type(status) ~= "table" then
    return { security_status = "", av_virus = "", pickle_safety = "", pickle_imports = "" }
  end
  local safety, imports = pickle_columns(table_or_empty(status.pickleImportScan))
  local overall = text(status.status)
  -- The older form says safe or not only.
  if overall == "" and type(status.safe) == "boolean" then overall = status.safe and "safe" or "unsafe" end
  return { security_status = overall, av_virus = av_virus(table_or_empty(status.avScan)),
    pickle_safety = safety, pickle_imports = imports }
end

-- Puts a file's verdict columns into its row.
function M.put(row, status)
  for column, value in pairs(M.columns(status)) do row[column] = value end
end

-- Whether the expanded tree (pages of 50) costs no more requests than the
-- plain tree (pages of 1000) and the paths-info of its files (PATHS_PER_REQUEST
-- a request, at most as many as its entries), for a repo the listing says has
-- that many entries (nil: unknown, so the plain tree, whose cost does not grow
-- 20 times if the guess is wrong).
function M.expanded_tree_is_cheaper(entries)
  if not entries or entries < 1 then return false end
  local function pages(n, size) return math.max(1, (n + size - 1) // size) end
  return pages(entries, hub.TREE_PAGE_EXPANDED)
    <= pages(entries, hub.TREE_PAGE) + pages(entries, hub.PATHS_PER_REQUEST)
end

return M
