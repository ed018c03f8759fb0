local helper = dofile("tests/lua/runtime_helper.lua")
local extract = require "restmon.extract"
local json = helper.native.json

local ORDER = '{"id": "ord-17", "qty": "3", "price": 9.5, "paid": "true", "note": null,'
  .. ' "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}]}'

local function source(body, fields)
  return extract.source(helper.json_response(body, fields))
end

local function run(rules, body, fields)
  return extract.run(source(body or ORDER, fields), rules)
end

describe("extraction", function()
  describe("JSONPath", function()
    it("takes the first match of a string rule", function()
      local values, failures = run({ sku = "$.items[*].sku" })
      assert.are.same({}, failures)
      assert.are.equal("A-1", values.sku)
    end)

    it("takes every match as a JSON array with all", function()
      local values = run({ skus = { jsonpath = "$.items[*].sku", all = true } })
      assert.are.same({ "A-1", "B-2" }, values.skus)
      assert.are.equal(json.array_mt, getmetatable(values.skus))
    end)

    it("keeps JSON null as a value", function()
      local values, failures = run({ note = "$.note" })
      assert.are.same({}, failures)
      assert.are.equal(json.null, values.note)
    end)

    it("fails with a reason naming the rule when a JSONPath matches nothing", function()
      local values, failures = run({ order_id = "$.order_id" })
      assert.is_nil(values.order_id)
      assert.are.equal("extract order_id: JSONPath $.order_id matched nothing", failures[1].text)
      assert.are.equal("failed", failures[1].level)
    end)

    it("fails naming the parse error when the body is not JSON", function()
      local _, failures = run({ token = "$.token" }, "<html>oops</html>")
      assert.matches("^extract token: body is not JSON: E_PARSE", failures[1].text)
    end)

    it("fails saying there is no body when the body is absent", function()
      local _, failures = extract.run(extract.source({ status = 204 }), { token = "$.token" })
      assert.are.equal("extract token: response has no body", failures[1].text)
    end)

    it("fails naming the query when the JSONPath is invalid", function()
      local _, failures = run({ x = "$[" })
      assert.matches("^extract x: invalid JSONPath %$%[: E_", failures[1].text)
    end)

    it("parses the body once for every rule of the attempt", function()
      local src = source(ORDER)
      extract.run(src, { a = "$.id", b = "$.qty" })
      local doc = src.doc
      assert.is_not_nil(doc)
      extract.run(src, { c = "$.price" })
      assert.are.equal(doc, src.doc)
    end)

    it("refuses a string rule that is not a JSONPath", function()
      local _, failures = run({ x = "id" })
      assert.matches("^extract x: E_RULE: rule \"id\" is not a JSONPath", failures[1].text)
    end)
  end)

  describe("options", function()
    it("uses the default when nothing matches", function()
      local values, failures = run({ coupon = { jsonpath = "$.coupon", default = "none" } })
      assert.are.same({}, failures)
      assert.are.equal("none", values.coupon)
    end)

    it("leaves an optional variable unset when nothing matches", function()
      local values, failures = run({ coupon = { jsonpath = "$.coupon", optional = true } })
      assert.are.same({}, failures)
      assert.is_nil(values.coupon)
    end)

    it("still fails an optional rule whose body is not JSON", function()
      local _, failures = run({ coupon = { jsonpath = "$.coupon", optional = true } }, "nope")
      assert.matches("body is not JSON", failures[1].text)
    end)

    it("converts to number, integer, boolean and string", function()
      local values, failures = run({
        qty = { jsonpath = "$.qty", type = "integer" },
        price = { jsonpath = "$.price", type = "string" },
        paid = { jsonpath = "$.paid", type = "boolean" },
        n = { jsonpath = "$.qty", type = "number" },
      })
      assert.are.same({}, failures)
      assert.are.equal(3, values.qty)
      assert.are.equal("9.5", values.price)
      assert.are.equal(true, values.paid)
      assert.are.equal(3, values.n)
    end)

    it("converts every match with all", function()
      local values = run({ qtys = { jsonpath = "$.items[*].qty", all = true, type = "string" } })
      assert.are.same({ "2", "1" }, values.qtys)
    end)

    it("fails naming the value when a conversion is impossible", function()
      local _, failures = run({ id = { jsonpath = "$.id", type = "number" } })
      assert.are.equal('extract id: cannot convert "ord-17" to number', failures[1].text)
    end)

    it("does not take a fraction as an integer", function()
      local _, failures = run({ price = { jsonpath = "$.price", type = "integer" } })
      assert.are.equal("extract price: cannot convert 9.5 to integer", failures[1].text)
    end)

    it("reports every failing rule in name order", function()
      local _, failures = run({ zeta = "$.zeta", alpha = "$.alpha" })
      assert.are.equal(2, #failures)
      assert.matches("^extract alpha:", failures[1].text)
      assert.matches("^extract zeta:", failures[2].text)
    end)
  end)

  describe("XPath", function()
    local XML = '<order><id>ord-17</id><item sku="A-1"/><item sku="B-2"/></order>'

    it("gives the string value of the first node", function()
      local values, failures = run({ id = { xpath = "/order/id" } }, XML)
      assert.are.same({}, failures)
      assert.are.equal("ord-17", values.id)
    end)

    it("gives every node with all", function()
      local values = run({ skus = { xpath = "/order/item/@sku", all = true } }, XML)
      assert.are.same({ "A-1", "B-2" }, values.skus)
    end)

    it("gives a scalar XPath result as the value", function()
      local values = run({ n = { xpath = "count(/order/item)", type = "integer" } }, XML)
      assert.are.equal(2, values.n)
    end)

    it("fails naming the rule when an XPath matches nothing", function()
      local _, failures = run({ total = { xpath = "/order/total" } }, XML)
      assert.are.equal("extract total: XPath /order/total matched nothing", failures[1].text)
    end)

    it("fails naming the parse error when the body is not XML", function()
      local _, failures = run({ id = { xpath = "/order/id" } }, "<order><id>")
      assert.matches("^extract id: body is not XML: E_PARSE", failures[1].text)
    end)
  end)

  describe("regex", function()
    local TEXT = "order id=17 then id=18 and name=ann"

    it("gives the whole match by default and a numbered group on request", function()
      local values = run({ whole = { regex = "id=\\d+" }, num = { regex = "id=(\\d+)", group = 1 } }, TEXT)
      assert.are.equal("id=17", values.whole)
      assert.are.equal("17", values.num)
    end)

    it("gives a named group", function()
      local values = run({ name = { regex = "name=(?<who>\\w+)", group = "who" } }, TEXT)
      assert.are.equal("ann", values.name)
    end)

    it("gives every match with all", function()
      local values = run({ ids = { regex = "id=(\\d+)", group = 1, all = true, type = "integer" } }, TEXT)
      assert.are.same({ 17, 18 }, values.ids)
    end)

    it("fails naming the pattern when it matches nothing", function()
      local _, failures = run({ x = { regex = "zzz" } }, TEXT)
      assert.are.equal("extract x: regex zzz matched nothing", failures[1].text)
    end)

    it("fails naming the pattern when it is invalid", function()
      local _, failures = run({ x = { regex = "(" } }, TEXT)
      assert.matches("^extract x: invalid regex %(: E_REGEX", failures[1].text)
    end)
  end)

  describe("response fields", function()
    local fields = { headers = { location = "/orders/17", ["x-rate"] = "5, 7" }, status = 201, duration_ms = 33.5 }

    it("finds a header by name in any case", function()
      local values = run({ loc = { from = "header", name = "Location" } }, ORDER, fields)
      assert.are.equal("/orders/17", values.loc)
    end)

    it("applies a regex to a header", function()
      local values = run({ id = { from = "header", name = "location", regex = "(\\d+)$", group = 1,
                                  type = "integer" } }, ORDER, fields)
      assert.are.equal(17, values.id)
    end)

    it("fails saying a header is absent", function()
      local _, failures = run({ etag = { from = "header", name = "ETag" } }, ORDER, fields)
      assert.are.equal("extract etag: header ETag is absent", failures[1].text)
    end)

    it("gives the status code and the duration", function()
      local values = run({ code = { from = "status" }, ms = { from = "duration_ms" } }, ORDER, fields)
      assert.are.equal(201, values.code)
      assert.are.equal(33.5, values.ms)
    end)

    it("refuses an unknown from", function()
      local _, failures = run({ x = { from = "cookie" } })
      assert.matches("^extract x: E_RULE: unknown from \"cookie\"", failures[1].text)
    end)

    it("refuses a rule with two sources", function()
      local _, failures = run({ x = { jsonpath = "$.id", xpath = "/id" } })
      assert.are.equal("extract x: E_RULE: rule has several sources: jsonpath, xpath", failures[1].text)
    end)
  end)

  describe("value helpers", function()
    it("reads decimal numbers from strings and nothing else", function()
      assert.are.equal(7, extract.number(" 7 "))
      assert.are.equal(-0.5, extract.number("-.5"))
      assert.are.equal(1000, extract.number("1e3"))
      assert.is_nil(extract.number("0x10"))
      assert.is_nil(extract.number("inf"))
      assert.is_nil(extract.number(""))
    end)

    it("names JSON types, integers apart", function()
      assert.are.equal("integer", extract.json_type(3))
      assert.are.equal("number", extract.json_type(3.5))
      assert.are.equal("null", extract.json_type(json.null))
      assert.are.equal("array", extract.json_type(json.array({})))
      assert.are.equal("object", extract.json_type({}))
      assert.are.equal("array", extract.json_type({ 1, 2 }))
    end)

    it("shows values briefly for reasons", function()
      assert.are.equal("9007199254740991", extract.show(2 ^ 53 - 1))
      assert.are.equal('"a\\"b"', extract.show('a"b'))
      assert.are.equal(80, #extract.show(string.rep("x", 200)))
      assert.are.equal("nothing", extract.show(nil))
    end)
  end)
end)
