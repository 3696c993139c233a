-- Lua unit tests of the text form of file names (hfscan.db.names) and of the
-- SQLite store that keeps both forms: round trips of every kind of awkward
-- name, and a database of an older hfscan brought up to the new schema.
package.path = (os.getenv("HFSCAN_SOURCE_DIR") or ".") .. "/tests/lua/?.lua;" .. package.path
local t = require "testlib"
local hf = require "hfscan"
local names = require "hfscan.db.names"
local store = require "hfscan.db.store"

-- raw name -> its text form, one of each rule.
local FORMS = {
  { "model.safetensors", "model.safetensors" },
  { "\u{fc}n\u{ef}c\u{f8}d\u{e9}-\u{6a21}\u{578b}-\u{1F917}.gguf",
    "\u{fc}n\u{ef}c\u{f8}d\u{e9}-\u{6a21}\u{578b}-\u{1F917}.gguf" },             -- multi-byte UTF-8
  { "bad-\xFF-byte.bin", "bad-\\xFF-byte.bin" },
  { "latin1-caf\xE9.pt", "latin1-caf\\xE9.pt" },
  { "nul\0byte.pkl", "nul\\x00byte.pkl" },
  { "cr\rlf\n.pth", "cr\\x0Dlf\\x0A.pth" },
  { "tab\tdel\127.h5", "tab\\x09del\\x7F.h5" },
  { "c1-\u{85}.onnx", "c1-\\xC2\\x85.onnx" },               -- NEL: valid UTF-8, a control
  { "surrogate-\xED\xA0\x80.bin", "surrogate-\\xED\\xA0\\x80.bin" }, -- refused by strict UTF-8
  { "overlong-\xC0\xAF.bin", "overlong-\\xC0\\xAF.bin" },
  { "cut-\xE6\xA8.bin", "cut-\\xE6\\xA8.bin" },                -- a sequence cut short
  { "back\\slash.bin", "back\\slash.bin" },                     -- kept: reads as no escape
  { "trailing\\", "trailing\\" },
  { "literal\\x41.bin", "literal\\\\x41.bin" },                -- doubled: it would read as "A"
  { "two\\\\.bin", "two\\\\\\.bin" },                           -- the first doubled, the second kept
  { "\\\xFF.bin", "\\\\\\xFF.bin" },                            -- before an escape: doubled
  { "=SUM(A1).pkl", "'=SUM(A1).pkl" },
  { "+plus.bin", "'+plus.bin" },
  { "-minus.bin", "'-minus.bin" },
  { "@at.bin", "'@at.bin" },
  { "'=quoted.bin", "''=quoted.bin" },                          -- so unescape knows its own
  { "'plain.bin", "'plain.bin" },
  { "a=b.bin", "a=b.bin" },
  { "\t=tab.bin", "\\x09=tab.bin" },                            -- a tab starts no formula once escaped
  { "", "" },
}

t.case("names: each rule's text form, and unescape gives the bytes back", function()
  for _, case in ipairs(FORMS) do
    local raw, text = case[1], case[2]
    t.eq(names.escape(raw), text, ("escape(%q)"):format(raw))
    t.eq(names.unescape(text), raw, ("unescape(%q)"):format(text))
    t.truthy(names.is_text(text), ("%q is text"):format(text))
    t.eq(names.canonical(text), text, ("a text form is canonical: %q"):format(text))
  end
end)

t.case("names: is_text is strict UTF-8 without control characters", function()
  t.truthy(names.is_text("plain \u{6a21}\u{1F917}"), "multi-byte UTF-8")
  for _, s in ipairs({ "\xFF", "a\0b", "\r", "\127", "\u{9F}", "\xED\xB0\x80", "\xF4\x90\x80\x80",
    "\xC1\xBF" }) do
    t.eq(names.is_text(s), false, ("%q"):format(s))
  end
end)

