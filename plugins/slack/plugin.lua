-- Slack channel type: POST to an incoming webhook
-- (https://api.slack.com/messaging/webhooks). Under Slack's limits: header
-- plain_text <= 150, section text <= 3000, <= 10 fields of <= 2000. Values
-- are escaped for mrkdwn (& < >), so "<!channel>" in an event is text.
local http, notify = http, notify

local HEADER_MAX, TEXT_MAX, FIELDS_MAX, FIELD_MAX = 150, 3000, 10, 600

local function blocks(m)
  local list = {
    { type = "header", text = { type = "plain_text", text = notify.cut(notify.title(m), HEADER_MAX), emoji = true } },
  }
  if type(m.text) == "string" and m.text ~= "" then
    list[#list + 1] = { type = "section",
                        text = { type = "mrkdwn", text = notify.cut(notify.escape(m.text, "slack"), TEXT_MAX) } }
  end
  local fields = {}
  for i, f in ipairs(notify.fields(m, "slack")) do
    if i > FIELDS_MAX then break end
    fields[i] = { type = "mrkdwn", text = notify.cut("*" .. f.name .. "*\n" .. f.value, FIELD_MAX) }
  end
  if #fields > 0 then list[#list + 1] = { type = "section", fields = fields } end
  return list
end

local plugin = {}

function plugin.send(ctx)
  local m, s = ctx.message, ctx.settings
  local body
  if s.text then
    local text = notify.render(s.text, m, "slack")
    body = { text = notify.cut(text ~= "" and text or "-", TEXT_MAX) }
  else
    body = { text = notify.cut(notify.title(m, "slack"), TEXT_MAX), blocks = blocks(m) }
  end
  return http.request{ method = "POST", url = s.webhook_url_secret, json = body,
                       headers = { ["X-RestMon-Event-Id"] = m.id } }
end

return plugin
