"""restmon run / validate against the real binary and the mock business API."""
import base64
import json
import signal
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ORDER_FLOW = REPO / "examples" / "order-transaction.json"
PASSWORD = "demo-password"


def write_flow(tmp_path, flow, name="flow.json"):
    path = tmp_path / name
    path.write_text(json.dumps(flow))
    return str(path)


def http_task(url, **extra):
    task = {"type": "http", "request": {"url": url}}
    task.update(extra)
    return task


def run_json(run_restmon, *args, **kw):
    proc = run_restmon("run", *args, "--json", **kw)
    try:
        record = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("no JSON on stdout (exit %d)\nstdout:\n%s\nstderr:\n%s"
                    % (proc.returncode, proc.stdout, proc.stderr))
    return proc, record


def step(record, name):
    for s in record["steps"]:
        if s["task"] == name:
            return s
    pytest.fail("no step %r in %s" % (name, [s["task"] for s in record["steps"]]))


def order_args(mock_api, secrets_file, password=PASSWORD):
    return [str(ORDER_FLOW), "--secrets-file", secrets_file({"API_PASSWORD": password}),
            "--var", "base_url=" + mock_api.url]


def test_order_transaction_succeeds_end_to_end(run_restmon, mock_api, secrets_file):
    proc, rec = run_json(run_restmon, *order_args(mock_api, secrets_file))
    assert proc.returncode == 0, proc.stderr
    assert rec["status"] == "succeeded"
    names = [s["task"] for s in rec["steps"] if s["status"] != "skipped"]
    assert names == ["login", "create_order", "read_back", "read_back_xml"]
    assert step(rec, "diagnose_login")["status"] == "skipped"
    assert rec["vars"]["order_id"].startswith("ord-")
    # The order really exists at the API, created once.
    assert mock_api.stats()["orders"] == 1


def test_timeline_shows_each_task_status_and_variables(run_restmon, mock_api, secrets_file):
    proc = run_restmon("run", *order_args(mock_api, secrets_file), "--no-color")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("login", "create_order", "read_back", "read_back_xml"):
        assert name in proc.stdout
    assert "order_id" in proc.stdout
    assert "201" in proc.stdout


def test_wrong_password_takes_the_failure_edge(run_restmon, mock_api, secrets_file):
    proc, rec = run_json(run_restmon, *order_args(mock_api, secrets_file, password="wrong-password"))
    assert proc.returncode == 1
    assert rec["status"] == "failed"
    login = step(rec, "login")
    assert login["status"] == "failed"
    assert login["edge"] == "failure"
    assert login["next"] == ["diagnose_login"]
    assert "401" in login["reason"]
    assert step(rec, "diagnose_login")["status"] == "succeeded"
    assert step(rec, "create_order")["status"] == "skipped"
    assert "login" in rec["reason"]


def test_flaky_endpoint_succeeds_on_third_attempt(run_restmon, mock_api, tmp_path):
    flow = {"name": "flaky", "tasks": {"get": http_task(
        mock_api.url + "/flaky?key=k1&fail=2",
        retry={"max_attempts": 3, "backoff_ms": 20, "jitter": 0.5})}}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 0, proc.stderr
    attempts = step(rec, "get")["attempts"]
    assert [a["status"] for a in attempts] == ["failed", "failed", "succeeded"]
    for a in attempts[:2]:
        assert a["exchanges"][0]["response"]["status"] == 503
        assert "5xx" in a["retry"]["reason"]
        assert 10 <= a["retry"]["delay_ms"] <= 200
    assert "retry" not in attempts[2]
    # Backoff grows: the second delay is about twice the first (jitter aside).
    assert attempts[1]["retry"]["delay_ms"] >= attempts[0]["retry"]["delay_ms"] * 0.6


def test_retries_stop_after_max_attempts_with_reason(run_restmon, mock_api, tmp_path):
    flow = {"name": "flaky", "tasks": {"get": http_task(
        mock_api.url + "/flaky?key=k2&fail=5", retry={"max_attempts": 2, "backoff_ms": 10})}}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 1
    attempts = step(rec, "get")["attempts"]
    assert len(attempts) == 2
    assert "all 2 attempts used" in attempts[1]["not_retried"]
    assert mock_api.stats()["by_path"]["/flaky"] == 2


