-- JSON output with what Debian's lua-cjson 2.1.0 lacks: empty arrays (mark a
-- table with json.array) and keys in a stable, sorted order. Decoding stays
-- with cjson.
local M = {}

local ARRAY = { __name = "json array" }

-- Marks t (possibly empty) as a JSON array; returns it.
function M.array(t) return setmetatable(t or {}, ARRAY) end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

-- The shortest decimal that reads back as the same float: 0.074, not the
-- 0.073999999999999996 that %.17g gives.
local function shortest(v)
  for digits = 15, 17 do
    local text = ("%." .. digits .. "g"):format(v)
    if tonumber(text) == v then return text end
  end
end

local function is_array(t)
  if getmetatable(t) == ARRAY then return true end
  local n = #t
  if n == 0 then return false end
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return true
end

local encode

local function encode_table(t, out)
  if is_array(t) then
    out[#out + 1] = "["
    for i = 1, #t do
      if i > 1 then out[#out + 1] = "," end
      encode(t[i], out)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = encode_string(k)
    out[#out + 1] = ":"
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    encode(v, out)
  end
  out[#out + 1] = "}"
end

encode = function(v, out)
  local kind = type(v)
  if kind == "table" then
    encode_table(v, out)
  elseif kind == "string" then
    out[#out + 1] = encode_string(v)
  elseif kind == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      out[#out + 1] = "null"
    elseif math.type(v) == "integer" then
      out[#out + 1] = tostring(v)
    else
      out[#out + 1] = shortest(v)
    end
  elseif kind == "boolean" then
    out[#out + 1] = tostring(v)
  else
    out[#out + 1] = "null" -- nil, cjson.null and anything else
  end
end

function M.encode(value)
  local out = {}
  encode(value, out)
  return table.concat(out)
end

return M
