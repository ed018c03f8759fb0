"""Outgoing webhooks on run status changes: a notification channel of type
webhook receives a signed POST when a run finishes (signature checked the
way docs/webhooks.md tells receivers to), events and workflow filters are
honoured, a receiver that fails at first gets the event again with the
same event id, and the HMAC key (a vault secret) never shows. Run webhooks
are notification deliveries: recorded (the event id is the delivery id),
held back and recorded by maintenance windows, and merged with the
workflow's own notifications to the same channel (one delivery)."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from test_durable import chain_flow, restmon, store_url  # noqa: F401  (fixture)
from test_run import write_flow
from test_serve import assert_clean_exit, server  # noqa: F401  (fixture)

HOOK_KEY = "whsec-7c1d2f0e-signing-key"


class Receiver:
    """A local webhook receiver: records each POST; answers fail_first
    times 503, then 204 -- or, while status is set, that status; waits
    delay_s before answering."""

    def __init__(self, fail_first=0):
        self.events = []
        self.fail_first = fail_first
        self.status = None
        self.delay_s = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                if outer.status:
                    self.send_response(outer.status)
                elif len(outer.events) <= outer.fail_first:
                    self.send_response(503)
                else:
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.events

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def verify(headers, body, key, tolerance_s=300):
    ts = headers["x-restmon-timestamp"]
    assert abs(time.time() - int(ts)) <= tolerance_s
    mac = hmac.new(key.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + mac, headers.get("x-restmon-signature", ""))


def wait_run(srv, token, run_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, env = srv.api("GET", "/api/v1/runs/" + run_id, token=token)
        if status == 200 and env["data"]["status"] not in ("queued", "running"):
            return env["data"]
        time.sleep(0.2)
    pytest.fail("run %s did not finish" % run_id)


def wait_deliveries(srv, token, query, n, timeout=30):
    """The deliveries matching query once there are n and none is queued."""
    deadline = time.monotonic() + timeout
    items = []
    while time.monotonic() < deadline:
        status, env = srv.api("GET", "/api/v1/deliveries?" + query, token=token)
        assert status == 200, env
        items = env["data"]["items"]
        if len(items) >= n and all(d["status"] != "queued" for d in items):
            return items
        time.sleep(0.1)
    pytest.fail("deliveries %s: wanted %d, have %r" % (query, n, items))


def test_run_status_webhooks_are_signed_filtered_and_retried(server, restmon_bin, mock_api, tmp_path):
    token = server.login()
    status, env = server.api("POST", "/api/v1/secrets", {"name": "hook_key", "value": HOOK_KEY}, token=token)
    if status == 404:
        pytest.skip("the secrets API is not there")
    assert status == 201, env
    failing = Receiver(fail_first=2)
    only_ok = Receiver()
    try:
        channel = {"name": "ops-hook", "type": "webhook",
                   "settings": {"url": failing.url, "hmac_secret": "hook_key", "headers": {"X-Team": "ops", "Authorization": "Bearer {{secrets.hook_key}}"},
                                "events": ["run.failed"]}}
        status, env = server.api("POST", "/api/v1/channels", channel, token=token)
        assert status == 201, env
        channel2 = {"name": "all-ok", "type": "webhook", "settings": {"url": only_ok.url, "events": ["run.succeeded"]}}
        status, env = server.api("POST", "/api/v1/channels", channel2, token=token)
        assert status == 201, env

        db = ["--database", server.store_url]
        ok_flow = write_flow(tmp_path, chain_flow(mock_api, steps=1, ms=1))
        flow = chain_flow(mock_api, steps=1, ms=1)
        flow["tasks"]["s1"]["assert"] = [{"jsonpath": "$.slept_ms", "op": "eq", "value": 99}]
        bad_flow = write_flow(tmp_path, flow, name="bad.json")
        ok_id = json.loads(restmon(restmon_bin, "runs", "queue", ok_flow, "--json", *db).stdout)[0]["run_id"]
        bad_id = json.loads(restmon(restmon_bin, "runs", "queue", bad_flow, "--json", *db).stdout)[0]["run_id"]
        assert wait_run(server, token, ok_id)["status"] == "succeeded"
        assert wait_run(server, token, bad_id)["status"] == "failed"

        got = failing.wait(3)
        assert len(got) == 3, "two 503s, then delivered"
        ids = {h["x-restmon-event-id"] for h, _ in got}
        assert len(ids) == 1
        # the run webhook is a delivery; its id is the event id
        rows = wait_deliveries(server, token, "run_id=" + bad_id, 1)
        assert len(rows) == 1 and rows[0]["id"] == ids.pop(), rows
        assert rows[0]["event"] == "run.failed" and rows[0]["channel_name"] == "ops-hook"
        assert rows[0]["status"] == "delivered" and rows[0]["attempts"] == 3 and rows[0]["last_status"] == 204
        for headers, body in got:
            assert verify(headers, body, HOOK_KEY), headers
            assert not verify(headers, body, "another-key")
            assert headers["x-team"] == "ops" and headers["content-type"] == "application/json"
            assert headers["authorization"] == "Bearer " + HOOK_KEY
            event = json.loads(body)
            assert event["event"] == "run.failed" and event["run"]["run_id"] == bad_id
            assert event["channel"] == "ops-hook" and event["run"]["reason"]
            assert HOOK_KEY.encode() not in body

        got = only_ok.wait(1)
        time.sleep(0.5)
        assert len(only_ok.events) == 1
        headers, body = got[0]
        assert "x-restmon-signature" not in headers
        assert json.loads(body)["run"]["run_id"] == ok_id

        _, _, metrics = server.request("GET", "/metrics")
        assert b'restmon_notification_deliveries_total{outcome="delivered"} 2' in metrics
        assert b"restmon_webhook_deliveries_total" not in metrics
    finally:
        failing.close()
        only_ok.close()
    assert_clean_exit(server)
    assert HOOK_KEY.encode() not in server.stderr()


def test_run_webhook_held_back_by_a_maintenance_window_is_recorded(server, mock_api):
    from test_notifications import api_ok, execute, iso, make_workflow
    from datetime import datetime, timedelta, timezone

    token = server.login()
    hook = Receiver()
    try:
        ch = api_ok(server, token, "POST", "/api/v1/channels",
                    {"name": "all-runs", "type": "webhook", "settings": {"url": hook.url}}, want=201)
        wf = make_workflow(server, token, mock_api, [], name="in-maintenance", tags=["payments"])
        now = datetime.now(timezone.utc)
        win = api_ok(server, token, "POST", "/api/v1/maintenance-windows", {
            "name": "release", "start": iso(now - timedelta(hours=1)), "end": iso(now + timedelta(hours=1)),
            "object_tags": ["payments"]}, want=201)
        run = execute(server, token, wf, ms=2)
        held = wait_deliveries(server, token, "run_id=" + run["run_id"], 1)
        assert len(held) == 1, held
        assert held[0]["status"] == "suppressed" and held[0]["suppressed_by"] == win["id"], held
        assert held[0]["channel_id"] == ch["id"] and held[0]["event"] == "run.failed" and held[0]["attempts"] == 0
        assert held[0]["message"]["event"]["run"]["run_id"] == run["run_id"]
        time.sleep(0.5)
        assert hook.events == []

        # once the window is gone the run webhook goes out again, and a
        # suppressed delivery is not re-sendable
        api_ok(server, token, "DELETE", "/api/v1/maintenance-windows/" + win["id"])
        run = execute(server, token, wf, ms=1)
        sent = wait_deliveries(server, token, "run_id=" + run["run_id"], 1)
        assert sent[0]["status"] == "delivered" and sent[0]["event"] == "run.succeeded"
        assert len(hook.wait(1)) == 1 and hook.events[0][0]["x-restmon-event-id"] == sent[0]["id"]
        status, env = server.api("POST", "/api/v1/deliveries/%s/resend" % held[0]["id"], token=token)
        assert status == 409 and "suppressed" in env["message"], env
    finally:
        hook.close()
    assert_clean_exit(server)


def test_channel_named_by_the_workflow_and_subscribed_gets_the_run_end_once(server, mock_api):
    from test_notifications import api_ok, execute, make_workflow

    token = server.login()
    both, only_hook = Receiver(), Receiver()
    try:
        named = api_ok(server, token, "POST", "/api/v1/channels",
                       {"name": "named-and-subscribed", "type": "webhook", "settings": {"url": both.url}}, want=201)
        other = api_ok(server, token, "POST", "/api/v1/channels",
                       {"name": "subscribed-only", "type": "webhook",
                        "settings": {"url": only_hook.url, "events": ["run.failed"]}}, want=201)
        api_ok(server, token, "POST", "/api/v1/channels",
               {"name": "switched-off", "type": "webhook", "enabled": False, "settings": {"url": only_hook.url}},
               want=201)
        variables = {"order": "{{inputs.order_id}}"}
        wf = make_workflow(server, token, mock_api, [{"on": ["failure"], "channel_id": named["id"],
                                                      "variables": variables},
                                                     {"on": ["failure"], "channel_id": named["id"]}])
        run = execute(server, token, wf, ms=2, order="C-3003")
        rows = wait_deliveries(server, token, "run_id=" + run["run_id"], 2)
        time.sleep(1)
        rows = wait_deliveries(server, token, "run_id=" + run["run_id"], 2)
        assert sorted(r["channel_id"] for r in rows) == sorted([named["id"], other["id"]]), rows
        assert all(r["status"] == "delivered" and r["event"] == "run.failed" for r in rows), rows

        assert len(both.wait(1)) == 1 and len(only_hook.wait(1)) == 1
        time.sleep(0.5)
        assert len(both.events) == 1 and len(only_hook.events) == 1, "one delivery per channel and run end"
        event = json.loads(both.events[0][1])
        assert event["variables"] == {"order": "C-3003"}, "the workflow's entry wins: it has the variables"
        assert event["channel"] == "named-and-subscribed" and event["run"]["run_id"] == run["run_id"]
        event = json.loads(only_hook.events[0][1])
        assert "variables" not in event and event["channel"] == "subscribed-only"
        assert event["event"] == "run.failed" and event["run"]["status"] == "failed"
    finally:
        both.close()
        only_hook.close()
    assert_clean_exit(server)
