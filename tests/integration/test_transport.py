"""The HTTP transport against real servers on 127.0.0.1: TLS verification
and its opt-out, HTTP/2, the response-size cap, requests in flight at
once, connection reuse, and per-request timings.

TLS uses a self-signed certificate made with the openssl command for this
module; HTTP/2 uses nghttpd (Debian's nghttp2-server, installed by
scripts/install-deps)."""

import gzip
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from test_run import http_task, run_json, step, write_flow

READY_TIMEOUT_S = 10.0


def exchange(record, task, attempt=0, index=0):
    return step(record, task)["attempts"][attempt]["exchanges"][index]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc=None, timeout=READY_TIMEOUT_S):
    """True once something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """(cert_path, key_path): a self-signed certificate for 127.0.0.1."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.fail("the openssl command is missing; run scripts/install-deps")
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    return str(crt), str(key)


class QuietServer(http.server.ThreadingHTTPServer):
    # Clients that stop reading past their cap, or refuse the certificate,
    # reset connections on purpose: no tracebacks for those.
    def handle_error(self, request, client_address):
        pass


class ThreadedServer:
    """A Python HTTP server (optionally TLS) in a thread of the test."""

    def __init__(self, handler, ssl_context=None):
        self.httpd = QuietServer(("127.0.0.1", 0), handler)
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        scheme = "https" if ssl_context is not None else "http"
        self.url = "%s://127.0.0.1:%d" % (scheme, self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes of the test servers:
    /json          a small JSON body
    /big?n=N       N bytes, with Content-Length
    /stream?n=N    N bytes, chunked (no Content-Length)
    /gzip?n=N      N decoded bytes sent gzip-encoded, with Content-Length
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def send_body(self, body, content_type="application/octet-stream", headers=()):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        n = int(query[2:]) if query.startswith("n=") else 0
        if path == "/json":
            self.send_body(b'{"ok":true}', "application/json")
        elif path == "/big":
            self.send_body(b"x" * n)
        elif path == "/gzip":
            self.send_body(gzip.compress(b"x" * n), headers=[("Content-Encoding", "gzip")])
        elif path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 16384
            left = n
            while left > 0:
                part = chunk[:min(left, len(chunk))]
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                except OSError:
                    return      # the client gave up, as it should past its cap
                left -= len(part)
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_body(b'{"error":"not found"}', "application/json")


@pytest.fixture
def http_server():
    server = ThreadedServer(Handler)
    yield server
    server.stop()


@pytest.fixture
def https_server(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    server = ThreadedServer(Handler, ctx)
    yield server
    server.stop()


def one_task_flow(url, **extra):
    return {"name": "transport", "tasks": {"get": http_task(url, **extra)}}


# -- TLS ----------------------------------------------------------------------

def test_self_signed_certificate_is_refused_by_default(run_restmon, https_server, tmp_path):
    proc, rec = run_json(run_restmon, write_flow(tmp_path, one_task_flow(https_server.url + "/json")))
    assert proc.returncode == 1
    get = step(rec, "get")
    assert get["status"] == "failed"
    error = exchange(rec, "get")["error"]
    assert error["code"] == "E_HTTP"
    assert "certificate" in error["message"]
    assert "response" not in exchange(rec, "get")
    assert "certificate" in get["reason"]


def test_tls_verify_false_accepts_the_self_signed_certificate(run_restmon, https_server, tmp_path):
    task = http_task(https_server.url + "/json")
    task["request"]["tls_verify"] = False
    flow = {"name": "insecure", "tasks": {"get": task}}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 0, proc.stderr
    ex = exchange(rec, "get")
    assert "error" not in ex
    assert ex["response"]["status"] == 200
    assert ex["response"]["body"] == '{"ok":true}'
    assert ex["timings"]["tls_ms"] > 0
    assert ex["timings"]["connect_ms"] + ex["timings"]["tls_ms"] <= ex["timings"]["total_ms"]


def test_workflow_default_tls_verify_false_applies_to_tasks(run_restmon, https_server, tmp_path):
    flow = one_task_flow(https_server.url + "/json")
    flow["defaults"] = {"tls_verify": False}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 0, proc.stderr
    assert exchange(rec, "get")["response"]["status"] == 200


# -- HTTP/2 -------------------------------------------------------------------

@pytest.fixture
def h2_server(cert, tmp_path):
    """nghttpd serving tmp_path/htdocs over TLS (ALPN h2); yields the base URL."""
    nghttpd = shutil.which("nghttpd") or ("/usr/sbin/nghttpd" if os.path.exists("/usr/sbin/nghttpd") else None)
    if not nghttpd:
        pytest.fail("nghttpd is missing; run scripts/install-deps (package nghttp2-server)")
    htdocs = tmp_path / "htdocs"
    htdocs.mkdir()
    (htdocs / "data.json").write_text(json.dumps({"served_by": "nghttpd", "items": list(range(50))}))
    crt, key = cert
    for _ in range(3):      # the free port may be taken between the probe and the bind
        port = free_port()
        log = open(tmp_path / "nghttpd.log", "wb")
        proc = subprocess.Popen(
            [nghttpd, "-a", "127.0.0.1", "-d", str(htdocs), str(port), key, crt],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait_listening(port, proc):
            break
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    else:
        pytest.fail("nghttpd did not start:\n" + (tmp_path / "nghttpd.log").read_text(errors="replace"))
    yield "https://127.0.0.1:%d" % port
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize("version", ["2", None])
def test_http2_over_tls_is_recorded_as_version_2(run_restmon, h2_server, tmp_path, version):
    task = http_task(h2_server + "/data.json", extract={"n": "$.items[49]"})
    task["request"]["tls_verify"] = False
    if version:
        task["request"]["http_version"] = version
    proc, rec = run_json(run_restmon, write_flow(tmp_path, {"name": "h2", "tasks": {"get": task}}))
    assert proc.returncode == 0, proc.stderr
    resp = exchange(rec, "get")["response"]
    assert resp["status"] == 200
    assert resp["http_version"] == "2"
    assert json.loads(resp["body"])["served_by"] == "nghttpd"
    assert rec["vars"]["n"] == 49


def test_http_1_1_server_is_recorded_as_version_1_1(run_restmon, https_server, tmp_path):
    task = http_task(https_server.url + "/json")
    task["request"]["tls_verify"] = False
    proc, rec = run_json(run_restmon, write_flow(tmp_path, {"name": "h1", "tasks": {"get": task}}))
    assert proc.returncode == 0, proc.stderr
    assert exchange(rec, "get")["response"]["http_version"] == "1.1"


# -- response-size cap --------------------------------------------------------

@pytest.mark.parametrize("path", ["/big", "/stream", "/gzip"],
                         ids=["content-length", "chunked", "gzip-decoded"])
def test_response_over_max_response_bytes_fails_with_e_toobig(run_restmon, http_server, tmp_path, path):
    task = http_task(http_server.url + path + "?n=200000")
    task["request"]["max_response_bytes"] = 50000
    proc, rec = run_json(run_restmon, write_flow(tmp_path, {"name": "cap", "tasks": {"get": task}}))
    assert proc.returncode == 1
    get = step(rec, "get")
    assert get["status"] == "failed"
    error = exchange(rec, "get")["error"]
    assert error["code"] == "E_TOOBIG", error
    # The reason names the field and its limit, whichever way the body came.
    assert "max_response_bytes (50000 bytes)" in error["message"]
    assert "max_response_bytes (50000 bytes)" in get["reason"]
    assert "response" not in exchange(rec, "get")


def test_response_within_max_response_bytes_succeeds(run_restmon, http_server, tmp_path):
    task = http_task(http_server.url + "/stream?n=50000")
    task["request"]["max_response_bytes"] = 50000
    proc, rec = run_json(run_restmon, write_flow(tmp_path, {"name": "cap", "tasks": {"get": task}}))
    assert proc.returncode == 0, proc.stderr
    assert exchange(rec, "get")["response"]["size"] == 50000


# -- many in flight -----------------------------------------------------------

def test_parallel_requests_run_concurrently(run_restmon, mock_api, tmp_path):
    n, ms = 8, 300
    tasks = {"t%d" % i: http_task(mock_api.url + "/slow?ms=%d" % ms) for i in range(n)}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, {"name": "fan", "tasks": tasks}))
    assert proc.returncode == 0, proc.stderr
    assert rec["summary"]["succeeded"] == n
    assert rec["duration_ms"] < 1500, "8 x 300 ms took %.0f ms" % rec["duration_ms"]
    for name in tasks:
        assert step(rec, name)["duration_ms"] >= ms
    assert mock_api.stats()["by_path"]["/slow"] == n


def test_slow_request_does_not_delay_a_fast_parallel_one(run_restmon, mock_api, tmp_path):
    flow = {"name": "mixed", "tasks": {
        "slow": http_task(mock_api.url + "/slow?ms=800"),
        "fast": http_task(mock_api.url + "/slow?ms=10")}}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 0, proc.stderr
    assert step(rec, "slow")["duration_ms"] >= 800
    assert step(rec, "fast")["duration_ms"] < 500


# -- connection reuse ---------------------------------------------------------

def connection_stats(mock_api):
    return mock_api.get_json("/__stats?connections=1")


def test_sequential_requests_to_one_host_share_one_connection(run_restmon, mock_api, tmp_path):
    names = ["a", "b", "c", "d"]
    tasks = {}
    for i, name in enumerate(names):
        tasks[name] = http_task(mock_api.url + "/health")
        if i + 1 < len(names):
            tasks[name]["on_success"] = [names[i + 1]]
    proc, rec = run_json(run_restmon, write_flow(tmp_path, {"name": "seq", "tasks": tasks}))
    assert proc.returncode == 0, proc.stderr
    stats = connection_stats(mock_api)
    assert stats["requests"] == 4
    assert stats["connections"] == 1
    # A reused connection needs no new connect.
    for name in names[1:]:
        assert exchange(rec, name)["timings"]["connect_ms"] == 0


def test_parallel_requests_open_their_own_connections(run_restmon, mock_api, tmp_path):
    tasks = {"p%d" % i: http_task(mock_api.url + "/slow?ms=200") for i in range(3)}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, {"name": "par", "tasks": tasks}))
    assert proc.returncode == 0, proc.stderr
    assert connection_stats(mock_api)["connections"] == 3