def test_post_is_not_retried_after_a_response_unless_idempotent(run_restmon, mock_api, tmp_path):
    task = http_task(mock_api.url + "/flaky?key=k3&fail=5", retry={"max_attempts": 3, "backoff_ms": 10})
    task["request"]["method"] = "POST"
    proc, rec = run_json(run_restmon, write_flow(tmp_path, {"name": "p", "tasks": {"post": task}}))
    attempts = step(rec, "post")["attempts"]
    assert len(attempts) == 1
    assert "not idempotent" in attempts[0]["not_retried"]


def test_hanging_endpoint_is_cut_by_the_task_timeout(run_restmon, mock_api, tmp_path):
    flow = {"name": "hang", "tasks": {
        "hang": http_task(mock_api.url + "/hang", timeout_ms=400),
        "other": http_task(mock_api.url + "/slow?ms=50")}}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow), timeout=20)
    assert proc.returncode == 1
    hang = step(rec, "hang")
    assert hang["status"] == "failed"
    error = hang["attempts"][0]["exchanges"][0]["error"]
    assert error["code"] == "E_TIMEOUT"
    assert "timed out" in hang["reason"]
    assert hang["duration_ms"] < 2000
    # The hanging target did not hold up the parallel task.
    assert step(rec, "other")["status"] == "succeeded"
    assert step(rec, "other")["duration_ms"] < 400


def test_malformed_json_fails_extraction_with_reason(run_restmon, mock_api, tmp_path):
    flow = {"name": "bad", "tasks": {"get": http_task(
        mock_api.url + "/malformed/json", extract={"token": "$.token"})}}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 1
    reason = step(rec, "get")["reason"]
    assert "token" in reason and "JSON" in reason


def test_malformed_xml_fails_extraction_with_reason(run_restmon, mock_api, tmp_path):
    flow = {"name": "bad", "tasks": {"get": http_task(
        mock_api.url + "/malformed/xml", extract={"id": {"xpath": "/order/id"}})}}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 1
    reason = step(rec, "get")["reason"]
    assert "id" in reason and "XML" in reason.upper()


def test_garbage_response_is_recorded_without_breaking_the_run(run_restmon, mock_api, tmp_path):
    flow = {"name": "garbage", "tasks": {"get": http_task(
        mock_api.url + "/garbage", extract={"x": "$.x"})}}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 1
    get = step(rec, "get")
    assert get["status"] == "failed"
    assert "not JSON" in get["reason"]
    # Binary bodies are kept whole, as base64, and the record stays JSON.
    resp = get["attempts"][0]["exchanges"][0]["response"]
    assert resp["body_encoding"] == "base64"
    assert len(base64.b64decode(resp["body"])) == resp["size"] == 256


def test_connection_refused_is_a_transport_error(run_restmon, tmp_path):
    flow = {"name": "refused", "tasks": {"get": http_task("http://127.0.0.1:9/x")}}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 1
    err = step(rec, "get")["attempts"][0]["exchanges"][0]["error"]
    assert err["code"] == "E_HTTP"


def test_variable_not_extracted_upstream_is_rejected_before_running(run_restmon, mock_api, tmp_path):
    flow = {"name": "missing", "tasks": {
        "a": http_task(mock_api.url + "/health", on_success=["b"]),
        "b": http_task(mock_api.url + "/orders/{{vars.order_id}}")}}
    proc = run_restmon("run", write_flow(tmp_path, flow))
    assert proc.returncode == 2
    assert "tasks.b.request.url" in proc.stderr
    assert "order_id" in proc.stderr
    assert mock_api.stats()["requests"] == 0


