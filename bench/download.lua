-- bench/download's client: one GET streamed through SHA-256, nothing stored.
local hf = require "hfscan"
local res, err = hf.http { url = assert(..., "usage: download.lua URL"), sink = "sha256" }
if not res then
  io.stderr:write(err, "\n")
  os.exit(1)
end
print(res.sha256, res.bytes)
