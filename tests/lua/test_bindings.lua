-- Lua tests of the native module's bindings.
package.path = (os.getenv("HFSCAN_SOURCE_DIR") or ".") .. "/tests/lua/?.lua;" .. package.path
local t = require "testlib"
local hf = require "hfscan"

local ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
local EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

t.case("sha256 of strings", function()
  t.eq(hf.sha256("abc"), ABC, "abc")
  t.eq(hf.sha256(""), EMPTY, "empty")
  t.eq(hf.sha256(("a"):rep(1000000)),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "million a")
end)

t.case("incremental hasher, chaining, close", function()
  local h = hf.sha256_hasher()
  h:update("a"):update("b")
  h:update("c")
  t.eq(h:hexdigest(), ABC, "digest")
  t.eq(h:hexdigest(), ABC, "digest twice")
  t.eq(h:bytes(), 3, "bytes")
  t.eq(h:reset():hexdigest(), EMPTY, "after reset")
  h:close()
  h:close() -- closing twice is harmless
  local ok, err = pcall(h.update, h, "x")
  t.eq(ok, false, "update after close")
  t.truthy(err:find("closed hasher"), "message names the closed hasher")
  do
    local scoped <close> = hf.sha256_hasher("abc")
    t.eq(scoped:hexdigest(), ABC, "initial data")
  end
  t.truthy(not pcall(hf.sha256, nil), "sha256(nil) raises")
end)

