#!/usr/bin/python3
"""Transaction benchmark: RestMon against Newman on the same four-request
transaction (examples/order-transaction.json and
bench/newman/order-transaction.postman_collection.json) against the same
mock API, plus wrk's request-rate ceiling of that mock and callgrind
instruction counts per transaction.

Writes bench/results/transaction.json and bench/results/transaction.md and
prints the table. Exits 1 (and leaves earlier results alone) when either
tool had a failed transaction or the mock saw other requests than the
transactions should send.

Environment (all optional):
    BENCH_N                   transactions per tool (default 1000)
    BENCH_CONCURRENCY         RestMon's throughput run (default 10)
    BENCH_WRK_SECONDS         length of each wrk run (default 5)
    BENCH_TOOLS               restmon,newman (default both)
    BENCH_RESTMON             the binary (default build/rel/restmon)
    BENCH_CALLGRIND           0 skips the instruction counts
    BENCH_CG_RESTMON          repeat counts for callgrind (default 10,50)
    BENCH_CG_NEWMAN           iteration counts for callgrind (default 2,12)
    BENCH_CG_NEWMAN_BUDGET_S  time allowed for Newman's two callgrind runs
                              (default 240); over it they are skipped
    BENCH_MOCK_RAW            1 runs examples/mock_api.py without TCP_NODELAY
"""

import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import benchlib as bl  # noqa: E402
from benchlib import BenchError, fnum  # noqa: E402

NAME = "transaction"
WORKFLOW = "examples/order-transaction.json"
SECRETS = "examples/secrets.example.env"
COLLECTION = "bench/newman/order-transaction.postman_collection.json"
NEWMAN_JS = os.path.join(bl.BENCH, "node_modules", "newman", "bin", "newman.js")
REQUESTS_PER_TX = 4
# A run at or above these shares of the mock's capacity measures the mock.
BOUND_CPU_SHARE = 0.85
BOUND_CEILING_SHARE = 0.80


# -- configuration ------------------------------------------------------------

class Config:
    def __init__(self):
        self.n = bl.env_int("BENCH_N", 1000)
        self.concurrency = bl.env_int("BENCH_CONCURRENCY", 10, 1, 1000)
        self.wrk_seconds = bl.env_int("BENCH_WRK_SECONDS", 5, 1, 120)
        tools = os.environ.get("BENCH_TOOLS", "restmon,newman")
        self.tools = [t.strip() for t in tools.split(",") if t.strip()]
        for t in self.tools:
            if t not in ("restmon", "newman"):
                raise BenchError("BENCH_TOOLS: unknown tool %r (restmon, newman)" % t)
        self.restmon = os.environ.get("BENCH_RESTMON") or os.path.join(bl.ROOT, "build", "rel", "restmon")
        self.callgrind = bl.env_flag("BENCH_CALLGRIND", True)
        self.cg_restmon = self._pair("BENCH_CG_RESTMON", (10, 50))
        self.cg_newman = self._pair("BENCH_CG_NEWMAN", (2, 12))
        self.cg_newman_budget_s = bl.env_int("BENCH_CG_NEWMAN_BUDGET_S", 240, 10, 7200)
        self.mock_raw = bl.env_flag("BENCH_MOCK_RAW", False)
        self.node = shutil.which("node")

    @staticmethod
    def _pair(name, default):
        raw = os.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            a, b = (int(x) for x in raw.split(","))
        except ValueError:
            raise BenchError("%s must be two integers like 10,50, got %r" % (name, raw))
        if not 1 <= a < b <= 100_000:
            raise BenchError("%s: need 1 <= small < large, got %r" % (name, raw))
        return a, b


def api_password():
    """API_PASSWORD from the example secrets file (the same one RestMon reads)."""
    with open(os.path.join(bl.ROOT, SECRETS)) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                if k.strip().lower() == "api_password":
                    return v.strip()
    raise BenchError("no API_PASSWORD in %s" % SECRETS)


def assertions_per_iteration():
    """pm.test() calls in the collection: Newman's expected assertion count
    per iteration."""
    with open(os.path.join(bl.ROOT, COLLECTION)) as f:
        col = json.load(f)
    n = 0
    for item in col.get("item", []):
        for ev in item.get("event", []):
            if ev.get("listen") == "test":
                n += sum(line.count("pm.test(") for line in ev.get("script", {}).get("exec", []))
    return n


# -- the tools ------------------------------------------------------------------

