"""Outgoing webhooks on run status changes: a notification channel of type
webhook receives a signed POST when a run finishes (signature checked the
way docs/webhooks.md tells receivers to), events and workflow filters are
honoured, a receiver that fails at first gets the event again with the
same event id, and the HMAC key (a vault secret) never shows."""

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
    times 503, then 204."""

    def __init__(self, fail_first=0):
        self.events = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if len(outer.events) <= outer.fail_first:
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
        assert len(ids) == 1 and bad_id in ids.pop()
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
        assert b'restmon_webhook_deliveries_total{outcome="delivered"} 2' in metrics
    finally:
        failing.close()
        only_ok.close()
    assert_clean_exit(server)
    assert HOOK_KEY.encode() not in server.stderr()
