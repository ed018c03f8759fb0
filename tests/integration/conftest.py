"""Fixtures for the RestMon integration suite.

    restmon_bin       path of the restmon binary (env RESTMON_BIN, default
                      build/rel/restmon under the repository root)
    mock_api          a fresh examples/mock_api.py on a free port (.url,
                      .stats(), .reset(), .request(), .get_json(), ...)
    mock_api_factory  starts more mock APIs with extra arguments
    run_restmon       run_restmon(*args, env=None, timeout=60) ->
                      subprocess.CompletedProcess (text output, cwd = repo root)
    secrets_file      secrets_file({"API_PASSWORD": "..."}) -> path of a
                      NAME=value file in tmp_path
"""

import http.client
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MOCK_API = REPO_ROOT / "examples" / "mock_api.py"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
READY_PREFIX = "mock-api listening on "
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class Response:
    """One HTTP response from the mock API."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # {lower-case name: value}
        self.body = body                # bytes

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class MockApi:
    """A running examples/mock_api.py process."""

    def __init__(self, proc, port, stderr_path):
        self.proc = proc
        self.port = port
        self.host = "127.0.0.1"
        self.url = "http://127.0.0.1:%d" % port
        self.stderr_path = stderr_path
        self.returncode = None

    def request(self, method, path, body=None, headers=None, json_body=None, timeout=10.0):
        """One request on a new connection; returns a Response."""
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def get_json(self, path, **kw):
        return self.get(path, **kw).json()

    def stats(self):
        """{"requests": total, "by_path": {...}, "by_method": {...}, "orders": n}"""
        r = self.get("/__stats")
        assert r.status == 200, r
        return r.json()

    def reset(self):
        r = self.post("/__reset")
        assert r.status == 200, r

    def login(self, username="demo", password="demo-password"):
        """A bearer token for username."""
        r = self.post("/login", json_body={"username": username, "password": password})
        assert r.status == 200, r
        return r.json()["token"]

    def stderr(self):
        try:
            return Path(self.stderr_path).read_text(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
        """Stops the process; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.returncode = self.proc.returncode
        return self.returncode


def start_mock_api(*extra_args, stderr_path, port=0):
    """Starts examples/mock_api.py and waits for its ready line."""
    stderr_f = open(stderr_path, "wb")
    try:
        proc = subprocess.Popen(
            [PYTHON, str(MOCK_API), "--port", str(port), *extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_f,
            cwd=str(REPO_ROOT),
        )
    finally:
        stderr_f.close()
    deadline = time.monotonic() + READY_TIMEOUT_S
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            break
        ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 0.2))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
    line = buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if not line.startswith(READY_PREFIX):
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
        proc.stdout.close()
        raise RuntimeError("mock API did not start (first line %r); stderr:\n%s"
                           % (line, Path(stderr_path).read_text(errors="replace")))
    url = urllib.parse.urlsplit(line[len(READY_PREFIX):])
    assert url.hostname == "127.0.0.1", line
    return MockApi(proc, url.port, stderr_path)


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def restmon_bin():
    """Path of the restmon binary. RESTMON_BIN overrides the default
    build/rel/restmon; a missing binary fails the test (a suite that skips
    everything would pass without testing anything)."""
    explicit = os.environ.get("RESTMON_BIN")
    path = Path(explicit) if explicit else REPO_ROOT / "build" / "rel" / "restmon"
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("restmon binary %s is not an executable file; run make build" % path)
    return str(path)


@pytest.fixture
def mock_api_factory(tmp_path):
    """mock_api_factory(*extra_args) -> MockApi; all are stopped afterwards."""
    started = []

    def factory(*extra_args, port=0):
        stderr_path = tmp_path / ("mock-api-%d.stderr" % len(started))
        api = start_mock_api(*extra_args, stderr_path=stderr_path, port=port)
        started.append(api)
        return api

    yield factory
    for api in started:
        api.stop()


@pytest.fixture
def mock_api(mock_api_factory):
    """A fresh mock API on a free port (fresh state and counters)."""
    return mock_api_factory()


@pytest.fixture
def run_restmon(restmon_bin):
    """run_restmon(*args, env=None, timeout=60, input=None, cwd=None) ->
    CompletedProcess (text). env entries are added to the current
    environment; a value of None removes the variable."""

    def run(*args, env=None, timeout=60, input=None, cwd=None):
        full_env = dict(os.environ)
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = str(value)
        return subprocess.run(
            [restmon_bin, *[str(a) for a in args]],
            env=full_env, cwd=str(cwd or REPO_ROOT), input=input,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=timeout, check=False,
        )

    return run


@pytest.fixture
def secrets_file(tmp_path):
    """secrets_file({"API_PASSWORD": "demo-password"}, name="secrets.env") ->
    path of a NAME=value file (mode 0600) in tmp_path. A string is written
    as is."""
    counter = [0]

    def write(values, name=None):
        counter[0] += 1
        path = tmp_path / (name or "secrets-%d.env" % counter[0])
        if isinstance(values, str):
            text = values
        else:
            text = "".join("%s=%s\n" % (k, v) for k, v in values.items())
        path.write_text(text)
        path.chmod(0o600)
        return str(path)

    return write
