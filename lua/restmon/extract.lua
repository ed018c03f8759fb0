-- Extraction rules (docs/workflow-format.md, "Extraction"): values out of
-- one response by JSONPath, XPath, regex, header, status, duration or
-- custom Lua, with the options all / type / default / optional.
--
-- Also home of the helpers on JSON-shaped Lua values (is_array, json_type,
-- number, show) that assertions, status mapping and output share, since
-- they all work on what extraction produces.
local native = require "restmon.native"

local json, jsonpath, xml, re = native.json, native.jsonpath, native.xml, native.re

local extract = {}

local SOURCES = { "jsonpath", "xpath", "regex", "from", "lua" }
local FROM = { header = true, status = true, duration_ms = true }
local TEXT_FIELDS = { "jsonpath", "xpath", "regex", "lua", "name" }

-- True for a Lua table that stands for a JSON array: marked with
-- json.array_mt, or unmarked with keys exactly 1..n (n >= 1), the same rule
-- the JSON bridge uses when it encodes. An empty unmarked table is {}.
function extract.is_array(v)
  if type(v) ~= "table" then return false end
  if getmetatable(v) == json.array_mt then return true end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n == 0 then return false end
  for i = 1, n do
    if v[i] == nil then return false end
  end
  return true
end

-- The JSON type name of v: string, integer, number (not integral), boolean,
-- array, object, null; nil for nil, the Lua type for anything else.
function extract.json_type(v)
  local t = type(v)
  if v == nil then return nil end
  if v == json.null then return "null" end
  if t == "number" then
    if v == math.floor(v) and v == v and v ~= math.huge and v ~= -math.huge then
      return "integer"
    end
    return "number"
  end
  if t == "table" then return extract.is_array(v) and "array" or "object" end
  return t
end

-- s without surrounding white space. Written without a backtracking
-- pattern: the sandbox refuses those on long subjects.
function extract.trim(s)
  local first = s:find("%S")
  if not first then return "" end
  local last = #s
  while s:sub(last, last):find("%s") do last = last - 1 end
  return s:sub(first, last)
end

-- The number a value stands for: a number, or a string holding a decimal
-- number (JSON-like, surrounding spaces allowed; no hex, inf or nan), else nil.
function extract.number(v)
  if type(v) == "number" then return v end
  if type(v) ~= "string" or #v > 64 then return nil end
  local s = extract.trim(v)
  if s:find("^[-+]?%d+%.?%d*$") or s:find("^[-+]?%.%d+$")
    or s:find("^[-+]?%d+%.?%d*[eE][-+]?%d+$") or s:find("^[-+]?%.%d+[eE][-+]?%d+$") then
    return tonumber(s)
  end
  return nil
end

-- Shortest text that reads back as n; integral values without exponent.
local function number_text(n)
  if n ~= n then return "NaN" end
  if n == math.huge then return "Infinity" end
  if n == -math.huge then return "-Infinity" end
  if n == math.floor(n) and math.abs(n) < 2 ^ 53 then return string.format("%d", n) end
  for digits = 14, 17 do
    local s = string.format("%." .. digits .. "g", n)
    if tonumber(s) == n then return s end
  end
  return tostring(n)
end
extract.number_text = number_text

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- Cuts s to at most max bytes without splitting a UTF-8 sequence.
local function shorten(s, max)
  if #s <= max then return s end
  local cut = max - 3
  while cut > 1 and s:byte(cut + 1) and s:byte(cut + 1) >= 0x80 and s:byte(cut + 1) < 0xC0 do
    cut = cut - 1
  end
  return s:sub(1, cut) .. "..."
end