@pytest.mark.parametrize("flow,expected", [
    ({"name": "c", "tasks": {"a": {"type": "http", "request": {"url": "http://x/"}, "on_success": ["b"]},
                             "b": {"type": "http", "request": {"url": "http://x/"}, "on_success": ["a"]}}},
     "cycle"),
    ({"name": "d", "tasks": {"a": {"type": "http", "request": {"url": "http://x/"}, "on_success": ["nope"]}}},
     "nope"),
    ({"name": "t", "tasks": {"a": {"type": "ftp", "request": {"url": "http://x/"}}}}, "ftp"),
    ({"name": "s", "tasks": {"a": {"type": "slack", "request": {"url": "http://x/"}}}}, "slack"),
    ({"name": "u", "tasks": {"a": {"type": "http", "request": {"url": "http://x/"}, "retires": {}}}}, "retires"),
    ({"name": "m", "tasks": {"a": {"type": "http", "request": {}}}}, "url"),
])
def test_validate_rejects_bad_definitions_naming_the_problem(run_restmon, tmp_path, flow, expected):
    path = write_flow(tmp_path, flow)
    for cmd in ("validate", "run"):
        proc = run_restmon(cmd, path)
        assert proc.returncode == 2, (cmd, proc.stdout, proc.stderr)
        assert expected in proc.stderr


def test_validate_accepts_the_examples(run_restmon):
    for name in ("order-transaction.json", "flaky.json", "parallel.json"):
        proc = run_restmon("validate", str(REPO / "examples" / name))
        assert proc.returncode == 0, proc.stderr
        assert "valid" in proc.stdout


def test_malformed_workflow_json_names_line_and_column(run_restmon, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",\n "tasks": {]\n}')
    proc = run_restmon("validate", str(path))
    assert proc.returncode == 2
    assert "broken.json:2:" in proc.stderr


def test_dry_run_sends_zero_requests_and_shows_variables(run_restmon, mock_api, secrets_file):
    mock_api.reset()
    proc, rec = run_json(run_restmon, *order_args(mock_api, secrets_file), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert rec["dry_run"] is True
    assert mock_api.stats()["requests"] == 0
    assert rec["vars"]["token"] == "dry-run-token"
    assert "order_id" in rec["vars"]


def test_secret_never_appears_in_any_output(run_restmon, mock_api, secrets_file, tmp_path):
    secret = "s3cr3t-Pa$$/w0rd+x"
    flow = {"name": "leak", "tasks": {
        "echo": http_task(mock_api.url + "/echo", extract={"seen": "$.body"}),
        "basic": http_task(mock_api.url + "/echo")}}
    t = flow["tasks"]["echo"]["request"]
    t.update({"method": "POST", "json": {"password": "{{secrets.pw}}"},
              "headers": {"X-Token": "{{secrets.pw}}"}, "query": {"p": "{{secrets.pw}}"}})
    flow["tasks"]["basic"]["request"]["auth"] = {"type": "basic", "username": "me", "password": "{{secrets.pw}}"}
    junit = tmp_path / "junit.xml"
    proc = run_restmon("run", write_flow(tmp_path, flow), "--json", "--junit", junit,
                       "--secret-env", "pw=PW_VALUE", "--log-level", "debug", "-v",
                       env={"PW_VALUE": secret})
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert rec["status"] == "succeeded"
    assert mock_api.stats()["requests"] == 2
    # No output holds the value, nor its encodings (test_secret_reaches_the_server
    # shows the server did get it).
    forms = [secret, urllib.parse.quote(secret, safe=""), base64.b64encode(secret.encode()).decode(),
             base64.b64encode(b"me:" + secret.encode()).decode(), json.dumps(secret)[1:-1]]
    outputs = {"stdout": proc.stdout, "stderr": proc.stderr, "junit": junit.read_text()}
    timeline = run_restmon("run", write_flow(tmp_path, flow), "-v", "--secret-env", "pw=PW_VALUE",
                           env={"PW_VALUE": secret})
    outputs["timeline"] = timeline.stdout + timeline.stderr
    for where, text in outputs.items():
        for form in forms:
            assert form not in text, "secret form %r found in %s" % (form, where)
    assert "{{secrets.pw}}" in proc.stdout


def test_secret_reaches_the_server(run_restmon, mock_api, tmp_path):
    secret = "another-S3cret"
    flow = {"name": "inject", "tasks": {"echo": http_task(mock_api.url + "/echo")}}
    flow["tasks"]["echo"]["request"].update(
        {"method": "POST", "json": {"password": "{{secrets.pw}}"}, "headers": {"X-Token": "{{secrets.pw}}"}})
    # Read what the server saw through a second, secret-free channel: a
    # Lua status rule that compares the echoed body with an input.
    flow["tasks"]["echo"]["status"] = {"lua": "local b = json.decode(response.body) "
                                              "if b.headers['x-token'] == inputs.expect and "
                                              "json.decode(b.body).password == inputs.expect then "
                                              "return 'succeeded', 'server saw the secret' end "
                                              "return 'failed', 'server did not see the secret'"}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow), "--secret-env", "pw=PW",
                         "--var", "expect=" + secret, env={"PW": secret})
    assert rec["status"] == "succeeded", step(rec, "echo")["reason"]


