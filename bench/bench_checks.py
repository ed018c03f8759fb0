#!/usr/bin/python3
"""Checks benchmark: scheduled HTTP checks through the whole server.

`restmon serve` (build/rel/restmon, SQLite store) runs BENCH_CHECKS_MONITORS
check monitors, each a one-task HTTP check (GET /health) on one shared
schedule that fires every second, against a fast local target: a second
`restmon serve` whose /health is answered by its HTTP server without the
store. Each check is a real run: queued, claimed by the executor, the HTTP
request made, the step and the run written to the store, the run-finished
hooks (signals, notifications, the scheduler's overlap guard) applied.

The monitors are created on a schedule far in the future, then the
schedule is changed to every second, so they all start at once (the
re-plan path). After BENCH_CHECKS_WARMUP_SECONDS, for
BENCH_CHECKS_SECONDS the benchmark reads, from the server's /metrics and
/proc: runs finished (by status), fires (queued, overlap: skipped because
the previous run of that monitor had not finished, failed), the
scheduler's lateness histogram, and the server's CPU time. Results:
completed checks per second, checks per CPU-second ("per core": the
server process's user + system time, all its threads), the share of fires
skipped for overlap, p50/p99 fire lateness, and the signals stored when
the signal routes exist.

Goal (issue 6): at least 10,000 checks per second per core.

Writes bench/results/checks.json and bench/results/checks.md. Exits 1 when
the result is not meaningful: a server dies, no check completes, or checks
fail (the target answers 200, so every check must succeed).

Environment (all optional):
    BENCH_CHECKS_MONITORS         check monitors (default 2000)
    BENCH_CHECKS_SECONDS          measured seconds (default 20)
    BENCH_CHECKS_WARMUP_SECONDS   seconds before measuring (default 5)
    BENCH_CHECKS_CONCURRENCY      executor.concurrency (default 256)
    BENCH_CHECKS_BIN              the restmon binary (default build/rel/restmon)
    BENCH_CHECKS_RESULTS          folder for checks.json/checks.md (default bench/results)
    BENCH_CHECKS_PIDFILE          when set, the server's pid is written there once the
                                  checks run (to attach a profiler during the measure)
"""

