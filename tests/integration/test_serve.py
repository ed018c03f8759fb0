"""`restmon serve`: the real server on an ephemeral port, with a temporary
configuration and store (SQLite, and PostgreSQL when RESTMON_TEST_PG is
set): health, readiness, metrics, login sessions, the run routes, and a
clean SIGTERM shutdown with no sanitizer report."""

import http.client
import json
import os
import re
import select
import signal
import subprocess
import time

import pytest

from test_durable import chain_flow, restmon, store_url  # noqa: F401  (fixture)
from test_run import write_flow

ADMIN_PW = "correct-horse-battery-staple-42"
START_TIMEOUT_S = 60


class Server:
    def __init__(self, proc, port, stderr_path):
        self.proc = proc
        self.port = port
        self.stderr_path = stderr_path
        self.token = None

    def request(self, method, path, body=None, token=None, headers=None, timeout=30):
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        if token:
            headers["Authorization"] = "Bearer " + token
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def api(self, method, path, body=None, token=None, **kw):
        status, headers, data = self.request(method, path, body, token, **kw)
        return status, json.loads(data)

    def login(self, username="admin", password=ADMIN_PW):
        status, env = self.api("POST", "/api/v1/auth/login", {"username": username, "password": password})
        assert status == 200, env
        return env["data"]["token"]

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("restmon serve did not stop within %d s" % timeout)


def write_config(tmp_path, db, extra=""):
    conf = tmp_path / "restmon.conf"
    conf.write_text("database = %s\nlisten = 127.0.0.1:0\nvault.key_file = %s\nweb.dir = %s\n"
                    "executor.lease_ms = 2000\nlog.level = info\n%s"
                    % (db, tmp_path / "master.key", tmp_path / "no-web", extra))
    return conf


def start_server(restmon_bin, tmp_path, db, env=None, extra_conf=""):
    conf = write_config(tmp_path, db, extra_conf)
    stderr_path = tmp_path / "serve.stderr"
    full_env = dict(os.environ, RESTMON_ADMIN_PASSWORD=ADMIN_PW, **(env or {}))
    full_env.pop("RESTMON_CONFIG", None)
    err = open(stderr_path, "wb")
    proc = subprocess.Popen([restmon_bin, "serve", "-c", str(conf)], stdout=subprocess.PIPE, stderr=err,
                            env=full_env, cwd=str(tmp_path))
    err.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    out = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out += chunk
            m = re.search(rb"^RestMon listening on https?://127\.0\.0\.1:(\d+)\n", out, re.M)
            if m:
                srv = Server(proc, int(m.group(1)), stderr_path)
                srv.stdout_start = out
                assert int(m.group(1)) > 0
                return srv
        elif proc.poll() is not None:
            break
    proc.kill()
    proc.wait()
    pytest.fail("restmon serve did not start: %r %r" % (out, open(stderr_path, "rb").read()[-3000:]))


@pytest.fixture
def server(restmon_bin, tmp_path, store_url):  # noqa: F811
    srv = start_server(restmon_bin, tmp_path, store_url)
    srv.store_url = store_url
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


def assert_clean_exit(srv):
    rc = srv.stop()
    err = srv.stderr()
    assert rc == 0, err[-3000:]
    assert b"Sanitizer" not in err and b"runtime error" not in err, err[-5000:]


PROTECTED = [
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/runs"),
    ("GET", "/api/v1/runs/x"),
    ("POST", "/api/v1/runs/x/cancel"),
    ("POST", "/api/v1/runs/x/rerun"),
    ("POST", "/api/v1/runs/x/resume"),
    ("POST", "/api/v1/runs/x/retry"),
    ("POST", "/api/v1/runs/x/annotations"),
    ("POST", "/api/v1/runs/x/acknowledge"),
]


