"""The administration resources of the REST API against the real server
(ASan build), on SQLite and PostgreSQL (store_url): users, API keys,
secrets, the global config and the audit trail, and `restmon rotate-key`.

Role checks here cover a few cells only; the full role x route matrix is
tested elsewhere."""

import base64
import datetime
import json
import sqlite3
import subprocess
import time
import urllib.parse

import pytest

from test_durable import restmon, store_url  # noqa: F401  (fixture)
from test_run import http_task, write_flow
from test_serve import ADMIN_PW, assert_clean_exit, server, start_server  # noqa: F401  (fixture)

USER_PW = "a-long-enough-password-1"
# A value whose raw, URL-encoded and base64 forms all differ.
SECRET = "Zq9/s3cr+t=va lue!x7"
SECRET_FORMS = [SECRET, base64.b64encode(SECRET.encode()).decode().rstrip("="),
                urllib.parse.quote(SECRET, safe=""), urllib.parse.quote_plus(SECRET)]


# ---- helpers ----

def ok(srv, method, path, body=None, token=None, status=200):
    st, env = srv.api(method, path, body, token=token)
    assert st == status, (method, path, st, env)
    return env["data"]


def admin_id(srv, token):
    return ok(srv, "GET", "/api/v1/me", token=token)["user_id"]


def new_user(srv, token, name, role, password=USER_PW):
    body = {"name": name, "role": role}
    if password:
        body["password"] = password
    return ok(srv, "POST", "/api/v1/users", body, token=token, status=201)


def user_token(srv, admin_token, name, role):
    new_user(srv, admin_token, name, role)
    return srv.login(name, USER_PW)


def audit(srv, token, **query):
    q = urllib.parse.urlencode(dict(query, page_size=500))
    return ok(srv, "GET", "/api/v1/audit?" + q, token=token)["items"]


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sql(url, query):
    """Runs query on the test's store behind the server's back; rows."""
    if url.startswith("sqlite:"):
        db = sqlite3.connect(url[len("sqlite:"):], timeout=30)
        try:
            rows = db.execute(query).fetchall()
            db.commit()
            return rows
        finally:
            db.close()
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-At", "-c", query], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def store_bytes(url, tmp_path):
    """Everything the store holds, as bytes: the SQLite files (database,
    WAL, backups) or a full pg_dump."""
    if url.startswith("sqlite:"):
        return b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.name.startswith("restmon.db"))
    return subprocess.run(["pg_dump", "--data-only", url], check=True, capture_output=True,
                          timeout=60).stdout


def assert_no_secret(blob, what):
    for form in SECRET_FORMS:
        assert form.encode() not in blob, (what, form)


