-- Example 4: hash local files in parallel and print them in sha256sum's format.
-- Runs in the hfscan host or in Debian's stock lua5.4 with the module installed:
--
--   hfscan --script examples/hash_local.lua model.safetensors *.gguf
--   lua5.4 examples/hash_local.lua model.safetensors *.gguf
--   hfscan --script examples/hash_local.lua *.gguf | sha256sum -c
local hf = require "hfscan"

local files = { ... }
if #files == 0 then
  io.stderr:write("usage: hash_local.lua FILE...\n")
  os.exit(2)
end

local status = 0
-- One job per file on the worker pool; results come back in input order.
for _, result in ipairs(hf.sha256_files(files, hf.cpu_count())) do
  if result.sha256 then
    io.write(result.sha256, "  ", result.path, "\n")
  else
    io.stderr:write("hash_local.lua: ", result.error, "\n")
    status = 1
  end
end
os.exit(status)