def restmon_argv(cfg, url, repeat, concurrency):
    return [cfg.restmon, "run", WORKFLOW, "--secrets-file", SECRETS,
            "--var", "base_url=" + url, "--repeat", str(repeat),
            "--concurrency", str(concurrency), "--json"]


def newman_argv(cfg, url, iterations, password):
    return [cfg.node, NEWMAN_JS, "run", COLLECTION, "-n", str(iterations),
            "--env-var", "base_url=" + url, "--env-var", "api_password=" + password,
            "--timeout-request", "5000", "--reporters", "benchsummary"]


def check_restmon(r, n):
    """The run's summary; raises unless all n transactions succeeded."""
    if r["timed_out"]:
        raise BenchError("restmon did not finish within %.0f s" % r["wall_s"])
    s = bl.last_json_object(r["stdout"])
    if s is None:
        raise BenchError("restmon (rc %s) printed no JSON summary:\n%s" % (r["rc"], bl.tail(r["stdout"] + r["stderr"])))
    problems = []
    if r["rc"] != 0:
        problems.append("exit code %s" % r["rc"])
    if s.get("runs") != n:
        problems.append("runs %r, expected %d" % (s.get("runs"), n))
    if s.get("succeeded") != n:
        problems.append("succeeded %r of %d" % (s.get("succeeded"), n))
    if s.get("failed"):
        problems.append("failed %r" % s.get("failed"))
    if problems:
        raise BenchError("restmon: %s\n%s" % ("; ".join(problems), bl.tail(r["stderr"] or r["stdout"])))
    return s


def check_newman(r, n, per_iteration):
    if r["timed_out"]:
        raise BenchError("newman did not finish within %.0f s" % r["wall_s"])
    s = bl.last_json_object(r["stdout"])
    if s is None or "benchsummary" not in s:
        raise BenchError("newman (rc %s) printed no summary:\n%s" % (r["rc"], bl.tail(r["stdout"] + r["stderr"])))
    problems = []
    if r["rc"] != 0:
        problems.append("exit code %s" % r["rc"])
    if s.get("error"):
        problems.append("run error: %s" % s["error"])
    if s["iterations"]["total"] != n:
        problems.append("iterations %d, expected %d" % (s["iterations"]["total"], n))
    if s["requests"]["total"] != REQUESTS_PER_TX * n or s["requests"]["failed"]:
        problems.append("requests %d (%d failed), expected %d" % (
            s["requests"]["total"], s["requests"]["failed"], REQUESTS_PER_TX * n))
    if s["assertions"]["total"] != per_iteration * n:
        problems.append("assertions %d, expected %d" % (s["assertions"]["total"], per_iteration * n))
    if s["assertions"]["failed"] or s["test_scripts"]["failed"] or s["prerequest_scripts"]["failed"]:
        problems.append("failed: %d assertions, %d test scripts, %d pre-request scripts" % (
            s["assertions"]["failed"], s["test_scripts"]["failed"], s["prerequest_scripts"]["failed"]))
    if s.get("failures") or s.get("failed_iterations"):
        problems.append("%d failures in %d iterations, first: %s" % (
            s["failures"], s["failed_iterations"], json.dumps(s.get("first_failures"))))
    if problems:
        raise BenchError("newman: %s\n%s" % ("; ".join(problems), bl.tail(r["stderr"])))
    return s


def check_mock_stats(stats, n, tool):
    """The mock must have seen exactly the n transactions' requests."""
    by_path = stats.get("by_path", {})
    order_reads = sum(v for k, v in by_path.items() if k.startswith("/orders/"))
    expected = {
        "requests": (stats.get("requests"), REQUESTS_PER_TX * n),
        "POST /login": (by_path.get("/login", 0), n),
        "POST /orders": (by_path.get("/orders", 0), n),
        "GET /orders/{id}": (order_reads, 2 * n),
        "orders created": (stats.get("orders"), n),
    }
    bad = ["%s %r, expected %d" % (k, got, want) for k, (got, want) in expected.items() if got != want]
    if bad:
        raise BenchError("%s: the mock API saw other traffic than %d transactions: %s"
                         % (tool, n, "; ".join(bad)))


def measure(mock, argv, timeout_s):
    """Runs argv once against a freshly reset mock; the run plus the mock's
    CPU and request counts during it."""
    mock.reset()
    cpu0 = mock.cpu_s()
    r = bl.run_measured(argv, timeout_s=timeout_s)
    r["mock_cpu_s"] = mock.cpu_s() - cpu0
    if not mock.alive():
        raise BenchError("the mock API exited during `%s`" % " ".join(argv[:3]))
    r["mock_stats"] = mock.stats()
    return r


