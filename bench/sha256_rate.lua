-- bench/download's ceiling: how fast one SHA-256 stream runs on this core with no network.
-- Hashes SIZE bytes of a 1 MiB block held in memory and prints the seconds it took.
local hf = require "hfscan"
local size_arg = ...
local size = math.tointeger(tonumber(size_arg)) or error("usage: sha256_rate.lua BYTES")
local block = string.rep("\x5a\xa5\x3c\xc3", 1 << 18)
local hasher <close> = hf.sha256_hasher()
local started = hf.now()
local left = size
while left >= #block do
  hasher:update(block)
  left = left - #block
end
hasher:update(block:sub(1, left))
local digest = hasher:hexdigest()
print(string.format("%.6f %s %d", hf.now() - started, digest, hasher:bytes()))
