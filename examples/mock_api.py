#!/usr/bin/python3
"""RestMon demo business API: a small order service, plus endpoints that
misbehave on purpose (flaky, slow, hanging, malformed) and test helpers
(/echo, /__stats, /__reset).

Python 3 standard library only. Listens on 127.0.0.1 only.

    /usr/bin/python3 examples/mock_api.py --port 8900

Endpoints
    POST /login              {"username","password"} -> {"token","expires_in"}
    POST /orders             Bearer token; {"sku","qty"} -> 201 order
                             (Idempotency-Key: same key -> same order, 200)
    GET  /orders             {"items": [...]}  (XML with Accept: application/xml)
    GET  /orders/{id}        JSON, or XML with Accept: application/xml
    GET  /orders/{id}.xml    XML
    GET  /health             {"status": "ok"}
    GET  /flaky?key=K&fail=N first N requests per key answer 503, then 200
    GET  /slow?ms=N[&key=K]  answers after N ms; requests per key are counted
    GET  /hang               never answers
    GET  /malformed/json     broken JSON body
    GET  /malformed/xml      broken XML body
    GET  /garbage?n=N        N random bytes
    ANY  /echo[/...]         the request as JSON
    GET  /__stats            {"requests", "by_path", "by_method"} (not counted);
                             ?connections=1 adds "connections": how many
                             connections carried a counted request;
                             ?keys=1 adds "keys": /slow requests per key
    POST /__reset            clears counters and state (not counted)
"""

import argparse
import base64
import datetime
import json
import os
import re
import secrets
import select
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as xml_escape

HOST = "127.0.0.1"
MAX_BODY = 10 * 1024 * 1024
MAX_SLOW_MS = 600_000
MAX_GARBAGE = 1024 * 1024
MAX_CHUNKS = 100_000
TOKEN_TTL = 3600
UNCOUNTED = ("/__stats", "/__reset")

ORDER_PATH = re.compile(r"^/orders/([A-Za-z0-9_.-]+?)(\.xml|\.json)?$")


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class State:
    """Everything the API remembers, behind one lock."""

    def __init__(self, users, token_ttl=TOKEN_TTL):
        self.lock = threading.Lock()
        self.users = dict(users)
        self.token_ttl = token_ttl
        self.reset()

    def reset(self):
        with self.lock:
            self.tokens = {}            # token -> (username, expires_at monotonic)
            self.orders = {}            # id -> order (insertion ordered)
            self.next_order = 1
            self.idempotency = {}       # key -> (request fingerprint, order id)
            self.flaky = {}             # key -> attempts seen
            self.requests = 0
            self.by_path = {}
            self.by_method = {}
            self.connections = 0
            self.keys = {}              # /slow key -> requests

    def count(self, method, path, new_connection):
        with self.lock:
            self.requests += 1
            if new_connection:
                self.connections += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1
            self.by_method[method] = self.by_method.get(method, 0) + 1

    def count_key(self, key):
        with self.lock:
            self.keys[key] = self.keys.get(key, 0) + 1

    def stats(self, connections=False, keys=False):
        with self.lock:
            out = {
                "requests": self.requests,
                "by_path": dict(self.by_path),
                "by_method": dict(self.by_method),
                "orders": len(self.orders),
            }
            if connections:
                out["connections"] = self.connections
            if keys:
                out["keys"] = dict(self.keys)
            return out

    def login(self, username, password):
        with self.lock:
            expected = self.users.get(username)
            if expected is None or not secrets.compare_digest(
                    expected.encode("utf-8"), password.encode("utf-8")):
                return None
            token = secrets.token_urlsafe(24)
            self.tokens[token] = (username, time.monotonic() + self.token_ttl)
            return token

    def check_token(self, token):
        with self.lock:
            entry = self.tokens.get(token)
            if entry is None:
                return None
            if time.monotonic() > entry[1]:
                del self.tokens[token]
                return None
            return entry[0]

    def create_order(self, sku, qty, owner, idem_key):
        """Returns (order, created)."""
        fingerprint = json.dumps([sku, qty, owner])
        with self.lock:
            if idem_key is not None and idem_key in self.idempotency:
                prev_fp, order_id = self.idempotency[idem_key]
                if prev_fp != fingerprint:
                    return None, False
                return dict(self.orders[order_id]), False
            order_id = "ord-%d" % self.next_order
            self.next_order += 1
            order = {
                "id": order_id,
                "sku": sku,
                "qty": qty,
                "status": "created",
                "created_at": utc_now(),
            }
            self.orders[order_id] = order
            if idem_key is not None:
                self.idempotency[idem_key] = (fingerprint, order_id)
            return dict(order), True

    def get_order(self, order_id):
        with self.lock:
            order = self.orders.get(order_id)
            return dict(order) if order else None

    def list_orders(self):
        with self.lock:
            return [dict(o) for o in self.orders.values()]

    def flaky_attempt(self, key):
        with self.lock:
            n = self.flaky.get(key, 0) + 1
            self.flaky[key] = n
            return n


