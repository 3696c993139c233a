-- Scan policies: the decisions the bundled workflow asks a policy to make,
-- with defaults that give the standard scan. A user's policy file returns a
-- table of the hooks it overrides (hfscan --policy FILE.lua):
--
--   select_model(model)      -> boolean   scan this listed model?
--   select_file(file, model) -> boolean   is this file a target?
--   tiers(file, model)       -> {names}   hash tiers to try, in order
--   on_row(row, model)       -> row | false   finished row (names in their text form,
--                                              hfscan.db.names): change, add columns, or drop
--   on_error(err, model)     -> "continue" | "skip_repo" | "stop"
--   extra_columns = {names}  columns added to the extended CSV (values set by on_row)
--   listing_expand = {names} more listing fields for select_model (e.g. "tags")
--
-- Hooks get plain tables (see docs/lua-api.md). A hook that raises, or returns
-- the wrong type, stops the scan with the policy file, line and hook named;
-- the database written so far stays valid.
local database = require "hfscan.db.files"
local targets = require "hfscan.scan.targets"
local tiers = require "hfscan.scan.tiers"

local M = {}

M.TIERS = tiers.NAMES

M.defaults = {
  select_model = function(model) return true end,
  select_file = function(file, model) return targets.is_target(file.path) end,
  tiers = function(file, model) return M.TIERS end,
  on_row = function(row, model) return row end,
  on_error = function(err, model) return "continue" end,
}

-- What each hook must return, checked on every call.
local RESULT_CHECKS = {
  select_model = function(v) return type(v) == "boolean", "a boolean" end,
  select_file = function(v) return type(v) == "boolean", "a boolean" end,
  tiers = function(v)
    if type(v) ~= "table" then return false, "a list of tier names" end
    for _, name in ipairs(v) do
      if not tiers.known(name) then
        return false, ("a list of tier names (%s)"):format(table.concat(tiers.NAMES, ", "))
      end
    end
    return true
  end,
  -- A policy may add columns and change names, never write a hash hfscan would not.
  on_row = function(v)
    return v == false or v == nil or (type(v) == "table" and database.row_problem(v) == nil),
      "a row table with a valid hash (64 lowercase hex or FAILED_*) and commit, or false to drop it"
  end,
  on_error = function(v)
    return v == "continue" or v == "skip_repo" or v == "stop", '"continue", "skip_repo" or "stop"'
  end,
}

-- Columns a policy's extra_columns may not name: the extended file's own.
local RESERVED_COLUMNS = { carried_over_from = true }
for _, list in ipairs({ database.EXTENDED_COLUMNS, database.SECURITY_COLUMNS }) do
  for _, c in ipairs(list) do RESERVED_COLUMNS[c] = true end
end

-- The error a broken policy raises: it stops the scan.
local PolicyError = {}
PolicyError.__index = PolicyError
PolicyError.__tostring = function(e) return e.message end
M.PolicyError = PolicyError

function M.is_policy_error(e) return getmetatable(e) == PolicyError end

local function policy_error(message)
  return setmetatable({ message = message }, PolicyError)
end

local Policy = {}
Policy.__index = Policy

-- Wraps a table of hooks (nil for the defaults). source names it in messages.
function M.new(hooks, source)
  hooks = hooks or {}
  local p = setmetatable({ hooks = hooks, source = source or "default policy",
    extra_columns = hooks.extra_columns or {}, listing_expand = hooks.listing_expand or {} }, Policy)
  for name in pairs(hooks) do
    if not M.defaults[name] and name ~= "extra_columns" and name ~= "listing_expand" then
      error(policy_error(("%s: unknown hook '%s' (known: select_model, select_file, tiers, on_row, on_error, extra_columns, listing_expand)")
        :format(p.source, tostring(name))), 0)
    end
    if M.defaults[name] and type(hooks[name]) ~= "function" then
      error(policy_error(("%s: hook '%s' is a %s, not a function"):format(p.source, name, type(hooks[name]))), 0)
    end
  end
  for _, key in ipairs({ "extra_columns", "listing_expand" }) do
    local list = hooks[key]
    if list ~= nil and type(list) ~= "table" then
      error(policy_error(("%s: '%s' must be a list of names"):format(p.source, key)), 0)
    end
  end
  for _, name in ipairs(p.extra_columns) do
    if RESERVED_COLUMNS[name] then
      error(policy_error(("%s: extra column '%s' is one of hfscan's own"):format(p.source, name)), 0)
    end
  end
  return p
end

-- Loads a policy file: a Lua chunk that returns a table of hooks.
function M.load(path)
  local chunk, err = loadfile(path, "t")
  if not chunk then error(policy_error("cannot load policy " .. err), 0) end
  local ok, hooks = pcall(chunk)
  if not ok then error(policy_error(("policy %s failed while loading: %s"):format(path, tostring(hooks))), 0) end
  if type(hooks) ~= "table" then
    error(policy_error(("policy %s returned a %s, not a table of hooks"):format(path, type(hooks))), 0)
  end
  return M.new(hooks, path)
end

-- Calls a hook (the policy's or the default) and checks what it returns.
-- Raises a PolicyError naming the file, line and hook when it misbehaves.
function Policy:call(name, ...)
  local fn = self.hooks[name]
  if not fn then return M.defaults[name](...) end
  local ok, result = xpcall(fn, debug.traceback, ...)
  local where = debug.getinfo(fn, "S")
  local place = ("%s:%d"):format(where.short_src, where.linedefined)
  if not ok then
    error(policy_error(("policy hook '%s' (defined at %s) raised an error: %s"):format(name, place,
      tostring(result))), 0)
  end
  local good, expected = RESULT_CHECKS[name](result)
  if not good then
    error(policy_error(("policy hook '%s' (defined at %s) returned a %s; it must return %s")
      :format(name, place, type(result), expected)), 0)
  end
  return result
end

return M
