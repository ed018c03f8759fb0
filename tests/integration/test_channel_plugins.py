"""Notification channel types as Lua plugins, through the real server (ASan
binary) on SQLite and PostgreSQL.

An admin drops a new channel plugin folder ("pager": a URL, a room and an
API key held in the vault) into the plugin folder the server is given
(RESTMON_PLUGINS); it is listed by GET /channel-types with its fields, its
settings are checked against the manifest (unknown, missing, wrong type,
a secret's value where its name belongs: 422 by path), and a signal
transition delivers through it to a local receiver with the vault secret
put in by the core -- the plugin itself sees only a token, and the value is
nowhere in the database, the log, the API's answers or the delivery rows.
A receiver that answers 503 once gets a retry; one that is down fills the
dead letters, and a re-send delivers once it is up. A plugin that loops or
allocates without end fails its delivery with a clear error and the server
keeps serving. POST /channels/{id}/test answers with the outcome, is
recorded and audited, and needs channels:execute. The shipped Discord,
Slack, Telegram and ntfy plugins post what their APIs expect (checked at a
local receiver). A bad channel manifest stops the start, naming the field."""

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from test_api_defs import audit_actions, make_user, paths
from test_api_secrets_leak import db_bytes, leaks
from test_durable import store_url  # noqa: F401  (fixture)
from test_notifications import deliveries, free_port
from test_serve import assert_clean_exit, start_server, write_config

NOTIFY_CONF = "notify.attempts = 3\nnotify.backoff_ms = 100\nnotify.max_delay_ms = 300\nlog.level = debug\n"
PAGER_KEY = "pk-7Hq2-zebra-Lumen-4411"  # its forms must appear nowhere

PAGER_MANIFEST = {
    "name": "pager", "kind": "channel", "label": "Pager", "version": "1",
    "description": "Pages a room through the Pager API.",
    "fields": [
        {"name": "url", "type": "text", "format": "url", "required": True, "label": "API URL"},
        {"name": "api_key_secret", "type": "password", "required": True, "label": "API key (vault secret)",
         "value_pattern": "^pk-[A-Za-z0-9-]+$", "value_hint": "a pager key (pk-...)"},
        {"name": "room", "type": "text", "required": True},
        {"name": "urgent", "type": "boolean", "default": False},
    ],
}
PAGER_LUA = """
local plugin = {}
function plugin.send(ctx)
  local m, s = ctx.message, ctx.settings
  return http.request{
    method = "POST", url = s.url,
    headers = { ["X-Api-Key"] = s.api_key_secret },
    json = { room = s.room, title = notify.title(m), lines = notify.body(m), urgent = s.urgent,
             attempt = ctx.attempt, channel = ctx.channel.name,
             -- what Lua holds in place of the key: a token, never the value
             lua_saw_token = s.api_key_secret:find("^@@rmsecret%-") ~= nil },
  }
end
return plugin
"""
LOOPER_LUA = "local p = {}\nfunction p.send(ctx) while true do end end\nreturn p\n"
HOG_LUA = ("local p = {}\nfunction p.send(ctx)\n  local t, i = {}, 0\n"
           "  while true do i = i + 1; t[i] = string.rep('x', 65536) .. i end\nend\nreturn p\n")


def plugin_dir(tmp_path):
    d = tmp_path / "plugins"
    for name, manifest, code in (
            ("pager", PAGER_MANIFEST, PAGER_LUA),
            ("looper", {"name": "looper", "kind": "channel", "fields": [{"name": "n", "type": "number"}]},
             LOOPER_LUA),
            ("hog", {"name": "hog", "kind": "channel", "fields": []}, HOG_LUA)):
        (d / name).mkdir(parents=True)
        (d / name / "manifest.json").write_text(json.dumps(manifest))
        (d / name / "plugin.lua").write_text(code)
    return d


@pytest.fixture
def server(restmon_bin, tmp_path, store_url):  # noqa: F811
    srv = start_server(restmon_bin, tmp_path, store_url, env={"RESTMON_PLUGINS": str(plugin_dir(tmp_path))},
                       extra_conf=NOTIFY_CONF)
    srv.store_url = store_url
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


