"""Notifications that survive a restart, through the real server killed
with SIGKILL (no chance to clean up) on both backends:

- an escalation policy goes on after a restart: its clock is the wall time
  of the transition to Failed, a step already sent is not sent again, a
  step that fell due is sent once, later steps on time, and acknowledging
  still stops it;
- a delivery left queued while its receiver failed or hung is picked up
  by the next start and sent again under the same id;
- signal transitions older than transition_retention_days are pruned,
  never a signal's latest one."""

import json
import time

import pytest

from test_durable import store_url  # noqa: F401  (fixture)
from test_notifications import add_hook_secret, api_ok, execute, make_workflow, push_event
from test_serve import assert_clean_exit, start_server
from test_signals import wait_until
from test_webhooks import Receiver, verify

HOOK_KEY = "whsec-notify-4b1e7d-signing-key"  # test_notifications' add_hook_secret


def kill9(srv):
    srv.proc.kill()
    srv.proc.wait()


def restart(restmon_bin, tmp_path, store_url, conf=""):  # noqa: F811
    srv = start_server(restmon_bin, tmp_path, store_url, extra_conf=conf)
    srv.store_url = store_url
    return srv


def steps_received(hook, monitor_id):
    """The escalation events the receiver got for monitor_id: [(event id, step, arrival time)]."""
    out = []
    for (headers, body), at in zip(hook.events, hook.times):
        event = json.loads(body)
        if event.get("event") == "escalation.failed" and event["monitor"]["id"] == monitor_id:
            out.append((headers["x-restmon-event-id"], event["escalation"]["step"], at))
    return out


def timed_receiver():
    """A Receiver that also notes when each POST arrived (time.time())."""
    hook = Receiver()
    hook.times = []
    events = hook.events

    class Timed(list):
        def append(self, item):
            hook.times.append(time.time())
            super().append(item)

    hook.events = Timed(events)
    return hook


def escalating_monitor(srv, token, hook, name, steps):
    """A webhook channel to hook and an event monitor that escalates to it
    after each of steps ({"after_s": n} or {"after_min": n})."""
    ch = api_ok(srv, token, "POST", "/api/v1/channels",
                {"name": name + "-oncall", "type": "webhook",
                 "settings": {"url": hook.url, "events": ["run.cancelled"]}}, want=201)
    escalation = [dict(step, channel_id=ch["id"]) for step in steps]
    return api_ok(srv, token, "POST", "/api/v1/monitors",
                  {"name": name, "type": "event", "notify": {"escalation": escalation}}, want=201)


def test_escalation_goes_on_after_kill_9_without_repeating_a_step(restmon_bin, tmp_path, store_url):  # noqa: F811
    srv = restart(restmon_bin, tmp_path, store_url)
    hook = timed_receiver()
    try:
        token = srv.login()
        mon = escalating_monitor(srv, token, hook, "card-auth", [{"after_s": 6}, {"after_s": 14}, {"after_s": 24}])
        t0 = time.time()
        push_event(srv, token, mon["id"], "failed")
        time.sleep(1)
        kill9(srv)  # before step 1 is due

        srv = restart(restmon_bin, tmp_path, store_url)
        token = srv.login()
        got = wait_until(lambda: steps_received(hook, mon["id"]), 20, "escalation step 1")
        assert [s for _, s, _ in got] == [1]
        assert got[0][2] - t0 >= 6 - 0.5, "step 1 counts from the transition, not from the restart"
        row = wait_until(lambda: [d for d in api_ok(srv, token, "GET", "/api/v1/deliveries?event=escalation.failed")
                                ["items"] if d["status"] == "delivered"], 10, "step 1 recorded as delivered")[0]
        assert row["id"] == got[0][0] and row["message"]["fields"]["escalation_step"] == 1
        kill9(srv)  # after step 1 was sent, before step 2 is due
        assert time.time() - t0 < 14, "the test machine is too slow for this timeline"

        srv = restart(restmon_bin, tmp_path, store_url)
        token = srv.login()
        got = wait_until(lambda: [g for g in steps_received(hook, mon["id"]) if g[1] == 2], 20, "escalation step 2")
        assert got[0][2] - t0 >= 14 - 0.5, "step 2 on time, not early"
        assert got[0][2] - t0 < 14 + 6, "step 2 on time, not late"
        api_ok(srv, token, "POST", "/api/v1/signals/%s/acknowledge" % mon["id"], {"text": "on it"})
        time.sleep(max(0, t0 + 24 + 3 - time.time()))
        got = steps_received(hook, mon["id"])
        assert [s for _, s, _ in got] == [1, 2], "step 1 once, step 2 once, no step 3 after the acknowledgement"
        assert len({i for i, _, _ in got}) == 2
        rows = api_ok(srv, token, "GET", "/api/v1/deliveries?event=escalation.failed")["items"]
        assert sorted(r["message"]["fields"]["escalation_step"] for r in rows) == [1, 2], rows
        assert_clean_exit(srv)
    finally:
        hook.close()
        if srv.proc.poll() is None:
            srv.stop()


