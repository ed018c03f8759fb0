"""Schedules and check monitors through the real server, on SQLite and
PostgreSQL: scheduled fires create runs at the expected times with the
monitor trigger; changing a schedule re-plans its checks without editing
them; disabling or deleting stops them; the missed-fire policy (once, skip,
all) after a restart; manual runs; the next-fire-times route; metrics."""

import datetime as dt
import time

import pytest

from test_durable import store_url  # noqa: F401  (fixture)
from test_serve import assert_clean_exit, start_server

SEC = dt.timedelta(seconds=1)


def parse_ts(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


class Api:
    def __init__(self, srv):
        self.srv = srv
        self.token = srv.login()

    def call(self, method, path, body=None, want=None):
        status, env = self.srv.api(method, "/api/v1" + path, body, token=self.token)
        assert want is None or status == want, (method, path, status, env)
        return status, env

    def make(self, plural, body):
        return self.call("POST", "/" + plural, body, want=201)[1]["data"]

    def runs(self, **q):
        qs = "&".join("%s=%s" % kv for kv in dict(dict(page_size=500), **q).items())
        return self.call("GET", "/runs?" + qs, want=200)[1]["data"]["items"]

    def check_runs(self, monitor_id):
        return sorted((r for r in self.runs() if (r.get("trigger") or {}).get("monitor_id") == monitor_id),
                      key=lambda r: r["trigger"].get("scheduled_at") or r["created_at"])


def health_task(mock_api):
    return {"type": "http", "request": {"method": "GET", "url": mock_api.url + "/health"}}


def published_flow(api, mock_api, name):
    wf = api.make("workflows", {"name": name, "definition": {"tasks": {"ping": health_task(mock_api)}}})
    api.call("POST", "/workflows/%s/publish" % wf["id"], want=201)
    return wf


def check(api, name, schedule_id, **kw):
    return api.make("monitors", dict({"name": name, "type": "check", "schedule_id": schedule_id}, **kw))


def wait_for(pred, timeout=15, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    pytest.fail("condition not met within %ss" % timeout)


@pytest.fixture
def served(restmon_bin, tmp_path, store_url):  # noqa: F811
    srv = start_server(restmon_bin, tmp_path, store_url)
    yield srv, Api(srv)
    if srv.proc.poll() is None:
        srv.stop()


def test_fires_queue_runs_of_the_published_workflow_at_the_schedule_times(served, mock_api):
    srv, api = served
    wf = published_flow(api, mock_api, "sched-flow")
    sched = api.make("schedules", {"name": "every-second", "every": {"seconds": 1}})
    mon = check(api, "ping-check", sched["id"], workflow_id=wf["id"])
    runs = wait_for(lambda: (lambda rs: rs if len(rs) >= 3 else None)(api.check_runs(mon["id"])))
    start = parse_ts(sched["created_at"]).replace(microsecond=0)
    times = [parse_ts(r["trigger"]["scheduled_at"]) for r in runs]
    for r, t in zip(runs, times):
        tr = r["trigger"]
        assert tr["type"] == "schedule" and tr["schedule_id"] == sched["id"] and tr["catch_up"] is False, tr
        assert r["workflow_id"] == wf["id"] and r["workflow_version"] == 1 and r["source"] == "schedule", r
        # every N seconds counts from the schedule's creation, on whole seconds
        assert (t - start).total_seconds() % 1 == 0 and t > start, (t, start)
        assert 0 <= tr["lateness_ms"] < 500, tr
        assert parse_ts(tr["fired_at"]) >= t
    assert all(b - a == SEC for a, b in zip(times, times[1:])), times
    done = wait_for(lambda: [r for r in api.check_runs(mon["id"]) if r["status"] == "succeeded"])
    assert done
    status, _, body = srv.request("GET", "/metrics")
    text = body.decode()
    assert status == 200
    assert 'restmon_scheduler_fires_total{kind="on_time"}' in text, text[-3000:]
    assert "restmon_scheduler_lateness_seconds_bucket" in text
    assert 'restmon_checks_total{outcome="queued"}' in text
    assert_clean_exit(srv)


def test_changing_the_schedule_replans_without_editing_the_monitor(served, mock_api):
    srv, api = served
    wf = published_flow(api, mock_api, "replan-flow")
    sched = api.make("schedules", {"name": "hourly", "every": {"hours": 1}})
    mon = check(api, "replan-check", sched["id"], workflow_id=wf["id"])
    time.sleep(1.5)
    assert api.check_runs(mon["id"]) == []
    api.call("PUT", "/schedules/" + sched["id"], {"name": "hourly", "every": {"seconds": 1}, "version": 1}, want=200)
    wait_for(lambda: len(api.check_runs(mon["id"])) >= 2)
    assert api.call("GET", "/monitors/" + mon["id"], want=200)[1]["data"]["version"] == 1
    # disabled: no more fires
    api.call("PUT", "/schedules/" + sched["id"], {"name": "hourly", "every": {"seconds": 1}, "enabled": False,
                                                  "version": 2}, want=200)
    time.sleep(0.5)
    n = len(api.check_runs(mon["id"]))
    time.sleep(2.5)
    assert len(api.check_runs(mon["id"])) == n
    # enabled again, then the monitor deleted: fires, then stops
    api.call("PUT", "/schedules/" + sched["id"], {"name": "hourly", "every": {"seconds": 1}, "version": 3}, want=200)
    wait_for(lambda: len(api.check_runs(mon["id"])) >= n + 2)
    api.call("DELETE", "/monitors/" + mon["id"], want=200)
    time.sleep(0.5)
    n = len(api.check_runs(mon["id"]))
    time.sleep(2.5)
    assert len(api.check_runs(mon["id"])) == n
    assert_clean_exit(srv)


def test_moving_a_monitor_to_another_schedule_follows_it(served, mock_api):
    srv, api = served
    wf = published_flow(api, mock_api, "move-flow")
    slow = api.make("schedules", {"name": "daily", "cron": "0 0 * * *"})
    fast = api.make("schedules", {"name": "fast", "cron": "* * * * * *"})  # six fields: every second
    mon = check(api, "move-check", slow["id"], workflow_id=wf["id"])
    time.sleep(1.5)
    assert api.check_runs(mon["id"]) == []
    api.call("PUT", "/monitors/" + mon["id"], {"name": "move-check", "type": "check", "schedule_id": fast["id"],
                                               "workflow_id": wf["id"], "version": 1}, want=200)
    runs = wait_for(lambda: (lambda rs: rs if len(rs) >= 2 else None)(api.check_runs(mon["id"])))
    assert {r["trigger"]["schedule_id"] for r in runs} == {fast["id"]}
    assert_clean_exit(srv)


def test_manual_run_of_a_task_check_applies_timeout_and_retries(served, mock_api):
    srv, api = served
    task = api.make("tasks", {"name": "ping-task", "definition": health_task(mock_api)})
    sched = api.make("schedules", {"name": "yearly", "cron": "@yearly"})
    mon = check(api, "task-check", sched["id"], task_id=task["id"], timeout_ms=1500, retries=2)
    _, env = api.call("POST", "/monitors/%s/run" % mon["id"], want=202)
    data = env["data"]
    assert data["monitor_id"] == mon["id"] and data["status"] == "queued" and data["workflow_id"] is None
    run = api.call("GET", "/runs/" + data["run_id"], want=200)[1]["data"]
    assert run["trigger"]["type"] == "manual" and run["trigger"]["monitor_id"] == mon["id"]
    assert run["trigger"]["by"] == "admin" and run["workflow"]["name"] == "ping-task"
    wait_for(lambda: api.call("GET", "/runs/" + data["run_id"])[1]["data"]["status"] == "succeeded")
    got = api.srv.api("GET", "/api/v1/audit?object_id=" + mon["id"], token=api.token)[1]["data"]["items"]
    assert any(e["action"] == "monitor.run" for e in got), got
    # what ran: the task as the one task "check", with the monitor's limits
    run = api.call("GET", "/runs/" + data["run_id"], want=200)[1]["data"]
    assert [s["task"] for s in run["steps"]] == ["check"], run["steps"]
    definition = run.get("definition") or {}
    if definition:
        assert definition["tasks"]["check"]["timeout_ms"] == 1500
        assert definition["tasks"]["check"]["retry"]["max_attempts"] == 3
    assert_clean_exit(srv)


def test_manual_run_errors(served, mock_api):
    srv, api = served
    wf = api.make("workflows", {"name": "draft-only", "definition": {"tasks": {"ping": health_task(mock_api)}}})
    sched = api.make("schedules", {"name": "yearly2", "cron": "@yearly"})
    mon = check(api, "draft-check", sched["id"], workflow_id=wf["id"])
    _, env = api.call("POST", "/monitors/%s/run" % mon["id"], want=409)
    assert "no published version" in env["message"], env
    metric = api.make("monitors", {"name": "latency", "type": "metric", "direction": "above", "failed": 5,
                                   "window_s": 60})
    _, env = api.call("POST", "/monitors/%s/run" % metric["id"], want=409)
    assert "only check monitors run" in env["message"]
    api.call("POST", "/monitors/00000000-0000-4000-8000-00000000dead/run", want=404)
    _, env = api.call("POST", "/monitors/%s/run" % mon["id"], {"x": 1}, want=422)
    assert env["error"]["details"][0]["path"] == "$.x", env
    assert_clean_exit(srv)


def test_next_fire_times_for_a_calendar(served):
    srv, api = served
    berlin = api.make("schedules", {"name": "berlin-0230", "cron": "30 2 * * *", "timezone": "Europe/Berlin"})
    _, env = api.call("GET", "/schedules/%s/next?n=3&after=2026-03-28T12:00:00Z" % berlin["id"], want=200)
    items = env["data"]["items"]
    # 02:30 does not exist on 2026-03-29 in Berlin: it fires at 03:00 CEST
    assert [i["at"] for i in items] == ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z",
                                        "2026-03-31T00:30:00.000Z"], items
    assert [i["local"] for i in items] == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00",
                                           "2026-03-31T02:30:00+02:00"], items
    assert env["data"]["timezone"] == "Europe/Berlin" and env["data"]["enabled"] is True
    leap = api.make("schedules", {"name": "leap", "cron": "0 12 29 2 *"})
    _, env = api.call("GET", "/schedules/%s/next?n=2&after=2025-01-01T00:00:00Z" % leap["id"], want=200)
    assert [i["at"] for i in env["data"]["items"]] == ["2028-02-29T12:00:00.000Z", "2032-02-29T12:00:00.000Z"]
    dates = api.make("schedules", {"name": "dates", "at": ["2030-01-01T10:00", "2031-06-01T08:00:00Z"],
                                   "timezone": "America/New_York"})
    _, env = api.call("GET", "/schedules/%s/next?n=5&after=2029-01-01T00:00:00Z" % dates["id"], want=200)
    assert [i["at"] for i in env["data"]["items"]] == ["2030-01-01T15:00:00.000Z", "2031-06-01T08:00:00.000Z"]
    every = api.make("schedules", {"name": "ten-min", "every": {"minutes": 10}})
    _, env = api.call("GET", "/schedules/%s/next" % every["id"], want=200)
    ts = [parse_ts(i["at"]) for i in env["data"]["items"]]
    assert len(ts) == 10 and all(b - a == dt.timedelta(minutes=10) for a, b in zip(ts, ts[1:]))
    assert ts[0] > dt.datetime.now(dt.timezone.utc) - SEC
    # at exactly a fire time, that fire is listed
    _, env = api.call("GET", "/schedules/%s/next?n=1&after=2026-03-30T00:30:00Z" % berlin["id"], want=200)
    assert env["data"]["items"][0]["at"] == "2026-03-30T00:30:00.000Z"
    for bad in ("n=0", "n=1001", "n=x", "after=yesterday", "color=red"):
        _, env = api.call("GET", "/schedules/%s/next?%s" % (berlin["id"], bad), want=400)
        assert env["error"]["details"][0]["path"].startswith("query."), env
    api.call("GET", "/schedules/00000000-0000-4000-8000-00000000dead/next", want=404)
    assert_clean_exit(srv)