t.case("names: random byte strings round trip to text", function()
  local alphabet = { "\\", "x", "4", "1", "f", "\0", "\n", "\255", "\xC3", "\xA9", "\xE6", "\xA8",
    "\xA1", "'", "=", "-", "@", "+", "/", "a" }
  math.randomseed(14)
  for _ = 1, 20000 do
    local parts = {}
    for j = 1, math.random(0, 10) do parts[j] = alphabet[math.random(#alphabet)] end
    local raw = table.concat(parts)
    local text = names.escape(raw)
    t.eq(names.unescape(text), raw, ("round trip of %q"):format(raw))
    t.truthy(names.is_text(text) and not text:find("^[=+%-@]"), ("%q is safe text"):format(text))
    -- The shortcut for plain names: each is its own text form.
    if names.is_plain(raw) then t.eq(text, raw, ("plain %q is its own text form"):format(raw)) end
  end
  t.truthy(names.is_plain("org/model-00001-of-00002.safetensors") and not names.is_plain("'=x")
    and not names.is_plain("a\\b") and not names.is_plain("caf\xE9") and not names.is_plain(""),
    "what is plain")
end)

t.case("names: a name an older hfscan wrote raw reads back in its text form", function()
  t.eq(names.canonical("bad-\xFF.bin"), "bad-\\xFF.bin", "raw bytes")
  t.eq(names.canonical("=x.bin"), "'=x.bin", "a formula start")
  t.eq(names.canonical("back\\slash.bin"), "back\\slash.bin", "a lone backslash")
end)

local function blob_of(db, filename)
  return db:query("SELECT hex(raw_filename) AS raw, typeof(raw_filename) AS kind FROM files "
    .. "WHERE filename = ?", filename)[1]
end

local function hex(s) return (s:gsub(".", function(c) return ("%02X"):format(c:byte()) end)) end

t.case("store: filename holds the text form, raw_filename the bytes as a BLOB", function()
  local dir = t.tmpdir()
  local s = assert(store.open(dir))
  local scan = s:add_scan("20260101_000000", dir .. "/x.csv")
  assert(s:add_rows(scan, {
    { repo_id = "o/r", filename = "nul\\x00byte.pkl", hash = "h1", commit_hash = "c" },
    { repo_id = "o/r", filename = "bad-\xFF.bin", hash = "h2", commit_hash = "c" }, -- an old raw name
  }))
  local got = blob_of(s.db, "nul\\x00byte.pkl")
  t.eq(got.kind, "blob", "stored as a BLOB")
  t.eq(got.raw, hex("nul\0byte.pkl"), "the bytes, NUL included")
  t.eq(blob_of(s.db, "bad-\\xFF.bin").raw, hex("bad-\xFF.bin"), "an old raw name: both forms")
  local rows = s:latest_repo_files("o/r")
  local raw = {}
  for _, r in ipairs(rows) do raw[r.filename] = r.raw_filename end
  t.eq(raw["nul\\x00byte.pkl"], "nul\0byte.pkl", "latest_repo_files gives the bytes back")
  s:close()
  os.execute("rm -rf " .. dir)
end)

t.case("store: a database of an older hfscan gets raw_filename when opened", function()
  local dir = t.tmpdir()
  local old = assert(hf.sqlite_open(store.path(dir)))
  -- The schema before raw_filename, whose filename held the raw name.
  old:exec([[CREATE TABLE scans (scan_id INTEGER PRIMARY KEY, timestamp TEXT NOT NULL UNIQUE,
      extended_csv TEXT NOT NULL, endpoint TEXT, scan_start TEXT, download_threshold INTEGER,
      shard TEXT);
    CREATE TABLE files (scan_id INTEGER NOT NULL, repo_id TEXT NOT NULL, filename TEXT NOT NULL,
      hash TEXT NOT NULL, file_size INTEGER, file_type TEXT, last_modified TEXT, download_url TEXT,
      hash_method TEXT, commit_hash TEXT, carried_over_from TEXT);
    INSERT INTO scans (scan_id, timestamp, extended_csv) VALUES (1, '20250101_000000', 'x.csv');]])
  for _, name in ipairs({ "bad-\xFF.bin", "plain.bin" }) do
    old:run("INSERT INTO files (scan_id, repo_id, filename, hash) VALUES (1, 'o/r', ?, 'h')", name)
  end
  old:close()
  local s = assert(store.open(dir))
  t.eq(s.db:query("PRAGMA user_version")[1].user_version, store.SCHEMA_VERSION, "version recorded")
  t.eq(blob_of(s.db, "bad-\\xFF.bin").raw, hex("bad-\xFF.bin"), "the raw name kept as bytes, text made")
  t.eq(blob_of(s.db, "plain.bin").raw, hex("plain.bin"), "a plain name")
  t.eq(#s:occurrences("h"), 2, "no row lost")
  s:close()
  local again = assert(store.open(dir)) -- a second open finds nothing to do
  t.eq(#again:occurrences("h"), 2, "still two rows")
  again:close()
  os.execute("rm -rf " .. dir)
end)

os.exit(t.run("test_names"))
