/* The sandbox every plugin and custom rule runs in.
 *
 * Built as an allowlist: a fresh environment gets copies of the safe
 * parts of the standard libraries and of RestMon's modules; nothing else
 * from the VM's real globals is reachable. Closed escapes: io, os (but
 * time and clock), debug, ffi, jit, package/require of files, load*,
 * dofile, string.dump, bytecode chunks, getfenv/setfenv, newproxy,
 * collectgarbage, and the shared string metatable. C functions that no
 * hook can interrupt (string.rep and the pattern functions) are capped. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua/host_internal.h"
#include "lua/modules.h"
#include "util/embedded.h"

#define REP_MAX_BYTES (16u << 20)
#define MAX_NESTING 32
/* Worst-case steps a Lua pattern may need on its subject: 10^10. */
#define PATTERN_MAX_LOG10_STEPS 10.0

static const char *const safe_globals[] = {
    "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "rawset", "select",
    "tonumber", "tostring", "type", "unpack", "setmetatable", "getmetatable", "_VERSION", NULL};
static const char *const safe_string[] = {"byte", "char", "format", "len", "lower", "reverse",
                                          "sub", "upper", NULL};
static const char *const safe_table[] = {"concat", "insert", "maxn", "remove", "sort", NULL};
static const char *const safe_os[] = {"time", "clock", NULL};
static const char *const safe_coroutine[] = {"create", "running", "status", "yield", NULL};

static void copy_fields(lua_State *L, int src, int dst, const char *const *names) {
  for (const char *const *n = names; *n; n++) {
    lua_getfield(L, src, *n);
    lua_setfield(L, dst, *n);
  }
}

static void raise_if_fatal(lua_State *L) {
  rm_lua_task *t = rm__lua_task(L);
  if (t && t->fatal) lua_error(L);
}

/* Counts the quantifiers of a Lua pattern that can backtrack. */
static int pattern_quantifiers(const char *p, size_t n) {
  int q = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '%') {
      i++;
    } else if (p[i] == '[') {
      i++;
      if (i < n && p[i] == '^') i++;
      if (i < n && p[i] == ']') i++;
      while (i < n && p[i] != ']') {
        if (p[i] == '%') i++;
        i++;
      }
    } else if (p[i] == '*' || p[i] == '+' || p[i] == '-') {
      q++;
    }
  }
  return q;
}

/* Refuses a pattern whose worst case on this subject is too slow to run
 * inside one uninterruptible C call. */
static void check_pattern(lua_State *L, const char *fn, int plain_arg) {
  size_t slen, plen;
  luaL_checklstring(L, 1, &slen);
  const char *pat = luaL_checklstring(L, 2, &plen);
  if (plain_arg && lua_toboolean(L, plain_arg)) return;
  int q = pattern_quantifiers(pat, plen);
  int exponent = q + (plen > 0 && pat[0] == '^' ? 0 : 1);
  if (exponent <= 1 || slen < 2) return;
  if (exponent * log10((double)slen) > PATTERN_MAX_LOG10_STEPS)
    luaL_error(L,
               "string.%s: pattern with %d repetition items on a %d-byte subject could take "
               "too long; use re.match (PCRE2 with a match limit) instead",
               fn, q, (int)slen);
}

