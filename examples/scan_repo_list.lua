-- Example 3: scan an explicit list of repo ids read from a file (one per line,
-- '#' comments allowed), whatever their downloads, into the usual database files.
--
--   hfscan --script examples/scan_repo_list.lua REPOS.txt [--endpoint URL]
--          [--token T] [--output-dir DIR] [--max-file-size GB]
--
-- It is the bundled workflow's pieces put together differently: the hub client,
-- hfscan.scan.repo for the hash tiers, hfscan.db.files for the files.
local client = require "hfscan.hub.client"
local database = require "hfscan.db.files"
local hf = require "hfscan"
local repo_scan = require "hfscan.scan.repo"
local scan = require "hfscan.scan.scanner"
local scan_options = require "hfscan.scan.options"

local args = { ... }
local list_file = table.remove(args, 1)
if not list_file then
  io.stderr:write("usage: scan_repo_list.lua REPOS.txt [scan flags]\n")
  os.exit(2)
end
local o = assert(scan_options.parse(args)) -- the documented flags, defaults and checks

local repos = {}
for line in assert(io.open(list_file)):lines() do
  local id = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
  if id ~= "" then repos[#repos + 1] = id end
end

assert(hf.mkdir_p(o.output_dir))
local ts = database.fresh_timestamp(o.output_dir)
local parameters = scan.parameters(o, database.utc_now())
parameters.download_threshold = 0 -- the list decides, not the downloads
local db = assert(database.create(o.output_dir, ts, parameters))
local hub = client.connect { endpoint = o.endpoint, token = o.token, workers = o.max_workers }
local context = { hub = hub.hub, max_file_size = math.floor(o.max_file_size * 1024 ^ 3) }

local files, failures = 0, 0
hub.run(function(c)
  for _, id in ipairs(repos) do
    c.spawn(function()
      -- Without a sha the repo is pinned to the commit its model info reports.
      local rows, errors = repo_scan.scan(context, { id = id })
      local model_sha = rows[1] and rows[1].commit_hash or ""
      assert(db:write_repo(rows, errors, id, model_sha))
      files, failures = files + #rows, failures + #errors
    end)
  end
end)
db:close()
-- The files as written, for hfscan db check.
assert(require("hfscan.db.manifest").write(db.paths))
print(("%d repos, %d files, %d errors: %s"):format(#repos, files, failures, db.paths.extended))
