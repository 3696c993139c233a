-- The listing's progress, kept beside a scan's files (hf_scan_listing_<ts>.jsonl):
-- one JSON line per page read, with the page's items and the URL of the next
-- page, and a last line once the listing is over. A restart replays the pages
-- (so the repos they named are queued again, unless finished) and goes on from
-- the saved next page, instead of listing from page 1. Each line is written and
-- flushed at once; a line cut short by a kill is skipped (the next run ends it
-- with a line break before it appends), and that page is asked again.
local cjson = require "cjson.safe"
local database = require "hfscan.db.files"

local M = {}
local Journal = {}
Journal.__index = Journal


-- Does the file end inside a line (a write cut short by a kill)?
local function ends_inside_a_line(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local size = f:seek("end")
  local last = size and size > 0 and f:seek("set", size - 1) and f:read(1)
  f:close()
  return last ~= nil and last ~= false and last ~= "\n"
end

-- Opens the journal for appending. Returns it, or nil and a message.
function M.open(path)
  local torn = ends_inside_a_line(path)
  local f, err = io.open(path, "a")
  if not f then return nil, err end
  -- The torn line stays a line of its own, which reading skips.
  if torn and not (f:write("\n") and f:flush()) then
    f:close()
    return nil, "cannot end the torn last line of " .. path
  end
  return setmetatable({ file = f, path = path, pages = 0 }, Journal)
end

function Journal:write(record)
  local ok, err = self.file:write(cjson.encode(record), "\n")
  if ok then ok, err = self.file:flush() end
  return ok, err
end

-- Records a page: its items, and where the listing goes on (nil: nowhere).
function Journal:page(items, next_url)
  local ok, err = self:write({ items = items, next = next_url or cjson.null })
  self.pages = self.pages + 1
  -- The test hook of hfscan.db.files: HFSCAN_TEST_CRASH=after_listing_page:<n>
  -- kills the process once the n-th page of this run is written.
  database.maybe_crash("after_listing_page", self.pages)
  return ok, err
end

-- Records that the listing is over (the threshold, the limit, or the last page).
function Journal:done()
  return self:write({ done = true })
end

function Journal:close()
  if self.file then self.file:close() end
  self.file = nil
end

-- Reads a journal: { pages = { items, ... }, next = url | nil, done = bool }, or
-- nil when there is none (a scan made before journals, or killed before its
-- first page).
function M.read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local journal = { pages = {}, done = false }
  for line in f:lines() do
    local record = cjson.decode(line)
    if type(record) ~= "table" then
      -- Torn by a kill: that page was asked again by the next run, whose lines follow.
    elseif record.done then
      journal.done = true
    elseif type(record.items) == "table" then
      journal.pages[#journal.pages + 1] = record.items
      journal.next = type(record.next) == "string" and record.next or nil
    end
  end
  f:close()
  if #journal.pages == 0 and not journal.done then return nil end
  return journal
end

return M