static int call_original(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static int sb_find(lua_State *L) {
  check_pattern(L, "find", 4);
  return call_original(L);
}

static int sb_match(lua_State *L) {
  check_pattern(L, "match", 0);
  return call_original(L);
}

static int sb_gmatch(lua_State *L) {
  check_pattern(L, "gmatch", 0);
  return call_original(L);
}

/* gsub may call back into Lua; nesting is bounded so recursion through
 * callbacks cannot exhaust the C stack. */
static int sb_gsub(lua_State *L) {
  check_pattern(L, "gsub", 0);
  rm_lua_task *t = rm__lua_task(L);
  if (t && t->nesting >= MAX_NESTING) return luaL_error(L, "string.gsub: nested too deeply");
  if (t) t->nesting++;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  if (t) t->nesting--;
  if (st != 0) return lua_error(L);
  return lua_gettop(L);
}

static int sb_rep(lua_State *L) {
  size_t len, seplen = 0;
  luaL_checklstring(L, 1, &len);
  double n = luaL_checknumber(L, 2);
  luaL_optlstring(L, 3, "", &seplen);
  if (n > 0 && (double)(len + seplen) * n > (double)REP_MAX_BYTES)
    return luaL_error(L, "string.rep: result of %.0f bytes is over the limit of %d", (len + seplen) * n,
                      (int)REP_MAX_BYTES);
  if (n > 0 && len + seplen == 0 && n > (double)REP_MAX_BYTES)
    return luaL_error(L, "string.rep: count %.0f is over the limit", n);
  return call_original(L);
}

static int sb_resume(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  rm_lua_task *t = rm__lua_task(L);
  if (t && t->nesting >= MAX_NESTING) return luaL_error(L, "coroutines nested too deeply");
  if (t) t->nesting++;
  int n = call_original(L);
  if (t) t->nesting--;
  raise_if_fatal(L);
  return n;
}

static int sb_is_fatal(lua_State *L) {
  rm_lua_task *t = rm__lua_task(L);
  lua_pushboolean(L, t && t->fatal);
  return 1;
}

/* pcall and xpcall in Lua over the built-in pcall, so they stay yieldable;
 * a limit error passes through them untouched, and an xpcall handler runs
 * as ordinary code under the hook. */
static const char wrappers_src[] =
    "local raw_pcall, is_fatal, error, create, resume = ...\n"
    "local function after(ok, ...)\n"
    "  if not ok and is_fatal() then error((...), 0) end\n"
    "  return ok, ...\n"
    "end\n"
    "local function pcall_(f, ...) return after(raw_pcall(f, ...)) end\n"
    "local function xpcall_(f, handler, ...)\n"
    "  local function finish(ok, ...)\n"
    "    if ok then return true, ... end\n"
    "    if is_fatal() then error((...), 0) end\n"
    "    return false, handler((...))\n"
    "  end\n"
    "  return finish(raw_pcall(f, ...))\n"
    "end\n"
    "local function wrap(f)\n"
    "  local co = create(f)\n"
    "  local function pass(ok, ...)\n"
    "    if not ok then error((...), 0) end\n"
    "    return ...\n"
    "  end\n"
    "  return function(...) return pass(resume(co, ...)) end\n"
    "end\n"
    "return pcall_, xpcall_, wrap\n";

int rm__lua_compile(lua_State *L, const char *src, size_t len, const char *chunk, int env_idx) {
  env_idx = env_idx < 0 ? lua_gettop(L) + env_idx + 1 : env_idx;
  if (len > 0 && src[0] == 27) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: binary chunks are not allowed", chunk + 1);
    return 0;
  }
  if (luaL_loadbuffer(L, src, len, chunk) != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 0;
  }
  lua_pushvalue(L, env_idx);
  lua_setfenv(L, -2);
  return 1;
}

/* require inside the sandbox: only the embedded runtime library
 * ("restmon.extract" -> lua/restmon/extract.lua) and "restmon.native". */
static int sb_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "restmon.loaded"); /* 2 */
  lua_getfield(L, 2, name);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  char path[256];
  snprintf(path, sizeof path, "lua/%s.lua", name);
  for (char *p = path + 4; *p && strcmp(p, ".lua") != 0; p++)
    if (*p == '.') *p = '/';
  const rm_embedded_file *f = strncmp(name, "restmon.", 8) == 0 ? rm_embedded_find(path) : NULL;
  if (!f) return luaL_error(L, "module '%s' not found (only the restmon.* library can be required)", name);
  lua_getfield(L, LUA_REGISTRYINDEX, "restmon.runtime_env");
  int env = lua_gettop(L);
  char chunk[300];
  snprintf(chunk, sizeof chunk, "@%s", path);
  if (!rm__lua_compile(L, f->data, f->len, chunk, env)) return lua_error(L);
  lua_call(L, 0, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, 2, name);
  return 1;
}

