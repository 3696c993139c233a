-- A small harness for the Lua tests: named cases, equality checks that say what
-- differed, and the loopback HTTP fixture. Runs under `hfscan --script` and
-- under stock lua5.4 with the built module on LUA_CPATH.
local M = {}

local cases, failures = {}, 0

function M.case(name, fn) cases[#cases + 1] = { name = name, fn = fn } end

function M.eq(actual, expected, what)
  if actual ~= expected then
    error(("%s: expected %q, got %q"):format(what or "value", tostring(expected),
      tostring(actual)), 2)
  end
end

function M.truthy(value, what)
  if not value then error((what or "value") .. " is not true", 2) end
end

-- Runs every case; returns the exit status (0 when all passed).
function M.run(suite)
  for _, c in ipairs(cases) do
    local ok, err = xpcall(c.fn, debug.traceback)
    if ok then
      print("ok   " .. c.name)
    else
      failures = failures + 1
      print("FAIL " .. c.name .. "\n" .. err)
    end
  end
  print(("%s: %d passed, %d failed"):format(suite, #cases - failures, failures))
  return failures == 0 and 0 or 1
end

function M.source_dir()
  return assert(os.getenv("HFSCAN_SOURCE_DIR"), "HFSCAN_SOURCE_DIR is not set")
end

function M.tmpdir()
  local p = io.popen("mktemp -d /tmp/hfscan-lua-XXXXXX")
  local dir = p:read("l")
  p:close()
  return dir
end

function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

function M.read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  return data
end

-- Starts tests/fixtures/http_server.py; it exits when this process ends (its
-- stdin is our pipe). Returns { a = url, b = url on another host }.
function M.fixture()
  local dir = M.tmpdir()
  local ready = dir .. "/ready.json"
  M.fixture_pipe = io.popen(("python3 %s/tests/fixtures/http_server.py --ready-file %s")
    :format(M.source_dir(), ready), "w")
  local hf = require "hfscan"
  for _ = 1, 200 do
    local f = io.open(ready)
    if f then
      local info = require("cjson").decode(f:read("a"))
      f:close()
      os.remove(ready)
      os.remove(dir)
      return info
    end
    hf.sleep(0.05)
  end
  error("the fixture server did not start")
end

return M
