-- CSV as RFC 4180 defines it: fields separated by commas, records ended
-- by CRLF; a field holding a comma, a double quote, CR or LF is enclosed in
-- double quotes and its quotes are doubled.
local csv = {}

local EOL = "\r\n"

-- One field, quoted when it must be.
function csv.field(s)
  s = tostring(s)
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- Encodes rows (an array of arrays of strings) into CSV text, every record
-- ended by CRLF. Numbers and booleans are written with tostring.
function csv.encode(rows)
  local lines = {}
  for i, row in ipairs(rows) do
    local fields = {}
    for j, v in ipairs(row) do fields[j] = csv.field(v) end
    lines[i] = table.concat(fields, ",") .. EOL
  end
  return table.concat(lines)
end

-- Parses one field starting at pos; returns the field text and the
-- position after it, or nil, "E_CSV: …".
local function parse_field(text, pos)
  if text:sub(pos, pos) ~= '"' then
    local stop = text:find("[,\r\n]", pos) or #text + 1
    local field = text:sub(pos, stop - 1)
    if field:find('"', 1, true) then
      return nil, "E_CSV: quote inside an unquoted field at byte " .. pos
    end
    return field, stop
  end
  local parts, i = {}, pos + 1
  while true do
    local q = text:find('"', i, true)
    if not q then return nil, "E_CSV: unterminated quoted field at byte " .. pos end
    parts[#parts + 1] = text:sub(i, q - 1)
    if text:sub(q + 1, q + 1) == '"' then
      parts[#parts + 1] = '"'
      i = q + 2
    else
      local after = text:sub(q + 1, q + 1)
      if after ~= "" and not after:find("[,\r\n]") then
        return nil, "E_CSV: text after a closing quote at byte " .. (q + 1)
      end
      return table.concat(parts), q + 1
    end
  end
end

-- Parses CSV text into an array of rows (arrays of strings). Accepts CRLF
-- and bare LF record ends; a final record end is optional.
function csv.decode(text)
  if type(text) ~= "string" then return nil, "E_CSV: text must be a string" end
  local rows, row, pos = {}, {}, 1
  if text == "" then return rows end
  while true do
    local field, nxt = parse_field(text, pos)
    if not field then return nil, nxt end
    row[#row + 1] = field
    local sep = text:sub(nxt, nxt)
    if sep == "," then
      pos = nxt + 1
    else
      rows[#rows + 1] = row
      row = {}
      if sep == "" then return rows end
      pos = nxt + (text:sub(nxt, nxt + 1) == "\r\n" and 2 or 1)
      if pos > #text then return rows end
    end
  end
end

return csv
