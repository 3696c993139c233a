-- The hash tiers, cheapest first (DESIGN.md): their names (in the CSVs'
-- hash_method, in a policy's tiers hook) and the short labels of the progress
-- line. hfscan.scan.repo has a function for each; the policy checks a hook's
-- answer against them; the summary and the progress line count by them.
local M = {}

M.LIST = {
  { name = "api_metadata", label = "meta" }, -- the Hub's metadata: lfs.oid, X-Linked-Etag
  { name = "lfs_pointer", label = "ptr" },   -- the /raw/ LFS pointer
  { name = "downloaded", label = "dl" },     -- the file streamed through SHA-256
}

M.NAMES = {}
local known = {}
for i, tier in ipairs(M.LIST) do
  M.NAMES[i] = tier.name
  known[tier.name] = true
end

function M.known(name) return known[name] == true end

return M
