/* sleep, log and now_ms for plugins. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "lua/host_internal.h"
#include "util/log.h"

#define MAX_LOG_ENTRIES 200
#define MAX_LOG_BYTES 4096

typedef struct sleep_op {
  rm__lua_op base;
  uv_timer_t timer;
  rm_lua_task *task;
} sleep_op;

static void on_sleep_closed(uv_handle_t *h) { free(h->data); }

static void on_wake(uv_timer_t *timer) {
  sleep_op *op = timer->data;
  rm_lua_task *t = op->task;
  timer->data = op;
  uv_close((uv_handle_t *)&op->timer, on_sleep_closed);
  rm__lua_end_op(t);
  rm_lua_resume(t, 0);
}

static void cancel_sleep(rm__lua_op *base) {
  sleep_op *op = (sleep_op *)base;
  uv_timer_stop(&op->timer);
  uv_close((uv_handle_t *)&op->timer, on_sleep_closed);
}

/* sleep(ms): yields to the loop for ms milliseconds. */
static int l_sleep(lua_State *L) {
  double ms = luaL_checknumber(L, 1);
  rm_lua_task *t = rm__lua_task(L);
  if (!t) return luaL_error(L, "sleep: no task is running");
  if (ms < 0) ms = 0;
  sleep_op *op = calloc(1, sizeof *op);
  if (!op) return luaL_error(L, "sleep: out of memory");
  op->base.cancel = cancel_sleep;
  op->task = t;
  const char *why = rm__lua_begin_op(L, &op->base);
  if (why) {
    free(op);
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  uv_timer_init(t->host->loop, &op->timer);
  op->timer.data = op;
  uv_timer_start(&op->timer, on_wake, (uint64_t)ms, 0);
  return lua_yield(L, 0);
}

static const char *to_text(lua_State *L, int idx) {
  int type = lua_type(L, idx);
  if (type == LUA_TSTRING || type == LUA_TNUMBER) return lua_tostring(L, idx);
  lua_getglobal(L, "tostring");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  const char *s = lua_tostring(L, -1);
  return s ? s : "?";
}

/* log(message) or log(level, message): kept with the attempt. */
static int l_log(lua_State *L) {
  const char *level = "info", *msg;
  if (lua_gettop(L) >= 2) {
    level = luaL_checkstring(L, 1);
    msg = to_text(L, 2);
  } else {
    msg = to_text(L, 1);
  }
  rm_lua_task *t = rm__lua_task(L);
  if (!t) return 0;
  if (json_array_size(t->logs) < MAX_LOG_ENTRIES) {
    json_t *e = json_object();
    json_object_set_new(e, "level", json_string(level));
    size_t len = strlen(msg);
    json_object_set_new(e, "message", json_stringn(msg, len > MAX_LOG_BYTES ? MAX_LOG_BYTES : len));
    json_array_append_new(t->logs, e);
  }
  rm_log(RM_LOG_DEBUG, "plugin", "%s: %s", t->spec->task_name, msg);
  return 0;
}

static int l_now_ms(lua_State *L) {
  lua_pushnumber(L, (double)uv_hrtime() / 1e6);
  return 1;
}

int rm__lua_open_task(lua_State *L) {
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, l_sleep);
  lua_setfield(L, -2, "sleep");
  lua_pushcfunction(L, l_log);
  lua_setfield(L, -2, "log");
  lua_pushcfunction(L, l_now_ms);
  lua_setfield(L, -2, "now_ms");
  return 1;
}
