"""Helpers of the API-wide tests (test_api_contract.py, test_api_matrix.py,
test_api_fuzz.py, test_api_secrets_leak.py):

    route_table(bin)        the live route table (`restmon serve --print-routes`)
    permission_table()      docs/permissions.md parsed on its own, so the tests
                            hold the server to the documented table
    concrete(path)          a route template with ids that exist nowhere
    role_tokens(...)        a signed-in user of every role (POST /api/v1/users)
    crawl(...)              every GET route answered, following list ids
    populate(...)           one object of every kind, made through the API
    envelope_problems(...)  what is wrong with an answer's envelope
"""

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "docs" / "openapi.json"
PERMISSIONS_MD = REPO / "docs" / "permissions.md"
ROLES = ("admin", "full_designer", "super_operator", "read_only_operator", "read_only_designer")
FAKE_ID = "00000000-0000-4000-8000-00000000dead"
ROLE_PW = "violet-kettle-93-orbit-Q"
PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def route_table(restmon_bin):
    """[{method, path, access, module?, action?}] in registration order."""
    proc = subprocess.run([restmon_bin, "serve", "--print-routes"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def has_route(routes, method, path):
    return any(r["method"] == method and r["path"] == path for r in routes)


def permission_table(path=PERMISSIONS_MD):
    """{(module, action): {role: allowed}} from the Markdown table; the role
    columns are read from its header row."""
    table, roles = {}, None
    for line in Path(path).read_text().splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:2] == ["module", "action"]:
            roles = cells[3:]
            continue
        if roles is None or set(cells) <= {"---", ":-:", "-"} or all(re.fullmatch(r":?-+:?", c) for c in cells):
            continue
        assert len(cells) == 3 + len(roles), line
        marks = cells[3:]
        assert all(m in ("yes", "-") for m in marks), line
        table[(cells[0], cells[1])] = {r: m == "yes" for r, m in zip(roles, marks)}
    assert roles and tuple(roles) == ROLES, roles
    assert table, "no rows in %s" % path
    return table


def allowed(route, role, perms):
    """Whether role may call route by the documented table (None: no
    credentials). Public routes allow everyone; user routes every role."""
    if route["access"] == "public":
        return True
    if role is None:
        return False
    if route["access"] == "user":
        return True
    return perms.get((route["module"], route["action"]), {}).get(role, False)


def concrete(template, value=FAKE_ID):
    return PARAM.sub(value, template)


def load_openapi():
    return json.loads(OPENAPI.read_text())


def envelope_problems(status, body):
    """What is wrong with an answer's envelope for its status (empty when fine)."""
    try:
        env = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        return ["not JSON: %s: %r" % (e, body[:200])]
    if not isinstance(env, dict) or set(env) != {"code", "message", "data", "error"}:
        return ["not the envelope: %r" % (body[:300],)]
    probs = []
    code = env["code"]
    if not (isinstance(code, str) and re.fullmatch(r"\d{5}", code)):
        probs.append("code %r is not five digits" % (code,))
    elif status >= 400 and code[:3] != str(status):
        probs.append("code %s does not match HTTP %d" % (code, status))
    if not isinstance(env["message"], str) or not env["message"]:
        probs.append("no message")
    if status >= 400:
        if env["data"] is not None:
            probs.append("data is not null on an error")
        err = env["error"]
        if not (isinstance(err, dict) and isinstance(err.get("details"), list)):
            probs.append("error.details missing")
        else:
            for d in err["details"]:
                if not (isinstance(d, dict) and isinstance(d.get("path"), str) and isinstance(d.get("message"), str)):
                    probs.append("bad detail %r" % (d,))
    elif env["error"] is not None or code != "00000":
        probs.append("success with code %r / error %r" % (code, env["error"]))
    return probs


def role_tokens(server, routes, admin_token, roles=ROLES, prefix="m"):
    """{role: session token}: the bootstrap admin for "admin", a new user
    (POST /api/v1/users) for every other role. Skips the test while the
    users route does not exist."""
    if not has_route(routes, "POST", "/api/v1/users"):
        pytest.skip("POST /api/v1/users is not in the route table yet: users of each role cannot be made")
    tokens = {}
    for role in roles:
        if role == "admin":
            tokens[role] = admin_token
            continue
        name = "%s_%s" % (prefix, role)
        status, env = server.api("POST", "/api/v1/users", {"name": name, "role": role, "password": ROLE_PW},
                                 token=admin_token)
        assert status == 201, (role, status, env)
        tokens[role] = server.login(name, ROLE_PW)
    return tokens


def item_id(item):
    for key in ("id", "run_id", "version"):
        v = item.get(key) if isinstance(item, dict) else None
        if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
            return str(v)
    return None


def crawl(server, routes, token, max_ids=3):
    """Answers every GET route: those without parameters as they are; a
    route whose last parameter follows a list route ("/runs" for
    "/runs/{id}/logs", "/workflows/{id}/versions" for ".../versions/
    {version}") once per id of that list's answers (up to max_ids each);
    with FAKE_ID when there is none. Returns [(method, template, concrete
    path, status, body bytes)], routes outside /api/v1 included."""
    gets = sorted((r["path"] for r in routes if r["method"] == "GET"), key=lambda p: len(PARAM.findall(p)))
    out = []
    answered = {}  # template -> [(concrete path, data)]

    def get(template, path):
        status, _, body = server.request("GET", path, token=token)
        out.append(("GET", template, path, status, body))
        data = None
        if status == 200 and path.startswith("/api/"):
            data = json.loads(body).get("data")
        answered.setdefault(template, []).append((path, data))

    for template in gets:
        params = list(PARAM.finditer(template))
        if not params:
            get(template, template)
            continue
        last = params[-1]
        prefix, suffix = template[:last.start()].rstrip("/"), template[last.end():]
        concretes = []
        for parent, data in answered.get(prefix, []):
            items = data.get("items") if isinstance(data, dict) else None
            ids = [item_id(i) for i in (items or []) if item_id(i)][:max_ids]
            concretes += [parent + "/" + i + suffix for i in ids]
        for path in concretes or [concrete(template)]:
            get(template, path)
    return out


def wait_run(server, token, run_id, timeout=60):
    """The run once it has finished (fails the test after timeout s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, env = server.api("GET", "/api/v1/runs/" + run_id, token=token)
        assert status == 200, env
        if env["data"]["status"] not in ("queued", "running"):
            return env["data"]
        time.sleep(0.1)
    pytest.fail("run %s did not finish in %d s" % (run_id, timeout))


def secret_workflow(secret_name):
    """A workflow that logs in to the mock API with the secret, then sends it
    to /echo in a header, the query and the body (the answer echoes it back
    as text, Base64 and URL-encoded), extracts the echoes, and fails an
    assertion that prints one."""
    ref = "{{secrets.%s}}" % secret_name
    return {
        "inputs": {"base_url": {"type": "string", "required": True}},
        "tasks": {
            "login": {"ref": "populate-login", "on_success": ["echo"]},
            "echo": {"type": "http", "request": {
                "method": "POST", "url": "{{inputs.base_url}}/echo/x",
                "query": {"p": ref},
                "headers": {"X-Api-Secret": ref, "Authorization": "Bearer {{vars.token}}"},
                "json": {"s": ref, "n": 1}},
                "extract": {"echoed": "$.json.s", "b64": "$.body_base64", "raw_query": "$.raw_query",
                            "header": "$.headers['x-api-secret']"},
                "on_success": ["check"]},
            "check": {"type": "http", "request": {"method": "POST", "url": "{{inputs.base_url}}/echo/check",
                                                  "json": {"again": ref}},
                      "assert": [{"jsonpath": "$.json.again", "op": "eq", "value": "surely-not-it"}]},
        },
    }


def populate(server, routes, token, mock_url, secret_name="populate_secret", secret_value="p0pulate-Secret-Value"):
    """Makes one object of every kind there is a route for (a user, an API
    key, a secret, the config, a task, a workflow using the secret --
    validated, published, executed against the mock API at mock_url, dry-
    run, duplicated -- a schedule, a monitor, a channel, a mapping rule, run
    notes, workflow notifications held back by a maintenance window, so a
    suppressed delivery), each through the API. Returns [(method, template, status,
    body bytes)] of every call, and the finished run's id (or None)."""
    out = []

    def call(method, template, body=None, path=None, want=None):
        if not has_route(routes, method, template):
            return None
        status, _, raw = server.request(method, path or template, body, token=token)
        out.append((method, template, status, raw))
        assert want is None or status == want, (method, path or template, status, raw[:600])
        return json.loads(raw).get("data") if raw else None

    call("POST", "/api/v1/users", {"name": "populate_user", "role": "read_only_designer", "password": ROLE_PW},
         want=201)
    call("POST", "/api/v1/api-keys", {"name": "populate", "expires_in_days": 30}, want=201)
    secret = call("POST", "/api/v1/secrets", {"name": secret_name, "value": secret_value, "scope": "global",
                                              "description": "made by populate()", "tags": ["populate"]}, want=201)
    if secret:
        call("PUT", "/api/v1/secrets/{id}", {"version": secret["version"], "value": secret_value,
                                             "tags": ["populate", "replaced"]},
             path="/api/v1/secrets/" + secret["id"], want=200)
    cfg = call("GET", "/api/v1/config", want=200)
    if cfg:
        call("PUT", "/api/v1/config", {"version": cfg["version"], "audit_retention_days": 400,
                                       "run_retention": {"failed_days": 120}}, want=200)
    login = {"type": "http", "request": {"method": "POST", "url": "{{inputs.base_url}}/login",
                                         "json": {"username": "demo", "password": "{{secrets.%s}}" % secret_name}},
             "extract": {"token": "$.token"}}
    task = call("POST", "/api/v1/tasks", {"name": "populate-login", "definition": login, "tags": ["populate"]},
                want=201)
    if task:
        call("PUT", "/api/v1/tasks/{id}", {"name": "populate-login", "definition": login, "version": 1,
                                           "description": "log in with the secret"},
             path="/api/v1/tasks/" + task["id"], want=200)
    flow = secret_workflow(secret_name)
    call("POST", "/api/v1/workflows/validate", dict(flow, name="populate-flow"), want=200)
    wf = call("POST", "/api/v1/workflows", {"name": "populate-flow", "definition": flow, "tags": ["populate"]},
              want=201)
    run_id = None
    if wf:
        base = "/api/v1/workflows/" + wf["id"]
        call("POST", "/api/v1/workflows/{id}/publish", path=base + "/publish", want=201)
        started = call("POST", "/api/v1/workflows/{id}/execute", {"inputs": {"base_url": mock_url}},
                       path=base + "/execute", want=202)
        if started:
            run_id = started["run_id"]
            wait_run(server, token, run_id)
        call("POST", "/api/v1/workflows/{id}/dry-run", {"inputs": {"base_url": mock_url}}, path=base + "/dry-run")
        call("POST", "/api/v1/workflows/{id}/duplicate", {"name": "populate-flow-copy"}, path=base + "/duplicate",
             want=201)
        call("PUT", "/api/v1/workflows/{id}/versions/{version}", {"definition": {}},
             path=base + "/versions/1", want=409)
    sched = call("POST", "/api/v1/schedules", {"name": "populate-every-5m", "every": {"minutes": 5}}, want=201)
    if wf and sched:
        check = call("POST", "/api/v1/monitors", {"name": "populate-check", "type": "check", "workflow_id": wf["id"],
                                                  "schedule_id": sched["id"]}, want=201)
        if check:
            call("POST", "/api/v1/monitors/{id}/run", path="/api/v1/monitors/%s/run" % check["id"], want=202)
    latency = call("POST", "/api/v1/monitors", {"name": "populate-latency", "type": "metric", "unit": "ms",
                                                "direction": "above", "degraded": 500, "failed": 2000,
                                                "window_s": 300}, want=201)
    if latency:
        call("POST", "/api/v1/monitors/{id}/metrics", {"value": 120, "id": "sample-1"},
             path="/api/v1/monitors/%s/metrics" % latency["id"], want=200)
    events = call("POST", "/api/v1/monitors", {"name": "populate-events", "type": "event"}, want=201)
    if events:
        call("POST", "/api/v1/monitors/{id}/events", {"severity": "critical", "message": "populate"},
             path="/api/v1/monitors/%s/events" % events["id"], want=200)
        call("POST", "/api/v1/signals/{id}/acknowledge", {"text": "populate ack"},
             path="/api/v1/signals/%s/acknowledge" % events["id"], want=200)
    for name in ("populate-hook", "populate-hook-2"):
        chan = call("POST", "/api/v1/channels", {"name": name, "type": "webhook",
                                                 "settings": {"url": "https://hooks.example.com/x",
                                                              "hmac_secret": secret_name}}, want=201)
    if wf:
        call("POST", "/api/v1/mappings", {"name": "populate-map", "match": {"tag": "populate", "to": "failed"},
                                          "workflow_id": wf["id"]}, want=201)
    if wf and chan:
        # Notifications of the flow go to a channel, held back by a maintenance
        # window (no network): the rerun below leaves a suppressed delivery.
        cur = call("GET", "/api/v1/workflows/{id}", path="/api/v1/workflows/" + wf["id"], want=200)
        call("PUT", "/api/v1/workflows/{id}", {
            "name": "populate-flow", "definition": cur["definition"], "version": cur["version"],
            "tags": ["populate"], "notifications": [{"on": ["success", "failure"], "channel_id": chan["id"],
                                                     "variables": {"base": "{{inputs.base_url}}"}}]},
             path="/api/v1/workflows/" + wf["id"], want=200)
        call("POST", "/api/v1/maintenance-windows", {"name": "populate-window", "start": "2020-01-01T00:00:00Z",
                                                     "end": "2099-01-01T00:00:00Z", "workflows": [wf["id"]],
                                                     "suppress_checks": True, "tags": ["populate"]}, want=201)
    if run_id:
        rbase = "/api/v1/runs/" + run_id
        call("POST", "/api/v1/runs/{id}/annotations", {"text": "populate note"}, path=rbase + "/annotations",
             want=201)
        call("POST", "/api/v1/runs/{id}/acknowledge", {"text": "populate ack"}, path=rbase + "/acknowledge",
             want=201)
        again = call("POST", "/api/v1/runs/{id}/rerun", path=rbase + "/rerun", want=201)
        if again:
            wait_run(server, token, again["run_id"])
    deadline = time.monotonic() + 10  # the rerun's notification is recorded after the run ends
    while has_route(routes, "GET", "/api/v1/deliveries") and time.monotonic() < deadline:
        _, _, raw = server.request("GET", "/api/v1/deliveries", token=token)
        if json.loads(raw)["data"]["items"]:
            break
        time.sleep(0.1)
    deliveries = call("GET", "/api/v1/deliveries", want=200)
    for d in (deliveries or {}).get("items", [])[:1]:
        call("POST", "/api/v1/deliveries/{id}/resend", path="/api/v1/deliveries/%s/resend" % d["id"], want=409)
    if chan:
        call("DELETE", "/api/v1/channels/{id}", path="/api/v1/channels/" + chan["id"], want=200)
    return out, run_id
