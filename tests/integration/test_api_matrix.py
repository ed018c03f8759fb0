"""Every route x every role, generated from the live route table
(`restmon serve --print-routes`), never sampled:

- without credentials every route but the public ones answers 401;
- for a role route, a user of each role gets 403 exactly when
  docs/permissions.md (parsed here, independently of the server) says
  no, and neither 401 nor 403 when it says yes (the handler may then
  answer 400/404/409/422: the ids exist nowhere and the bodies are empty,
  so nothing is modified); routes on one's own account are open to every
  role; no answer is a 5xx, and every /api/v1 answer is the envelope;
- an API key acts with its owner's role: the read-only operator's row is
  run again with a key an admin made for that user;
- forbidden requests change nothing: sent with the documented example as
  the body (valid requests, which would create or change something had
  the check let them through), every list the admin can read (and the
  audit log) is the same before and after them.

Users of each role are made through POST /api/v1/users; the test skips
while that route does not exist. It runs on SQLite and PostgreSQL: one
role's row is about one request per route, so both stay quick."""

import json

import pytest

from apilib import (FAKE_ID, PARAM, ROLES, allowed, concrete, envelope_problems, has_route, load_openapi,
                    permission_table, role_tokens, route_table)
from test_durable import store_url  # noqa: F401  (fixture)
from test_serve import assert_clean_exit, server  # noqa: F401  (fixture)

NO_CREDENTIALS = "no credentials"


def ordered(routes):
    """Reads first, then writes; routes that end the caller's session last."""
    def key(r):
        return (r["path"] == "/api/v1/auth/logout", r["method"] != "GET")
    return sorted(routes, key=key)


def call(server, route, token):
    path = concrete(route["path"])
    status, headers, body = server.request(route["method"], path, token=token)
    return path, status, headers, body


def snapshot(server, routes, token):
    """Everything the admin can list, page by page (lists of /api/v1 GET
    routes without parameters, and the audit log when it exists)."""
    snap = {}
    for r in routes:
        if r["method"] != "GET" or PARAM.search(r["path"]) or not r["path"].startswith("/api/v1/"):
            continue
        if r["path"] in ("/api/v1/me",):
            continue
        status, env = server.api("GET", r["path"] + "?page_size=500", token=token)
        if status == 400:  # a list without paging, or not a list
            status, env = server.api("GET", r["path"], token=token)
        snap[r["path"]] = (status, env.get("data"))
    return snap


def request_examples():
    """{(method, path): the documented request body example}."""
    out = {}
    for path, item in load_openapi()["paths"].items():
        for method, op in item.items():
            media = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if isinstance(media.get("example"), dict):
                out[(method.upper(), path)] = media["example"]
    return out


def check_row(server, routes, perms, role, token):
    """One role's row of the matrix. Returns the problems found."""
    problems = []
    for r in ordered(routes):
        path, status, headers, body = call(server, r, token)
        req = "%s %s as %s" % (r["method"], path, role)
        may = allowed(r, None if role == NO_CREDENTIALS else role.split("+")[0], perms)
        if status >= 500:
            problems.append("%s: %d (server error) %s" % (req, status, body[:300]))
            continue
        if not may and role == NO_CREDENTIALS and status != 401:
            problems.append("%s: %d, expected 401" % (req, status))
        elif not may and role != NO_CREDENTIALS and status != 403:
            problems.append("%s: %d, expected 403 (%s.%s is not allowed by docs/permissions.md)"
                            % (req, status, r.get("module"), r.get("action")))
        elif may and status in (401, 403):
            problems.append("%s: %d, expected to be let through (%s) %s"
                            % (req, status, r.get("module", r["access"]), body[:200]))
        if status == 401 and "www-authenticate" not in headers:
            problems.append("%s: 401 without WWW-Authenticate" % req)
        if r["path"].startswith("/api/v1/"):
            problems += ["%s: %s" % (req, p) for p in envelope_problems(status, body)]
    return problems


def test_every_route_for_every_role(server, restmon_bin):
    routes = route_table(restmon_bin)
    perms = permission_table()
    admin = server.login()
    tokens = role_tokens(server, routes, admin)
    status, me = server.api("GET", "/api/v1/me", token=tokens["read_only_operator"])
    assert status == 200, me
    problems = check_row(server, routes, perms, NO_CREDENTIALS, None)

    # Forbidden requests first, between two snapshots of everything, with
    # the documented example as the body: a valid request, had the check
    # let it through, would have made or changed something.
    examples = request_examples()
    before = snapshot(server, routes, admin)
    for role in ROLES:
        forbidden = [r for r in routes if r["access"] == "role" and not allowed(r, role, perms)]
        for r in forbidden:
            path = concrete(r["path"])
            body = examples.get((r["method"], r["path"]))
            status, _, answer = server.request(r["method"], path, body, token=tokens[role])
            if status != 403:
                problems.append("%s %s as %s with body %s: %d, expected 403 %s"
                                % (r["method"], path, role, json.dumps(body)[:200], status, answer[:200]))
    after = snapshot(server, routes, admin)
    changed = [p for p in before if before[p] != after.get(p)]
    assert not changed, "forbidden requests changed %s:\nbefore %s\nafter  %s" % (
        changed, json.dumps({p: before[p] for p in changed})[:3000], json.dumps({p: after[p] for p in changed})[:3000])

    for role in ROLES:
        problems += check_row(server, routes, perms, role, tokens[role])

    if has_route(routes, "POST", "/api/v1/api-keys"):
        admin = server.login()  # the admin's own row ended its session
        status, env = server.api("POST", "/api/v1/api-keys", {"name": "matrix", "user_id": me["data"]["user_id"]},
                                 token=admin)
        assert status == 201 and env["data"]["key"].startswith("rmk_"), env
        problems += check_row(server, routes, perms, "read_only_operator+api_key", env["data"]["key"])
    assert not problems, "%d problem(s):\n%s" % (len(problems), "\n".join(problems))
    assert_clean_exit(server)


def test_the_expected_table_is_read_from_the_document(tmp_path):
    """The parser fails loudly on a table it cannot read, and reads what it says."""
    perms = permission_table()
    assert perms[("runs", "cancel")] == {"admin": True, "full_designer": True, "super_operator": True,
                                         "read_only_operator": False, "read_only_designer": False}
    assert perms[("users", "view")]["full_designer"] is False
    bad = tmp_path / "permissions.md"
    bad.write_text("| module | action | what | admin | full_designer | super_operator | read_only_operator | "
                   "read_only_designer |\n|---|---|---|:-:|:-:|:-:|:-:|:-:|\n| runs | view | x | yes | maybe | - | - | - |\n")
    with pytest.raises(AssertionError):
        permission_table(bad)
    assert concrete("/api/v1/workflows/{id}/versions/{version}") == \
        "/api/v1/workflows/%s/versions/%s" % (FAKE_ID, FAKE_ID)
