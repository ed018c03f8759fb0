#include "lua/host.h"

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/host_internal.h"
#include "lua/json_bridge.h"
#include "lua/plugins.h"
#include "util/err.h"
#include "util/log.h"

/* The count hook fires every HOOK_EVERY VM instructions. */
#define HOOK_EVERY 1000

rm_lua_vm *rm__lua_vm(lua_State *L) {
  void *ud = NULL;
  lua_getallocf(L, &ud);
  return ud;
}

rm_lua_task *rm__lua_task(lua_State *L) { return rm__lua_vm(L)->task; }

/* Counting allocator: refuses growth past the cap while a task runs, and
 * never fails a shrink (LuaJIT cannot handle that). */
static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  rm_lua_vm *vm = ud;
  if (nsize == 0) {
    free(ptr);
    vm->mem_used -= osize;
    return NULL;
  }
  if (nsize > osize && vm->mem_limit && vm->mem_used + (nsize - osize) > vm->mem_limit) {
    if (vm->task && !vm->task->fatal) vm->task->fatal = RM_EMEMLIMIT;
    vm->poisoned = true;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (!p) return nsize <= osize ? ptr : NULL;
  vm->mem_used = vm->mem_used - osize + nsize;
  return p;
}

static const char *fatal_text(rm_lua_task *t, char *buf, size_t n) {
  const rm_lua_limits *lim = &t->host->limits;
  char who[300];
  if (t->spec && t->spec->what) snprintf(who, sizeof who, "%s", t->spec->what);
  else snprintf(who, sizeof who, "task '%s'", t->spec ? t->spec->task_name : "?");
  switch (t->fatal) {
    case RM_EBUDGET:
      snprintf(buf, n, "%s: CPU budget of %llu Lua instructions exhausted", who,
               (unsigned long long)lim->cpu_instructions);
      break;
    case RM_EMEMLIMIT:
      snprintf(buf, n, "%s: memory limit of %zu bytes reached", who, lim->memory_bytes);
      break;
    case RM_ETIMEOUT:
      snprintf(buf, n, "%s: timed out after %llu ms", who,
               (unsigned long long)(t->spec ? t->spec->timeout_ms : 0));
      break;
    default:
      snprintf(buf, n, "%s: %s", who, rm_strerror(t->fatal));
  }
  return buf;
}

/* Raises the limit error again on every tick once a limit is hit, so no
 * handler can swallow it and carry on. */
static void count_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  rm_lua_vm *vm = rm__lua_vm(L);
  rm_lua_task *t = vm->task;
  if (!t) return;
  if (!t->fatal) {
    t->instructions += HOOK_EVERY;
    if (t->instructions > t->host->limits.cpu_instructions)
      t->fatal = RM_EBUDGET;
    else if (uv_hrtime() > t->deadline_ns)
      t->fatal = RM_ETIMEOUT;
  }
  if (t->fatal) {
    char msg[256];
    vm->poisoned = true;
    luaL_error(L, "%s", fatal_text(t, msg, sizeof msg));
  }
}

static rm_lua_vm *vm_new(rm_lua_host *h, char *err, size_t errlen) {
  rm_lua_vm *vm = calloc(1, sizeof *vm);
  if (!vm) return NULL;
  vm->host = h;
  lua_State *L = lua_newstate(vm_alloc, vm);
  if (!L) {
    snprintf(err, errlen, "cannot create a Lua state");
    free(vm);
    return NULL;
  }
  vm->L = L;
  luaL_openlibs(L);
  /* Count hooks do not fire inside compiled traces. */
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  if (rm__lua_sandbox_setup(L, err, errlen) != 0) {
    lua_close(L);
    free(vm);
    return NULL;
  }
  lua_gc(L, LUA_GCCOLLECT, 0);
  lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
  h->vms++;
  return vm;
}

static void vm_free(rm_lua_vm *vm) {
  vm->host->vms--;
  lua_close(vm->L);
  free(vm);
}

