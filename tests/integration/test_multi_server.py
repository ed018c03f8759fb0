"""Several `restmon serve` processes on one store (PostgreSQL, and one
SQLite file) follow each other's changes within seconds: each reads the
store's change feed every serve.sync_ms (2 s by default) and puts in
force what another server changed -- a new check monitor is planned by
the server that did not get the API call, a disabled schedule stops
firing everywhere, a deleted monitor leaves every scheduler, a changed
secret is what the other server's runs inject, and a changed global
config applies to the other server's logins."""

import re
import shutil
import time

import pytest

from test_durable import store_url  # noqa: F401  (fixture)
from test_schedules import Api, check, wait_for
from test_schedules_multi import checks_total
from test_serve import ADMIN_PW, assert_clean_exit, start_server
from test_signals import target  # noqa: F401  (fixture)

SYNC_S = 2.0  # serve.sync_ms's default
PROPAGATE_S = SYNC_S + 2.5  # one read, plus the slack of an ASan build


@pytest.fixture
def two_servers(restmon_bin, tmp_path, store_url):  # noqa: F811
    """Servers A and B on one store and one vault key, both started before
    anything is defined (B learns everything through the change feed)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = start_server(restmon_bin, tmp_path / "a", store_url)
    shutil.copy(tmp_path / "a" / "master.key", tmp_path / "b" / "master.key")  # one vault for one store
    b = start_server(restmon_bin, tmp_path / "b", store_url)
    yield a, b
    for srv in (a, b):
        if srv.proc.poll() is None:
            srv.stop()


def metric(srv, name, labels=""):
    status, _, body = srv.request("GET", "/metrics")
    assert status == 200
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), body.decode(), re.M)
    return float(m.group(1)) if m else None


def scheduler_items(srv, state=None):
    """Items of the server's scheduler in state, or in any state."""
    states = [state] if state else ["planned", "disabled", "idle"]
    return sum(metric(srv, "restmon_scheduler_items", '{state="%s"}' % s) or 0 for s in states)


def replace(api, plural, id_, **changes):
    doc = api.call("GET", "/%s/%s" % (plural, id_), want=200)[1]["data"]
    body = {k: v for k, v in doc.items() if k not in ("id", "kind", "owner", "created_at", "updated_at", "deleted_at")}
    body.update(changes)
    return api.call("PUT", "/%s/%s" % (plural, id_), body, want=200)[1]["data"]


def test_a_check_defined_through_one_server_is_planned_stopped_and_dropped_by_the_other(two_servers, target):
    a, b = two_servers
    api_a, api_b = Api(a), Api(b)
    assert scheduler_items(b) == 0
    task = api_a.make("tasks", {"name": "sync-hit", "definition": {
        "type": "http", "request": {"method": "GET", "url": target.base + "/hit"}}})
    sched = api_a.make("schedules", {"name": "sync-every-second", "every": {"seconds": 1}})
    mon = check(api_a, "sync-check", sched["id"], task_id=task["id"], timeout_ms=5000)

    # B, which got none of these calls, plans the check and takes fires of it
    wait_for(lambda: scheduler_items(b, "planned") == 1, timeout=PROPAGATE_S)
    wait_for(lambda: checks_total(b, "queued") + checks_total(b, "elsewhere") >= 2, timeout=15)
    wait_for(lambda: target.count("/hit") >= 3, timeout=15)
    assert metric(b, "restmon_def_sync_applied_total", '{kind="monitor"}') >= 1
    assert metric(b, "restmon_def_sync_applied_total", '{kind="schedule"}') >= 1
    assert 0 <= metric(b, "restmon_def_sync_lag_seconds") < 30
    # A applies its own changes once: re-reading them plans nothing twice
    assert scheduler_items(a, "planned") == 1 and scheduler_items(b, "planned") == 1

    # the schedule disabled through A: within seconds no server fires it
    replace(api_a, "schedules", sched["id"], enabled=False)
    wait_for(lambda: scheduler_items(b, "planned") == 0, timeout=PROPAGATE_S)
    time.sleep(1.5)  # a run fired just before may still be under way
    hits = target.count("/hit")
    time.sleep(3)
    assert target.count("/hit") == hits, "a disabled schedule still fires"

    # the global config changed through A: B's new sessions get its lifetime
    version = api_b.call("GET", "/config", want=200)[1]["data"]["version"]
    api_a.call("PUT", "/config", {"version": version, "session_ttl_s": 600}, want=200)
    assert api_b.call("GET", "/config", want=200)[1]["data"]["session_ttl_s"] == 600

    def ttl_on_b():
        status, env = b.api("POST", "/api/v1/auth/login", {"username": "admin", "password": ADMIN_PW})
        assert status == 200, env
        return env["data"]["expires_in_s"] == 600

    wait_for(ttl_on_b, timeout=PROPAGATE_S, every=0.3)

    # the monitor deleted through A leaves B's scheduler
    assert scheduler_items(b) == 1
    api_a.call("DELETE", "/monitors/" + mon["id"], want=200)
    wait_for(lambda: scheduler_items(b) == 0, timeout=PROPAGATE_S)
    assert scheduler_items(a) == 0
    assert_clean_exit(b)
    assert_clean_exit(a)


