#!/usr/bin/python3
"""Writes tests/unit/tz_cases.h: expected UTC offsets, DST flags and
abbreviations from Python's zoneinfo, an implementation independent of
core/sched/tz.c, for test_cron.c to compare rm_tz_offset and
rm_tz_local_to_utc against.

  /usr/bin/python3 tests/unit/gen_tz_cases.py > tests/unit/tz_cases.h

Three tables:
  TZ_CASES     real zones from the system tzdata (the version is recorded;
               under another version the test compares only instants before
               that version's year, since updates change future rules): every
               transition (sampled) from 1970 to 2100 at T-1 and T, plus
               seeded random instants.
  TZ_BLOBS     synthetic TZif v2 files with no transitions, only a POSIX TZ
               footer, and TZ_BLOB_CASES: their offsets at random instants
               from 1970 to 2200 and around their transitions. These pin the
               footer code whatever the system tzdata holds. The expected
               values come from glibc (TZ=<footer> in a child process), not
               zoneinfo: CPython 3.11's zoneinfo misplaces Julian days (it
               reads the zero-based "n" as one-based and moves "J59" to
               Feb 29 in leap years); the disagreements are listed on stderr.
  TZ_LOCALS    local wall times around transitions resolved to instants:
               unique, gap (with the transition instant) or fold (both).
"""
import datetime as dt
import io
import random
import struct
import subprocess
import sys
import time
import zoneinfo

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1)

ZONES = [
    "UTC", "Etc/UTC", "Etc/GMT+5", "Europe/Berlin", "America/New_York",
    "Australia/Lord_Howe", "Asia/Kathmandu", "Europe/Dublin", "America/Sao_Paulo",
    "Africa/Casablanca", "Pacific/Apia", "America/St_Johns", "Pacific/Chatham",
    "Antarctica/Troll", "Australia/Sydney", "Asia/Tehran", "America/Santiago",
    "Europe/London",
]
LOCAL_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia",
               "Europe/Dublin", "Antarctica/Troll", "Australia/Sydney", "Pacific/Chatham"]
FOOTERS = [
    "CET-1CEST,M3.5.0,M10.5.0/3",
    "AEST-10AEDT,M10.1.0,M4.1.0/3",
    "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
    "EST5EDT,M3.2.0,M11.1.0",
    "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
    "IST-1GMT0,M10.5.0,M3.5.0/1",
    "<+0330>-3:30<+0430>,J79/24,J263/24",
    "XXX3YYY,100/2,300/2",
    "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
    "AAA-2BBB-3:30,M3.5.0/50,M10.5.0/-20",
    "<+13>-13",
    "WET0WEST,M3.5.0/1,M10.5.0",
    "XXX3YYY,J59/0,J60/0",
]

T_MIN = int((dt.datetime(1970, 1, 1) - EPOCH).total_seconds())
T_MAX = int((dt.datetime(2100, 1, 1) - EPOCH).total_seconds())


def info(z, t):
    d = dt.datetime.fromtimestamp(t, UTC).astimezone(z)
    return int(d.utcoffset().total_seconds()), bool(d.dst()), d.tzname()


def transitions(z, lo, hi, step=6 * 3600, get=info):
    """Instants T in [lo, hi) where the local time type changes."""
    out, prev = [], get(z, lo)
    for t in range(lo + step, hi, step):
        cur = get(z, t)
        if cur != prev:
            a, b = t - step, t  # info(a) == prev != info(b)
            while b - a > 1:
                m = (a + b) // 2
                if get(z, m) == prev:
                    a = m
                else:
                    b = m
            out.append(b)
        prev = cur
    return out


def glibc_info(t):
    lt = time.localtime(t)
    return lt.tm_gmtoff, bool(lt.tm_isdst), lt.tm_zone


def posix_child():
    """Run with TZ=<footer>: reads "lo hi seed", prints "t off dst abbr"
    lines for transitions in [lo, hi) (at T-1 and T) and random instants."""
    lo, hi, seed, rlo, rhi = (int(x) for x in sys.stdin.read().split())
    rnd = random.Random(seed)
    ts = set(rnd.randrange(rlo, rhi) for _ in range(150))
    for T in transitions(None, lo, hi, get=lambda z, t: glibc_info(t)):
        ts.update((T - 1, T))
    for t in sorted(ts):
        print(t, *(int(x) if not isinstance(x, str) else x for x in glibc_info(t)))


def glibc_cases(footer, lo, hi, seed, rlo, rhi):
    res = subprocess.run([sys.executable, __file__, "--posix-child"], input="%d %d %d %d %d" % (lo, hi, seed, rlo, rhi),
                         env={"TZ": footer}, capture_output=True, text=True, check=True)
    return [(int(a), int(b), int(c), d) for a, b, c, d in (line.split() for line in res.stdout.splitlines())]


