-- Backing off when every alternative has failed ("fall back first, back off
-- later", DESIGN.md): waits of 1, 2, 4, 8, 8 ... s in the caller's task, until
-- a budget of seconds is spent. One budget per repo (or per listing), so a
-- persistent failure costs a bounded time, and other tasks go on meanwhile.
local hf = require "hfscan"

local M = {}
local Backoff = {}
Backoff.__index = Backoff

M.DEFAULT_BUDGET = 30
M.MAX_WAIT = 8

-- loop: the hfscan.async loop whose task waits; budget: seconds (0: never wait).
function M.new(loop, budget)
  return setmetatable({ loop = loop, left = budget or M.DEFAULT_BUDGET, waits = 0 }, Backoff)
end

-- Waits before the next round, if the budget allows it. Returns true when the
-- caller should try again, false when the budget is spent (or a stop was asked).
function Backoff:wait()
  local delay = math.min(2 ^ self.waits, M.MAX_WAIT)
  if delay > self.left or hf.interrupted() then return false end
  self.waits = self.waits + 1
  self.left = self.left - delay
  self.loop:sleep(delay)
  return not hf.interrupted()
end

return M
