-- How the readers (lookup, verify) print the Hub's verdict beside a file.
local M = {}

-- A row's verdict (its security columns) as "  verdict unsafe, virus X,
-- pickle dangerous", or "" for a row whose scan recorded none.
function M.text(row)
  if row.security_status == nil then return "" end
  local parts = { "verdict " .. (row.security_status ~= "" and row.security_status or "none given") }
  if (row.av_virus or "") ~= "" then parts[#parts + 1] = "virus " .. row.av_virus end
  if (row.pickle_safety or "") ~= "" then parts[#parts + 1] = "pickle " .. row.pickle_safety end
  return "  " .. table.concat(parts, ", ")
end

return M