def wait_status(srv, token, run_id, statuses, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, env = srv.api("GET", "/api/v1/runs/" + run_id, token=token)
        assert status == 200, env
        if env["data"]["status"] in statuses:
            return env["data"]
        time.sleep(0.2)
    pytest.fail("run %s did not reach %s" % (run_id, statuses))


def test_health_ready_metrics_and_clean_shutdown(server):
    status, _, body = server.request("GET", "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = server.request("GET", "/health/ready")
    assert status == 200 and json.loads(body)["status"] == "ready"
    status, headers, body = server.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    assert "restmon_runs_executing 0" in text and "restmon_executor_slots 16" in text
    assert "restmon_http_requests_total" in text
    promtool = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr
    assert_clean_exit(server)


def test_every_protected_route_needs_credentials(server):
    for method, path in PROTECTED:
        status, headers, body = server.request(method, path, body="{}")
        env = json.loads(body)
        assert status == 401 and env["code"] == "40100", (method, path, body)
        assert "www-authenticate" in headers
    status, env = server.api("GET", "/api/v1/runs", token="A" * 43)
    assert status == 401
    status, env = server.api("GET", "/api/v1/runs", headers={"Cookie": "restmon_session=" + "B" * 43})
    assert status == 401


def test_login_session_cookie_logout_and_bad_bodies(server):
    status, headers, body = server.request("POST", "/api/v1/auth/login",
                                           {"username": "admin", "password": ADMIN_PW})
    env = json.loads(body)
    assert status == 200 and env["code"] == "00000", env
    token = env["data"]["token"]
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and cookie.startswith("restmon_session=" + token)
    status, env = server.api("GET", "/api/v1/me", token=token)
    assert status == 200 and env["data"]["username"] == "admin" and env["data"]["role"] == "admin"
    # The cookie works too.
    status, env = server.api("GET", "/api/v1/me", headers={"Cookie": "restmon_session=" + token})
    assert status == 200

    status, _, body = server.request("POST", "/api/v1/auth/login", "{not json")
    assert status == 400 and json.loads(body)["code"] == "40001"
    status, env = server.api("POST", "/api/v1/auth/login", {"username": "admin", "password": "x", "extra": 1})
    assert status == 422 and env["code"] == "42201" and env["error"]["details"][0]["path"] == "$.extra"
    status, env = server.api("POST", "/api/v1/auth/login", {"username": "admin"})
    assert status == 422 and env["error"]["details"][0]["path"] == "$.password"
    status, env = server.api("POST", "/api/v1/auth/login", {"username": "admin", "password": "wrong-password"})
    assert status == 401 and env["code"] == "40100"
    status, env = server.api("POST", "/api/v1/auth/login", {"username": "nobody", "password": "wrong-password"})
    assert status == 401

    # Cookie-authenticated POSTs from another origin are refused (CSRF).
    cookie_hdr = {"Cookie": "restmon_session=" + token}
    status, env = server.api("POST", "/api/v1/auth/logout",
                             headers=dict(cookie_hdr, Origin="http://evil.example"))
    assert status == 403, env
    status, env = server.api("GET", "/api/v1/me", headers=dict(cookie_hdr, Origin="http://evil.example"))
    assert status == 200

    status, env = server.api("POST", "/api/v1/auth/logout", token=token)
    assert status == 200
    status, env = server.api("GET", "/api/v1/me", token=token)
    assert status == 401
    assert_clean_exit(server)


def test_change_own_password(server):
    token = server.login()
    bad = {"current_password": "nope-nope-nope", "new_password": "another-good-one-17"}
    status, env = server.api("POST", "/api/v1/me/password", bad, token=token)
    assert status == 403, env
    status, env = server.api("POST", "/api/v1/me/password", {"current_password": ADMIN_PW, "new_password": "short"},
                             token=token)
    assert status == 422 and env["error"]["details"][0]["path"] == "$.new_password"
    status, env = server.api("POST", "/api/v1/me/password", {"current_password": ADMIN_PW, "extra": 1}, token=token)
    assert status == 422 and env["code"] == "42201"
    good = {"current_password": ADMIN_PW, "new_password": "another-good-one-17"}
    status, env = server.api("POST", "/api/v1/me/password", good, token=token)
    assert status == 200 and env["data"]["changed"] is True, env
    status, _ = server.api("POST", "/api/v1/auth/login", {"username": "admin", "password": ADMIN_PW})
    assert status == 401
    server.login(password="another-good-one-17")
    status, env = server.api("GET", "/api/v1/me", token=token)
    assert status == 200 and env["data"]["auth"] == "session" and env["data"]["role"] == "admin"
    assert_clean_exit(server)
    assert b"another-good-one-17" not in server.stderr()


def test_tls_listener_with_client_certificates(restmon_bin, tmp_path):
    """tls.cert_file/key_file serve HTTPS (the session cookie is Secure);
    tls.client_ca_file makes a client certificate signed by that CA
    mandatory."""
    import ssl
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    srv = start_server(restmon_bin, tmp_path, "sqlite:%s" % (tmp_path / "tls.db"),
                       extra_conf="tls.cert_file = %s\ntls.key_file = %s\ntls.client_ca_file = %s\n" % (cert, key, cert))
    try:
        assert b"listening on https://" in srv.stdout_start
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.load_cert_chain(str(cert), str(key))
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=30)
        conn.request("POST", "/api/v1/auth/login", body=json.dumps({"username": "admin", "password": ADMIN_PW}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        assert "Secure" in resp.getheader("Set-Cookie") and "HttpOnly" in resp.getheader("Set-Cookie")
        conn.close()
        bare = ssl.create_default_context(cafile=str(cert))  # no client certificate
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
            c2 = http.client.HTTPSConnection("127.0.0.1", srv.port, context=bare, timeout=30)
            c2.request("GET", "/health")
            c2.getresponse().read()
        try:  # plain HTTP on the TLS port: no answer, or an error status, never the health answer
            c3 = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            c3.request("GET", "/health")
            r3 = c3.getresponse()
            assert r3.status >= 400 and b'"ok"' not in r3.read()
        except (http.client.HTTPException, ConnectionError, OSError):
            pass
    finally:
        assert_clean_exit(srv)


def test_repeated_failed_logins_lock_the_user(server):
    for _ in range(5):
        status, env = server.api("POST", "/api/v1/auth/login", {"username": "admin", "password": "bad-guess-000"})
        assert status == 401, env
    status, headers, body = server.request("POST", "/api/v1/auth/login",
                                           {"username": "admin", "password": ADMIN_PW})
    assert status == 429 and json.loads(body)["code"] == "42900"
    assert int(headers["retry-after"]) > 0


def test_queued_run_is_executed_and_operated_via_the_api(server, restmon_bin, mock_api, tmp_path):
    token = server.login()
    db = ["--database", server.store_url]
    ok_flow = write_flow(tmp_path, chain_flow(mock_api, steps=2, ms=10))
    queued = restmon(restmon_bin, "runs", "queue", ok_flow, "--json", *db)
    assert queued.returncode == 0, queued.stderr
    run_id = json.loads(queued.stdout)[0]["run_id"]
    run = wait_status(server, token, run_id, ("succeeded",))
    assert [s["task"] for s in run["steps"]] == ["s1", "s2"]

    status, env = server.api("GET", "/api/v1/runs?status=succeeded&http_status=200", token=token)
    assert status == 200 and run_id in [r["run_id"] for r in env["data"]["items"]]
    assert env["data"]["total"] >= 1 and env["data"]["page"] == 1
    status, env = server.api("GET", "/api/v1/runs?var.slept1=10&page_size=5", token=token)
    assert status == 200 and [r["run_id"] for r in env["data"]["items"]] == [run_id]
    status, env = server.api("GET", "/api/v1/runs?var.slept1=11", token=token)
    assert status == 200 and env["data"]["total"] == 0
    status, env = server.api("GET", "/api/v1/runs?bogus=1", token=token)
    assert status == 400 and env["code"] == "40002"
    status, env = server.api("GET", "/api/v1/runs?page=0", token=token)
    assert status == 400
    status, env = server.api("GET", "/api/v1/runs/no-such-run", token=token)
    assert status == 404 and env["code"] == "40400"

    # A run that fails at its second step: annotate, acknowledge, rerun.
    flow = chain_flow(mock_api, steps=2, ms=10)
    flow["tasks"]["s2"]["assert"] = [{"jsonpath": "$.slept_ms", "op": "eq", "value": 11}]
    bad_flow = write_flow(tmp_path, flow)
    queued = restmon(restmon_bin, "runs", "queue", bad_flow, "--json", *db)
    failed_id = json.loads(queued.stdout)[0]["run_id"]
    wait_status(server, token, failed_id, ("failed",))

    status, env = server.api("POST", "/api/v1/runs/%s/annotations" % failed_id, {"text": "looking"}, token=token)
    assert status == 201 and env["data"]["kind"] == "note" and env["data"]["author"] == "admin", env
    status, env = server.api("POST", "/api/v1/runs/%s/annotations" % failed_id, {"txt": "x"}, token=token)
    assert status == 422 and env["code"] == "42201"
    status, env = server.api("POST", "/api/v1/runs/%s/annotations" % failed_id, {}, token=token)
    assert status == 422 and env["error"]["details"][0]["path"] == "$.text"
    status, _, body = server.request("POST", "/api/v1/runs/%s/annotations" % failed_id, "{oops", token=token)
    assert status == 400 and json.loads(body)["code"] == "40001"
    status, env = server.api("POST", "/api/v1/runs/%s/acknowledge" % failed_id, {"text": "known"}, token=token)
    assert status == 201 and env["data"]["kind"] == "ack"
    status, env = server.api("POST", "/api/v1/runs/%s/acknowledge" % failed_id, token=token)
    assert status == 201
    status, env = server.api("GET", "/api/v1/runs/" + failed_id, token=token)
    notes = [(a["kind"], a["author"], a["text"]) for a in env["data"]["annotations"]]
    assert ("note", "admin", "looking") in notes and ("ack", "admin", "known") in notes

    # Steps and logs: the story of the failed run, decision by decision.
    status, env = server.api("GET", "/api/v1/runs/%s/steps" % failed_id, token=token)
    assert status == 200 and [s["task"] for s in env["data"]["items"]] == ["s1", "s2"]
    assert env["data"]["items"][1]["status"] == "failed"
    status, env = server.api("GET", "/api/v1/runs/%s/logs" % failed_id, token=token)
    assert status == 200, env
    lines = env["data"]["items"]
    kinds = [(l.get("task"), l["kind"]) for l in lines]
    assert ("s1", "exchange") in kinds and ("s2", "assertion") in kinds and (None, "run") == kinds[-1]
    failed_assert = [l for l in lines if l["kind"] == "assertion" and l["task"] == "s2"]
    assert failed_assert[0]["level"] == "warn" and "11" in failed_assert[0]["message"], failed_assert
    decisions = [l["message"] for l in lines if l["kind"] == "decision"]
    assert decisions[0].startswith("step succeeded") and decisions[1].startswith("step failed"), decisions
    status, env = server.api("GET", "/api/v1/runs/no-such-run/logs", token=token)
    assert status == 404

    # Run and step metrics of this process.
    _, _, body = server.request("GET", "/metrics")
    text = body.decode()
    assert re.search(r'restmon_runs_finished_total\{status="succeeded"\} [1-9]', text), text
    assert re.search(r'restmon_runs_finished_total\{status="failed"\} [1-9]', text)
    assert re.search(r'restmon_step_duration_seconds_count\{status="failed"\} [1-9]', text)
    assert 'restmon_runs{status="queued"}' in text
    promtool = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr

    status, env = server.api("POST", "/api/v1/runs/%s/rerun" % failed_id, token=token)
    assert status == 201 and env["data"]["rerun_of"] == failed_id, env
    rerun_id = env["data"]["run_id"]
    wait_status(server, token, rerun_id, ("failed",))
    status, env = server.api("POST", "/api/v1/runs/%s/resume" % failed_id, token=token)
    assert status == 200 and env["data"]["status"] == "queued", env
    wait_status(server, token, failed_id, ("failed",))
    status, env = server.api("POST", "/api/v1/runs/%s/retry" % failed_id, {}, token=token)
    assert status == 200, env
    wait_status(server, token, failed_id, ("failed",))

    # Cancel: a finished run is a conflict; a run queued with a slow
    # workflow is cancelled (queued or running when the request lands).
    status, env = server.api("POST", "/api/v1/runs/%s/cancel" % run_id, token=token)
    assert status == 409 and env["code"] == "40900"
    slow = write_flow(tmp_path, chain_flow(mock_api, steps=4, ms=1500))
    queued = restmon(restmon_bin, "runs", "queue", slow, "--json", *db)
    slow_id = json.loads(queued.stdout)[0]["run_id"]
    status, env = server.api("POST", "/api/v1/runs/%s/cancel" % slow_id, token=token)
    assert status == 200, env
    wait_status(server, token, slow_id, ("cancelled",))
    status, env = server.api("POST", "/api/v1/runs/%s/cancel" % slow_id, {"x": 1}, token=token)
    assert status == 422

    assert_clean_exit(server)
    if server.store_url.startswith("sqlite:"):
        path = server.store_url[len("sqlite:"):]
        for f in (path, path + "-wal", path + "-shm"):
            if os.path.exists(f):
                with open(f, "rb") as fh:
                    data = fh.read()
                assert ADMIN_PW.encode() not in data
                assert token.encode() not in data
    assert ADMIN_PW.encode() not in server.stderr()


def test_generated_admin_password_is_printed_once(restmon_bin, tmp_path):
    conf = write_config(tmp_path, "sqlite:%s" % (tmp_path / "gen.db"))
    env = dict(os.environ)
    env.pop("RESTMON_ADMIN_PASSWORD", None)
    proc = subprocess.Popen([restmon_bin, "serve", "-c", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=str(tmp_path))
    pw_line = proc.stdout.readline().decode()
    listen = proc.stdout.readline().decode()
    m = re.match(r"admin user created; admin password: (\S{20})$", pw_line.strip())
    assert m, pw_line
    port = int(re.search(r":(\d+)$", listen.strip()).group(1))
    srv = Server(proc, port, None)
    assert srv.login(password=m.group(1))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert m.group(1).encode() not in err and m.group(1).encode() not in out
    assert b"Sanitizer" not in err
    with open(tmp_path / "gen.db", "rb") as fh:
        assert m.group(1).encode() not in fh.read()
    # A second start does not create another admin or print a password.
    srv2 = start_server(restmon_bin, tmp_path, "sqlite:%s" % (tmp_path / "gen.db"))
    assert b"admin password" not in srv2.stdout_start
    assert_clean_exit(srv2)


def test_check_config_good_and_bad(restmon_bin, tmp_path):
    conf = write_config(tmp_path, "sqlite:%s" % (tmp_path / "c.db"))
    proc = restmon(restmon_bin, "check-config", "-c", str(conf))
    assert proc.returncode == 0, proc.stderr
    assert "listen = 127.0.0.1:0 (%s:2)" % conf in proc.stdout
    assert "auth.session_ttl_s = 43200 (default)" in proc.stdout
    proc = restmon(restmon_bin, "check-config", "-c", str(conf), env={"RESTMON_AUTH_SESSION_TTL_S": "60"})
    assert "auth.session_ttl_s = 60 (environment (RESTMON_AUTH_SESSION_TTL_S))" in proc.stdout

    bad = tmp_path / "bad.conf"
    bad.write_text("listen = localhost\nexecutor.concurrency = many\ntls.cert_file = /no/such/cert.pem\n"
                   "retention.failed_days = -1\n")
    proc = restmon(restmon_bin, "check-config", "-c", str(bad))
    assert proc.returncode == 2
    for key in ("listen", "executor.concurrency", "tls.cert_file", "tls.key_file", "retention.failed_days"):
        assert key in proc.stderr, (key, proc.stderr)
    unknown = tmp_path / "unknown.conf"
    unknown.write_text("no.such.key = 1\n")
    proc = restmon(restmon_bin, "check-config", "-c", str(unknown))
    assert proc.returncode == 2 and "unknown setting" in proc.stderr
    # serve refuses a bad configuration the same way.
    proc = restmon(restmon_bin, "serve", "-c", str(bad), timeout=30)
    assert proc.returncode == 2 and "listen" in proc.stderr
