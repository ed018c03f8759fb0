"""Signals through the real server, on SQLite and PostgreSQL: a flaky
target driven through a known up/down sequence by check runs produces
exactly the expected transitions (failure threshold, cooldown held by the
clock, recovery after N successes, no flapping); pushed metric values
cross thresholds; metric values extracted from workflow runs (a step's
or the run's variable) cross thresholds with the runs as evidence;
pushed events carry a state or a severity; silence turns a signal
Unknown; a mapping rule starts a workflow with the transition as
its input; the overview, the timeline, "why is this Failed" and the
acknowledgement; a workflow run started through the API becomes an event
signal; no sanitizer report at shutdown."""

import datetime
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apilib import wait_run
from test_durable import store_url  # noqa: F401  (fixture)
from test_serve import assert_clean_exit, server  # noqa: F401  (fixture)


class Target:
    """A local service that answers 200 while up, 503 while down, on any
    path (url is its /state); it counts its requests (hits, and per path:
    count(path)), keeps each X-Token header (last_token()) and holds each
    request for `delay` seconds."""

    def __init__(self):
        self.up, self.hits, self.delay = True, 0, 0.0
        self.lock = threading.Lock()
        self.paths, self.tokens = {}, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.hits += 1
                    outer.paths[self.path] = outer.paths.get(self.path, 0) + 1
                    if self.headers.get("X-Token") is not None:
                        outer.tokens.append(self.headers["X-Token"])
                time.sleep(outer.delay)
                self.send_response(200 if outer.up else 503)
                body = b'{"ok": true}' if outer.up else b'{"ok": false}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.url = self.base + "/state"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def count(self, path):
        with self.lock:
            return self.paths.get(path, 0)

    def last_token(self):
        with self.lock:
            return self.tokens[-1] if self.tokens else None

    def close(self):
        self.delay = 0
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def target():
    t = Target()
    yield t
    t.close()


def ok(server, token, method, path, body=None, want=(200,)):
    status, env = server.api(method, path, body, token=token)
    assert status in want, (method, path, status, env)
    return env["data"]


def published_workflow(server, token, name, url):
    flow = {"tasks": {"probe": {"type": "http", "request": {"method": "GET", "url": url}}}}
    wf = ok(server, token, "POST", "/api/v1/workflows", {"name": name, "definition": flow}, want=(201,))
    ok(server, token, "POST", "/api/v1/workflows/%s/publish" % wf["id"], want=(201,))
    return wf


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def transitions(server, token, object_id):
    data = ok(server, token, "GET", "/api/v1/signals/%s/transitions?sort=at&page_size=100" % object_id)
    return [(t["from"], t["to"]) for t in data["items"]], data["items"]


