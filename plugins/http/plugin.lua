-- The HTTP task type: one request built from the task's "request" fields.
-- The C core builds and sends it (secrets are injected there); the runtime
-- library then extracts, asserts and decides the status from the response.
local http = http

local plugin = {}

function plugin.run(ctx)
  local opts = {}
  for k, v in pairs(ctx.task.request or {}) do
    opts[k] = v
  end
  opts.timeout_ms = ctx.timeout_ms
  return http.request(opts)
end

return plugin