def summarize(tool, label, r, n, concurrency, ceiling_rps, reported):
    wall = r["wall_s"]
    req_rate = REQUESTS_PER_TX * n / wall if wall > 0 else None
    mock_share = r["mock_cpu_s"] / wall if wall > 0 else None
    ceiling_share = req_rate / ceiling_rps if req_rate and ceiling_rps else None
    bound = bool((mock_share is not None and mock_share >= BOUND_CPU_SHARE)
                 or (ceiling_share is not None and ceiling_share >= BOUND_CEILING_SHARE))
    return {
        "tool": tool,
        "label": label,
        "concurrency": concurrency,
        "transactions": n,
        "succeeded": n,
        "failed": 0,
        "argv": [("api_password=***" if a.startswith("api_password=") else a) for a in r["argv"]],
        "wall_s": round(wall, 4),
        "tx_per_s": round(n / wall, 2) if wall > 0 else None,
        "user_s": round(r["user_s"], 4),
        "sys_s": round(r["sys_s"], 4),
        "cpu_s": round(r["cpu_s"], 4),
        "cpu_ms_per_tx": round(r["cpu_s"] * 1000.0 / n, 4),
        "maxrss_kb": r["maxrss_kb"],
        "tool_reported": reported,
        "mock": {
            "cpu_s": round(r["mock_cpu_s"], 3),
            "cpu_share_of_wall": round(mock_share, 3) if mock_share is not None else None,
            "requests": r["mock_stats"].get("requests"),
            "requests_per_s": round(req_rate, 1) if req_rate else None,
            "share_of_wrk_ceiling": round(ceiling_share, 3) if ceiling_share is not None else None,
            "target_bound": bound,
        },
    }


def restmon_reported(s):
    keys = ("runs", "succeeded", "failed", "wall_ms", "cpu_ms", "p50_ms", "p95_ms", "p99_ms", "runs_per_s")
    return {k: s.get(k) for k in keys if k in s}


def newman_reported(s):
    out = {"iterations": s["iterations"]["total"], "requests": s["requests"]["total"],
           "assertions": s["assertions"]["total"], "iteration_ms": s.get("iteration_ms")}
    if s.get("started_ms") and s.get("completed_ms"):
        out["run_ms"] = s["completed_ms"] - s["started_ms"]
    return out


# -- callgrind ------------------------------------------------------------------

def cg_pair(name, make_argv, check, pair, out_dir, budget_s, mock):
    """Ir at two sizes; per-transaction Ir = difference / size difference,
    start-up Ir = what is left of the small run."""
    small, large = pair
    res = {"small": small, "large": large}
    spent = 0.0
    for size in (small, large):
        left = budget_s - spent
        if left <= 5:
            res["skipped"] = "time budget of %d s used up before the %d-transaction run" % (budget_s, size)
            return res
        mock.reset()
        r = bl.callgrind(make_argv(size), os.path.join(out_dir, "callgrind.%s.%d.out" % (name, size)), left)
        spent += r["wall_s"]
        res["wall_s_%d" % size] = round(r["wall_s"], 1)
        if r["timed_out"]:
            res["skipped"] = ("the %d-transaction run did not finish within the %d s left of a %d s budget "
                              "(%.0f s spent so far)" % (size, int(left), budget_s, spent))
            return res
        check(r, size)
        if not r["ir"]:
            raise BenchError("%s under callgrind: no totals in the callgrind output" % name)
        res["ir_%d" % size] = r["ir"]
    per_tx = (res["ir_%d" % large] - res["ir_%d" % small]) / float(large - small)
    res["ir_per_tx"] = int(round(per_tx))
    res["startup_ir"] = int(round(res["ir_%d" % small] - small * per_tx))
    res["wall_s"] = round(spent, 1)
    return res


# -- report -----------------------------------------------------------------------

def _short_curl(line):
    """"curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1 OpenSSL/3.0.19 ..."
    -> "curl 7.88.1, libcurl/7.88.1 OpenSSL/3.0.19"."""
    if not line:
        return None
    words = line.split()
    libs = [w for w in words if w.startswith(("libcurl/", "OpenSSL/", "GnuTLS/", "nghttp2/"))]
    return " ".join(words[:2]) + (", " + " ".join(libs) if libs else "")


