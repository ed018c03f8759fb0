"""The Lua sandbox, seen from outside: custom rules and plugins that try to
leave it are refused with a clear reason, and runaway code is stopped by
the CPU budget, the memory cap and the wall-clock timeout, naming the task.
"""

import json
import os
from pathlib import Path

import pytest

from test_run import http_task, run_json, step, write_flow


def rule_flow(mock_api, lua, **task_extra):
    """One GET /health whose status is decided by the Lua rule `lua`."""
    task = http_task(mock_api.url + "/health", status={"lua": lua}, **task_extra)
    return {"name": "sandbox", "tasks": {"probe": task}}


# Each probe returns 'succeeded' when the capability is refused and
# 'failed' (naming what leaked) when it is available.
PROBES = {
    "io library": "return io == nil",
    "os.execute": "return os == nil or os.execute == nil",
    "os.getenv": "return os == nil or os.getenv == nil",
    "os.remove": "return os == nil or os.remove == nil",
    "debug library": "return debug == nil",
    "ffi via require": "return not pcall(require, 'ffi')",
    "jit library": "return jit == nil",
    "require of a file": "return not pcall(require, 'os')",
    "package.loadlib": "return package == nil or package.loadlib == nil",
    "load": "return load == nil",
    "loadstring": "return loadstring == nil",
    "dofile": "return dofile == nil",
    "loadfile": "return loadfile == nil",
    "string.dump": "return string.dump == nil",
    "getfenv/setfenv": "return getfenv == nil and setfenv == nil",
    "collectgarbage": "return collectgarbage == nil",
    "rawset on _G of the host": "return _G == nil or _G.io == nil",
    "string metatable": "return not pcall(function() getmetatable('').__index = {} end) "
                        "and not pcall(setmetatable, '', {}) and ('x'):upper() == 'X'",
    "newproxy": "return newproxy == nil",
}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_escape_is_refused(run_restmon, mock_api, tmp_path, name):
    lua = ("local ok, refused = pcall(function() %s end) "
           "if ok and refused then return 'succeeded', 'refused' end "
           "return 'failed', 'available: %s'" % (PROBES[name], name))
    proc, rec = run_json(run_restmon, write_flow(tmp_path, rule_flow(mock_api, lua)))
    probe = step(rec, "probe")
    assert probe["status"] == "succeeded", probe.get("reason")


@pytest.mark.parametrize("code, words", [
    ("io.open('/etc/passwd')", "io"),
    ("os.execute('touch /tmp/x')", "execute"),
    ("require('ffi')", "ffi"),
    ("loadstring('return 1')()", "loadstring"),
    ("load(string.char(27) .. 'LJ')", "load"),
    ("debug.getinfo(1)", "debug"),
])
def test_direct_escape_fails_the_task_with_a_reason(run_restmon, mock_api, tmp_path, code, words):
    flow = rule_flow(mock_api, code + " return 'succeeded'")
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert proc.returncode == 1
    probe = step(rec, "probe")
    assert probe["status"] == "failed"
    assert words in probe["reason"], probe["reason"]


def test_os_time_and_clock_stay_available(run_restmon, mock_api, tmp_path):
    lua = ("if type(os.time()) == 'number' and type(os.clock()) == 'number' "
           "then return 'succeeded' end return 'failed'")
    proc, rec = run_json(run_restmon, write_flow(tmp_path, rule_flow(mock_api, lua)))
    assert step(rec, "probe")["status"] == "succeeded", step(rec, "probe").get("reason")


def test_rules_cannot_leak_state_into_later_tasks(run_restmon, mock_api, tmp_path):
    """A global set by one task's rule is not seen by the next task's."""
    flow = {"name": "leak", "tasks": {
        "first": http_task(mock_api.url + "/health", on_success=["second"],
                           status={"lua": "leaked = 'yes' string.leak = 1 return 'succeeded'"}),
        "second": http_task(mock_api.url + "/health", status={
            "lua": "if leaked == nil and string.leak == nil then return 'succeeded' end "
                   "return 'failed', 'saw the other task\\'s globals'"}),
    }}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow))
    assert step(rec, "second")["status"] == "succeeded", step(rec, "second").get("reason")


def test_endless_loop_is_stopped_by_the_cpu_budget(run_restmon, mock_api, tmp_path):
    flow = rule_flow(mock_api, "while true do end", timeout_ms=20000)
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow), "--cpu-budget", "200", timeout=30)
    assert proc.returncode == 1
    probe = step(rec, "probe")
    assert probe["status"] == "failed"
    err = probe["attempts"][0]["error"]
    assert err["code"] == "E_BUDGET"
    assert "probe" in err["message"]
    assert probe["duration_ms"] < 5000


def test_endless_loop_inside_pcall_is_still_stopped(run_restmon, mock_api, tmp_path):
    """pcall must not swallow the budget error and keep looping."""
    lua = "for i = 1, 1e12 do pcall(function() while true do end end) end return 'succeeded'"
    flow = rule_flow(mock_api, lua, timeout_ms=20000)
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow), "--cpu-budget", "200", timeout=30)
    probe = step(rec, "probe")
    assert probe["status"] == "failed"
    assert probe["attempts"][0]["error"]["code"] == "E_BUDGET"


