-- Assertions (docs/workflow-format.md, "Assertions"): a subject named like
-- an extraction rule or {"var": NAME}, an op, an expected value, and a
-- severity. Produces one record per assertion for the run record and the
-- failures that feed the status decision.
local native = require "restmon.native"
local extract = require "restmon.extract"

local json, re = native.json, native.re
local show, number, is_array, json_type = extract.show, extract.number, extract.is_array, extract.json_type

local assertions = {}

-- Equality as assertions mean it: numbers compare numerically, also against
-- numeric strings ("7" eq 7); arrays and objects deeply, an array never
-- equal to an object; json.null equal only to json.null.
local function equal(a, b)
  if a == b then return true end
  if type(a) == "number" or type(b) == "number" then
    local na, nb = number(a), number(b)
    return na ~= nil and na == nb
  end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  if is_array(a) ~= is_array(b) then return false end
  for k, v in pairs(a) do
    if b[k] == nil or not equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
assertions.equal = equal

-- Each op: (actual, expected) -> passed[, why it failed beyond "got X"].
-- actual is nil when the subject yielded nothing.
local ops = {}

function ops.eq(a, e) return a ~= nil and equal(a, e) end
function ops.ne(a, e) return a ~= nil and not equal(a, e) end

local function compare(test)
  return function(a, e)
    local na, ne = number(a), number(e)
    if na == nil then return false, a ~= nil and "not a number" or nil end
    if ne == nil then return false, "expected value is not a number" end
    return test(na, ne)
  end
end

ops.lt = compare(function(a, e) return a < e end)
ops.le = compare(function(a, e) return a <= e end)
ops.gt = compare(function(a, e) return a > e end)
ops.ge = compare(function(a, e) return a >= e end)

function ops.contains(a, e)
  if type(a) == "string" then
    if type(e) == "number" then e = extract.number_text(e) end
    if type(e) ~= "string" then return false, "expected value is not a string" end
    return a:find(e, 1, true) ~= nil
  end
  if is_array(a) then
    for _, v in ipairs(a) do
      if equal(v, e) then return true end
    end
    return false
  end
  if type(a) == "table" then
    if type(e) ~= "string" then return false, "expected key is not a string" end
    return a[e] ~= nil
  end
  return false, a ~= nil and "not a string, array or object" or nil
end

function ops.matches(a, e)
  if type(e) ~= "string" then return false, "expected pattern is not a string" end
  if type(a) == "number" then a = extract.number_text(a) end
  if type(a) ~= "string" then return false, a ~= nil and "not a string" or nil end
  local caps, err = re.match(a, e)
  if err then return false, tostring(err) end
  return caps ~= nil
end

function ops.exists(a) return a ~= nil end
function ops.not_exists(a) return a == nil end

local TYPES = { string = true, number = true, integer = true, boolean = true, array = true, object = true, null = true }

function ops.type(a, e)
  if not TYPES[e] then return false, "unknown type " .. show(e) end
  local t = json_type(a)
  if t == nil then return false end
  return t == e or (e == "number" and t == "integer"), "type " .. tostring(t)
end

local NO_VALUE = { exists = true, not_exists = true }

-- The subject's name in records and reasons: "status", "$.id",
-- "header Location", "vars.order_id".
local function subject_name(item)
  if item.var ~= nil then return "vars." .. tostring(item.var) end
  local rule = extract.normalize(item)
  if not rule then return "?" end
  if rule.source == "jsonpath" then return rule.jsonpath end
  if rule.source == "xpath" then return rule.xpath end
  if rule.source == "lua" then return "lua" end
  return extract.describe(rule)
end

-- The subject's value: found (bool), value; or nil, message, code.
local function subject_value(src, item, vars, label)
  if item.var ~= nil then
    local v = vars[item.var]
    return v ~= nil, v
  end
  local ok, value, code = extract.evaluate(src, item, label)
  if ok == false then return false end
  return ok, value, code
end

local function failure_text(base, actual, why)
  local text = base .. ": got " .. show(actual)
  if why and why ~= "" then text = text .. " (" .. why .. ")" end
  return text
end

-- Evaluates one assertion item; returns its record, and the code of an
-- error that must fail the attempt (E_LUA) if any.
local function evaluate(src, item, index, vars)
  if type(item) ~= "table" then
    return { subject = "?", op = "?", passed = false, message = "assertion " .. index .. " is not an object",
             severity = "failed" }
  end
  local op, expected = item.op, item.value
  local record = { subject = subject_name(item), op = tostring(op), expected = expected,
                   severity = item.severity == "degraded" and "degraded" or "failed" }
  local base = record.subject .. " " .. record.op
  if not NO_VALUE[op] then base = base .. " " .. show(expected) end
  local found, value, code = subject_value(src, item, vars, "assert " .. index)
  local passed, why
  if found == nil then
    passed, why = false, value
  elseif not ops[op] then
    passed, why = false, "unknown op " .. show(op)
  else
    record.actual = found and value or nil
    passed, why = ops[op](record.actual, expected)
    passed = passed == true
  end
  record.passed = passed
  if found == nil or not ops[op] then
    record.message = base .. ": " .. why
  elseif passed then
    record.message = base .. ": got " .. show(record.actual)
  else
    record.message = failure_text(base, record.actual, why)
  end
  if item.message ~= nil and not passed then
    record.message = tostring(item.message) .. " (" .. record.message .. ")"
  end
  if code then record.severity = "failed" end
  return record, code
end

-- Runs a task's assert list. vars holds the variables so far with this
-- task's extractions. Returns the records (a JSON array) and the failures,
-- each {level = severity, text = "assert …", code = "E_LUA" or nil}.
function assertions.run(src, items, vars)
  local records, failures = json.array({}), {}
  if type(items) ~= "table" then return records, failures end
  for i, item in ipairs(items) do
    local record, code = evaluate(src, item, i, vars or {})
    records[i] = record
    if not record.passed then
      failures[#failures + 1] = { level = record.severity, text = "assert " .. record.message, code = code }
    end
  end
  return records, failures
end

-- "2 assertions passed" / "1 assertion passed"; nil when there were none.
function assertions.summary(records)
  local n = #records
  if n == 0 then return nil end
  return n .. (n == 1 and " assertion passed" or " assertions passed")
end

return assertions