def wait_run(srv, token, run_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st, _, body = srv.request("GET", "/api/v1/runs/" + run_id, token=token)
        assert st == 200, body
        if json.loads(body)["data"]["status"] not in ("queued", "running"):
            return json.loads(body)["data"], body
        time.sleep(0.2)
    pytest.fail("run %s did not finish" % run_id)


def queue_run(restmon_bin, url, flow_path):
    proc = restmon(restmon_bin, "runs", "queue", flow_path, "--database", url, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    return (out[0] if isinstance(out, list) else out)["run_id"]


def secret_flow(tmp_path, mock, names):
    """Logs in to the mock API as alice with the first secret, then posts
    every secret to /echo (which answers them back)."""
    login = http_task(mock.url + "/login")
    login["request"].update({"method": "POST", "json": {"username": "alice",
                                                        "password": "{{secrets.%s}}" % names[0]}})
    login["assert"] = [{"from": "status", "op": "eq", "value": 200}]
    login["on_success"] = ["echo"]
    echo = http_task(mock.url + "/echo")
    echo["request"].update({"method": "POST", "json": {n: "{{secrets.%s}}" % n for n in names}})
    echo["extract"] = {"echoed": "$.json.%s" % names[0]}
    flow = {"name": "uses-secrets", "tasks": {"login": login, "echo": echo}}
    return write_flow(tmp_path, flow, "secret-flow.json")


# ---- users ----

def test_user_lifecycle_is_audited_and_never_shows_a_hash(server):
    tok = server.login()
    made = new_user(server, tok, "carol", "full_designer")
    assert made["active"] is True and "password" not in made
    gen = new_user(server, tok, "dave", "super_operator", password=None)
    assert len(gen["password"]) >= 20
    server.login("dave", gen["password"])
    for path in ("/api/v1/users", "/api/v1/users/" + made["id"]):
        st, _, body = server.request("GET", path, token=tok)
        assert st == 200 and b"password" not in body and b"argon2" not in body, body
    assert {u["name"] for u in ok(server, "GET", "/api/v1/users?name=car", token=tok)["items"]} == {"carol"}
    st, env = server.api("GET", "/api/v1/users?sort=password_hash", token=tok)
    assert st == 400 and "sort" in env["message"], env
    st, env = server.api("GET", "/api/v1/users?role=admin", token=tok)
    assert st == 400 and env["error"]["details"][0]["path"] == "query.role", env

    st, env = server.api("POST", "/api/v1/users", {"name": "carol", "role": "admin", "password": USER_PW}, token=tok)
    assert st == 409, env
    st, env = server.api("POST", "/api/v1/users", {"name": "bad name!", "role": "boss", "password": "short",
                                                   "email": "nope"}, token=tok)
    assert st == 422 and {d["path"] for d in env["error"]["details"]} == {"$.name", "$.role", "$.password",
                                                                            "$.email"}, env
    st, env = server.api("PUT", "/api/v1/users/" + made["id"], {"role": "admin", "extra": 1, "version": 1}, token=tok)
    assert st == 422 and env["error"]["details"][0]["path"] == "$.extra"
    st, env = server.api("PUT", "/api/v1/users/" + made["id"], {"role": "admin"}, token=tok)
    assert st == 422 and env["error"]["details"][0]["path"] == "$.version"

    upd = ok(server, "PUT", "/api/v1/users/" + made["id"],
             {"role": "read_only_designer", "display_name": "Carol C", "version": 1}, token=tok)
    assert upd["role"] == "read_only_designer" and upd["display_name"] == "Carol C" and upd["version"] == 2
    st, env = server.api("PUT", "/api/v1/users/" + made["id"], {"role": "admin", "version": 1}, token=tok)
    assert st == 409, env

    reset = ok(server, "POST", "/api/v1/users/%s/password" % made["id"], token=tok)
    st, _ = server.api("POST", "/api/v1/auth/login", {"username": "carol", "password": USER_PW})
    assert st == 401
    carol = server.login("carol", reset["password"])
    assert ok(server, "GET", "/api/v1/me", token=carol)["username"] == "carol"
    # a reset ends the sessions opened before it; the admin's own goes on
    ok(server, "POST", "/api/v1/users/%s/password" % made["id"], {"password": USER_PW}, token=tok)
    st, env = server.api("GET", "/api/v1/me", token=carol)
    assert st == 401 and "reset the password" in env["message"], env
    ok(server, "GET", "/api/v1/users", token=tok)
    carol = server.login("carol", USER_PW)
    assert ok(server, "GET", "/api/v1/me", token=carol)["username"] == "carol"

    gone = ok(server, "DELETE", "/api/v1/users/" + made["id"], token=tok)
    assert gone["active"] is False
    assert ok(server, "GET", "/api/v1/users/" + made["id"], token=tok)["active"] is False
    st, _ = server.api("GET", "/api/v1/me", token=carol)
    assert st == 401
    st, _ = server.api("POST", "/api/v1/auth/login", {"username": "carol", "password": USER_PW})
    assert st == 401
    st, _ = server.api("GET", "/api/v1/users/nope", token=tok)
    assert st == 404

    actions = [e["action"] for e in audit(server, tok, object_kind="user", object_id=made["id"])]
    for a in ("user.create", "user.role_change", "user.update", "user.password_reset", "user.deactivate"):
        assert a in actions, actions
    change = audit(server, tok, action="user.role_change", object_id=made["id"])[0]
    assert change["before"] == {"role": "full_designer"} and change["after"] == {"role": "read_only_designer"}
    st, _, body = server.request("GET", "/api/v1/audit?page_size=500", token=tok)
    assert b"argon2" not in body and USER_PW.encode() not in body
    assert_clean_exit(server)
    assert USER_PW.encode() not in server.stderr() and reset["password"].encode() not in server.stderr()


def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(server):
    tok = server.login()
    me = admin_id(server, tok)
    st, env = server.api("PUT", "/api/v1/users/" + me, {"role": "full_designer", "version": 1}, token=tok)
    assert st == 409 and "last active admin" in env["message"], env
    st, env = server.api("PUT", "/api/v1/users/" + me, {"active": False, "version": 1}, token=tok)
    assert st == 409, env
    st, env = server.api("DELETE", "/api/v1/users/" + me, token=tok)
    assert st == 409, env
    other = new_user(server, tok, "root2", "admin")
    # An inactive admin does not count.
    ok(server, "PUT", "/api/v1/users/" + other["id"], {"active": False, "version": 1}, token=tok)
    st, _ = server.api("DELETE", "/api/v1/users/" + me, token=tok)
    assert st == 409
    ok(server, "PUT", "/api/v1/users/" + other["id"], {"active": True, "version": 2}, token=tok)
    ok(server, "PUT", "/api/v1/users/" + me, {"role": "full_designer", "version": 1}, token=tok)
    st, _ = server.api("GET", "/api/v1/users", token=tok)
    assert st == 403  # the demotion applies to the next request
    tok2 = server.login("root2", USER_PW)
    st, env = server.api("DELETE", "/api/v1/users/" + other["id"], token=tok2)
    assert st == 409, env
    assert_clean_exit(server)


def test_a_deactivated_users_session_and_api_key_stop_at_once(server):
    tok = server.login()
    uid = new_user(server, tok, "erin", "super_operator")["id"]
    sess = server.login("erin", USER_PW)
    key = ok(server, "POST", "/api/v1/api-keys", {"name": "erin-ci"}, token=sess, status=201)["key"]
    for cred in (sess, key):
        assert ok(server, "GET", "/api/v1/me", token=cred)["username"] == "erin"
    ok(server, "DELETE", "/api/v1/users/" + uid, token=tok)
    for cred in (sess, key):
        st, env = server.api("GET", "/api/v1/runs", token=cred)
        assert st == 401 and "deactivated" in env["message"], env
    assert_clean_exit(server)


# ---- API keys ----

def test_api_key_is_shown_once_works_as_bearer_and_dies_when_revoked_or_expired(server):
    tok = server.login()
    st, env = server.api("POST", "/api/v1/api-keys", {"name": "ci", "expires_in_days": 30, "expires_at": iso(time.time() + 99)},
                         token=tok)
    assert st == 422 and env["error"]["details"][0]["path"] == "$.expires_in_days"
    for bad in ({"name": ""}, {"name": "x", "expires_at": "yesterday"}, {"name": "x", "expires_at": iso(time.time() - 5)},
                {"name": "x", "expires_in_days": 0}):
        st, env = server.api("POST", "/api/v1/api-keys", bad, token=tok)
        assert st == 422, (bad, env)
    made = ok(server, "POST", "/api/v1/api-keys", {"name": "ci", "expires_in_days": 30}, token=tok, status=201)
    key = made["key"]
    assert key.startswith("rmk_" + made["id"] + "_") and made["name"] == "ci" and made["expires_at"]
    me = ok(server, "GET", "/api/v1/me", token=key)
    assert me["auth"] == "api_key" and me["username"] == "admin"
    secret = key[len("rmk_" + made["id"] + "_"):]  # base64url: may itself hold "_"
    for path in ("/api/v1/api-keys", "/api/v1/api-keys/" + made["id"], "/api/v1/audit?page_size=500"):
        st, _, body = server.request("GET", path, token=tok)
        assert st == 200 and key.encode() not in body and secret.encode() not in body, path
        assert b"key_hash" not in body
    listed = ok(server, "GET", "/api/v1/api-keys", token=tok)["items"]
    assert [k["id"] for k in listed] == [made["id"]] and listed[0]["username"] == "admin"

    ok(server, "DELETE", "/api/v1/api-keys/" + made["id"], token=tok)
    st, env = server.api("GET", "/api/v1/me", token=key)
    assert st == 401 and "revoked" in env["message"]
    st, _ = server.api("DELETE", "/api/v1/api-keys/" + made["id"], token=tok)
    assert st == 404
    assert ok(server, "GET", "/api/v1/api-keys", token=tok)["total"] == 0

    short = ok(server, "POST", "/api/v1/api-keys", {"name": "brief", "expires_at": iso(time.time() + 3)}, token=tok,
               status=201)
    assert ok(server, "GET", "/api/v1/me", token=short["key"])["auth"] == "api_key"
    time.sleep(4.5)
    st, env = server.api("GET", "/api/v1/me", token=short["key"])
    assert st == 401 and "expired" in env["message"], env
    assert ok(server, "GET", "/api/v1/api-keys/" + short["id"], token=tok)["expired"] is True
    actions = {e["action"] for e in audit(server, tok, object_kind="apikey")}
    assert {"api_key.create", "api_key.revoke"} <= actions
    assert_clean_exit(server)
    assert key.encode() not in server.stderr()


def test_keys_are_private_to_their_owner_and_admins_see_all(server):
    tok = server.login()
    admin_key = ok(server, "POST", "/api/v1/api-keys", {"name": "mine"}, token=tok, status=201)
    des = user_token(server, tok, "fay", "full_designer")
    fay_key = ok(server, "POST", "/api/v1/api-keys", {"name": "mine"}, token=des, status=201)
    own = ok(server, "GET", "/api/v1/api-keys", token=des)
    assert [k["id"] for k in own["items"]] == [fay_key["id"]] and own["total"] == 1
    st, _ = server.api("GET", "/api/v1/api-keys/" + admin_key["id"], token=des)
    assert st == 404
    st, _ = server.api("DELETE", "/api/v1/api-keys/" + admin_key["id"], token=des)
    assert st == 404
    st, env = server.api("GET", "/api/v1/api-keys?user_id=" + admin_id(server, tok), token=des)
    assert st == 403, env
    st, env = server.api("GET", "/api/v1/api-keys?owner=x", token=des)
    assert st == 400 and env["error"]["details"][0]["path"] == "query.owner"
    everything = ok(server, "GET", "/api/v1/api-keys", token=tok)
    assert {k["id"] for k in everything["items"]} == {admin_key["id"], fay_key["id"]}
    fays = ok(server, "GET", "/api/v1/api-keys?user_id=" + fay_key["user_id"], token=tok)
    assert [k["username"] for k in fays["items"]] == ["fay"]
    ok(server, "DELETE", "/api/v1/api-keys/" + fay_key["id"], token=tok)  # an admin revokes anyone's
    assert_clean_exit(server)


def test_admin_makes_a_key_for_a_read_only_user_that_can_view_but_not_cancel(server):
    tok = server.login()
    ro = new_user(server, tok, "dash", "read_only_operator", password=None)
    st, env = server.api("POST", "/api/v1/api-keys", {"name": "x", "user_id": "no-such-user"}, token=tok)
    assert st == 422 and env["error"]["details"][0]["path"] == "$.user_id"
    made = ok(server, "POST", "/api/v1/api-keys", {"name": "wallboard", "user_id": ro["id"]}, token=tok, status=201)
    assert made["user_id"] == ro["id"] and made["username"] == "dash"
    key = made["key"]
    assert ok(server, "GET", "/api/v1/me", token=key)["role"] == "read_only_operator"
    ok(server, "GET", "/api/v1/runs", token=key)
    st, env = server.api("POST", "/api/v1/runs/x/cancel", token=key)
    assert st == 403, env
    st, env = server.api("POST", "/api/v1/api-keys", {"name": "own"}, token=key)
    assert st == 403, env  # read-only roles do not create keys
    assert [k["id"] for k in ok(server, "GET", "/api/v1/api-keys", token=key)["items"]] == [made["id"]]
    des = user_token(server, tok, "gus", "full_designer")
    st, env = server.api("POST", "/api/v1/api-keys", {"name": "x", "user_id": ro["id"]}, token=des)
    assert st == 403, env
    assert_clean_exit(server)


# ---- secrets ----

def test_secret_lifecycle_never_answers_or_stores_the_value(server, store_url, tmp_path):  # noqa: F811
    tok = server.login()
    made = ok(server, "POST", "/api/v1/secrets", {"name": "api_pw", "value": SECRET, "description": "shop login",
                                                  "tags": ["shop"]}, token=tok, status=201)
    assert made["scope"] == "private" and made["version"] == 1 and "value" not in made
    sid = made["id"]
    bodies = []
    for method, path, body in (("GET", "/api/v1/secrets", None), ("GET", "/api/v1/secrets/" + sid, None),
                               ("GET", "/api/v1/secrets?tag=shop&name=api", None),
                               ("PUT", "/api/v1/secrets/" + sid, {"value": SECRET + "2", "description": "new",
                                                                  "version": 1}),
                               ("PUT", "/api/v1/secrets/" + sid, {"tags": ["a", "b"], "version": 2}),
                               ("POST", "/api/v1/secrets", {"name": "other", "value": SECRET + "3",
                                                            "scope": "global"})):
        st, _, body = server.request(method, path, body, token=tok)
        assert st in (200, 201), (method, path, body)
        bodies.append(body)
    assert json.loads(bodies[2])["data"]["total"] == 1
    assert json.loads(bodies[4])["data"]["description"] == "new"
    st, env = server.api("PUT", "/api/v1/secrets/" + sid, {"value": "xyz123", "version": 1}, token=tok)
    assert st == 409, env
    st, env = server.api("POST", "/api/v1/secrets", {"name": "API_PW", "value": "whatever"}, token=tok)
    assert st == 409 and "ignore case" in env["message"], env
    st, env = server.api("POST", "/api/v1/secrets", {"name": "1bad name", "value": "x", "scope": "team",
                                                     "tags": [1]}, token=tok)
    assert st == 422 and {d["path"] for d in env["error"]["details"]} == {"$.name", "$.value", "$.scope", "$.tags"}
    st, env = server.api("PUT", "/api/v1/secrets/" + sid, {"name": "renamed", "version": 3}, token=tok)
    assert st == 422 and env["error"]["details"][0]["path"] == "$.name"

    ok(server, "DELETE", "/api/v1/secrets/" + sid, token=tok)
    st, _ = server.api("GET", "/api/v1/secrets/" + sid, token=tok)
    assert st == 404
    assert [s["name"] for s in ok(server, "GET", "/api/v1/secrets", token=tok)["items"]] == ["other"]
    entries = audit(server, tok, object_kind="secret")
    assert {"secret.create", "secret.replace", "secret.delete"} <= {e["action"] for e in entries}
    assert all(e["after"]["value"] == "***" for e in entries if e["action"] == "secret.create")
    assert all(e["before"]["value"] == "***" for e in entries if e["action"] == "secret.delete")
    st, _, body = server.request("GET", "/api/v1/audit?page_size=500", token=tok)
    bodies.append(body)
    for b in bodies:
        assert_no_secret(b, "API answer")
    assert_no_secret(store_bytes(store_url, tmp_path), "store, WAL not checkpointed yet")
    assert_clean_exit(server)
    assert_no_secret(server.stderr(), "server log")
    assert_no_secret(store_bytes(store_url, tmp_path), "store")
    # The deleted secret keeps no ciphertext; the live one only its ciphertext.
    rows = sql(store_url, "SELECT name, body, deleted_at FROM documents WHERE kind = 'secret' ORDER BY name")
    by_name = {r[0]: (json.loads(r[1]), r[2]) for r in rows}
    assert "ciphertext" not in by_name["api_pw"][0] and by_name["api_pw"][1]
    assert by_name["other"][0]["ciphertext"].startswith("rmv1:")


def test_private_secrets_are_seen_by_their_owner_and_admins_only(server):
    tok = server.login()
    ann = user_token(server, tok, "ann", "full_designer")
    ben = user_token(server, tok, "ben", "full_designer")
    rod = user_token(server, tok, "rod", "read_only_designer")
    mine = ok(server, "POST", "/api/v1/secrets", {"name": "ann_token", "value": "ann-value-1"}, token=ann, status=201)
    ok(server, "POST", "/api/v1/secrets", {"name": "shared", "value": "shared-value", "scope": "global"}, token=ann,
       status=201)
    assert {s["name"] for s in ok(server, "GET", "/api/v1/secrets", token=ben)["items"]} == {"shared"}
    assert ok(server, "GET", "/api/v1/secrets", token=ben)["total"] == 1
    for method in ("GET", "DELETE"):
        st, _ = server.api(method, "/api/v1/secrets/" + mine["id"], token=ben)
        assert st == 404
    assert {s["name"] for s in ok(server, "GET", "/api/v1/secrets", token=tok)["items"]} == {"ann_token", "shared"}
    assert ok(server, "GET", "/api/v1/secrets/" + mine["id"], token=tok)["owner"] == mine["owner"]
    assert ok(server, "GET", "/api/v1/secrets", token=rod)["total"] == 1
    st, _ = server.api("POST", "/api/v1/secrets", {"name": "r", "value": "abcdef"}, token=rod)
    assert st == 403
    op = user_token(server, tok, "opal", "super_operator")
    st, _ = server.api("GET", "/api/v1/secrets", token=op)
    assert st == 403
    assert_clean_exit(server)


def test_a_run_gets_the_secret_value_and_its_record_masks_it(restmon_bin, mock_api_factory, tmp_path,
                                                             store_url):  # noqa: F811
    mock = mock_api_factory("--user", "alice:" + SECRET)
    srv = start_server(restmon_bin, tmp_path, store_url)
    tok = srv.login()
    ok(srv, "POST", "/api/v1/secrets", {"name": "api_pw", "value": SECRET}, token=tok, status=201)
    flow = secret_flow(tmp_path, mock, ["api_pw"])
    run, raw = wait_run(srv, tok, queue_run(restmon_bin, store_url, flow))
    assert run["status"] == "succeeded", raw  # the mock accepted the password: the value reached it
    assert_no_secret(raw, "run record")
    assert b"***" in raw
    st, _, logs = srv.request("GET", "/api/v1/runs/%s/logs" % run["run_id"], token=tok)
    assert st == 200
    assert_no_secret(logs, "run logs")

    sid = ok(srv, "GET", "/api/v1/secrets", token=tok)["items"][0]["id"]
    ok(srv, "DELETE", "/api/v1/secrets/" + sid, token=tok)
    run, raw = wait_run(srv, tok, queue_run(restmon_bin, store_url, flow))
    assert run["status"] == "failed" and b"api_pw" in raw, raw  # no longer injected
    assert_clean_exit(srv)
    assert_no_secret(srv.stderr(), "server log")
    assert_no_secret(store_bytes(store_url, tmp_path), "store")


# ---- rotate-key ----

def key_ids(url):
    return sorted(json.loads(r[0])["ciphertext"].split(":")[1]
                  for r in sql(url, "SELECT body FROM documents WHERE kind = 'secret' AND deleted_at IS NULL"))


def test_rotate_key_reencrypts_every_secret_and_survives_a_stop_midway(restmon_bin, mock_api_factory, tmp_path,
                                                                        store_url):  # noqa: F811
    mock = mock_api_factory("--user", "alice:" + SECRET)
    names = ["api_pw", "second", "third"]
    srv = start_server(restmon_bin, tmp_path, store_url)
    tok = srv.login()
    for i, n in enumerate(names):
        ok(srv, "POST", "/api/v1/secrets", {"name": n, "value": SECRET if i == 0 else "value-%d-xyz" % i},
           token=tok, status=201)
    assert_clean_exit(srv)
    conf, key_file = tmp_path / "restmon.conf", tmp_path / "master.key"
    old_key = key_file.read_bytes()
    old_id = key_ids(store_url)[0]
    assert key_ids(store_url) == [old_id] * 3

    # Stopped after one secret (as a crash would): nothing is committed yet,
    # and the server decrypts both keys meanwhile.
    part = restmon(restmon_bin, "rotate-key", "-c", str(conf), "--max", "1")
    assert part.returncode == 0, part.stderr
    assert "re-encrypted 1/3 secrets" in part.stdout and "not committed" in part.stdout, part.stdout
    assert key_file.read_bytes() == old_key and (tmp_path / "master.key.new").exists()
    new_id = [k for k in key_ids(store_url) if k != old_id][0]
    assert key_ids(store_url).count(new_id) == 1
    flow = secret_flow(tmp_path, mock, names)
    srv = start_server(restmon_bin, tmp_path, store_url)
    assert b"rotation is unfinished" in srv.stderr()
    tok = srv.login()
    run, raw = wait_run(srv, tok, queue_run(restmon_bin, store_url, flow))
    assert run["status"] == "succeeded", raw
    assert_clean_exit(srv)

    done = restmon(restmon_bin, "rotate-key", "-c", str(conf))
    assert done.returncode == 0, done.stderr
    assert "3 secret(s) in the store, 2 to re-encrypt" in done.stdout, done.stdout
    assert "re-encrypted 2/2 secrets" in done.stdout and "new key id: " + new_id in done.stdout, done.stdout
    assert key_ids(store_url) == [new_id] * 3
    assert key_file.read_bytes() != old_key
    assert (tmp_path / ("master.key.old-" + old_id)).read_bytes() == old_key
    assert not (tmp_path / "master.key.new").exists()

    srv = start_server(restmon_bin, tmp_path, store_url)
    assert b"rotation is unfinished" not in srv.stderr()
    tok = srv.login()
    run, raw = wait_run(srv, tok, queue_run(restmon_bin, store_url, flow))
    assert run["status"] == "succeeded", raw
    assert_no_secret(raw, "run record")
    rot = audit(srv, tok, action="vault.rotate_key")
    assert len(rot) == 1 and rot[0]["before"]["key_id"] == old_id and rot[0]["after"]["key_id"] == new_id
    assert_clean_exit(srv)
    assert_no_secret(done.stdout.encode() + done.stderr.encode() + part.stdout.encode(), "rotate-key output")


def test_rotate_key_refuses_clearly_without_a_key_file(restmon_bin, tmp_path):
    conf = tmp_path / "restmon.conf"
    conf.write_text("database = sqlite:%s\nvault.key_file = %s\n" % (tmp_path / "r.db", tmp_path / "none.key"))
    proc = restmon(restmon_bin, "rotate-key", "-c", str(conf))
    assert proc.returncode == 1 and "does not exist" in proc.stderr, proc.stderr
    proc = restmon(restmon_bin, "rotate-key", "--max", "zero")
    assert proc.returncode == 2 and "usage" in proc.stderr


# ---- global config ----

def test_config_sets_the_session_lifetime_and_survives_a_restart(restmon_bin, tmp_path, store_url):  # noqa: F811
    srv = start_server(restmon_bin, tmp_path, store_url)
    tok = srv.login()
    cfg = ok(srv, "GET", "/api/v1/config", token=tok)
    assert cfg["version"] == 0 and cfg["session_ttl_s"] == 43200 and cfg["defaults"]["session_ttl_s"] == 43200
    assert cfg["run_retention"] == {"succeeded_days": 30, "failed_days": 90}
    st, env = srv.api("PUT", "/api/v1/config", {"session_ttl_s": 5, "run_retention": {"bogus": 1, "failed_days": -1},
                                                "audit_retention_days": "x", "version": 0}, token=tok)
    assert st == 422 and {d["path"] for d in env["error"]["details"]} == {
        "$.session_ttl_s", "$.run_retention.bogus", "$.run_retention.failed_days", "$.audit_retention_days"}, env
    st, env = srv.api("PUT", "/api/v1/config", {"session_ttl_s": 120}, token=tok)
    assert st == 422 and env["error"]["details"][0]["path"] == "$.version"
    new = ok(srv, "PUT", "/api/v1/config", {"session_ttl_s": 120, "run_retention": {"failed_days": 7.5},
                                            "version": 0}, token=tok)
    assert new["version"] == 1 and new["session_ttl_s"] == 120 and new["updated_by"] == "admin"
    assert new["run_retention"] == {"succeeded_days": 30, "failed_days": 7.5}
    st, env = srv.api("PUT", "/api/v1/config", {"session_ttl_s": 300, "version": 0}, token=tok)
    assert st == 409, env
    st, env = srv.api("POST", "/api/v1/auth/login", {"username": "admin", "password": ADMIN_PW})
    assert env["data"]["expires_in_s"] == 120
    entry = audit(srv, tok, action="config.update")[0]
    assert entry["before"]["session_ttl_s"] == 43200 and entry["after"]["session_ttl_s"] == 120
    assert entry["after"]["run_retention"]["failed_days"] == 7.5
    des = user_token(srv, tok, "hal", "full_designer")
    st, _ = srv.api("GET", "/api/v1/config", token=des)
    assert st == 403
    assert_clean_exit(srv)

    srv = start_server(restmon_bin, tmp_path, store_url)
    tok = srv.login()
    st, env = srv.api("POST", "/api/v1/auth/login", {"username": "admin", "password": ADMIN_PW})
    assert env["data"]["expires_in_s"] == 120
    back = ok(srv, "PUT", "/api/v1/config", {"session_ttl_s": None, "run_retention": None, "version": 1}, token=tok)
    assert back["session_ttl_s"] == 43200 and back["run_retention"]["failed_days"] == 90 and back["version"] == 2
    st, env = srv.api("POST", "/api/v1/auth/login", {"username": "admin", "password": ADMIN_PW})
    assert env["data"]["expires_in_s"] == 43200
    assert_clean_exit(srv)


# ---- audit ----

def test_audit_list_filters_pages_and_rejects_unknown_parameters(server):
    tok = server.login()
    a = new_user(server, tok, "ivy", "full_designer")
    new_user(server, tok, "jon", "full_designer")
    ivy = server.login("ivy", USER_PW)
    ok(server, "POST", "/api/v1/secrets", {"name": "ivys", "value": "ivy-value"}, token=ivy, status=201)
    creates = audit(server, tok, actor="admin", action="user.create")
    assert {e["after"]["name"] for e in creates} >= {"ivy", "jon"} and all(e["actor"] == "admin" for e in creates)
    about_ivy = audit(server, tok, object_kind="user", object_id=a["id"])
    assert {e["object_id"] for e in about_ivy} == {a["id"]}
    assert [e["action"] for e in about_ivy] == ["auth.login", "user.create"]  # newest first
    assert [e["action"] for e in audit(server, tok, actor="ivy", object_kind="secret")] == ["secret.create"]
    page = ok(server, "GET", "/api/v1/audit?page_size=2&page=2&sort=-at", token=tok)
    assert len(page["items"]) == 2 and page["page"] == 2 and page["total"] >= 5 and page["total_pages"] >= 3
    now = time.time()
    assert audit(server, tok, **{"from": iso(now + 3600)}) == []
    assert audit(server, tok, to=iso(now - 3600)) == []
    assert len(audit(server, tok, **{"from": iso(now - 3600), "to": iso(now + 3600)})) >= 5
    st, env = server.api("GET", "/api/v1/audit?actor=admin&user=admin", token=tok)
    assert st == 400 and env["code"] == "40002" and env["error"]["details"][0]["path"] == "query.user", env
    st, env = server.api("GET", "/api/v1/audit?from=yesterday", token=tok)
    assert st == 400 and "from" in env["message"], env
    st, env = server.api("GET", "/api/v1/audit?page_size=0", token=tok)
    assert st == 400
    st, _ = server.api("GET", "/api/v1/audit", token=ivy)
    assert st == 403
    assert_clean_exit(server)


def test_audit_retention_deletes_old_entries(server, store_url):  # noqa: F811
    tok = server.login()
    for n in ("kim", "lou", "max"):
        new_user(server, tok, n, "read_only_operator")
    assert len(audit(server, tok, action="user.create", actor="admin")) == 3
    sql(store_url, "UPDATE audit SET at = '2001-02-03T04:05:06.000Z' WHERE action = 'user.create'")
    ok(server, "PUT", "/api/v1/config", {"audit_retention_days": 30, "version": 0}, token=tok)
    deadline = time.monotonic() + 20
    while audit(server, tok, action="user.create") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert audit(server, tok, action="user.create") == []  # the first admin's too
    assert audit(server, tok, action="config.update")  # recent entries stay
    assert ok(server, "GET", "/api/v1/config", token=tok)["audit_retention_days"] == 30
    assert_clean_exit(server)
