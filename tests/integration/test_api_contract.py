"""The API's contract, docs/openapi.json, held to the code:

- every route of `restmon serve --print-routes` is documented with the same
  method and path template, and every documented operation is routed (no
  stale docs);
- the document follows the house rules (summary, description, example,
  tags, security per operation, closed request bodies, envelopes);
- GET /openapi.json serves exactly the embedded document plus each
  operation's permission, computed here from the route table and
  docs/permissions.md (parsed independently of the server);
- the served document passes an OpenAPI validator (@apidevtools/swagger-
  parser, from tests/package.json; scripts/install-deps installs it), its
  examples validate against their schemas, and real answers of the server
  validate against the documented response schemas;
- GET /docs is a self-contained page that reads /openapi.json; run in a
  DOM (jsdom), it shows every operation with its permission.

The answers-against-schemas test runs on SQLite and PostgreSQL (store_url);
the served document and page do not depend on the store: SQLite only."""

import copy
import json
import subprocess

import pytest

from apilib import (PARAM, REPO, ROLES, concrete, crawl, load_openapi, permission_table, populate, route_table,
                    wait_run)
from test_durable import chain_flow, restmon, store_url  # noqa: F401  (fixture)
from test_run import write_flow
from test_serve import assert_clean_exit, server, start_server  # noqa: F401  (fixture)

METHODS = ("get", "put", "post", "patch", "delete")
LINT = REPO / "tests" / "integration" / "openapi_lint.js"
DOCS_CHECK = REPO / "tests" / "integration" / "docs_page_check.js"
NODE_MODULES = REPO / "tests" / "node_modules" / "@apidevtools" / "swagger-parser"


@pytest.fixture(scope="module")
def routes(restmon_bin):
    return route_table(restmon_bin)


@pytest.fixture(scope="module")
def perms():
    return permission_table()


@pytest.fixture
def sqlite_server(restmon_bin, tmp_path):
    """For what does not depend on the store: the served document and page."""
    srv = start_server(restmon_bin, tmp_path, "sqlite:%s" % (tmp_path / "restmon.db"))
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


def operations(doc):
    for path, item in doc["paths"].items():
        for m in METHODS:
            if m in item:
                yield m.upper(), path, item[m]


def resolve(doc, obj):
    while isinstance(obj, dict) and "$ref" in obj:
        cur = doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            cur = cur[part.replace("~1", "/").replace("~0", "~")]
        obj = cur
    return obj


def expected_served(doc, routes, perms):
    """What GET /openapi.json must answer: the file, with each routed
    operation's permission, roles and a closing paragraph (the rule of
    core/serve/docs_api.c, restated)."""
    doc = copy.deepcopy(doc)
    for r in routes:
        op = doc["paths"].get(r["path"], {}).get(r["method"].lower())
        if op is None:
            continue
        if r["access"] == "role":
            row = perms.get((r["module"], r["action"]), {})
            roles = [role for role in ROLES if row.get(role)]
            op["x-restmon-permission"] = {"module": r["module"], "action": r["action"]}
            op["x-restmon-roles"] = roles
            text = "Permission: %s.%s. Roles allowed: %s." % (r["module"], r["action"],
                                                              ", ".join(roles) or "no role")
        elif r["access"] == "user":
            op["x-restmon-permission"] = "any signed-in user"
            op["x-restmon-roles"] = list(ROLES)
            text = ("Permission: any signed-in user (it acts on the caller's own account). Roles allowed: %s."
                    % ", ".join(ROLES))
        else:
            op["x-restmon-permission"] = "public"
            text = "Permission: public (no credentials needed)."
        op["description"] = op["description"] + "\n\n" + text if op.get("description") else text
    return doc


def lint(tmp_path, doc, samples=None):
    if not NODE_MODULES.exists():
        pytest.fail("the OpenAPI validator is not installed: run scripts/install-deps "
                    "(npm ci --prefix tests)")
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(doc))
    args = ["node", str(LINT), str(path)]
    if samples is not None:
        (tmp_path / "samples.json").write_text(json.dumps(samples))
        args.append(str(tmp_path / "samples.json"))
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, "OpenAPI lint:\n" + proc.stdout[-8000:] + proc.stderr[-2000:]


# ---- the document against the route table (no server) ----

def test_every_route_is_documented_and_every_operation_is_routed(routes):
    doc = load_openapi()
    routed = {(r["method"], r["path"]) for r in routes}
    documented = {(m, p) for m, p, _ in operations(doc)}
    missing = sorted(routed - documented)
    stale = sorted(documented - routed)
    assert not missing, "routes without documentation in docs/openapi.json:\n" + "\n".join(
        "%s %s" % r for r in missing)
    assert not stale, "documented operations that no route serves:\n" + "\n".join("%s %s" % r for r in stale)
    for path in doc["paths"]:
        assert path.startswith("/") and not path.endswith("/") or path == "/", path


def test_every_role_route_names_a_row_of_the_permission_table(routes, perms):
    unknown = ["%s %s: %s.%s" % (r["method"], r["path"], r["module"], r["action"])
               for r in routes if r["access"] == "role" and (r["module"], r["action"]) not in perms]
    assert not unknown, "routes whose permission is not in docs/permissions.md (no role could call them):\n" + \
        "\n".join(unknown)