class Hook:
    """A local receiver: records (path, headers, body) of every POST and
    answers the statuses of script in turn, then 200 {"ok": true}."""

    def __init__(self, script=(), port=0):
        self.hits = []
        self.script = list(script)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.hits.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                n = len(outer.hits)
                status = outer.script[n - 1] if n <= len(outer.script) else 200
                answer = b'{"ok": true}' if status == 200 else b'{"description": "try later"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.hits) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.hits

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def ok(srv, token, method, path, body=None, want=200):
    status, env = srv.api(method, path, body, token=token, timeout=60)
    assert status == want, (method, path, status, env)
    return env["data"]


def add_secret(srv, token, name, value):
    ok(srv, token, "POST", "/api/v1/secrets", {"name": name, "value": value}, want=201)


def channel(srv, token, name, type_, settings, enabled=True):
    return ok(srv, token, "POST", "/api/v1/channels",
              {"name": name, "type": type_, "settings": settings, "enabled": enabled}, want=201)


def pager(srv, token, url, name="oncall-pager"):
    return channel(srv, token, name, "pager", {"url": url, "api_key_secret": "PAGER_KEY", "room": "ops"})


def fail_signal(srv, token, channel_id, name="payments-events"):
    """An event monitor notifying channel_id, pushed to Failed."""
    mon = ok(srv, token, "POST", "/api/v1/monitors",
             {"name": name, "type": "event", "notify": {"channels": [channel_id], "on": ["failed"]}}, want=201)
    ok(srv, token, "POST", "/api/v1/monitors/%s/events" % mon["id"], {"state": "failed"})
    return mon


def test_a_dropped_in_channel_plugin_is_listed_checked_and_delivers_with_its_vault_secret(server):
    admin = server.login()
    _, viewer = make_user(server, admin, "olga", "read_only_operator")
    types = ok(server, viewer, "GET", "/api/v1/channel-types?page_size=100")
    by_type = {t["type"]: t for t in types["items"]}
    assert [t["type"] for t in types["items"][:2]] == ["webhook", "email"]
    assert {"discord", "slack", "telegram", "ntfy", "pager", "looper", "hog"} <= set(by_type)
    assert types["total"] == len(types["items"]) and types["total_pages"] == 1
    assert by_type["pager"]["builtin"] is False and by_type["webhook"]["builtin"] is True
    assert by_type["pager"]["fields"] == PAGER_MANIFEST["fields"] and by_type["pager"]["label"] == "Pager"
    page = ok(server, viewer, "GET", "/api/v1/channel-types?page=2&page_size=2")
    assert [t["type"] for t in page["items"]] == [t["type"] for t in types["items"][2:4]]
    status, env = server.api("GET", "/api/v1/channel-types?kind=x", token=viewer)
    assert status == 400 and "query.kind" in str(env)

    add_secret(server, admin, "PAGER_KEY", PAGER_KEY)
    hook = Hook()
    try:
        url = hook.base + "/page"
        for settings, want in (
                ({"url": url, "api_key_secret": "PAGER_KEY", "room": "ops", "colour": "red"},
                 ["$.settings.colour"]),
                ({"url": url}, ["$.settings.api_key_secret", "$.settings.room"]),
                ({"url": "ftp://x", "api_key_secret": "PAGER_KEY", "room": 7, "urgent": "yes"},
                 ["$.settings.url", "$.settings.room", "$.settings.urgent"]),
                ({"url": url, "api_key_secret": "https://pager.example/keys/x y", "room": "ops"},
                 ["$.settings.api_key_secret"]),
                ({"url": "https://u:pw@pager.example/x", "api_key_secret": "PAGER_KEY", "room": "ops"},
                 ["$.settings.url"])):
            status, env = server.api("POST", "/api/v1/channels", {"name": "p", "type": "pager", "settings": settings},
                                     token=admin)
            assert status == 422 and sorted(paths(env)) == sorted(want), (settings, env)
        status, env = server.api("POST", "/api/v1/channels", {"name": "p", "type": "pagr", "settings": {}},
                                 token=admin)
        assert status == 422 and paths(env) == ["$.type"] and "pager" in env["error"]["details"][0]["message"]

        ch = pager(server, admin, url)
        assert ch["settings"] == {"url": url, "api_key_secret": "PAGER_KEY", "room": "ops"}
        mon = fail_signal(server, admin, ch["id"])
        rows = deliveries(server, admin, "channel_id=" + ch["id"], 1)
        assert rows[0]["status"] == "delivered" and rows[0]["channel_type"] == "pager", rows
        assert rows[0]["object_id"] == mon["id"] and rows[0]["event"] == "signal.failed" and rows[0]["attempts"] == 1
        path, headers, body = hook.wait(1)[0]
        sent = json.loads(body)
        assert path == "/page" and headers["x-api-key"] == PAGER_KEY
        assert sent["room"] == "ops" and sent["urgent"] is False and sent["attempt"] == 1
        assert sent["lua_saw_token"] is True and sent["channel"] == "oncall-pager"
        assert "payments-events" in sent["title"] + sent["lines"], sent

        # nowhere but at the receiver
        answers = [server.request("GET", p, token=admin)[2] for p in (
            "/api/v1/deliveries", "/api/v1/deliveries/" + rows[0]["id"], "/api/v1/channels/" + ch["id"],
            "/api/v1/channel-types", "/api/v1/audit?page_size=200")]
        for blob in answers:
            assert not leaks(PAGER_KEY, blob)
        for where, blob in db_bytes(server.store_url).items():
            assert not leaks(PAGER_KEY, blob), where
    finally:
        hook.close()
    assert_clean_exit(server)
    assert not leaks(PAGER_KEY, server.stderr())