int rm_lua_host_init(rm_lua_host *h, uv_loop_t *loop, rm_http_client *http,
                     const rm_lua_limits *limits, const char *plugin_dir, char *err,
                     size_t errlen) {
  memset(h, 0, sizeof *h);
  h->loop = loop;
  h->http = http;
  h->limits.cpu_instructions = 50000000ULL;
  h->limits.memory_bytes = 64u << 20;
  h->limits.record_body_bytes = 65536;
  if (limits) {
    if (limits->cpu_instructions) h->limits.cpu_instructions = limits->cpu_instructions;
    if (limits->memory_bytes) h->limits.memory_bytes = limits->memory_bytes;
    if (limits->record_body_bytes) h->limits.record_body_bytes = limits->record_body_bytes;
  }
  h->plugins = rm_lua_plugins_load(plugin_dir, err, errlen);
  if (!h->plugins) return RM_EINVAL;
  /* One VM up front proves the runtime library loads. */
  rm_lua_vm *vm = vm_new(h, err, errlen);
  if (!vm) {
    json_decref(h->plugins);
    h->plugins = NULL;
    return RM_ELUA;
  }
  h->idle = vm;
  return 0;
}

void rm_lua_host_close(rm_lua_host *h) {
  while (h->idle) {
    rm_lua_vm *vm = h->idle;
    h->idle = vm->next;
    vm_free(vm);
  }
  json_decref(h->plugins);
  h->plugins = NULL;
}

const json_t *rm_lua_host_plugin(rm_lua_host *h, const char *type) {
  const json_t *m = json_object_get(json_object_get(h->plugins, type), "manifest");
  return rm_lua_plugin_is_channel(m) ? NULL : m;
}

/* Leaves nil and "plugin 'x' failed to load: why" above `top`. */
static void plugin_error(lua_State *L, int top, const char *type, const char *why) {
  char msg[400];
  snprintf(msg, sizeof msg, "plugin '%s' failed to load: %s", type, why ? why : "?");
  lua_settop(L, top);
  lua_pushnil(L);
  lua_pushstring(L, msg);
}

