-- ntfy channel type: a message published as JSON to the server's root
-- (https://docs.ntfy.sh/publish/#publish-as-json), which keeps titles and
-- texts in any language out of HTTP headers. A protected topic takes an
-- access token, sent as a bearer token: the core puts it in.
local http, notify = http, notify

local PRIORITY = { min = 1, low = 2, default = 3, high = 4, urgent = 5 }
local BY_SEVERITY = { critical = 5, error = 5, failed = 5, warning = 4, degraded = 4 }
local TAGS = { critical = "rotating_light", error = "rotating_light", failed = "rotating_light",
               warning = "warning", degraded = "warning",
               ok = "white_check_mark", healthy = "white_check_mark", resolved = "white_check_mark",
               succeeded = "white_check_mark" }
local MESSAGE_MAX = 4000

local plugin = {}

function plugin.send(ctx)
  local m, s = ctx.message, ctx.settings
  if not tostring(s.topic):match("^[%w_-]+$") then
    return nil, "E_INVALID: settings.topic: use letters, digits, '_' and '-'"
  end
  local text = s.text and notify.render(s.text, m) or notify.body(m)
  local body = {
    topic = s.topic,
    title = notify.cut(notify.title(m), 250),
    message = notify.cut(text ~= "" and text or notify.title(m), MESSAGE_MAX),
    priority = PRIORITY[s.priority] or BY_SEVERITY[m.severity] or 3,
    tags = TAGS[m.severity] and { TAGS[m.severity] } or nil,
  }
  local req = { method = "POST", url = s.server_url:gsub("/+$", "") .. "/", json = body,
                headers = { ["X-RestMon-Event-Id"] = m.id } }
  if s.token_secret then req.auth = { type = "bearer", token = s.token_secret } end
  return http.request(req)
end

return plugin
