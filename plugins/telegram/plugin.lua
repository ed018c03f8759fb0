-- Telegram channel type: POST {api_url}/bot<token>/sendMessage
-- (https://core.telegram.org/bots/api#sendmessage), text <= 4096. Values
-- are escaped for the parse_mode chosen; the template's own text is markup.
local http, notify = http, notify

local TEXT_MAX = 4096
local ESCAPES = { HTML = "html", MarkdownV2 = "markdownv2", Markdown = "markdown" }
local BOLD = { HTML = { "<b>", "</b>" }, MarkdownV2 = { "*", "*" }, Markdown = { "*", "*" } }

-- The default text: the title (bold when there is markup), a blank line,
-- the body.
local function layout(m, mode)
  local esc = ESCAPES[mode] or "none"
  local bold = BOLD[mode] or { "", "" }
  local body = notify.body(m, esc)
  return bold[1] .. notify.title(m, esc) .. bold[2] .. (body ~= "" and "\n\n" .. body or "")
end

local plugin = {}

function plugin.send(ctx)
  local m, s = ctx.message, ctx.settings
  local mode = s.parse_mode
  if mode ~= nil and not ESCAPES[mode] then
    return nil, "E_INVALID: settings.parse_mode: must be HTML, MarkdownV2 or Markdown"
  end
  local text = s.text and notify.render(s.text, m, ESCAPES[mode] or "none") or layout(m, mode)
  local api = s.api_url:gsub("/+$", "")
  return http.request{
    method = "POST",
    url = api .. "/bot" .. s.bot_token_secret .. "/sendMessage",
    json = { chat_id = s.chat_id, text = notify.cut(text, TEXT_MAX), parse_mode = mode,
             disable_web_page_preview = true },
    headers = { ["X-RestMon-Event-Id"] = m.id },
  }
end

return plugin
