-- Example 2: audit mode. Downloads every target file of the given repos (hashed
-- while streaming, never stored) and compares the computed SHA-256 with what
-- the Hub claims: lfs.sha256 from the metadata and X-Linked-Etag for LFS files,
-- the git blob id for plain git files, and the size. Writes a CSV report and
-- exits 1 if any file does not match, 2 if nothing differs but a repo or a file
-- could not be read (it was not audited).
--
--   hfscan --script examples/audit.lua [--endpoint URL] [--token T]
--          [--report audit.csv] REPO...
local client = require "hfscan.hub.client"
local hf = require "hfscan"
local names = require "hfscan.db.names"
local targets = require "hfscan.scan.targets"

local function parse(args)
  local o, repos = { report = "audit_report.csv" }, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--endpoint" or a == "--token" or a == "--report" then
      o[a:sub(3)] = args[i + 1]
      i = i + 1
    else
      repos[#repos + 1] = a
    end
    i = i + 1
  end
  return o, repos
end

-- Compares one file; returns a report row.
local function audit_file(hub, repo, commit, sibling)
  local lfs = type(sibling.lfs) == "table" and sibling.lfs or nil
  local claimed = lfs and lfs.sha256 or ""
  local got, err = hub:download_sha256(repo, commit, sibling.rfilename,
    { git_blob_size = (not lfs) and sibling.size or nil })
  -- The name and the message in the text form the database files use (valid UTF-8).
  local row = { repo, names.escape(sibling.rfilename), commit, claimed, "", "", "" }
  if not got then
    row[6], row[7] = "error", names.escape(err.message)
    return row
  end
  row[5] = got.sha256
  local problems = {}
  if lfs and got.sha256 ~= lfs.sha256 then problems[#problems + 1] = "SHA-256 differs from lfs.sha256" end
  if got.linked_etag and got.linked_etag ~= got.sha256 then
    problems[#problems + 1] = "SHA-256 differs from X-Linked-Etag"
  end
  if not lfs and sibling.blobId and got.git_sha1 ~= sibling.blobId then
    problems[#problems + 1] = "git blob id differs from blobId"
  end
  if sibling.size and got.bytes ~= sibling.size then problems[#problems + 1] = "size differs" end
  row[6] = #problems == 0 and "match" or "mismatch"
  row[7] = table.concat(problems, "; ")
  return row
end

local o, repos = parse({ ... })
if #repos == 0 then
  io.stderr:write("usage: audit.lua [--endpoint URL] [--token T] [--report FILE] REPO...\n")
  os.exit(2)
end
local hub = client.connect { endpoint = o.endpoint, token = o.token }
local report = { { "repo_id", "filename", "commit_hash", "claimed_sha256", "computed_sha256",
  "status", "detail" } }
local mismatches, unreadable = 0, 0

hub.run(function(c)
  for _, repo in ipairs(repos) do
    c.spawn(function()
      local info, err = c.hub:model_info(repo, "main", { blobs = true })
      if not info then
        -- A repo that could not be read was not audited: that is not "all matching".
        unreadable = unreadable + 1
        report[#report + 1] = { repo, "", "", "", "", "error", names.escape(err.message) }
        return
      end
      for _, sibling in ipairs(info.siblings) do
        if targets.is_target(sibling.rfilename) then
          -- Each file in its own task: downloads overlap on the pool.
          c.spawn(function()
            local row = audit_file(c.hub, repo, info.sha, sibling)
            if row[6] == "mismatch" then mismatches = mismatches + 1 end
            if row[6] == "error" then unreadable = unreadable + 1 end
            report[#report + 1] = row
          end)
        end
      end
    end)
  end
end)

local writer = assert(hf.csv_writer(o.report, "create"))
table.sort(report, function(a, b)
  if a[1] == "repo_id" then return b[1] ~= "repo_id" end
  if b[1] == "repo_id" then return false end
  return a[1] .. "\0" .. a[2] < b[1] .. "\0" .. b[2]
end)
assert(writer:write_block(report))
writer:close()
print(("%d files audited, %d not matching, %d repos or files could not be read; report: %s")
  :format(#report - 1 - unreadable, mismatches, unreadable, o.report))
-- 1: something differs; 2: something could not be audited (and nothing differs).
os.exit(mismatches > 0 and 1 or unreadable > 0 and 2 or 0)
