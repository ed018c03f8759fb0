local helper = dofile("tests/lua/runtime_helper.lua")
local extract = require "restmon.extract"
local assertions = require "restmon.assert"
local json = helper.native.json

local BODY = '{"id": 17, "code": "7", "state": "paid", "tags": ["a", "b"], "meta": {"k": 1},'
  .. ' "empty": [], "obj": {}, "none": null, "email": "ann@example.com"}'

local function check(items, vars, body)
  local src = extract.source(helper.json_response(body or BODY, { status = 201 }))
  if type(items) == "string" then items = assert(json.decode(items)) end
  return assertions.run(src, items, vars or {})
end

local function one(item, vars)
  local records, failures = check({ item }, vars)
  return records[1], failures[1]
end

describe("assertions", function()
  describe("eq and ne", function()
    it("passes a status equal to the expected code", function()
      local r = one({ from = "status", op = "eq", value = 201 })
      assert.is_true(r.passed)
      assert.are.equal("status", r.subject)
      assert.are.equal(201, r.actual)
    end)

    it("fails with subject, op, expected and actual in the message", function()
      local r, f = one({ from = "status", op = "eq", value = 200 })
      assert.is_false(r.passed)
      assert.are.equal("status eq 200: got 201", r.message)
      assert.are.equal("assert status eq 200: got 201", f.text)
      assert.are.equal("failed", f.level)
    end)

    it("compares a numeric string with a number numerically", function()
      assert.is_true(one({ jsonpath = "$.code", op = "eq", value = 7 }).passed)
      assert.is_true(one({ jsonpath = "$.id", op = "eq", value = "17.0" }).passed)
      assert.is_false(one({ jsonpath = "$.code", op = "eq", value = "7.0" }).passed)
    end)

    it("compares arrays and objects deeply", function()
      local records = check('[{"jsonpath": "$.tags", "op": "eq", "value": ["a", "b"]},'
        .. ' {"jsonpath": "$.meta", "op": "eq", "value": {"k": "1"}},'
        .. ' {"jsonpath": "$.tags", "op": "eq", "value": ["b", "a"]}]')
      assert.is_true(records[1].passed)
      assert.is_true(records[2].passed)
      assert.is_false(records[3].passed)
    end)

    it("tells an empty array from an empty object", function()
      local records = check('[{"jsonpath": "$.empty", "op": "eq", "value": {}},'
        .. ' {"jsonpath": "$.obj", "op": "eq", "value": {}},'
        .. ' {"jsonpath": "$.empty", "op": "eq", "value": []}]')
      assert.is_false(records[1].passed)
      assert.is_true(records[2].passed)
      assert.is_true(records[3].passed)
    end)

    it("makes null equal only to null", function()
      assert.is_true(one({ jsonpath = "$.none", op = "eq", value = json.null }).passed)
      assert.is_false(one({ jsonpath = "$.none", op = "eq", value = 0 }).passed)
      assert.is_false(one({ jsonpath = "$.none", op = "eq", value = "" }).passed)
      assert.is_true(one({ jsonpath = "$.none", op = "ne", value = false }).passed)
    end)

    it("fails ne when the subject yields nothing", function()
      local r = one({ jsonpath = "$.missing", op = "ne", value = 1 })
      assert.is_false(r.passed)
      assert.are.equal("$.missing ne 1: got nothing", r.message)
    end)
  end)

  describe("ordering ops", function()
    it("compares numbers and numeric strings", function()
      local records = check({
        { jsonpath = "$.id", op = "lt", value = 18 },
        { jsonpath = "$.id", op = "le", value = "17" },
        { jsonpath = "$.code", op = "gt", value = 6.5 },
        { jsonpath = "$.id", op = "ge", value = 20 },
      })
      assert.is_true(records[1].passed)
      assert.is_true(records[2].passed)
      assert.is_true(records[3].passed)
      assert.is_false(records[4].passed)
    end)

    it("fails saying the subject is not a number", function()
      local r = one({ jsonpath = "$.state", op = "gt", value = 1 })
      assert.are.equal('$.state gt 1: got "paid" (not a number)', r.message)
    end)
  end)

  describe("contains, matches and type", function()
    it("finds a substring, an array element and an object key", function()
      local records = check({
        { jsonpath = "$.email", op = "contains", value = "@example" },
        { jsonpath = "$.tags", op = "contains", value = "b" },
        { jsonpath = "$.meta", op = "contains", value = "k" },
        { jsonpath = "$.tags", op = "contains", value = "z" },
      })
      assert.is_true(records[1].passed)
      assert.is_true(records[2].passed)
      assert.is_true(records[3].passed)
      assert.is_false(records[4].passed)
    end)

    it("matches a PCRE2 pattern", function()
      assert.is_true(one({ jsonpath = "$.email", op = "matches", value = "^\\w+@[\\w.]+$" }).passed)
      assert.is_false(one({ jsonpath = "$.state", op = "matches", value = "^\\d+$" }).passed)
    end)

    it("fails naming the error when the pattern is invalid", function()
      local r = one({ jsonpath = "$.state", op = "matches", value = "(" })
      assert.is_false(r.passed)
      assert.matches('^%$%.state matches "%(": got "paid" %(E_REGEX: ', r.message)
    end)

    it("checks the JSON type, integers being numbers too", function()
      local records = check({
        { jsonpath = "$.id", op = "type", value = "integer" },
        { jsonpath = "$.id", op = "type", value = "number" },
        { jsonpath = "$.code", op = "type", value = "integer" },
        { jsonpath = "$.none", op = "type", value = "null" },
        { jsonpath = "$.empty", op = "type", value = "array" },
      })
      assert.is_true(records[1].passed)
      assert.is_true(records[2].passed)
      assert.is_false(records[3].passed)
      assert.are.equal('$.code type "integer": got "7" (type string)', records[3].message)
      assert.is_true(records[4].passed)
      assert.is_true(records[5].passed)
    end)
  end)

  describe("exists", function()
    it("counts JSON null as a value", function()
      assert.is_true(one({ jsonpath = "$.none", op = "exists" }).passed)
      assert.is_false(one({ jsonpath = "$.none", op = "not_exists" }).passed)
    end)

    it("passes not_exists when nothing matches", function()
      assert.is_true(one({ jsonpath = "$.error", op = "not_exists" }).passed)
      local r = one({ jsonpath = "$.error", op = "exists" })
      assert.are.equal("$.error exists: got nothing", r.message)
    end)

    it("fails naming the parse error when the body is not JSON", function()
      local records, failures = check({ { jsonpath = "$.error", op = "not_exists" } }, {}, "oops")
      assert.is_false(records[1].passed)
      assert.matches("^assert %$.error not_exists: body is not JSON: E_PARSE", failures[1].text)
    end)
  end)

  describe("subjects and severity", function()
    it("reads a variable, including this task's", function()
      local r = one({ var = "order_id", op = "eq", value = "ord-17" }, { order_id = "ord-17" })
      assert.is_true(r.passed)
      assert.are.equal("vars.order_id", r.subject)
    end)

    it("degrades instead of failing with severity degraded", function()
      local _, f = one({ jsonpath = "$.id", op = "lt", value = 10, severity = "degraded" })
      assert.are.equal("degraded", f.level)
    end)

    it("puts the author's message first", function()
      local r = one({ from = "status", op = "eq", value = 200, message = "order must be created" })
      assert.are.equal("order must be created (status eq 200: got 201)", r.message)
    end)

    it("fails an unknown op naming it", function()
      local r = one({ from = "status", op = "between", value = 1 })
      assert.is_false(r.passed)
      assert.are.equal('status between 1: unknown op "between"', r.message)
    end)

    it("gives the records as a JSON array", function()
      local records = check({})
      assert.are.equal(json.array_mt, getmetatable(records))
    end)
  end)
end)
