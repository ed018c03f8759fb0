-- Discord channel type: POST to an incoming webhook
-- (https://discord.com/developers/docs/resources/webhook). Under Discord's
-- limits: content <= 2000; embed title <= 256, description <= 4096, <= 25
-- fields (name <= 256, value <= 1024, not empty), <= 6000 in all -- the
-- numbers below keep well inside them. allowed_mentions is empty, so
-- "@everyone" in an event pings nobody.
local http, notify, json = http, notify, json

local CONTENT_MAX, TITLE_MAX, DESCRIPTION_MAX = 2000, 256, 3000
local FIELDS_MAX, NAME_MAX, VALUE_MAX = 10, 64, 200

local COLOURS = {
  critical = 0xE74C3C, error = 0xE74C3C, failed = 0xE74C3C,
  warning = 0xF39C12, degraded = 0xF39C12,
  info = 0x3498DB,
  ok = 0x2ECC71, healthy = 0x2ECC71, resolved = 0x2ECC71, succeeded = 0x2ECC71,
}

local function nonempty(s) return s ~= "" and s or "-" end

local function embed(m)
  local e = { title = notify.cut(notify.title(m), TITLE_MAX), color = COLOURS[m.severity] }
  if type(m.text) == "string" and m.text ~= "" then e.description = notify.cut(m.text, DESCRIPTION_MAX) end
  local fields = {}
  for i, f in ipairs(notify.fields(m)) do
    if i > FIELDS_MAX then break end
    fields[i] = { name = notify.cut(f.name, NAME_MAX), value = notify.cut(nonempty(f.value), VALUE_MAX),
                  inline = true }
  end
  if #fields > 0 then e.fields = fields end
  return e
end

local plugin = {}

function plugin.send(ctx)
  local m, s = ctx.message, ctx.settings
  local body = { allowed_mentions = { parse = json.array({}) } }
  if s.text then
    body.content = notify.cut(nonempty(notify.render(s.text, m)), CONTENT_MAX)
  else
    body.embeds = { embed(m) }
  end
  return http.request{ method = "POST", url = s.webhook_url_secret, json = body,
                       headers = { ["X-RestMon-Event-Id"] = m.id } }
end

return plugin
