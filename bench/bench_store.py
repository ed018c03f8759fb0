#!/usr/bin/python3
"""Store benchmark: durable step writes and run searches of core/store, on
SQLite and on PostgreSQL, through bench/store_bench.c (the store's own C
interface, as restmon uses it).

Step writes: N step records (~1.9 KB of JSON each, docs/run-record.md)
through rm_store_step_put with C writes in flight, each callback waited for
(it fires after COMMIT), then C=1 (no group commit possible). The peer does
the same two statements per record (the lease-checked vars UPDATE and the
step INSERT, same SQL, same schema) with one transaction per record:
Python's sqlite3 module on the same WAL/synchronous=NORMAL settings the
store uses (core/store/db_sqlite.c), and pgbench with C clients on
PostgreSQL. Goal: 20,000 records/s on SQLite.

Search: a store filled with BENCH_STORE_RUNS finished runs (20 workflows, a
month of runs, 2-4 steps each; see bench/store_fill.c), then every filter of
rm_store_run_search the run list offers, K times each. Goal: under 50 ms at
1,000,000 runs. Then the same searches with the secondary indexes of runs,
steps and step_vars (SQLite's index table of extracted variables) dropped:
the peer, what the helper indexes buy.

PostgreSQL runs on a private cluster (scripts/pg-test-cluster) with its
default durability back on (fsync, synchronous_commit, full_page_writes),
max_wal_size 8GB and shared_buffers 1GB (PG_OPTS below).

Writes bench/results/store.json and bench/results/store.md and prints the
table. Exits 1 (leaving earlier results alone) when a result is not
meaningful: a step write failed or was not stored, the peer failed, a
search failed or found nothing, the fill is short.

Environment (all optional):
    BENCH_STORE_BACKENDS        sqlite,postgresql (default both)
    BENCH_STORE_STEPS           step records on SQLite (default 100000)
    BENCH_STORE_STEPS_PG        step records on PostgreSQL (default 20000: it
                                commits about 1,000 records/s on this machine)
    BENCH_STORE_CONCURRENCY     step writes in flight (default 64)
    BENCH_STORE_RUNS            runs in the searched store (default 1000000)
    BENCH_STORE_SEARCH_K        timed repetitions per search (default 20)
    BENCH_STORE_SEARCH_BUDGET_S time per search kind, after which it stops
                                repeating (default 8)
    BENCH_STORE_NOINDEX         0 skips the searches without helper indexes
    BENCH_STORE_BIN             the driver (default build/rel/bench/store_bench)
    BENCH_STORE_DIR             parent of the working folder (default
                                /var/tmp; a real disk: commits are measured)
"""

import json
import math
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import benchlib as bl  # noqa: E402
from benchlib import BenchError, fnum  # noqa: E402

NAME = "store"
PG_CLUSTER = os.path.join(bl.ROOT, "scripts", "pg-test-cluster")
STEPS_GOAL = 20000.0
SEARCH_GOAL_MS = 50.0
GOAL_RUNS = 1_000_000
# Without the helper indexes every search scans: at most this many times.
NOINDEX_K = 2
STEPS_PER_RUN = 4  # as bench/store_bench.c writes them
# The private cluster: PostgreSQL's default durability (pg-test-cluster
# turns it off for tests), a WAL allowance for the gigabytes the fill
# writes, and shared buffers for a store of that size.
PG_OPTS = ("-c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_wal_size=8GB "
           "-c shared_buffers=1GB")
# The SQL of core/store/steps.c (step_put_run), for the SQLite peer.
SQL_UPDATE = "UPDATE runs SET vars = COALESCE($3, vars) WHERE run_id = $1 AND lease_owner = $2 AND status = 'running'"
SQL_INSERT = ("INSERT INTO steps (run_id, seq, task, status, http_status, extracted, record, updated_at) "
              "VALUES ($1, (SELECT COALESCE(max(seq), 0) + 1 FROM steps WHERE run_id = $1), $2, $3, $4, $5, $6, "
              "rm_now()) ON CONFLICT (run_id, task) DO UPDATE SET status = excluded.status, "
              "http_status = excluded.http_status, extracted = excluded.extracted, record = excluded.record, "
              "updated_at = excluded.updated_at")


