local helper = dofile("tests/lua/runtime_helper.lua")
local status = require "restmon.status"

describe("status mapping", function()
  describe("code patterns", function()
    it("matches integers, classes and ranges", function()
      local list = { 204, "3xx", "400-404" }
      assert.is_true(status.code_in(204, list))
      assert.is_true(status.code_in(302, list))
      assert.is_true(status.code_in(404, list))
      assert.is_false(status.code_in(200, list))
      assert.is_false(status.code_in(405, list))
    end)

    it("accepts numeric strings and upper-case classes", function()
      assert.is_true(status.code_in(201, { "201" }))
      assert.is_true(status.code_in(503, { "5XX" }))
    end)

    it("refuses a malformed pattern", function()
      local ok, err = status.code_in(200, { "2x" })
      assert.is_nil(ok)
      assert.are.equal('E_RULE: invalid status code pattern "2x"', err)
    end)

    it("describes a list as written", function()
      assert.are.equal("[200, 2xx, 300-302]", status.describe_codes({ 200, "2xx", "300-302" }))
    end)
  end)

  describe("HTTP check", function()
    it("passes a 2xx by default and says so", function()
      local finding, text = status.check_http({ status = 200 }, {})
      assert.is_nil(finding)
      assert.are.equal("HTTP 200 in success codes [2xx]", text)
    end)

    it("fails a code outside the success codes", function()
      local finding = status.check_http({ status = 503 }, {})
      assert.are.same({ level = "failed", text = "HTTP 503 not in success codes [2xx]" }, finding)
    end)

    it("degrades a degraded code", function()
      local finding = status.check_http({ status = 429 }, { degraded_codes = { 429 } })
      assert.are.same({ level = "degraded", text = "HTTP 429 in degraded codes [429]" }, finding)
    end)

    it("names both lists when a code is in neither", function()
      local finding = status.check_http({ status = 500 }, { success_codes = { 200 }, degraded_codes = { 429 } })
      assert.are.equal("HTTP 500 not in success codes [200] or degraded codes [429]", finding.text)
    end)

    it("skips the check for a response without a status", function()
      assert.is_nil(status.check_http({ body = "pong" }, {}))
    end)
  end)

  describe("timing check", function()
    it("degrades a response slower than degraded_over_ms", function()
      local finding = status.check_timing({ duration_ms = 912 }, { degraded_over_ms = 800 })
      assert.are.same({ level = "degraded", text = "response took 912 ms, over degraded_over_ms 800" }, finding)
    end)

    it("fails a response slower than failed_over_ms first", function()
      local finding = status.check_timing({ duration_ms = 6000.5 }, { degraded_over_ms = 800, failed_over_ms = 5000 })
      assert.are.same({ level = "failed", text = "response took 6000.5 ms, over failed_over_ms 5000" }, finding)
    end)

    it("accepts a response exactly at the limit", function()
      assert.is_nil(status.check_timing({ duration_ms = 800 }, { degraded_over_ms = 800 }))
    end)
  end)

  describe("decision", function()
    it("takes the failures of the first failing check only", function()
      local s, reason = status.decide({
        { { level = "failed", text = "HTTP 503 not in success codes [2xx]" } },
        { { level = "failed", text = "extract token: JSONPath $.token matched nothing" } },
      }, "ok")
      assert.are.equal("failed", s)
      assert.are.equal("HTTP 503 not in success codes [2xx]", reason)
    end)

    it("fails over degradations and joins several failures of one check", function()
      local s, reason = status.decide({
        { { level = "degraded", text = "HTTP 429 in degraded codes [429]" } },
        { { level = "failed", text = "assert a" }, { level = "failed", text = "assert b" } },
      }, "ok")
      assert.are.equal("failed", s)
      assert.are.equal("assert a; assert b", reason)
    end)

    it("gives every degradation when nothing failed", function()
      local s, reason = status.decide({
        { { level = "degraded", text = "HTTP 429 in degraded codes [429]" } },
        {},
        { { level = "degraded", text = "response took 912 ms, over degraded_over_ms 800" } },
      }, "ok")
      assert.are.equal("degraded", s)
      assert.are.equal("HTTP 429 in degraded codes [429]; response took 912 ms, over degraded_over_ms 800", reason)
    end)

    it("succeeds with the summary when every check passed", function()
      assert.are.same({ "succeeded", "all good" }, { status.decide({ {}, {} }, "all good") })
    end)
  end)

  describe("retry categories", function()
    it("puts a failed 503 under 5xx and failed", function()
      assert.are.same({ "5xx", "failed" }, status.categories({ status = "failed" }, { status = 503 }))
    end)

    it("puts a degraded 429 under 4xx and degraded", function()
      assert.are.same({ "4xx", "degraded" }, status.categories({ status = "degraded" }, { status = 429 }))
    end)

    it("puts a timeout under timeout and a refused connection under error", function()
      assert.are.same({ "timeout", "failed" },
        status.categories({ status = "failed", error = { code = "E_TIMEOUT" } }, nil, true))
      assert.are.same({ "error", "failed" },
        status.categories({ status = "failed", error = { code = "E_CONNECT" } }, nil, true))
    end)

    it("gives a succeeded attempt no category, even on a 5xx", function()
      assert.are.same({}, status.categories({ status = "succeeded" }, { status = 503 }))
      assert.are.equal(helper.native.json.array_mt, getmetatable(status.categories({ status = "succeeded" })))
    end)
  end)
end)
