local helper = dofile("tests/lua/runtime_helper.lua")
local extract = require "restmon.extract"
local mutate = require "restmon.mutate"
local csv = require "restmon.csv"
local json, xml = helper.native.json, helper.native.xml

local BODY = '{"items": [{"sku": "A-1", "qty": 2, "name": "Bolt, \\"large\\""},'
  .. ' {"sku": "B-2", "qty": 1, "dims": {"w": 3}}]}'

local function output(spec, extracted, body)
  if type(spec) == "string" then spec = assert(json.decode(spec)) end
  return mutate.run(extract.source(helper.json_response(body or BODY)), spec, extracted or {})
end

describe("output mutation", function()
  describe("CSV", function()
    it("writes a header row and one row per record, fields in list order", function()
      local out = assert(output('{"format": "csv", "from": "$.items[*]", "fields": ["sku", "qty"]}'))
      assert.are.equal("csv", out.format)
      assert.are.equal("sku,qty\r\nA-1,2\r\nB-2,1\r\n", out.content)
    end)

    it("projects columns by JSONPath relative to each record", function()
      local out = assert(output('{"format": "csv", "from": "$.items[*]", "fields": {"width": "$.dims.w", "sku": "@.sku"}}'))
      assert.are.equal("sku,width\r\nA-1,\r\nB-2,3\r\n", out.content)
    end)

    it("quotes fields holding commas and quotes, doubling the quotes", function()
      local out = assert(output('{"format": "csv", "from": "$.items[0]", "fields": ["name"]}'))
      assert.are.equal('name\r\n"Bolt, ""large"""\r\n', out.content)
    end)

    it("writes whole records under the union of their keys", function()
      local out = assert(output('{"format": "csv", "from": "$.items[*]"}'))
      assert.are.equal('dims,name,qty,sku\r\n,"Bolt, ""large""",2,A-1\r\n"{""w"":3}",,1,B-2\r\n', out.content)
    end)

    it("writes the extracted variables as the one record without from", function()
      local out = assert(output({ format = "csv", fields = json.array({ "order_id", "total" }) },
        { order_id = "ord-17", total = 12.5 }))
      assert.are.equal("order_id,total\r\nord-17,12.5\r\n", out.content)
    end)

    it("writes a header only when from selects nothing", function()
      local out = assert(output('{"format": "csv", "from": "$.none[*]", "fields": ["sku"]}'))
      assert.are.equal("sku\r\n", out.content)
    end)
  end)

  describe("JSON", function()
    it("writes the selected records as an array", function()
      local out = assert(output('{"format": "json", "from": "$.items[*]", "fields": ["sku", "qty"]}'))
      assert.are.same({ { sku = "A-1", qty = 2 }, { sku = "B-2", qty = 1 } }, json.decode(out.content))
    end)

    it("writes null for a field a record lacks", function()
      local out = assert(output('{"format": "json", "from": "$.items[*]", "fields": ["dims"]}'))
      assert.are.equal(json.null, json.decode(out.content)[1].dims)
    end)

    it("writes the extracted variables as one object without from", function()
      local out = assert(output({ format = "json" }, { order_id = "ord-17" }))
      assert.are.equal('{"order_id":"ord-17"}', (out.content:gsub("%s", "")))
    end)
  end)

  describe("XML", function()
    it("writes records as item elements under the root", function()
      local out = assert(output('{"format": "xml", "from": "$.items[*]", "fields": ["sku"], "root": "stock", "item": "line"}'))
      assert.are.same({ "A-1", "B-2" }, xml.xpath(out.content, "/stock/line/sku"))
    end)

    it("uses records and record by default", function()
      local out = assert(output({ format = "xml" }, { order_id = "ord-17" }))
      assert.are.same({ "ord-17" }, xml.xpath(out.content, "/records/record/order_id"))
    end)
  end)

  describe("errors", function()
    it("fails naming the parse error when from meets a body that is not JSON", function()
      local out, err = output('{"format": "csv", "from": "$.items[*]"}', {}, "<x/>")
      assert.is_nil(out)
      assert.matches("^output csv: from %$%.items%[%*%]: body is not JSON: E_PARSE", err)
    end)

    it("refuses an unknown format", function()
      local out, err = output({ format = "yaml" })
      assert.is_nil(out)
      assert.are.equal('output: unknown format "yaml" (json, csv or xml)', err)
    end)
  end)

  describe("csv module", function()
    it("quotes CR and LF", function()
      assert.are.equal('"a\nb"', csv.field("a\nb"))
      assert.are.equal('"a\rb"', csv.field("a\rb"))
      assert.are.equal("plain", csv.field("plain"))
    end)

    it("reads back what it writes", function()
      local rows = { { "a", "b,c" }, { 'say "hi"', "x\r\ny" }, { "", "z" } }
      assert.are.same(rows, csv.decode(csv.encode(rows)))
    end)

    it("refuses an unterminated quoted field", function()
      local rows, err = csv.decode('a,"b\n')
      assert.is_nil(rows)
      assert.matches("^E_CSV: unterminated quoted field", err)
    end)
  end)
end)
