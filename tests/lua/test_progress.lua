-- Lua tests of the live progress line (hfscan.scan.progress) with fake stats and
-- a fake clock, and of the loop's ticks and named waits it is drawn from.
package.path = (os.getenv("HFSCAN_SOURCE_DIR") or ".") .. "/tests/lua/?.lua;" .. package.path
local t = require "testlib"
local hf = require "hfscan"
local async = require "hfscan.async"
local progress = require "hfscan.scan.progress"
local scanner = require "hfscan.scan.scanner"

-- A clock the test moves by hand.
local function fake_clock(start)
  local clock = { time = start or 1000 }
  function clock.now() return clock.time end
  return clock
end

-- A stream that keeps what is written to it.
local function sink()
  local s = { text = "" }
  function s:write(...) self.text = self.text .. table.concat({ ... }) end
  function s:flush() end
  return s
end

t.case("progress: rate and ETA count only this run's work, not a restart's finished repos", function()
  local clock = fake_clock()
  local stats = scanner.new_stats()
  stats.models_done = 50 -- finished by the run before the restart (restart.lua's stats_from)
  stats.models_listed = 60 -- the listing replayed: the 50 skipped ones and 10 left
  local line = progress.new(stats, { now = clock.now })
  stats.models_queued, stats.listing_done = 10, true
  clock.time = clock.time + 10
  stats.models_done = 55
  local rate, left = line:pace()
  t.eq(rate, 0.5, "5 repos in 10 s")
  t.eq(left, 10, "5 repos left at 0.5/s")
  t.eq(line:line():match("^[^f]*"), "models 55/60  0.5/s  ETA 0:10  ", "the line's head")
end)

t.case("progress: models the policy declined are not in the total nor the ETA", function()
  local clock = fake_clock()
  local stats = scanner.new_stats()
  local line = progress.new(stats, { now = clock.now })
  -- 40 listed, the policy declined 30 of them: 10 queued, 4 done in 8 s.
  stats.models_listed, stats.models_queued, stats.models_done = 40, 10, 4
  stats.listing_done = true
  clock.time = clock.time + 8
  t.eq(line:line():match("^[^f]*"), "models 4/10  0.5/s  ETA 0:12  ", "declined ones left out")
  -- A repo left unfinished (a temporary failure) was this run's work too.
  stats.unfinished = 1
  t.eq(line:line():match("^[^f]*"), "models 4/10  0.6/s  ETA 0:08  ", "unfinished ones worked on")
end)

t.case("progress: while the listing goes on, the total is open and the ETA unknown", function()
  local clock = fake_clock()
  local stats = scanner.new_stats()
  local line = progress.new(stats, { now = clock.now })
  stats.models_queued, stats.models_done = 7, 2
  clock.time = clock.time + 1
  t.eq(line:line():match("^[^f]*"), "models 2/7+  2.0/s  ETA ?  ", "open total")
end)

t.case("progress: the line names what the scan waits for, with its countdown", function()
  local clock = fake_clock()
  local why
  local line = progress.new(scanner.new_stats(), { now = clock.now,
    waiting_for = function() return why end })
  t.eq(line:waiting(), nil, "no wait, nothing said")
  why = { text = "api window spent, resets in", ends = clock.time + 252 }
  t.truthy(line:line():find("  api window spent, resets in 4:12  files 0", 1, true), line:line())
  clock.time = clock.time + 251.5
  t.eq(line:waiting(), "api window spent, resets in 0:01", "counts down, rounded up")
  clock.time = clock.time + 0.5
  t.eq(line:waiting(), nil, "a wait that has ended is not named")
  why = { text = "cannot reach hub.example:443, retry 3 in", ends = clock.time + 3725 }
  t.eq(line:waiting(), "cannot reach hub.example:443, retry 3 in 1:02:05", "hours")
end)

t.case("progress: each redraw is cut one column short of the terminal's width", function()
  local clock = fake_clock()
  local out, width = sink(), 40
  local stats = scanner.new_stats()
  local line = progress.new(stats, { enabled = true, now = clock.now, out = out,
    width = function() return width end })
  line:update()
  t.eq(out.text, "\r\27[K" .. line:line():sub(1, 39), "39 columns of 40")
  out.text, width = "", 20
  clock.time = clock.time + 1
  line:update()
  t.eq(out.text, "\r\27[K" .. line:line():sub(1, 19), "the width is read again on each redraw")
  out.text = ""
  clock.time = clock.time + 0.1
  line:update()
  t.eq(out.text, "", "at most every 0.2 s unless forced")
  line:update(true)
  t.eq(#out.text, #"\r\27[K" + 19, "forced")
  t.eq(progress.cut("ab\u{e9}\u{e9}cd", 3), "ab\u{e9}", "no character is split")
  t.eq(progress.cut("abc", 10), "abc", "short text kept")
end)

t.case("progress: the width is the terminal's, else COLUMNS, else 80", function()
  -- Under ctest stderr is no terminal: the binding says nothing.
  if hf.terminal_width(2) == nil then
    local columns = tonumber(os.getenv("COLUMNS") or "")
    t.eq(progress.width(), columns or 80, "COLUMNS or 80")
  end
  t.eq(hf.terminal_width(-1), nil, "no terminal on a closed descriptor")
end)

t.case("async: ticks run while tasks sleep, see the sleep's why, and end with the last task", function()
  local pool <close> = hf.pool(1)
  local loop = async.new(pool)
  local ticks, saw = 0, nil
  local why = { text = "api window spent, resets in", ends = hf.now() + 0.3 }
  loop:spawn(function() loop:sleep(0.3, why) end)
  local stop = loop:every(0.05, function()
    ticks = ticks + 1
    saw = saw or loop:waiting_for()
  end)
  loop:run()
  stop()
  t.truthy(ticks >= 1, "ticked while the only task slept")
  t.eq(saw, why, "the tick saw why the task sleeps")
  t.eq(loop:waiting_for(), nil, "the why is gone once the sleep ended")
  t.eq(#loop.ticks, 0, "stop removed the tick")
end)

t.case("async: the wait named is the one that ends last", function()
  local pool <close> = hf.pool(1)
  local loop = async.new(pool)
  local now = hf.now()
  local early = { text = "a", ends = now + 0.1 }
  local late = { text = "b", ends = now + 300 } -- a window's reset, rechecked in short sleeps
  local seen
  loop:spawn(function() loop:sleep(0.05, early) end)
  loop:spawn(function() loop:sleep(0.05, late) end)
  loop:spawn(function() seen = loop:waiting_for() end)
  loop:run()
  t.eq(seen, late, "the later end")
end)

os.exit(t.run("progress"))
