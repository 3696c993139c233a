-- The OpenAPI document of `hfscan serve` (GET /openapi.json). Field names that
-- CIRCL hashlookup's own document uses (SHA-256, FileName, FileSize, source,
-- message, query) keep its meaning, so its clients read ours.
local database = require "hfscan.db.files"
local hf = require "hfscan"
local json = require "hfscan.json"

local M = {}

local function text(description) return { type = "string", description = description } end

local function ref(name) return { ["$ref"] = "#/components/schemas/" .. name } end

local function json_body(schema, description)
  return { description = description, content = { ["application/json"] = { schema = schema } } }
end

local ERROR = json_body(ref("Message"), "a JSON message naming what was wrong")

local function occurrence()
  local properties = {
    repo_id = text("the Hub repo, org/name"),
    filename = text("the file's path in the repo"),
    commit_hash = text("the commit the hash was taken at"),
    file_size = { type = "integer" },
    hash_method = text("how hfscan got the hash (lfs_metadata, downloaded, ...)"),
    download_url = text("the resolve URL of the file"),
    scan = text("the scan (its timestamp) that recorded it"),
  }
  for _, c in ipairs(database.SECURITY_COLUMNS) do
    properties[c] = text("the Hub's verdict (scans made with --security-status)")
  end
  return { type = "object", properties = properties }
end

local SCHEMAS = {
  Message = { type = "object", properties = { message = text("what happened"),
    query = text("the input it concerns") } },
  Occurrence = occurrence(),
  Record = { type = "object", properties = {
    ["SHA-256"] = text("the hash, upper case (hashlookup's field)"),
    FileName = text("the path of its first occurrence"),
    FileSize = text("its size in bytes, as a string (hashlookup's field)"),
    source = text("always hfscan"),
    hash = text("the hash, lower case"),
    known = { type = "boolean" },
    occurrences = { type = "array", items = ref("Occurrence") },
  } },
  Repo = { type = "object", properties = { repo_id = text("org/name"),
    files = { type = "array", items = ref("Occurrence") } } },
  Info = { type = "object", properties = {
    rows = { type = "integer" }, repos = { type = "integer" }, scans = { type = "integer" },
    latest_scan = text("the latest scan's timestamp"), endpoint = text("the Hub it scanned"),
    status = text("the latest scan's status: completed, incomplete, interrupted, failed, running"),
    security_status = { type = "boolean", description = "the latest scan recorded the Hub's verdicts" },
    flagged = { type = "integer", description = "files the Hub flags (GET /flagged)" },
    generation = { type = "integer", description = "rises each time a newer database is served" },
    ["hfscan-version"] = text("the server's version"),
  } },
}

local function get(summary, ok_schema, responses)
  local all = { ["200"] = json_body(ok_schema, "found") }
  for code, r in pairs(responses or {}) do all[code] = r end
  return { get = { summary = summary, responses = all } }
end

local function path_parameter(name, description)
  return { { name = name, ["in"] = "path", required = true, schema = { type = "string" },
    description = description } }
end

-- The document as JSON text.
function M.document(max_hashes, body_limit)
  local lookup = get("where a SHA-256 occurs on the Hub", ref("Record"),
    { ["400"] = ERROR, ["404"] = json_body(ref("Message"), "Non existing SHA-256") })
  lookup.get.parameters = path_parameter("sha256", "64 hex digits, any case")
  local repo = get("a repo's files at its latest scanned commit", ref("Repo"), { ["404"] = ERROR })
  repo.get.parameters = path_parameter("repo", "org/name")
  local bulk = { post = {
    summary = ("look up to %d hashes at once; one answer per hash, in order"):format(max_hashes),
    requestBody = { required = true, content = { ["application/json"] = { schema = {
      type = "object", required = json.array({ "hashes" }),
      properties = { hashes = { type = "array", maxItems = max_hashes,
        items = { type = "string" } } } } } } },
    responses = {
      ["200"] = json_body({ type = "array", items = { oneOf = json.array({ ref("Record"), ref("Message") }) } },
        "a Record for each known hash, a Message for each unknown one"),
      ["400"] = ERROR,
      ["413"] = json_body(ref("Message"), ("a body over %d bytes"):format(body_limit)),
    } } }
  return json.encode({
    openapi = "3.0.3",
    info = { title = "hfscan serve", version = hf.version,
      description = "SHA-256 lookups of the model files hfscan found on the Hugging Face Hub" },
    paths = {
      ["/lookup/sha256/{sha256}"] = lookup,
      ["/bulk/sha256"] = bulk,
      ["/repo/{repo}"] = repo,
      ["/info"] = get("what the database holds", ref("Info")),
      ["/flagged"] = get("the files whose latest verdict the Hub flags",
        { type = "array", items = ref("Occurrence") }, { ["404"] = ERROR }),
      ["/openapi.json"] = get("this document", { type = "object" }),
    },
    components = { schemas = SCHEMAS },
  })
end

return M
