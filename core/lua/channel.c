/* One attempt of a channel plugin (lua/channel.h): the runtime library's
 * channel.send(plugin, ctx) on a task coroutine of the host, so the
 * attempt gets the host's VMs, limits, cancellation and http.request. */
#include "lua/channel.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/host_internal.h"
#include "lua/json_bridge.h"
#include "lua/plugins.h"
#include "util/err.h"

#define DEFAULT_TIMEOUT_MS 10000

/* Pushes channel.send, the plugin's module and ctx. */
static int push_send(lua_State *co, rm_lua_task *t, void *ud, char *err, size_t errlen) {
  rm_lua_channel_attempt *a = ud;
  lua_getfield(co, LUA_REGISTRYINDEX, "restmon.sandbox_base");
  lua_getfield(co, -1, "require");
  lua_remove(co, -2);
  lua_pushliteral(co, "restmon.channel");
  if (lua_pcall(co, 1, 1, 0) != 0 || !lua_istable(co, -1)) {
    snprintf(err, errlen, "the runtime library's restmon.channel does not load: %s",
             lua_isstring(co, -1) ? lua_tostring(co, -1) : "no table");
    return RM_ELUA;
  }
  lua_getfield(co, -1, "send");
  lua_remove(co, -2);
  rm__lua_push_plugin(co, t->host, a->spec.type, true);
  if (lua_isnil(co, -2)) {
    snprintf(err, errlen, "%s", lua_tostring(co, -1));
    return RM_ENOTFOUND;
  }
  if (rm_lua_push_json(co, a->ctx) != 0) {
    snprintf(err, errlen, "the message is nested too deeply to give to Lua");
    return RM_ETOOBIG;
  }
  return 2;
}

int rm_lua_channel_start(rm_lua_host *h, rm_lua_channel_attempt *a, const rm_lua_channel_spec *spec,
                         rm_lua_task_cb cb) {
  snprintf(a->what, sizeof a->what, "channel '%.200s' (plugin %s)", spec->channel ? spec->channel : "",
           spec->type);
  a->ctx = spec->ctx;
  a->spec = (rm_lua_task_spec){.task_name = spec->channel ? spec->channel : spec->type,
                               .type = spec->type,
                               .timeout_ms = spec->timeout_ms ? spec->timeout_ms : DEFAULT_TIMEOUT_MS,
                               .secrets = spec->secrets,
                               .what = a->what};
  return rm__lua_task_run(h, &a->task, &a->spec, cb, push_send, a);
}

const json_t *rm_lua_host_channel(rm_lua_host *h, const char *type) {
  const json_t *m = json_object_get(json_object_get(h->plugins, type), "manifest");
  return rm_lua_plugin_is_channel(m) ? m : NULL;
}

static int by_name(const void *a, const void *b) {
  const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
  const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
  return strcmp(x ? x : "", y ? y : "");
}

json_t *rm_lua_host_channels(rm_lua_host *h) {
  json_t *all[256], *out = json_array(); /* more channel types than this are not listed */
  size_t n = 0;
  const char *name;
  json_t *p;
  json_object_foreach(h->plugins, name, p) {
    json_t *m = json_object_get(p, "manifest");
    if (rm_lua_plugin_is_channel(m) && n < sizeof all / sizeof all[0]) all[n++] = m;
  }
  qsort(all, n, sizeof all[0], by_name);
  for (size_t i = 0; out && i < n; i++)
    if (json_array_append(out, all[i])) {
      json_decref(out);
      out = NULL;
    }
  return out;
}
