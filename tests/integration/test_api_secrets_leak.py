"""A secret never shows in plain text, nor Base64 (standard and URL-safe,
padded or not), URL-encoded or JSON-escaped, anywhere outside the vault.

The secret is created through POST /api/v1/secrets and used by a workflow
run (POST /api/v1/workflows/{id}/execute) against the mock business API:
it logs in with the secret, sends it to /echo in a header, the query and
the body (the echo answers it back raw, URL-encoded and in Base64), the
run extracts those echoes and fails an assertion that prints one; the run
is annotated and rerun, and every other kind of object is made too
(apilib.populate). Then the value's forms are searched for in:

- every answer: the writes made, and a crawl of every GET route (lists,
  details, run detail, steps, logs, versions, audit, metrics, ...);
- the server's log (stderr, at debug level);
- the database: the SQLite file, its -wal and -shm while the server runs
  and after it stopped; on PostgreSQL a pg_dump of the whole database.

On SQLite and PostgreSQL. Skips while POST /api/v1/secrets or the
workflow execute route does not exist."""

import base64
import json
import os
import secrets
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from apilib import crawl, has_route, populate, route_table
from test_durable import store_url  # noqa: F401  (fixture)
from test_serve import assert_clean_exit, start_server

SECRET_NAME = "leak_probe"


def secret_value():
    # '+', '&', '=', '?' and '"' make every encoding differ from the value;
    # no space or '/', whose URL-encoding varies between encoders, and
    # ASCII only: the mock API reads header bytes as Latin-1, and echoes
    # other bytes back double-encoded (a form no scrubber is asked to know).
    return 'Lk-%s+&="?' % secrets.token_urlsafe(18)


def forms(value):
    """Every form of the value to look for, as bytes."""
    raw = value.encode()
    out = {raw, json.dumps(value)[1:-1].encode(), urllib.parse.quote(value, safe="").encode(),
           urllib.parse.quote(value, safe="").lower().encode(), urllib.parse.quote_plus(value).encode()}
    for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        out |= {enc, enc.rstrip(b"=")}
    return out


def leaks(value, blob):
    """The forms of value found in blob (bytes)."""
    return sorted(f.decode(errors="replace") for f in forms(value) if f in blob)


def db_files(store):
    path = Path(store[len("sqlite:"):])
    return sorted(p for p in path.parent.glob(path.name + "*") if p.is_file())


def db_bytes(store):
    """Everything the database holds, as bytes."""
    if store.startswith("sqlite:"):
        return {str(p): p.read_bytes() for p in db_files(store)}
    dump = subprocess.run(["pg_dump", "--no-owner", store], capture_output=True, timeout=120)
    assert dump.returncode == 0, dump.stderr
    return {"pg_dump": dump.stdout}


def test_forms_are_found_where_they_are():
    value = secret_value()
    blob = b"x" + base64.urlsafe_b64encode(value.encode()).rstrip(b"=") + b"y" + \
        urllib.parse.quote(value, safe="").encode()
    found = leaks(value, blob)
    assert len(found) >= 2 and not leaks(value, b"***")


def test_a_secret_used_by_a_run_leaks_nowhere(restmon_bin, tmp_path, store_url, mock_api_factory):  # noqa: F811
    routes = route_table(restmon_bin)
    for method, path in (("POST", "/api/v1/secrets"), ("POST", "/api/v1/workflows/{id}/execute")):
        if not has_route(routes, method, path):
            pytest.skip("%s %s is not in the route table yet" % (method, path))
    value = secret_value()
    mock = mock_api_factory("--user", "demo:" + value)
    server = start_server(restmon_bin, tmp_path, store_url, env={"RESTMON_LOG_LEVEL": "debug"})
    try:
        token = server.login()
        made, run_id = populate(server, routes, token, mock.url, SECRET_NAME, value)
        assert run_id, "populate() made no run"

        # The run used the secret: the login worked, the echo came back
        # (and was masked), the assertion that prints it failed.
        status, env = server.api("GET", "/api/v1/runs/" + run_id, token=token)
        run = env["data"]
        steps = {s["task"]: s for s in run["steps"]}
        assert run["status"] == "failed" and steps["login"]["status"] == "succeeded", run
        assert steps["check"]["status"] == "failed", steps["check"]
        extracted = steps["echo"]["attempts"][-1]["extracted"]
        assert extracted["echoed"] == "***" and extracted["header"] == "***", extracted
        assert mock.stats()["by_path"].get("/login") >= 1

        problems = []
        for method, template, status, body in made:
            for f in leaks(value, body):
                problems.append("answer of %s %s (%d) holds %r" % (method, template, status, f))
        crawled = crawl(server, routes, token, max_ids=10)
        assert sum(1 for c in crawled if c[1] == "/api/v1/runs/{id}" and c[3] == 200) >= 2, "runs not crawled"
        for method, template, path, status, body in crawled:
            assert status < 500, (path, status, body[:300])
            for f in leaks(value, body):
                problems.append("answer of GET %s (%d) holds %r" % (path, status, f))
        for name, blob in db_bytes(store_url).items():
            for f in leaks(value, blob):
                problems.append("%s (server running) holds %r" % (name, f))
    finally:
        if server.proc.poll() is None:
            assert_clean_exit(server)
    log = server.stderr()
    assert b"secrets" in log or b"http" in log, "the server logged nothing at debug level"
    for f in leaks(value, log):
        problems.append("the server's log holds %r" % f)
    for name, blob in db_bytes(store_url).items():
        for f in leaks(value, blob):
            problems.append("%s (server stopped) holds %r" % (name, f))
    assert not problems, "the secret leaked:\n" + "\n".join(problems)
    if store_url.startswith("sqlite:"):
        assert db_files(store_url), "no database file to search"
    assert os.path.exists(mock.stderr_path)