def test_escalation_step_due_while_the_server_was_down_is_sent_once_at_start(restmon_bin, tmp_path,
                                                                              store_url):  # noqa: F811
    srv = restart(restmon_bin, tmp_path, store_url)
    hook = timed_receiver()
    try:
        token = srv.login()
        mon = escalating_monitor(srv, token, hook, "orders", [{"after_s": 2}, {"after_s": 3}, {"after_min": 60}])
        push_event(srv, token, mon["id"], "failed")
        kill9(srv)
        time.sleep(4)  # steps 1 and 2 fall due while nothing runs
        srv = restart(restmon_bin, tmp_path, store_url)
        token = srv.login()
        got = wait_until(lambda: len(steps_received(hook, mon["id"])) >= 2 and steps_received(hook, mon["id"]), 20,
                       "the two missed steps")
        time.sleep(3)
        got = steps_received(hook, mon["id"])
        assert [s for _, s, _ in got] == [1, 2], got
        assert_clean_exit(srv)
        # a clean restart does not send them again either
        srv = restart(restmon_bin, tmp_path, store_url)
        time.sleep(3)
        assert [s for _, s, _ in steps_received(hook, mon["id"])] == [1, 2]
        assert_clean_exit(srv)
    finally:
        hook.close()
        if srv.proc.poll() is None:
            srv.stop()


SLOW_RETRIES = "notify.attempts = 50\nnotify.backoff_ms = 300\nnotify.max_delay_ms = 600\n"


@pytest.mark.parametrize("trouble", ["503", "hangs"])
def test_delivery_left_queued_by_kill_9_is_sent_again_with_the_same_id(restmon_bin, tmp_path, store_url,  # noqa: F811
                                                                       mock_api, trouble):
    hook = Receiver()
    if trouble == "503":
        hook.status = 503
    else:
        hook.delay_s = 60
    srv = restart(restmon_bin, tmp_path, store_url, SLOW_RETRIES)
    try:
        token = srv.login()
        add_hook_secret(srv, token)
        ch = api_ok(srv, token, "POST", "/api/v1/channels",
                    {"name": "run-hook", "type": "webhook",
                     "settings": {"url": hook.url, "hmac_secret": "hook_key", "events": ["run.failed"]}}, want=201)
        wf = make_workflow(srv, token, mock_api, [])
        run = execute(srv, token, wf, ms=2)
        hook.wait(2 if trouble == "503" else 1)
        row = api_ok(srv, token, "GET", "/api/v1/deliveries?run_id=" + run["run_id"])["items"][0]
        assert row["status"] == "queued" and row["channel_id"] == ch["id"], row
        kill9(srv)

        hook.status, hook.delay_s = None, 0
        hook.fail_first = 0
        before = len(hook.events)
        srv = restart(restmon_bin, tmp_path, store_url, SLOW_RETRIES)
        token = srv.login()
        done = wait_until(lambda: [d for d in api_ok(srv, token, "GET", "/api/v1/deliveries?run_id=" + run["run_id"])
                                 ["items"] if d["status"] != "queued"], 30, "the delivery picked up")[0]
        assert done["id"] == row["id"] and done["status"] == "delivered", done
        assert done["last_status"] == 204 and done["last_error"] is None
        ids = {h["x-restmon-event-id"] for h, _ in hook.events}
        assert ids == {row["id"]}, "every attempt, before and after the restart, carries the delivery id"
        again = hook.events[before:]
        assert len(again) == 1 and verify(again[0][0], again[0][1], HOOK_KEY)
        assert json.loads(again[0][1])["run"]["run_id"] == run["run_id"]
        assert b"picked up" in srv.stderr()
        assert_clean_exit(srv)
    finally:
        hook.close()
        if srv.proc.poll() is None:
            srv.stop()