def test_junit_report_is_well_formed(run_restmon, mock_api, secrets_file, tmp_path):
    junit = tmp_path / "out.xml"
    proc = run_restmon("run", *order_args(mock_api, secrets_file, password="bad-password"), "--junit", junit)
    assert proc.returncode == 1
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert {c.get("name") for c in cases} >= {"login", "create_order"}
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["login"]


def test_repeat_with_concurrency_prints_a_summary(run_restmon, mock_api, secrets_file):
    proc = run_restmon("run", *order_args(mock_api, secrets_file), "--repeat", "20", "--concurrency", "5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "20" in proc.stdout
    assert "p99" in proc.stdout
    assert mock_api.stats()["orders"] == 20


def test_parallel_branches_join(run_restmon, mock_api):
    proc, rec = run_json(run_restmon, str(REPO / "examples" / "parallel.json"), "--var", "base_url=" + mock_api.url)
    assert proc.returncode == 0, json.dumps(rec, indent=1)[:3000]
    order = [s["task"] for s in rec["steps"]]
    assert order[-1] == "join_all"
    assert step(rec, "join_all")["status"] == "succeeded"


def test_usage_errors_exit_2(run_restmon):
    assert run_restmon("run").returncode == 2
    assert run_restmon("run", "x.json", "--repeat", "zero").returncode == 2
    assert run_restmon("frobnicate").returncode == 2
    proc = run_restmon("run", "/nonexistent/flow.json")
    assert proc.returncode == 2
    assert "/nonexistent/flow.json" in proc.stderr


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_signal_cancels_the_run_and_shuts_down_cleanly(restmon_bin, mock_api, tmp_path, signame):
    """A signal cancels what is in flight, prints the record and exits
    without leaks (the sanitized build reports any at exit)."""
    flow = {"name": "hang", "tasks": {
        "hang": http_task(mock_api.url + "/hang", timeout_ms=30000, on_success=["after"]),
        "after": http_task(mock_api.url + "/health")}}
    proc = subprocess.Popen([restmon_bin, "run", write_flow(tmp_path, flow), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, err
    assert "LeakSanitizer" not in err and "AddressSanitizer" not in err, err
    rec = json.loads(out)
    assert rec["status"] == "cancelled"
    hang = step(rec, "hang")
    assert hang["status"] == "cancelled"
    assert hang["attempts"][0]["exchanges"][0]["error"]["code"] == "E_CANCELED"
    assert step(rec, "after")["status"] == "skipped"
    assert "cancelling" in err


def test_json_log_lines(run_restmon, mock_api, tmp_path):
    flow = {"name": "logs", "tasks": {"get": http_task(mock_api.url + "/health")}}
    proc = run_restmon("run", write_flow(tmp_path, flow), "-q", "--log-level", "debug", "--log-format", "json")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert lines, "debug logging printed nothing"
    for entry in lines:
        assert {"ts", "level", "msg"} <= set(entry) or {"time", "level", "message"} <= set(entry), entry