t.case("sha256_file and sha256_files", function()
  local dir = t.tmpdir()
  t.write(dir .. "/abc", "abc")
  t.write(dir .. "/empty", "")
  local hex, bytes = hf.sha256_file(dir .. "/abc")
  t.eq(hex, ABC, "file digest")
  t.eq(bytes, 3, "file size")
  local none, msg, code = hf.sha256_file(dir .. "/missing")
  t.eq(none, nil, "missing file")
  t.eq(msg, dir .. "/missing: No such file or directory", "message")
  t.eq(code, "not_found", "code")
  local results = hf.sha256_files({ dir .. "/abc", dir .. "/missing", dir .. "/empty" }, 2)
  t.eq(#results, 3, "result count")
  t.eq(results[1].sha256, ABC, "first")
  t.eq(results[2].code, "not_found", "second fails")
  t.eq(results[3].sha256, EMPTY, "third")
  -- Many paths at once (the Lua stack must not grow with the list).
  local many = {}
  for i = 1, 500 do many[i] = dir .. "/abc" end
  local all = hf.sha256_files(many, 2)
  t.eq(#all, 500, "500 results")
  t.eq(all[500].sha256, ABC, "the last one")
  os.execute("rm -rf " .. dir)
end)

t.case("csv round trip of hostile values", function()
  local dir = t.tmpdir()
  local path = dir .. "/x.csv"
  local hostile = { "a,b", 'say "hi"', "two\nlines", "cr\r\n", "", " pad ", "=1+2",
    "模型/ünï.gguf", "#hash" }
  local w = assert(hf.csv_writer(path, "create"))
  w:comment("SCAN_PARAMETERS"):comment("key: value")
  w:row({ "hash", "filename" })
  local rows = {}
  for i, v in ipairs(hostile) do rows[i] = { v, i } end
  assert(w:write_block(rows))
  assert(w:close())
  local r = assert(hf.csv_reader(path))
  local fields, is_comment = r:next()
  t.eq(is_comment, true, "first is a comment")
  t.eq(fields[1], "SCAN_PARAMETERS", "comment text")
  fields = r:next()
  t.eq(fields[1], "key: value", "second comment")
  fields, is_comment = r:next()
  t.eq(is_comment, false, "header is data")
  t.eq(fields[2], "filename", "header")
  for i, v in ipairs(hostile) do
    local row, _, terminated = r:next()
    t.eq(row[1], v, "field " .. i)
    t.eq(row[2], tostring(i), "number written as text")
    t.eq(terminated, true, "terminated")
  end
  t.eq(r:next(), nil, "end")
  r:close()
  t.eq(hf.csv_format_row({ "a", "b,c" }), 'a,"b,c"\r\n', "format_row")
  local sr = hf.csv_string_reader('x,"unclosed')
  local none, msg, code = sr:next()
  t.eq(none, nil, "torn row")
  t.eq(code, "malformed", "torn code")
  t.truthy(msg:find("line 1"), "message names the line")
  os.execute("rm -rf " .. dir)
end)

t.case("csv_key_set: the first column as a set, the last row, and a cut line", function()
  local dir = t.tmpdir()
  local path = dir .. "/progress.csv"
  local f = assert(io.open(path, "wb"))
  f:write("repo_id,commit\r\na/x,1\r\nb/y,2\r\nshort\r\na/x,3\r\nc/z,4\r\nd/w,")
  f:close()
  local set, info = assert(hf.csv_key_set(path))
  t.eq(set["a/x"], true, "a member")
  t.eq(set["c/z"], true, "the last whole row's key")
  t.eq(set["d/w"], nil, "a cut line is not a row")
  t.eq(set["short"], nil, "a row of another width is left out")
  t.eq(set[42], nil, "a key that is not a string")
  t.eq(#set, 3, "distinct keys")
  t.eq(info.rows, 4, "rows counted")
  t.eq(table.concat(info.header, ","), "repo_id,commit", "header")
  t.eq(table.concat(info.last, ","), "c/z,4", "last row")
  t.eq(info.whole, #"repo_id,commit\r\na/x,1\r\nb/y,2\r\nshort\r\na/x,3\r\nc/z,4\r\n", "whole")
  t.eq(info.torn, true, "torn")
  local map, minfo = assert(hf.csv_key_map(path))
  t.eq(map["a/x"], "3", "the last row of a key wins")
  t.eq(map["b/y"], "2", "a value")
  t.eq(map["d/w"], nil, "not a cut line")
  t.eq(map["short"], nil, "nor a row of another width")
  t.eq(minfo.rows, 4, "map rows")
  t.eq(table.concat(minfo.last, ","), "c/z,4", "map last row")
  local nothing, err, code = hf.csv_key_set(dir .. "/missing.csv")
  t.eq(nothing, nil, "missing file")
  t.eq(code, "not_found", err)
end)

t.case("csv writer in a <close> scope: a normal end commits, an error aborts", function()
  local dir = t.tmpdir()
  local path = dir .. "/scoped.csv"
  t.write(path, "old\r\n")
  do
    local w <close> = assert(hf.csv_writer(path, "rewrite"))
    w:row({ "new" })
  end
  t.eq(t.read(path), "new\r\n", "committed at the end of the scope")
  local ok, err = pcall(function()
    local w <close> = assert(hf.csv_writer(path, "rewrite"))
    w:row({ "newer" })
    error("midway", 0)
  end)
  t.eq(ok, false, "the error goes on")
  t.eq(err, "midway", "the same error")
  t.eq(t.read(path), "new\r\n", "aborted by the error")
  do
    local w <close> = assert(hf.csv_writer(path, "rewrite"))
    w:row({ "committed" })
    assert(w:commit())
  end
  t.eq(t.read(path), "committed\r\n", "a commit before the end is not repeated")
  os.execute("rm -rf " .. dir)
end)

t.case("csv atomic rewrite", function()
  local dir = t.tmpdir()
  local path = dir .. "/r.csv"
  t.write(path, "old\r\n")
  local w = assert(hf.csv_writer(path, "rewrite"))
  w:row({ "new" })
  assert(w:flush())
  t.eq(t.read(path), "old\r\n", "untouched before commit")
  local temp = w:temp_path()
  assert(w:commit())
  t.eq(t.read(path), "new\r\n", "replaced on commit")
  t.eq(io.open(temp), nil, "temporary gone")
  local none, msg, code = hf.csv_writer(dir .. "/no/such/dir.csv", "create")
  t.eq(none, nil, "bad path")
  t.eq(code, "io", "bad path code")
  t.truthy(msg:find("No such file or directory"), "bad path message")
  os.execute("rm -rf " .. dir)
end)

t.case("sqlite: parameters of each type, rows, errors", function()
  local dir = t.tmpdir()
  local db = assert(hf.sqlite_open(dir .. "/t.sqlite"))
  db:exec("CREATE TABLE f (name TEXT, size INTEGER, ratio REAL, gated INTEGER, note TEXT)")
  t.eq(db:run("INSERT INTO f VALUES (?, ?, ?, ?, ?)", "a,b\n", 5000000000, 0.5, true, nil), 1,
    "one row inserted")
  db:run("INSERT INTO f VALUES (?, ?, ?, ?, ?)", "z", 1, 2.0, false, "x")
  local rows = db:query("SELECT * FROM f WHERE size > ? ORDER BY name", 0)
  t.eq(#rows, 2, "two rows")
  t.eq(rows[1].name, "a,b\n", "text back unchanged")
  t.eq(math.type(rows[1].size), "integer", "integer column")
  t.eq(rows[1].size, 5000000000, "64-bit integer")
  t.eq(rows[1].ratio, 0.5, "real")
  t.eq(rows[1].gated, 1, "true stored as 1")
  t.eq(rows[1].note, nil, "nil stored as NULL")
  t.eq(rows[2].gated, 0, "false stored as 0")
  t.eq(#db:query("SELECT * FROM f WHERE name = ?", "none"), 0, "no rows")

  local ok, err = pcall(db.query, db, "SELECT * FROM nope")
  t.eq(ok, false, "bad SQL raises")
  t.eq(err, "no such table: nope", "SQLite's message")
  ok, err = pcall(db.run, db, "INSERT INTO f (name) VALUES (?)", {})
  t.eq(ok, false, "a table parameter raises")
  t.truthy(err:find("bad argument #3 to '?' (nil, number, boolean or string expected, got table)",
    1, true), "message names the parameter: " .. tostring(err))
  t.eq(#db:query("SELECT * FROM f"), 2, "nothing inserted by the refused call")

  db:close()
  ok, err = pcall(db.query, db, "SELECT 1")
  t.truthy(not ok and err:find("closed database"), "use after close raises")
  local none, msg, code = hf.sqlite_open(dir .. "/no/such/dir/t.sqlite")
  t.eq(none, nil, "bad path")
  t.eq(code, "io", "bad path code")
  local prefix = "cannot open " .. dir .. "/no/such/dir/t.sqlite: "
  t.eq(msg:sub(1, #prefix), prefix, "message names the path")
  os.execute("rm -rf " .. dir)
end)

t.case("sqlite: a prepared statement runs again and again, and fails cleanly", function()
  local dir = t.tmpdir()
  local db = assert(hf.sqlite_open(dir .. "/p.sqlite"))
  db:exec("CREATE TABLE f (name TEXT UNIQUE, size INTEGER, note TEXT)")
  local insert = db:prepare("INSERT INTO f VALUES (?, ?, ?)")
  for i = 1, 1000 do t.eq(insert:run("n" .. i, i, i % 2 == 0 and "even" or nil), 1, "one row") end
  local rows = db:query("SELECT count(*) AS n, sum(size) AS total, count(note) AS notes FROM f")
  t.eq(("%d %d %d"):format(rows[1].n, rows[1].total, rows[1].notes), "1000 500500 500",
    "every run inserted its own values")
  local ok, err = pcall(insert.run, insert, "n1", 1)
  t.eq(ok, false, "a failed run raises")
  t.eq(err, "UNIQUE constraint failed: f.name", "SQLite's message")
  t.eq(insert:run("late", 7), 1, "and the statement runs again after it (a missing value binds NULL)")
  t.eq(db:query("SELECT note FROM f WHERE name = 'late'")[1].note, nil, "bindings were cleared")
  ok, err = pcall(insert.run, insert, {})
  t.truthy(not ok and err:find("nil, number, boolean or string expected", 1, true), tostring(err))
  ok, err = pcall(db.prepare, db, "INSERT INTO nope VALUES (?)")
  t.eq(ok, false, "a bad statement raises at prepare")
  t.eq(err, "no such table: nope", "with SQLite's message")
  db:close()
  ok, err = pcall(insert.run, insert, "after", 1)
  t.truthy(not ok and err:find("closed database", 1, true), "a statement of a closed database raises")
  insert:close()
  ok, err = pcall(insert.run, insert, "after", 1)
  t.truthy(not ok and err:find("closed statement", 1, true), "a closed statement raises")
  os.execute("rm -rf " .. dir)
end)

t.case("redirect_refusal", function()
  t.eq(hf.redirect_refusal("https://hub/x", "https://cdn/y"), nil, "https to https")
  t.eq(hf.redirect_refusal("https://hub/x", "http://cdn/y"),
    "a redirect from https to plain http is not followed", "downgrade")
  t.eq(hf.redirect_refusal("http://hub/x", "file:///etc/passwd"),
    "only http and https redirects are followed", "file://")
end)

t.case("request and row tables: types checked, read raw", function()
  local function raises(fn, want, what)
    local ok, err = pcall(fn)
    t.eq(ok, false, what .. " raises")
    t.truthy(tostring(err):find(want, 1, true), what .. ": " .. tostring(err))
  end
  raises(function() hf.http { url = 12345 } end, "field 'url' must be a string, not a number", "number url")
  raises(function() hf.http { url = "http://127.0.0.1:1/", body = {} } end,
    "field 'body' must be a string, not a table", "table body")
  raises(function() hf.http { url = "http://127.0.0.1:1/", timeout = 0 / 0 } end,
    "field 'timeout' must be a number from 1 to 86400", "NaN timeout")
  raises(function() hf.http { url = "http://127.0.0.1:1/", resumes = math.huge } end,
    "field 'resumes' must be a number from 0 to 1000", "huge resumes")
  -- A metatable cannot feed fields: the url behind __index is not seen.
  raises(function() hf.http(setmetatable({}, { __index = { url = "http://127.0.0.1:1/" } })) end,
    "request needs a 'url'", "url behind __index")
  -- A row's __len and __index are not consulted either.
  local row = setmetatable({ "a", "b" }, { __len = function() return 1 << 40 end,
    __index = function() error("must not be called") end })
  t.eq(hf.csv_format_row(row), "a,b\r\n", "row read raw")
  t.eq(#hf.sha256_files(setmetatable({}, { __index = function() return "/etc/passwd" end })), 0,
    "paths read raw")
  local none, msg = hf.mkdir_p("")
  t.eq(none, nil, "mkdir_p of an empty name fails")
  t.eq(msg, "cannot create a folder with an empty name or a NUL in it", "mkdir_p message")
end)

t.case("lock_dir: one holder at a time", function()
  local dir = t.tmpdir()
  local first = assert(hf.lock_dir(dir))
  local none, msg, code = hf.lock_dir(dir)
  t.eq(none, nil, "a second lock is refused")
  t.eq(code, "busy", "code")
  t.truthy(msg:find("another hfscan (pid ", 1, true) and msg:find(dir, 1, true), msg)
  first:close()
  local again = assert(hf.lock_dir(dir))
  again:close()
  local _, err, ecode = hf.lock_dir(dir .. "/missing")
  t.eq(ecode, "io", "a missing folder")
  t.truthy(err:find("cannot lock " .. dir .. "/missing: No such file or directory", 1, true), err)
  os.execute("rm -rf " .. dir)
end)

local fx = t.fixture()

t.case("http: memory, sha256 sink, headers", function()
  local res = assert(hf.http { url = fx.a .. "/bytes?n=5000" })
  t.eq(res.status, 200, "status")
  t.eq(#res.body, 5000, "body length")
  t.eq(res.headers["content-length"], "5000", "lower-case header names")
  local hashed = assert(hf.http { url = fx.a .. "/bytes?n=5000", sink = "sha256" })
  t.eq(hashed.sha256, hf.sha256(res.body), "streamed digest")
  t.eq(hashed.body, nil, "no body kept")
  local multi = assert(hf.http { url = fx.a .. "/multi" })
  t.eq(multi.headers["x-multi"], "one, two", "repeated headers joined")
  t.eq(#multi.header_list >= 2, true, "header list")
  local none, msg, code = hf.http { url = fx.a .. "/bytes?n=5000", max_body = 100 }
  t.eq(code, "too_large", "memory cap")
  none, msg, code = hf.http { url = "http://127.0.0.1:1/" }
  t.eq(code, "connect", "refused")
  t.truthy(not pcall(hf.http, { url = fx.a, sink = "disk" }), "unknown sink raises")
  t.truthy(not pcall(hf.http, {}), "missing url raises")
end)

t.case("http: redirects and Authorization", function()
  local auth = { Authorization = "Bearer hf_secret" }
  local cjson = require "cjson"
  local res = assert(hf.http { url = fx.a .. "/redirect?to=/echo", headers = auth })
  local echo = cjson.decode(res.body)
  local sent = false
  for _, h in ipairs(echo.headers) do sent = sent or h[1] == "Authorization" end
  t.eq(sent, true, "relative redirect keeps Authorization")
  local cross = fx.a .. "/redirect?to=" .. fx.b .. "/echo"
  res = assert(hf.http { url = cross, headers = auth })
  t.eq(res.status, 302, "cross-host redirect not followed by default")
  res = assert(hf.http { url = cross, headers = auth, cross_host = true })
  echo = cjson.decode(res.body)
  t.eq(echo.host, "127.0.0.2", "followed to the other host")
  for _, h in ipairs(echo.headers) do
    t.truthy(h[1]:lower() ~= "authorization", "no Authorization to another host")
  end
  res = assert(hf.http { method = "HEAD", url = fx.a .. "/redirect?to=/echo", follow_redirects = false })
  t.eq(res.status, 302, "HEAD stops at the redirect")
  t.eq(res.headers.location, "/echo", "and reports it")
end)

t.case("pool: http and hash jobs, rate limiter", function()
  local limiter = hf.ratelimiter()
  limiter:set_spacing("api", 0)
  local pool <close> = hf.pool(3, limiter)
  local ids = {}
  for i = 1, 6 do
    ids[pool:submit { url = fx.a .. "/bytes?n=" .. (i * 1000), sink = "sha256", bucket = "api" }] = i
  end
  local dir = t.tmpdir()
  t.write(dir .. "/abc", "abc")
  local hash_id = pool:submit { kind = "sha256_file", path = dir .. "/abc" }
  local bad_id = pool:submit { url = "http://127.0.0.1:1/", bucket = "api" }
  local limited_id = pool:submit { url = fx.a .. "/ratelimited", bucket = "api" }
  t.eq(pool:pending(), 9, "pending")
  local seen = 0
  while pool:pending() > 0 do
    local id, res, msg, code = pool:wait(10)
    t.truthy(id, "a job completes")
    seen = seen + 1
    if ids[id] then
      t.eq(res.bytes, ids[id] * 1000, "download size")
      t.eq(res.status, 200, "status")
    elseif id == hash_id then
      t.eq(res.sha256, ABC, "hash job")
    elseif id == bad_id then
      t.eq(res, nil, "failed job")
      t.eq(code, "connect", "failure code")
    elseif id == limited_id then
      t.eq(res.status, 429, "429 is a response")
    end
  end
  t.eq(seen, 9, "every job back once")
  t.eq(pool:wait(0.01), nil, "nothing left")
  local state = limiter:state("api")
  t.eq(state.requests, 8, "requests booked")
  t.eq(state.throttled, 1, "429 seen by the limiter")
  t.eq(state.quota, 500, "quota learnt")
  t.eq(state.remaining, 0, "window exhausted")
  t.truthy(state.blocked_for > 6 and state.blocked_for <= 7, "blocked for Retry-After")
  os.execute("rm -rf " .. dir)
end)

t.case("rate limit header parsers", function()
  t.eq(select(2, hf.parse_ratelimit('"api";r=494;t=201')), 494, "r")
  local bucket, q, w = hf.parse_ratelimit_policy('"fixed window";"resolvers";q=3000;w=300')
  t.eq(bucket, "resolvers", "bucket")
  t.eq(q, 3000, "q")
  t.eq(w, 300, "w")
end)

os.exit(t.run("test_bindings"))
