-- Output mutation (docs/workflow-format.md, "Output mutation"): records
-- chosen by a JSONPath over the body (or the task's extracted variables as
-- the one record), projected on fields, written as JSON, CSV or XML.
local native = require "restmon.native"
local extract = require "restmon.extract"
local csv = require "restmon.csv"

local json, jsonpath, xml = native.json, native.jsonpath, native.xml
local is_array, sorted_keys = extract.is_array, extract.sorted_keys

local mutate = {}

local function is_object(v)
  return type(v) == "table" and not is_array(v)
end

-- The records: the nodes `from` selects in the body, or {extracted}.
local function select_records(src, spec, extracted)
  if spec.from == nil then return { extracted or {} } end
  if type(spec.from) ~= "string" then return nil, "from must be a JSONPath string" end
  local doc, err = extract.json_doc(src)
  if not doc then return nil, "from " .. spec.from .. ": " .. err end
  local nodes, qerr = jsonpath.query(doc, spec.from)
  if not nodes then return nil, extract.query_error("JSONPath", spec.from, qerr) end
  return nodes
end

-- A field path relative to the record: "$.a" or "@.a" are JSONPaths, any
-- other string is a key of the record. A getter is (record, doc_of) ->
-- value | nil, err, where doc_of() parses the record once when needed.
local function key_getter(name)
  return function(record) return is_object(record) and record[name] or nil end
end

local function field_getter(path)
  if type(path) ~= "string" then return nil, "field path " .. extract.show(path) .. " is not a string" end
  local first = path:sub(1, 1)
  if first ~= "$" and first ~= "@" then return key_getter(path) end
  local query = "$" .. path:sub(2)
  return function(record, doc_of)
    local doc, err = doc_of()
    if not doc then return nil, err end
    local nodes, qerr = jsonpath.query(doc, query)
    if not nodes then return nil, extract.query_error("JSONPath", path, qerr) end
    return nodes[1]
  end
end

-- The columns and their getters from `fields`: a list of names, or an
-- object of name -> path (columns in name order, as a Lua table keeps no
-- key order). nil when fields is absent: records are kept whole.
local function projection(fields)
  if fields == nil then return nil end
  if type(fields) ~= "table" then return nil, nil, "fields must be a list or an object" end
  local columns, getters = {}, {}
  if is_array(fields) then
    for i, name in ipairs(fields) do
      if type(name) ~= "string" then return nil, nil, "field " .. i .. " is not a name" end
      columns[i], getters[i] = name, key_getter(name)
    end
  else
    for i, name in ipairs(sorted_keys(fields)) do
      local get, err = field_getter(fields[name])
      if not get then return nil, nil, "field " .. name .. ": " .. err end
      columns[i], getters[i] = name, get
    end
  end
  return columns, getters
end

-- Projects one record onto the columns: an object of column -> value, with
-- json.null for what the record does not have.
local function project(record, columns, getters)
  local doc, doc_err
  local function doc_of()
    if doc == nil and doc_err == nil then
      local text, err = json.encode(record)
      if text then doc, err = json.doc(text) end
      if not doc then doc_err = "record is not JSON: " .. tostring(err) end
    end
    return doc, doc_err
  end
  local out = {}
  for i, name in ipairs(columns) do
    local value, err = getters[i](record, doc_of)
    if err then return nil, err end
    out[name] = value == nil and json.null or value
  end
  return out
end

-- The records projected on `fields` and the columns (nil when fields is
-- absent), or nil, nil, err.
local function projected(records, fields)
  local columns, getters, err = projection(fields)
  if err then return nil, nil, err end
  if not columns then return records end
  local out = json.array({})
  for i, record in ipairs(records) do
    local row, perr = project(record, columns, getters)
    if not row then return nil, nil, "record " .. i .. ": " .. perr end
    out[i] = row
  end
  return out, columns
end

-- CSV columns of whole records: the union of their keys in name order, and
-- "value" for records that are not objects.
local function record_columns(records)
  local seen, scalar = {}, false
  for _, record in ipairs(records) do
    if is_object(record) then
      for k in pairs(record) do seen[k] = true end
    else
      scalar = true
    end
  end
  local columns = sorted_keys(seen)
  if scalar and not seen.value then columns[#columns + 1] = "value" end
  return columns
end

-- The text of one CSV cell: empty for a missing value or null, numbers
-- without a needless exponent, arrays and objects as compact JSON.
local function cell(v)
  if v == nil or v == json.null then return "" end
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return extract.number_text(v) end
  if t == "table" then return json.encode(v) or "" end
  return tostring(v)
end

local writers = {}

function writers.json(records, spec, columns, one)
  local value = one and records[1] or json.array(records)
  return json.encode(value)
end

function writers.csv(records, spec, columns)
  columns = columns or record_columns(records)
  local rows = { columns }
  for _, record in ipairs(records) do
    local row = {}
    for j, name in ipairs(columns) do
      local v
      if is_object(record) then v = record[name] elseif name == "value" then v = record end
      row[j] = cell(v)
    end
    rows[#rows + 1] = row
  end
  return csv.encode(rows)
end

function writers.xml(records, spec)
  local item = spec.item or "record"
  return xml.encode(spec.root or "records", { [item] = json.array(records) })
end

-- Builds the output of an attempt. spec is the task's output object.
-- Returns {format, content} or nil, "output FORMAT: why".
function mutate.run(src, spec, extracted)
  if type(spec) ~= "table" then return nil, "output: must be an object" end
  local format = spec.format
  local writer = writers[format]
  if not writer then return nil, "output: unknown format " .. extract.show(format) .. " (json, csv or xml)" end
  local prefix = "output " .. format .. ": "
  local records, err = select_records(src, spec, extracted)
  if not records then return nil, prefix .. err end
  local rows, columns, perr = projected(records, spec.fields)
  if not rows then return nil, prefix .. perr end
  local content, werr = writer(rows, spec, columns, spec.from == nil)
  if not content then return nil, prefix .. tostring(werr) end
  return { format = format, content = content }
end

return mutate