def versions(cfg):
    v = {}
    line = bl.first_line(bl.run_text([cfg.restmon, "--version"], 10)) if os.access(cfg.restmon, os.X_OK) else None
    v["restmon_full"] = line
    v["restmon"] = line.split(" (")[0] if line else None
    if line and "libcurl/" in line:
        v["restmon_libcurl"] = line.split("libcurl/", 1)[1].split()[0].rstrip(")")
    if cfg.node:
        v["node"] = bl.first_line(bl.run_text([cfg.node, "--version"], 10))
        if os.path.exists(NEWMAN_JS):
            v["newman"] = bl.first_line(bl.run_text([cfg.node, NEWMAN_JS, "--version"], 30))
    v["curl"] = _short_curl(bl.first_line(bl.run_text(["curl", "--version"], 10)))
    wrk_text = bl.run_text(["wrk", "-v"], 10)
    v["wrk"] = bl.first_line(wrk_text).split("[")[0].strip() if wrk_text else None
    v["valgrind"] = bl.first_line(bl.run_text(["valgrind", "--version"], 10))
    v["python"] = sys.version.split()[0]
    return v


def ratio(a, b, digits=3):
    if a is None or b is None or b == 0:
        return None
    return round(a / float(b), digits)


def render(data):
    runs = data["runs"]
    rm, rmc, nw = runs.get("restmon_c1"), runs.get("restmon_cN"), runs.get("newman")
    cg = data.get("callgrind", {})
    cgr, cgn = cg.get("restmon", {}), cg.get("newman", {})
    rt = data["ratios"]
    n = data["config"]["n"]

    def col(run, key, digits=1, scale=1.0):
        if not run or run.get(key) is None:
            return "n/a"
        return fnum(run[key] * scale if scale != 1.0 else run[key], digits)

    def mock_col(run):
        if not run:
            return "n/a"
        m = run["mock"]
        return "%s%% CPU, %s%% of ceiling%s" % (
            fnum(100 * m["cpu_share_of_wall"], 0), fnum(100 * (m["share_of_wrk_ceiling"] or 0), 0),
            " (bound)" if m["target_bound"] else "")

    def rep(run, key):
        r = (run or {}).get("tool_reported") or {}
        return fnum(r.get(key), 2) if r.get(key) is not None else "n/a"

    def nw_iter(key):
        it = ((nw or {}).get("tool_reported") or {}).get("iteration_ms") or {}
        return fnum(it.get(key), 2) if it.get(key) is not None else "n/a"

    def rx(v, digits=2):
        return "n/a" if v is None else ("%.*fx" % (digits, v))

    conc = data["config"]["concurrency"]
    headers = ["", "RestMon c=1", "RestMon c=%d" % conc, "Newman (sequential)", "RestMon c=1 / Newman"]
    rows = [
        ["transactions (all succeeded)", col(rm, "transactions"), col(rmc, "transactions"), col(nw, "transactions"), ""],
        ["wall time, s", col(rm, "wall_s", 2), col(rmc, "wall_s", 2), col(nw, "wall_s", 2), rx(ratio((rm or {}).get("wall_s"), (nw or {}).get("wall_s")), 3)],
        ["transactions/s", col(rm, "tx_per_s"), col(rmc, "tx_per_s"), col(nw, "tx_per_s"), rx(rt.get("throughput_restmon_over_newman"))],
        ["CPU ms / transaction (user+sys)", col(rm, "cpu_ms_per_tx", 3), col(rmc, "cpu_ms_per_tx", 3), col(nw, "cpu_ms_per_tx", 3), rx(rt.get("cpu_per_tx_restmon_over_newman"), 4)],
        ["  user / sys, s", "%s / %s" % (col(rm, "user_s", 2), col(rm, "sys_s", 2)),
         "%s / %s" % (col(rmc, "user_s", 2), col(rmc, "sys_s", 2)),
         "%s / %s" % (col(nw, "user_s", 2), col(nw, "sys_s", 2)), ""],
        ["peak RSS, MB", col(rm, "maxrss_kb", 1, 1 / 1024.0), col(rmc, "maxrss_kb", 1, 1 / 1024.0), col(nw, "maxrss_kb", 1, 1 / 1024.0), rx(rt.get("maxrss_restmon_over_newman"), 3)],
        ["transaction p50 / p95 / p99, ms", "%s / %s / %s" % (rep(rm, "p50_ms"), rep(rm, "p95_ms"), rep(rm, "p99_ms")),
         "%s / %s / %s" % (rep(rmc, "p50_ms"), rep(rmc, "p95_ms"), rep(rmc, "p99_ms")),
         "%s / %s / %s" % (nw_iter("p50"), nw_iter("p95"), nw_iter("p99")), ""],
        ["instructions / transaction (callgrind)", fnum(cgr.get("ir_per_tx")), "", fnum(cgn.get("ir_per_tx")) if "ir_per_tx" in cgn else "skipped" if cgn.get("skipped") else "n/a",
         rx(rt.get("ir_per_tx_restmon_over_newman"), 4)],
        ["start-up instructions (callgrind)", fnum(cgr.get("startup_ir")), "", fnum(cgn.get("startup_ir")) if "startup_ir" in cgn else "n/a",
         rx(rt.get("startup_ir_restmon_over_newman"), 4)],
        ["mock API during the run", mock_col(rm), mock_col(rmc), mock_col(nw), ""],
    ]
    main = bl.md_table(headers, rows, "lrrrr")

    w = data["wrk"]
    wrows = []
    for key, label in (("sequential", "1 connection"), ("concurrent", "%d connections" % w["concurrent"]["connections"])):
        x = w[key]
        wrows.append([label, fnum(x["requests_per_s"]), fnum(x.get("latency_avg_ms"), 3),
                      fnum(x.get("latency_p99_ms"), 3), fnum(x["requests"]), str(x["non_2xx"] + x["socket_errors"])])
    wrk_table = bl.md_table(["wrk GET /health, %d s" % w["sequential"]["seconds"], "requests/s", "latency avg ms",
                             "p99 ms", "requests", "errors"], wrows)

    m = data["machine"]
    v = data["versions"]
    lines = [
        "# Transaction benchmark: RestMon vs Newman",
        "",
        "%s, %d transactions per tool; each transaction is 4 requests (log in, create an order, "
        "read it back as JSON and as XML, with the same extractions and checks) against the demo API "
        "`examples/mock_api.py` on 127.0.0.1." % (m["date"], n),
        "",
        "## Result",
        "",
        main,
        "",
        "- Throughput, RestMon/Newman (c=1 vs sequential iterations): **%s**" % rx(rt.get("throughput_restmon_over_newman")),
        "- CPU per transaction, RestMon/Newman: **%s** (Newman uses %s as much CPU per transaction; goal: at least 10x) - goal %s" % (
            rx(rt.get("cpu_per_tx_restmon_over_newman"), 4), rx(rt.get("cpu_per_tx_newman_over_restmon"), 1),
            "met" if rt.get("cpu_goal_10x_met") else ("not met" if rt.get("cpu_goal_10x_met") is False else "n/a")),
    ]
    if rt.get("ir_per_tx_newman_over_restmon"):
        lines.append("- Instructions per transaction, Newman/RestMon: **%s**" % rx(rt["ir_per_tx_newman_over_restmon"], 1))
    if rmc and rm:
        lines.append("- RestMon c=%d vs c=1 throughput: %s" % (conc, rx(ratio(rmc["tx_per_s"], rm["tx_per_s"]))))
    lines += ["", "## Target ceiling (wrk against the same mock)", "", wrk_table, ""]
    for note in data["notes"]:
        lines.append("- " + note)
    lines += ["", "## Method", ""]
    lines += ["- " + x for x in data["method"]]
    lines += ["", "## Machine", "",
              bl.md_table(["", ""], [
                  ["date (UTC)", m["date"]],
                  ["CPU", m["cpu_model"]],
                  ["nproc", str(m["nproc"])],
                  ["memory", "%s MB" % m["mem_total_mb"]],
                  ["OS / kernel", "%s / %s" % (m["os"], m["kernel"])],
                  ["restmon", "%s (libcurl %s)" % (v.get("restmon") or "n/a", v.get("restmon_libcurl") or "n/a")],
                  ["newman / node", "%s / %s" % (v.get("newman") or "n/a", v.get("node") or "n/a")],
                  ["curl", v.get("curl") or "n/a"],
                  ["wrk / valgrind / python", "%s / %s / %s" % (v.get("wrk"), v.get("valgrind"), v.get("python"))],
                  ["git", data.get("git") or "n/a"],
              ], "ll"), ""]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------