void rm__lua_push_plugin(lua_State *L, rm_lua_host *h, const char *type, bool channel) {
  int top = lua_gettop(L);
  const json_t *m = json_object_get(json_object_get(h->plugins, type), "manifest");
  if (m && rm_lua_plugin_is_channel(m) != channel) {
    lua_pushnil(L);
    lua_pushfstring(L, "plugin '%s' is a %s type, not a %s type", type, channel ? "task" : "channel",
                    channel ? "channel" : "task");
    return;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "restmon.plugins"); /* top+1: cache */
  lua_getfield(L, top + 1, type);
  if (!lua_isnil(L, -1)) {
    lua_remove(L, top + 1);
    return;
  }
  lua_pop(L, 1);
  json_t *p = json_object_get(h->plugins, type);
  const char *code = json_string_value(json_object_get(p, "code"));
  const char *path = json_string_value(json_object_get(p, "path"));
  if (!code) {
    lua_settop(L, top);
    lua_pushnil(L);
    lua_pushfstring(L, "no plugin named '%s'", type);
    return;
  }
  char chunk[300];
  snprintf(chunk, sizeof chunk, "@%s", path ? path : type);
  rm__lua_sandbox_push_env(L); /* top+2 */
  if (!rm__lua_compile(L, code, strlen(code), chunk, top + 2)) {
    plugin_error(L, top, type, lua_tostring(L, -1));
    return;
  }
  if (lua_pcall(L, 0, 1, 0) != 0) { /* module at top+3 */
    plugin_error(L, top, type, lua_tostring(L, -1));
    return;
  }
  const char *entry = channel ? "send" : "run";
  if (lua_istable(L, top + 3)) lua_getfield(L, top + 3, entry);
  if (!lua_istable(L, top + 3) || !lua_isfunction(L, -1)) {
    plugin_error(L, top, type,
                 channel ? "its code must return a table with a send(ctx) function"
                         : "its code must return a table with a run(ctx) function");
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, top + 3);
  lua_setfield(L, top + 1, type);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

static void on_timer_closed(uv_handle_t *h) { (void)h; }

static void finish(rm_lua_task *t) {
  rm_lua_vm *vm = t->vm;
  rm_lua_host *h = t->host;
  uv_timer_stop(&t->timer);
  if (t->co_ref != LUA_NOREF) {
    luaL_unref(vm->L, LUA_REGISTRYINDEX, t->co_ref);
    t->co_ref = LUA_NOREF;
  }
  t->co = NULL;
  vm->task = NULL;
  vm->mem_limit = 0;
  t->vm = NULL;
  if (vm->poisoned) {
    vm_free(vm);
  } else {
    vm->next = h->idle;
    h->idle = vm;
  }
  t->done = true;
  rm_lua_task_cb cb = t->cb;
  t->cb = NULL;
  if (cb) cb(t);
}

static void fail(rm_lua_task *t, int err, const char *msg) {
  t->err = err;
  snprintf(t->errmsg, sizeof t->errmsg, "%s", msg);
  finish(t);
}

void rm_lua_resume(rm_lua_task *t, int nargs) {
  lua_State *co = t->co;
  int st = lua_resume(co, nargs);
  if (st == LUA_YIELD) {
    if (!t->op) fail(t, RM_ELUA, "coroutine.yield() outside of the plugin's own coroutines");
    return;
  }
  char msg[512];
  if (t->fatal) {
    fail(t, t->fatal, fatal_text(t, msg, sizeof msg));
    return;
  }
  if (st != 0) {
    const char *e = lua_tostring(co, -1);
    luaL_traceback(co, co, e ? e : "(error object is not a string)", 0);
    fail(t, RM_ELUA, lua_tostring(co, -1));
    return;
  }
  if (!lua_istable(co, -1)) {
    fail(t, RM_ELUA, "the runtime returned no result table");
    return;
  }
  char err[256];
  t->result = rm_lua_to_json(co, -1, err, sizeof err);
  if (!t->result) {
    snprintf(msg, sizeof msg, "result cannot be recorded: %s", err);
    fail(t, RM_ELUA, msg);
    return;
  }
  finish(t);
}

const char *rm__lua_begin_op(lua_State *L, rm__lua_op *op) {
  rm_lua_task *t = rm__lua_task(L);
  if (!t || (lua_State *)t->co != L)
    return "E_DENIED: I/O is only allowed in the task's own coroutine, not in coroutines the "
           "plugin creates";
  t->op = op;
  return NULL;
}

void rm__lua_end_op(rm_lua_task *t) { t->op = NULL; }

static void stop(rm_lua_task *t, int why) {
  if (t->done || !t->vm) return;
  t->fatal = why; /* the op's cancel reads it to say why it was cut */
  if (t->op) {
    rm__lua_op *op = t->op;
    t->op = NULL;
    op->cancel(op);
  }
  t->vm->poisoned = true;
  char msg[512];
  fail(t, why, why == RM_ECANCELED ? "cancelled" : fatal_text(t, msg, sizeof msg));
}

static void on_deadline(uv_timer_t *timer) {
  rm_lua_task *t = timer->data;
  stop(t, RM_ETIMEOUT);
}

void rm_lua_task_cancel(rm_lua_task *t) { stop(t, RM_ECANCELED); }

static int l_compile(lua_State *L) {
  size_t len;
  const char *src = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, "=custom");
  luaL_checktype(L, 3, LUA_TTABLE);
  char chunk[256];
  snprintf(chunk, sizeof chunk, "=%s", name[0] == '=' || name[0] == '@' ? name + 1 : name);
  return rm__lua_compile(L, src, len, chunk, 3) ? 1 : 2;
}

static int l_new_env(lua_State *L) {
  rm__lua_sandbox_push_env(L);
  return 1;
}

