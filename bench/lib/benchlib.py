"""Shared pieces of the RestMon benchmarks (bench/bench_*.py).

Everything here is bounded: every child process has a deadline, every loop
a maximum number of turns, and servers listen on 127.0.0.1 only.
"""

import datetime
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench")
RESULTS = os.path.join(BENCH, "results")
PYTHON = "/usr/bin/python3"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A benchmark cannot produce a meaningful result."""


# -- output -------------------------------------------------------------------

class Progress:
    """Prints "[i/n] what ..." lines, flushed, so a long run shows where it is."""

    def __init__(self, total, stream=None):
        self.total = total
        self.i = 0
        self.stream = stream or sys.stdout
        self.t0 = time.monotonic()

    def step(self, text):
        self.i += 1
        self.stream.write("[%d/%d] %s ...\n" % (self.i, self.total, text))
        self.stream.flush()

    def note(self, text):
        self.stream.write("      %s\n" % text)
        self.stream.flush()


def warn(text):
    sys.stderr.write("bench: %s\n" % text)
    sys.stderr.flush()


def env_int(name, default, lo=1, hi=10_000_000):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BenchError("%s must be an integer, got %r" % (name, raw))
    if not lo <= v <= hi:
        raise BenchError("%s must be in [%d, %d], got %d" % (name, lo, hi, v))
    return v


def env_flag(name, default=False):
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw not in ("0", "no", "false", "off")


# -- processes ----------------------------------------------------------------

def _wait4_deadline(pid, deadline):
    """os.wait4(pid) with a deadline; None when the deadline passed first."""
    fd = None
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        # At most one turn per 50 ms without a pidfd; a pidfd wakes up
        # exactly when the child exits.
        for _ in range(10_000_000):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if fd is not None:
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
                if not ready:
                    continue
                return os.wait4(pid, 0)
            wpid, status, ru = os.wait4(pid, os.WNOHANG)
            if wpid == pid:
                return wpid, status, ru
            time.sleep(min(left, 0.05))
        return None
    finally:
        if fd is not None:
            os.close(fd)


def run_measured(argv, timeout_s, env=None, cwd=ROOT, stdin=subprocess.DEVNULL):
    """Runs argv to completion and measures that process alone (its own
    rusage from wait4, including children it waited for).

    Returns {rc, timed_out, wall_s, user_s, sys_s, cpu_s, maxrss_kb,
    stdout, stderr}; stdout/stderr are text (spooled to temporary files so
    a chatty child never blocks on a pipe)."""
    out = tempfile.TemporaryFile(mode="w+b")
    err = tempfile.TemporaryFile(mode="w+b")
    try:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, cwd=cwd,
                                env=env, start_new_session=True)
        res = _wait4_deadline(proc.pid, t0 + timeout_s)
        timed_out = res is None
        if timed_out:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            _, status, ru = os.wait4(proc.pid, 0)
        else:
            _, status, ru = res
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "argv": list(argv),
            "rc": proc.returncode,
            "timed_out": timed_out,
            "wall_s": wall,
            "user_s": ru.ru_utime,
            "sys_s": ru.ru_stime,
            "cpu_s": ru.ru_utime + ru.ru_stime,
            "maxrss_kb": ru.ru_maxrss,
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace"),
        }
    finally:
        out.close()
        err.close()


def run_text(argv, timeout_s=30, cwd=ROOT):
    """stdout+stderr of a short command, or None if it cannot run."""
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout_s, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.decode("utf-8", "replace")


def last_json_object(text):
    """The last line of text that parses as a JSON object, else the whole
    text as one JSON object, else None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                return obj
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def tail(text, lines=15):
    return "\n".join(text.rstrip().splitlines()[-lines:])


# -- the mock API -------------------------------------------------------------

