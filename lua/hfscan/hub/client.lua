-- The hub client for scripts and the REPL: plain function calls that run on the
-- worker pool and return when done, plus run() for many requests at once.
--
--   local hub = require("hfscan.hub.client").connect { endpoint = ..., token = ... }
--   local info = hub.model_info("org/name")          -- one call, waits for it
--   hub.run(function(h)                               -- many tasks, in parallel
--     for _, id in ipairs(ids) do h.spawn(function() print(h.model_info(id)) end) end
--   end)
--
-- Defaults come from the environment as for a scan (hfscan.config): HF_ENDPOINT,
-- HF_TOKEN, HUGGING_FACE_HUB_TOKEN, the token file.
local config = require "hfscan.config"
local session = require "hfscan.hub.session"

local M = {}

-- The functions of hfscan.hub offered as plain calls.
M.CALLS = { "model_info", "tree", "raw", "file_metadata", "download_sha256", "whoami",
  "get_json", "request" }

-- options: endpoint, token (false: none; nil: the environment's), workers (4),
-- rate_limit (seconds per worker, 0), raise_errors (calls raise "kind: message"
-- on failure; the REPL's). Raises for an HF_ENDPOINT that is not an http(s) URL.
function M.connect(options)
  options = options or {}
  local token = options.token
  if token == nil then token = config.find_token() end
  local s = session.open { endpoint = options.endpoint or assert(config.endpoint()),
    token = token or nil, workers = options.workers,
    rate_limit = options.rate_limit }
  local hub, loop = s.hub, s.loop
  local client = { hub = hub, loop = loop, pool = s.pool, limiter = s.limiter, endpoint = hub.endpoint }

  -- Runs fn(client) as a task, with client.spawn for more tasks; returns what fn returns.
  -- Called from inside a task (a plain call such as client.model_info in a function
  -- given to run or spawn), fn runs right there: the task waits, the others go on.
  function client.run(fn, ...)
    if loop.running then return fn(client, ...) end
    local results
    local args = table.pack(...)
    loop:spawn(function() results = table.pack(fn(client, table.unpack(args, 1, args.n))) end)
    loop:run()
    return table.unpack(results or {}, 1, results and results.n or 0)
  end

  function client.spawn(fn, ...) return loop:spawn(fn, ...) end

  -- raise_errors (the REPL's): a failed call raises "kind: message" instead of
  -- returning nil and an error table, which a prompt would print as table: 0x...
  local function answer(value, err, ...)
    if value == nil and options.raise_errors and type(err) == "table" then
      error(("%s: %s"):format(err.kind or "error", err.message or ""), 3)
    end
    return value, err, ...
  end

  for _, name in ipairs(M.CALLS) do
    client[name] = function(...)
      local args = table.pack(...)
      return answer(client.run(function() return hub[name](hub, table.unpack(args, 1, args.n)) end))
    end
  end

  -- All models above a download count (or the first `limit`), as a list.
  function client.list_models(opts)
    opts = opts or {}
    local params = { { "sort", opts.sort or "downloads" }, { "limit", opts.page_size or 1000 } }
    for _, key in ipairs({ "search", "author", "filter" }) do
      if opts[key] then params[#params + 1] = { key, opts[key] } end
    end
    for _, e in ipairs(opts.expand or { "downloads", "sha", "lastModified", "gated", "private" }) do
      params[#params + 1] = { "expand", e }
    end
    local models = {}
    local ok, err = client.run(function()
      return hub:list_models(params, function(items)
        for _, m in ipairs(items) do
          if opts.min_downloads and (tonumber(m.downloads) or 0) < opts.min_downloads then return false end
          models[#models + 1] = m
          if opts.limit and #models >= opts.limit then return false end
        end
      end)
    end)
    if not ok then return answer(nil, err) end
    return models
  end

  function client.close() s:close() end
  return client
end

return M
