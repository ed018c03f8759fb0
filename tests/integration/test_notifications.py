"""Notifications through the real server: workflow-level notifications on a
run's end reach a real SMTP sink (aiosmtpd) with the mapped variables and a
local webhook receiver with a valid signature; every delivery is recorded;
a receiver that is down fills the dead-letter list and a re-send delivers
once it is up; maintenance windows hold notifications back and record
them; bad notification fields are refused by path; signal transitions
notify and escalate (when the signals API is there); a shutdown hands
the sends in flight to the next start. Both backends."""

import email
import email.policy
import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import ThreadingHTTPServer

import pytest

from test_durable import store_url  # noqa: F401  (fixture)
from test_serve import assert_clean_exit, start_server
from test_webhooks import Receiver, verify

HOOK_KEY = "whsec-notify-4b1e7d-signing-key"
NOTIFY_CONF = "notify.attempts = 2\nnotify.backoff_ms = 100\nnotify.max_delay_ms = 200\n"


@pytest.fixture
def server(restmon_bin, tmp_path, store_url):  # noqa: F811
    srv = start_server(restmon_bin, tmp_path, store_url, extra_conf=NOTIFY_CONF)
    srv.store_url = store_url
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SmtpSink:
    """aiosmtpd on a free port; keeps every message it accepts."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def wait(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    def close(self):
        self.controller.stop()


def api_ok(srv, token, method, path, body=None, want=200):
    status, env = srv.api(method, path, body, token=token)
    assert status == want, (method, path, status, env)
    return env["data"]


def flow(mock_api):
    """One step: sleeps {{inputs.ms}} ms and must have slept exactly 1, so
    ms=1 succeeds and ms=2 fails; it extracts the time slept."""
    task = {"type": "http", "request": {"url": mock_api.url + "/slow", "query": {"ms": "{{inputs.ms}}"}},
            "extract": {"slept": "$.slept_ms"},
            "assert": [{"jsonpath": "$.slept_ms", "op": "eq", "value": 1}]}
    return {"name": "notified", "tasks": {"s1": task},
            "inputs": {"ms": {"type": "string", "required": True}, "order_id": {"type": "string"}}}


def make_workflow(srv, token, mock_api, notifications, name="notified", tags=None):
    body = {"name": name, "definition": dict(flow(mock_api), name=name), "notifications": notifications}
    if tags:
        body["tags"] = tags
    return api_ok(srv, token, "POST", "/api/v1/workflows", body, want=201)


def execute(srv, token, wf, ms, order="A-1001"):
    started = api_ok(srv, token, "POST", "/api/v1/workflows/%s/execute" % wf["id"],
                     {"version": "draft", "inputs": {"ms": str(ms), "order_id": order}}, want=202)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = api_ok(srv, token, "GET", "/api/v1/runs/" + started["run_id"])
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.1)
    pytest.fail("run %s did not finish" % started["run_id"])


def deliveries(srv, token, query, n, timeout=30, final=True):
    """The deliveries matching query once there are n of them (and, with
    final, none is queued any more)."""
    deadline = time.monotonic() + timeout
    items = []
    while time.monotonic() < deadline:
        items = api_ok(srv, token, "GET", "/api/v1/deliveries?" + query)["items"]
        if len(items) >= n and (not final or all(d["status"] != "queued" for d in items)):
            return items
        time.sleep(0.1)
    pytest.fail("deliveries %s: wanted %d, have %r" % (query, n, items))


def webhook_channel(srv, token, url, name="ops-hook"):
    # events: the run-subscription of webhook channels (webhooks.c) stays
    # out of the way; notifications go to the channel whatever its events.
    return api_ok(srv, token, "POST", "/api/v1/channels",
                  {"name": name, "type": "webhook",
                   "settings": {"url": url, "hmac_secret": "hook_key", "events": ["run.cancelled"]}}, want=201)


def add_hook_secret(srv, token):
    api_ok(srv, token, "POST", "/api/v1/secrets", {"name": "hook_key", "value": HOOK_KEY}, want=201)


def test_run_end_notifies_email_and_signed_webhook_with_mapped_variables(server, mock_api):
    token = server.login()
    add_hook_secret(server, token)
    sink, hook = SmtpSink(), Receiver()
    try:
        mail = api_ok(server, token, "POST", "/api/v1/channels", {
            "name": "ops-mail", "type": "email",
            "settings": {"smtp_url": "smtp://127.0.0.1:%d" % sink.port, "from": "restmon@example.com",
                         "to": ["oncall@example.com"], "subject": "{{title}} [{{fields.order}}]",
                         "body": "order={{fields.order}} slept={{fields.slept}} status={{event.run.status}}"}},
            want=201)
        hookc = webhook_channel(server, token, hook.url)
        variables = {"order": "{{inputs.order_id}}", "slept": "{{vars.slept}}", "run": "{{run_id}}"}
        wf = make_workflow(server, token, mock_api, [
            {"on": ["failure"], "channel_id": mail["id"], "variables": variables},
            {"on": ["failure", "success"], "channel_id": hookc["id"], "variables": variables}])

        bad = execute(server, token, wf, ms=2, order="A-1001")
        assert bad["status"] == "failed"
        got = deliveries(server, token, "run_id=" + bad["run_id"], 2)
        assert sorted(d["status"] for d in got) == ["delivered", "delivered"], got
        by_type = {d["channel_type"]: d for d in got}
        assert by_type["email"]["channel_id"] == mail["id"] and by_type["email"]["event"] == "run.failed"
        assert by_type["webhook"]["attempts"] == 1 and by_type["webhook"]["object_id"] == wf["id"]
        assert by_type["webhook"]["message"]["fields"]["order"] == "A-1001"

        mails = sink.wait(1)
        assert len(mails) == 1
        sender, rcpts, raw = mails[0]
        assert sender == "restmon@example.com" and rcpts == ["oncall@example.com"]
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Subject"] == "Workflow notified failed [A-1001]", msg["Subject"]
        text = msg.get_content()
        assert "order=A-1001" in text and "slept=2" in text and "status=failed" in text, text

        events = hook.wait(1)
        assert len(events) == 1
        headers, body = events[0]
        assert verify(headers, body, HOOK_KEY) and not verify(headers, body, "not-the-key")
        assert headers["x-restmon-event-id"] == by_type["webhook"]["id"]
        event = json.loads(body)
        assert event["event"] == "run.failed" and event["run"]["run_id"] == bad["run_id"]
        assert event["variables"] == {"order": "A-1001", "slept": 2, "run": bad["run_id"]}
        assert HOOK_KEY.encode() not in body

        ok = execute(server, token, wf, ms=1, order="B-2002")
        assert ok["status"] == "succeeded"
        got = deliveries(server, token, "run_id=" + ok["run_id"], 1)
        time.sleep(0.5)
        assert len(api_ok(server, token, "GET", "/api/v1/deliveries?run_id=" + ok["run_id"])["items"]) == 1
        assert got[0]["channel_id"] == hookc["id"] and got[0]["status"] == "delivered"
        assert json.loads(hook.wait(2)[1][1])["variables"]["order"] == "B-2002"
        assert len(sink.messages) == 1, "success is not among the e-mail entry's outcomes"

        listed = api_ok(server, token, "GET", "/api/v1/deliveries?status=delivered&page_size=2")
        assert listed["total"] == 3 and listed["total_pages"] == 2 and listed["page_size"] == 2
        one = api_ok(server, token, "GET", "/api/v1/deliveries/" + got[0]["id"])
        assert one["id"] == got[0]["id"] and one["message"]["event"]["run"]["status"] == "succeeded"
        status, env = server.api("GET", "/api/v1/deliveries?status=lost", token=token)
        assert status == 400 and "status" in env["message"], env
        status, env = server.api("GET", "/api/v1/deliveries?colour=red", token=token)
        assert status == 400 and env["error"]["details"][0]["path"] == "query.colour", env
        _, _, metrics = server.request("GET", "/metrics")
        assert b'restmon_notification_deliveries_total{outcome="delivered"} 3' in metrics
    finally:
        sink.close()
        hook.close()
    assert_clean_exit(server)
    assert HOOK_KEY.encode() not in server.stderr()


def test_receiver_down_fills_dead_letters_and_resend_delivers(server, mock_api):
    token = server.login()
    add_hook_secret(server, token)
    port = free_port()
    hookc = webhook_channel(server, token, "http://127.0.0.1:%d/hook" % port)
    wf = make_workflow(server, token, mock_api, [{"on": ["failure"], "channel_id": hookc["id"],
                                                  "variables": {"order": "{{inputs.order_id}}"}}])
    run = execute(server, token, wf, ms=2)
    dead = deliveries(server, token, "status=dead", 1)
    assert len(dead) == 1
    d = dead[0]
    assert d["run_id"] == run["run_id"] and d["attempts"] == 2 and d["resends"] == 0
    assert "127.0.0.1:%d" % port in d["last_error"], d["last_error"]

    hook = receiver_on(port)
    try:
        again = api_ok(server, token, "POST", "/api/v1/deliveries/%s/resend" % d["id"], want=202)
        assert again["id"] == d["id"] and again["status"] == "queued" and again["resends"] == 1
        events = hook.wait(1)
        assert len(events) == 1 and events[0][0]["x-restmon-event-id"] == d["id"]
        assert verify(events[0][0], events[0][1], HOOK_KEY)
        assert json.loads(events[0][1])["variables"] == {"order": "A-1001"}
        done = deliveries(server, token, "status=delivered", 1)[0]
        assert done["id"] == d["id"] and done["attempts"] == 3 and done["last_error"] is None
        assert api_ok(server, token, "GET", "/api/v1/deliveries?status=dead")["total"] == 0

        status, env = server.api("POST", "/api/v1/deliveries/%s/resend" % d["id"], token=token)
        assert status == 409 and "delivered" in env["message"], env
        status, env = server.api("POST", "/api/v1/deliveries/00000000-0000-4000-8000-00000000dead/resend",
                                 token=token)
        assert status == 404, env
        status, env = server.api("POST", "/api/v1/deliveries/%s/resend" % d["id"], {"x": 1}, token=token)
        assert status == 422, env
        audit = api_ok(server, token, "GET", "/api/v1/audit?action=delivery.resend")
        assert audit["total"] == 1 and audit["items"][0]["object_id"] == d["id"]
    finally:
        hook.close()
    assert_clean_exit(server)


def receiver_on(port):
    """A Receiver (test_webhooks) listening on the given port."""
    hook = Receiver()
    handler = hook.httpd.RequestHandlerClass
    hook.httpd.shutdown()
    hook.httpd.server_close()
    hook.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=hook.httpd.serve_forever, daemon=True).start()
    return hook


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_maintenance_window_suppresses_and_records(server, mock_api):
    token = server.login()
    add_hook_secret(server, token)
    hook = Receiver()
    try:
        hookc = webhook_channel(server, token, hook.url)
        wf = make_workflow(server, token, mock_api, [{"on": ["failure"], "channel_id": hookc["id"]}],
                           tags=["payments"])
        now = datetime.now(timezone.utc)
        win = api_ok(server, token, "POST", "/api/v1/maintenance-windows", {
            "name": "db-upgrade", "start": iso(now - timedelta(hours=1)), "end": iso(now + timedelta(hours=1)),
            "workflows": [wf["id"]]}, want=201)
        assert win["enabled"] is True and win["suppress_notifications"] is True
        assert win["suppress_checks"] is False and win["timezone"] == "UTC"

        run = execute(server, token, wf, ms=2)
        held = deliveries(server, token, "run_id=" + run["run_id"], 1)[0]
        assert held["status"] == "suppressed" and held["suppressed_by"] == win["id"]
        assert held["attempts"] == 0 and held["message"]["event"]["run"]["run_id"] == run["run_id"]

        # A recurring window over the workflow's tag, open all day every day.
        api_ok(server, token, "PUT", "/api/v1/maintenance-windows/" + win["id"],
               dict(name="db-upgrade", start=win["start"], end=win["end"], workflows=[wf["id"]], enabled=False,
                    version=win["version"]))
        daily = api_ok(server, token, "POST", "/api/v1/maintenance-windows", {
            "name": "nightly", "cron": "0 0 * * *", "duration_min": 1440, "timezone": "Europe/Paris",
            "object_tags": ["payments"]}, want=201)
        run = execute(server, token, wf, ms=2)
        held = deliveries(server, token, "run_id=" + run["run_id"], 1)[0]
        assert held["status"] == "suppressed" and held["suppressed_by"] == daily["id"]

        # A window in the past holds nothing back.
        api_ok(server, token, "DELETE", "/api/v1/maintenance-windows/" + daily["id"])
        api_ok(server, token, "POST", "/api/v1/maintenance-windows", {
            "name": "yesterday", "start": iso(now - timedelta(days=2)), "end": iso(now - timedelta(days=1)),
            "object_tags": ["payments"]}, want=201)
        run = execute(server, token, wf, ms=2)
        sent = deliveries(server, token, "run_id=" + run["run_id"], 1)[0]
        assert sent["status"] == "delivered"
        assert len(hook.wait(1)) == 1
        suppressed = api_ok(server, token, "GET", "/api/v1/deliveries?status=suppressed")
        assert suppressed["total"] == 2
        listed = api_ok(server, token, "GET", "/api/v1/maintenance-windows")
        assert listed["total"] == 2
        audit = api_ok(server, token, "GET", "/api/v1/audit?object_kind=maintenance")
        assert {"maintenance.create", "maintenance.update", "maintenance.delete"} <= {
            a["action"] for a in audit["items"]}
    finally:
        hook.close()
    assert_clean_exit(server)


def details(srv, token, path, body, method="POST"):
    status, env = srv.api(method, path, body, token=token)
    assert status == 422, (path, body, env)
    return {d["path"]: d["message"] for d in env["error"]["details"]}


def test_notification_fields_are_checked_by_path(server, mock_api):
    token = server.login()
    hookc = webhook_channel(server, token, "http://127.0.0.1:9/hook")
    wf_body = {"name": "checked", "definition": dict(flow(mock_api), name="checked")}
    got = details(server, token, "/api/v1/workflows", dict(wf_body, notifications=[
        {"on": ["sometimes"], "channel_id": hookc["id"]},
        {"on": ["failure"], "channel_id": "00000000-0000-4000-8000-00000000dead"},
        {"on": ["failure"], "channel_id": hookc["id"], "variables": {"pw": "{{secrets.hook_key}}", "x": "{{task}}"}},
        {"on": ["failure"], "channel_id": hookc["id"], "colour": "red"}]))
    assert "$.notifications[0].on[0]" in got
    assert "$.notifications[2].variables.pw" in got and "secret" in got["$.notifications[2].variables.pw"]
    assert "$.notifications[2].variables.x" in got
    assert "$.notifications[3].colour" in got
    got = details(server, token, "/api/v1/workflows", dict(wf_body, notifications=[
        {"on": ["failure"], "channel_id": "00000000-0000-4000-8000-00000000dead"}]))
    assert list(got) == ["$.notifications[0].channel_id"], got
    got = details(server, token, "/api/v1/workflows", dict(wf_body, notifications={"on": "failure"}))
    assert "$.notifications" in got

    status, env = server.api("POST", "/api/v1/schedules", {"name": "every-5m", "every": {"minutes": 5}}, token=token)
    assert status == 201, env
    mon = {"name": "orders-events", "type": "event"}
    got = details(server, token, "/api/v1/monitors", dict(mon, notify={
        "channels": [hookc["id"]], "on": ["broken"],
        "escalation": [{"after_min": 30, "channel_id": hookc["id"]}, {"after_s": 60, "channel_id": hookc["id"]},
                       {"channel_id": hookc["id"]}, {"after_min": 0, "after_s": 5, "channel_id": hookc["id"]}]}))
    assert "$.notify.on[0]" in got and "$.notify.escalation[1].after_s" in got
    assert "$.notify.escalation[2]" in got and "$.notify.escalation[3].after_s" in got
    got = details(server, token, "/api/v1/monitors", dict(mon, notify={}))
    assert "$.notify" in got
    made = api_ok(server, token, "POST", "/api/v1/monitors", dict(mon, notify={
        "channels": [hookc["id"]], "escalation": [{"after_s": 30, "channel_id": hookc["id"]}]}), want=201)
    assert made["notify"]["channels"] == [hookc["id"]]

    now = datetime.now(timezone.utc)
    got = details(server, token, "/api/v1/maintenance-windows", {
        "name": "w", "start": iso(now), "end": iso(now - timedelta(hours=1)), "timezone": "Mars/Olympus"})
    assert "$.timezone" in got and "$" in got
    got = details(server, token, "/api/v1/maintenance-windows", {
        "name": "w", "start": iso(now), "end": iso(now - timedelta(hours=1)), "timezone": "Mars/Olympus",
        "monitors": ["00000000-0000-4000-8000-00000000dead"], "suppress_checks": "yes", "colour": 1})
    assert "$.timezone" in got and "$.suppress_checks" in got and "$.colour" in got, got
    got = details(server, token, "/api/v1/maintenance-windows", {
        "name": "w", "start": iso(now), "end": iso(now - timedelta(hours=1)), "monitors": [made["id"]]})
    assert list(got) == ["$.end"], got
    got = details(server, token, "/api/v1/maintenance-windows", {
        "name": "w", "start": "tomorrow", "end": iso(now), "object_tags": ["x"]})
    assert list(got) == ["$.start"], got
    got = details(server, token, "/api/v1/maintenance-windows", {
        "name": "w", "cron": "0 25 * * *", "start": iso(now), "object_tags": ["x"]})
    assert "$.cron" in got and "$.duration_min" in got and "$.start" in got, got
    got = details(server, token, "/api/v1/maintenance-windows", {"name": "w", "cron": "@daily", "duration_min": 60})
    assert list(got) == ["$"], got
    got = details(server, token, "/api/v1/maintenance-windows", {
        "name": "w", "cron": "@daily", "duration_min": 60, "monitors": ["00000000-0000-4000-8000-00000000dead"]})
    assert list(got) == ["$.monitors[0]"], got
    win = api_ok(server, token, "POST", "/api/v1/maintenance-windows", {
        "name": "w", "start": "2030-01-01T22:00", "end": "2030-01-02T02:00", "timezone": "Europe/Paris",
        "monitors": [made["id"]], "suppress_checks": True}, want=201)
    assert win["suppress_checks"] is True and win["timezone"] == "Europe/Paris"
    assert_clean_exit(server)


def push_event(srv, token, monitor_id, state):
    status, env = srv.api("POST", "/api/v1/monitors/%s/events" % monitor_id, {"state": state}, token=token)
    if status == 404 and env.get("code") == "40401":
        pytest.skip("the signals API is not there")
    assert status == 200, env
    return env["data"]


def events_of(hook, monitor_id):
    return [json.loads(b) for _, b in hook.events if json.loads(b).get("monitor", {}).get("id") == monitor_id]


def wait_events(hook, monitor_id, n, timeout=15):
    deadline = time.monotonic() + timeout
    while len(events_of(hook, monitor_id)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return events_of(hook, monitor_id)


def test_signal_transitions_notify_and_unacknowledged_failures_escalate(server):
    token = server.login()
    add_hook_secret(server, token)
    first, second = Receiver(), Receiver()
    try:
        a = webhook_channel(server, token, first.url, name="oncall")
        b = webhook_channel(server, token, second.url, name="managers")
        notify = {"channels": [a["id"]], "on": ["failed", "healthy"],
                  "escalation": [{"after_s": 2, "channel_id": b["id"]}, {"after_s": 3, "channel_id": b["id"]}]}
        mon = api_ok(server, token, "POST", "/api/v1/monitors",
                     {"name": "payments-events", "type": "event", "notify": notify}, want=201)
        calm = api_ok(server, token, "POST", "/api/v1/monitors",
                      {"name": "orders-events", "type": "event", "notify": notify}, want=201)

        t0 = time.monotonic()
        push_event(server, token, mon["id"], "failed")
        push_event(server, token, calm["id"], "failed")
        api_ok(server, token, "POST", "/api/v1/signals/%s/acknowledge" % calm["id"], {"text": "on it"})
        got = wait_events(first, mon["id"], 1)
        assert [e["event"] for e in got] == ["signal.failed"]
        assert got[0]["transition"]["to"] == "failed" and got[0]["monitor"]["name"] == "payments-events"

        esc = wait_events(second, mon["id"], 2, timeout=20)
        assert [e["event"] for e in esc] == ["escalation.failed", "escalation.failed"], esc
        assert time.monotonic() - t0 >= 3
        rows = deliveries(server, token, "event=escalation.failed", 2)
        assert {r["channel_id"] for r in rows} == {b["id"]} and all(r["object_id"] == mon["id"] for r in rows)
        assert sorted(r["message"]["fields"]["escalation_step"] for r in rows) == [1, 2]
        assert events_of(second, calm["id"]) == [], "an acknowledged failure does not escalate"
        assert [e["event"] for e in wait_events(first, calm["id"], 1)] == ["signal.failed"]

        push_event(server, token, mon["id"], "healthy")
        got = wait_events(first, mon["id"], 2)
        assert [e["event"] for e in got] == ["signal.failed", "signal.healthy"]
        # A failure that recovers before its first step never escalates.
        push_event(server, token, calm["id"], "healthy")
        push_event(server, token, calm["id"], "failed")
        push_event(server, token, calm["id"], "healthy")
        time.sleep(3.5)
        assert events_of(second, calm["id"]) == []
        assert len(events_of(second, mon["id"])) == 2
    finally:
        first.close()
        second.close()
    assert_clean_exit(server)


def test_maintenance_window_suppresses_scheduled_checks_until_lifted(server, mock_api):
    from test_schedules import Api, check, published_flow, wait_for

    api = Api(server)
    token = api.token
    if server.api("GET", "/api/v1/schedules/x/next", token=token)[1].get("code") == "40401":
        pytest.skip("the scheduler is not there")
    sched = api.make("schedules", {"name": "every-second", "every": {"seconds": 1}})
    wf = published_flow(api, mock_api, "pinged")
    mon = check(api, "ping-check", sched["id"], workflow_id=wf["id"], tags=["edge"])
    wait_for(lambda: len(api.check_runs(mon["id"])) >= 2)

    win = api_ok(server, token, "POST", "/api/v1/maintenance-windows", {
        "name": "edge-work", "cron": "* * * * *", "duration_min": 60, "object_tags": ["edge"],
        "suppress_checks": True, "suppress_notifications": False}, want=201)
    # held once a fire was suppressed (the window reached the scheduler);
    # a fire queued just before may still land meanwhile
    wait_for(lambda: b'restmon_checks_total{outcome="suppressed"}' in server.request("GET", "/metrics")[2])
    time.sleep(1)
    held = len(api.check_runs(mon["id"]))
    time.sleep(3)
    assert len(api.check_runs(mon["id"])) == held, "no check fires while the window holds"

    api_ok(server, token, "DELETE", "/api/v1/maintenance-windows/" + win["id"])
    wait_for(lambda: len(api.check_runs(mon["id"])) >= held + 2)
    assert_clean_exit(server)


def test_shutdown_hands_sends_in_flight_back_and_the_next_start_sends_them(restmon_bin, tmp_path,  # noqa: F811
                                                                            store_url, mock_api):
    # A receiver that accepts the connection and never answers.
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(8)
    port = sink.getsockname()[1]
    srv = start_server(restmon_bin, tmp_path, store_url, extra_conf=NOTIFY_CONF)
    hook = None
    try:
        token = srv.login()
        add_hook_secret(srv, token)
        hookc = webhook_channel(srv, token, "http://127.0.0.1:%d/hook" % port)
        wf = make_workflow(srv, token, mock_api, [{"on": ["failure"], "channel_id": hookc["id"]}])
        run = execute(srv, token, wf, ms=2)
        queued = deliveries(srv, token, "run_id=" + run["run_id"], 1, final=False)[0]
        assert queued["status"] == "queued"
        t0 = time.monotonic()
        assert_clean_exit(srv)
        assert time.monotonic() - t0 < 8, "the send in flight does not hold the shutdown"
        sink.close()
        hook = receiver_on(port)
        srv = start_server(restmon_bin, tmp_path, store_url, extra_conf=NOTIFY_CONF)
        token = srv.login()
        done = deliveries(srv, token, "run_id=" + run["run_id"], 1)[0]
        assert done["id"] == queued["id"] and done["status"] == "delivered" and done["last_error"] is None, done
        assert done["resends"] == 0 and done["attempts"] >= 1
        events = hook.wait(1)
        assert len(events) == 1 and events[0][0]["x-restmon-event-id"] == queued["id"]
        assert verify(events[0][0], events[0][1], HOOK_KEY)
        assert b"picked up" in srv.stderr()
        assert_clean_exit(srv)
    finally:
        sink.close()
        if hook:
            hook.close()
        if srv.proc.poll() is None:
            srv.stop()