def transitions(srv, token, mid):
    return [t["seq"] for t in api_ok(srv, token, "GET", "/api/v1/signals/%s/transitions?sort=at" % mid)["items"]]


def retention_setting(srv, token, field, default):
    """The config answers field at its default, and refuses a negative or a
    non-number value with a 422 naming it. Returns the config."""
    conf = api_ok(srv, token, "GET", "/api/v1/config")
    assert conf[field] == default and conf["defaults"][field] == default
    for bad in (-1, "1"):
        status, env = srv.api("PUT", "/api/v1/config", {field: bad, "version": conf["version"]}, token=token)
        assert status == 422 and env["error"]["details"][0]["path"] == "$." + field, env
    return conf


def test_old_transitions_are_pruned_but_never_a_signals_latest(restmon_bin, tmp_path, store_url):  # noqa: F811
    srv = restart(restmon_bin, tmp_path, store_url)
    try:
        token = srv.login()
        retention_setting(srv, token, "transition_retention_days", 90)

        busy = api_ok(srv, token, "POST", "/api/v1/monitors", {"name": "busy", "type": "event"}, want=201)
        quiet = api_ok(srv, token, "POST", "/api/v1/monitors", {"name": "quiet", "type": "event"}, want=201)
        push_event(srv, token, quiet["id"], "failed")
        for state in ("failed", "healthy", "failed", "healthy"):
            push_event(srv, token, busy["id"], state)
        assert transitions(srv, token, busy["id"]) == [1, 2, 3, 4]
        time.sleep(2.5)
        push_event(srv, token, busy["id"], "failed")  # seq 5: recent

        # 0.00002 days = 1.7 s; the change starts a pass at once
        conf = api_ok(srv, token, "PUT", "/api/v1/config", {"transition_retention_days": 0.00002, "version": 0})
        assert conf["transition_retention_days"] == 0.00002
        wait_until(lambda: transitions(srv, token, busy["id"]) == [5], 15, "the old transitions pruned")
        assert transitions(srv, token, quiet["id"]) == [1], "an old latest transition stays"
        sig = api_ok(srv, token, "GET", "/api/v1/signals/" + quiet["id"])
        assert sig["state"] == "failed"
        audit = api_ok(srv, token, "GET", "/api/v1/audit?action=config.update")["items"][0]
        assert audit["after"]["transition_retention_days"] == 0.00002
        assert audit["before"]["transition_retention_days"] == 90

        conf = api_ok(srv, token, "PUT", "/api/v1/config", {"transition_retention_days": None,
                                                             "version": conf["version"]})
        assert conf["transition_retention_days"] == 90
        assert b"signal transition retention: deleted 4 old entries" in srv.stderr()
        assert_clean_exit(srv)
    finally:
        if srv.proc.poll() is None:
            srv.stop()


def test_ended_deliveries_are_pruned_queued_ones_never(restmon_bin, tmp_path, store_url):  # noqa: F811
    srv = restart(restmon_bin, tmp_path, store_url)
    try:
        token = srv.login()
        conf = retention_setting(srv, token, "delivery_retention_days", 30)
        # a receiver that is not there: each test send ends as a dead delivery at once
        ch = api_ok(srv, token, "POST", "/api/v1/channels",
                    {"name": "nowhere", "type": "webhook", "settings": {"url": "http://127.0.0.1:9/hook"}}, want=201)
        for _ in range(2):
            assert api_ok(srv, token, "POST", "/api/v1/channels/%s/test" % ch["id"])["delivered"] is False
        time.sleep(2.5)
        recent = api_ok(srv, token, "POST", "/api/v1/channels/%s/test" % ch["id"])["delivery_id"]

        def ids():
            return [d["id"] for d in api_ok(srv, token, "GET", "/api/v1/deliveries?page_size=100")["items"]]
        assert len(ids()) == 3
        # 0.00002 days = 1.7 s; the change starts a pass at once
        api_ok(srv, token, "PUT", "/api/v1/config", {"delivery_retention_days": 0.00002, "version": conf["version"]})
        wait_until(lambda: ids() == [recent], 15, "the old deliveries pruned")
        assert b"delivery retention: deleted 2 old entries" in srv.stderr()
        assert_clean_exit(srv)
    finally:
        if srv.proc.poll() is None:
            srv.stop()
