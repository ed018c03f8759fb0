-- One attempt of a channel plugin (docs/plugins.md, "Channel plugins"): the
-- notifier calls channel.send(plugin, ctx) and nothing else, and judges the
-- verdict it returns (core/notify/notify_plugin.c). plugin.send(ctx) may
--   return http.request{...}          the response (the notifier judges its
--                                     status) or nil, "E_CODE: message"
--   return true | {delivered = true}  delivered
--   return {retry = true, error = "...", status = n?, retry_after_ms = n?}
--                                     failed this time, worth another attempt
--   return {error = "...", status = n?}  refused for good (not retried)
--   error("...")                      a bug: refused for good
-- Limit errors (CPU, memory, deadline) pass through: the sandbox's pcall
-- re-raises them.
local native = require "restmon.native"

local cut = native.notify.cut

local channel = {}

local ANSWER_MAX = 512
local ERROR_MAX = 600

local function text(v, max)
  if type(v) ~= "string" then v = tostring(v) end
  return cut(v, max or ERROR_MAX)
end

local function number(v)
  if type(v) == "number" and v == v and v > -1e15 and v < 1e15 then return math.floor(v) end
  return nil
end

-- "E_HTTP: could not connect" -> "E_HTTP", "could not connect".
local function split_error(err)
  local s = tostring(err):sub(1, 1000) -- a short subject keeps the pattern cheap
  local code, rest = s:match("^(E_[%w_]+):%s*(.*)$")
  if code then return code, rest end
  return "E_PLUGIN", s
end

local function response_verdict(r)
  local answer = type(r.body) == "string" and text(r.body, ANSWER_MAX) or ""
  local retry_after = nil
  if type(r.headers) == "table" then
    for k, v in pairs(r.headers) do
      if type(k) == "string" and k:lower() == "retry-after" then retry_after = text(v, 64) end
    end
  end
  return { kind = "response", status = number(r.status), answer = answer, retry_after = retry_after }
end

local function table_verdict(r)
  if r.delivered == true then return { kind = "delivered", status = number(r.status) } end
  if r.retry == true then
    return { kind = "retry", status = number(r.status), retry_after_ms = number(r.retry_after_ms),
             error = text(r.error or "the plugin asked for another attempt") }
  end
  if r.error ~= nil or r.delivered == false then
    return { kind = "refused", status = number(r.status), error = text(r.error or "the plugin did not send it") }
  end
  if number(r.status) then return response_verdict(r) end
  return { kind = "refused",
           error = "plugin.send returned a table that is neither a response nor a verdict (delivered, retry, error)" }
end

local function verdict(ok, r, err)
  if not ok then return { kind = "raised", error = text(r) } end
  if r == nil then
    if err == nil then return { kind = "refused", error = "plugin.send returned nothing" } end
    local code, message = split_error(err)
    return { kind = "failed", code = code, error = text(message) }
  end
  if r == true then return { kind = "delivered" } end
  if type(r) == "table" then return table_verdict(r) end
  return { kind = "refused", error = "plugin.send returned a " .. type(r) .. ", not a response or a verdict" }
end

-- Runs plugin.send(ctx) once. Returns the verdict (a table, see above).
function channel.send(plugin, ctx)
  return verdict(pcall(plugin.send, ctx))
end

return channel