import http.client
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("BENCH_CHECKS_BIN") or REPO / "build" / "rel" / "restmon")
RESULTS = Path(os.environ.get("BENCH_CHECKS_RESULTS") or REPO / "bench" / "results")
PIDFILE = os.environ.get("BENCH_CHECKS_PIDFILE")
ADMIN_PW = "bench-checks-password-42"
MONITORS = int(os.environ.get("BENCH_CHECKS_MONITORS", "2000"))
SECONDS = float(os.environ.get("BENCH_CHECKS_SECONDS", "20"))
WARMUP = float(os.environ.get("BENCH_CHECKS_WARMUP_SECONDS", "5"))
CONCURRENCY = int(os.environ.get("BENCH_CHECKS_CONCURRENCY", "256"))
TICK = os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, workdir, name, concurrency):
        self.dir = Path(workdir) / name
        self.dir.mkdir()
        conf = self.dir / "restmon.conf"
        conf.write_text("database = sqlite:%s\nlisten = 127.0.0.1:0\nvault.key_file = %s\nweb.dir = %s\n"
                        "executor.concurrency = %d\nlog.level = warn\n"
                        % (self.dir / "restmon.db", self.dir / "master.key", self.dir / "no-web", concurrency))
        env = dict(os.environ, RESTMON_ADMIN_PASSWORD=ADMIN_PW)
        env.pop("RESTMON_CONFIG", None)
        self.err = open(self.dir / "stderr", "wb")
        self.proc = subprocess.Popen([str(BIN), "serve", "-c", str(conf)], stdout=subprocess.PIPE, stderr=self.err,
                                     env=env, cwd=str(self.dir))
        self.port = self._wait_port()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.token = None

    def _wait_port(self):
        out, deadline = b"", time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
                m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", out)
                if m:
                    return int(m.group(1))
        self.stop()
        sys.exit("bench checks: restmon serve did not start: %r" % out)

    def request(self, method, path, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for attempt in (1, 2):  # a kept-alive connection may have been closed while idle
            try:
                self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                                  headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise

    def api(self, method, path, body=None, want=200):
        status, data = self.request(method, "/api/v1" + path, body)
        if status != want:
            sys.exit("bench checks: %s %s: %d %s" % (method, path, status, data[:500]))
        return json.loads(data)["data"]

    def login(self):
        self.token = self.api("POST", "/auth/login", {"username": "admin", "password": ADMIN_PW})["token"]

    def cpu_s(self):
        fields = Path("/proc/%d/stat" % self.proc.pid).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def metrics(self):
        _, data = self.request("GET", "/metrics")
        return data.decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        return self.proc.returncode


def metric(text, name, labels=None):
    """The sum of the samples of name whose labels include labels."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:]+)(\{[^}]*\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in (labels or {}).items()):
            total += float(m.group(3))
    return total


def buckets(text, name):
    out = []
    for le, v in re.findall(r'^%s_bucket\{le="([^"]+)"\} (\S+)$' % name, text, re.M):
        out.append((float("inf") if le == "+Inf" else float(le), float(v)))
    return sorted(out)


def quantile(before, after, q):
    """q-quantile (upper bucket bound) of the observations between two reads."""
    diff = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = diff[-1][1] if diff else 0
    for le, c in diff:
        if total and c >= q * total:
            return le
    return None


def snapshot(srv):
    text = srv.metrics()
    return {"t": time.monotonic(), "cpu": srv.cpu_s(), "text": text,
            "succeeded": metric(text, "restmon_runs_finished_total", {"status": "succeeded"}),
            "finished": metric(text, "restmon_runs_finished_total"),
            "queued": metric(text, "restmon_checks_total", {"outcome": "queued"}),
            "overlap": metric(text, "restmon_checks_total", {"outcome": "overlap"}),
            "failed": metric(text, "restmon_checks_total", {"outcome": "failed"}),
            "fires": metric(text, "restmon_scheduler_fires_total", {"kind": "on_time"}),
            "late": buckets(text, "restmon_scheduler_lateness_seconds")}


def setup(srv, target_port):
    task = srv.api("POST", "/tasks", {"name": "bench-health", "definition": {
        "type": "http", "request": {"method": "GET", "url": "http://127.0.0.1:%d/health" % target_port}}}, want=201)
    sched = srv.api("POST", "/schedules", {"name": "bench-every-second", "cron": "0 0 1 1 *"}, want=201)
    for i in range(MONITORS):
        srv.api("POST", "/monitors", {"name": "bench-check-%05d" % i, "type": "check", "task_id": task["id"],
                                      "schedule_id": sched["id"], "timeout_ms": 5000}, want=201)
    srv.api("PUT", "/schedules/" + sched["id"], {"name": "bench-every-second", "every": {"seconds": 1},
                                                 "version": sched["version"]})


def kept_notes(path):
    """The hand-written part of an earlier checks.md (from its "## What it
    costs" heading on: profiles and their reading), kept under the new
    figures."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    at = text.find("\n## What it costs")
    return text[at:] if at >= 0 else ""


def signals_stored(srv):
    status, data = srv.request("GET", "/api/v1/signals?page_size=1")
    return json.loads(data)["data"].get("total") if status == 200 else None


def main():
    if not BIN.exists():
        sys.exit("bench checks: %s is missing (make build)" % BIN)
    work = tempfile.mkdtemp(prefix="bench-checks-")
    target = srv = None
    try:
        target = Server(work, "target", 1)
        srv = Server(work, "server", CONCURRENCY)
        srv.login()
        t0 = time.monotonic()
        setup(srv, target.port)
        print("bench checks: %d monitors created in %.1f s" % (MONITORS, time.monotonic() - t0))
        if PIDFILE:
            Path(PIDFILE).write_text("%d\n" % srv.proc.pid)
        time.sleep(WARMUP)
        a = snapshot(srv)
        target_cpu0 = target.cpu_s()
        time.sleep(SECONDS)
        b = snapshot(srv)
        target_cpu = target.cpu_s() - target_cpu0
        signals = signals_stored(srv)
        dt = b["t"] - a["t"]
        done = b["succeeded"] - a["succeeded"]
        bad = (b["finished"] - a["finished"]) - done
        cpu = b["cpu"] - a["cpu"]
        fires = b["fires"] - a["fires"]
        res = {
            "monitors": MONITORS, "seconds": round(dt, 2), "executor_concurrency": CONCURRENCY,
            "offered_fires_per_s": round(fires / dt, 1),
            "checks_per_s": round(done / dt, 1),
            "server_cpu_s": round(cpu, 2), "server_cores_busy": round(cpu / dt, 2),
            "checks_per_cpu_s": round(done / cpu, 1) if cpu else None,
            "target_cpu_s": round(target_cpu, 2),
            "overlap_share": round((b["overlap"] - a["overlap"]) / fires, 3) if fires else None,
            "not_queued": b["failed"] - a["failed"], "failed_runs": bad,
            "lateness_p50_ms": (lambda v: v and round(v * 1000, 3))(quantile(a["late"], b["late"], 0.5)),
            "lateness_p99_ms": (lambda v: v and round(v * 1000, 3))(quantile(a["late"], b["late"], 0.99)),
            "signals_stored": signals, "goal_checks_per_cpu_s": 10000,
        }
    finally:
        for s in (srv, target):
            if s:
                s.stop()
    ok = res["checks_per_s"] > 0 and res["failed_runs"] == 0 and res["not_queued"] == 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "checks.json").write_text(json.dumps(res, indent=2) + "\n")
    md = ["# Checks benchmark", "",
          "%d one-task HTTP check monitors on one every-second schedule, `restmon serve` on SQLite, target: "
          "another `restmon serve`'s /health on this machine (2 cores shared by both)." % MONITORS, "",
          "| measure | value |", "|---|---|"]
    md += ["| %s | %s |" % (k, v) for k, v in res.items()]
    md += ["", "Goal: 10,000 checks per second per core (checks_per_cpu_s). %s" %
           ("Met." if (res["checks_per_cpu_s"] or 0) >= 10000 else "NOT met: see checks_per_cpu_s.")]
    notes = kept_notes(RESULTS / "checks.md")
    (RESULTS / "checks.md").write_text("\n".join(md) + "\n" + notes)
    print("\n".join(md))
    shutil.rmtree(work, ignore_errors=True)
    if not ok:
        sys.exit("bench checks: not meaningful (no check completed, or checks failed)")


if __name__ == "__main__":
    main()