/* The task attempt's call: runtime.run_attempt(ctx). */
static int push_ctx(lua_State *co, rm_lua_task *t, void *ud, char *err, size_t errlen) {
  (void)ud;
  const rm_lua_task_spec *s = t->spec;
  lua_getfield(co, LUA_REGISTRYINDEX, "restmon.runtime");
  lua_getfield(co, -1, "run_attempt");
  lua_remove(co, -2);
  if (!lua_isfunction(co, -1)) {
    snprintf(err, errlen, "runtime library has no run_attempt");
    return RM_ELUA;
  }
  lua_createtable(co, 0, 12);
  lua_pushstring(co, s->task_name);
  lua_setfield(co, -2, "task_name");
  lua_pushstring(co, s->type);
  lua_setfield(co, -2, "type");
  rm_lua_push_json(co, s->task);
  lua_setfield(co, -2, "task");
  rm_lua_push_json(co, s->vars);
  lua_setfield(co, -2, "vars");
  rm_lua_push_json(co, s->inputs);
  lua_setfield(co, -2, "inputs");
  lua_pushinteger(co, s->attempt);
  lua_setfield(co, -2, "attempt");
  lua_pushboolean(co, s->dry_run);
  lua_setfield(co, -2, "dry_run");
  lua_pushnumber(co, (double)s->timeout_ms);
  lua_setfield(co, -2, "timeout_ms");
  lua_pushcfunction(co, l_compile);
  lua_setfield(co, -2, "compile");
  lua_pushcfunction(co, l_new_env);
  lua_setfield(co, -2, "new_env");
  lua_getfield(co, LUA_REGISTRYINDEX, "restmon.sandbox_base"); /* its pcall, without a new environment */
  lua_getfield(co, -1, "pcall");
  lua_setfield(co, -3, "pcall");
  lua_pop(co, 1);
  lua_getfield(co, LUA_REGISTRYINDEX, "restmon.task_log");
  lua_setfield(co, -2, "log");
  rm__lua_push_plugin(co, t->host, s->type, false);
  if (lua_isnil(co, -2)) {
    snprintf(err, errlen, "%s", lua_tostring(co, -1));
    return RM_ENOTFOUND;
  }
  lua_setfield(co, -2, "plugin");
  return 1;
}

int rm_lua_task_start(rm_lua_host *h, rm_lua_task *t, const rm_lua_task_spec *spec,
                      rm_lua_task_cb cb) {
  return rm__lua_task_run(h, t, spec, cb, push_ctx, NULL);
}

int rm__lua_task_run(rm_lua_host *h, rm_lua_task *t, const rm_lua_task_spec *spec, rm_lua_task_cb cb,
                     rm__lua_push_fn push, void *ud) {
  char err[512];
  void *data = t->data;
  memset(t, 0, sizeof *t);
  t->data = data;
  t->host = h;
  t->spec = spec;
  t->cb = cb;
  t->co_ref = LUA_NOREF;
  t->exchanges = json_array();
  t->logs = json_array();
  uv_timer_init(h->loop, &t->timer);
  t->timer.data = t;
  rm_lua_vm *vm = h->idle;
  if (vm) {
    h->idle = vm->next;
  } else if (!(vm = vm_new(h, err, sizeof err))) {
    snprintf(t->errmsg, sizeof t->errmsg, "%s", err);
    return RM_ELUA;
  }
  vm->next = NULL;
  t->vm = vm;
  vm->task = t;
  lua_State *L = vm->L;
  /* Garbage of earlier attempts must not count against this one. */
  if (vm->mem_used > (h->limits.memory_bytes >> 2)) lua_gc(L, LUA_GCCOLLECT, 0);
  vm->mem_limit = vm->mem_used + h->limits.memory_bytes;
  lua_State *co = lua_newthread(L);
  t->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->co = co;
  uint64_t timeout = spec->timeout_ms ? spec->timeout_ms : 10000;
  t->deadline_ns = uv_hrtime() + timeout * 1000000ULL;
  int nargs = push(co, t, ud, err, sizeof err);
  if (nargs < 0) {
    lua_settop(co, 0);
    fail(t, nargs, err);
    return 0;
  }
  uv_timer_start(&t->timer, on_deadline, timeout, 0);
  rm_lua_resume(t, nargs);
  return 0;
}

void rm_lua_task_cleanup(rm_lua_task *t, uv_close_cb closed_cb) {
  json_decref(t->result);
  json_decref(t->exchanges);
  json_decref(t->logs);
  t->result = t->exchanges = t->logs = NULL;
  if (!uv_is_closing((uv_handle_t *)&t->timer))
    uv_close((uv_handle_t *)&t->timer, closed_cb ? closed_cb : on_timer_closed);
}
