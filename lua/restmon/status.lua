-- Status mapping (docs/workflow-format.md, "Status mapping"): HTTP status
-- code patterns, response-time thresholds, the decision over the checks in
-- their documented order, the optional Lua rule, and the retry_on
-- categories an outcome falls into.
local native = require "restmon.native"
local extract = require "restmon.extract"

local json = native.json
local show, number_text = extract.show, extract.number_text

local status = {}

local STATUSES = { succeeded = true, degraded = true, failed = true }

-- Parses one code pattern: 200, "200", "2xx", "200-299". Returns lo, hi.
local function parse_pattern(p)
  if type(p) == "number" and p == math.floor(p) then return p, p end
  if type(p) ~= "string" or #p > 32 then return nil end
  local s = extract.trim(p)
  if s:find("^%d+$") then return tonumber(s), tonumber(s) end
  local class = s:match("^([1-5])[xX][xX]$")
  if class then return class * 100, class * 100 + 99 end
  local lo, hi = s:match("^(%d+)%s*%-%s*(%d+)$")
  if lo and tonumber(lo) <= tonumber(hi) then return tonumber(lo), tonumber(hi) end
  return nil
end

-- True when code is in the list of patterns; nil, "E_RULE: …" for a bad
-- pattern.
function status.code_in(code, patterns)
  if type(patterns) ~= "table" then return nil, "E_RULE: status codes must be a list" end
  for _, p in ipairs(patterns) do
    local lo, hi = parse_pattern(p)
    if not lo then return nil, "E_RULE: invalid status code pattern " .. show(p) end
    if code >= lo and code <= hi then return true end
  end
  return false
end

-- "[200, 2xx, 300-302]"
function status.describe_codes(patterns)
  local parts = {}
  for i, p in ipairs(patterns) do
    parts[i] = type(p) == "number" and number_text(p) or tostring(p)
  end
  return "[" .. table.concat(parts, ", ") .. "]"
end

-- The task's status object, {} when it has none.
function status.spec_of(task)
  return type(task) == "table" and type(task.status) == "table" and task.status or {}
end

-- The HTTP status check. Returns a finding {level, text} when the code is
-- not a success code (failed) or is a degraded code (degraded), and the
-- text that describes a passing check ("HTTP 200 in success codes [2xx]").
-- A response without a numeric status (non-HTTP plugin) is not checked.
function status.check_http(response, spec)
  local code = response.status
  if type(code) ~= "number" then return nil, nil end
  local success = spec.success_codes or { "2xx" }
  local degraded = spec.degraded_codes or {}
  local in_success, err = status.code_in(code, success)
  if in_success == nil then return { level = "failed", text = "status success_codes: " .. err } end
  local code_text = "HTTP " .. number_text(code)
  local success_text = "success codes " .. status.describe_codes(success)
  if in_success then return nil, code_text .. " in " .. success_text end
  local in_degraded, derr = status.code_in(code, degraded)
  if in_degraded == nil then return { level = "failed", text = "status degraded_codes: " .. derr } end
  local degraded_text = "degraded codes " .. status.describe_codes(degraded)
  if in_degraded then return { level = "degraded", text = code_text .. " in " .. degraded_text } end
  local text = code_text .. " not in " .. success_text
  if #degraded > 0 then text = text .. " or " .. degraded_text end
  return { level = "failed", text = text }
end

-- The response-time check against failed_over_ms and degraded_over_ms
-- (strictly slower than the limit). Returns a finding or nil.
function status.check_timing(response, spec)
  local ms = response.duration_ms
  if type(ms) ~= "number" then return nil end
  local function over(limit, level)
    if type(limit) == "number" and ms > limit then
      return { level = level, text = "response took " .. number_text(ms) .. " ms, over "
                                   .. level .. "_over_ms " .. number_text(limit) }
    end
  end
  return over(spec.failed_over_ms, "failed") or over(spec.degraded_over_ms, "degraded")
end

-- Decides over checks given in their documented order, each a list of
-- findings {level, text}. Failed: the failed findings of the first check
-- that has any (later failures are often its consequences). Degraded:
-- every degraded finding. Succeeded: the passing summary.
function status.decide(checks, summary)
  local degraded = {}
  for _, findings in ipairs(checks) do
    local failed = {}
    for _, f in ipairs(findings) do
      if f.level == "failed" then failed[#failed + 1] = f.text
      elseif f.level == "degraded" then degraded[#degraded + 1] = f.text end
    end
    if #failed > 0 then return "failed", table.concat(failed, "; ") end
  end
  if #degraded > 0 then return "degraded", table.concat(degraded, "; ") end
  return "succeeded", summary
end

-- Runs the task's Lua status rule. scope holds extracted, assertions and
-- decision = {status, reason}. Returns the new status and reason (the old
-- ones when the rule returns nothing), or nil, reason, code on error.
function status.apply_rule(src, code, scope)
  if not src.lua then return nil, "status rule: custom Lua is not available", "E_LUA" end
  local results, err = src.lua(code, "status rule", scope)
  if not results then return nil, "status rule: " .. err, "E_LUA" end
  local new, why = results[1], results[2]
  if new == nil then return scope.decision.status, scope.decision.reason end
  if not STATUSES[new] then
    return nil, "status rule: returned " .. show(new) .. ", not succeeded, degraded or failed", "E_LUA"
  end
  if why == nil then
    if new == scope.decision.status then return new, scope.decision.reason end
    return new, "status rule returned " .. new
  end
  return new, "status rule: " .. tostring(why)
end

-- The retry_on categories of an outcome: a succeeded attempt has none; a
-- transport error adds timeout (E_TIMEOUT) or error; a 4xx/5xx response
-- adds its class; then the status itself (failed or degraded).
function status.categories(result, response, transport)
  local out = json.array({})
  if result.status == "succeeded" then return out end
  if transport and result.error then
    out[#out + 1] = result.error.code == "E_TIMEOUT" and "timeout" or "error"
  elseif response and type(response.status) == "number" then
    local class = math.floor(response.status / 100)
    if class == 4 or class == 5 then out[#out + 1] = class .. "xx" end
  end
  out[#out + 1] = result.status
  return out
end

return status