def test_every_operation_follows_the_house_rules(routes):
    doc = load_openapi()
    access = {(r["method"], r["path"]): r["access"] for r in routes}
    assert doc["openapi"].startswith(("3.0.", "3.1."))
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    assert "rmk_" in schemes["bearerAuth"]["description"]
    assert schemes["cookieAuth"] == dict(schemes["cookieAuth"], type="apiKey", **{"in": "cookie"})
    assert schemes["cookieAuth"]["name"] == "restmon_session"
    tags = {t["name"] for t in doc["tags"]}
    op_ids = set()
    problems = []
    for method, path, op in operations(doc):
        where = "%s %s" % (method, path)
        for key in ("summary", "description", "operationId", "tags", "responses", "security"):
            if not op.get(key) and not (key == "security" and op.get(key) == []):
                problems.append("%s: no %s" % (where, key))
        if op.get("operationId") in op_ids:
            problems.append("%s: operationId %s used twice" % (where, op["operationId"]))
        op_ids.add(op.get("operationId"))
        if not set(op.get("tags", [])) <= tags:
            problems.append("%s: tags %s not declared at the top" % (where, op.get("tags")))
        declared = {resolve(doc, p)["name"] for p in op.get("parameters", []) if resolve(doc, p)["in"] == "path"}
        if declared != set(PARAM.findall(path)):
            problems.append("%s: path parameters declared %s" % (where, sorted(declared)))
        kind = access.get((method, path))
        if kind == "public" and op.get("security") != []:
            problems.append("%s: a public route must have security: []" % where)
        if kind in ("user", "role"):
            if op.get("security") != [{"bearerAuth": []}, {"cookieAuth": []}]:
                problems.append("%s: security must offer bearerAuth or cookieAuth" % where)
            for code in ("401", "403"):
                if code not in op["responses"]:
                    problems.append("%s: no %s response" % (where, code))
        ok = [c for c in op["responses"] if c.startswith("2")]
        # An operation that never succeeds (a published version is never
        # changed) documents its refusal instead.
        if not ok and "409" not in op["responses"]:
            problems.append("%s: no success response" % where)
        has_example = not ok
        for c in ok:
            for media in resolve(doc, op["responses"][c]).get("content", {}).values():
                has_example |= "example" in media or "examples" in media
        body = op.get("requestBody")
        if body:
            media = resolve(doc, body)["content"].get("application/json")
            if not media:
                problems.append("%s: the request body is not application/json" % where)
            else:
                schema = resolve(doc, media["schema"])
                if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
                    problems.append("%s: the request body schema must be an object with additionalProperties: false"
                                    % where)
                if "example" not in media and "examples" not in media:
                    problems.append("%s: no request example" % where)
            for code in ("400", "422"):
                if code not in op["responses"]:
                    problems.append("%s: takes a body but documents no %s" % (where, code))
        if not has_example:
            problems.append("%s: no example of the success response" % where)
        if path.startswith("/api/v1/"):
            for c, resp in op["responses"].items():
                schema = resolve(doc, resolve(doc, resp).get("content", {}).get("application/json", {})
                                 .get("schema", {}))
                props = schema.get("properties", {})
                if set(props) != {"code", "message", "data", "error"}:
                    problems.append("%s: response %s is not the envelope" % (where, c))
    assert not problems, "\n".join(problems)


def test_the_document_passes_the_openapi_validator(tmp_path):
    lint(tmp_path, load_openapi())


