"""The demo/test API (examples/mock_api.py) itself."""

import http.client
import json
import signal
import socket
import threading
import time
import xml.etree.ElementTree as ET

import pytest

DEMO = {"username": "demo", "password": "demo-password"}


def create_order(api, token, sku="A-1", qty=2, key=None):
    headers = {"Authorization": "Bearer " + token}
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.post("/orders", json_body={"sku": sku, "qty": qty}, headers=headers)


def open_hang(api):
    """A raw connection with GET /hang sent and nothing answered."""
    s = socket.create_connection((api.host, api.port), timeout=5)
    s.sendall(b"GET /hang HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return s


def wait_for(predicate, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# -- process ----------------------------------------------------------------

def test_ready_line_and_port_file(mock_api_factory, tmp_path):
    port_file = tmp_path / "port"
    api = mock_api_factory("--port-file", str(port_file))
    assert api.url == "http://127.0.0.1:%d" % api.port
    assert int(port_file.read_text().strip()) == api.port
    assert api.get("/health").json() == {"status": "ok"}


def test_binds_loopback_only(mock_api):
    assert mock_api.url.startswith("http://127.0.0.1:")
    with open("/proc/net/tcp") as f:
        lines = f.read().splitlines()[1:]
    port_hex = ":%04X" % mock_api.port
    listening = [l.split() for l in lines if l.split()[1].endswith(port_hex) and l.split()[3] == "0A"]
    assert listening, "no listening socket on port %d" % mock_api.port
    for fields in listening:
        assert fields[1] == "0100007F" + port_hex, fields


def test_quiet_by_default(mock_api):
    mock_api.get("/health")
    mock_api.get("/nope")
    assert mock_api.stop() == 0
    assert mock_api.stderr() == ""


def test_verbose_logs_requests(mock_api_factory):
    api = mock_api_factory("--verbose")
    api.get("/health")
    api.stop()
    assert "/health" in api.stderr()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown(mock_api, sig):
    assert mock_api.get("/health").status == 200
    t0 = time.monotonic()
    assert mock_api.stop(sig) == 0
    assert time.monotonic() - t0 < 3
    assert "Traceback" not in mock_api.stderr()


def test_shutdown_with_hanging_and_slow_requests(mock_api):
    hang = open_hang(mock_api)
    slow_result = {}

    def slow():
        try:
            slow_result["r"] = mock_api.get("/slow?ms=60000", timeout=30)
        except Exception as e:  # the connection is dropped on shutdown
            slow_result["e"] = e

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    assert wait_for(lambda: mock_api.stats()["by_path"].get("/slow") == 1)
    t0 = time.monotonic()
    assert mock_api.stop() == 0
    assert time.monotonic() - t0 < 3
    t.join(10)
    assert not t.is_alive()
    hang.close()


# -- login --------------------------------------------------------------------

def test_login_ok(mock_api):
    r = mock_api.post("/login", json_body=DEMO)
    assert r.status == 200
    assert r.header("Content-Type").startswith("application/json")
    body = r.json()
    assert isinstance(body["token"], str) and len(body["token"]) >= 16
    assert body["expires_in"] == 3600
    assert mock_api.post("/login", json_body=DEMO).json()["token"] != body["token"]


def test_login_wrong_password(mock_api):
    r = mock_api.post("/login", json_body={"username": "demo", "password": "nope"})
    assert r.status == 401
    assert r.json() == {"error": "invalid credentials"}
    r = mock_api.post("/login", json_body={"username": "nobody", "password": "demo-password"})
    assert r.status == 401


def test_login_malformed(mock_api):
    r = mock_api.post("/login", body="{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert "error" in r.json()
    assert mock_api.post("/login", json_body=["demo"]).status == 400
    assert mock_api.post("/login", json_body={"username": "demo"}).status == 400


def test_login_form_encoded(mock_api):
    r = mock_api.post("/login", body="username=demo&password=demo-password",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200 and r.json()["token"]


def test_extra_user(mock_api_factory):
    api = mock_api_factory("--user", "alice:s3cret:with:colons")
    assert api.post("/login", json_body={"username": "alice", "password": "s3cret:with:colons"}).status == 200
    assert api.post("/login", json_body=DEMO).status == 200


def test_login_get_not_allowed(mock_api):
    r = mock_api.get("/login")
    assert r.status == 405
    assert "POST" in r.header("Allow")


# -- orders -------------------------------------------------------------------

def test_create_order_requires_token(mock_api):
    r = mock_api.post("/orders", json_body={"sku": "A-1", "qty": 1})
    assert r.status == 401
    assert r.header("WWW-Authenticate").startswith("Bearer")
    r = create_order(mock_api, "not-a-token")
    assert r.status == 401
    r = mock_api.post("/orders", json_body={"sku": "A-1", "qty": 1},
                      headers={"Authorization": "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk"})
    assert r.status == 401
    assert mock_api.stats()["orders"] == 0


def test_create_and_read_order(mock_api):
    token = mock_api.login()
    r = create_order(mock_api, token, sku="SKU-42", qty=3)
    assert r.status == 201
    order = r.json()
    assert order["id"] == "ord-1"
    assert order["sku"] == "SKU-42" and order["qty"] == 3 and order["status"] == "created"
    assert order["created_at"].endswith("Z") and "T" in order["created_at"]
    assert r.header("Location") == "/orders/ord-1"

    assert create_order(mock_api, token).json()["id"] == "ord-2"

    r = mock_api.get("/orders/ord-1")
    assert r.status == 200
    assert r.header("Content-Type").startswith("application/json")
    assert r.json() == order

    items = mock_api.get_json("/orders")["items"]
    assert [o["id"] for o in items] == ["ord-1", "ord-2"]


def test_order_as_xml(mock_api):
    token = mock_api.login()
    order = create_order(mock_api, token, sku="X<&>", qty=5).json()
    for path, headers in (("/orders/ord-1", {"Accept": "application/xml"}),
                          ("/orders/ord-1.xml", {})):
        r = mock_api.get(path, headers=headers)
        assert r.status == 200
        assert r.header("Content-Type").startswith("application/xml")
        root = ET.fromstring(r.body)
        assert root.tag == "order"
        assert root.findtext("id") == "ord-1"
        assert root.findtext("sku") == "X<&>"
        assert root.findtext("qty") == "5"
        assert root.findtext("status") == "created"
        assert root.findtext("created_at") == order["created_at"]
    root = ET.fromstring(mock_api.get("/orders", headers={"Accept": "application/xml"}).body)
    assert root.tag == "orders" and [o.findtext("id") for o in root] == ["ord-1"]


def test_unknown_order(mock_api):
    r = mock_api.get("/orders/ord-999")
    assert r.status == 404
    assert "error" in r.json()
    r = mock_api.get("/orders/ord-999.xml")
    assert r.status == 404
    ET.fromstring(r.body)


def test_create_order_validation(mock_api):
    token = mock_api.login()
    auth = {"Authorization": "Bearer " + token}
    for bad in ({"sku": "", "qty": 1}, {"sku": "A", "qty": 0}, {"sku": "A", "qty": "2"},
                {"sku": "A", "qty": True}, {"qty": 1}, {"sku": 5, "qty": 1}):
        assert mock_api.post("/orders", json_body=bad, headers=auth).status == 400, bad
    r = mock_api.post("/orders", body="{broken", headers=auth)
    assert r.status == 400
    assert mock_api.stats()["orders"] == 0


def test_idempotency_key(mock_api):
    token = mock_api.login()
    first = create_order(mock_api, token, key="key-1")
    assert first.status == 201
    again = create_order(mock_api, token, key="key-1")
    assert again.status == 200
    assert again.json() == first.json()
    assert again.header("Location") == first.header("Location")
    assert again.header("Idempotent-Replayed") == "true"
    other = create_order(mock_api, token, key="key-2")
    assert other.status == 201 and other.json()["id"] == "ord-2"
    conflict = create_order(mock_api, token, sku="B-2", key="key-1")
    assert conflict.status == 422
    no_key = [create_order(mock_api, token).json()["id"] for _ in range(2)]
    assert no_key == ["ord-3", "ord-4"]
    assert len(mock_api.get_json("/orders")["items"]) == 4


def test_token_expiry(mock_api_factory):
    api = mock_api_factory("--token-ttl", "1")
    token = api.login()
    assert create_order(api, token).status == 201
    time.sleep(1.3)
    assert create_order(api, token).status == 401


# -- misbehaving endpoints ----------------------------------------------------

def test_flaky_default_fails_twice(mock_api):
    statuses = []
    for _ in range(4):
        r = mock_api.get("/flaky?key=k1")
        statuses.append(r.status)
        if r.status == 503:
            assert r.json()["attempt"] == len(statuses)
    assert statuses == [503, 503, 200, 200]
    assert mock_api.get_json("/flaky?key=k1") == {"ok": True, "attempt": 5}


def test_flaky_per_key_and_fail_param(mock_api):
    assert mock_api.get("/flaky?key=a&fail=0").json() == {"ok": True, "attempt": 1}
    assert [mock_api.get("/flaky?key=b&fail=1").status for _ in range(2)] == [503, 200]
    assert mock_api.get("/flaky?key=c").status == 503
    assert mock_api.get("/flaky?key=b&fail=1").json()["attempt"] == 3
    mock_api.reset()
    assert mock_api.get("/flaky?key=b&fail=1").status == 503


def test_slow(mock_api):
    t0 = time.monotonic()
    r = mock_api.get("/slow?ms=300")
    elapsed = time.monotonic() - t0
    assert r.status == 200 and r.json() == {"slept_ms": 300}
    assert 0.28 <= elapsed < 3


def test_slow_requests_run_concurrently(mock_api):
    results = []

    def one():
        results.append(mock_api.get("/slow?ms=500").status)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(6)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 6
    assert time.monotonic() - t0 < 2.0


def test_hang_does_not_block_others(mock_api):
    hangs = [open_hang(mock_api) for _ in range(3)]
    try:
        assert wait_for(lambda: mock_api.stats()["by_path"].get("/hang") == 3)
        t0 = time.monotonic()
        for _ in range(5):
            assert mock_api.get("/health", timeout=2).status == 200
        assert mock_api.post("/login", json_body=DEMO, timeout=2).status == 200
        assert time.monotonic() - t0 < 2
        for s in hangs:
            s.settimeout(0.3)
            with pytest.raises(socket.timeout):
                s.recv(1)
    finally:
        for s in hangs:
            s.close()
    # The server notices the clients gave up and is still healthy.
    assert mock_api.get("/health").status == 200


def test_hang_times_out_on_client(mock_api):
    conn = http.client.HTTPConnection(mock_api.host, mock_api.port, timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(socket.timeout):
        conn.request("GET", "/hang")
        conn.getresponse()
    conn.close()
    assert time.monotonic() - t0 < 2


def test_hang_max(mock_api_factory):
    api = mock_api_factory("--hang-max-s", "0.5")
    s = open_hang(api)
    s.settimeout(5)
    t0 = time.monotonic()
    assert s.recv(100) == b""       # closed without an answer
    assert time.monotonic() - t0 < 3
    s.close()


def test_malformed_json(mock_api):
    r = mock_api.get("/malformed/json")
    assert r.status == 200
    assert r.header("Content-Type").startswith("application/json")
    assert int(r.header("Content-Length")) == len(r.body) > 0
    with pytest.raises(ValueError):
        json.loads(r.body)


def test_malformed_xml(mock_api):
    r = mock_api.get("/malformed/xml")
    assert r.status == 200
    assert r.header("Content-Type").startswith("application/xml")
    with pytest.raises(ET.ParseError):
        ET.fromstring(r.body)


def test_garbage(mock_api):
    a = mock_api.get("/garbage")
    b = mock_api.get("/garbage")
    assert a.status == 200 and len(a.body) == 256
    assert a.header("Content-Type") == "application/octet-stream"
    assert a.body != b.body
    assert len(mock_api.get("/garbage?n=5000").body) == 5000


# -- helpers --------------------------------------------------------------------

def test_echo(mock_api):
    r = mock_api.post("/echo?x=1&y=two", json_body={"secret": "hunter2"},
                      headers={"X-Api-Key": "k-123", "Authorization": "Bearer abc"})
    assert r.status == 200
    e = r.json()
    assert e["method"] == "POST"
    assert e["path"] == "/echo"
    assert e["query"] == {"x": "1", "y": "two"}
    assert e["headers"]["x-api-key"] == "k-123"
    assert e["headers"]["authorization"] == "Bearer abc"
    assert e["headers"]["content-type"] == "application/json"
    assert json.loads(e["body"]) == {"secret": "hunter2"}
    assert e["json"] == {"secret": "hunter2"}

    for method in ("GET", "PUT", "PATCH", "DELETE"):
        e = mock_api.request(method, "/echo/sub/path").json()
        assert e["method"] == method and e["path"] == "/echo/sub/path" and e["body"] == ""


def test_echo_binary_body(mock_api):
    e = mock_api.post("/echo", body=b"\x00\xff\x10").json()
    assert e["body_base64"] == "AP8Q"
    assert e["json"] is None


def test_chunked_request_body(mock_api):
    conn = http.client.HTTPConnection(mock_api.host, mock_api.port, timeout=5)
    conn.request("POST", "/echo", body=iter([b"hel", b"lo"]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    e = json.loads(conn.getresponse().read())
    conn.close()
    assert e["body"] == "hello"


def test_not_found(mock_api):
    r = mock_api.get("/no/such/thing")
    assert r.status == 404
    assert r.json()["error"] == "not found"


def test_head(mock_api):
    r = mock_api.request("HEAD", "/health")
    assert r.status == 200 and r.body == b""
    assert int(r.header("Content-Length")) == len(b'{"status":"ok"}')


def test_keep_alive(mock_api):
    conn = http.client.HTTPConnection(mock_api.host, mock_api.port, timeout=5)
    try:
        conn.request("POST", "/login", body=json.dumps(DEMO), headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.version == 11
        assert r.getheader("Content-Length") is not None
        token = json.loads(r.read())["token"]
        sock = conn.sock
        paths = ["/health", "/orders", "/flaky?key=ka", "/malformed/json", "/garbage", "/nope", "/echo"]
        for path in paths:
            conn.request("GET", path, headers={"Authorization": "Bearer " + token})
            r = conn.getresponse()
            assert r.getheader("Content-Length") is not None, path
            r.read()
            assert conn.sock is sock, "connection was not kept alive after " + path
    finally:
        conn.close()
    assert mock_api.stats()["requests"] == 1 + len(paths)


def test_stats_count(mock_api):
    assert mock_api.stats()["requests"] == 0
    mock_api.get("/health")
    mock_api.get("/health")
    mock_api.post("/login", json_body=DEMO)
    mock_api.get("/orders/ord-1")
    mock_api.get("/flaky?key=z")
    mock_api.get("/missing")
    s = mock_api.stats()
    assert s["requests"] == 6
    assert s["by_path"] == {"/health": 2, "/login": 1, "/orders/ord-1": 1, "/flaky": 1, "/missing": 1}
    assert s["by_method"] == {"GET": 5, "POST": 1}
    # The stats endpoints themselves are never counted.
    for _ in range(3):
        mock_api.stats()
    mock_api.reset()
    assert mock_api.stats() == {"requests": 0, "by_path": {}, "by_method": {}, "orders": 0}


def test_reset_clears_state(mock_api):
    token = mock_api.login()
    create_order(mock_api, token, key="k")
    mock_api.get("/flaky?key=r")
    mock_api.reset()
    assert mock_api.get_json("/orders") == {"items": []}
    assert mock_api.get("/orders/ord-1").status == 404
    assert create_order(mock_api, token).status == 401      # tokens are state too
    token = mock_api.login()
    r = create_order(mock_api, token, key="k")
    assert r.status == 201 and r.json()["id"] == "ord-1"
    assert mock_api.get("/flaky?key=r").status == 503
    assert mock_api.post("/__reset", json_body={}).status == 200
    assert mock_api.get("/__reset").status == 405
