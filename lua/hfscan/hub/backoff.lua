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

-- Why a task sleeps before its attempt-th retry (a loop:sleep why): "cannot
-- reach HOST, retry 3 in" and the time the sleep ends.
function M.retry_reason(what, attempt, seconds)
  return { text = ("%s, retry %d in"):format(what, attempt), ends = hf.now() + seconds }
end

-- loop: the hfscan.async loop whose task waits; budget: seconds (0: never wait).
function M.new(loop, budget)
  return setmetatable({ loop = loop, left = budget or M.DEFAULT_BUDGET, waits = 0 }, Backoff)
end

-- Waits before the next round, if the budget allows it. what: the failure
-- waited out, as the progress line names it ("cannot reach HOST"; nil: "backing
-- off"). Returns true when the caller should try again, false when the budget
-- is spent (or a stop was asked).
function Backoff:wait(what)
  local delay = math.min(2 ^ self.waits, M.MAX_WAIT)
  if delay > self.left or hf.interrupted() then return false end
  self.waits = self.waits + 1
  self.left = self.left - delay
  self.loop:sleep(delay, M.retry_reason(what or "backing off", self.waits, delay))
  return not hf.interrupted()
end

return M