def test_the_validator_catches_a_broken_document(tmp_path):
    """The lint step can fail: a wrong example and an unknown schema keyword."""
    doc = load_openapi()
    method, path, op = next((m, p, o) for m, p, o in operations(doc) if o.get("requestBody"))
    media = resolve(doc, op["requestBody"])["content"]["application/json"]
    media["example"] = dict(media.get("example") or {}, surely_not_a_field=1)
    doc["components"]["schemas"]["ErrorDetail"]["properties"]["path"]["tpye"] = "string"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run(["node", str(LINT), str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert "must NOT have additional properties (surely_not_a_field)" in proc.stdout
    assert "details/items/properties/path must NOT have additional properties" in proc.stdout


# ---- the served document and page ----

def test_served_document_is_the_file_with_the_permissions_of_the_code(sqlite_server, routes, perms, tmp_path):
    server = sqlite_server
    status, headers, body = server.request("GET", "/openapi.json")
    assert status == 200 and headers["content-type"].startswith("application/json"), (status, body[:300])
    served = json.loads(body)
    expected = expected_served(load_openapi(), routes, perms)
    if served != expected:
        diffs = []
        for method, path, op in operations(expected):
            got = served.get("paths", {}).get(path, {}).get(method.lower())
            if got != op:
                diffs.append("%s %s:\n  served   %s\n  expected %s" % (
                    method, path, json.dumps({k: got.get(k) for k in ("description", "x-restmon-permission",
                                                                        "x-restmon-roles")} if got else None),
                    json.dumps({k: op.get(k) for k in ("description", "x-restmon-permission", "x-restmon-roles")})))
        pytest.fail("GET /openapi.json differs from docs/openapi.json + permissions:\n" + "\n".join(diffs[:10]))
    for r in routes:
        op = served["paths"][r["path"]][r["method"].lower()]
        assert "x-restmon-permission" in op, r
    status, headers, body = server.request("HEAD", "/openapi.json")
    assert status == 200 and body == b""
    lint(tmp_path, served)
    assert_clean_exit(server)


def test_docs_page_is_self_contained_and_reads_the_document(sqlite_server):
    server = sqlite_server
    status, headers, body = server.request("GET", "/docs")
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, headers)
    page = body.decode()
    assert "fetch('/openapi.json'" in page
    for needle in ('src="http', "src='http", 'href="http', "href='http", "//cdn", "@import", "url(http"):
        assert needle not in page, needle
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    for word in ("x-restmon-permission", "x-restmon-roles", "requestBody", "parameters", "responses", "example"):
        assert word in page, word
    assert_clean_exit(server)


def test_docs_page_shows_every_operation_with_its_permission(sqlite_server, routes, perms):
    """The page's script, run in a DOM (jsdom), lists every operation of the
    served document with its permission and roles, parameters, body,
    examples and responses, and its filter works."""
    if not (REPO / "tests" / "node_modules" / "jsdom").exists():
        pytest.fail("jsdom is not installed: run scripts/install-deps (npm ci --prefix tests)")
    server = sqlite_server
    proc = subprocess.run(["node", str(DOCS_CHECK), "http://127.0.0.1:%d" % server.port], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = json.loads(proc.stdout)
    assert page["error"] is None, page["error"]
    served = expected_served(load_openapi(), routes, perms)
    shown = {(o["method"], o["path"]): o for o in page["operations"]}
    assert set(shown) == {(m, p) for m, p, _ in operations(served)}
    for method, path, op in operations(served):
        o = shown[(method, path)]
        perm = op["x-restmon-permission"]
        assert o["permission"] == (perm if isinstance(perm, str) else "%s.%s" % (perm["module"], perm["action"]))
        assert o["roles"] == (", ".join(op["x-restmon-roles"]) or "none" if "x-restmon-roles" in op else None), o
        assert o["hasExample"] and sorted(o["responses"]) == sorted(op["responses"]), o
        assert o["hasBody"] == ("requestBody" in op) and o["hasParams"] == bool(op.get("parameters")), o
    designer_ops = [op for _, _, op in operations(served) if "read_only_designer" in op.get("x-restmon-roles", [])]
    assert page["matches"] == len(designer_ops)
    assert_clean_exit(server)


def test_real_answers_match_the_documented_schemas(server, routes, restmon_bin, mock_api, tmp_path):
    """One object of every kind made through the API (populate), a run
    queued from the command line, then a crawl of every GET route with the
    ids found, and error answers (401, 404, 400, 422): each answer must
    validate against the documented schema of its operation and status."""
    token = server.login()
    queued = restmon(restmon_bin, "runs", "queue", write_flow(tmp_path, chain_flow(mock_api, steps=2, ms=5)),
                     "--json", "--database", server.store_url)
    assert queued.returncode == 0, queued.stderr
    wait_run(server, token, json.loads(queued.stdout)[0]["run_id"])
    samples = []

    def add(method, template, status, body):
        assert status < 500, (method, template, status, body[:500])
        try:
            value = json.loads(body)
        except ValueError:
            return
        samples.append({"method": method, "path": template, "status": status, "body": value})

    made, _ = populate(server, routes, token, mock_api.url)
    for method, template, status, body in made:
        add(method, template, status, body)
    crawled = crawl(server, routes, token)
    for method, template, path, status, body in crawled:
        if template != "/openapi.json":
            add(method, template, status, body)
    unanswered = sorted({t for _, t, _, st, _ in crawled if st != 200} - {t for _, t, _, st, _ in crawled
                                                                          if st == 200})
    assert not unanswered, ("GET routes that never answered 200 in the crawl (make an object they show in "
                            "apilib.populate()): %s" % unanswered)
    protected = [r for r in routes if r["access"] != "public"]
    for r in protected[:5]:
        status, _, body = server.request(r["method"], concrete(r["path"]))
        assert status == 401
        add(r["method"], r["path"], status, body)
    for r in [r for r in routes if "{" in r["path"] and r["method"] == "GET"][:5]:
        status, _, body = server.request("GET", concrete(r["path"]), token=token)
        add("GET", r["path"], status, body)
    for r in [r for r in routes if r["method"] in ("POST", "PUT", "PATCH") and r["access"] != "public"]:
        status, _, body = server.request(r["method"], concrete(r["path"]), "{oops", token=token)
        add(r["method"], r["path"], status, body)
        status, _, body = server.request(r["method"], concrete(r["path"]), {"surely_not_a_field": 1}, token=token)
        add(r["method"], r["path"], status, body)
    assert len(samples) > 10
    lint(tmp_path, expected_served(load_openapi(), routes, permission_table()), samples)
    assert_clean_exit(server)