def test_a_plugin_channel_retries_dead_letters_and_resends_like_the_built_in_ones(server):
    admin = server.login()
    add_secret(server, admin, "PAGER_KEY", PAGER_KEY)
    flaky = Hook(script=[503])
    try:
        ch = pager(server, admin, flaky.base + "/page")
        fail_signal(server, admin, ch["id"])
        row = deliveries(server, admin, "channel_id=" + ch["id"], 1)[0]
        assert row["status"] == "delivered" and row["attempts"] == 2 and row["last_status"] == 200, row
        assert [json.loads(b)["attempt"] for _, _, b in flaky.hits] == [1, 2]
    finally:
        flaky.close()

    port = free_port()
    down = pager(server, admin, "http://127.0.0.1:%d/page" % port, name="pager-down")
    fail_signal(server, admin, down["id"], name="orders-events")
    dead = deliveries(server, admin, "status=dead&channel_id=" + down["id"], 1)[0]
    assert dead["attempts"] == 3
    assert dead["last_error"] == "could not connect to 127.0.0.1:%d after 3 attempts" % port, dead
    up = Hook(port=port)
    try:
        again = ok(server, admin, "POST", "/api/v1/deliveries/%s/resend" % dead["id"], want=202)
        assert again["status"] == "queued" and again["resends"] == 1
        done = deliveries(server, admin, "status=delivered&channel_id=" + down["id"], 1)[0]
        assert done["id"] == dead["id"] and done["attempts"] == 4
        assert up.wait(1)[0][1]["x-api-key"] == PAGER_KEY
    finally:
        up.close()
    assert_clean_exit(server)