def preflight(cfg):
    missing = []
    if "restmon" in cfg.tools and not os.access(cfg.restmon, os.X_OK):
        missing.append("%s (make build/rel/restmon)" % cfg.restmon)
    if "newman" in cfg.tools:
        if not cfg.node:
            missing.append("node")
        if not os.path.exists(NEWMAN_JS):
            missing.append("newman (npm install --prefix bench)")
    for exe in ("wrk",) + (("valgrind",) if cfg.callgrind else ()):
        if not shutil.which(exe):
            missing.append("%s (scripts/install-deps)" % exe)
    if missing:
        raise BenchError("missing: " + ", ".join(missing))


def main():
    cfg = Config()
    preflight(cfg)
    n = cfg.n
    password = api_password()
    per_iteration = assertions_per_iteration()
    run_restmon = "restmon" in cfg.tools
    run_newman = "newman" in cfg.tools

    steps = 1 + (2 if run_restmon else 0) + (1 if run_newman else 0)
    if cfg.callgrind:
        steps += int(run_restmon) + int(run_newman)
    steps += 1
    prog = bl.Progress(steps)

    out_dir = os.path.join(bl.ROOT, "build", "bench")
    os.makedirs(out_dir, exist_ok=True)
    mock = bl.Mock(raw=cfg.mock_raw, log_path=os.path.join(out_dir, "mock-api.log"))
    data = {
        "benchmark": NAME,
        "schema": 1,
        "ok": False,
        "config": {
            "n": n, "concurrency": cfg.concurrency, "wrk_seconds": cfg.wrk_seconds,
            "tools": cfg.tools, "workflow": WORKFLOW, "collection": COLLECTION,
            "requests_per_transaction": REQUESTS_PER_TX,
            "newman_assertions_per_iteration": per_iteration,
        },
        "machine": bl.machine_info(),
        "versions": versions(cfg),
        "git": bl.git_revision(),
        "runs": {},
        "callgrind": {},
        "ratios": {},
        "notes": [],
    }
    try:
        prog.step("mock API + wrk GET /health, %d s with 1 and with 10 connections" % cfg.wrk_seconds)
        url = mock.start()
        data["config"]["mock"] = {"url": url, "nagle": mock.nagle,
                                  "script": "examples/mock_api.py" if cfg.mock_raw else "bench/lib/mock_server.py -> examples/mock_api.py"}
        prog.note("mock API at %s (TCP_NODELAY: %s)" % (url, "set by the mock" if mock.nagle == "mock" and not cfg.mock_raw
                                                         else "off, BENCH_MOCK_RAW" if cfg.mock_raw else "set by bench/lib/mock_server.py"))
        seq = bl.wrk(url + "/health", cfg.wrk_seconds, connections=1)
        con = bl.wrk(url + "/health", cfg.wrk_seconds, connections=10)
        data["wrk"] = {"sequential": seq, "concurrent": con,
                       "best_requests_per_s": max(seq["requests_per_s"], con["requests_per_s"])}
        prog.note("ceiling: %s req/s on 1 connection, %s req/s on 10" % (fnum(seq["requests_per_s"]), fnum(con["requests_per_s"])))
        if seq["non_2xx"] or seq["socket_errors"] or con["non_2xx"] or con["socket_errors"]:
            data["notes"].append("wrk saw errors or non-2xx answers from the mock; the ceiling is approximate.")

        if run_restmon:
            prog.step("restmon %d runs, --concurrency 1" % n)
            warm = bl.run_measured(restmon_argv(cfg, url, 10, 1), timeout_s=60)
            check_restmon(warm, 10)
            r = measure(mock, restmon_argv(cfg, url, n, 1), timeout_s=60 + n * 0.2)
            s = check_restmon(r, n)
            check_mock_stats(r["mock_stats"], n, "restmon c=1")
            data["runs"]["restmon_c1"] = summarize("restmon", "RestMon c=1", r, n, 1, seq["requests_per_s"], restmon_reported(s))
            x = data["runs"]["restmon_c1"]
            prog.note("%s tx/s, %s CPU ms/tx, %.1f MB peak RSS" % (fnum(x["tx_per_s"]), fnum(x["cpu_ms_per_tx"], 3), x["maxrss_kb"] / 1024.0))

            prog.step("restmon %d runs, --concurrency %d" % (n, cfg.concurrency))
            r = measure(mock, restmon_argv(cfg, url, n, cfg.concurrency), timeout_s=60 + n * 0.2)
            s = check_restmon(r, n)
            check_mock_stats(r["mock_stats"], n, "restmon c=%d" % cfg.concurrency)
            data["runs"]["restmon_cN"] = summarize("restmon", "RestMon c=%d" % cfg.concurrency, r, n, cfg.concurrency,
                                                   data["wrk"]["best_requests_per_s"], restmon_reported(s))
            x = data["runs"]["restmon_cN"]
            prog.note("%s tx/s, %s CPU ms/tx, %.1f MB peak RSS" % (fnum(x["tx_per_s"]), fnum(x["cpu_ms_per_tx"], 3), x["maxrss_kb"] / 1024.0))

        if run_newman:
            prog.step("newman %d iterations" % n)
            warm = bl.run_measured(newman_argv(cfg, url, 3, password), timeout_s=120)
            check_newman(warm, 3, per_iteration)
            r = measure(mock, newman_argv(cfg, url, n, password), timeout_s=120 + n * 1.0)
            s = check_newman(r, n, per_iteration)
            check_mock_stats(r["mock_stats"], n, "newman")
            data["runs"]["newman"] = summarize("newman", "Newman", r, n, 1, seq["requests_per_s"], newman_reported(s))
            x = data["runs"]["newman"]
            prog.note("%s tx/s, %s CPU ms/tx, %.1f MB peak RSS" % (fnum(x["tx_per_s"]), fnum(x["cpu_ms_per_tx"], 3), x["maxrss_kb"] / 1024.0))

        if cfg.callgrind and run_restmon:
            a, b = cfg.cg_restmon
            prog.step("callgrind restmon --repeat %d and --repeat %d" % (a, b))
            res = cg_pair("restmon", lambda k: restmon_argv(cfg, url, k, 1), check_restmon, cfg.cg_restmon,
                          out_dir, 900, mock)
            if res.get("skipped"):
                raise BenchError("restmon under callgrind: " + res["skipped"])
            data["callgrind"]["restmon"] = res
            prog.note("%s Ir/transaction, %s Ir start-up (%.0f s)" % (fnum(res["ir_per_tx"]), fnum(res["startup_ir"]), res["wall_s"]))

        if cfg.callgrind and run_newman:
            a, b = cfg.cg_newman
            prog.step("callgrind newman -n %d and -n %d (budget %d s)" % (a, b, cfg.cg_newman_budget_s))
            res = cg_pair("newman", lambda k: newman_argv(cfg, url, k, password),
                          lambda r, k: check_newman(r, k, per_iteration), cfg.cg_newman, out_dir,
                          cfg.cg_newman_budget_s, mock)
            data["callgrind"]["newman"] = res
            if res.get("skipped"):
                prog.note("skipped: " + res["skipped"])
                data["notes"].append("Newman under callgrind was skipped: %s." % res["skipped"])
            else:
                prog.note("%s Ir/transaction, %s Ir start-up (%.0f s)" % (fnum(res["ir_per_tx"]), fnum(res["startup_ir"]), res["wall_s"]))
    finally:
        mock.stop()

    prog.step("results")
    finish(data, cfg)
    jpath, mpath = bl.write_results(NAME, data, data.pop("_markdown"))
    print()
    print(open(mpath).read())
    print("results: %s, %s" % (os.path.relpath(jpath, bl.ROOT), os.path.relpath(mpath, bl.ROOT)))
    return 0


