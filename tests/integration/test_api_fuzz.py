"""Malformed bodies on every write route (POST/PUT/PATCH/DELETE of the live
route table), as an admin: truncated JSON, wrong types for the documented
fields, deeply nested arrays, huge numbers, invalid UTF-8, NUL bytes,
duplicate keys, a non-object, random bytes and random JSON values with
random keys, all drawn from one seeded generator.

Every answer must be a 4xx with the error envelope -- never a 5xx, never a
dropped connection (POST /workflows/validate reports on well-formed JSON
with 200 {"valid": false, "problems"}, which is its job) -- and GET
/health must answer after each route's
batch. About 400 requests per backend in all; the seed (RESTMON_FUZZ_SEED
overrides it) is in every failure message, so a failure replays. At the
end the server stops cleanly with no sanitizer report. Runs on SQLite and
PostgreSQL (odd values that pass validation reach the store)."""

import http.client
import json
import os
import random

from apilib import concrete, envelope_problems, load_openapi, route_table
from test_durable import store_url  # noqa: F401  (fixture)
from test_serve import assert_clean_exit, server  # noqa: F401  (fixture)

SEED = int(os.environ.get("RESTMON_FUZZ_SEED", "20261123"))
TOTAL = 400            # requests in all, shared over the write routes
LOGOUT = ("POST", "/api/v1/auth/logout")
# Routes whose job is to report on the body: well-formed JSON gets 200
# with {"valid": false, "problems": [...]}, only a body that is not JSON a 400.
REPORTS = {("POST", "/api/v1/workflows/validate")}


def body_schema(doc, method, path):
    """The documented request body schema (resolved), or {}."""
    op = doc["paths"].get(path, {}).get(method.lower(), {})
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    example = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("example")
    seen = 0
    while "$ref" in schema and seen < 10:
        name = schema["$ref"].split("/")[-1]
        schema = doc["components"]["schemas"][name]
        seen += 1
    return schema, example if isinstance(example, dict) else {}


def rand_text(rng, n):
    pools = ["abcxyz_-.", "ÄéßΩжξ中文🙂", "\t\n\"\\/", "\u202e\u200b\ufeff"]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(n))


def rand_value(rng, depth=0):
    kinds = ["int", "float", "str", "bool", "null"] + (["list", "obj"] if depth < 4 else [])
    k = rng.choice(kinds)
    if k == "int":
        return rng.choice([0, -1, 1, 2 ** 31, -(2 ** 63), 2 ** 63 - 1, rng.randint(-10 ** 6, 10 ** 6)])
    if k == "float":
        return rng.choice([0.5, -1e300, 1e-300, 3.14159])
    if k == "str":
        return rand_text(rng, rng.randint(0, 40))
    if k == "bool":
        return rng.random() < 0.5
    if k == "null":
        return None
    if k == "list":
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rand_text(rng, rng.randint(1, 12)): rand_value(rng, depth + 1) for _ in range(rng.randint(1, 4))}


def wrong_type(rng, schema):
    t = schema.get("type")
    choices = {"string": [12345, [], {"a": 1}, True],
               "integer": ["7", 1.5, [], True, {"n": 1}],
               "number": ["7", [], True, {"n": 1}],
               "boolean": ["true", 1, [], {}],
               "object": ["text", 3, [1, 2], True],
               "array": ["text", 3, {"a": 1}, True]}.get(t, [[], {"x": 1}, 3.5])
    return rng.choice(choices)


def case_truncated(rng, schema, example):
    text = json.dumps(example or {"name": "x", "value": [1, 2, 3]})
    cut = rng.randint(1, max(1, len(text) - 1))
    return "truncated JSON", text[:cut].encode()


def case_wrong_type(rng, schema, example):
    # Only typed fields: a field that takes any JSON has no wrong type.
    props = {k: v for k, v in (schema.get("properties") or {}).items() if "type" in v}
    if not props:
        return "an unknown field of the wrong type", json.dumps({"surely_unknown": [1, {"a": None}]}).encode()
    name = rng.choice(sorted(props))
    body = dict(example)
    body[name] = wrong_type(rng, props[name])
    return "field %s of the wrong type" % name, json.dumps(body).encode()


def case_deep(rng, schema, example):
    depth = rng.choice([3000, 20000, 100000])
    inner = "[" * depth + "]" * depth
    if rng.random() < 0.5:
        return "arrays nested %d deep" % depth, inner.encode()
    key = rng.choice(sorted(schema.get("properties") or {"x": 0}))
    return "arrays nested %d deep in %s" % (depth, key), ('{"%s":%s}' % (key, inner)).encode()