def test_allocation_bomb_is_stopped_by_the_memory_cap(run_restmon, mock_api, tmp_path):
    lua = "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end return 'succeeded'"
    flow = rule_flow(mock_api, lua, timeout_ms=20000)
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow), "--memory-limit", "16",
                         "--cpu-budget", "100000000", timeout=60)
    assert proc.returncode == 1
    probe = step(rec, "probe")
    err = probe["attempts"][0]["error"]
    assert err["code"] == "E_MEMLIMIT"
    assert "probe" in err["message"]


def test_string_bomb_is_refused(run_restmon, mock_api, tmp_path):
    """One huge string.rep is refused before it allocates."""
    flow = rule_flow(mock_api, "local s = string.rep('x', 2^40) return 'succeeded'")
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow), "--memory-limit", "16", timeout=30)
    probe = step(rec, "probe")
    assert probe["status"] == "failed"
    assert "rep" in probe["reason"] or probe["attempts"][0].get("error", {}).get("code") == "E_MEMLIMIT"


def test_a_stopped_task_does_not_stop_the_others(run_restmon, mock_api, tmp_path):
    flow = {"name": "isolated", "defaults": {"continue_on_failure": True}, "tasks": {
        "loop": http_task(mock_api.url + "/health", status={"lua": "while true do end"}),
        "fine": http_task(mock_api.url + "/health"),
    }}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow), "--cpu-budget", "200", timeout=30)
    assert step(rec, "loop")["status"] == "failed"
    assert step(rec, "fine")["status"] == "succeeded"


def write_plugin(root, name, code, manifest_extra=None):
    folder = Path(root) / name
    folder.mkdir(parents=True)
    manifest = {"name": name, "description": "test plugin", "version": "1",
                "fields": [{"name": "url", "type": "text", "required": True}]}
    manifest.update(manifest_extra or {})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "plugin.lua").write_text(code)
    return str(root)


def plugin_flow(name, mock_api):
    return {"name": "plug", "tasks": {"t": {"type": name, "request": {"url": mock_api.url + "/health"}}}}


def test_a_plugin_runs_and_makes_requests(run_restmon, mock_api, tmp_path):
    """A custom task type: one GET through the C client, then the runtime's checks."""
    code = ("local plugin = {} function plugin.run(ctx) "
            "return http.request{url = ctx.task.request.url, timeout_ms = ctx.timeout_ms} end "
            "return plugin")
    plugins = write_plugin(tmp_path / "plugins", "mine", code)
    proc, rec = run_json(run_restmon, write_flow(tmp_path, plugin_flow("mine", mock_api)), "--plugins", plugins)
    assert step(rec, "t")["status"] == "succeeded", step(rec, "t").get("reason")
    assert step(rec, "t")["attempts"][0]["exchanges"][0]["response"]["status"] == 200


@pytest.mark.parametrize("code, words", [
    ("local ffi = require('ffi') return {run = function() end}", "ffi"),
    ("local f = io.open('/etc/passwd') return {run = function() end}", "io"),
    ("os.execute('true') return {run = function() end}", "execute"),
])
def test_a_plugin_that_escapes_at_load_is_refused(run_restmon, mock_api, tmp_path, code, words):
    plugins = write_plugin(tmp_path / "plugins", "evil", code)
    proc = run_restmon("run", write_flow(tmp_path, plugin_flow("evil", mock_api)), "--plugins", plugins)
    assert proc.returncode in (1, 2)
    out = proc.stdout + proc.stderr
    assert "evil" in out and words in out, out
    assert "root:" not in out


def test_a_plugin_that_escapes_at_run_is_refused(run_restmon, mock_api, tmp_path):
    code = ("local plugin = {} function plugin.run(ctx) "
            "local f = assert(io.popen('id')) return {status = 200, body = f:read('*a')} end "
            "return plugin")
    plugins = write_plugin(tmp_path / "plugins", "evil", code)
    proc, rec = run_json(run_restmon, write_flow(tmp_path, plugin_flow("evil", mock_api)), "--plugins", plugins)
    t = step(rec, "t")
    assert t["status"] == "failed"
    assert "io" in t["reason"], t["reason"]
    assert "uid=" not in json.dumps(rec)


def test_a_plugin_cannot_touch_another_plugins_state(run_restmon, mock_api, tmp_path):
    """Plugins share a VM but not an environment: a global one sets is not
    visible to the other, and the built-in http plugin is not replaceable."""
    root = tmp_path / "plugins"
    write_plugin(root, "setter", "local p = {} function p.run(ctx) shared = 'x' http = nil "
                                 "return {status = 200, body = ''} end return p")
    write_plugin(root, "getter", "local p = {} function p.run(ctx) "
                                 "if shared ~= nil or http == nil then error('state leaked') end "
                                 "return {status = 200, body = ''} end return p")
    flow = {"name": "two", "tasks": {
        "a": {"type": "setter", "request": {"url": "x"}, "on_success": ["b"]},
        "b": {"type": "getter", "request": {"url": "x"}},
    }}
    proc, rec = run_json(run_restmon, write_flow(tmp_path, flow), "--plugins", str(root))
    assert step(rec, "b")["status"] == "succeeded", step(rec, "b").get("reason")
