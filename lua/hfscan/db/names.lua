-- File names as text. A name on the Hub is any bytes, but the CSVs, the
-- SQLite filename column and what the commands print must be text every
-- reader takes: valid UTF-8 (Python's csv and pandas refuse anything else), no
-- control characters, and nothing a spreadsheet runs as a formula. The text
-- form of a name is reversible (unescape gives the bytes back), and a name
-- that needs none of this is its own text form:
--   \xHH  a byte that is a control character (U+0000-U+001F, U+007F, and each
--         byte of U+0080-U+009F) or that is not part of valid UTF-8
--   \\    a backslash that would otherwise read as the start of one of these
--         (one followed by "\" or "x"); any other backslash stands for itself,
--         so the names with a backslash that the Hub does have keep their form
--   '     before a name that begins with = + - or @ (OWASP's advice against
--         CSV injection), or with apostrophes and then one of them, so that
--         unescape knows which apostrophe it added
local M = {}

local FORMULA = "^'*[=+%-@]"
-- An apostrophe unescape removes: one that escape added before a FORMULA start.
local ADDED_APOSTROPHE = "^'('*[=+%-@].*)$"

-- The length of the UTF-8 sequence a byte begins, or nil for a byte that
-- begins none (a continuation byte, or one no valid sequence starts with).
local function sequence_length(byte)
  if byte < 0x80 then return 1 end
  if byte >= 0xC2 and byte <= 0xDF then return 2 end
  if byte >= 0xE0 and byte <= 0xEF then return 3 end
  if byte >= 0xF0 and byte <= 0xF4 then return 4 end
  return nil
end

local function is_control(codepoint)
  return codepoint < 0x20 or (codepoint >= 0x7F and codepoint <= 0x9F)
end

-- Whether s is valid UTF-8 (strictly: no surrogates, no over-long forms,
-- nothing above U+10FFFF) with no control character.
function M.is_text(s)
  return utf8.len(s) ~= nil and not s:find("[\0-\31\127]") and not s:find("\xC2[\x80-\x9F]")
end

-- The characters of raw as themselves, and each other byte as \xHH.
local function pieces(raw)
  local out, at = {}, 1
  while at <= #raw do
    local n = sequence_length(raw:byte(at))
    local char = n and raw:sub(at, at + n - 1)
    if char and #char == n and utf8.len(char) == 1 and not is_control(utf8.codepoint(char)) then
      out[#out + 1] = char
      at = at + n
    else
      out[#out + 1] = ("\\x%02X"):format(raw:byte(at))
      at = at + 1
    end
  end
  return out
end

-- Doubles each backslash that the text after it would otherwise turn into
-- the start of an escape.
local function double_ambiguous_backslashes(out)
  for k, piece in ipairs(out) do
    local following = out[k + 1]
    if piece == "\\" and following and following:find("^[\\x]") then out[k] = "\\\\" end
  end
  return out
end

-- The text form of a name's bytes.
function M.escape(raw)
  local text = raw
  if not (M.is_text(raw) and not raw:find("\\", 1, true)) then
    text = table.concat(double_ambiguous_backslashes(pieces(raw)))
  end
  if text:find(FORMULA) then text = "'" .. text end
  return text
end

-- One escape after a backslash: "\" for "\\", the byte for "xHH"; nil leaves
-- a backslash that starts neither as it is.
local function decode(after)
  if after:sub(1, 1) == "\\" then return "\\" .. after:sub(2) end
  local hex = after:match("^x(%x%x)$")
  return hex and string.char(tonumber(hex, 16))
end

-- The bytes of a name's text form.
function M.unescape(text)
  if M.is_plain(text) then return text end
  text = text:match(ADDED_APOSTROPHE) or text
  if not text:find("\\", 1, true) then return text end
  return (text:gsub("\\(.%x?%x?)", decode))
end

-- The text form of a name read back from a file, whoever wrote it: a name
-- that an older hfscan wrote raw comes out escaped, a text form as it is.
-- (Only an old raw name holding "\\" or "\x" and two hex digits reads back
-- as other bytes.)
function M.canonical(field)
  if M.is_plain(field) then return field end
  return M.escape(M.unescape(field))
end

-- Printable ASCII without a backslash, not beginning with an apostrophe or a
-- formula's start: most names are, and each is its own text form and bytes
-- (a cheap test first, for the millions of rows a database build reads).
local PLAIN = "^[^'=+%-@\\\128-\255%c][^\\\128-\255%c]*$"
function M.is_plain(field) return field:find(PLAIN) ~= nil end

return M
