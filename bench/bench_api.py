#!/usr/bin/python3
"""API benchmark: `restmon serve` under load, against a Python peer serving
the same two endpoints from the same database file.

The store: BENCH_API_RUNS finished runs (default 100,000) made by
bench/store_fill.c (build/rel/bench/store_bench fill) on SQLite. Endpoints,
each with the session lookup of a Bearer token:
    list         GET /api/v1/runs?page_size=50
    list_failed  GET /api/v1/runs?page_size=50&status=failed
    detail       GET /api/v1/runs/{id}, rotating through BENCH_API_SAMPLE
                 run ids sampled from the store
For each endpoint, after a short warm-up, wrk measures (1) saturation:
BENCH_API_CONNECTIONS connections back to back, requests/s with p50/p99,
and (2) a paced load of BENCH_API_RATE requests/s (bench/wrk/api.lua's
delay() hands out send slots; wrk has no fixed-rate mode) on
BENCH_API_PACED_CONNECTIONS connections, with the rate it achieved. The
two servers take turns run by run. The server's CPU time is read from
/proc/PID/stat around each run, and the rest of the machine's from
/proc/stat. Goal: p99
under 10 ms at 1,000 requests/s with 100,000 runs stored.

The peer: a straightforward Python implementation of the same two
endpoints (http.server.ThreadingHTTPServer + sqlite3, this file run with
--peer DB), with the same bearer check against the session documents, the
same SQL, the same transactions and the same JSON; its answers are checked
equal to RestMon's before anything is measured. It is the kind of stack
many self-hosted monitors use.

Optionally (BENCH_API_PROFILE, on when perf works) RestMon is sampled with
perf during one more saturation run per endpoint: CPU share per thread and
library, and the top symbols.

Writes bench/results/api.json and bench/results/api.md and prints the
table. Exits 1 (leaving earlier results alone) when a result is not
meaningful: the fill is short, an answer differs from the peer's or is not
2xx, wrk reports socket errors, a server dies or works while it should
be idle.

Environment (all optional):
    BENCH_API_RUNS               runs in the store (default 100000)
    BENCH_API_SECONDS            length of each saturation run (default 8)
    BENCH_API_PACED_SECONDS      length of each paced run (default 10)
    BENCH_API_WARMUP_SECONDS     warm-up per endpoint and server (default 2)
    BENCH_API_RATE               paced rate, requests/s (default 1000)
    BENCH_API_CONNECTIONS        saturation connections (default 8)
    BENCH_API_PACED_CONNECTIONS  paced connections (default 32)
    BENCH_API_THREADS            wrk threads (default 1: the machine has 2
                                 cores and the server needs them)
    BENCH_API_SAMPLE             run ids the detail requests rotate through
                                 (default 1000)
    BENCH_API_PEER               0 skips the Python peer
    BENCH_API_PROFILE            0 skips the perf profile
    BENCH_API_PROFILE_SECONDS    length of each profile (default 4)
    BENCH_API_RETRY_BUDGET_S     seconds of repeated runs allowed (default
                                 60): a run during which other processes
                                 used over 0.2 cores is repeated once and
                                 the quieter one counts
    BENCH_RESTMON                the server (default build/rel/restmon)
    BENCH_STORE_BIN              the fill driver (default
                                 build/rel/bench/store_bench)
    BENCH_API_DIR                parent of the working folder (default
                                 /var/tmp)
"""

import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import benchlib as bl  # noqa: E402
from benchlib import BenchError, fnum  # noqa: E402

NAME = "api"
LUA = os.path.join(bl.BENCH, "wrk", "api.lua")
GOAL_P99_MS = 10.0
GOAL_RATE = 1000
GOAL_RUNS = 100_000
# A paced run that reaches less than this share of its target did not
# hold the rate.
SUSTAINED_SHARE = 0.95
# Other processes' CPU during a run above which the results say the
# machine was not quiet, in cores.
NOISY_CORES = 0.2
# Server CPU while it should be idle (executor polling only), at most.
IDLE_CPU_SHARE = 0.05
ENDPOINTS = [
    ("list", "GET /api/v1/runs?page_size=50", "/api/v1/runs?page_size=50"),
    ("list_failed", "GET /api/v1/runs?page_size=50&status=failed", "/api/v1/runs?page_size=50&status=failed"),
    ("detail", "GET /api/v1/runs/{id}", None),
]


# -- the peer -----------------------------------------------------------------
# The same SQL as core/store (run_query.c, query.c, runs.c, docs.c), the same
# column conversions as core/store/db.c (rm__coltype) and the same envelope as
# core/api/response.c.

RUN_LIST_COLS = ("run_id, workflow_id, workflow_name, workflow_version, source, trigger, inputs, status, reason, "
                 "vars, dry_run, rerun_of, resumed_from, created_at, started_at, finished_at, duration_ms, summary, "
                 "tags, lease_owner, lease_expires_at, cancel_requested, acknowledged_by, acknowledged_at")
RUN_COLS = RUN_LIST_COLS + ", definition"
DOC_COLS = "id, kind, name, owner, scope, tags, version, created_at, updated_at, deleted_at, body"
SQL_DOC = "SELECT " + DOC_COLS + " FROM documents WHERE kind = $1 AND id = $2"
SQL_RUN = "SELECT " + RUN_COLS + " FROM runs WHERE run_id = $1"
SQL_STEPS = "SELECT record FROM steps WHERE run_id = $1 ORDER BY seq"
SQL_NOTES = ("SELECT id, run_id, kind, author, text, created_at FROM annotations WHERE run_id = $1 "
             "ORDER BY created_at, id")
ORDER = " ORDER BY created_at DESC NULLS LAST, run_id DESC"
COUNT_CAP = 10000
PAGE_SIZE_MAX = 500
JSON_COLS = frozenset(("body", "tags", "definition", "trigger", "inputs", "vars", "summary", "extracted", "record",
                       "before", "after"))
BOOL_COLS = frozenset(("dry_run", "cancel_requested", "more"))
RUN_STATUSES = ("queued", "running", "succeeded", "degraded", "failed", "cancelled")
RUN_QUERY = ("workflow", "status", "tag", "from", "to", "http_status", "trigger", "sort", "page_size", "page")
ROLES = ("admin", "full_designer", "super_operator", "read_only_operator", "read_only_designer")
CODES = {400: "40002", 401: "40100", 403: "40300", 404: "40400", 500: "50000"}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           500: "Internal Server Error"}


def peer_rows(cur):
    """The rows of cur as dicts, JSON and boolean columns converted."""
    names = [d[0] for d in cur.description]
    conv = [json.loads if n in JSON_COLS else bool if n in BOOL_COLS else None for n in names]
    out = []
    for row in cur:
        item = {}
        for name, f, v in zip(names, conv, row):
            item[name] = f(v) if (f is not None and v is not None) else v
        out.append(item)
    return out


class PeerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response (below) and no Nagle: the head and body never
    # wait for a delayed ACK (see bench/lib/mock_server.py).
    disable_nagle_algorithm = True
    server_version = "bench-peer"

    def log_message(self, fmt, *args):
        pass

    def conn(self):
        """This thread's connection (ThreadingHTTPServer: a thread per
        client connection)."""
        local = self.server.local
        c = getattr(local, "db", None)
        if c is None:
            c = sqlite3.connect(self.server.db_path, isolation_level=None, timeout=5)
            c.execute("PRAGMA foreign_keys=ON")
            c.execute("PRAGMA query_only=ON")
            local.db = c
        return c

    def send_json(self, status, data=None, message="ok"):
        env = {"code": "00000" if status == 200 else CODES.get(status, "50000"), "message": message,
               "data": data, "error": None if status == 200 else {"details": []}}
        body = json.dumps(env, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        head = ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % (status, REASONS.get(status, "Error"), len(body))).encode("latin-1")
        self.wfile.write(head + body)

    def caller(self, c):
        """The user behind the Bearer token (core/serve/authn.c: a live,
        unexpired session, then its user, live and active, with a role
        that may view runs), else None."""
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) < 8:
            return None
        digest = hashlib.sha256(auth[7:].strip().encode("utf-8")).hexdigest()
        rows = peer_rows(c.execute(SQL_DOC, {"1": "session", "2": digest}))
        if not rows or rows[0]["deleted_at"] is not None or not isinstance(rows[0]["body"], dict):
            return None
        exp = rows[0]["body"].get("expires_at")
        if not isinstance(exp, int) or exp <= time.time():
            return None
        users = peer_rows(c.execute(SQL_DOC, {"1": "user", "2": rows[0]["body"].get("user_id")}))
        if not users or users[0]["deleted_at"] is not None or not isinstance(users[0]["body"], dict):
            return None
        user = users[0]["body"]
        return user if user.get("active") is not False and user.get("role") in ROLES else None

    def do_GET(self):
        try:
            url = urlsplit(self.path)
            c = self.conn()
            if url.path == "/api/v1/runs" or url.path.startswith("/api/v1/runs/"):
                if self.caller(c) is None:
                    self.send_json(401, message="sign in first: a Bearer token or the session cookie")
                elif url.path == "/api/v1/runs":
                    self.run_list(c, url.query)
                else:
                    self.run_detail(c, url.path[len("/api/v1/runs/"):])
            else:
                self.send_json(404, message="no such route")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # the peer answers 500 like RestMon, and goes on
            sys.stderr.write("peer: %s: %r\n" % (self.path, e))
            self.send_json(500, message="the store failed")

    def run_list(self, c, query):
        page, size, statuses, where, params = 1, 50, [], "FROM runs WHERE 1 = 1", {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name not in RUN_QUERY:
                return self.send_json(400, message="unknown query parameter " + name)
            if name in ("page", "page_size"):
                try:
                    v = int(value)
                except ValueError:
                    return self.send_json(400, message="query.%s: not an integer" % name)
                if v < 1 or (name == "page_size" and v > PAGE_SIZE_MAX):
                    return self.send_json(400, message="query.%s: out of range" % name)
                page, size = (v, size) if name == "page" else (page, v)
            elif name == "status":
                if value not in RUN_STATUSES:
                    return self.send_json(400, message="query.status: not a run status")
                statuses.append(value)
            else:
                return self.send_json(400, message="the peer serves page, page_size and status only")
        if statuses:
            marks = []
            for s in statuses:
                params[str(len(params) + 1)] = s
                marks.append("$%d" % len(params))
            where += " AND status IN (%s)" % ", ".join(marks)
        cap = max(page * size + size, COUNT_CAP)
        count_sql = "SELECT count(*) AS total FROM (SELECT 1 %s LIMIT %d) counted" % (where, cap + 1)
        items_sql = "SELECT %s %s%s LIMIT $%d OFFSET $%d" % (RUN_LIST_COLS, where, ORDER, len(params) + 1,
                                                              len(params) + 2)
        c.execute("BEGIN")
        try:
            total = c.execute(count_sql, params).fetchone()[0]
            params[str(len(params) + 1)] = size
            params[str(len(params) + 1)] = (page - 1) * size
            items = peer_rows(c.execute(items_sql, params))
        finally:
            c.execute("COMMIT")
        capped = total > cap
        total = min(total, cap)
        self.send_json(200, {"items": items, "page": page, "page_size": size, "total": total,
                             "total_pages": (total + size - 1) // size, "total_capped": capped})

    def run_detail(self, c, run_id):
        c.execute("BEGIN")
        try:
            rows = peer_rows(c.execute(SQL_RUN, {"1": run_id}))
            if rows:
                steps = [r["record"] for r in peer_rows(c.execute(SQL_STEPS, {"1": run_id}))]
                notes = peer_rows(c.execute(SQL_NOTES, {"1": run_id}))
        finally:
            c.execute("COMMIT")
        if not rows:
            return self.send_json(404, message="run %s: not found" % run_id)
        run = rows[0]
        run["workflow"] = {"id": run["workflow_id"], "name": run["workflow_name"],
                           "version": run["workflow_version"], "source": run["source"]}
        run["steps"] = steps
        run["annotations"] = notes
        self.send_json(200, run)


class PeerServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the connections of a wrk run arrive at once

    def handle_error(self, request, client_address):
        # wrk resets its connections when a run ends
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def peer_main(db_path):
    """Serves the peer on a free 127.0.0.1 port until SIGTERM."""
    srv = PeerServer(("127.0.0.1", 0), PeerHandler)
    srv.db_path = db_path
    srv.local = threading.local()
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown, daemon=True).start())
    print("peer listening on http://127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    return 0


# -- configuration ------------------------------------------------------------

class Config:
    def __init__(self):
        self.runs = bl.env_int("BENCH_API_RUNS", GOAL_RUNS, 1000, 10_000_000)
        self.seconds = bl.env_int("BENCH_API_SECONDS", 8, 1, 600)
        self.paced_seconds = bl.env_int("BENCH_API_PACED_SECONDS", 10, 1, 600)
        self.warmup = bl.env_int("BENCH_API_WARMUP_SECONDS", 2, 0, 60)
        self.rate = bl.env_int("BENCH_API_RATE", GOAL_RATE, 1, 1_000_000)
        self.threads = bl.env_int("BENCH_API_THREADS", 1, 1, 64)
        self.connections = bl.env_int("BENCH_API_CONNECTIONS", 8, 1, 10000)
        self.paced_connections = bl.env_int("BENCH_API_PACED_CONNECTIONS", 32, 1, 10000)
        self.sample = bl.env_int("BENCH_API_SAMPLE", 1000, 1, 1_000_000)
        self.peer = bl.env_flag("BENCH_API_PEER", True)
        self.profile = bl.env_flag("BENCH_API_PROFILE", True)
        self.profile_seconds = bl.env_int("BENCH_API_PROFILE_SECONDS", 4, 1, 120)
        self.retry_budget = bl.env_int("BENCH_API_RETRY_BUDGET_S", 60, 0, 3600)
        self.restmon = os.environ.get("BENCH_RESTMON") or os.path.join(bl.ROOT, "build", "rel", "restmon")
        self.store_bin = os.environ.get("BENCH_STORE_BIN") or os.path.join(bl.ROOT, "build", "rel", "bench",
                                                                           "store_bench")
        self.dir = os.environ.get("BENCH_API_DIR") or "/var/tmp"
        for c in (self.connections, self.paced_connections):
            if c < self.threads:
                raise BenchError("BENCH_API_THREADS (%d) is more than a connection count (%d)" % (self.threads, c))


# -- servers --------------------------------------------------------------------

class Server:
    """A server process on 127.0.0.1 that names its URL on stdout; both
    streams go to files in the working folder."""

    def __init__(self, label, argv, env, workdir, pattern, fixed_threads):
        self.label, self.argv, self.env, self.pattern = label, argv, env, pattern
        # Context switches are summed over the threads alive; a server
        # with a thread per connection loses those of the ones that ended.
        self.fixed_threads = fixed_threads
        self.out_path = os.path.join(workdir, label + ".out")
        self.err_path = os.path.join(workdir, label + ".err")
        self.proc = None
        self.url = None

    def start(self, timeout_s=30):
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            try:
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                             cwd=bl.ROOT, env=self.env, start_new_session=True)
            except OSError as e:  # e.g. the binary is being linked again right now
                raise BenchError("cannot start %s (%s): %s" % (self.label, self.argv[0], e))
        deadline = time.monotonic() + timeout_s
        for _ in range(100_000):
            with open(self.out_path, "rb") as f:
                m = re.search(self.pattern, f.read(65536))
            if m:
                self.url = m.group(1).decode()
                return self.url
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.stop()
        raise BenchError("%s did not start within %d s: %s" % (self.label, timeout_s, self.log_tail()))

    def log_tail(self):
        try:
            with open(self.err_path, "rb") as f:
                return bl.tail(f.read().decode("utf-8", "replace")) or "(no output)"
        except OSError:
            return "(no log)"

    def cpu_s(self):
        """CPU seconds (user+sys, all threads) used so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / bl.CLK_TCK

    def switches(self):
        """Context switches (voluntary and not) of all its threads so far."""
        n = 0
        try:
            tasks = os.listdir("/proc/%d/task" % self.proc.pid)
        except OSError:
            return 0
        for t in tasks:
            try:
                with open("/proc/%d/task/%s/status" % (self.proc.pid, t)) as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                            n += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return n

    def threads(self):
        try:
            return len(os.listdir("/proc/%d/task" % self.proc.pid))
        except OSError:
            return None

    def rss_mb(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return round(int(line.split()[1]) / 1024.0, 1)
        except OSError:
            pass
        return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            raise BenchError("%s exited (rc %s): %s" % (self.label, self.proc.returncode, self.log_tail()))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def restmon_env(password):
    """The environment without the caller's RESTMON_* settings (they would
    override the benchmark's configuration file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTMON_")}
    env["RESTMON_ADMIN_PASSWORD"] = password
    return env


def write_config(workdir, db_path):
    path = os.path.join(workdir, "restmon.conf")
    with open(path, "w") as f:
        f.write("# bench/bench_api.py\n"
                "database = sqlite:%s\n"
                "database.threads = 2\n"
                "listen = 127.0.0.1:0\n"
                "vault.key_file = %s\n"
                "web.dir =\n"
                "log.level = warn\n"
                "# the filled runs are up to 30 days old: keep them all\n"
                "retention.succeeded_days = 0\n"
                "retention.failed_days = 0\n" % (db_path, os.path.join(workdir, "master.key")))
    return path


# -- HTTP helpers ---------------------------------------------------------------

def http_json(url, token=None, body=None, timeout_s=30):
    """(status, parsed JSON body) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            return r.status, json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, {"raw": text[:300]}


def login(url, password):
    status, body = http_json(url + "/api/v1/auth/login", body={"username": "admin", "password": password})
    token = ((body or {}).get("data") or {}).get("token")
    if status != 200 or not token:
        raise BenchError("login as admin failed: HTTP %s %s" % (status, json.dumps(body)[:300]))
    return token


def first_difference(a, b, path="$"):
    """The path of the first difference between two JSON values, else None."""
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                       and not isinstance(a, bool) and not isinstance(b, bool)):
        return "%s: %s vs %s" % (path, type(a).__name__, type(b).__name__)
    if isinstance(a, dict):
        if list(a) != list(b):
            return "%s: keys %s vs %s" % (path, list(a), list(b))
        for k in a:
            d = first_difference(a[k], b[k], "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return "%s: %d vs %d items" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    return None if a == b else "%s: %r vs %r" % (path, a, b)


# -- the store ----------------------------------------------------------------------

def fill(cfg, db_path):
    r = bl.run_measured([cfg.store_bin, "fill", "sqlite:" + db_path, str(cfg.runs)], timeout_s=120 + cfg.runs / 500.0)
    out = bl.last_json_object(r["stdout"])
    if r["timed_out"] or r["rc"] != 0 or not out or out.get("runs") != cfg.runs:
        raise BenchError("store_bench fill failed (rc %s): %s\n%s" % (r["rc"], json.dumps(out) if out else "",
                                                                      bl.tail(r["stderr"])))
    return {"runs": out["runs"], "steps": out["steps"], "seconds": round(r["wall_s"], 1),
            "db_bytes": out.get("db_bytes")}


def store_facts(db_path, sample):
    """Counts the checks need, and `sample` run ids (seeded, spread over the
    whole store)."""
    c = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    try:
        counts = dict(c.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        top = c.execute("SELECT max(rowid) FROM runs").fetchone()[0] or 0
        rowids = random.Random(20261123).sample(range(1, top + 1), min(sample, top))
        ids = []
        for i in range(0, len(rowids), 500):
            part = rowids[i:i + 500]
            ids += [r[0] for r in c.execute("SELECT run_id FROM runs WHERE rowid IN (%s)" % ",".join("?" * len(part)),
                                            part)]
        random.Random(7).shuffle(ids)
    finally:
        c.close()
    if len(ids) < min(sample, 1):
        raise BenchError("no run ids to sample from the store")
    return counts, ids


def unfinished_runs(db_path):
    c = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    try:
        return c.execute("SELECT count(*) FROM runs WHERE status IN ('queued', 'running')").fetchone()[0], \
            c.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        c.close()


# -- wrk --------------------------------------------------------------------------

def machine_busy_s():
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / bl.CLK_TCK


def wrk_exe():
    exe = shutil.which("wrk")
    if not exe:
        raise BenchError("wrk is not installed (scripts/install-deps installs it)")
    return exe


def wrk_run(cfg, server, url, paths_file, token, seconds, connections, rate=0):
    """One wrk run through bench/wrk/api.lua; its JSON summary plus rates,
    latencies in ms and the server's CPU time during it."""
    argv = [wrk_exe(), "-t%d" % cfg.threads, "-c%d" % connections, "-d%ds" % seconds, "--timeout", "10s",
            "-s", LUA, url]
    env = dict(os.environ, API_TOKEN=token, API_PATHS=paths_file, API_RATE=str(rate), API_THREADS=str(cfg.threads))
    cpu0, busy0, sw0 = server.cpu_s(), machine_busy_s(), server.switches()
    r = bl.run_measured(argv, timeout_s=seconds + 60, env=env)
    cpu, busy, sw = server.cpu_s() - cpu0, machine_busy_s() - busy0, server.switches() - sw0
    server.check_alive()
    out = None
    for line in reversed(r["stdout"].splitlines()):
        if line.startswith("{") and '"wrk_json"' in line:
            out = json.loads(line)
            break
    if r["rc"] != 0 or out is None:
        raise BenchError("wrk failed (rc %s): %s" % (r["rc"], bl.tail(r["stdout"] + r["stderr"])))
    e = out["errors"]
    if e["status"] or e["connect"] or e["read"] or e["write"] or e["timeout"]:
        raise BenchError("%s: wrk %s: errors %s (status = non-2xx answers)" % (server.label, url, json.dumps(e)))
    secs = out["duration_us"] / 1e6
    n = out["requests"]
    if n == 0:
        raise BenchError("%s: wrk %s: no request completed" % (server.label, url))
    lat = out["latency_us"]
    p = lat["percentiles"]
    return {
        "connections": connections, "threads": cfg.threads, "seconds": round(secs, 2), "requests": n,
        "target_rate": rate or None, "requests_per_s": round(n / secs, 1),
        "latency_ms": {"p50": p["50"] / 1000.0, "p90": p["90"] / 1000.0, "p99": p["99"] / 1000.0,
                       "p99_9": p["99.9"] / 1000.0, "mean": round(lat["mean"] / 1000.0, 3),
                       "max": lat["max"] / 1000.0},
        "bytes_per_response": round(out["bytes"] / float(n)),
        "server_cpu_s": round(cpu, 2), "server_cpu_cores": round(cpu / secs, 2),
        "server_cpu_us_per_request": round(cpu * 1e6 / n, 1),
        "server_context_switches_per_request": round(sw / float(n), 2) if server.fixed_threads else None,
        "wrk_cpu_s": round(r["cpu_s"], 2),
        # what the rest of the machine used meanwhile: other work competing
        # for the 2 cores makes every figure here worse
        "others_cpu_cores": round(max(0.0, busy - cpu - r["cpu_s"]) / r["wall_s"], 2),
    }


# -- perf -----------------------------------------------------------------------------

def perf_works():
    exe = shutil.which("perf")
    if not exe:
        return None, "perf is not installed"
    r = bl.run_text([exe, "stat", "-e", "task-clock", "true"], 20)
    if r is None or "task-clock" not in r:
        return None, "perf cannot count here: %s" % bl.first_line(r or "")
    return exe, None


def profile(cfg, perf, server, url, paths_file, token, workdir, name):
    """perf samples of the server during a saturation run: CPU share per
    thread (loop = the main thread) and library, and the top symbols."""
    data_file = os.path.join(workdir, "perf-%s.data" % name)
    pid = server.proc.pid
    rec = subprocess.Popen([perf, "record", "-F", "499", "-p", str(pid), "-o", data_file, "--", "sleep",
                            str(cfg.profile_seconds)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(0.2)
        load = wrk_run(cfg, server, url, paths_file, token, cfg.profile_seconds + 1, cfg.connections)
        _, err = rec.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        rec.kill()
        rec.wait(5)
        return {"skipped": "perf record did not finish"}
    if rec.returncode != 0 or not os.path.exists(data_file):
        return {"skipped": "perf record failed: %s" % bl.tail(err.decode("utf-8", "replace"), 3)}
    by_thread = bl.run_text([perf, "report", "-i", data_file, "--no-children", "--sort", "pid,dso", "--stdio"], 120)
    by_symbol = bl.run_text([perf, "report", "-i", data_file, "--no-children", "--sort", "dso,symbol", "--stdio"], 120)
    groups = {}
    for line in (by_thread or "").splitlines():
        m = re.match(r"^\s*([\d.]+)%\s+(\d+):\S+\s+(.+?)\s*$", line)
        if not m:
            continue
        share, tid, dso = float(m.group(1)), int(m.group(2)), m.group(3).replace(" (deleted)", "")
        g = groups.setdefault("loop thread" if tid == pid else "other threads (store)", {})
        g[dso] = round(g.get(dso, 0.0) + share, 2)
    symbols = []
    for line in (by_symbol or "").splitlines():
        m = re.match(r"^\s*([\d.]+)%\s+(\S+(?: \(deleted\))?)\s+\[[.k]\]\s+(.+?)(?:\s+-\s+-)?\s*$", line)
        if m and len(symbols) < 15:
            symbols.append({"share": float(m.group(1)), "dso": m.group(2).replace(" (deleted)", ""),
                            "symbol": m.group(3)})
    if not groups:
        return {"skipped": "perf report gave no samples"}
    try:
        os.unlink(data_file)
    except OSError:
        pass
    return {"endpoint": name, "seconds": cfg.profile_seconds, "frequency_hz": 499,
            "requests_per_s_during": load["requests_per_s"],
            "threads": {g: dict(sorted(v.items(), key=lambda kv: -kv[1])) for g, v in sorted(groups.items())},
            "thread_share": {g: round(sum(v.values()), 1) for g, v in groups.items()},
            "top_symbols": symbols}


# -- measuring -------------------------------------------------------------------------

def endpoint_paths(workdir, ids):
    files = {}
    for name, _, path in ENDPOINTS:
        f = os.path.join(workdir, "paths-%s.txt" % name)
        with open(f, "w") as out:
            if path:
                out.write(path + "\n")
            else:
                out.writelines("/api/v1/runs/%s\n" % i for i in ids)
        files[name] = f
    return files


class Retries:
    """Repeats a run during which other processes used the machine (the
    quieter of the two counts), within a budget of seconds."""

    def __init__(self, budget_s):
        self.left = budget_s
        self.used = 0

    def run(self, seconds, fn):
        r = fn()
        if r["others_cpu_cores"] > NOISY_CORES and self.left >= seconds:
            self.left -= seconds
            self.used += 1
            again = fn()
            again["other_attempt_others_cpu_cores"] = r["others_cpu_cores"]
            if again["others_cpu_cores"] < r["others_cpu_cores"]:
                r = again
            else:
                r["other_attempt_others_cpu_cores"] = again["others_cpu_cores"]
        return r


def measure(cfg, servers, token, files, prog, retries):
    """Every endpoint on every server, the servers taking turns run by run
    so that other work on the machine falls on both alike."""
    res = {name: {} for name, _, _ in ENDPOINTS}
    for name, label, _ in ENDPOINTS:
        prog.step("%s on %s: warm-up %d s, saturation %d s (c=%d), %s req/s for %d s (c=%d)" % (
            label, " and ".join(s.label for s in servers), cfg.warmup, cfg.seconds, cfg.connections,
            fnum(cfg.rate), cfg.paced_seconds, cfg.paced_connections))
        for srv in servers:
            if cfg.warmup:
                wrk_run(cfg, srv, srv.url, files[name], token, cfg.warmup, cfg.connections)
        for kind, secs, conns, rate in (("saturation", cfg.seconds, cfg.connections, 0),
                                        ("paced", cfg.paced_seconds, cfg.paced_connections, cfg.rate)):
            for srv in servers:
                r = retries.run(secs, lambda: wrk_run(cfg, srv, srv.url, files[name], token, secs, conns, rate))
                if rate:
                    r["sustained"] = r["requests_per_s"] >= SUSTAINED_SHARE * rate
                res[name].setdefault(srv.label, {})[kind] = r
        for srv in servers:
            sat, paced = res[name][srv.label]["saturation"], res[name][srv.label]["paced"]
            prog.note("%-7s saturation %s req/s, p50 %s / p99 %s ms, %s us CPU/req; at %s req/s: %s achieved, "
                      "p50 %s / p99 %s ms; others' CPU %s / %s cores" % (
                          srv.label, fnum(sat["requests_per_s"]), fnum(sat["latency_ms"]["p50"], 2),
                          fnum(sat["latency_ms"]["p99"], 2), fnum(sat["server_cpu_us_per_request"]), fnum(cfg.rate),
                          fnum(paced["requests_per_s"]), fnum(paced["latency_ms"]["p50"], 2),
                          fnum(paced["latency_ms"]["p99"], 2), fnum(sat["others_cpu_cores"], 2),
                          fnum(paced["others_cpu_cores"], 2)))
    return res


def check_answers(restmon_url, peer_url, token, ids, failed_count):
    """RestMon's answers are what they should be, and the peer's are equal."""
    checks = [("list", "/api/v1/runs?page_size=50"), ("list_failed", "/api/v1/runs?page_size=50&status=failed")]
    checks += [("detail", "/api/v1/runs/" + i) for i in ids[:3]]
    sizes = {}
    for name, path in checks:
        status, body = http_json(restmon_url + path, token)
        data = (body or {}).get("data")
        if status != 200 or not isinstance(data, dict):
            raise BenchError("RestMon %s: HTTP %s %s" % (path, status, json.dumps(body)[:300]))
        if name.startswith("list"):
            items = data.get("items") or []
            want = min(50, failed_count) if name == "list_failed" else 50
            if len(items) != want:
                raise BenchError("RestMon %s: %d items, expected %d" % (path, len(items), want))
            if name == "list_failed" and any(it.get("status") != "failed" for it in items):
                raise BenchError("RestMon %s: an item that is not failed" % path)
        elif data.get("run_id") != path.rsplit("/", 1)[1] or not data.get("steps"):
            raise BenchError("RestMon %s: not the run asked for, or no steps" % path)
        sizes[name] = len(json.dumps(body, separators=(",", ":")))
        if peer_url:
            pstatus, pbody = http_json(peer_url + path, token)
            if pstatus != 200:
                raise BenchError("peer %s: HTTP %s %s" % (path, pstatus, json.dumps(pbody)[:300]))
            diff = first_difference(body, pbody)
            if diff:
                raise BenchError("the peer's answer to %s differs from RestMon's at %s" % (path, diff))
    status, _ = http_json(restmon_url + "/api/v1/runs?page_size=50")
    if status != 401:
        raise BenchError("RestMon answered a list without a token with HTTP %s, expected 401" % status)
    if peer_url:
        status, _ = http_json(peer_url + "/api/v1/runs?page_size=50", "not-a-token")
        if status != 401:
            raise BenchError("the peer answered a list with a bad token with HTTP %s, expected 401" % status)
    return sizes


def idle_check(server, seconds=2.0):
    cpu0 = server.cpu_s()
    time.sleep(seconds)
    share = (server.cpu_s() - cpu0) / seconds
    if share > IDLE_CPU_SHARE:
        raise BenchError("%s used %.0f%% of a core while idle (executor busy?)" % (server.label, 100 * share))
    return round(share, 3)


# -- results ----------------------------------------------------------------------------

def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return None
    return round(a / float(b), digits)


def verdicts(cfg, data):
    out = {}
    for name, _, _ in ENDPOINTS:
        e = data["endpoints"][name]
        p = e["restmon"]["paced"]
        met = p["sustained"] and p["latency_ms"]["p99"] < GOAL_P99_MS
        e["goal_met"] = met if (cfg.rate >= GOAL_RATE and cfg.runs >= GOAL_RUNS) else None
        out[name] = e["goal_met"]
        peer = e.get("peer")
        if peer:
            e["ratios"] = {
                "requests_per_s": ratio(e["restmon"]["saturation"]["requests_per_s"],
                                        peer["saturation"]["requests_per_s"]),
                "p99_saturation": ratio(e["restmon"]["saturation"]["latency_ms"]["p99"],
                                        peer["saturation"]["latency_ms"]["p99"]),
                "p99_paced": ratio(p["latency_ms"]["p99"], peer["paced"]["latency_ms"]["p99"]),
                "cpu_per_request": ratio(e["restmon"]["saturation"]["server_cpu_us_per_request"],
                                         peer["saturation"]["server_cpu_us_per_request"]),
            }
    return out


def load_notes(data):
    """Notes (and warnings) on what other processes used meanwhile."""
    for who, name in (("restmon", "RestMon"), ("peer", "the peer")):
        runs = [e[who][k] for e in data["endpoints"].values() if e.get(who) for k in ("saturation", "paced")]
        if not runs:
            continue
        others = [r["others_cpu_cores"] for r in runs]
        mean = round(sum(others) / len(others), 2)
        data["machine"]["others_cpu_cores_%s" % who] = {"mean": mean, "max": max(others)}
        text = "Other processes used %s cores on average (up to %s) of the machine's %s during %s's runs" % (
            fnum(mean, 2), fnum(max(others), 2), data["machine"]["nproc"], name)
        if mean > NOISY_CORES or max(others) > 2 * NOISY_CORES:
            data.setdefault("warnings", []).append(
                text + ": the machine was not quiet, and those figures are worse than on a quiet one.")
        else:
            data["notes"].append(text + ".")


def rx(v):
    return "n/a" if v is None else "%.2fx" % v


def ms(run, key):
    return fnum(run["latency_ms"][key], 2)


def render(cfg, data):
    m = data["machine"]
    eps = data["endpoints"]
    peer_on = any(e.get("peer") for e in eps.values())
    labels = {name: label for name, label, _ in ENDPOINTS}

    sat_rows, paced_rows = [], []
    for name, _, _ in ENDPOINTS:
        e = eps[name]
        rs, rp = e["restmon"]["saturation"], e["restmon"]["paced"]
        ps, pp = (e["peer"]["saturation"], e["peer"]["paced"]) if e.get("peer") else (None, None)
        rt = e.get("ratios") or {}
        sat_rows.append([
            "`%s`" % labels[name], fnum(rs["bytes_per_response"] / 1024.0),
            fnum(rs["requests_per_s"]), "%s / %s" % (ms(rs, "p50"), ms(rs, "p99")),
            fnum(rs["server_cpu_us_per_request"]), "%s" % fnum(rs["server_cpu_cores"], 2),
            fnum(ps["requests_per_s"]) if ps else "n/a",
            "%s / %s" % (ms(ps, "p50"), ms(ps, "p99")) if ps else "n/a",
            fnum(ps["server_cpu_us_per_request"]) if ps else "n/a",
            "**%s**" % rx(rt.get("requests_per_s")), rx(rt.get("p99_saturation")), rx(rt.get("cpu_per_request"))])
        goal = {True: "met", False: "**not met**", None: "n/a"}[e["goal_met"]]
        paced_rows.append([
            "`%s`" % labels[name],
            "%s%s" % (fnum(rp["requests_per_s"]), "" if rp["sustained"] else " (short)"),
            "%s / %s / %s" % (ms(rp, "p50"), ms(rp, "p90"), ms(rp, "p99")), fnum(rp["server_cpu_cores"], 2),
            ("%s%s" % (fnum(pp["requests_per_s"]), "" if pp["sustained"] else " (short)")) if pp else "n/a",
            "%s / %s / %s" % (ms(pp, "p50"), ms(pp, "p90"), ms(pp, "p99")) if pp else "n/a",
            "**%s**" % rx(rt.get("p99_paced")), goal])

    sat_table = bl.md_table(
        ["endpoint", "KB / answer", "RestMon req/s", "p50 / p99 ms", "CPU us / req", "CPU cores", "peer req/s",
         "peer p50 / p99 ms", "peer CPU us / req", "req/s RestMon/peer", "p99 RestMon/peer",
         "CPU / req RestMon/peer"], sat_rows, "lrrrrrrrrrrr")
    paced_table = bl.md_table(
        ["endpoint", "RestMon achieved req/s", "p50 / p90 / p99 ms", "CPU cores", "peer achieved req/s",
         "peer p50 / p90 / p99 ms", "p99 RestMon/peer", "goal"], paced_rows, "lrrrrrrl")

    st = data["store"]
    lines = [
        "# API benchmark: RestMon's REST API under load vs a Python peer",
        "",
        "%s; `restmon serve` on SQLite with %s finished runs (%s steps) stored, loaded with wrk on the same "
        "%d-core machine. Peer: the same two endpoints in Python (ThreadingHTTPServer + sqlite3, same database "
        "file, same SQL, same bearer check, answers checked equal)%s." % (
            m["date"], fnum(st["runs"]), fnum(st["steps"]), m["nproc"] or 0,
            "" if peer_on else " - skipped (BENCH_API_PEER=0)"),
        "",
    ]
    for w in data.get("warnings", []):
        lines += ["**Warning:** %s" % w, ""]
    lines += [
        "## Saturation",
        "",
        "wrk, %d connection(s) back to back on %d thread(s), %d s per endpoint after a %d s warm-up. CPU: the "
        "server process (all threads) over the run, per request and in cores busy." % (
            cfg.connections, cfg.threads, cfg.seconds, cfg.warmup),
        "",
        sat_table,
        "",
        "## At %s requests/s" % fnum(cfg.rate),
        "",
        "wrk paced by bench/wrk/api.lua to %s req/s on %d connections, %d s; latency from sending a request to its "
        "answer. \"(short)\": the server could not keep up and the achieved rate stayed below %d%% of the target, "
        "so the latencies are those of a saturated server." % (
            fnum(cfg.rate), cfg.paced_connections, cfg.paced_seconds, int(100 * SUSTAINED_SHARE)),
        "",
        paced_table,
        "",
    ]
    for name, _, _ in ENDPOINTS:
        e = eps[name]
        rp = e["restmon"]["paced"]
        goal = {True: "met", False: "not met", None: "n/a (needs BENCH_API_RATE >= 1000 and "
                                                        "BENCH_API_RUNS >= 100000)"}[e["goal_met"]]
        lines.append("- Goal: p99 under %d ms at %s req/s, `%s`: **%s** (%s req/s achieved, p99 %s ms)" % (
            GOAL_P99_MS, fnum(GOAL_RATE), labels[name], goal, fnum(rp["requests_per_s"]), ms(rp, "p99")))
    prof = data.get("profiles") or {}
    done = {k: v for k, v in prof.items() if not v.get("skipped")}
    if done:
        lines += ["", "## Where RestMon's CPU goes (perf, saturation)", "",
                  "perf record -F 499 on the server during a %d s saturation run per endpoint (c=%d); share of "
                  "the samples by thread and library (the loop thread runs h2o, libuv and the JSON encoding of "
                  "answers; the store threads run SQLite and decode rows)." % (cfg.profile_seconds,
                                                                              cfg.connections), ""]
        libs = ["libjansson", "libc", "libsqlite3", "kernel", "other"]
        rows = []
        for name, p in done.items():
            for group, dsos in p["threads"].items():
                agg = dict.fromkeys(libs, 0.0)
                for dso, share in dsos.items():
                    key = next((lib for lib in libs[:3] if dso.startswith(lib)), None)
                    key = key or ("kernel" if "kernel" in dso else "other")
                    agg[key] += share
                rows.append(["`%s`" % labels[name], group, fnum(p["thread_share"][group])] +
                            [fnum(agg[lib]) for lib in libs])
        lines.append(bl.md_table(["endpoint", "threads", "% of samples", "% jansson", "% libc (malloc, memcpy)",
                                  "% sqlite3", "% kernel", "% other"], rows, "llrrrrrr"))
        lines += ["", "Context switches of RestMon's threads per request at saturation (/proc/PID/task/*/status): " +
                  ", ".join("`%s` %s" % (labels[n], fnum(eps[n]["restmon"]["saturation"].get(
                      "server_context_switches_per_request"), 1)) for n, _, _ in ENDPOINTS) + "."]
        first = done.get("list") or next(iter(done.values()))
        lines += ["", "Top symbols, `%s`:" % labels[first["endpoint"]], "",
                  bl.md_table(["%", "library", "symbol"],
                              [[fnum(s["share"]), s["dso"], "`%s`" % s["symbol"]] for s in first["top_symbols"][:12]],
                              "rll")]
    for k, v in prof.items():
        if v.get("skipped"):
            lines.append("- perf profile of `%s` skipped: %s" % (labels[k], v["skipped"]))
    lines += ["", "## Notes", ""]
    lines += ["- " + n for n in data["notes"]]
    lines += ["", "## Method", ""]
    lines += ["- " + x for x in data["method"]]
    v = data["versions"]
    lines += ["", "## Machine", "", bl.md_table(["", ""], [
        ["date (UTC)", m["date"]], ["CPU", m["cpu_model"]], ["nproc", str(m["nproc"])],
        ["memory", "%s MB" % m["mem_total_mb"]], ["OS / kernel", "%s / %s" % (m["os"], m["kernel"])],
        ["restmon", v.get("restmon") or "n/a"], ["wrk", v.get("wrk") or "n/a"],
        ["python / SQLite (peer)", "%s / %s" % (v.get("python"), v.get("sqlite"))],
        ["store", "%s runs, %s steps, %.2f GB, filled in %s s (%s)" % (
            fnum(st["runs"]), fnum(st["steps"]), (st.get("db_bytes") or 0) / 1e9, fnum(st["seconds"]),
            data["config"]["dir"])],
        ["git", data.get("git") or "n/a"],
        ["load average (1 min) at start / end", "%s / %s" % (m.get("loadavg_1m_start"), m.get("loadavg_1m_end"))],
        ["benchmark wall time", "%s s" % fnum(data.get("wall_s"))]], "ll"), ""]
    return "\n".join(lines)


def summary_lines(cfg, data):
    out = []
    for name, label, _ in ENDPOINTS:
        e = data["endpoints"][name]
        rs, rp = e["restmon"]["saturation"], e["restmon"]["paced"]
        line = "%-44s RestMon %7s req/s p99 %6s ms | at %d req/s: %7s req/s p99 %6s ms" % (
            label, fnum(rs["requests_per_s"]), ms(rs, "p99"), cfg.rate, fnum(rp["requests_per_s"]), ms(rp, "p99"))
        if e.get("peer"):
            line += " | peer %s req/s, RestMon/peer %s req/s, %s p99 at rate" % (
                fnum(e["peer"]["saturation"]["requests_per_s"]), rx(e["ratios"]["requests_per_s"]),
                rx(e["ratios"]["p99_paced"]))
        out.append(line)
    return out


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def versions(cfg):
    line = bl.first_line(bl.run_text([cfg.restmon, "--version"], 10))
    wrk_text = bl.run_text(["wrk", "-v"], 10)
    return {"restmon_full": line, "restmon": line.split(" (")[0] if line else None,
            "wrk": bl.first_line(wrk_text).split("[")[0].strip() if wrk_text else None,
            "python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}


def preflight(cfg):
    missing = []
    for exe, how in ((cfg.restmon, "make build"), (cfg.store_bin, "make build/rel/bench/store_bench, or make bench")):
        if not os.access(exe, os.X_OK):
            missing.append("%s (%s)" % (exe, how))
    if not shutil.which("wrk"):
        missing.append("wrk (scripts/install-deps)")
    if not os.path.exists(LUA):
        missing.append(LUA)
    if missing:
        raise BenchError("missing: " + ", ".join(missing))
    if not os.path.isdir(cfg.dir):
        raise BenchError("BENCH_API_DIR %s is not a folder" % cfg.dir)


def main():
    t_start = time.monotonic()
    load_start = loadavg()
    cfg = Config()
    preflight(cfg)
    perf, perf_why = perf_works() if cfg.profile else (None, "BENCH_API_PROFILE=0")
    n_ep = len(ENDPOINTS)
    prog = bl.Progress(2 + n_ep + (1 if perf else 0))
    workdir = tempfile.mkdtemp(prefix="restmon-bench-api-", dir=cfg.dir)
    password = secrets.token_urlsafe(18)
    data = {
        "benchmark": NAME,
        "schema": 1,
        "ok": False,
        "config": {"runs": cfg.runs, "seconds": cfg.seconds, "paced_seconds": cfg.paced_seconds,
                   "warmup_seconds": cfg.warmup, "rate": cfg.rate, "connections": cfg.connections, "retry_budget_s": cfg.retry_budget,
                   "paced_connections": cfg.paced_connections, "wrk_threads": cfg.threads, "sample": cfg.sample,
                   "peer": cfg.peer, "profile": bool(perf), "dir": cfg.dir, "database_threads": 2,
                   "endpoints": {name: {"label": label, "path": path or "/api/v1/runs/{id}"}
                                 for name, label, path in ENDPOINTS}},
        "goals": {"p99_ms": GOAL_P99_MS, "rate": GOAL_RATE, "runs": GOAL_RUNS},
        "machine": bl.machine_info(),
        "versions": versions(cfg),
        "git": bl.git_revision(),
        "endpoints": {name: {} for name, _, _ in ENDPOINTS},
        "profiles": {},
        "notes": [],
    }
    restmon = peer = None
    try:
        db_path = os.path.join(workdir, "restmon.db")
        prog.step("fill a SQLite store with %s runs (store_bench fill)" % fnum(cfg.runs))
        data["store"] = fill(cfg, db_path)
        counts, ids = store_facts(db_path, cfg.sample)
        data["store"]["status_counts"] = counts
        prog.note("%s runs, %s steps, %s failed, %.0f MB in %s s" % (
            fnum(data["store"]["runs"]), fnum(data["store"]["steps"]), fnum(counts.get("failed", 0)),
            (data["store"]["db_bytes"] or 0) / 1e6, fnum(data["store"]["seconds"])))
        files = endpoint_paths(workdir, ids)

        prog.step("start restmon serve%s, log in, check the answers" % (" and the peer" if cfg.peer else ""))
        conf = write_config(workdir, db_path)
        restmon = Server("restmon", [cfg.restmon, "serve", "-c", conf], restmon_env(password), workdir,
                         rb"RestMon listening on (http://127\.0\.0\.1:\d+)", True)
        restmon.start()
        token = login(restmon.url, password)
        if cfg.peer:
            peer = Server("peer", [bl.PYTHON, os.path.abspath(__file__), "--peer", db_path], None, workdir,
                          rb"peer listening on (http://127\.0\.0\.1:\d+)", False)
            peer.start()
        sizes = check_answers(restmon.url, peer.url if peer else None, token, ids, counts.get("failed", 0))
        data["idle"] = {"restmon_cpu_share": idle_check(restmon), "restmon_threads": restmon.threads()}
        if peer:
            data["idle"]["peer_cpu_share"] = idle_check(peer, 1.0)
        prog.note("restmon %s%s; answers %s bytes (list, failed list, detail); RestMon idle: %.1f%% of a core, "
                  "%s threads" % (restmon.url, ", peer %s" % peer.url if peer else "",
                                  "/".join(str(sizes[k]) for k in ("list", "list_failed", "detail")),
                                  100 * data["idle"]["restmon_cpu_share"], restmon.threads()))

        retries = Retries(cfg.retry_budget)
        res = measure(cfg, [srv for srv in (restmon, peer) if srv], token, files, prog, retries)
        for name in res:
            data["endpoints"][name].update(res[name])
        data["retries"] = retries.used
        if peer:
            data["idle"]["peer_threads_after"] = peer.threads()
            peer.stop()
            peer = None
        if perf:
            prog.step("perf profile of restmon, %d s per endpoint at saturation" % cfg.profile_seconds)
            for name, _, _ in ENDPOINTS:
                data["profiles"][name] = profile(cfg, perf, restmon, restmon.url, files[name], token, workdir, name)
                p = data["profiles"][name]
                prog.note("%s: %s" % (name, p.get("skipped") or ", ".join(
                    "%s %s%%" % (g, s) for g, s in p["thread_share"].items())))
        else:
            data["notes"].append("No perf profile: %s." % perf_why)
        bad, total = unfinished_runs(db_path)
        data["idle"]["restmon_cpu_share_after"] = idle_check(restmon)
        data["idle"]["runs_after"] = total
        data["idle"]["restmon_rss_mb_after"] = restmon.rss_mb()
        if bad or total != data["store"]["runs"]:
            raise BenchError("the store changed under load: %d queued or running runs, %d runs (filled %d)" % (
                bad, total, data["store"]["runs"]))
        restmon.stop()
        restmon = None
    finally:
        for s in (restmon, peer):
            if s:
                s.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    data["verdicts"] = verdicts(cfg, data)
    data["machine"]["loadavg_1m_start"] = load_start
    data["machine"]["loadavg_1m_end"] = loadavg()
    data["method"] = [
        "Store: `build/rel/bench/store_bench fill sqlite:DB %d` (bench/store_fill.c: 20 workflows over 30 days, "
        "2-4 steps per run, 6%% failed), secondary indexes built after loading." % cfg.runs,
        "RestMon: `build/rel/restmon serve -c restmon.conf` with database.threads = 2, log.level = warn, retention "
        "off (the filled runs are up to 30 days old), no RESTMON_* variables from the caller; the admin user from "
        "RESTMON_ADMIN_PASSWORD and one login; every request carries that Bearer token. The in-process executor "
        "stays idle (all runs are finished): the server's CPU is checked under %d%% of a core before and after "
        "the load, and the store still has only finished runs." % int(100 * IDLE_CPU_SHARE),
        "Peer: this script with --peer DB, one process with one thread and one sqlite3 connection per client "
        "connection (ThreadingHTTPServer; the threads take turns on Python's interpreter lock), Python's statement cache, TCP_NODELAY and one write per answer; per request the "
        "session lookup by SHA-256 of the token, then the count (capped at 10,001) and the page, or the run, its "
        "steps and annotations, in one read transaction each as core/store does; JSON columns decoded and the "
        "answer re-encoded like RestMon's envelope. Before the load, RestMon's and the peer's answers to both "
        "lists and three details are compared value by value.",
        "Both servers run side by side and take turns, run by run (RestMon saturation, peer saturation, RestMon "
        "paced, peer paced, endpoint by endpoint), so that other work on the machine falls on both alike; the idle "
        "one uses under 1%% of a core. A run during which other processes used more than %s cores is repeated "
        "once and the quieter of the two counts (up to %d s of repeats; %d repeated this time)." % (
            NOISY_CORES, cfg.retry_budget, data.get("retries", 0)),
        "%s, `wrk -t%d -c%d -d%ds --timeout 10s -s bench/wrk/api.lua`; the script sets the Authorization "
        "header, rotates the detail requests through %d run ids sampled (seeded) from the whole store, and "
        "prints its results as one JSON line from done(); any socket error or non-2xx answer fails the bench." % (
            data["versions"].get("wrk") or "wrk", cfg.threads, cfg.connections, cfg.seconds, len(ids)),
        "Paced load: wrk has no fixed-rate mode; the script's delay() gives each request the next free send slot "
        "%s ms apart per wrk thread, never in the past, so the rate holds while connections are free and a slow "
        "server gets no catch-up burst. No coordinated-omission correction: a stalled server shows as a lower "
        "achieved rate, which the table prints next to the latencies." % fnum(1000.0 * cfg.threads / cfg.rate, 2),
        "CPU: utime + stime of the server process from /proc/PID/stat before and after each run; wrk's own CPU is "
        "in the JSON (wrk_cpu_s). wrk runs on the same 2 cores as the server.",
    ]
    if cfg.runs < GOAL_RUNS:
        data["notes"].append("%s runs stored, fewer than the %s of the goal (BENCH_API_RUNS)" % (
            fnum(cfg.runs), fnum(GOAL_RUNS)))
    short = [n for n, _, _ in ENDPOINTS if not data["endpoints"][n]["restmon"]["paced"]["sustained"]]
    if short:
        data["notes"].append("RestMon could not sustain %s req/s on %s: its saturation rate there is below the "
                             "target, so the paced figures are those of a saturated server." % (
                                 fnum(cfg.rate), ", ".join("`%s`" % dict((n, lbl) for n, lbl, _ in ENDPOINTS)[s]
                                                           for s in short)))
    load_notes(data)
    data["notes"].append("Each list answer runs two queries (a count capped at 10,001 matches and the page); "
                         "the peer runs the same two. Both list variants page from the newest run.")
    data["wall_s"] = round(time.monotonic() - t_start, 1)
    data["ok"] = True
    md = render(cfg, data)
    jpath, mpath = bl.write_results(NAME, data, md)
    print()
    print(md)
    print("\n".join(summary_lines(cfg, data)))
    print("\nwrote %s and %s (%.0f s)" % (os.path.relpath(jpath, bl.ROOT), os.path.relpath(mpath, bl.ROOT),
                                           data["wall_s"]))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--peer":
        sys.exit(peer_main(sys.argv[2]))
    try:
        sys.exit(main())
    except BenchError as e:
        bl.warn("api: %s" % e)
        sys.exit(1)
    except KeyboardInterrupt:
        bl.warn("api: interrupted")
        sys.exit(130)