def order_xml(order):
    return (
        "<order>"
        "<id>%s</id><sku>%s</sku><qty>%s</qty><status>%s</status><created_at>%s</created_at>"
        "</order>"
    ) % tuple(xml_escape(str(order[k])) for k in ("id", "sku", "qty", "status", "created_at"))


XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this a reused
    # connection waits on the client's delayed ACK (about 40 ms a response).
    disable_nagle_algorithm = True
    server_version = "restmon-mock-api/1.0"
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 120
    # One handler serves one connection; set once it carried a counted request.
    connection_counted = False

    # -- plumbing -------------------------------------------------------------

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("mock-api: %s - %s\n" % (self.address_string(), fmt % args))
            sys.stderr.flush()

    def log_request(self, code="-", size="-"):
        if self.server.verbose:
            super().log_request(code, size)

    def send_error(self, code, message=None, explain=None):
        # Used by the base class for protocol errors (bad request line, ...).
        self.close_connection = True
        try:
            self.reply(code, {"error": message or self.responses.get(code, ("error",))[0]},
                       headers={"Connection": "close"})
        except OSError:
            pass

    def reply(self, status, body=b"", content_type="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")).encode("utf-8")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        if body or content_type:
            if content_type == "application/json" or content_type.startswith("application/xml"):
                ct = content_type if "charset" in content_type else content_type + "; charset=utf-8"
            else:
                ct = content_type
            self.send_header("Content-Type", ct)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()

    def read_body(self):
        """The request body as bytes; None after replying with an error."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            self.reply(400, {"error": "bad Content-Length"}, headers={"Connection": "close"})
            return None
        if n < 0:
            self.close_connection = True
            self.reply(400, {"error": "bad Content-Length"}, headers={"Connection": "close"})
            return None
        if n > MAX_BODY:
            self.close_connection = True
            self.reply(413, {"error": "body too large"}, headers={"Connection": "close"})
            return None
        return self.rfile.read(n)

    def _read_chunked(self):
        parts, total = [], 0
        for _ in range(MAX_CHUNKS):
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                self.reply(400, {"error": "bad chunk"}, headers={"Connection": "close"})
                return None
            if size == 0:
                for _ in range(100):        # trailers
                    if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                        break
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                self.reply(413, {"error": "body too large"}, headers={"Connection": "close"})
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(16)
        self.close_connection = True
        self.reply(400, {"error": "too many chunks"}, headers={"Connection": "close"})
        return None

    def json_body(self, body):
        """Parsed JSON object from body; None after replying 400."""
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self.reply(400, {"error": "malformed JSON body"})
            return None
        if not isinstance(data, dict):
            self.reply(400, {"error": "JSON body must be an object"})
            return None
        return data

    def wants_xml(self):
        accept = (self.headers.get("Accept") or "").lower()
        return "application/xml" in accept or "text/xml" in accept

    def bearer_user(self):
        auth = self.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.server.state.check_token(token.strip())

    def unauthorized(self, message="missing or invalid bearer token"):
        self.reply(401, {"error": message}, headers={"WWW-Authenticate": 'Bearer realm="mock-api"'})

    # -- dispatch -------------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path or "/"
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if path not in UNCOUNTED:
            self.server.state.count(self.command, path, not self.connection_counted)
            self.connection_counted = True
        body = self.read_body()
        if body is None:
            return
        method = self.command if self.command != "HEAD" else "GET"

        if path == "/echo" or path.startswith("/echo/"):
            return self.h_echo(url, body)
        routes = {
            "/login": {"POST": self.h_login},
            "/orders": {"GET": self.h_list_orders, "POST": self.h_create_order},
            "/health": {"GET": self.h_health},
            "/flaky": {"GET": self.h_flaky, "POST": self.h_flaky},
            "/slow": {"GET": self.h_slow},
            "/hang": {"GET": self.h_hang},
            "/malformed/json": {"GET": self.h_malformed_json},
            "/malformed/xml": {"GET": self.h_malformed_xml},
            "/garbage": {"GET": self.h_garbage},
            "/__stats": {"GET": self.h_stats},
            "/__reset": {"POST": self.h_reset},
        }
        handlers = routes.get(path)
        match = None
        if handlers is None:
            match = ORDER_PATH.match(path)
            if match:
                handlers = {"GET": self.h_get_order}
        if handlers is None:
            return self.reply(404, {"error": "not found", "path": path})
        handler = handlers.get(method)
        if handler is None:
            return self.reply(405, {"error": "method not allowed"},
                              headers={"Allow": ", ".join(sorted(handlers))})
        if match:
            return handler(match.group(1), match.group(2))
        if handler in (self.h_login, self.h_create_order):
            return handler(body)
        return handler(query)

    # -- business endpoints ---------------------------------------------------

    def h_login(self, body):
        ctype = (self.headers.get("Content-Type") or "").lower()
        if ctype.startswith("application/x-www-form-urlencoded") and not body.lstrip().startswith(b"{"):
            data = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        else:
            data = self.json_body(body)
            if data is None:
                return
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return self.reply(400, {"error": "username and password (strings) are required"})
        token = self.server.state.login(username, password)
        if token is None:
            return self.reply(401, {"error": "invalid credentials"})
        self.reply(200, {"token": token, "expires_in": self.server.state.token_ttl})

    def h_create_order(self, body):
        user = self.bearer_user()
        if user is None:
            return self.unauthorized()
        data = self.json_body(body)
        if data is None:
            return
        sku, qty = data.get("sku"), data.get("qty")
        if not isinstance(sku, str) or not sku:
            return self.reply(400, {"error": "sku must be a non-empty string"})
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
            return self.reply(400, {"error": "qty must be a positive integer"})
        key = self.headers.get("Idempotency-Key")
        order, created = self.server.state.create_order(sku, qty, user, key)
        if order is None:
            return self.reply(422, {"error": "Idempotency-Key reused with a different request"})
        headers = {"Location": "/orders/%s" % order["id"]}
        if key is not None:
            headers["Idempotency-Key"] = key
        if not created:
            headers["Idempotent-Replayed"] = "true"
        self.reply(201 if created else 200, order, headers=headers)

    def h_get_order(self, order_id, suffix):
        order = self.server.state.get_order(order_id)
        as_xml = suffix == ".xml" or (suffix is None and self.wants_xml())
        if order is None:
            if as_xml:
                return self.reply(404, XML_DECL + "<error>order not found</error>",
                                  content_type="application/xml")
            return self.reply(404, {"error": "order not found", "id": order_id})
        if as_xml:
            return self.reply(200, XML_DECL + order_xml(order), content_type="application/xml")
        self.reply(200, order)

    def h_list_orders(self, query):
        items = self.server.state.list_orders()
        if self.wants_xml():
            return self.reply(200, XML_DECL + "<orders>%s</orders>" % "".join(order_xml(o) for o in items),
                              content_type="application/xml")
        self.reply(200, {"items": items})

    def h_health(self, query):
        self.reply(200, {"status": "ok"})

    # -- misbehaving endpoints ------------------------------------------------

    def h_flaky(self, query):
        key = query.get("key", "default")
        try:
            fail = int(query.get("fail", "2"))
        except ValueError:
            return self.reply(400, {"error": "fail must be an integer"})
        attempt = self.server.state.flaky_attempt(key)
        if attempt <= fail:
            return self.reply(503, {"error": "temporarily unavailable", "attempt": attempt},
                              headers={"Retry-After": "0"})
        self.reply(200, {"ok": True, "attempt": attempt})

    def h_slow(self, query):
        try:
            ms = int(query.get("ms", "1000"))
        except ValueError:
            return self.reply(400, {"error": "ms must be an integer"})
        ms = max(0, min(ms, MAX_SLOW_MS))
        if "key" in query:
            self.server.state.count_key(query["key"])
        if self.server.stopping.wait(ms / 1000.0):
            self.close_connection = True
            return
        self.reply(200, {"slept_ms": ms})

    def h_hang(self, query):
        """Holds the connection without answering until the client closes
        it, the server stops, or hang_max_s passes."""
        self.close_connection = True
        sock = self.connection
        deadline = time.monotonic() + self.server.hang_max_s
        steps = int(self.server.hang_max_s / 0.1) + 2
        for _ in range(steps):
            if self.server.stopping.is_set() or time.monotonic() >= deadline:
                return
            try:
                readable, _, _ = select.select([sock], [], [], 0.1)
                if readable:
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        return      # client closed
                    self.server.stopping.wait(0.1)
            except (OSError, ValueError):
                return

    def h_malformed_json(self, query):
        self.reply(200, '{"id": "ord-1", "sku": "A-1", "qty": 2, "status": "crea',
                   content_type="application/json")

    def h_malformed_xml(self, query):
        self.reply(200, XML_DECL + "<order><id>ord-1</id><sku>A-1</sku><qty>2</qty><status>created</order",
                   content_type="application/xml")

    def h_garbage(self, query):
        try:
            n = int(query.get("n", "256"))
        except ValueError:
            return self.reply(400, {"error": "n must be an integer"})
        n = max(1, min(n, MAX_GARBAGE))
        data = os.urandom(n)
        self.reply(200, data, content_type="application/octet-stream")

    # -- test helpers ---------------------------------------------------------

    def h_echo(self, url, body):
        headers = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = headers[key] + ", " + value if key in headers else value
        out = {
            "method": self.command,
            "path": url.path,
            "query": dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
            "raw_query": url.query,
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
            "body_base64": base64.b64encode(body).decode("ascii"),
        }
        try:
            out["json"] = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            out["json"] = None
        self.reply(200, out)

    def h_stats(self, query):
        self.reply(200, self.server.state.stats(connections=query.get("connections") == "1",
                                                keys=query.get("keys") == "1"))

    def h_reset(self, query):
        self.server.state.reset()
        self.reply(200, {"reset": True})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port, state, verbose=False, hang_max_s=600.0):
        self.state = state
        self.verbose = verbose
        self.hang_max_s = hang_max_s
        self.stopping = threading.Event()
        super().__init__((HOST, port), Handler)

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def parse_user(text):
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME:PASSWORD, got %r" % text)
    return name, password


def main(argv=None):
    ap = argparse.ArgumentParser(description="RestMon demo business API (127.0.0.1 only)")
    ap.add_argument("--port", type=int, default=8900, help="port to listen on (0: any free port)")
    ap.add_argument("--port-file", help="write the port number to this file once listening")
    ap.add_argument("--user", action="append", type=parse_user, default=[],
                    metavar="NAME:PASSWORD", help="an extra user (repeatable)")
    ap.add_argument("--token-ttl", type=int, default=TOKEN_TTL, help="token lifetime in seconds")
    ap.add_argument("--hang-max-s", type=float, default=600.0,
                    help="longest time /hang holds a connection")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    users = {"demo": "demo-password"}
    users.update(dict(args.user))
    server = Server(args.port, State(users, args.token_ttl), args.verbose, args.hang_max_s)
    port = server.server_address[1]

    done = threading.Event()

    def stop(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="mock-api", daemon=True)
    thread.start()

    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("mock-api listening on http://%s:%d" % (HOST, port), flush=True)

    while not done.wait(0.1):
        pass
    server.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(5)
    if args.verbose:
        sys.stderr.write("mock-api: stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