def run_on(api, wf_id):
    """Executes the workflow through api's server and waits for the run's end."""
    run_id = api.call("POST", "/workflows/%s/execute" % wf_id, {}, want=202)[1]["data"]["run_id"]

    def ended():
        run = api.call("GET", "/runs/" + run_id, want=200)[1]["data"]
        return run if run["status"] not in ("queued", "running") else None

    return wait_for(ended, timeout=30)


def test_a_secret_changed_through_one_server_is_injected_by_the_other(two_servers, target):
    a, b = two_servers
    api_a, api_b = Api(a), Api(b)
    secret = api_a.make("secrets", {"name": "SYNC_TOKEN", "value": "first-value-111", "scope": "global"})
    gone = api_a.make("secrets", {"name": "SYNC_GONE", "value": "soon-deleted-222", "scope": "global"})
    wf = api_a.make("workflows", {"name": "sync-secret-flow", "definition": {"tasks": {
        "call": {"type": "http", "request": {"method": "GET", "url": target.base + "/secret",
                                             "headers": {"X-Token": "{{secrets.SYNC_TOKEN}}"}}}}}})
    api_a.call("POST", "/workflows/%s/publish" % wf["id"], want=201)
    gone_wf = api_a.make("workflows", {"name": "sync-gone-flow", "definition": {"tasks": {
        "call": {"type": "http", "request": {"method": "GET", "url": target.base + "/gone",
                                             "headers": {"X-Token": "{{secrets.SYNC_GONE}}"}}}}}})
    api_a.call("POST", "/workflows/%s/publish" % gone_wf["id"], want=201)
    # B knows both secrets (a run naming an unknown secret is refused before it is queued)
    wait_for(lambda: api_b.call("POST", "/workflows/%s/dry-run" % gone_wf["id"], {})[0] == 202,
             timeout=PROPAGATE_S, every=0.3)

    api_a.call("PUT", "/secrets/" + secret["id"], {"version": secret["version"], "value": "second-value-333"},
               want=200)
    api_a.call("DELETE", "/secrets/" + gone["id"], want=200)
    changed = time.monotonic()
    assert_clean_exit(a)  # from here B alone executes, with what it learnt from the feed

    def injected_new():  # B's read of the change may be a tick away
        run = run_on(api_b, wf["id"])
        assert run["status"] == "succeeded", run
        return run if target.last_token() == "second-value-333" else None

    run = wait_for(injected_new, timeout=PROPAGATE_S, every=0.2)
    assert time.monotonic() - changed < PROPAGATE_S + 5
    assert set(target.tokens) <= {"first-value-111", "second-value-333"}, target.tokens
    assert "second-value-333" not in str(api_b.call("GET", "/runs/" + run["run_id"])[1])  # still masked
    assert metric(b, "restmon_def_sync_applied_total", '{kind="secret"}') >= 3

    # the deleted secret is no longer injected on B: a run naming it is refused
    status, env = api_b.call("POST", "/workflows/%s/execute" % gone_wf["id"], {})
    assert status == 422 and "SYNC_GONE" in str(env["error"]), env
    assert target.count("/gone") == 0
    assert_clean_exit(b)


def test_a_version_published_through_one_server_is_what_the_other_runs(two_servers, target):
    a, b = two_servers
    api_a = Api(a)

    def flow(path):
        return {"tasks": {"call": {"type": "http", "request": {"method": "GET", "url": target.base + path}}}}

    wf = api_a.make("workflows", {"name": "sync-published-flow", "definition": flow("/v1")})
    api_a.call("POST", "/workflows/%s/publish" % wf["id"], want=201)
    sched = api_a.make("schedules", {"name": "sync-publish-every-second", "every": {"seconds": 1}})
    check(api_a, "sync-publish-check", sched["id"], workflow_id=wf["id"], timeout_ms=5000)
    wait_for(lambda: scheduler_items(b, "planned") == 1, timeout=PROPAGATE_S)
    wait_for(lambda: checks_total(b, "queued") >= 2, timeout=15)  # B runs it, its definition cached

    # the draft edited through A (B reads the edit, and goes on running
    # version 1), then version 2 published; from here B alone fires
    wf = replace(api_a, "workflows", wf["id"], definition=flow("/v2"))
    time.sleep(PROPAGATE_S)
    assert target.count("/v2") == 0, "a draft ran"
    api_a.call("POST", "/workflows/%s/publish" % wf["id"], want=201)
    published = time.monotonic()
    assert_clean_exit(a)
    wait_for(lambda: target.count("/v2") >= 1, timeout=PROPAGATE_S + 2)
    # well before the 10 s re-read of cached definitions
    assert time.monotonic() - published < PROPAGATE_S + 2
    time.sleep(1.5)  # a run fired just before may still be under way
    old = target.count("/v1")
    time.sleep(2.5)
    assert target.count("/v1") == old, "the other server still runs the old version"
    assert target.count("/v2") >= 3
    assert_clean_exit(b)