def sample(xs, n):
    if len(xs) <= n:
        return xs
    return [xs[i * len(xs) // n] for i in range(n)]


def tzif_blob(footer):
    """A TZif v2 file with no transitions and one type: the footer's std."""
    abbr = b"STD\0"
    hdr = b"TZif2" + b"\0" * 15 + struct.pack(">6l", 0, 0, 0, 0, 1, len(abbr))
    block = struct.pack(">lBB", 0, 0, 0) + abbr
    return hdr + block + hdr + block + b"\n" + footer.encode() + b"\n"


def c_bytes(b):
    return ", ".join(str(x) for x in b)


def local_seconds(d):
    return int((d - EPOCH).total_seconds())


def resolve_local(z, L, trans):
    """(kind, utc, utc_late) for local L, as PEP 495 fold=0/1 says."""
    naive = EPOCH + dt.timedelta(seconds=L)
    o0 = int(naive.replace(tzinfo=z, fold=0).utcoffset().total_seconds())
    o1 = int(naive.replace(tzinfo=z, fold=1).utcoffset().total_seconds())
    if o0 == o1:
        return 0, L - o0, L - o0
    if o0 > o1:
        return 2, L - o0, L - o1
    gap_end = [T for T in trans if T + info(z, T - 1)[0] <= L < T + info(z, T)[0]]
    assert len(gap_end) == 1, (z, L)
    return 1, gap_end[0], L - o0


def main():
    rnd = random.Random(20260101)
    out = sys.stdout
    with open("/usr/share/zoneinfo/tzdata.zi") as f:
        version = f.readline().split()[-1]
    # Instants before the tzdata release's year are history that updates
    # rarely touch; the test keeps comparing those under another version.
    stable = int((dt.datetime(int(version[:4]), 1, 1) - EPOCH).total_seconds())
    out.write("/* Generated by tests/unit/gen_tz_cases.py from Python %s zoneinfo and\n"
              " * tzdata %s; do not edit. */\n" % (sys.version.split()[0], version))
    out.write('#define TZ_CASES_TZDATA "%s"\n#define TZ_CASES_STABLE_BEFORE %dLL\n\n' % (version, stable))

    out.write("static const char *const TZ_CASE_ZONES[] = {\n")
    for name in ZONES:
        out.write('    "%s",\n' % name)
    out.write("};\n\nstatic const struct tz_case TZ_CASES[] = {\n")
    all_trans = {}
    for zi, name in enumerate(ZONES):
        z = zoneinfo.ZoneInfo(name)
        trans = transitions(z, T_MIN, T_MAX)
        all_trans[name] = trans
        ts = set()
        for T in sample(trans, 70):
            ts.update((T - 1, T))
        ts.update(rnd.randrange(T_MIN, T_MAX) for _ in range(120))
        for t in sorted(ts):
            off, dst, abbr = info(z, t)
            out.write('    {%d, %dLL, %d, %d, "%s"},\n' % (zi, t, off, dst, abbr))
    out.write("};\n\n")

    for i, footer in enumerate(FOOTERS):
        out.write("static const unsigned char TZ_BLOB_%d[] = {%s};\n" % (i, c_bytes(tzif_blob(footer))))
    out.write("\nstatic const struct tz_blob TZ_BLOBS[] = {\n")
    for i, footer in enumerate(FOOTERS):
        out.write('    {"%s", TZ_BLOB_%d, sizeof TZ_BLOB_%d},\n' % (footer, i, i))
    out.write("};\n\nstatic const struct tz_case TZ_BLOB_CASES[] = {\n")
    lo = 0  # glibc evaluates TZ rules wrongly before 1970 (it starts each year's search at 1970)
    hi = int((dt.datetime(2200, 1, 1) - EPOCH).total_seconds())
    y2020 = int((dt.datetime(2020, 1, 1) - EPOCH).total_seconds())
    y2031 = int((dt.datetime(2031, 1, 1) - EPOCH).total_seconds())
    for i, footer in enumerate(FOOTERS):
        z = zoneinfo.ZoneInfo.from_file(io.BytesIO(tzif_blob(footer)), key="Test/Blob%d" % i)
        differ = 0
        for t, off, dst, abbr in glibc_cases(footer, y2020, y2031, rnd.randrange(1 << 30), lo, hi):
            differ += info(z, t) != (off, bool(dst), abbr)
            out.write('    {%d, %dLL, %d, %d, "%s"},\n' % (i, t, off, dst, abbr))
        if differ:
            print("%s: zoneinfo differs from glibc at %d instants" % (footer, differ), file=sys.stderr)
    out.write("};\n\nstatic const struct tz_local_case TZ_LOCALS[] = {\n")
    for name in LOCAL_ZONES:
        z = zoneinfo.ZoneInfo(name)
        zi = ZONES.index(name)
        trans = [T for T in all_trans[name] if 946684800 <= T < 2366755200]  # 2000-2045
        ls = set()
        for T in sample(trans, 16) + [T for T in trans if 1300000000 < T < 1330000000]:
            o1, o2 = info(z, T - 1)[0], info(z, T)[0]
            for base in (T + o1, T + o2):
                ls.update((base - 1, base, base + 1))
            ls.add(T + (o1 + o2) // 2)
        for L in sorted(ls):
            kind, u, late = resolve_local(z, L, trans)
            out.write("    {%d, %dLL, %d, %dLL, %dLL},\n" % (zi, L, kind, u, late))
    out.write("};\n")


if __name__ == "__main__":
    posix_child() if sys.argv[1:] == ["--posix-child"] else main()
