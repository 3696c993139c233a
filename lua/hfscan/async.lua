-- Coroutines over the native worker pool (the NSE pattern): each task reads like
-- sequential code; a request submits a job and yields, and the loop resumes the
-- task when its result comes back. Many tasks are in flight while Lua stays on
-- one thread.
--
--   local loop = async.new(pool)
--   loop:spawn(function() local res = loop:request{url = ...} end)
--   loop:run()
local hf = require "hfscan"

local Loop = {}
Loop.__index = Loop

local M = {}

function M.new(pool)
  return setmetatable({
    pool = pool,
    ready = {},     -- { co, args... } to resume next
    waiting = {},   -- job id -> coroutine
    timers = {},    -- { at = time, co = coroutine }
    waits = {},     -- coroutine -> why it sleeps (see sleep), while it does
    ticks = {},     -- { at = time, every = seconds, fn = function } (see every)
    tasks = 0,      -- live coroutines
    failure = nil,  -- the first error raised by a task, with its traceback
  }, Loop)
end

-- Starts fn(...) as a task. Errors in it stop the loop and are raised by run().
function Loop:spawn(fn, ...)
  local args = table.pack(...)
  local co = coroutine.create(function()
    local ok, err = xpcall(fn, debug.traceback, table.unpack(args, 1, args.n))
    if not ok and not self.failure then self.failure = err end
  end)
  self.tasks = self.tasks + 1
  self.ready[#self.ready + 1] = { co, n = 0 }
  return co
end

-- Inside a task: submits a pool job and waits for it. Returns what pool:wait
-- gives after the id: result | nil, message, code, partial.
function Loop:submit(job)
  local id, err, code = self.pool:submit(job)
  if not id then return nil, err, code end
  self.waiting[id] = coroutine.running()
  return coroutine.yield()
end

-- Inside a task: waits seconds without blocking other tasks. why, if given,
-- says what for while it lasts, as the progress line shows it: { text = "api
-- window spent, resets in", ends = time (hf.now) when the awaited thing happens,
-- which may be past this sleep's end: a task that rechecks sleeps in steps }.
function Loop:sleep(seconds, why)
  local timers, co = self.timers, coroutine.running()
  timers[#timers + 1] = { at = hf.now() + seconds, co = co }
  table.sort(timers, function(a, b) return a.at < b.at end)
  self.waits[co] = why
  coroutine.yield()
  self.waits[co] = nil
end

-- What the sleeping tasks wait for: the why (see sleep) that ends last, or nil.
function Loop:waiting_for()
  local last
  for _, why in pairs(self.waits) do
    if not last or why.ends > last.ends then last = why end
  end
  return last
end

-- Calls fn() every `seconds` while run() runs, between tasks; fn must not yield.
-- A tick keeps no task alive: run() ends with the last task, and the tick with
-- it. Returns a function that removes the tick.
function Loop:every(seconds, fn)
  local tick = { at = hf.now() + seconds, every = seconds, fn = fn }
  self.ticks[#self.ticks + 1] = tick
  return function()
    for i, t in ipairs(self.ticks) do
      if t == tick then table.remove(self.ticks, i) return end
    end
  end
end

-- Inside a task: runs each function as a task of its own and waits for all of
-- them. An error raised by one is raised here, after all have finished.
function Loop:all(fns)
  if #fns == 0 then return end
  local parent, pending, first_error = coroutine.running(), #fns, nil
  for _, fn in ipairs(fns) do
    self:spawn(function()
      local ok, err = pcall(fn)
      if not ok and first_error == nil then first_error = err end
      pending = pending - 1
      if pending == 0 then self.ready[#self.ready + 1] = { parent, n = 0 } end
    end)
  end
  coroutine.yield()
  if first_error ~= nil then error(first_error, 0) end
end

-- A FIFO that tasks can wait on: pop() yields while it is empty and open.
function Loop:queue()
  local loop = self
  local q = { items = {}, head = 1, tail = 0, closed = false, waiters = {} }
  function q:push(item)
    self.tail = self.tail + 1
    self.items[self.tail] = item
    local w = table.remove(self.waiters, 1)
    if w then loop.ready[#loop.ready + 1] = { w, n = 0 } end
  end
  function q:close()
    self.closed = true
    for _, w in ipairs(self.waiters) do loop.ready[#loop.ready + 1] = { w, n = 0 } end
    self.waiters = {}
  end
  function q:pop()
    while self.head > self.tail do
      if self.closed then return nil end
      self.waiters[#self.waiters + 1] = coroutine.running()
      coroutine.yield()
    end
    local item = self.items[self.head]
    self.items[self.head] = nil
    self.head = self.head + 1
    return item
  end
  function q:size() return self.tail - self.head + 1 end
  return q
end

function Loop:resume(co, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok and not self.failure then self.failure = debug.traceback(co, err) end
  if coroutine.status(co) == "dead" then self.tasks = self.tasks - 1 end
end

local function due_timers(self)
  local now = hf.now()
  while self.timers[1] and self.timers[1].at <= now do
    local t = table.remove(self.timers, 1)
    self.ready[#self.ready + 1] = { t.co, n = 0 }
  end
end

-- Calls the ticks that are due; returns the seconds until the next one (or nil).
local function due_ticks(self)
  local now, next_in = hf.now(), nil
  for _, t in ipairs(self.ticks) do
    if t.at <= now then
      t.fn()
      t.at = now + t.every
    end
    next_in = math.min(next_in or math.huge, t.at - now)
  end
  return next_in
end

-- Resumes ready tasks and waits for pool jobs, timers and ticks, until no task is left.
local function run_tasks(self)
  while self.tasks > 0 and not self.failure do
    due_timers(self)
    local tick_in = due_ticks(self)
    local batch = self.ready
    self.ready = {}
    for _, entry in ipairs(batch) do
      self:resume(entry[1], table.unpack(entry, 2, entry.n + 1))
      if self.failure then break end
    end
    if #self.ready == 0 and self.tasks > 0 and not self.failure then
      local timeout = self.timers[1] and math.max(0, self.timers[1].at - hf.now()) or 0.25
      if tick_in then timeout = math.min(timeout, math.max(0, tick_in)) end
      local id, res, msg, code, partial
      if self.pool:pending() > 0 then
        id, res, msg, code, partial = self.pool:wait(math.min(timeout, 0.25))
      elseif not hf.interrupted() then
        hf.sleep(math.min(timeout, 0.25)) -- only sleepers: nothing to wait on but time
      end
      if id then
        local co = self.waiting[id]
        self.waiting[id] = nil
        self.ready[#self.ready + 1] = { co, res, msg, code, partial, n = 4 }
      elseif hf.interrupted() and next(self.waiting) == nil and #self.timers > 0 then
        -- Only sleepers are left: wake them so they can see the interrupt.
        for _, t in ipairs(self.timers) do self.ready[#self.ready + 1] = { t.co, n = 0 } end
        self.timers = {}
      end
    end
  end
end

-- Runs until every task has finished. Raises the first task error. On Ctrl-C,
-- stops waiting: in-flight transfers abort and their tasks see "interrupted".
function Loop:run()
  -- Run from inside one of its own tasks, the loop would wait on itself forever.
  if self.running then error("loop:run() called from inside a task of the same loop", 2) end
  self.running = true
  local ok, err = pcall(run_tasks, self)
  self.running = false
  if not ok then error(err, 0) end
  if self.failure then error(self.failure, 0) end
end

return M