class Mock:
    """examples/mock_api.py on a free 127.0.0.1 port.

    raw=False starts it through bench/lib/mock_server.py, which only turns
    on TCP_NODELAY (see that file); raw=True runs examples/mock_api.py as is."""

    def __init__(self, raw=False, log_path=None):
        self.raw = raw
        self.log_path = log_path or os.path.join(tempfile.gettempdir(), "restmon-bench-mock.log")
        self.proc = None
        self.url = None
        self.nagle = "mock" if raw else None

    def start(self, timeout_s=20):
        script = os.path.join(ROOT, "examples", "mock_api.py") if self.raw \
            else os.path.join(BENCH, "lib", "mock_server.py")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PYTHON, script, "--port", "0"], cwd=ROOT,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        buf = b""
        for _ in range(10_000):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                break
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            m = re.search(rb"listening on (http://127\.0\.0\.1:\d+)", buf)
            if m:
                self.url = m.group(1).decode()
                break
        if not self.url:
            self.stop()
            raise BenchError("mock API did not start within %ds (log: %s)" % (timeout_s, self.log_path))
        if not self.raw:
            self.nagle = "patched"
            try:
                with open(self.log_path, "rb") as f:
                    if b"nagle=mock" in f.read(4096):
                        self.nagle = "mock"
            except OSError:
                pass
        # Drain later stdout lines; the mock prints nothing more normally.
        self.proc.stdout.close()
        return self.url

    def _call(self, method, path, timeout_s=10):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            return json.loads(r.read().decode("utf-8"))

    def reset(self):
        self._call("POST", "/__reset")

    def stats(self):
        return self._call("GET", "/__stats")

    def cpu_s(self):
        """CPU seconds (user+sys, all threads) the mock has used so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        try:
            self._log.close()
        except (AttributeError, OSError):
            pass
        self.proc = None


# -- wrk ----------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def wrk(url, seconds=5, connections=10, threads=1):
    """wrk against url; requests/s, latency (ms) and error counts."""
    exe = shutil.which("wrk")
    if not exe:
        raise BenchError("wrk is not installed (scripts/install-deps installs it)")
    argv = [exe, "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--latency", url]
    r = run_measured(argv, timeout_s=seconds + 30)
    text = r["stdout"]
    if r["rc"] != 0:
        raise BenchError("wrk failed (rc %s): %s" % (r["rc"], tail(text + r["stderr"])))
    res = {"url": url, "seconds": seconds, "connections": connections, "threads": threads}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    res["requests_per_s"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", text)
    res["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if m:
        res["latency_avg_ms"] = _ms(m.group(1))
        res["latency_max_ms"] = _ms(m.group(3))
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        res["latency_p%s_ms" % pct] = _ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:\s+connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    if res["requests_per_s"] is None:
        raise BenchError("could not read wrk's output: %s" % tail(text))
    return res


# -- callgrind ----------------------------------------------------------------

def callgrind(argv, out_file, timeout_s, smc_check="all-non-file", env=None):
    """Runs argv under valgrind --tool=callgrind; returns the measured run
    plus "ir" (total instructions read, all threads, from the out file's
    summary/totals line). The program itself must not fork-exec the part
    to be measured (children are not traced)."""
    exe = shutil.which("valgrind")
    if not exe:
        raise BenchError("valgrind is not installed (scripts/install-deps installs it)")
    if os.path.exists(out_file):
        os.unlink(out_file)
    vg = [exe, "--tool=callgrind", "--smc-check=%s" % smc_check,
          "--callgrind-out-file=%s" % out_file]
    r = run_measured(vg + list(argv), timeout_s=timeout_s, env=env)
    r["ir"] = None
    if os.path.exists(out_file):
        r["ir"] = callgrind_total(out_file)
    return r


def callgrind_total(path):
    total = None
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b"summary:") or line.startswith(b"totals:"):
                try:
                    total = int(line.split()[1])
                except (IndexError, ValueError):
                    continue
                if line.startswith(b"summary:"):
                    break
    return total


# -- machine and versions -----------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def first_line(text):
    if not text:
        return None
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


def machine_info():
    mem_kb = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
                    break
    except OSError:
        pass
    os_name = None
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_total_mb": mem_kb // 1024 if mem_kb else None,
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def git_revision():
    rev = first_line(run_text(["git", "rev-parse", "--short", "HEAD"], 10))
    dirty = run_text(["git", "status", "--porcelain", "--untracked-files=no"], 10)
    if rev and re.match(r"^[0-9a-f]+$", rev):
        return rev + ("+dirty" if dirty and dirty.strip() else "")
    return None


# -- results ------------------------------------------------------------------

def write_atomic(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_results(name, data, markdown):
    """bench/results/NAME.json and NAME.md; returns their paths."""
    jpath = os.path.join(RESULTS, name + ".json")
    mpath = os.path.join(RESULTS, name + ".md")
    write_atomic(jpath, json.dumps(data, indent=2, sort_keys=False) + "\n")
    write_atomic(mpath, markdown if markdown.endswith("\n") else markdown + "\n")
    return jpath, mpath


def md_table(headers, rows, align=None):
    """A Markdown table; align is a string of 'l'/'r' per column."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row):
        return "| " + " | ".join(c.rjust(w) if a == "r" else c.ljust(w)
                                 for c, w, a in zip(row, widths, align)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2))
                         for w, a in zip(widths, align)) + "|"
    return "\n".join([fmt(cells[0]), sep] + [fmt(r) for r in cells[1:]])


def fnum(v, digits=1):
    """A number for a table: thousands separators, digits after the point."""
    if v is None:
        return "n/a"
    if isinstance(v, int):
        return "{:,}".format(v)
    if abs(v) >= 100:
        return "{:,.0f}".format(v)
    return ("{:,.%df}" % digits).format(v)
