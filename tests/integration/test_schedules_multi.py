"""Several `restmon serve` processes on one store (PostgreSQL, and one
SQLite file): each server runs every check's schedule, and each fire
claims (monitor, scheduled second) in the store, so every scheduled second
runs exactly once across the servers; each server's /metrics counts the
fires it took (restmon_checks_total{outcome="queued"}) and the ones
another server took (outcome="elsewhere")."""

import datetime as dt
import re
import shutil
import time

from test_durable import key_counts, list_runs, store_url  # noqa: F401  (fixture)
from test_schedules import Api, check, parse_ts, wait_for
from test_serve import assert_clean_exit, start_server

SEC = dt.timedelta(seconds=1)


def checks_total(srv, outcome):
    status, _, body = srv.request("GET", "/metrics")
    assert status == 200
    m = re.search(r'^restmon_checks_total\{outcome="%s"\} (\S+)$' % outcome, body.decode(), re.M)
    return float(m.group(1)) if m else 0.0


def at_half_second():
    """Sleeps to the middle of a second: the fires (on whole seconds) and
    their quick runs are over, nothing is in flight."""
    now = time.time()
    time.sleep((0.5 - (now % 1.0)) % 1.0)


def test_two_servers_fire_each_scheduled_second_exactly_once(restmon_bin, tmp_path, store_url, mock_api):  # noqa: F811
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = start_server(restmon_bin, tmp_path / "a", store_url)
    shutil.copy(tmp_path / "a" / "master.key", tmp_path / "b" / "master.key")  # one vault for one store
    api = Api(a)
    task = api.make("tasks", {"name": "multi-ping", "definition": {
        "type": "http", "request": {"method": "GET", "url": mock_api.url + "/slow",
                                    "query": {"ms": "0", "key": "{{run_id}}"}}}})
    sched = api.make("schedules", {"name": "multi-every-second", "every": {"seconds": 1}})
    mon = check(api, "multi-check", sched["id"], task_id=task["id"], timeout_ms=5000)
    # the second server loads the monitor at its start: from then on both fire it
    b = start_server(restmon_bin, tmp_path / "b", store_url)
    wait_for(lambda: checks_total(b, "queued") >= 1 and checks_total(a, "elsewhere") >= 1, timeout=30)
    time.sleep(3)

    at_half_second()
    took_b, lost_b = checks_total(b, "queued"), checks_total(b, "elsewhere")
    assert_clean_exit(b)
    time.sleep(1.2)  # the first server alone again
    at_half_second()
    api.call("DELETE", "/monitors/" + mon["id"], want=200)

    def runs_of():
        items = list_runs(restmon_bin, store_url)["items"]
        return [r for r in items if (r.get("trigger") or {}).get("monitor_id") == mon["id"]]

    wait_for(lambda: all(r["status"] == "succeeded" for r in runs_of()), timeout=30)
    took_a, lost_a = checks_total(a, "queued"), checks_total(a, "elsewhere")
    assert_clean_exit(a)

    runs = sorted(runs_of(), key=lambda r: r["trigger"]["scheduled_at"])
    seconds = [parse_ts(r["trigger"]["scheduled_at"]) for r in runs]
    assert len(set(seconds)) == len(seconds), "a scheduled second ran twice: %s" % seconds
    assert all(t2 - t1 == SEC for t1, t2 in zip(seconds, seconds[1:])), "a scheduled second was lost: %s" % seconds
    assert all(r["trigger"]["type"] == "schedule" for r in runs)
    # the target got each run's request once, and nothing else
    keys = key_counts(mock_api)
    assert keys == {r["run_id"]: 1 for r in runs}, (keys, [r["run_id"] for r in runs])
    # each server took a share, saw the rest taken, and together they took them all
    assert took_a >= 1 and took_b >= 1 and lost_a >= 1, (took_a, took_b, lost_a, lost_b)
    assert took_a + took_b == len(runs), (took_a, took_b, len(runs))