def wait_until(fn, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail("timed out waiting for " + what)


def observed(server, token, object_id, run_id):
    """The signal once the run is among its recent observations."""
    status, env = server.api("GET", "/api/v1/signals/" + object_id, token=token)
    if status != 200:
        return None
    return env["data"] if any(e["id"] == run_id for e in env["data"]["recent"]) else None


def check_once(server, token, target, monitor_id, up):
    target.up = up
    run = ok(server, token, "POST", "/api/v1/monitors/%s/run" % monitor_id, want=(202,))
    done = wait_run(server, token, run["run_id"])
    assert done["status"] == ("succeeded" if up else "failed"), done
    assert done["trigger"]["type"] == "manual" and done["trigger"]["monitor_id"] == monitor_id
    return wait_until(lambda: observed(server, token, monitor_id, run["run_id"]), what="run observed")


def test_flaky_check_makes_exactly_the_expected_transitions(server, target):
    token = server.login()
    wf = published_workflow(server, token, "flaky-probe", target.url)
    sched = ok(server, token, "POST", "/api/v1/schedules", {"name": "daily", "every": {"days": 1}}, want=(201,))
    mon = ok(server, token, "POST", "/api/v1/monitors",
             {"name": "flaky-check", "type": "check", "workflow_id": wf["id"], "schedule_id": sched["id"],
              "tags": ["shop"],
              "criteria": {"failures_to_fail": 2, "successes_to_recover": 2, "cooldown_s": 4}}, want=(201,))
    mid = mon["id"]
    # up: the first success decides a new object
    sig = check_once(server, token, target, mid, True)
    assert sig["state"] == "healthy"
    # one failure is a blip; a success in between starts the count again
    for up in (False, True, False):
        assert check_once(server, token, target, mid, up)["state"] == "healthy"
    # the second failure in a row: Failed at once (escalations ignore the cooldown)
    sig = check_once(server, token, target, mid, False)
    assert sig["state"] == "failed" and sig["severity"] == "critical"
    failed_at = time.monotonic()
    # why is this Failed: the two failed runs are the evidence
    detail = ok(server, token, "GET", "/api/v1/signals/" + mid)
    why = detail["last_transition"]
    assert why["from"] == "healthy" and why["to"] == "failed" and why["source_type"] == "check"
    assert why["streak"] == 2 and [e["state"] for e in why["evidence"]] == ["failed", "failed"]
    assert why["incident"] == "opened" and why["correlation_id"] == mid + "#1"
    # a lone success, then a failure: no recovery, no flapping
    for up in (True, False):
        assert check_once(server, token, target, mid, up)["state"] == "failed"
    # two successes: the recovery is held by the cooldown, then applied by the clock
    check_once(server, token, target, mid, True)
    sig = check_once(server, token, target, mid, True)
    if time.monotonic() - failed_at < 3.5:
        assert sig["state"] == "failed" and sig["pending"]["state"] == "healthy"
    sig = wait_until(lambda: ok(server, token, "GET", "/api/v1/signals/" + mid)["state"] == "healthy",
                     timeout=20, what="recovery after the cooldown")
    pairs, items = transitions(server, token, mid)
    assert pairs == [("unknown", "healthy"), ("healthy", "failed"), ("failed", "healthy")]
    assert items[2]["at_ms"] - items[1]["at_ms"] >= 4000
    assert items[2]["incident"] == "resolved" and items[2]["streak"] == 2
    # the timeline filters by time and state
    data = ok(server, token, "GET", "/api/v1/signals/%s/transitions?state=failed" % mid)
    assert [t["to"] for t in data["items"]] == ["failed"] and data["total"] == 1
    status, env = server.api("GET", "/api/v1/signals/%s/transitions?from=yesterday" % mid, token=token)
    assert status == 400 and env["error"]["details"][0]["path"] == "query.from"
    assert_clean_exit(server)


def push_metric(server, token, mid, value, at, want=(200,)):
    return ok(server, token, "POST", "/api/v1/monitors/%s/metrics" % mid, {"value": value, "at": iso(at)}, want=want)


def test_pushed_metrics_cross_thresholds_and_bad_pushes_are_refused(server):
    token = server.login()
    mon = ok(server, token, "POST", "/api/v1/monitors",
             {"name": "latency", "type": "metric", "unit": "ms", "direction": "above", "degraded": 500,
              "failed": 800, "window_s": 1}, want=(201,))
    mid = mon["id"]
    t0 = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    steps = [(120, "healthy"), (640, "degraded"), (700, None), (950, "failed"), (100, "healthy")]
    for i, (value, to) in enumerate(steps):
        data = push_metric(server, token, mid, value, t0 + datetime.timedelta(seconds=10 * i))
        assert (data["transition"] or {}).get("to") == to, (value, data)
    pairs, items = transitions(server, token, mid)
    assert pairs == [("unknown", "healthy"), ("healthy", "degraded"), ("degraded", "failed"), ("failed", "healthy")]
    assert items[2]["evidence"][-1]["value"] == 950 and items[2]["evidence"][-1]["aggregate"] == 950
    # older than the last sample: refused, the signal unchanged
    status, env = server.api("POST", "/api/v1/monitors/%s/metrics" % mid, {"value": 990, "at": iso(t0)}, token=token)
    assert status == 409, env
    for body, path in (({"value": "high"}, "$.value"), ({}, "$.value"), ({"value": 1, "at": "soon"}, "$.at"),
                       ({"value": 1, "at": "2999-01-01T00:00:00Z"}, "$.at")):
        status, env = server.api("POST", "/api/v1/monitors/%s/metrics" % mid, body, token=token)
        assert status == 422 and env["error"]["details"][0]["path"] == path, (body, env)
    status, env = server.api("POST", "/api/v1/monitors/%s/metrics" % mid, {"value": 1, "extra": 2}, token=token)
    assert status == 422 and env["error"]["details"][0]["path"] == "$.extra"
    status, env = server.api("POST", "/api/v1/monitors/%s/events" % mid, {"state": "failed"}, token=token)
    assert status == 409 and "metric monitor" in env["message"]
    status, env = server.api("POST", "/api/v1/monitors/nope/metrics", {"value": 1}, token=token)
    assert status == 404
    assert ok(server, token, "GET", "/api/v1/signals/" + mid)["state"] == "healthy"
    assert_clean_exit(server)


def test_events_mapping_ack_overview_and_unknown(server, target):
    token = server.login()
    wf = published_workflow(server, token, "on-failure", target.url)
    ev = ok(server, token, "POST", "/api/v1/monitors", {"name": "payments-events", "type": "event",
                                                        "tags": ["payments"]}, want=(201,))
    quiet = ok(server, token, "POST", "/api/v1/monitors",
               {"name": "heartbeat", "type": "event", "criteria": {"interval_s": 1, "unknown_after": 2}},
               want=(201,))
    rule = ok(server, token, "POST", "/api/v1/mappings",
              {"name": "payments-down", "match": {"tag": "payments", "from": "healthy", "to": "failed"},
               "workflow_id": wf["id"], "inputs": {"team": "payments"}}, want=(201,))
    ev_path = "/api/v1/monitors/%s/events" % ev["id"]
    assert ok(server, token, "POST", ev_path, {"state": "healthy", "id": "evt-1"})["transition"]["to"] == "healthy"
    # acknowledging a healthy signal is a conflict
    status, env = server.api("POST", "/api/v1/signals/%s/acknowledge" % ev["id"], {}, token=token)
    assert status == 409, env
    data = ok(server, token, "POST", ev_path, {"severity": "critical", "id": "evt-2", "message": "card auth down"})
    assert data["transition"]["to"] == "failed" and data["transition"]["evidence"][-1]["id"] == "evt-2"
    # the mapping rule queued one run of its workflow, with the transition as input
    runs = wait_until(lambda: ok(server, token, "GET", "/api/v1/runs?trigger=signal")["items"], what="signal run")
    assert len(runs) == 1
    run = wait_run(server, token, runs[0]["run_id"])
    assert run["trigger"]["mapping_id"] == rule["id"] and run["trigger"]["object_id"] == ev["id"]
    assert run["inputs"]["team"] == "payments" and run["inputs"]["signal"]["to"] == "failed"
    assert run["inputs"]["signal"]["seq"] == 2
    # a warning moves it back to degraded; no rule matches, no run
    assert ok(server, token, "POST", ev_path, {"severity": "warning"})["transition"]["to"] == "degraded"
    assert ok(server, token, "POST", ev_path, {"severity": "fatal"})["transition"]["to"] == "failed"
    time.sleep(1)
    assert len(ok(server, token, "GET", "/api/v1/runs?trigger=signal")["items"]) == 1
    for body, path in (({"severity": "bad"}, "$.severity"), ({"state": "meh"}, "$.state"),
                       ({"state": "failed", "severity": "critical"}, "$"), ({}, "$")):
        status, env = server.api("POST", ev_path, body, token=token)
        assert status == 422 and env["error"]["details"][0]["path"].startswith(path), (body, env)
    # acknowledge the Failed signal
    acked = ok(server, token, "POST", "/api/v1/signals/%s/acknowledge" % ev["id"], {"text": "on it"})
    assert acked["acknowledged"]["by"] == "admin" and acked["acknowledged"]["text"] == "on it"
    # silence: the heartbeat turns Unknown after 2 intervals of 1 s
    ok(server, token, "POST", "/api/v1/monitors/%s/events" % quiet["id"], {"state": "healthy"})
    sig = wait_until(lambda: ok(server, token, "GET", "/api/v1/signals/" + quiet["id"])["state"] == "unknown" or None,
                     timeout=15, what="Unknown after silence")
    assert sig
    pairs, items = transitions(server, token, quiet["id"])
    assert pairs == [("unknown", "healthy"), ("healthy", "unknown")] and items[1]["streak"] == 0
    # the overview: the worst first
    ok(server, token, "POST", "/api/v1/workflows/%s/execute" % wf["id"], {}, want=(202,))
    over = wait_until(lambda: (lambda d: d if d["total"] == 3 else None)(ok(server, token, "GET", "/api/v1/signals")),
                      what="three signals")
    assert [i["state"] for i in over["items"]] == ["failed", "unknown", "healthy"]
    assert over["items"][0]["acknowledged"]["by"] == "admin"
    assert over["items"][2]["id"] == wf["id"] and over["items"][2]["object_type"] == "event"
    assert ok(server, token, "GET", "/api/v1/signals?state=unknown")["total"] == 1
    assert ok(server, token, "GET", "/api/v1/signals?tag=payments")["total"] == 1
    status, env = server.api("GET", "/api/v1/signals?color=red", token=token)
    assert status == 400 and env["error"]["details"][0]["path"] == "query.color"
    # a deleted monitor's signal leaves the overview
    ok(server, token, "DELETE", "/api/v1/monitors/" + quiet["id"])
    assert ok(server, token, "GET", "/api/v1/signals")["total"] == 2
    status, _ = server.api("GET", "/api/v1/signals/" + quiet["id"], token=token)
    assert status == 404
    assert_clean_exit(server)


def test_scheduled_checks_feed_the_signal(server, target):
    token = server.login()
    target.up = False
    wf = published_workflow(server, token, "scheduled-probe", target.url)
    sched = ok(server, token, "POST", "/api/v1/schedules", {"name": "every-second", "every": {"seconds": 1}},
               want=(201,))
    mon = ok(server, token, "POST", "/api/v1/monitors",
             {"name": "scheduled-check", "type": "check", "workflow_id": wf["id"], "schedule_id": sched["id"],
              "criteria": {"failures_to_fail": 2}}, want=(201,))
    status = lambda: server.api("GET", "/api/v1/signals/" + mon["id"], token=token)  # noqa: E731
    sig = wait_until(lambda: (lambda r: r[1]["data"] if r[0] == 200 and r[1]["data"]["state"] == "failed" else None)(
        status()), timeout=30, what="Failed from scheduled runs")
    why = sig["last_transition"]
    assert (why["from"], why["to"], why["streak"]) == ("unknown", "failed", 2)
    for e in why["evidence"]:
        run = ok(server, token, "GET", "/api/v1/runs/" + e["id"])
        assert run["trigger"]["type"] == "schedule" and run["trigger"]["monitor_id"] == mon["id"]
    assert_clean_exit(server)


def metric_flow(mock_api):
    """probe extracts `latency` from what it is given (input v: a string
    the mock echoes back); verify then extracts `latency` again, always
    "7", so the run's vars end with 7 while probe's own value is v."""
    echo = "{{inputs.base_url}}/echo?v="
    return {
        "inputs": {"base_url": {"type": "string", "default": mock_api.url}, "v": {"type": "string", "required": True}},
        "tasks": {
            "probe": {"type": "http", "request": {"url": echo + "{{inputs.v}}"},
                      "extract": {"latency": "$.query.v"}, "on_success": ["verify"]},
            "verify": {"type": "http", "request": {"url": echo + "7"}, "extract": {"latency": "$.query.v"}},
        },
    }


def execute(server, token, wid, v, dry=False):
    run = ok(server, token, "POST", "/api/v1/workflows/%s/%s" % (wid, "dry-run" if dry else "execute"),
             {"inputs": {"v": v}, **({"version": 1} if dry else {})}, want=(202,))
    done = wait_run(server, token, run["run_id"])
    assert done["status"] == "succeeded" or dry, done  # a dry run does not touch the network
    return run["run_id"]


def test_metric_values_extracted_from_runs_cross_thresholds(server, mock_api):
    token = server.login()
    wf = ok(server, token, "POST", "/api/v1/workflows", {"name": "latency-probe", "definition": metric_flow(mock_api)},
            want=(201,))
    ok(server, token, "POST", "/api/v1/workflows/%s/publish" % wf["id"], want=(201,))
    base = {"type": "metric", "unit": "ms", "direction": "above", "window_s": 1}
    # the source is checked like every field: unknown keys, names, the workflow must exist
    for src, paths in (({"workflow_id": wf["id"], "variable": "1st", "extra": 1}, ["$.source.extra",
                                                                                  "$.source.variable"]),
                       ({"workflow_id": wf["id"], "variable": "latency", "task": ""}, ["$.source.task"]),
                       ({"variable": "latency"}, ["$.source.workflow_id"]),
                       ("latency", ["$.source"]),
                       ({"workflow_id": "no-such-workflow", "variable": "latency"}, ["$.source.workflow_id"])):
        status, env = server.api("POST", "/api/v1/monitors", dict(base, name="bad", degraded=1, source=src),
                                 token=token)
        assert status == 422 and sorted(d["path"] for d in env["error"]["details"]) == paths, (src, env)
    status, env = server.api("POST", "/api/v1/monitors", {"name": "bad", "type": "event", "source": {
        "workflow_id": wf["id"], "variable": "latency"}}, token=token)
    assert status == 422 and [d["path"] for d in env["error"]["details"]] == ["$.source"], env
    # from probe's step: the value given; from the run's vars: verify's 7
    step = ok(server, token, "POST", "/api/v1/monitors", dict(base, name="probe-latency", degraded=500, failed=800,
                                                              source={"workflow_id": wf["id"], "variable": "latency",
                                                                      "task": "probe"}), want=(201,))
    last = ok(server, token, "POST", "/api/v1/monitors", dict(base, name="run-latency", degraded=5, failed=10, source={
        "workflow_id": wf["id"], "variable": "latency"}), want=(201,))
    sid, lid = step["id"], last["id"]
    runs = []
    for v, to in (("120", "healthy"), ("640", "degraded"), ("700", "degraded"), ("950", "failed")):
        runs.append(execute(server, token, wf["id"], v))
        sig = wait_until(lambda: observed(server, token, sid, runs[-1]), what="value observed")
        assert sig["state"] == to, (v, sig)
        time.sleep(1.1)  # one sample per window
    # a dry run observes nothing; a non-numeric value neither (logged)
    dry = execute(server, token, wf["id"], "5", dry=True)
    bad = execute(server, token, wf["id"], "high")
    wait_until(lambda: b"run %s has a non-numeric variable 'latency'" % bad.encode() in server.stderr(),
               what="the non-numeric value logged")
    runs.append(execute(server, token, wf["id"], "100"))
    sig = wait_until(lambda: observed(server, token, sid, runs[-1]), what="recovery observed")
    assert sig["state"] == "healthy"
    assert not {dry, bad} & {e["id"] for e in sig["recent"]}
    pairs, items = transitions(server, token, sid)
    assert pairs == [("unknown", "healthy"), ("healthy", "degraded"), ("degraded", "failed"), ("failed", "healthy")]
    assert [t["evidence"][-1]["id"] for t in items] == [runs[0], runs[1], runs[3], runs[4]]
    assert [t["evidence"][-1]["value"] for t in items] == [120, 640, 950, 100]
    run = ok(server, token, "GET", "/api/v1/runs/" + runs[3])
    assert items[2]["evidence"][-1]["at"] == run["finished_at"], (items[2], run)
    assert items[2]["source_type"] == "metric"
    # the run's vars hold verify's 7: degraded once, every run after observed (not the dry run)
    sig = wait_until(lambda: observed(server, token, lid, runs[-1]), what="vars value observed")
    assert sig["state"] == "degraded"
    assert [e["id"] for e in sig["recent"]][-6:] == runs[:4] + [bad, runs[4]]
    pairs, items = transitions(server, token, lid)
    assert pairs == [("unknown", "degraded")] and items[0]["evidence"][-1]["value"] == 7
    # a source moved to another variable: runs no longer feed the old one's observations
    upd = dict(base, name="probe-latency", degraded=500, failed=800, version=step["version"],
               source={"workflow_id": wf["id"], "variable": "missing"})
    ok(server, token, "PUT", "/api/v1/monitors/" + sid, upd)
    gone = execute(server, token, wf["id"], "990")
    wait_until(lambda: b"run %s has no variable 'missing'" % gone.encode() in server.stderr(),
               what="the missing variable logged")
    assert ok(server, token, "GET", "/api/v1/signals/" + sid)["state"] == "healthy"
    assert_clean_exit(server)
