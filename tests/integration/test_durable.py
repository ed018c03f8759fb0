"""Durable execution against a real store: runs recorded with --store, a
process killed with SIGKILL mid-flight, and executors that resume the
runs from their last stored step. Every test runs on SQLite and on
PostgreSQL (RESTMON_TEST_PG, set by scripts/run-tests, which starts a
private cluster).
"""

import json
import os
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from test_run import http_task, write_flow

STEPS = 4
STEP_MS = 200


def chain_flow(mock_api, steps=STEPS, ms=STEP_MS):
    """A linear workflow of slow steps; each request carries the run id and
    the step so the mock counts how often each step of each run was sent."""
    tasks = {}
    for i in range(1, steps + 1):
        task = http_task(mock_api.url + "/slow", timeout_ms=5000)
        task["request"]["query"] = {"ms": str(ms), "key": "{{run_id}}-s%d" % i}
        task["extract"] = {"slept%d" % i: "$.slept_ms"}
        if i < steps:
            task["on_success"] = ["s%d" % (i + 1)]
        tasks["s%d" % i] = task
    return {"name": "chain", "tasks": tasks}


def psql(url, sql):
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True,
                   capture_output=True, text=True, timeout=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield "sqlite:%s" % (tmp_path / "restmon.db")
        return
    base = os.environ.get("RESTMON_TEST_PG")
    if not base:
        pytest.skip("RESTMON_TEST_PG is not set (scripts/run-tests starts a private cluster)")
    name = "rm_" + uuid.uuid4().hex[:12]
    psql(base, "CREATE DATABASE %s" % name)
    yield base.rsplit("/", 1)[0] + "/" + name
    psql(base, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


def restmon(restmon_bin, *args, env=None, timeout=120):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([restmon_bin, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env)


def list_runs(restmon_bin, store_url, *filters):
    proc = restmon(restmon_bin, "runs", "list", "--database", store_url, "--json", "--page-size", "500", *filters)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def key_counts(mock_api):
    return mock_api.request("GET", "/__stats?keys=1").json()["keys"]


def check_each_step_ran_once_but_the_cut_one(mock_api, run_ids, steps=STEPS):
    keys = key_counts(mock_api)
    resent = 0
    for run_id in run_ids:
        counts = [keys.get("%s-s%d" % (run_id, i), 0) for i in range(1, steps + 1)]
        assert all(c >= 1 for c in counts), (run_id, counts)
        # At most the step in flight at the kill was sent twice.
        assert sum(1 for c in counts if c == 2) <= 1 and max(counts) <= 2, (run_id, counts)
        resent += sum(1 for c in counts if c == 2)
    return resent


def wait_for_stored_steps(restmon_bin, store_url, minimum, timeout=20):
    """Until at least `minimum` runs are stored (so the kill lands mid-flight)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = restmon(restmon_bin, "runs", "list", "--database", store_url, "--json", "--page-size", "1")
        if proc.returncode == 0 and json.loads(proc.stdout)["total"] >= minimum:
            return
        time.sleep(0.05)
    pytest.fail("runs did not appear in the store within %d s" % timeout)


def test_run_with_store_is_recorded_and_searchable(restmon_bin, mock_api, tmp_path, store_url):
    flow = write_flow(tmp_path, chain_flow(mock_api, steps=2, ms=10))
    proc = restmon(restmon_bin, "run", flow, "--store", store_url, "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    shown = restmon(restmon_bin, "runs", "show", record["run_id"], "--database", store_url, "--json")
    assert shown.returncode == 0, shown.stderr
    stored = json.loads(shown.stdout)
    assert stored["status"] == "succeeded"
    assert [s["task"] for s in stored["steps"]] == ["s1", "s2"]
    assert stored["steps"][0]["attempts"][0]["exchanges"][0]["response"]["status"] == 200
    found = list_runs(restmon_bin, store_url, "--status", "succeeded", "--http-status", "200")
    assert record["run_id"] in [r["run_id"] for r in found["items"]]
    assert found["total_capped"] is False
    found = list_runs(restmon_bin, store_url, "--var", "slept1=10")
    assert [r["run_id"] for r in found["items"]] == [record["run_id"]]
    assert list_runs(restmon_bin, store_url, "--var", "slept1=11")["total"] == 0


def test_kill_9_mid_flight_then_restart_completes_every_run(restmon_bin, mock_api, tmp_path, store_url):
    runs = 50
    flow = write_flow(tmp_path, chain_flow(mock_api))
    env = {"RESTMON_EXECUTOR_LEASE_MS": "1000"}
    proc = subprocess.Popen([restmon_bin, "run", flow, "--store", store_url, "--repeat", str(runs),
                             "--concurrency", str(runs), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **env))
    wait_for_stored_steps(restmon_bin, store_url, runs)
    time.sleep(STEP_MS * 1.5 / 1000)  # the first step done, the second in flight
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    before = list_runs(restmon_bin, store_url)
    assert before["total"] == runs
    assert any(r["status"] == "running" for r in before["items"])

    ex = restmon(restmon_bin, "executor", "--database", store_url, "--until-idle", "--lease-ms", "1000",
                 "--concurrency", str(runs), timeout=120)
    assert ex.returncode == 0, ex.stderr
    after = list_runs(restmon_bin, store_url)
    assert after["total"] == runs
    assert {r["status"] for r in after["items"]} == {"succeeded"}, [r["reason"] for r in after["items"]]
    resent = check_each_step_ran_once_but_the_cut_one(mock_api, [r["run_id"] for r in after["items"]])
    assert resent <= runs
    for r in after["items"][:5]:
        shown = json.loads(restmon(restmon_bin, "runs", "show", r["run_id"], "--database", store_url,
                                   "--json").stdout)
        assert [s["task"] for s in shown["steps"]] == ["s%d" % i for i in range(1, STEPS + 1)]


def test_two_executors_share_the_store_and_one_is_killed(restmon_bin, mock_api, tmp_path, store_url):
    runs = 40
    flow = write_flow(tmp_path, chain_flow(mock_api))
    queued = restmon(restmon_bin, "runs", "queue", flow, "--database", store_url, "--count", str(runs))
    assert queued.returncode == 0, queued.stderr
    args = [restmon_bin, "executor", "--database", store_url, "--lease-ms", "1000", "--concurrency", "20"]
    a = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    b = subprocess.Popen(args + ["--until-idle"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(STEP_MS * 2.5 / 1000)
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=10)
    out, err = b.communicate(timeout=120)
    assert b.returncode == 0, err
    after = list_runs(restmon_bin, store_url)
    assert after["total"] == runs
    assert {r["status"] for r in after["items"]} == {"succeeded"}
    check_each_step_ran_once_but_the_cut_one(mock_api, [r["run_id"] for r in after["items"]])


def test_operator_actions(restmon_bin, mock_api, tmp_path, store_url):
    # A run that fails at its second step.
    flow = chain_flow(mock_api, steps=2, ms=10)
    flow["tasks"]["s2"]["assert"] = [{"jsonpath": "$.slept_ms", "op": "eq", "value": 11}]
    path = write_flow(tmp_path, flow)
    proc = restmon(restmon_bin, "run", path, "--store", store_url, "--json")
    assert proc.returncode == 1
    run_id = json.loads(proc.stdout)["run_id"]
    db = ["--database", store_url]

    assert restmon(restmon_bin, "runs", "annotate", run_id, "looked at it", "--as", "ann", *db).returncode == 0
    assert restmon(restmon_bin, "runs", "ack", run_id, "known issue", "--as", "bob", *db).returncode == 0
    shown = json.loads(restmon(restmon_bin, "runs", "show", run_id, "--json", *db).stdout)
    notes = [(a["kind"], a["author"], a["text"]) for a in shown["annotations"]]
    assert ("note", "ann", "looked at it") in notes and ("ack", "bob", "known issue") in notes

    rerun = restmon(restmon_bin, "runs", "rerun", run_id, "--json", *db)
    assert rerun.returncode == 0, rerun.stderr
    new_id = json.loads(rerun.stdout)["run_id"]
    assert new_id != run_id
    assert json.loads(rerun.stdout)["rerun_of"] == run_id

    resumed = restmon(restmon_bin, "runs", "resume", run_id, *db)
    assert resumed.returncode == 0, resumed.stderr
    ex = restmon(restmon_bin, "executor", *db, "--until-idle", "--lease-ms", "1000")
    assert ex.returncode in (0, 1), ex.stderr
    keys = key_counts(mock_api)
    # The resumed run did not send its succeeded first step again.
    assert keys["%s-s1" % run_id] == 1
    assert keys["%s-s2" % run_id] == 2
    assert keys["%s-s1" % new_id] == 1

    # Cancel: a queued run is cancelled at once; a finished one cannot be.
    queued = restmon(restmon_bin, "runs", "queue", path, "--json", *db)
    qid = json.loads(queued.stdout)[0]["run_id"]
    assert restmon(restmon_bin, "runs", "cancel", qid, *db).returncode == 0
    shown = json.loads(restmon(restmon_bin, "runs", "show", qid, "--json", *db).stdout)
    assert shown["status"] == "cancelled"
    again = restmon(restmon_bin, "runs", "cancel", run_id, *db)
    assert again.returncode != 0 and "already failed" in again.stderr


def test_unknown_run_and_bad_store_are_clear_errors(restmon_bin, tmp_path):
    db = "sqlite:%s" % (tmp_path / "x.db")
    missing = restmon(restmon_bin, "runs", "show", "no-such-run", "--database", db)
    assert missing.returncode != 0 and "no-such-run" in missing.stderr
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)
    bad = restmon(restmon_bin, "runs", "list", "--database", "sqlite:%s" % corrupt)
    assert bad.returncode != 0
    assert "corrupt.db" in bad.stderr and "not a database" in bad.stderr
    wrong = restmon(restmon_bin, "runs", "list", "--database", "mysql://x")
    assert wrong.returncode != 0 and "mysql" in wrong.stderr


def test_secret_is_not_stored(restmon_bin, mock_api, tmp_path):
    secret = "Zq9-very-secret-value"
    db_path = tmp_path / "s.db"
    flow = {"name": "secret", "tasks": {"echo": http_task(mock_api.url + "/echo")}}
    flow["tasks"]["echo"]["request"].update({"method": "POST", "json": {"password": "{{secrets.pw}}"}})
    proc = restmon(restmon_bin, "run", write_flow(tmp_path, flow), "--store", "sqlite:%s" % db_path,
                   "--secret-env", "pw=PW", env={"PW": secret})
    assert proc.returncode == 0, proc.stderr
    for f in tmp_path.iterdir():
        if f.name.startswith("s.db"):
            assert secret.encode() not in f.read_bytes(), f.name


@pytest.fixture
def own_pg_cluster(tmp_path_factory):
    """A cluster of its own, so stopping it disturbs no other test."""
    if not os.environ.get("RESTMON_TEST_PG"):
        pytest.skip("RESTMON_TEST_PG is not set (scripts/run-tests starts a private cluster)")
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    script = os.path.join(root, "scripts", "pg-test-cluster")
    folder = tempfile.mkdtemp(prefix="restmon-pg-")
    os.rmdir(folder)
    url = subprocess.run([script, "start", folder], check=True, capture_output=True, text=True,
                         timeout=120).stdout.strip()
    yield script, folder, url
    subprocess.run([script, "stop", folder], capture_output=True, timeout=60)


def test_postgresql_stopped_and_started_while_runs_execute(restmon_bin, mock_api, tmp_path, own_pg_cluster):
    script, folder, url = own_pg_cluster
    runs = 10
    flow = write_flow(tmp_path, chain_flow(mock_api, ms=300))
    proc = subprocess.Popen([restmon_bin, "run", flow, "--store", url, "--repeat", str(runs),
                             "--concurrency", str(runs), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    subprocess.run([script, "pause", folder], check=True, timeout=60)
    time.sleep(2.0)  # steps finish meanwhile and wait for the database
    subprocess.run([script, "resume", folder], check=True, timeout=60)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    after = list_runs(restmon_bin, url)
    assert after["total"] == runs
    assert {r["status"] for r in after["items"]} == {"succeeded"}
    keys = key_counts(mock_api)
    for r in after["items"]:
        # Nothing was lost and nothing was sent twice.
        assert [keys.get("%s-s%d" % (r["run_id"], i)) for i in range(1, STEPS + 1)] == [1] * STEPS
        shown = json.loads(restmon(restmon_bin, "runs", "show", r["run_id"], "--database", url, "--json").stdout)
        assert len(shown["steps"]) == STEPS


def test_retention_deletes_old_finished_runs_in_the_background(restmon_bin, mock_api, tmp_path, store_url):
    flow = write_flow(tmp_path, chain_flow(mock_api, steps=1, ms=1))
    ok = restmon(restmon_bin, "run", flow, "--store", store_url, "--repeat", "3", "-q")
    assert ok.returncode == 0, ok.stderr
    failing = chain_flow(mock_api, steps=1, ms=1)
    failing["tasks"]["s1"]["assert"] = [{"jsonpath": "$.slept_ms", "op": "eq", "value": 2}]
    bad = restmon(restmon_bin, "run", write_flow(tmp_path, failing, "bad.json"), "--store", store_url, "-q")
    assert bad.returncode == 1
    time.sleep(1.5)
    # Succeeded runs are kept for about a second here, failed ones for a day.
    env = {"RESTMON_RETENTION_SUCCEEDED_DAYS": "0.00001", "RESTMON_RETENTION_FAILED_DAYS": "1"}
    ex = restmon(restmon_bin, "executor", "--database", store_url, "--until-idle", env=env)
    assert ex.returncode == 0, ex.stderr
    assert "deleted 3 finished run(s)" in ex.stderr
    left = list_runs(restmon_bin, store_url)
    assert [r["status"] for r in left["items"]] == ["failed"]


def test_a_database_from_a_newer_version_is_refused(restmon_bin, tmp_path):
    import sqlite3
    path = tmp_path / "new.db"
    db = "sqlite:%s" % path
    first = restmon(restmon_bin, "migrate", "--database", db)
    assert first.returncode == 0 and "from version 0 to" in first.stdout, first.stderr
    again = restmon(restmon_bin, "migrate", "--database", db)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    con = sqlite3.connect(str(path))
    con.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'x')")
    con.commit()
    con.close()
    for args in (["migrate"], ["runs", "list"], ["executor", "--until-idle"]):
        proc = restmon(restmon_bin, *args, "--database", db)
        assert proc.returncode != 0, args
        assert "99" in proc.stderr and "newer" in proc.stderr, proc.stderr


def test_record_body_cap_comes_from_the_configuration(restmon_bin, mock_api, tmp_path):
    conf = tmp_path / "restmon.conf"
    conf.write_text("# test\nruns.record_body_bytes = 40\n")
    flow = {"name": "cap", "tasks": {"get": http_task(mock_api.url + "/echo/" + "x" * 200)}}
    proc = subprocess.run([restmon_bin, "run", write_flow(tmp_path, flow), "--json"], capture_output=True,
                          text=True, timeout=60, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    resp = json.loads(proc.stdout)["steps"][0]["attempts"][0]["exchanges"][0]["response"]
    assert resp["truncated"] is True and len(resp["body"]) == 40 and resp["size"] > 200
    conf.write_text("runs.record_body_byte = 40\n")
    bad = subprocess.run([restmon_bin, "run", write_flow(tmp_path, flow)], capture_output=True, text=True,
                         timeout=60, cwd=str(tmp_path))
    assert bad.returncode == 2 and "restmon.conf:1" in bad.stderr and "record_body_byte" in bad.stderr
