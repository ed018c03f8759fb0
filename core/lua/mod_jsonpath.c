/* The jsonpath module: RFC 9535 queries over JSON text or a json.doc.
 *
 * Compiled queries are cached per lua_State in a registry table, path
 * text -> query userdata. The cache is dropped whole once it holds
 * CACHE_MAX queries: plugins use a handful of fixed paths, so a simple
 * bound beats an LRU here. */
#include <lauxlib.h>
#include <string.h>

#include "jsonpath/jsonpath.h"
#include "lua/json_bridge.h"
#include "lua/modules.h"

/* A json.doc from mod_json.c: its userdata starts with the json_t *. */
#define DOC_MT "restmon.json.doc"
#define QUERY_MT "restmon.jsonpath.query"
#define RESULT_MT "restmon.jsonpath.result"
#define CACHE_KEY "restmon.jsonpath.cache"
#define CACHE_MAX 256

typedef struct query_box {
  rm_jsonpath *q;
} query_box;

/* Holds query results while they are converted, so a Lua error raised
 * during the conversion (memory cap) does not strand them. */
typedef struct result_box {
  json_t *values;
  json_t *paths;
} result_box;

static int query_gc(lua_State *L) {
  query_box *b = luaL_checkudata(L, 1, QUERY_MT);
  rm_jsonpath_free(b->q);
  b->q = NULL;
  return 0;
}

static int result_gc(lua_State *L) {
  result_box *b = luaL_checkudata(L, 1, RESULT_MT);
  json_decref(b->values);
  json_decref(b->paths);
  b->values = b->paths = NULL;
  return 0;
}


/* Pushes the cache table, creating it on first use. */
static void push_cache(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
  if (lua_istable(L, -1)) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 16);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
}

/* Returns the compiled form of the path at idx, from the cache or newly
 * compiled, or NULL after pushing nil and the error. Its userdata is left
 * on the stack, so it outlives the call even if the cache is dropped. */
static rm_jsonpath *compiled(lua_State *L, int idx) {
  size_t len;
  const char *expr = luaL_checklstring(L, idx, &len);
  if (strlen(expr) != len) {
    lua_pushnil(L);
    lua_pushfstring(L, "E_JSONPATH: at offset %d: NUL byte in query", (int)strlen(expr));
    return NULL;
  }
  push_cache(L);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  query_box *b = luaL_testudata(L, -1, QUERY_MT);
  if (b && b->q) {
    lua_remove(L, -2);
    return b->q;
  }
  lua_pop(L, 1);

  /* The count lives at integer key 0, apart from the string keys. */
  lua_rawgeti(L, -1, 0);
  int count = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (count >= CACHE_MAX) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 16);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
    count = 0;
  }

  b = rm_lua_new_box(L, sizeof *b, QUERY_MT, query_gc);
  char err[256] = "";
  if (rm_jsonpath_compile(expr, &b->q, err, sizeof err)) {
    lua_pop(L, 2);
    lua_pushnil(L);
    lua_pushfstring(L, "E_JSONPATH: %s", err[0] ? err : "invalid query");
    return NULL;
  }
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_pushinteger(L, count + 1);
  lua_rawseti(L, -3, 0);
  lua_remove(L, -2);
  return b->q;
}

/* Returns the document for the source at idx: a json.doc's tree, or
 * JSON text parsed through json.doc (upvalue 1), whose result is left on
 * the stack to keep the tree alive. NULL after pushing nil and the error. */
static json_t *document(lua_State *L, int idx) {
  json_t **doc = luaL_testudata(L, idx, DOC_MT);
  if (doc) {
    if (!*doc) luaL_argerror(L, idx, "json.doc already released");
    return *doc;
  }
  if (lua_type(L, idx) != LUA_TSTRING) luaL_argerror(L, idx, "JSON text or json.doc expected");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, idx);
  lua_call(L, 1, 2);
  doc = luaL_testudata(L, -2, DOC_MT);
  if (!doc) return NULL;
  lua_pop(L, 1);
  return *doc;
}

static int run(lua_State *L, int want_paths) {
  luaL_checkany(L, 1);
  luaL_checktype(L, 2, LUA_TSTRING);
  lua_settop(L, 2);
  json_t *doc = document(L, 1);
  if (!doc) return 2;
  rm_jsonpath *q = compiled(L, 2);
  if (!q) return 2;

  result_box *r = rm_lua_new_box(L, sizeof *r, RESULT_MT, result_gc);
  if (rm_jsonpath_query(q, doc, &r->values, want_paths ? &r->paths : NULL)) {
    lua_pushnil(L);
    lua_pushliteral(L, "E_NOMEM: out of memory evaluating JSONPath");
    return 2;
  }
  if (rm_lua_push_json(L, want_paths ? r->paths : r->values)) {
    lua_pushnil(L);
    lua_pushliteral(L, "E_TOOBIG: JSON nesting deeper than 256");
    return 2;
  }
  json_decref(r->values);
  json_decref(r->paths);
  r->values = r->paths = NULL;
  return 1;
}

/* jsonpath.query(src, path) -> array of values | nil, err */
static int l_query(lua_State *L) {
  return run(L, 0);
}

/* jsonpath.paths(src, path) -> array of normalized paths | nil, err */
static int l_paths(lua_State *L) {
  return run(L, 1);
}

static const luaL_Reg jsonpath_funcs[] = {
    {"query", l_query},
    {"paths", l_paths},
    {NULL, NULL},
};

int rm_lua_open_jsonpath(lua_State *L) {
  luaL_newlibtable(L, jsonpath_funcs);
  rm_lua_open_json(L);
  lua_getfield(L, -1, "doc");
  lua_remove(L, -2);
  luaL_setfuncs(L, jsonpath_funcs, 1);
  return 1;
}