def test_runaway_plugins_fail_their_delivery_with_a_clear_error_and_the_server_keeps_serving(server):
    admin = server.login()
    for name, want in (("looper", "CPU budget of"), ("hog", "memory limit of")):
        ch = channel(server, admin, name + "-channel", name, {})
        t0 = time.monotonic()
        got = ok(server, admin, "POST", "/api/v1/channels/%s/test" % ch["id"])
        assert time.monotonic() - t0 < 30
        assert got["delivered"] is False and got["permanent"] is True, got
        assert want in got["error"] and ("channel '%s-channel' (plugin %s)" % (name, name)) in got["error"], got
        assert got["error"].endswith(", not retried"), got
        assert got["delivery"]["status"] == "dead" and got["delivery"]["last_error"] == got["error"]
        status, _, body = server.request("GET", "/health")
        assert status == 200
    # the same through the notification path, and a working channel still works
    hog = deliveries(server, admin, "event=channel.test", 2)
    assert {d["channel_type"] for d in hog} == {"looper", "hog"}
    hook = Hook()
    try:
        add_secret(server, admin, "PAGER_KEY", PAGER_KEY)
        fine = pager(server, admin, hook.base + "/page")
        assert ok(server, admin, "POST", "/api/v1/channels/%s/test" % fine["id"])["delivered"] is True
    finally:
        hook.close()
    assert_clean_exit(server)


def test_the_test_route_sends_now_records_audits_and_needs_channels_execute(server):
    admin = server.login()
    add_secret(server, admin, "PAGER_KEY", PAGER_KEY)
    hook = Hook(script=[503])
    try:
        ch = channel(server, admin, "paused-pager", "pager",
                     {"url": hook.base + "/page", "api_key_secret": "PAGER_KEY", "room": "ops"}, enabled=False)
        got = ok(server, admin, "POST", "/api/v1/channels/%s/test" % ch["id"], {})
        # one attempt: a 503 is not retried by a test, and says it could be
        assert got["delivered"] is False and got["permanent"] is False and got["status"] == 503, got
        assert got["attempts"] == 1 and got["error"].startswith("HTTP 503 from 127.0.0.1:"), got
        assert got["error"].endswith("after 1 attempt (try later)"), got
        got = ok(server, admin, "POST", "/api/v1/channels/%s/test" % ch["id"],
                 {"title": "Hello from the test", "severity": "warning"})
        assert got["delivered"] is True and got["status"] == 200 and got["error"] == "", got
        row = got["delivery"]
        assert row["id"] == got["delivery_id"] and row["status"] == "delivered" and row["event"] == "channel.test"
        assert row["object_kind"] == "channel" and row["object_id"] == ch["id"]
        sent = json.loads(hook.hits[-1][2])
        assert sent["title"] == "[warning] Hello from the test", sent
        assert "sent by admin" in sent["lines"]
        assert ok(server, admin, "GET", "/api/v1/deliveries/" + row["id"])["status"] == "delivered"
        actions, entries = audit_actions(server, admin, ch["id"], ["channel.test", "channel.test"])
        assert actions.count("channel.test") == 2
        assert entries[0]["after"]["delivery_id"] == row["id"] and entries[0]["after"]["delivered"] is True

        status, env = server.api("POST", "/api/v1/channels/%s/test" % ch["id"], {"severity": "loud", "colour": 1},
                                 token=admin)
        assert status == 422 and "$.colour" in paths(env), env
        status, env = server.api("POST", "/api/v1/channels/%s/test" % ch["id"], {"severity": "loud"}, token=admin)
        assert status == 422 and paths(env) == ["$.severity"], env
        status, env = server.api("POST", "/api/v1/channels/00000000-0000-4000-8000-00000000dead/test", token=admin)
        assert status == 404, env
        _, designer = make_user(server, admin, "dana", "full_designer")
        assert ok(server, designer, "POST", "/api/v1/channels/%s/test" % ch["id"])["delivered"] is True
        for role in ("read_only_designer", "super_operator", "read_only_operator"):
            _, who = make_user(server, admin, "u-" + role.replace("_", "-"), role)
            status, env = server.api("POST", "/api/v1/channels/%s/test" % ch["id"], token=who)
            assert status == 403, (role, env)
        assert len(hook.hits) == 3
    finally:
        hook.close()
    assert_clean_exit(server)


