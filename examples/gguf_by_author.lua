-- Example policy 1: scan only the GGUF files of a list of authors.
--
--   GGUF_AUTHORS=TheBloke,bartowski hfscan --policy examples/gguf_by_author.lua
--
-- The authors come from GGUF_AUTHORS (comma-separated); every documented flag
-- still works (--download-threshold, --output-dir, --token, ...).
local authors = {}
for name in (os.getenv("GGUF_AUTHORS") or "TheBloke,bartowski,unsloth"):gmatch("[^,%s]+") do
  authors[name:lower()] = true
end

return {
  -- model: the listing's fields (id, downloads, sha, lastModified, gated, private).
  select_model = function(model)
    local author = model.id:match("^([^/]+)/")
    return author ~= nil and authors[author:lower()] == true
  end,

  -- file: { path, size, lfs, sha256, blob_id } from the repo's metadata.
  select_file = function(file, model)
    return file.path:lower():match("%.gguf$") ~= nil
  end,
}
