-- Prints the SQL with which hfscan (lookup, serve) finds a hash's occurrences
-- in DIR's database, for bench/serve's sqlite3 baseline to run the same query.
-- usage: hfscan --script bench/serve_sql.lua DIR
local store = require "hfscan.db.store"
local dir = ... or error("usage: hfscan --script bench/serve_sql.lua DIR")
local s = assert(store.open_readonly(dir, store.path(dir), "ro"))
io.write((s:occurrences_sql():gsub("%s+", " ")), "\n")
s:close()
