-- The live progress line on a terminal: models done/total, files, hashes per
-- method, failures, rate and ETA. Off in a pipe or with --quiet.
local hf = require "hfscan"
local tiers = require "hfscan.scan.tiers"

local M = {}
local Progress = {}
Progress.__index = Progress

function M.new(stats, enabled)
  return setmetatable({ stats = stats, enabled = enabled, started = hf.now(), last = 0,
    shown = false }, Progress)
end

local function eta(seconds)
  if not seconds or seconds ~= seconds or seconds == math.huge then return "?" end
  seconds = math.floor(seconds)
  return ("%d:%02d:%02d"):format(seconds // 3600, seconds // 60 % 60, seconds % 60)
end

function Progress:line()
  local s = self.stats
  local elapsed = math.max(hf.now() - self.started, 1e-6)
  local rate = s.models_done / elapsed
  local total = s.listing_done and s.models_listed or nil
  local left = total and rate > 0 and (total - s.models_done) / rate or nil
  local by_tier = {}
  for i, tier in ipairs(tiers.LIST) do
    by_tier[i] = ("%s %d"):format(tier.label, s.methods[tier.name] or 0)
  end
  return ("models %d/%s  files %d (%s)  failed %d  %.1f models/s  ETA %s")
    :format(s.models_done, total and tostring(total) or (s.models_listed .. "+"), s.files,
      table.concat(by_tier, ", "), s.failed_files, rate, eta(left))
end

-- Redraws at most 5 times a second, or now when force is set.
function Progress:update(force)
  if not self.enabled then return end
  local now = hf.now()
  if not force and now - self.last < 0.2 then return end
  self.last = now
  io.stderr:write("\r\27[K", self:line())
  io.stderr:flush()
  self.shown = true
end

-- Clears the line (before a log line or at the end).
function Progress:clear()
  if self.enabled and self.shown then
    io.stderr:write("\r\27[K")
    self.shown = false
  end
end

return M
