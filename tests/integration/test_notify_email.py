"""Notification channel settings that the notifier (core/notify) reads,
against the real server (ASan binary) on SQLite and PostgreSQL: an email
channel's STARTTLS switch and subject/body templates, and the templates and
options of the other types, are stored as given; a wrong type is a 422 naming
the field. Delivery itself (a real SMTP server, chat receivers) is pinned by
tests/unit/test_notify.c."""

from test_api_defs import create, paths
from test_durable import store_url  # noqa: F401  (fixture)
from test_serve import assert_clean_exit, server  # noqa: F401  (fixture)

EMAIL = {"smtp_url": "smtp://mail.example.com:587", "from": "restmon@example.com", "to": ["ops@example.com"],
         "username": "restmon", "password_secret": "SMTP_PASSWORD"}


def test_email_channel_keeps_starttls_and_its_subject_and_body_templates(server):
    admin = server.login()
    settings = dict(EMAIL, starttls=True, subject="[{{severity}}] {{event.run.workflow_name}} {{event.run.status}}",
                    body="Run {{event.run.run_id}} ended {{event.run.status}}.\n{{text}}\n")
    ch = create(server, admin, "channels", {"name": "mail", "type": "email", "settings": settings})
    status, env = server.api("GET", "/api/v1/channels/" + ch["id"], token=admin)
    assert status == 200 and env["data"]["settings"] == settings, env
    # absent, the switch is not invented
    plain = create(server, admin, "channels", {"name": "mail-2", "type": "email", "settings": dict(EMAIL)})
    assert "starttls" not in plain["settings"]
    assert_clean_exit(server)


def test_other_channel_types_keep_their_templates_and_options(server):
    admin = server.login()
    bodies = [
        {"name": "tg", "type": "telegram", "settings": {
            "bot_token_secret": "TG_TOKEN", "chat_id": -1001234, "api_url": "https://tg-proxy.example.com",
            "parse_mode": "MarkdownV2", "text": "*{{title}}* {{event.run.status}}"}},
        {"name": "slack", "type": "slack", "settings": {"webhook_url_secret": "SLACK_HOOK", "text": "{{title}}"}},
        {"name": "discord", "type": "discord", "settings": {"webhook_url_secret": "DISCORD_HOOK",
                                                           "text": "{{title}}"}},
        {"name": "hook", "type": "webhook", "settings": {
            "url": "https://hooks.example.com/restmon",
            "template": {"status": "{{event.run.status}}", "ms": "{{event.run.duration_ms}}", "n": [1, None]}}},
    ]
    for body in bodies:
        ch = create(server, admin, "channels", body)
        assert ch["settings"] == body["settings"], ch
    assert_clean_exit(server)


def test_wrong_notify_settings_are_422_naming_the_field(server):
    admin = server.login()
    bad = [
        ({"name": "m", "type": "email", "settings": dict(EMAIL, starttls="yes", subject="", body=3)},
         ["$.settings.starttls", "$.settings.subject", "$.settings.body"]),
        ({"name": "t", "type": "telegram", "settings": {
            "bot_token_secret": "TG_TOKEN", "chat_id": 1, "api_url": "ftp://x", "parse_mode": "html", "text": 1}},
         ["$.settings.api_url", "$.settings.parse_mode", "$.settings.text"]),
        ({"name": "t2", "type": "telegram", "settings": {
            "bot_token_secret": "TG_TOKEN", "chat_id": 1, "api_url": "https://user:pw@tg.example.com"}},
         ["$.settings.api_url"]),
        ({"name": "s", "type": "slack", "settings": {"webhook_url_secret": "SLACK_HOOK", "text": ""}},
         ["$.settings.text"]),
        # fields of another type stay refused
        ({"name": "w", "type": "webhook", "settings": {"url": "https://x.example.com", "subject": "s"}},
         ["$.settings.subject"]),
    ]
    for body, want in bad:
        status, env = server.api("POST", "/api/v1/channels", body, token=admin)
        assert status == 422, (body, status, env)
        got = paths(env)
        for p in want:
            assert p in got, (body, p, env["error"])
    assert_clean_exit(server)
