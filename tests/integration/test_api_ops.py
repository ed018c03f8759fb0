"""Operator and designer actions beyond CRUD, against the real server on
SQLite and PostgreSQL: running one stored task on its own (execute and
dry-run), deleting a run record (Admin only, never a live run), and notes
on signal transitions -- each with its bad inputs, its permissions and its
audit entry."""

import pytest

from apilib import wait_run
from test_api_defs import audit_actions, make_user
from test_durable import store_url  # noqa: F401  (fixture)
from test_serve import assert_clean_exit, server  # noqa: F401  (fixture)
from test_signals import ok, target  # noqa: F401  (fixture)


def make_task(srv, token, url, name="probe-task", **extra):
    body = {"name": name, "definition": {"type": "http", "request": {"url": url},
                                         "sample_response": {"status": 200, "body": {"ok": True}}}}
    body.update(extra)
    return ok(srv, token, "POST", "/api/v1/tasks", body, want=(201,))


def test_a_stored_task_runs_on_its_own(server, target):
    admin = server.login()
    task = make_task(server, admin, target.url)
    # execute: a real request, recorded as a one-task run
    data = ok(server, admin, "POST", "/api/v1/tasks/%s/execute" % task["id"], {"tags": ["try"]}, want=(202,))
    assert data["task_id"] == task["id"] and data["dry_run"] is False and "workflow_id" not in data
    run = wait_run(server, admin, data["run_id"])
    assert run["status"] == "succeeded", run
    assert run["workflow_id"] is None and run["workflow_name"] == "probe-task"
    assert run["trigger"] == {"type": "api", "by": "admin", "task_id": task["id"]}
    assert [s["task"] for s in run["steps"]] == ["task"] and run["tags"] == ["try"]
    exchange = run["steps"][0]["attempts"][0]["exchanges"][0]
    assert exchange["response"]["status"] == 200 and exchange["request"]["url"] == target.url
    # the target going down fails the run, with the reason
    target.up = False
    data = ok(server, admin, "POST", "/api/v1/tasks/%s/execute" % task["id"], want=(202,))
    assert wait_run(server, admin, data["run_id"])["status"] == "failed"
    # dry-run: no request leaves, the sample response answers
    target.up = True
    before = target.hits
    data = ok(server, admin, "POST", "/api/v1/tasks/%s/dry-run" % task["id"], {}, want=(202,))
    run = wait_run(server, admin, data["run_id"])
    assert data["dry_run"] is True and run["status"] == "succeeded" and target.hits == before
    # bad bodies and unknown tasks
    for body, path in (({"version": 1}, "$.version"), ({"inputs": []}, "$.inputs"), ({"tags": "x"}, "$.tags")):
        status, env = server.api("POST", "/api/v1/tasks/%s/execute" % task["id"], body, token=admin)
        assert status == 422 and env["error"]["details"][0]["path"] == path, (body, env)
    status, env = server.api("POST", "/api/v1/tasks/%s/execute" % task["id"], "{nope", token=admin)
    assert status == 400, env
    status, env = server.api("POST", "/api/v1/tasks/00000000-0000-4000-8000-00000000dead/execute", {}, token=admin)
    assert status == 404, env
    # a task naming a secret that does not exist is refused before it runs
    broken = ok(server, admin, "POST", "/api/v1/tasks",
                {"name": "needs-secret", "definition": {"type": "http", "request": {
                    "url": target.url, "headers": {"Authorization": "Bearer {{secrets.NOPE_TOKEN}}"}}}}, want=(201,))
    status, env = server.api("POST", "/api/v1/tasks/%s/execute" % broken["id"], {}, token=admin)
    assert status == 422 and "NOPE_TOKEN" in str(env["error"]), env
    # roles: an operator may not, a designer may; another designer's private task is invisible
    _, operator = make_user(server, admin, "oscar", role="super_operator")
    status, env = server.api("POST", "/api/v1/tasks/%s/execute" % task["id"], {}, token=operator)
    assert status == 403, env
    _, dana = make_user(server, admin, "dana")
    _, erin = make_user(server, admin, "erin")
    mine = make_task(server, dana, target.url, name="dana-private", scope="private")
    status, env = server.api("POST", "/api/v1/tasks/%s/execute" % mine["id"], {}, token=erin)
    assert status == 404, env
    ok(server, dana, "POST", "/api/v1/tasks/%s/execute" % mine["id"], {}, want=(202,))
    actions, _ = audit_actions(server, admin, task["id"], ("task.execute", "task.dry_run"))
    assert {"task.execute", "task.dry_run"} <= set(actions), actions
    assert_clean_exit(server)