/* Builds the base table that every environment is copied from. */
static void build_base(lua_State *L) {
  lua_newtable(L);
  int base = lua_gettop(L);
  copy_fields(L, LUA_GLOBALSINDEX, base, safe_globals);

  lua_getglobal(L, "string");
  int str = lua_gettop(L);
  lua_newtable(L);
  copy_fields(L, str, str + 1, safe_string);
  static const struct { const char *name; lua_CFunction fn; } capped[] = {
      {"find", sb_find}, {"match", sb_match}, {"gmatch", sb_gmatch}, {"gsub", sb_gsub}, {"rep", sb_rep}};
  for (unsigned i = 0; i < sizeof capped / sizeof capped[0]; i++) {
    lua_getfield(L, str, capped[i].name);
    lua_pushcclosure(L, capped[i].fn, 1);
    lua_setfield(L, str + 1, capped[i].name);
  }
  lua_setfield(L, base, "string");
  lua_pop(L, 1);

  static const struct { const char *lib; const char *const *names; } libs[] = {
      {"table", safe_table}, {"os", safe_os}};
  for (unsigned i = 0; i < sizeof libs / sizeof libs[0]; i++) {
    lua_getglobal(L, libs[i].lib);
    lua_newtable(L);
    copy_fields(L, -2, lua_gettop(L), libs[i].names);
    lua_setfield(L, base, libs[i].lib);
    lua_pop(L, 1);
  }
  static const char *const whole[] = {"math", "bit", NULL};
  for (const char *const *w = whole; *w; w++) {
    lua_getglobal(L, *w);
    lua_setfield(L, base, *w);
  }

  lua_getglobal(L, "coroutine");
  int co = lua_gettop(L);
  lua_newtable(L);
  copy_fields(L, co, co + 1, safe_coroutine);
  lua_getfield(L, co, "resume");
  lua_pushcclosure(L, sb_resume, 1);
  lua_setfield(L, co + 1, "resume");

  /* pcall, xpcall, coroutine.wrap from the Lua wrappers. */
  luaL_loadbuffer(L, wrappers_src, sizeof wrappers_src - 1, "=sandbox");
  lua_getglobal(L, "pcall");
  lua_pushcfunction(L, sb_is_fatal);
  lua_getglobal(L, "error");
  lua_getfield(L, co + 1, "create");
  lua_getfield(L, co + 1, "resume");
  lua_call(L, 5, 3);
  lua_setfield(L, co + 1, "wrap");
  lua_setfield(L, base, "xpcall");
  lua_setfield(L, base, "pcall");
  lua_setfield(L, base, "coroutine");
  lua_pop(L, 1);

  /* RestMon's modules, and "restmon.native" for the runtime library. */
  lua_newtable(L);
  int native = lua_gettop(L);
  for (const rm_lua_module *m = rm_lua_pure_modules; m->name; m++) {
    m->open(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, native, m->name);
    lua_setfield(L, base, m->name);
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "restmon.loaded");
  lua_pushvalue(L, native);
  lua_setfield(L, -2, "restmon.native");
  lua_pop(L, 2);
  rm__lua_open_http(L);
  lua_setfield(L, base, "http");
  rm__lua_open_task(L);
  int task = lua_gettop(L);
  lua_getfield(L, task, "sleep");
  lua_setfield(L, base, "sleep");
  lua_getfield(L, task, "log");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "restmon.task_log");
  lua_setfield(L, base, "log");
  lua_getfield(L, task, "now_ms");
  lua_setfield(L, base, "now_ms");
  lua_pop(L, 1);
  lua_pushcfunction(L, sb_require);
  lua_setfield(L, base, "require");
  lua_setfield(L, LUA_REGISTRYINDEX, "restmon.sandbox_base");
}

void rm__lua_sandbox_push_env(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "restmon.sandbox_base");
  int base = lua_gettop(L);
  lua_createtable(L, 0, 40);
  int env = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, base)) {
    if (lua_istable(L, -1)) {
      /* A copy per environment: one plugin's changes stay its own. */
      lua_newtable(L);
      lua_pushnil(L);
      while (lua_next(L, -3)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
      }
      lua_remove(L, -2);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, env);
  }
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");
  lua_remove(L, base);
}

int rm__lua_sandbox_setup(lua_State *L, char *err, size_t errlen) {
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "restmon.plugins");
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "restmon.loaded");
  build_base(L);

  /* Strings index the capped string table, and their metatable is
   * neither readable nor writable from the sandbox. */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_getfield(L, LUA_REGISTRYINDEX, "restmon.sandbox_base");
  lua_getfield(L, -1, "string");
  lua_setfield(L, -3, "__index");
  lua_pop(L, 1);
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);

  rm__lua_sandbox_push_env(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "restmon.runtime_env");
  lua_getfield(L, LUA_REGISTRYINDEX, "restmon.sandbox_base");
  lua_getfield(L, -1, "require");
  lua_pushliteral(L, "restmon.runtime");
  if (lua_pcall(L, 1, 1, 0) != 0 || !lua_istable(L, -1)) {
    snprintf(err, errlen, "loading the runtime library failed: %s",
             lua_isstring(L, -1) ? lua_tostring(L, -1) : "restmon.runtime returned no table");
    lua_pop(L, 2);
    return -1;
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "restmon.runtime");
  lua_pop(L, 1);
  return 0;
}
