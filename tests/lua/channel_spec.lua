-- The channel plugins' side of a notification: restmon.channel turning what
-- plugin.send returns into the verdict the notifier judges, the notify
-- module's text helpers, and the request each shipped chat plugin builds
-- (run here against a stub http.request; tests/unit/test_notify.c and
-- tests/integration/test_channel_plugins.py send them for real).
local helper = dofile("tests/lua/runtime_helper.lua")
local channel = require "restmon.channel"
local native = helper.native
local json, notify = native.json, native.notify

local function plugin_of(send) return { send = send } end

local function verdict(...)
  local values, n = { ... }, select("#", ...)
  return channel.send(plugin_of(function() return unpack(values, 1, n) end), {})
end

describe("channel.send", function()
  it("hands a response over for the notifier to judge", function()
    local v = verdict({ status = 503, headers = { ["retry-after"] = "7" }, body = '{"description": "busy"}' })
    assert.are.same({ kind = "response", status = 503, answer = '{"description": "busy"}', retry_after = "7" }, v)
  end)

  it("keeps only the start of a long answer, as valid UTF-8", function()
    local v = verdict({ status = 400, body = string.rep("\xff", 2000) })
    assert.is_true(#v.answer <= 512)
    assert.is_truthy(native.json.encode(v))
  end)

  it("splits a coded error", function()
    assert.are.same({ kind = "failed", code = "E_HTTP", error = "could not connect" },
      verdict(nil, "E_HTTP: could not connect"))
    assert.are.same({ kind = "failed", code = "E_PLUGIN", error = "no code here" }, verdict(nil, "no code here"))
  end)

  it("takes the plugin's own verdicts", function()
    assert.are.same({ kind = "delivered" }, verdict(true))
    assert.are.same({ kind = "delivered", status = 202 }, verdict({ delivered = true, status = 202 }))
    assert.are.same({ kind = "retry", error = "busy", retry_after_ms = 1500 },
      verdict({ retry = true, error = "busy", retry_after_ms = 1500.7 }))
    assert.are.same({ kind = "refused", error = "no such room", status = 404 },
      verdict({ error = "no such room", status = 404 }))
  end)

  it("refuses what is no verdict, and reports a raised error", function()
    assert.are.equal("refused", verdict(42).kind)
    assert.are.equal("refused", verdict({ hello = 1 }).kind)
    assert.are.equal("refused", verdict().kind)
    local v = channel.send(plugin_of(function() error("boom", 0) end), {})
    assert.are.same({ kind = "raised", error = "boom" }, v)
  end)
end)

describe("notify", function()
  local msg = { title = "Disk <full>", severity = "critical", text = "a & b",
                fields = { zeta = 1, alpha = "x" }, field_order = json.array({ "zeta", "alpha" }) }

  it("renders templates with the values escaped", function()
    assert.are.equal("*Disk &lt;full&gt;* 1", notify.render("*{{title}}* {{fields.zeta}}", msg, "html"))
    assert.are.same({ s = "critical", n = 1 }, notify.render_json({ s = "{{severity}}", n = "{{fields.zeta}}" }, msg))
  end)

  it("lays out a message in its field order", function()
    assert.are.equal("[critical] Disk <full>", notify.title(msg))
    assert.are.equal("a & b\n\nzeta: 1\nalpha: x", notify.body(msg))
    assert.are.same({ { name = "zeta", value = "1" }, { name = "alpha", value = "x" } }, notify.fields(msg))
    assert.are.equal("a &amp; b", notify.escape("a & b", "slack"))
  end)

  it("cuts on a character boundary", function()
    assert.are.equal("h\xc3\xa9\xe2\x80\xa6", notify.cut("h\xc3\xa9llo w\xc3\xb6rld", 6))
    assert.has_error(function() notify.title(msg, "rot13") end)
    local v, err = notify.render("{{x}}", { f = function() end })
    assert.is_nil(v)
    assert.matches("^E_INVALID: data: ", err)
  end)
end)

-- Loads plugins/<name>/plugin.lua with an http.request that records its
-- argument and answers 200.
local function load_plugin(name)
  local sent = {}
  local env = { http = { request = function(req) sent[#sent + 1] = req; return { status = 200 } end },
                notify = notify, json = json }
  setmetatable(env, { __index = _G })
  local fn = assert(loadfile("plugins/" .. name .. "/plugin.lua"))
  setfenv(fn, env)
  return fn(), sent
end

local MESSAGE = { id = "m-1", title = "Checkout down", severity = "critical", text = "@everyone <b>503</b>",
                  fields = { host = "db-1", retries = 3 }, field_order = json.array({ "host", "retries" }),
                  channel = { name = "ops", type = "x" } }

describe("shipped channel plugins", function()
  it("discord: one embed that mentions nobody", function()
    local p, sent = load_plugin("discord")
    p.send({ message = MESSAGE, settings = { webhook_url_secret = "TOKEN" }, attempt = 1 })
    local body = sent[1].json
    assert.are.equal("TOKEN", sent[1].url)
    assert.are.equal(0, #body.allowed_mentions.parse)
    assert.are.equal(json.array_mt, getmetatable(body.allowed_mentions.parse))
    assert.are.same({ title = "[critical] Checkout down", description = "@everyone <b>503</b>", color = 0xE74C3C,
                      fields = { { name = "host", value = "db-1", inline = true },
                                 { name = "retries", value = "3", inline = true } } }, body.embeds[1])
  end)

  it("slack: the text escaped for mrkdwn", function()
    local p, sent = load_plugin("slack")
    p.send({ message = MESSAGE, settings = { webhook_url_secret = "TOKEN" } })
    local body = sent[1].json
    assert.are.equal("[critical] Checkout down", body.text)
    assert.are.equal("@everyone &lt;b&gt;503&lt;/b&gt;", body.blocks[2].text.text)
    assert.are.same({ { type = "mrkdwn", text = "*host*\ndb-1" }, { type = "mrkdwn", text = "*retries*\n3" } },
      body.blocks[3].fields)
  end)

  it("telegram: the token in the bot path, values escaped for the markup", function()
    local p, sent = load_plugin("telegram")
    p.send({ message = MESSAGE, settings = { bot_token_secret = "TOKEN", chat_id = 5, parse_mode = "HTML",
                                            api_url = "https://api.telegram.org//" } })
    assert.are.equal("https://api.telegram.org/botTOKEN/sendMessage", sent[1].url)
    assert.are.equal("<b>[critical] Checkout down</b>\n\n@everyone &lt;b&gt;503&lt;/b&gt;\n\nhost: db-1\nretries: 3",
      sent[1].json.text)
    local r, err = p.send({ message = MESSAGE, settings = { bot_token_secret = "T", chat_id = 5, parse_mode = "BBCode",
                                                           api_url = "https://x" } })
    assert.is_nil(r)
    assert.matches("^E_INVALID: settings.parse_mode", err)
  end)

  it("ntfy: JSON to the server's root, the token as a bearer", function()
    local p, sent = load_plugin("ntfy")
    p.send({ message = MESSAGE, settings = { server_url = "https://ntfy.example/", topic = "ops", token_secret = "T" } })
    assert.are.equal("https://ntfy.example/", sent[1].url)
    assert.are.same({ type = "bearer", token = "T" }, sent[1].auth)
    assert.are.equal(5, sent[1].json.priority)
    local r, err = p.send({ message = MESSAGE, settings = { server_url = "https://x", topic = "a/b" } })
    assert.is_nil(r)
    assert.matches("settings.topic", err)
  end)
end)