def test_deleting_a_run_record(server, target):
    admin = server.login()
    task = make_task(server, admin, target.url)
    run_id = ok(server, admin, "POST", "/api/v1/tasks/%s/execute" % task["id"], want=(202,))["run_id"]
    wait_run(server, admin, run_id)
    ok(server, admin, "POST", "/api/v1/runs/%s/annotations" % run_id, {"text": "looked fine"}, want=(201,))
    # only an admin deletes
    _, designer = make_user(server, admin, "dora")
    status, env = server.api("DELETE", "/api/v1/runs/" + run_id, token=designer)
    assert status == 403, env
    data = ok(server, admin, "DELETE", "/api/v1/runs/" + run_id)
    assert data == {"run_id": run_id, "deleted": True}
    for path in ("/api/v1/runs/", "/api/v1/runs/%s/steps" % run_id):
        status, env = server.api("GET", path + (run_id if path.endswith("/") else ""), token=admin)
        assert status == 404, (path, env)
    assert run_id not in [r["run_id"] for r in ok(server, admin, "GET", "/api/v1/runs?page_size=200")["items"]]
    status, env = server.api("DELETE", "/api/v1/runs/" + run_id, token=admin)
    assert status == 404, env
    _, entries = audit_actions(server, admin, run_id, ("run.delete",))
    gone = [e for e in entries if e["action"] == "run.delete"]
    assert len(gone) == 1 and gone[0]["before"]["status"] == "succeeded", entries
    # a run still queued or running is refused: cancel it first
    target.delay = 3
    live = ok(server, admin, "POST", "/api/v1/tasks/%s/execute" % task["id"], want=(202,))
    status, env = server.api("DELETE", "/api/v1/runs/" + live["run_id"], token=admin)
    assert status == 409 and "cancel it" in env["message"], env
    target.delay = 0
    ok(server, admin, "POST", "/api/v1/runs/%s/cancel" % live["run_id"])
    wait_run(server, admin, live["run_id"])
    ok(server, admin, "DELETE", "/api/v1/runs/" + live["run_id"])
    assert_clean_exit(server)


def test_notes_on_signal_transitions(server):
    admin = server.login()
    ev = ok(server, admin, "POST", "/api/v1/monitors", {"name": "payments-events", "type": "event"}, want=(201,))
    path = "/api/v1/monitors/%s/events" % ev["id"]
    ok(server, admin, "POST", path, {"state": "healthy"})
    seq = ok(server, admin, "POST", path, {"severity": "critical", "message": "card auth down"})["transition"]["seq"]
    note_path = "/api/v1/signals/%s/transitions/%d/annotations" % (ev["id"], seq)
    _, operator = make_user(server, admin, "olga", role="super_operator")
    body = ok(server, operator, "POST", note_path, {"text": "provider outage, OPS-42"}, want=(201,))
    assert body["seq"] == seq and body["to"] == "failed"
    assert [(n["author"], n["text"]) for n in body["annotations"]] == [("olga", "provider outage, OPS-42")]
    ok(server, admin, "POST", note_path, {"text": "resolved by the provider"}, want=(201,))
    # the timeline and the signal's last transition carry the notes, oldest first
    items = ok(server, admin, "GET", "/api/v1/signals/%s/transitions?sort=at" % ev["id"])["items"]
    assert "annotations" not in items[0]
    assert [n["text"] for n in items[1]["annotations"]] == ["provider outage, OPS-42", "resolved by the provider"]
    last = ok(server, admin, "GET", "/api/v1/signals/" + ev["id"])["last_transition"]
    assert len(last["annotations"]) == 2 and last["evidence"] == items[1]["evidence"]
    # bad notes, unknown transitions, read-only roles
    for bad in ({}, {"text": ""}, {"text": 5}, {"text": "x" * 2001}):
        status, env = server.api("POST", note_path, bad, token=admin)
        assert status == 422 and env["error"]["details"][0]["path"] == "$.text", (bad, env)
    status, env = server.api("POST", note_path, {"text": "x", "pin": True}, token=admin)
    assert status == 422 and env["error"]["details"][0]["path"] == "$.pin", env
    for bad_seq, want in (("0", 400), ("abc", 400), ("99", 404)):
        status, env = server.api("POST", "/api/v1/signals/%s/transitions/%s/annotations" % (ev["id"], bad_seq),
                                 {"text": "x"}, token=admin)
        assert status == want, (bad_seq, env)
    status, env = server.api("POST", "/api/v1/signals/00000000-0000-4000-8000-00000000dead/transitions/1/annotations",
                             {"text": "x"}, token=admin)
    assert status == 404, env
    _, viewer = make_user(server, admin, "rita", role="read_only_operator")
    status, env = server.api("POST", note_path, {"text": "x"}, token=viewer)
    assert status == 403, env
    actions, _ = audit_actions(server, admin, ev["id"], ("signal.annotate",))
    assert actions.count("signal.annotate") == 2, actions
    assert_clean_exit(server)


def test_numbers_in_answers_read_as_written(server):
    """Floats are answered with 15 significant digits: 0.1, not 0.10000000000000001."""
    admin = server.login()
    mon = ok(server, admin, "POST", "/api/v1/monitors",
             {"name": "ratio", "type": "metric", "direction": "above", "degraded": 0.7, "failed": 0.9, "window_s": 60}, want=(201,))
    status, _, raw = server.request("POST", "/api/v1/monitors/%s/metrics" % mon["id"], {"value": 0.1}, token=admin)
    assert status == 200, raw
    status, _, raw = server.request("GET", "/api/v1/signals/" + mon["id"], token=admin)
    assert status == 200 and b'"value":0.1' in raw and b"0.10000000000000001" not in raw, raw
    status, _, raw = server.request("GET", "/api/v1/monitors/" + mon["id"], token=admin)
    assert b'"degraded":0.7' in raw and b"0.69999999999999996" not in raw, raw