def test_shipped_chat_plugins_post_what_their_apis_expect(server):
    admin = server.login()
    hook = Hook()
    try:
        add_secret(server, admin, "DISCORD_URL", hook.base + "/api/webhooks/123/T0k-discord")
        add_secret(server, admin, "SLACK_URL", hook.base + "/services/T0/B0/S1ack-token")
        add_secret(server, admin, "TG_TOKEN", "123456:AAH-t0ken_Xq")
        add_secret(server, admin, "NTFY_TOKEN", "tk_ntfy-access-42")
        made = [channel(server, admin, "discord", "discord", {"webhook_url_secret": "DISCORD_URL"}),
                channel(server, admin, "slack", "slack", {"webhook_url_secret": "SLACK_URL", "text": "<{{title}}>"}),
                channel(server, admin, "telegram", "telegram", {"bot_token_secret": "TG_TOKEN", "chat_id": -100123,
                                                                "api_url": hook.base + "/", "parse_mode": "HTML"}),
                channel(server, admin, "ntfy", "ntfy", {"server_url": hook.base, "topic": "ops-alerts",
                                                        "token_secret": "NTFY_TOKEN"})]
        for ch in made:
            got = ok(server, admin, "POST", "/api/v1/channels/%s/test" % ch["id"],
                     {"title": "Disk & <b>", "text": "@everyone 90% full", "severity": "critical"})
            assert got["delivered"] is True, (ch["type"], got)
        hits = {h[0]: (h[1], json.loads(h[2])) for h in hook.hits}
        _, discord = hits["/api/webhooks/123/T0k-discord"]
        assert discord["allowed_mentions"] == {"parse": []}
        embed = discord["embeds"][0]
        assert embed["title"] == "[critical] Disk & <b>" and embed["description"] == "@everyone 90% full"
        assert embed["color"] == 0xE74C3C and {"name": "channel", "value": "discord", "inline": True} in embed["fields"]
        _, slack = hits["/services/T0/B0/S1ack-token"]
        assert slack == {"text": "<Disk &amp; &lt;b&gt;>"}
        _, tg = hits["/bot123456%3AAAH-t0ken_Xq/sendMessage"]
        assert tg["chat_id"] == -100123 and tg["parse_mode"] == "HTML" and tg["disable_web_page_preview"] is True
        assert tg["text"].startswith("<b>[critical] Disk &amp; &lt;b&gt;</b>\n\n@everyone 90% full\n\n"), tg
        headers, ntfy = hits["/"]
        assert headers["authorization"] == "Bearer tk_ntfy-access-42"
        assert ntfy["topic"] == "ops-alerts" and ntfy["priority"] == 5 and ntfy["tags"] == ["rotating_light"]
        assert ntfy["title"] == "[critical] Disk & <b>" and ntfy["message"].startswith("@everyone 90% full")
        for d in ok(server, admin, "GET", "/api/v1/deliveries?event=channel.test")["items"]:
            assert "T0k-discord" not in json.dumps(d) and "t0ken" not in json.dumps(d)
    finally:
        hook.close()
    assert_clean_exit(server)
    err = server.stderr()
    assert b"T0k-discord" not in err and b"AAH-t0ken" not in err and b"tk_ntfy" not in err


def test_a_bad_channel_manifest_stops_the_start_naming_the_plugin_and_field(restmon_bin, tmp_path):
    d = tmp_path / "plugins" / "broken"
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({"name": "broken", "kind": "channel", "fields": [
        {"name": "url", "type": "text"}, {"name": "key", "type": "password", "value_pattern": "(unclosed"}]}))
    (d / "plugin.lua").write_text("return {send = function() return true end}\n")
    conf = write_config(tmp_path, "sqlite:%s" % (tmp_path / "restmon.db"))
    res = subprocess.run([restmon_bin, "serve", "-c", str(conf), "--plugins", str(tmp_path / "plugins")],
                         capture_output=True, timeout=60, cwd=str(tmp_path))
    assert res.returncode != 0
    err = res.stderr.decode()
    assert "plugin 'broken'" in err and "fields[1]" in err and "value_pattern" in err, err
