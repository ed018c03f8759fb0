local helper = dofile("tests/lua/runtime_helper.lua")
local runtime = require "restmon.runtime"
local json = helper.native.json

local ORDER = { id = "ord-17", stock = 0, items = json.array({ { sku = "A-1", qty = 2 } }) }

local function attempt(task, response, opts)
  return helper.run(task, response, opts)
end

describe("run_attempt", function()
  describe("transport", function()
    it("fails a timeout under timeout with the plugin's message", function()
      local r = runtime.run_attempt(helper.ctx({}, helper.plugin(nil,
        "E_TIMEOUT: request to http://x/ timed out after 2000 ms")))
      assert.are.equal("failed", r.status)
      assert.are.same({ code = "E_TIMEOUT", message = "request to http://x/ timed out after 2000 ms" }, r.error)
      assert.are.equal("request to http://x/ timed out after 2000 ms", r.reason)
      assert.are.same({ "timeout", "failed" }, r.categories)
    end)

    it("fails a refused connection under error", function()
      local r = runtime.run_attempt(helper.ctx({}, helper.plugin(nil, "E_CONNECT: connection refused")))
      assert.are.same({ "error", "failed" }, r.categories)
      assert.are.equal("E_CONNECT", r.error.code)
    end)

    it("fails with E_LUA when the plugin raises", function()
      local plugin = { run = function() error("boom", 0) end }
      local r = runtime.run_attempt(helper.ctx({}, plugin))
      assert.are.equal("failed", r.status)
      assert.are.same({ code = "E_LUA", message = "boom" }, r.error)
      assert.are.equal("plugin raised a Lua error: boom", r.reason)
      assert.are.same({ "failed" }, r.categories)
    end)

    it("fails when the plugin returns something that is not a response", function()
      local r = runtime.run_attempt(helper.ctx({}, helper.plugin("pong")))
      assert.are.equal("E_PLUGIN", r.error.code)
      assert.are.equal('plugin failed: plugin returned "pong" instead of a response', r.reason)
    end)

    it("lets an error the sandbox pcall re-raises leave the attempt", function()
      local budget = setmetatable({}, { __tostring = function() return "E_BUDGET: CPU budget exhausted" end })
      local function new_env()
        local env = helper.new_env()
        env.pcall = function(f, ...)
          local res = { pcall(f, ...) }
          if res[2] == budget then error(budget, 0) end
          return unpack(res)
        end
        return env
      end
      local plugin = { run = function() error(budget, 0) end }
      local ok, err = pcall(runtime.run_attempt, helper.ctx({}, plugin, { new_env = new_env }))
      assert.is_false(ok)
      assert.are.equal(budget, err)
    end)

    it("passes the attempt context to the plugin", function()
      local seen
      local plugin = { run = function(ctx) seen = ctx.attempt return helper.json_response(ORDER) end }
      runtime.run_attempt(helper.ctx({}, plugin, { attempt = 3 }))
      assert.are.equal(3, seen)
    end)
  end)

  describe("decision order", function()
    it("succeeds a 200 with a reason summing up the checks", function()
      local r = attempt('{"extract": {"order_id": "$.id"}, "assert": [{"from": "status", "op": "eq", "value": 200}]}',
        helper.json_response(ORDER))
      assert.are.equal("succeeded", r.status)
      assert.are.equal("HTTP 200 in success codes [2xx]; 1 variable extracted; 1 assertion passed", r.reason)
      assert.are.same({ order_id = "ord-17" }, r.extracted)
      assert.is_nil(r.error)
      assert.are.same({}, r.categories)
    end)

    it("fails a 503 naming the success codes, still extracting what it can", function()
      local r = attempt('{"extract": {"msg": {"jsonpath": "$.error", "optional": true}, "id": "$.id"}}',
        helper.json_response({ error = "down" }, { status = 503 }))
      assert.are.equal("failed", r.status)
      assert.are.equal("HTTP 503 not in success codes [2xx]", r.reason)
      assert.are.equal("down", r.extracted.msg)
      assert.are.same({ "5xx", "failed" }, r.categories)
    end)

    it("fails with a reason naming the rule when a JSONPath matches nothing", function()
      local r = attempt('{"extract": {"order_id": "$.order.id"}}', helper.json_response(ORDER))
      assert.are.equal("failed", r.status)
      assert.are.equal("extract order_id: JSONPath $.order.id matched nothing", r.reason)
      assert.are.same({ "failed" }, r.categories)
    end)

    it("fails naming the parse error when a JSONPath rule meets a body that is not JSON", function()
      local r = attempt('{"extract": {"token": "$.token"}}',
        { status = 200, headers = { ["content-type"] = "text/html" }, body = "<html>" })
      assert.matches("^extract token: body is not JSON: E_PARSE", r.reason)
    end)

    it("fails on a failed assertion with the actual value", function()
      local r = attempt('{"assert": [{"from": "status", "op": "eq", "value": 201}]}', helper.json_response(ORDER))
      assert.are.equal("failed", r.status)
      assert.are.equal("assert status eq 201: got 200", r.reason)
      assert.is_false(r.assertions[1].passed)
    end)

    it("degrades on an assertion of severity degraded", function()
      local r = attempt('{"assert": [{"jsonpath": "$.stock", "op": "gt", "value": 0, "severity": "degraded"}]}',
        helper.json_response(ORDER))
      assert.are.equal("degraded", r.status)
      assert.are.equal("assert $.stock gt 0: got 0", r.reason)
      assert.are.same({ "degraded" }, r.categories)
    end)

    it("lets assertions read this task's variables", function()
      local r = attempt('{"extract": {"order_id": "$.id"}, "assert": [{"var": "order_id", "op": "eq", "value": "ord-17"}]}',
        helper.json_response(ORDER))
      assert.are.equal("succeeded", r.status)
    end)

    it("degrades a slow response and fails a very slow one", function()
      local spec = '{"status": {"degraded_over_ms": 800, "failed_over_ms": 5000}}'
      local slow = attempt(spec, helper.json_response(ORDER, { duration_ms = 912 }))
      assert.are.equal("degraded", slow.status)
      assert.are.equal("response took 912 ms, over degraded_over_ms 800", slow.reason)
      local very = attempt(spec, helper.json_response(ORDER, { duration_ms = 5001 }))
      assert.are.equal("failed", very.status)
    end)

    it("degrades a degraded code and keeps retry category 4xx", function()
      local r = attempt('{"status": {"degraded_codes": [429]}}', helper.json_response(ORDER, { status = 429 }))
      assert.are.equal("degraded", r.status)
      assert.are.equal("HTTP 429 in degraded codes [429]", r.reason)
      assert.are.same({ "4xx", "degraded" }, r.categories)
    end)

    it("accepts codes given as ranges", function()
      local r = attempt('{"status": {"success_codes": ["200-299", 304]}}', helper.json_response(ORDER, { status = 304 }))
      assert.are.equal("succeeded", r.status)
    end)

    it("checks no status for a response without one", function()
      local r = attempt({}, { body = "pong", duration_ms = 1 })
      assert.are.equal("succeeded", r.status)
      assert.are.equal("completed without error", r.reason)
    end)

    it("finds headers whatever case the plugin used", function()
      local r = attempt('{"extract": {"loc": {"from": "header", "name": "location"}}}',
        { status = 201, headers = { Location = "/o/1" }, body = "" })
      assert.are.equal("/o/1", r.extracted.loc)
    end)
  end)

  describe("custom Lua", function()
    it("extracts with a Lua rule that sees response, vars and inputs", function()
      local r = attempt({ extract = { n = { lua = "return #json.decode(response.body).items + vars.base + inputs.k" } } },
        helper.json_response(ORDER), { vars = { base = 10 }, inputs = { k = 100 } })
      assert.are.equal(111, r.extracted.n)
    end)

    it("fails with E_LUA naming the rule and line when a Lua rule raises", function()
      local r = attempt({ extract = { n = { lua = "local x = nil\nreturn x.y" } } }, helper.json_response(ORDER))
      assert.are.equal("failed", r.status)
      assert.are.equal("E_LUA", r.error.code)
      assert.matches("^extract n: Lua error at line 2: attempt to index", r.reason)
      assert.are.same({ "failed" }, r.categories)
    end)

    it("fails naming a Lua rule that does not compile", function()
      local r = attempt({ extract = { n = { lua = "return +" } } }, helper.json_response(ORDER))
      assert.matches("^extract n: Lua rule does not compile", r.reason)
    end)

    it("keeps the engine's variables out of reach of a Lua rule", function()
      local vars = { list = json.array({ 1 }) }
      attempt({ extract = { n = { lua = "vars.list[1] = 99; vars.x = 1; return 1" } } }, helper.json_response(ORDER),
        { vars = vars })
      assert.are.equal(1, vars.list[1])
      assert.is_nil(vars.x)
    end)

    it("lets the status rule degrade with its own reason", function()
      local r = attempt({ extract = { stock = "$.stock" },
                          status = { lua = "if vars.stock == 0 then return 'degraded', 'out of stock' end" } },
        helper.json_response(ORDER))
      assert.are.equal("degraded", r.status)
      assert.are.equal("status rule: out of stock", r.reason)
      assert.are.same({ "degraded" }, r.categories)
    end)

    it("keeps the decision when the status rule returns nothing", function()
      local r = attempt({ status = { lua = "if decision.status ~= 'succeeded' then return 'failed', 'x' end" } },
        helper.json_response(ORDER))
      assert.are.equal("succeeded", r.status)
      assert.are.equal("HTTP 200 in success codes [2xx]", r.reason)
    end)

    it("shows the status rule the extractions and assertion records", function()
      local r = attempt({ extract = { id = "$.id" }, assert = json.array({ { from = "status", op = "eq", value = 200 } }),
                          status = { lua = "return 'failed', extracted.id .. ' ' .. tostring(assertions[1].passed)" } },
        helper.json_response(ORDER))
      assert.are.equal("status rule: ord-17 true", r.reason)
    end)

    it("fails with E_LUA when the status rule raises, keeping an earlier failure first", function()
      local r = attempt({ status = { lua = "error('bad rule', 0)" } }, helper.json_response(ORDER, { status = 500 }))
      assert.are.equal("failed", r.status)
      assert.are.equal("HTTP 500 not in success codes [2xx]; status rule: Lua error: bad rule", r.reason)
      assert.are.same({ code = "E_LUA", message = "status rule: Lua error: bad rule" }, r.error)
    end)

    it("does not run the status rule after a custom Lua error", function()
      local r = attempt({ extract = { x = { lua = "error('no', 0)" } }, status = { lua = "return 'succeeded', 'fine'" } },
        helper.json_response(ORDER))
      assert.are.equal("failed", r.status)
      assert.are.equal("extract x: Lua error: no", r.reason)
    end)

    it("evaluates a Lua assertion subject", function()
      local r = attempt({ assert = json.array({ { lua = "return #response.body > 10", op = "eq", value = true } }) },
        helper.json_response(ORDER))
      assert.are.equal("succeeded", r.status)
      assert.are.equal("lua", r.assertions[1].subject)
    end)

    it("fails rather than degrades when a degraded assertion's Lua raises", function()
      local r = attempt({ assert = json.array({ { lua = "return nil + 1", op = "exists", severity = "degraded" } }) },
        helper.json_response(ORDER))
      assert.are.equal("failed", r.status)
      assert.are.equal("E_LUA", r.error.code)
      assert.matches("^assert lua exists: Lua error at line 1: attempt to perform arithmetic", r.reason)
    end)

    it("fails when the status rule returns an unknown status", function()
      local r = attempt({ status = { lua = "return 'ok'" } }, helper.json_response(ORDER))
      assert.are.equal("failed", r.status)
      assert.are.equal('status rule: returned "ok", not succeeded, degraded or failed', r.reason)
      assert.are.equal("E_LUA", r.error.code)
    end)
  end)

  describe("output", function()
    it("stores the output of a successful attempt", function()
      local r = attempt('{"output": {"format": "csv", "from": "$.items[*]", "fields": ["sku", "qty"]}}',
        helper.json_response(ORDER))
      assert.are.same({ format = "csv", content = "sku,qty\r\nA-1,2\r\n" }, r.output)
    end)

    it("writes no output for a failed attempt", function()
      local r = attempt('{"output": {"format": "json"}}', helper.json_response(ORDER, { status = 500 }))
      assert.is_nil(r.output)
    end)

    it("fails an attempt whose output cannot be built", function()
      local r = attempt('{"output": {"format": "csv", "from": "$["}}', helper.json_response(ORDER))
      assert.are.equal("failed", r.status)
      assert.matches("^output csv: invalid JSONPath", r.reason)
    end)
  end)

  describe("dry run", function()
    it("uses the sample response instead of the plugin, encoding a JSON body", function()
      local plugin = { run = function() error("network used in a dry run") end }
      local task = assert(json.decode('{"sample_response": {"status": 201, "body": {"id": "ord-1"}, "duration_ms": 12},'
        .. ' "extract": {"id": "$.id"}, "assert": [{"from": "header", "name": "Content-Type", "op": "contains", "value": "json"}]}'))
      local r = runtime.run_attempt(helper.ctx(task, plugin, { dry_run = true }))
      assert.are.equal("succeeded", r.status)
      assert.are.equal("ord-1", r.extracted.id)
    end)

    it("fails without calling the plugin when the task has no sample response", function()
      local plugin = { run = function() error("network used in a dry run") end }
      local r = runtime.run_attempt(helper.ctx({}, plugin, { dry_run = true }))
      assert.are.equal("failed", r.status)
      assert.are.equal("dry run: the task has no sample_response to use instead of the network", r.reason)
      assert.are.same({ "failed" }, r.categories)
    end)
  end)

  describe("garbage", function()
    it("fails deterministically on a nil body with rules", function()
      local r = attempt('{"extract": {"a": "$.a", "b": {"xpath": "/b"}, "c": {"regex": "c"}}}', { status = 200 })
      assert.are.equal("extract a: response has no body; extract b: response has no body; "
        .. "extract c: response has no body", r.reason)
    end)

    it("fails on malformed XML naming the parse error", function()
      local r = attempt('{"extract": {"id": {"xpath": "/o/id"}}}', { status = 200, body = "<o><id>1</o>" })
      assert.matches("^extract id: body is not XML: E_PARSE", r.reason)
    end)

    it("fails naming a malformed status code pattern", function()
      local r = attempt('{"status": {"success_codes": ["2x"]}}', helper.json_response(ORDER))
      assert.are.equal("failed", r.status)
      assert.are.equal('status success_codes: E_RULE: invalid status code pattern "2x"', r.reason)
    end)

    it("fails a plugin that returns nothing without calling it a transport error", function()
      local r = runtime.run_attempt(helper.ctx({}, helper.plugin()))
      assert.are.equal("E_PLUGIN", r.error.code)
      assert.are.same({ "failed" }, r.categories)
    end)

    it("takes an error without a code as a plugin failure", function()
      local r = runtime.run_attempt(helper.ctx({}, helper.plugin(nil, "something broke")))
      assert.are.same({ code = "E_PLUGIN", message = "something broke" }, r.error)
      assert.are.equal("plugin failed: something broke", r.reason)
      assert.are.same({ "failed" }, r.categories)
    end)

    it("joins repeated headers given as a list", function()
      local r = attempt('{"extract": {"v": {"from": "header", "name": "Via"}}}',
        { status = 200, headers = { Via = { "a", "b" } }, body = "" })
      assert.are.equal("a, b", r.extracted.v)
    end)

    it("returns arrays that encode as JSON arrays even when empty", function()
      local r = attempt({}, helper.json_response(ORDER))
      assert.are.equal("[]", json.encode(r.assertions))
      assert.are.equal("[]", json.encode(r.categories))
    end)
  end)
end)