# -- timings ------------------------------------------------------------------

def check_timings(t):
    for key in ("dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "total_ms"):
        assert isinstance(t[key], (int, float)) and t[key] >= 0, (key, t)
    # Each phase is a duration; one after the other they end at the first
    # byte, so together they fit in the total (up to float rounding).
    phases = t["dns_ms"] + t["connect_ms"] + t["tls_ms"] + t["first_byte_ms"]
    assert phases <= t["total_ms"] + 1e-6, t
    assert t["first_byte_ms"] <= t["total_ms"], t


def test_timings_are_present_and_ordered(run_restmon, mock_api, tmp_path):
    flow = one_task_flow(mock_api.url + "/slow?ms=200")
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 0, proc.stderr
    t = exchange(rec, "get")["timings"]
    check_timings(t)
    assert t["connect_ms"] > 0
    assert t["tls_ms"] == 0             # cleartext
    # The server waits before it answers: that wait is time to first byte.
    assert 200 <= t["first_byte_ms"] < 2000, t
    assert t["total_ms"] <= step(rec, "get")["duration_ms"] + 0.01


def test_tls_timings_are_ordered(run_restmon, https_server, tmp_path):
    task = http_task(https_server.url + "/big?n=100000")
    task["request"]["tls_verify"] = False
    proc, rec = run_json(run_restmon, write_flow(tmp_path, {"name": "t", "tasks": {"get": task}}))
    assert proc.returncode == 0, proc.stderr
    t = exchange(rec, "get")["timings"]
    check_timings(t)
    assert t["tls_ms"] > 0 and t["connect_ms"] > 0


def test_reused_connection_timings_do_not_count_the_lookup_twice(run_restmon, mock_api, tmp_path):
    # HEAD answers end right after their first byte, so a wait for the
    # first byte measured from 0 instead of from the end of the lookup
    # makes the phases add up to more than the total.
    names = ["h%d" % i for i in range(6)]
    tasks = {}
    for i, name in enumerate(names):
        tasks[name] = http_task(mock_api.url + "/health")
        tasks[name]["request"]["method"] = "HEAD"
        if i + 1 < len(names):
            tasks[name]["on_success"] = [names[i + 1]]
    proc, rec = run_json(run_restmon, write_flow(tmp_path, {"name": "head", "tasks": tasks}))
    assert proc.returncode == 0, proc.stderr
    assert connection_stats(mock_api)["connections"] == 1
    for name in names:
        check_timings(exchange(rec, name)["timings"])