@pytest.fixture
def servers():
    """Servers a test starts itself; stopped even when it fails."""
    started = []
    yield started
    for srv in started:
        if srv.proc.poll() is None:
            srv.stop()


def test_missed_fires_after_a_restart_follow_each_policy(restmon_bin, tmp_path, store_url, mock_api,  # noqa: F811
                                                         servers):
    srv = start_server(restmon_bin, tmp_path, store_url)
    servers.append(srv)
    api = Api(srv)
    wf = published_flow(api, mock_api, "missed-flow")
    mons = {}
    for policy in ("once", "skip", "all"):
        sched = api.make("schedules", {"name": "s-" + policy, "every": {"seconds": 1}, "missed_policy": policy})
        mons[policy] = check(api, "c-" + policy, sched["id"], workflow_id=wf["id"])["id"]
    wait_for(lambda: all(len(api.check_runs(m)) >= 2 for m in mons.values()))
    assert_clean_exit(srv)
    time.sleep(3.5)
    restarted = dt.datetime.now(dt.timezone.utc)
    srv = start_server(restmon_bin, tmp_path, store_url)
    servers.append(srv)
    api = Api(srv)

    def after_restart(r):
        return parse_ts(r["trigger"]["fired_at"]) >= restarted

    # each check fires on schedule again after the restart
    wait_for(lambda: all(any(after_restart(r) and not r["trigger"]["catch_up"] for r in api.check_runs(m))
                         for m in mons.values()))
    for policy, m in mons.items():
        runs = api.check_runs(m)
        catch = [r for r in runs if r["trigger"]["catch_up"]]
        last = max(parse_ts(r["trigger"]["scheduled_at"]) for r in runs if not after_restart(r))
        first_new = min(parse_ts(r["trigger"]["scheduled_at"]) for r in runs
                        if after_restart(r) and not r["trigger"]["catch_up"])
        missed = int((first_new - last) / SEC) - 1
        assert missed >= 3, (last, first_new)
        if policy == "skip":
            assert catch == [], catch
        elif policy == "once":
            assert len(catch) == 1, catch
            assert parse_ts(catch[0]["trigger"]["scheduled_at"]) == last + SEC, (catch, last)
        else:
            times = sorted(parse_ts(r["trigger"]["scheduled_at"]) for r in catch)
            assert times == [last + SEC * (i + 1) for i in range(missed)], (times, last, first_new)
        assert all(after_restart(r) for r in catch)
    assert_clean_exit(srv)