-- A short human form of a value for reasons and messages: strings quoted,
-- numbers plain, tables as compact JSON, long texts cut at 80 bytes.
function extract.show(v)
  if v == nil then return "nothing" end
  if v == json.null then return "null" end
  local t = type(v)
  if t == "number" then return number_text(v) end
  if t == "string" then return shorten(quote(#v > 80 and v:sub(1, 80) or v), 80) end
  if t == "table" then
    return shorten(json.encode(v) or tostring(v), 80)
  end
  return tostring(v)
end

-- The per-attempt view of a response that every rule reads: the body text,
-- the JSON document parsed at most once, and the runner for custom Lua
-- (lua(code, label, extra) -> packed results | nil, message).
function extract.source(response, lua)
  return { response = response or {}, body = response and response.body, lua = lua }
end

-- The parsed JSON body (a json.doc handle) or nil and why; parsed once per
-- source, the error remembered too.
function extract.json_doc(src)
  if src.doc == nil and src.doc_err == nil then
    if type(src.body) ~= "string" then
      src.doc_err = "response has no body"
    else
      local doc, err = json.doc(src.body)
      if doc then
        src.doc = doc
      elseif tostring(err):find("^E_PARSE") then
        src.doc_err = "body is not JSON: " .. tostring(err)
      else
        src.doc_err = "body cannot be read as JSON: " .. tostring(err)
      end
    end
  end
  return src.doc, src.doc_err
end

local function string_map(t)
  if type(t) ~= "table" then return false end
  for k, v in pairs(t) do
    if type(k) ~= "string" or type(v) ~= "string" then return false end
  end
  return true
end

-- Checks a rule and gives it as a table: a string is a JSONPath. The
-- returned table has .source set to the one source key it uses.
function extract.normalize(rule)
  if type(rule) == "string" then
    if rule:sub(1, 1) ~= "$" then
      return nil, "E_RULE: rule " .. extract.show(rule) .. " is not a JSONPath (it must start with '$')"
    end
    return { jsonpath = rule, source = "jsonpath" }
  end
  if type(rule) ~= "table" then return nil, "E_RULE: a rule is a string or an object" end
  local found = {}
  for _, key in ipairs(SOURCES) do
    if rule[key] ~= nil and not (key == "regex" and rule.from == "header") then
      found[#found + 1] = key
    end
  end
  if #found == 0 then return nil, "E_RULE: rule has no source (jsonpath, xpath, regex, from or lua)" end
  if #found > 1 then return nil, "E_RULE: rule has several sources: " .. table.concat(found, ", ") end
  local source = found[1]
  for _, key in ipairs(TEXT_FIELDS) do
    if rule[key] ~= nil and type(rule[key]) ~= "string" then
      return nil, "E_RULE: " .. key .. " must be a string"
    end
  end
  if rule.group ~= nil and type(rule.group) ~= "number" and type(rule.group) ~= "string" then
    return nil, "E_RULE: group must be a number or a name"
  end
  if rule.namespaces ~= nil and not string_map(rule.namespaces) then
    return nil, "E_RULE: namespaces must map prefixes to URIs"
  end
  if source == "from" and not FROM[rule.from] then
    return nil, "E_RULE: unknown from " .. extract.show(rule.from) .. " (header, status or duration_ms)"
  end
  if source == "from" and rule.from == "header" and type(rule.name) ~= "string" then
    return nil, "E_RULE: a header rule needs a name"
  end
  local out = {}
  for k, v in pairs(rule) do out[k] = v end
  out.source = source
  return out
end

-- What a rule reads, for messages: "JSONPath $.id", "header Location".
function extract.describe(rule)
  local s = rule.source
  if s == "jsonpath" then return "JSONPath " .. rule.jsonpath end
  if s == "xpath" then return "XPath " .. rule.xpath end
  if s == "regex" then return "regex " .. rule.regex end
  if s == "lua" then return "Lua rule" end
  if rule.from == "header" then
    if rule.regex then return "regex " .. rule.regex .. " on header " .. rule.name end
    return "header " .. rule.name
  end
  return rule.from
end

local function nothing_message(rule)
  if rule.source == "lua" then return "Lua rule returned nothing" end
  if rule.from == "status" then return "response has no HTTP status" end
  if rule.from == "duration_ms" then return "response has no duration" end
  if rule.from == "header" and not rule.regex then return "header " .. rule.name .. " is absent" end
  return extract.describe(rule) .. " matched nothing"
end

-- "invalid JSONPath $[: E_JSONPATH: …" for a query the module refuses,
-- "JSONPath $..a: E_TOOBIG: …" for a failure while running it.
function extract.query_error(kind, query, err)
  err = tostring(err)
  local code = err:match("^(E_[%w_]+):")
  if code == "E_JSONPATH" or code == "E_XPATH" or code == "E_REGEX" then
    return "invalid " .. kind .. " " .. query .. ": " .. err
  end
  return kind .. " " .. query .. ": " .. err
end

-- The text of group (number or name) in the first match of pattern, or
-- in every match with all; unset groups are skipped.
local function regex_matches(subject, pattern, group, all)
  local found, err
  if all then
    found, err = re.find_all(subject, pattern)
  else
    local caps
    caps, err = re.match(subject, pattern)
    found = { caps }
  end
  if err then return nil, extract.query_error("regex", pattern, err) end
  local out = {}
  for _, caps in ipairs(found) do
    local value = caps[group]
    if value ~= nil and value ~= false then out[#out + 1] = value end
  end
  return out
end

local function header_value(headers, name)
  if type(headers) ~= "table" then return nil end
  local lower = name:lower()
  if headers[lower] ~= nil then return headers[lower] end
  for k, v in pairs(headers) do
    if type(k) == "string" and k:lower() == lower then return v end
  end
  return nil
end

local select_by = {}

function select_by.jsonpath(src, rule)
  local doc, err = extract.json_doc(src)
  if not doc then return nil, err end
  local nodes, qerr = jsonpath.query(doc, rule.jsonpath)
  if not nodes then return nil, extract.query_error("JSONPath", rule.jsonpath, qerr) end
  return nodes
end

function select_by.xpath(src, rule)
  if type(src.body) ~= "string" then return nil, "response has no body" end
  local value, err = xml.xpath(src.body, rule.xpath, rule.namespaces)
  if value == nil then
    if tostring(err):find("^E_PARSE") then return nil, "body is not XML: " .. tostring(err) end
    return nil, extract.query_error("XPath", rule.xpath, err)
  end
  if type(value) == "table" then return value end
  return { value }
end

function select_by.regex(src, rule)
  if type(src.body) ~= "string" then return nil, "response has no body" end
  return regex_matches(src.body, rule.regex, rule.group or 0, rule.all)
end

function select_by.from(src, rule)
  local response = src.response
  if rule.from == "header" then
    local value = header_value(response.headers, rule.name)
    if value == nil then return {} end
    value = tostring(value)
    if rule.regex then return regex_matches(value, rule.regex, rule.group or 0, rule.all) end
    return { value }
  end
  return { response[rule.from] }
end

function select_by.lua(src, rule, label)
  if not src.lua then return nil, "custom Lua is not available", "E_LUA" end
  local results, err = src.lua(rule.lua, label)
  if not results then return nil, err, "E_LUA" end
  return { results[1] }
end

local converters = {}

function converters.string(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return number_text(v) end
  if t == "boolean" then return tostring(v) end
  if t == "table" then
    local text, err = json.encode(v)
    if text then return text end
    return nil, err
  end
  return nil
end

function converters.number(v)
  return extract.number(v)
end

function converters.integer(v)
  local n = extract.number(v)
  if n and n == math.floor(n) and n == n and math.abs(n) ~= math.huge then return n end
  return nil
end

local BOOLEANS = { ["true"] = true, ["false"] = false, ["1"] = true, ["0"] = false }

function converters.boolean(v)
  if type(v) == "boolean" then return v end
  if v == 1 or v == 0 then return v == 1 end
  if type(v) == "string" and #v <= 16 then return BOOLEANS[extract.trim(v):lower()] end
  return nil
end

-- Converts v to the rule's type ("string", "number", "integer", "boolean").
function extract.convert(v, to)
  if to == nil then return v end
  local convert = converters[to]
  if not convert then return nil, "E_RULE: unknown type " .. extract.show(to) end
  local out = convert(v)
  if out == nil then return nil, "cannot convert " .. extract.show(v) .. " to " .. to end
  return out
end

local function convert_all(values, to)
  local out = {}
  for i, v in ipairs(values) do
    local c, err = extract.convert(v, to)
    if c == nil then return nil, err end
    out[i] = c
  end
  return json.array(out)
end

-- Evaluates one rule. Returns true, value when it yields a value (default
-- included); false, "… matched nothing" when it does not; nil, message,
-- code when it cannot be evaluated (code "E_LUA" for custom Lua failures).
-- label names the rule for custom Lua ("extract token").
function extract.evaluate(src, rule, label)
  local r, err = extract.normalize(rule)
  if not r then return nil, err end
  local matches, serr, code = select_by[r.source](src, r, label)
  if not matches then return nil, serr, code end
  if #matches == 0 then
    if r.default ~= nil then return true, r.default end
    return false, nothing_message(r)
  end
  local value, cerr
  if r.all then
    value, cerr = convert_all(matches, r.type)
  else
    value, cerr = extract.convert(matches[1], r.type)
  end
  if value == nil then return nil, cerr end
  return true, value
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end
extract.sorted_keys = sorted_keys

-- Runs a task's extract rules (name -> rule) in name order. Returns the
-- extracted values (name -> value) and the failures, each
-- {level = "failed", text = "extract token: …", code = "E_LUA" or nil}.
function extract.run(src, rules)
  local values, failures = {}, {}
  if type(rules) ~= "table" then return values, failures end
  for _, name in ipairs(sorted_keys(rules)) do
    local rule = rules[name]
    local ok, value, code = extract.evaluate(src, rule, "extract " .. name)
    local optional_miss = ok == false and type(rule) == "table" and rule.optional
    if ok then
      values[name] = value
    elseif not optional_miss then
      failures[#failures + 1] = { level = "failed", text = "extract " .. name .. ": " .. value, code = code }
    end
  end
  return values, failures
end

return extract
