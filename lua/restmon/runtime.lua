-- One attempt of one task: call the plugin (or take the sample response on
-- a dry run), then decide succeeded / degraded / failed in the order of
-- docs/workflow-format.md "Status mapping", with the reason, the
-- extracted variables, the assertion records, the output and the retry_on
-- categories. The C engine calls runtime.run_attempt(ctx) and nothing else.
local native = require "restmon.native"
local extract = require "restmon.extract"
local assertions = require "restmon.assert"
local status = require "restmon.status"
local mutate = require "restmon.mutate"

local json = native.json

local runtime = {}

-- A deep copy that keeps the array marker, so sandboxed code can change
-- what it is given without touching the engine's tables.
local function copy(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[copy(k, seen)] = copy(x, seen) end
  if getmetatable(v) == json.array_mt then setmetatable(out, json.array_mt) end
  return out
end

local function pack(...)
  return { n = select("#", ...), ... }
end

-- The sandbox's pcall: it re-raises fatal budget and deadline errors, so
-- they leave the attempt untouched. The host passes it as ctx.pcall (a new
-- environment just to reach it costs a copy of the whole sandbox); else it
-- is a new environment's. Outside a sandbox (no new_env) the plain pcall
-- is all there is.
local function protected_call(ctx)
  if type(ctx.pcall) == "function" then return ctx.pcall end
  if type(ctx.new_env) == "function" then
    local env = ctx.new_env()
    if type(env) == "table" and type(env.pcall) == "function" then return env.pcall end
  end
  return pcall
end

local function log(ctx, level, message)
  if type(ctx.log) == "function" then ctx.log(level, message) end
end

-- "E_TIMEOUT: request … timed out" -> "E_TIMEOUT", "request … timed out".
local function split_error(err, fallback_code)
  local text = tostring(err)
  local colon = text:find(":", 1, true)
  local code = colon and text:sub(1, colon - 1)
  if not (code and code:find("^E_[%w_]+$")) then return fallback_code, text end
  local start = colon + 1
  while text:sub(start, start) == " " do start = start + 1 end
  return code, text:sub(start)
end

-- A Lua error without the chunk name the label already gives:
-- "extract total:1: boom" -> "line 1: boom".
local function strip_chunk(label, err)
  local text = tostring(err)
  if text:sub(1, #label + 1) ~= label .. ":" then return text end
  local line, rest = text:match("^(%d+): ()", #label + 2)
  if not line then return text end
  return "line " .. line .. ": " .. text:sub(rest)
end

-- "Lua error at line 1: boom", or "Lua error: boom" without a line.
local function lua_error_text(label, err)
  local text = strip_chunk(label, err)
  if text:find("^line %d") then return "Lua error at " .. text end
  return "Lua error: " .. text
end

local function results_of(label, ok, ...)
  if not ok then return nil, lua_error_text(label, (...)) end
  return pack(...)
end

-- The runner for custom Lua (extraction, assertion subjects, status rule):
-- compiled by the host, run in a fresh sandbox environment that sees
-- response, vars and inputs (copies) plus extra. Returns the packed
-- results or nil, "Lua error …".
local function lua_runner(ctx, response, vars)
  return function(code, label, extra)
    if type(ctx.compile) ~= "function" or type(ctx.new_env) ~= "function" then
      return nil, "custom Lua is not available in this host"
    end
    if type(code) ~= "string" then return nil, "Lua rule is not a string" end
    local env = ctx.new_env()
    env.response, env.vars, env.inputs = copy(response), copy(vars), copy(ctx.inputs or {})
    for k, v in pairs(extra or {}) do env[k] = copy(v) end
    local fn, err = ctx.compile(code, "=" .. label, env)
    if not fn then
      local _, message = split_error(err)
      return nil, "Lua rule does not compile: " .. strip_chunk(label, message)
    end
    local call = type(env.pcall) == "function" and env.pcall or pcall
    return results_of(label, call(fn))
  end
end

-- Headers with lower-case names, repeated ones (a list) joined by ", ".
local function lower_headers(headers)
  local out = {}
  if type(headers) ~= "table" then return out end
  for name, value in pairs(headers) do
    if type(value) == "table" then
      local parts = {}
      for i, v in ipairs(value) do parts[i] = tostring(v) end
      value = table.concat(parts, ", ")
    end
    local key = tostring(name):lower()
    out[key] = out[key] and (out[key] .. ", " .. tostring(value)) or tostring(value)
  end
  return out
end

-- A copy of the plugin's response with lower-case headers and a text body
-- (a non-text body, as sample responses allow, is encoded as JSON).
local function normalize_response(r)
  local out = {}
  for k, v in pairs(r) do out[k] = v end
  out.headers = lower_headers(r.headers)
  if r.body ~= nil and type(r.body) ~= "string" then
    local text, err = json.encode(r.body)
    if not text then return nil, "response body is not text or JSON: " .. tostring(err) end
    out.body = text
    out.headers["content-type"] = out.headers["content-type"] or "application/json"
  end
  return out
end

-- The response of this attempt: the task's sample_response on a dry run
-- (a dry run sends nothing, so without one the attempt fails), else what
-- the plugin returns. Returns the response, or nil, error, reason and
-- transport (true for a coded error the plugin reported, not raised).
local function fetch(ctx, pcall_)
  local task = ctx.task or {}
  if ctx.dry_run then
    if type(task.sample_response) == "table" then return copy(task.sample_response) end
    local message = "dry run: the task has no sample_response to use instead of the network"
    return nil, { code = "E_NOTFOUND", message = message }, message
  end
  local plugin = ctx.plugin
  if type(plugin) ~= "table" or type(plugin.run) ~= "function" then
    return nil, { code = "E_PLUGIN", message = "plugin has no run function" }, "plugin has no run function"
  end
  local ok, response, err = pcall_(plugin.run, ctx)
  if not ok then
    local message = tostring(response)
    return nil, { code = "E_LUA", message = message }, "plugin raised a Lua error: " .. message
  end
  if response == nil and err ~= nil then
    local code, message = split_error(err, "E_PLUGIN")
    if code == "E_LUA" or code == "E_PLUGIN" then
      return nil, { code = code, message = message }, "plugin failed: " .. message
    end
    return nil, { code = code, message = message }, message ~= "" and message or code, true
  end
  if type(response) ~= "table" then
    local message = "plugin returned " .. extract.show(response) .. " instead of a response"
    return nil, { code = "E_PLUGIN", message = message }, "plugin failed: " .. message
  end
  return response
end

local function failed_without_response(err, reason, transport)
  local result = { status = "failed", reason = reason, error = err, extracted = {}, assertions = json.array({}) }
  result.categories = status.categories(result, nil, transport)
  return result
end

local function merged(vars, extracted)
  local out = {}
  for k, v in pairs(vars) do out[k] = v end
  for k, v in pairs(extracted) do out[k] = v end
  return out
end

local function first_error(...)
  for _, findings in ipairs({ ... }) do
    for _, f in ipairs(findings) do
      if f.code then return { code = f.code, message = f.text } end
    end
  end
  return nil
end

local function success_summary(http_text, extracted, records)
  local parts = { http_text }
  local n = 0
  for _ in pairs(extracted) do n = n + 1 end
  if n > 0 then parts[#parts + 1] = n .. (n == 1 and " variable extracted" or " variables extracted") end
  parts[#parts + 1] = assertions.summary(records)
  if #parts == 0 then return "completed without error" end
  return table.concat(parts, "; ")
end

-- Lets the task's Lua status rule change the decision in result; a rule
-- that fails makes the attempt fail with E_LUA, after any earlier failure.
local function apply_status_rule(ctx, src, code, result)
  local decision = { status = result.status, reason = result.reason }
  local new, reason, ecode = status.apply_rule(src, code,
    { extracted = result.extracted, assertions = result.assertions, decision = decision })
  if not new then
    result.error = { code = ecode, message = reason }
    result.reason = result.status == "failed" and (result.reason .. "; " .. reason) or reason
    result.status = "failed"
    return
  end
  if new ~= decision.status then log(ctx, "info", "status rule turned " .. decision.status .. " into " .. new) end
  result.status, result.reason = new, reason
end

-- Runs one attempt. ctx fields:
--   task_name, task (the definition, templates rendered; JSON arrays carry
--   json.array_mt), vars (read-only), inputs, attempt, dry_run,
--   plugin (plugin.run(ctx) -> response | nil, "E_CODE: message"),
--   compile(src, chunkname, env) and new_env() for custom Lua, pcall (the
--   sandbox's; optional),
--   log(level, message) (optional).
-- Returns {status = "succeeded"|"degraded"|"failed", reason, error =
-- {code, message} or nil, extracted (this task's), assertions (records),
-- output = {format, content} or nil, categories (retry_on names)}.
-- Errors the sandbox pcall re-raises (CPU, memory, deadline) pass through.
function runtime.run_attempt(ctx)
  local pcall_ = protected_call(ctx)
  local raw, err, reason, transport = fetch(ctx, pcall_)
  if not raw then return failed_without_response(err, reason, transport) end
  local response, nerr = normalize_response(raw)
  if not response then
    return failed_without_response({ code = "E_PLUGIN", message = nerr }, "plugin failed: " .. nerr)
  end

  local task, vars = ctx.task or {}, ctx.vars or {}
  local spec = status.spec_of(task)
  local src = extract.source(response, lua_runner(ctx, response, vars))

  local http_finding, http_text = status.check_http(response, spec)
  local extracted, extract_findings = extract.run(src, task.extract)
  local all_vars = merged(vars, extracted)
  -- assertions and the status rule see this task's extractions in vars
  src.lua = lua_runner(ctx, response, all_vars)
  local records, assert_findings = assertions.run(src, task.assert, all_vars)
  local timing_finding = status.check_timing(response, spec)

  local result = { extracted = extracted, assertions = records }
  result.error = first_error(extract_findings, assert_findings)
  result.status, result.reason = status.decide({ { http_finding }, extract_findings, assert_findings,
                                                 { timing_finding } },
                                               success_summary(http_text, extracted, records))

  if spec.lua ~= nil and not result.error then apply_status_rule(ctx, src, spec.lua, result) end

  if task.output ~= nil and result.status ~= "failed" then
    local output, oerr = mutate.run(src, task.output, extracted)
    if output then
      result.output = output
    else
      result.status, result.reason = "failed", oerr
    end
  end

  result.categories = status.categories(result, response, false)
  return result
end

return runtime