def finish(data, cfg):
    runs = data["runs"]
    rm, nw, rmc = runs.get("restmon_c1"), runs.get("newman"), runs.get("restmon_cN")
    cgr, cgn = data["callgrind"].get("restmon", {}), data["callgrind"].get("newman", {})
    rt = data["ratios"]
    if rm and nw:
        rt["throughput_restmon_over_newman"] = ratio(rm["tx_per_s"], nw["tx_per_s"])
        rt["cpu_per_tx_restmon_over_newman"] = ratio(rm["cpu_ms_per_tx"], nw["cpu_ms_per_tx"], 4)
        rt["cpu_per_tx_newman_over_restmon"] = ratio(nw["cpu_ms_per_tx"], rm["cpu_ms_per_tx"], 2)
        rt["cpu_goal_10x_met"] = bool(rt["cpu_per_tx_newman_over_restmon"] and rt["cpu_per_tx_newman_over_restmon"] >= 10)
        rt["maxrss_restmon_over_newman"] = ratio(rm["maxrss_kb"], nw["maxrss_kb"])
    if cgr.get("ir_per_tx") and cgn.get("ir_per_tx"):
        rt["ir_per_tx_restmon_over_newman"] = ratio(cgr["ir_per_tx"], cgn["ir_per_tx"], 4)
        rt["ir_per_tx_newman_over_restmon"] = ratio(cgn["ir_per_tx"], cgr["ir_per_tx"], 1)
        rt["startup_ir_restmon_over_newman"] = ratio(cgr["startup_ir"], cgn["startup_ir"], 4)

    notes = data["notes"]
    w = data["wrk"]
    if w["concurrent"]["requests_per_s"] < w["sequential"]["requests_per_s"]:
        notes.append("The mock answers fewer requests/s on 10 connections than on 1 (%s vs %s): it is a "
                     "ThreadingHTTPServer, one thread per connection behind one interpreter lock, so "
                     "concurrency only adds contention on this %d-core machine."
                     % (fnum(w["concurrent"]["requests_per_s"]), fnum(w["sequential"]["requests_per_s"]),
                        data["machine"]["nproc"]))
    for key in ("restmon_c1", "restmon_cN", "newman"):
        x = runs.get(key)
        if x and x["mock"]["target_bound"]:
            notes.append("%s ran into the Python mock's limit (mock CPU %s%% of the wall time, requests at %s%% of "
                         "wrk's ceiling): its throughput is a lower bound set by the target, not the tool; "
                         "CPU per transaction of the tool is unaffected." % (
                             x["label"], fnum(100 * x["mock"]["cpu_share_of_wall"], 0),
                             fnum(100 * (x["mock"]["share_of_wrk_ceiling"] or 0), 0)))
    if rm and not rm["mock"]["target_bound"]:
        notes.append("At c=1 every request waits for the mock's answer, so RestMon's c=1 wall time is mostly "
                     "round trips to the Python mock (mock CPU %s%% of the wall time); CPU per transaction is "
                     "the tool's own cost." % fnum(100 * rm["mock"]["cpu_share_of_wall"], 0))
    if data["config"].get("mock", {}).get("nagle") == "patched":
        notes.append("The mock was run through bench/lib/mock_server.py, which sets TCP_NODELAY on its sockets. "
                     "examples/mock_api.py writes the response head and body in two writes, so with Nagle on "
                     "every answer on a kept-alive connection waits ~40 ms for the client's delayed ACK "
                     "(wrk: ~23 req/s on 1 connection). BENCH_MOCK_RAW=1 measures the mock as is.")
    data["method"] = [
        ("RestMon: `%s` (one process, N runs; also with --concurrency %d), after a 10-run warm-up."
         % (" ".join(restmon_argv(cfg, "URL", "N", 1)).replace(bl.ROOT + os.sep, ""), cfg.concurrency))
        if rm else "RestMon: not run.",
        "Newman %s: `node newman.js run %s -n N --env-var base_url=URL --env-var api_password=... "
        "--timeout-request 5000 --reporters benchsummary` after a 3-iteration warm-up; "
        "`benchsummary` (bench/newman/reporter) prints one JSON line at the end instead of Newman's "
        "per-request CLI output, so Newman's figures do not include console printing."
        % (data["versions"].get("newman"), COLLECTION),
        "Wall time, CPU (user+sys) and peak RSS are those of the tool's process alone (wait4 rusage), "
        "start-up included; the mock's CPU is read from /proc and not counted.",
        "Every run is checked: the tool's own summary (all runs/iterations and assertions passed) and the "
        "mock's counters (exactly 4 requests and 1 new order per transaction); any mismatch fails the bench.",
        "Instructions: valgrind --tool=callgrind, total Ir of all threads; per transaction = "
        "(Ir(large) - Ir(small)) / (large - small), start-up = Ir(small) - small x per transaction. "
        "RestMon: --repeat %d/%d. Newman: -n %d/%d (node runs ~50x slower under valgrind; "
        "BENCH_CG_NEWMAN changes the sizes)." % (cfg.cg_restmon + cfg.cg_newman),
        "wrk: `wrk -t1 -c1|-c10 -d%ds --latency URL/health`, the cheapest endpoint of the mock. "
        "\"%% of ceiling\" is a run's requests/s over wrk's 1-connection rate (c=1 runs) or over wrk's best "
        "rate (the c=%d run); \"(bound)\" marks a run at >= %d%% of it or with the mock busy >= %d%% of the time."
        % (cfg.wrk_seconds, cfg.concurrency, int(BOUND_CEILING_SHARE * 100), int(BOUND_CPU_SHARE * 100)),
    ]
    data["ok"] = True
    data["_markdown"] = render(data)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.stderr.write("\nbench %s: FAILED\n%s\n" % (NAME, e))
        sys.stderr.write("bench/results/%s.* were not updated.\n" % NAME)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