def case_huge_number(rng, schema, example):
    key = rng.choice(sorted(schema.get("properties") or {"x": 0}))
    num = rng.choice(["1e400", "-1e400", "123456789012345678901234567890", "-99999999999999999999",
                      "1" * 400, "2e308"])
    body = dict(example)
    text = json.dumps(body)[:-1] if body else "{"
    return "huge number %s in %s" % (num[:30], key), (text + ("," if body else "") + '"%s":%s}' % (key, num)).encode()


def case_bad_utf8(rng, schema, example):
    key = rng.choice(sorted(schema.get("properties") or {"name": 0}))
    bad = rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
    return "invalid UTF-8 in %s" % key, b'{"' + key.encode() + b'":"a' + bad + b'b"}'


def case_nul(rng, schema, example):
    key = rng.choice(sorted(schema.get("properties") or {"name": 0}))
    return rng.choice([
        ("a NUL byte in %s" % key, b'{"' + key.encode() + b'":"a\x00b"}'),
        ("an escaped NUL in %s" % key, b'{"' + key.encode() + b'":"a\\u0000b"}'),
        ("a NUL byte in a key", b'{"a\x00b":1}'),
        ("a lone NUL", b"\x00"),
    ])


def case_duplicate_keys(rng, schema, example):
    key = rng.choice(sorted(schema.get("properties") or {"name": 0}))
    return "duplicate key %s" % key, ('{"%s":"a","%s":"b"}' % (key, key)).encode()


def case_not_object(rng, schema, example):
    return "a JSON value that is not an object", rng.choice(
        [b"[]", b"[{}]", b'"text"', b"42", b"-0.5", b"null", b"true", b"false", b'""'])


def case_random_bytes(rng, schema, example):
    n = rng.randint(1, 300)
    return "%d random bytes" % n, bytes(rng.getrandbits(8) for _ in range(n))


def case_random_json(rng, schema, example):
    value = {rand_text(rng, rng.randint(1, 16)): rand_value(rng) for _ in range(rng.randint(1, 5))}
    return "random JSON object", json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()


CASES = [case_truncated, case_wrong_type, case_deep, case_huge_number, case_bad_utf8, case_nul,
         case_duplicate_keys, case_not_object, case_random_bytes, case_random_json]


def send(server, method, path, body, token):
    """(status, body) or raises with what went wrong on the connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Authorization": "Bearer " + token,
                                                        "Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_malformed_bodies_get_a_4xx_envelope_on_every_write_route(server, restmon_bin):
    routes = [r for r in route_table(restmon_bin) if r["method"] in ("POST", "PUT", "PATCH", "DELETE")]
    # Logging out with a valid body would end the session mid-run: last.
    routes.sort(key=lambda r: (r["method"], r["path"]) == LOGOUT)
    assert routes, "no write routes"
    doc = load_openapi()
    rng = random.Random(SEED)
    token = server.login()
    per_route = max(len(CASES) // 2, TOTAL // len(routes))
    problems = []
    sent = 0
    for ri, r in enumerate(routes):
        schema, example = body_schema(doc, r["method"], r["path"])
        path = concrete(r["path"])
        for j in range(per_route):
            case = CASES[(ri * per_route + j) % len(CASES)]
            what, body = case(rng, schema, example)
            req = "%s %s with %s (seed %d, body %r)" % (r["method"], path, what, SEED, body[:120])
            try:
                status, answer = send(server, r["method"], path, body, token)
            except (OSError, http.client.HTTPException) as e:
                problems.append("%s: the connection failed: %r" % (req, e))
                continue
            sent += 1
            problems += ["%s: %s" % (req, p) for p in envelope_problems(status, answer)]
            if (r["method"], r["path"]) in REPORTS and status == 200:
                data = json.loads(answer)["data"]
                if data.get("valid") is not False or not data.get("problems"):
                    problems.append("%s: reported valid %r" % (req, answer[:300]))
            elif not 400 <= status < 500:
                problems.append("%s: HTTP %d %r" % (req, status, answer[:300]))
        status, _, body = server.request("GET", "/health")
        if status != 200:
            problems.append("GET /health after %s %s: %d %r (seed %d)" % (r["method"], path, status, body, SEED))
    assert sent >= min(TOTAL, per_route * len(routes)) * 0.9
    assert not problems, "%d problem(s) (seed %d):\n%s" % (len(problems), SEED, "\n".join(problems[:60]))
    assert_clean_exit(server)