# -- configuration ------------------------------------------------------------

class Config:
    def __init__(self):
        raw = os.environ.get("BENCH_STORE_BACKENDS", "sqlite,postgresql")
        self.backends = [b.strip() for b in raw.split(",") if b.strip()]
        for b in self.backends:
            if b not in ("sqlite", "postgresql"):
                raise BenchError("BENCH_STORE_BACKENDS: unknown backend %r (sqlite, postgresql)" % b)
        if not self.backends:
            raise BenchError("BENCH_STORE_BACKENDS names no backend")
        self.steps = {"sqlite": bl.env_int("BENCH_STORE_STEPS", 100000, 100, 10_000_000),
                      "postgresql": bl.env_int("BENCH_STORE_STEPS_PG", 20000, 100, 10_000_000)}
        self.concurrency = bl.env_int("BENCH_STORE_CONCURRENCY", 64, 1, 4096)
        self.runs = bl.env_int("BENCH_STORE_RUNS", GOAL_RUNS, 1000, 20_000_000)
        self.k = bl.env_int("BENCH_STORE_SEARCH_K", 20, 1, 10000)
        self.budget_s = bl.env_int("BENCH_STORE_SEARCH_BUDGET_S", 8, 1, 600)
        self.noindex = bl.env_flag("BENCH_STORE_NOINDEX", True)
        self.bin = os.environ.get("BENCH_STORE_BIN") or os.path.join(bl.ROOT, "build", "rel", "bench", "store_bench")
        self.dir = os.environ.get("BENCH_STORE_DIR") or "/var/tmp"

    def c1_records(self, backend):
        """Records of the C=1 run: a tenth, at least 500."""
        return max(500, self.steps[backend] // 10)


# -- helpers --------------------------------------------------------------------

def fs_type(path):
    """The file system type holding path (from /proc/mounts)."""
    path = os.path.realpath(path)
    best, kind = "", None
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and (path == parts[1] or path.startswith(parts[1].rstrip("/") + "/")) \
                        and len(parts[1]) >= len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def loadavg():
    """The 1-minute load average: other work on the machine shows here."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def driver(cfg, args, timeout_s, what):
    """Runs store_bench with args; its JSON line. Raises unless it exits 0."""
    try:
        r = bl.run_measured([cfg.bin] + [str(a) for a in args], timeout_s=timeout_s)
    except OSError as e:
        raise BenchError("%s: cannot run %s: %s" % (what, cfg.bin, e))
    if r["timed_out"]:
        raise BenchError("%s did not finish within %.0f s:\n%s" % (what, timeout_s, bl.tail(r["stderr"])))
    out = bl.last_json_object(r["stdout"])
    if r["rc"] != 0 or out is None:
        raise BenchError("%s failed (rc %s): %s\n%s" % (what, r["rc"], json.dumps(out) if out else "",
                                                          bl.tail(r["stderr"] or r["stdout"])))
    out["wall_s"] = round(r["wall_s"], 2)
    out["process_cpu_s"] = round(r["cpu_s"], 2)
    out["maxrss_kb"] = r["maxrss_kb"]
    return out


def rounded(d, digits=3):
    return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in d.items()}


class PgCluster:
    """A private durable cluster from scripts/pg-test-cluster."""

    def __init__(self, folder):
        self.folder = folder
        self.url = None

    def start(self):
        env = dict(os.environ, PG_TEST_CLUSTER_OPTS=PG_OPTS)
        r = subprocess.run([PG_CLUSTER, "start", self.folder], env=env, cwd=bl.ROOT, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0 or not r.stdout.strip().startswith("postgresql://"):
            raise BenchError("pg-test-cluster start failed: %s" % bl.tail(r.stderr + r.stdout))
        self.url = r.stdout.strip().splitlines()[-1]
        return self.url

    def hostport(self):
        rest = self.url.split("@", 1)[1].split("/", 1)[0]
        host, port = rest.rsplit(":", 1)
        return host, port

    def db_url(self, db):
        return self.url.rsplit("/", 1)[0] + "/" + db

    def psql(self, sql, db, timeout_s=600):
        host, port = self.hostport()
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port,
                            "-U", "postgres", "-d", db, "-c", sql], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout_s)
        if r.returncode != 0:
            raise BenchError("psql %s: %s: %s" % (db, sql[:80], bl.tail(r.stderr)))
        return r.stdout.strip()

    def create_db(self, db):
        self.psql("DROP DATABASE IF EXISTS %s" % db, "postgres")
        self.psql("CREATE DATABASE %s" % db, "postgres")
        return self.db_url(db)

    def stop(self):
        if not os.path.isdir(self.folder):
            return
        subprocess.run([PG_CLUSTER, "stop", self.folder], cwd=bl.ROOT, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120)


# -- step writes ------------------------------------------------------------------

def restmon_steps(cfg, url, n, conc):
    out = driver(cfg, ["steps", url, n, conc], 120 + n / 100.0, "store_bench steps (c=%d)" % conc)
    if out.get("failed") or out.get("stored") != n:
        raise BenchError("step writes: %s failed, %s of %d stored: %s" % (
            out.get("failed"), out.get("stored"), n, out.get("first_error", "")))
    return rounded(out)


def sample_step(cfg):
    s = driver(cfg, ["sample"], 30, "store_bench sample")
    compact = (",", ":")
    return {"record": json.dumps(s["step"], separators=compact),
            "extracted": json.dumps(s["extracted"], separators=compact),
            "vars": json.dumps(s["vars"], separators=compact), "bytes": s["record_bytes"]}


def ts_now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def sqlite_peer(cfg, path, n, sample):
    """One transaction per record, the store's SQL and pragmas, Python's
    sqlite3 module."""
    nruns = (n + STEPS_PER_RUN - 1) // STEPS_PER_RUN
    driver(cfg, ["runs", "sqlite:" + path, nruns, "peer-"], 300, "store_bench runs")
    con = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
        con.create_function("rm_now", 0, ts_now)
        rec, ext, var = sample["record"], sample["extracted"], sample["vars"]
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        for i in range(n):
            run = "peer-%d" % (i // STEPS_PER_RUN + 1)
            con.execute("BEGIN IMMEDIATE")
            cur = con.execute(SQL_UPDATE, {"1": run, "2": "bench", "3": var})
            if cur.rowcount != 1:
                raise BenchError("sqlite peer: run %s not held" % run)
            con.execute(SQL_INSERT, {"1": run, "2": "step-%d" % (i % STEPS_PER_RUN), "3": "succeeded", "4": 201,
                                     "5": ext, "6": rec})
            con.execute("COMMIT")
        secs = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        stored = con.execute("SELECT count(*) FROM steps").fetchone()[0]
    finally:
        con.close()
    if stored != n:
        raise BenchError("sqlite peer: %d of %d records stored" % (stored, n))
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"tool": "python3 sqlite3 %s (SQLite %s), 1 transaction per record" % (
                sys.version.split()[0], sqlite3.sqlite_version),
            "records": n, "concurrency": 1, "seconds": round(secs, 3), "records_per_s": round(n / secs, 1),
            "cpu_us_per_record": round(cpu * 1e6 / n, 1), "stored": stored}


def pg_peer(cfg, pg, n, conc, sample, workdir):
    """pgbench, C clients, one transaction per record: the store's UPDATE
    and INSERT with the same record text (from a one-row table)."""
    db = "peer"
    url = pg.create_db(db)
    nruns = max(conc, (n + STEPS_PER_RUN - 1) // STEPS_PER_RUN)
    driver(cfg, ["runs", url, nruns, "peer-"], 300, "store_bench runs")

    def lit(s):
        return "'" + s.replace("'", "''") + "'"
    pg.psql("CREATE TABLE peer_payload (record json NOT NULL, extracted jsonb NOT NULL, vars json NOT NULL); "
            "INSERT INTO peer_payload VALUES (%s, %s, %s)" % (lit(sample["record"]), lit(sample["extracted"]),
                                                              lit(sample["vars"])), db)
    script = os.path.join(workdir, "peer.sql")
    with open(script, "w") as f:
        f.write("\\set r random(1, %d)\n" % nruns)
        f.write("\\set t random(1, 2000000000)\n")
        f.write("BEGIN;\n")
        f.write("UPDATE runs SET vars = COALESCE((SELECT vars FROM peer_payload), vars) WHERE run_id = 'peer-' || :r "
                "AND lease_owner = 'bench' AND status = 'running';\n")
        f.write("INSERT INTO steps (run_id, seq, task, status, http_status, extracted, record, updated_at) "
                "SELECT 'peer-' || :r, (SELECT COALESCE(max(seq), 0) + 1 FROM steps WHERE run_id = 'peer-' || :r), "
                "'step-' || :t, 'succeeded', 201, p.extracted, p.record, rm_now() FROM peer_payload p "
                "ON CONFLICT (run_id, task) DO UPDATE SET status = excluded.status, http_status = excluded.http_status, "
                "extracted = excluded.extracted, record = excluded.record, updated_at = excluded.updated_at;\n")
        f.write("END;\n")
    per_client = int(math.ceil(n / float(conc)))
    host, port = pg.hostport()
    argv = ["pgbench", "-n", "-r", "-h", host, "-p", port, "-U", "postgres", "-c", str(conc),
            "-j", str(min(conc, 2)), "-t", str(per_client), "-f", script, db]
    r = bl.run_measured(argv, timeout_s=120 + n / 50.0)
    text = r["stdout"]
    tps = None
    for line in text.splitlines():
        if line.startswith("tps = ") and "without initial connection" in line:
            tps = float(line.split()[2])
    failed = [ln for ln in text.splitlines() if ln.startswith("number of failed transactions")]
    if r["rc"] != 0 or tps is None or (failed and not failed[0].split(":")[1].strip().startswith("0 ")):
        raise BenchError("pgbench failed (rc %s): %s" % (r["rc"], bl.tail(text + r["stderr"])))
    stored = int(pg.psql("SELECT count(*) FROM steps", db))
    if stored != conc * per_client:
        raise BenchError("pgbench peer: %d of %d records stored" % (stored, conc * per_client))
    latencies = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[2].startswith(("BEGIN", "UPDATE", "INSERT", "END")):
            try:
                latencies[parts[2].split()[0].rstrip(";")] = float(parts[0])
            except ValueError:
                pass
    pg.psql("DROP DATABASE IF EXISTS %s" % db, "postgres")
    return {"tool": "%s, %d clients, 1 transaction per record" % (
                bl.first_line(bl.run_text(["pgbench", "--version"], 10)), conc),
            "records": conc * per_client, "concurrency": conc, "seconds": round(r["wall_s"], 3),
            "records_per_s": round(tps, 1), "statement_ms": latencies, "stored": stored}


# -- search -------------------------------------------------------------------------

def check_search(out, runs, what):
    qs = {q["name"]: q for q in out["queries"]}
    if out.get("runs") != runs:
        raise BenchError("%s: the store holds %r runs, expected %d" % (what, out.get("runs"), runs))
    empty = [name for name, q in qs.items() if not q.get("total")]
    if empty:
        raise BenchError("%s: no runs found by %s" % (what, ", ".join(empty)))
    for q in out["queries"]:
        for k in list(q):
            if isinstance(q[k], float):
                q[k] = round(q[k], 3)
    return out


def fill_and_search(cfg, url, backend, prog):
    prog.step("%s: fill %s runs" % (backend, fnum(cfg.runs)))
    fill = driver(cfg, ["fill", url, cfg.runs], 3600, "store_bench fill")
    if fill.get("runs") != cfg.runs:
        raise BenchError("fill: %r runs, expected %d" % (fill.get("runs"), cfg.runs))
    prog.note("%s runs and %s steps in %.0f s (%s runs/s), %.2f GB" % (
        fnum(fill["runs"]), fnum(fill["steps"]), fill["seconds"], fnum(fill["runs_per_s"]), fill["db_bytes"] / 1e9))
    prog.step("%s: searches, %d times each (at most %d s each)" % (backend, cfg.k, cfg.budget_s))
    search = check_search(driver(cfg, ["search", url, cfg.k, cfg.budget_s], 1800, "store_bench search"),
                          cfg.runs, "search")
    for q in search["queries"]:
        prog.note("%-16s p50 %8.2f ms  p95 %8.2f ms  (%s%s runs match)" % (
            q["name"], q["p50_ms"], q["p95_ms"], fnum(q["total"]), "+" if q.get("total_capped") else ""))
    res = {"fill": rounded(fill), "search": search}
    if cfg.noindex:
        prog.step("%s: the same searches without the helper indexes" % backend)
        dropped = driver(cfg, ["drop-indexes", url], 600, "store_bench drop-indexes")
        noidx = check_search(driver(cfg, ["search", url, NOINDEX_K, max(1, cfg.budget_s // 2), "--no-warmup"], 1800,
                                    "store_bench search (no indexes)"), cfg.runs, "search without indexes")
        noidx["dropped"] = dropped["dropped"]
        for q in noidx["queries"]:
            prog.note("%-16s p50 %8.2f ms  (n=%d)" % (q["name"], q["p50_ms"], q["n"]))
        res["search_noindex"] = noidx
    return res


# -- one backend ------------------------------------------------------------------------

def bench_backend(cfg, backend, workdir, prog, data):
    res = {}
    n, conc = cfg.steps[backend], cfg.concurrency
    n1 = cfg.c1_records(backend)
    sample = sample_step(cfg)
    pg = None
    try:
        if backend == "postgresql":
            pg = PgCluster(os.path.join(workdir, "pg"))
            prog.step("postgresql: private durable cluster")
            pg.start()
            res["server"] = {
                "version": pg.psql("SHOW server_version", "postgres"),
                "settings": {s: pg.psql("SHOW %s" % s, "postgres") for s in
                             ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method",
                              "shared_buffers", "max_wal_size")}}
            prog.note("PostgreSQL %s, %s" % (res["server"]["version"], ", ".join(
                "%s=%s" % kv for kv in res["server"]["settings"].items())))
            urls = {k: pg.create_db(k) for k in ("steps", "steps_c1", "fill")}
        else:
            urls = {k: "sqlite:" + os.path.join(workdir, "sqlite", k + ".db") for k in ("steps", "steps_c1", "fill")}

        prog.step("%s: %s step records, %d in flight" % (backend, fnum(n), conc))
        res["steps"] = restmon_steps(cfg, urls["steps"], n, conc)
        prog.note("%s records/s, %.1f records per commit, p50 %.1f ms" % (
            fnum(res["steps"]["records_per_s"]), res["steps"]["records_per_tx"], res["steps"]["latency_p50_ms"]))
        prog.step("%s: %s step records, 1 in flight" % (backend, fnum(n1)))
        res["steps_c1"] = restmon_steps(cfg, urls["steps_c1"], n1, 1)
        prog.note("%s records/s" % fnum(res["steps_c1"]["records_per_s"]))

        prog.step("%s: peer, one transaction per record" % backend)
        if backend == "sqlite":
            res["peer"] = sqlite_peer(cfg, os.path.join(workdir, "sqlite", "peer.db"), n, sample)
        else:
            res["peer"] = pg_peer(cfg, pg, n, conc, sample, workdir)
        prog.note("%s: %s records/s" % (res["peer"]["tool"], fnum(res["peer"]["records_per_s"])))
        res["steps_ratio_restmon_over_peer"] = round(res["steps"]["records_per_s"] / res["peer"]["records_per_s"], 3)
        res["steps_c1_ratio_restmon_over_peer"] = round(
            res["steps_c1"]["records_per_s"] / res["peer"]["records_per_s"], 3)
        if backend == "sqlite":
            shutil.rmtree(os.path.join(workdir, "sqlite"), ignore_errors=True)
        else:
            for k in ("steps", "steps_c1"):
                pg.psql("DROP DATABASE IF EXISTS %s" % k, "postgres")

        res.update(fill_and_search(cfg, urls["fill"], backend, prog))
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(os.path.join(workdir, "sqlite"), ignore_errors=True)
    data["backends"][backend] = res


# -- verdicts and report ----------------------------------------------------------------

def verdicts(cfg, data):
    v = {}
    sq = data["backends"].get("sqlite")
    if sq:
        rps = sq["steps"]["records_per_s"]
        v["sqlite_steps_goal_met"] = rps >= STEPS_GOAL
    for backend, res in data["backends"].items():
        slow = [q["name"] for q in res["search"]["queries"] if q["p95_ms"] >= SEARCH_GOAL_MS]
        v["%s_search_over_goal" % backend] = slow
        v["%s_search_goal_met" % backend] = (not slow) if cfg.runs >= GOAL_RUNS else None
    return v


def render(cfg, data):
    be = data["backends"]
    names = [b for b in ("sqlite", "postgresql") if b in be]
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    m = data["machine"]

    def rx(v):
        return "n/a" if v is None else "%.2fx" % v

    rows = []
    for b in names:
        r = be[b]
        s, s1, p = r["steps"], r["steps_c1"], r["peer"]
        rows.append([label[b], "%s (%s in flight)" % (fnum(s["records_per_s"]), s["concurrency"]),
                     "%.1f" % s["records_per_tx"], "%s / %s" % (fnum(s["latency_p50_ms"], 1),
                                                                  fnum(s["latency_p95_ms"], 1)),
                     fnum(s["cpu_us_per_record"]), fnum(s1["records_per_s"]),
                     "%s (%s)" % (fnum(p["records_per_s"]), "1 at a time" if p["concurrency"] == 1
                                  else "%d clients" % p["concurrency"]),
                     "**%s**" % rx(r["steps_ratio_restmon_over_peer"]), rx(r["steps_c1_ratio_restmon_over_peer"])])
    steps_table = bl.md_table(["", "RestMon records/s", "records / commit", "put p50 / p95 ms", "CPU us / record",
                               "RestMon c=1 records/s", "peer records/s", "RestMon / peer", "c=1 / peer"], rows)
    steps_note = ("CPU us / record: the whole store_bench process (the loop thread building and submitting "
                  "records, the store's threads) over the records written.")

    qnames = [q["name"] for q in be[names[0]]["search"]["queries"]]
    qrows = []
    for qn in qnames:
        row = [qn]
        for b in names:
            q = {x["name"]: x for x in be[b]["search"]["queries"]}[qn]
            flag = "" if q["p95_ms"] < SEARCH_GOAL_MS else " (over)"
            row += ["%s / %s%s" % (fnum(q["p50_ms"], 2), fnum(q["p95_ms"], 2), flag),
                    fnum(q["total"]) + ("+" if q.get("total_capped") else "")]
            ni = be[b].get("search_noindex")
            if ni:
                qi = {x["name"]: x for x in ni["queries"]}[qn]
                row.append(fnum(qi["p50_ms"], 1))
        qrows.append(row)
    headers = ["query"]
    for b in names:
        headers += ["%s p50 / p95 ms" % label[b], "matches"]
        if be[b].get("search_noindex"):
            headers.append("%s no indexes p50 ms" % label[b])
    search_table = bl.md_table(headers, qrows)

    frows = []
    for b in names:
        f = be[b]["fill"]
        frows.append([label[b], fnum(f["runs"]), fnum(f["steps"]), fnum(f["seconds"]), fnum(f["runs_per_s"]),
                      "%.2f" % (f["db_bytes"] / 1e9)])
    fill_table = bl.md_table(["", "runs", "steps", "fill s", "runs/s", "database GB"], frows)

    v = data["verdicts"]
    lines = ["# Store benchmark: durable step writes and run search", "",
             "%s; core/store through its C interface (bench/store_bench.c) on SQLite and PostgreSQL." % m["date"],
             "", "## Step writes", "",
             "Each record is a ~%s byte step record written with rm_store_step_put; its callback (after COMMIT) "
             "is waited for. The peer runs the same UPDATE + INSERT with one transaction per record." % (
                 data["config"]["record_bytes"]), "", steps_table, "", steps_note, ""]
    if "sqlite_steps_goal_met" in v:
        lines.append("- Goal: %s step records/s on SQLite with durability on: **%s** (%s records/s)" % (
            fnum(int(STEPS_GOAL)), "met" if v["sqlite_steps_goal_met"] else "not met",
            fnum(be["sqlite"]["steps"]["records_per_s"])))
    lines += ["", "## Search at %s runs" % fnum(cfg.runs), "",
              "rm_store_run_search, one query at a time, from the call to its callback; first page (50 items) "
              "plus the total count (N+: the store stopped counting at N). After one warm-up, up to %d times or %d s per query (a warm-up slower than "
              "half of that counts as the first time). Without indexes: the "
              "secondary indexes of runs, steps and step_vars dropped (all but primary keys), up to %d times (%d s), "
              "no warm-up." % (
                  cfg.k, cfg.budget_s, NOINDEX_K, max(1, cfg.budget_s // 2)),
              "", search_table, ""]
    for b in names:
        over = v["%s_search_over_goal" % b]
        met = v["%s_search_goal_met" % b]
        goal = "n/a (store smaller than 1,000,000 runs)" if met is None else ("met" if met else "not met")
        lines.append("- Goal: every search under %d ms (p95) at 1,000,000 runs, %s: **%s**%s" % (
            SEARCH_GOAL_MS, label[b], goal, "; over: " + ", ".join(over) if over else ""))
    lines += ["", "## Fill", "", fill_table, ""]
    for note in data["notes"]:
        lines.append("- " + note)
    lines += ["", "## Machine", "", bl.md_table(["", ""], [
        ["date (UTC)", m["date"]], ["CPU", m["cpu_model"]], ["nproc", str(m["nproc"])],
        ["memory", "%s MB" % m["mem_total_mb"]], ["OS / kernel", "%s / %s" % (m["os"], m["kernel"])],
        ["working folder", "%s (%s)" % (data["config"]["dir"], data["config"]["fs_type"])],
        ["SQLite", data["versions"].get("sqlite") or "n/a"],
        ["PostgreSQL", (be.get("postgresql", {}).get("server") or {}).get("version") or "n/a"],
        ["git", data.get("git") or "n/a"],
        ["load average (1 min) at start / end", "%s / %s" % (m.get("loadavg_1m_start"), m.get("loadavg_1m_end"))],
        ["benchmark wall time", "%s s" % fnum(data.get("wall_s"))]], "ll"), ""]
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------

def preflight(cfg):
    missing = []
    if not os.access(cfg.bin, os.X_OK):
        missing.append("%s (make build/rel/bench/store_bench, or make bench)" % cfg.bin)
    if "postgresql" in cfg.backends:
        for exe in ("psql", "pgbench"):
            if not shutil.which(exe):
                missing.append("%s (the postgresql-client package)" % exe)
    if missing:
        raise BenchError("missing: " + ", ".join(missing))
    if not os.path.isdir(cfg.dir):
        raise BenchError("BENCH_STORE_DIR %s is not a folder" % cfg.dir)


def main():
    t_start = time.monotonic()
    load_start = loadavg()
    cfg = Config()
    preflight(cfg)
    prog = bl.Progress(sum(6 + int(cfg.noindex) + int(b == "postgresql") for b in cfg.backends))
    workdir = tempfile.mkdtemp(prefix="restmon-bench-store-", dir=cfg.dir)
    os.chmod(workdir, 0o755)  # the PostgreSQL cluster runs as postgres beneath it
    fstype = fs_type(workdir)
    data = {
        "benchmark": NAME,
        "schema": 1,
        "ok": False,
        "config": {"backends": cfg.backends, "steps": cfg.steps, "concurrency": cfg.concurrency,
                   "c1_records": {b: cfg.c1_records(b) for b in cfg.backends}, "runs": cfg.runs,
                   "search_k": cfg.k, "search_budget_s": cfg.budget_s, "noindex": cfg.noindex,
                   "steps_per_run": STEPS_PER_RUN, "dir": cfg.dir, "fs_type": fstype,
                   "record_bytes": sample_step(cfg)["bytes"]},
        "goals": {"sqlite_step_records_per_s": STEPS_GOAL, "search_ms_at_1m_runs": SEARCH_GOAL_MS},
        "machine": bl.machine_info(),
        "versions": {"sqlite": sqlite3.sqlite_version, "python": sys.version.split()[0]},
        "git": bl.git_revision(),
        "backends": {},
        "notes": [],
    }
    if fstype in ("tmpfs", "ramfs", "overlay"):
        data["notes"].append("the working folder is on %s: commits cost no disk flush there; set "
                             "BENCH_STORE_DIR to a folder on a disk" % fstype)
    try:
        for backend in cfg.backends:
            bench_backend(cfg, backend, workdir, prog, data)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    data["machine"]["loadavg_1m_start"] = load_start
    data["machine"]["loadavg_1m_end"] = loadavg()
    data["verdicts"] = verdicts(cfg, data)
    if cfg.runs < GOAL_RUNS:
        data["notes"].append("searched %s runs, fewer than the 1,000,000 of the search goal "
                             "(BENCH_STORE_RUNS)" % fnum(cfg.runs))
    data["notes"].append("SQLite durability is the store's: WAL with synchronous=NORMAL, so a committed step "
                         "survives the process dying, not necessarily a power loss (store.h); the peer uses "
                         "the same settings. PostgreSQL: fsync and synchronous_commit on.")
    data["notes"].append("The fill builds the secondary indexes once, after loading, with the schema's own "
                         "CREATE INDEX statements, so they are compact; indexes grown run by run over a month "
                         "can be less dense, which costs the searches that count through an index.")
    data["notes"].append("The PostgreSQL peer runs %d clients at once, each one transaction per record; "
                         "RestMon's PostgreSQL store commits one group at a time on one connection of its "
                         "pool of 2 (docs/store.md, Group commit)." % cfg.concurrency)
    data["wall_s"] = round(time.monotonic() - t_start, 1)
    data["ok"] = True
    md = render(cfg, data)
    jpath, mpath = bl.write_results(NAME, data, md)
    print(md)
    print("\nwrote %s and %s (%.0f s)" % (os.path.relpath(jpath, bl.ROOT), os.path.relpath(mpath, bl.ROOT),
                                           data["wall_s"]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        bl.warn("store: %s" % e)
        sys.exit(1)
    except KeyboardInterrupt:
        bl.warn("store: interrupted")
        sys.exit(130)
