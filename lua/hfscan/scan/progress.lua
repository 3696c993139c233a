-- The live progress line on a terminal: models done/total, this run's rate and
-- ETA, what the scan waits for, files, hashes per method, failures. Off in a
-- pipe or with --quiet.
local hf = require "hfscan"
local tiers = require "hfscan.scan.tiers"

local M = {}
local Progress = {}
Progress.__index = Progress

-- How often the scan's loop redraws the line while nothing completes: under a
-- second, so a wait's countdown never freezes.
M.TICK = 0.5
-- Redraws closer together than this are skipped (unless forced).
M.MIN_INTERVAL = 0.2

-- The terminal's width in columns: stderr's (TIOCGWINSZ), else COLUMNS, else 80.
-- Asked on each redraw, so a resized window is followed.
function M.width()
  return hf.terminal_width(2) or math.tointeger(tonumber(os.getenv("COLUMNS") or "")) or 80
end

-- stats: the scan's totals; their models_done now is what earlier runs finished
-- (a restart's), which is not this run's work. options: enabled, waiting_for
-- (-> a loop:sleep why, or nil), now (the clock, hf.now), width (-> columns,
-- M.width), out (the terminal's stream, io.stderr).
function M.new(stats, options)
  options = options or {}
  local now = options.now or hf.now
  return setmetatable({ stats = stats, enabled = options.enabled, now = now,
    width = options.width or M.width, waiting_for = options.waiting_for or function() end,
    out = options.out or io.stderr,
    started = now(), done_before = stats.models_done, last = -math.huge, shown = false },
    Progress)
end

-- m:ss, or h:mm:ss from an hour; "?" when unknown.
function M.duration(seconds)
  if not seconds or seconds ~= seconds or seconds == math.huge then return "?" end
  seconds = math.max(0, math.ceil(seconds))
  if seconds < 3600 then return ("%d:%02d"):format(seconds // 60, seconds % 60) end
  return ("%d:%02d:%02d"):format(seconds // 3600, seconds // 60 % 60, seconds % 60)
end

-- This run's repos per second, and the seconds left (nil while the listing goes
-- on), over the repos this run queued: none a restart skipped nor one the policy
-- declined. A repo left unfinished was worked on too.
function Progress:pace()
  local s = self.stats
  local worked = s.models_done - self.done_before + s.unfinished
  local rate = worked / math.max(self.now() - self.started, 1e-6)
  local left = s.listing_done and rate > 0 and (s.models_queued - worked) / rate or nil
  return rate, left
end

-- What the scan waits for, with its countdown, or nil.
function Progress:waiting()
  local why = self.waiting_for()
  local left = why and why.ends - self.now()
  if not left or left <= 0 then return nil end
  return ("%s %s"):format(why.text, M.duration(left))
end

function Progress:line()
  local s = self.stats
  local rate, left = self:pace()
  local total = self.done_before + s.models_queued
  local parts = { ("models %d/%d%s"):format(s.models_done, total, s.listing_done and "" or "+"),
    ("%.1f/s"):format(rate), "ETA " .. M.duration(left) }
  parts[#parts + 1] = self:waiting()
  local by_tier = {}
  for i, tier in ipairs(tiers.LIST) do
    by_tier[i] = ("%s %d"):format(tier.label, s.methods[tier.name] or 0)
  end
  parts[#parts + 1] = ("files %d (%s)"):format(s.files, table.concat(by_tier, ", "))
  parts[#parts + 1] = "failed " .. s.failed_files
  return table.concat(parts, "  ")
end

-- text cut to at most columns characters (UTF-8 aware: no character is split).
function M.cut(text, columns)
  if utf8.len(text) == nil then return text:sub(1, columns) end
  local past = utf8.offset(text, columns + 1)
  return past and text:sub(1, past - 1) or text
end

-- Redraws at most every MIN_INTERVAL, or now when force is set. The line is one
-- column short of the terminal's width: a full-width line would wrap, and each
-- redraw would leave a line behind.
function Progress:update(force)
  if not self.enabled then return end
  local now = self.now()
  if not force and now - self.last < M.MIN_INTERVAL then return end
  self.last = now
  self.out:write("\r\27[K", M.cut(self:line(), math.max(self.width() - 1, 1)))
  self.out:flush()
  self.shown = true
end

-- Clears the line (before a log line or at the end).
function Progress:clear()
  if self.enabled and self.shown then
    self.out:write("\r\27[K")
    self.shown = false
  end
end

return M
