#include "lua/json_bridge.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

#define MAX_DEPTH 256
/* Stack room is made CHUNK levels at a time, as a conversion goes
 * deeper: reserving for MAX_DEPTH up front grew the stack of every fresh
 * coroutine (one per attempt) by kilobytes. */
#define CHUNK 8

static int grow_stack(lua_State *L) {
  luaL_checkstack(L, (int)(intptr_t)lua_touserdata(L, 1), "JSON nesting");
  return 0;
}

/* Room for n more values on L's stack, without raising: LuaJIT's
 * lua_checkstack raises when the allocator refuses the growth (a VM at
 * its memory cap), and a raise here could strand jansson values or, out
 * of a protected call, end the process. false: no room. */
static bool reserve(lua_State *L, int n) {
  if (lua_cpcall(L, grow_stack, (void *)(intptr_t)n) == 0) return true;
  lua_pop(L, 1);
  return false;
}
/* Largest magnitude below which every integer is exact in a double. */
#define EXACT_INT_MAX 9007199254740992.0

/* ---- jansson -> Lua ------------------------------------------------- */

/* Pushes exactly one value whatever happens, so a failure deep inside
 * leaves the stack balanced: the partial table is replaced by nil. */
static int push_value(lua_State *L, const json_t *v, int depth) {
  bool nested = json_is_object(v) || json_is_array(v);
  if (depth >= MAX_DEPTH && nested) {
    lua_pushnil(L);
    return RM_ETOOBIG;
  }
  /* Two slots per level (key and value) plus the metatable lookup. */
  if (nested && depth % CHUNK == 0 && !reserve(L, 2 * CHUNK + 8)) {
    lua_pushnil(L);
    return RM_ENOMEM;
  }
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    const char *key;
    size_t klen;
    json_t *child;
    lua_createtable(L, 0, (int)json_object_size(v));
    /* json_object_keylen_foreach takes a non-const object but only reads. */
    json_object_keylen_foreach((json_t *)v, key, klen, child) {
      lua_pushlstring(L, key, klen);
      int rc = push_value(L, child, depth + 1);
      if (rc) {
        lua_pop(L, 3);
        lua_pushnil(L);
        return rc;
      }
      lua_rawset(L, -3);
    }
    return 0;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(v);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      int rc = push_value(L, json_array_get(v, i), depth + 1);
      if (rc) {
        lua_pop(L, 2);
        lua_pushnil(L);
        return rc;
      }
      lua_rawseti(L, -2, (int)i + 1);
    }
    rm_lua_push_array_mt(L);
    lua_setmetatable(L, -2);
    return 0;
  }
  case JSON_STRING:
    lua_pushlstring(L, json_string_value(v), json_string_length(v));
    return 0;
  case JSON_INTEGER:
    lua_pushnumber(L, (lua_Number)json_integer_value(v));
    return 0;
  case JSON_REAL:
    lua_pushnumber(L, json_real_value(v));
    return 0;
  case JSON_TRUE:
    lua_pushboolean(L, 1);
    return 0;
  case JSON_FALSE:
    lua_pushboolean(L, 0);
    return 0;
  case JSON_NULL:
  default:
    lua_pushlightuserdata(L, NULL);
    return 0;
  }
}

int rm_lua_push_json(lua_State *L, const json_t *v) { return push_value(L, v, 0); }

void rm_lua_push_array_mt(lua_State *L) {
  if (luaL_newmetatable(L, RM_JSON_ARRAY_MT)) {
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
  }
}

/* ---- Lua -> jansson ------------------------------------------------- */

typedef struct to_ctx {
  lua_State *L;
  int array_mt;                      /* stack index of the array metatable */
  char path[256];                    /* "$.a[2]" of the value being converted */
  size_t plen;
  const void *open[MAX_DEPTH];       /* tables on the current path */
  int nopen;
  char *err;
  size_t errlen;
} to_ctx;

static void fail(to_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(to_ctx *c, const char *fmt, ...) {
  if (!c->err || !c->errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, c->errlen, fmt, ap);
  va_end(ap);
}

static int is_ident(const char *s, size_t n) {
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    int ok = ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             (i > 0 && ch >= '0' && ch <= '9');
    if (!ok) return 0;
  }
  return 1;
}

/* Appends a path segment; a path too long for the buffer is cut with
 * "..." so messages stay readable. Returns the old length to restore. */
static size_t path_push(to_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_push(to_ctx *c, const char *fmt, ...) {
  size_t old = c->plen;
  size_t room = sizeof c->path - c->plen;
  if (room <= 4) return old;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(c->path + c->plen, room, fmt, ap);
  va_end(ap);
  if (n < 0) {
    c->path[old] = '\0';
  } else if ((size_t)n >= room) {
    memcpy(c->path + sizeof c->path - 4, "...", 4);
    c->plen = sizeof c->path - 1;
  } else {
    c->plen += (size_t)n;
  }
  return old;
}

static void path_pop(to_ctx *c, size_t old) {
  c->plen = old;
  c->path[old] = '\0';
}

static void path_push_key(to_ctx *c, const char *k, size_t n, size_t *old) {
  if (is_ident(k, n))
    *old = path_push(c, ".%.*s", (int)n, k);
  else
    *old = path_push(c, "[\"%.*s\"]", n > 40 ? 40 : (int)n, k);
}

static json_t *convert(to_ctx *c, int idx, int depth);

static int is_index(lua_Number d) {
  return d >= 1 && d <= EXACT_INT_MAX && d == floor(d);
}

/* Describes the key on top of the stack without converting it in place
 * (lua_tolstring on a number key would break lua_next). */
static void key_desc(lua_State *L, char *out, size_t n) {
  int t = lua_type(L, -1);
  if (t == LUA_TNUMBER)
    snprintf(out, n, "%.17g", lua_tonumber(L, -1));
  else if (t == LUA_TBOOLEAN)
    snprintf(out, n, "%s", lua_toboolean(L, -1) ? "true" : "false");
  else
    snprintf(out, n, "(%s)", lua_typename(L, t));
}

static json_t *convert_array(to_ctx *c, int idx, size_t n, int depth) {
  lua_State *L = c->L;
  json_t *arr = json_array();
  if (!arr) {
    fail(c, "out of memory at %s", c->path);
    return NULL;
  }
  for (size_t i = 1; i <= n; i++) {
    size_t old = path_push(c, "[%zu]", i);
    lua_rawgeti(L, idx, (int)i);
    json_t *item = convert(c, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
    path_pop(c, old);
    if (!item || json_array_append_new(arr, item)) {
      if (item) fail(c, "out of memory at %s", c->path);
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

static json_t *convert_object(to_ctx *c, int idx, int depth) {
  lua_State *L = c->L;
  json_t *obj = json_object();
  if (!obj) {
    fail(c, "out of memory at %s", c->path);
    return NULL;
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t klen;
    const char *k = lua_tolstring(L, -2, &klen);
    size_t old;
    path_push_key(c, k, klen, &old);
    json_t *item = convert(c, lua_gettop(L), depth + 1);
    path_pop(c, old);
    if (!item) {
      lua_pop(L, 2);
      json_decref(obj);
      return NULL;
    }
    if (json_object_setn_new(obj, k, klen, item)) {
      fail(c, "key \"%.*s\" of table at %s is not valid UTF-8", klen > 40 ? 40 : (int)klen, k,
           c->path);
      lua_pop(L, 2);
      json_decref(obj);
      return NULL;
    }
    lua_pop(L, 1);
  }
  return obj;
}

/* Decides array or object for the table at idx, then converts it. */
static json_t *convert_table(to_ctx *c, int idx, int depth) {
  lua_State *L = c->L;
  const void *self = lua_topointer(L, idx);
  for (int i = 0; i < c->nopen; i++) {
    if (c->open[i] == self) {
      fail(c, "cycle at %s", c->path);
      return NULL;
    }
  }
  if (depth >= MAX_DEPTH) {
    fail(c, "nesting deeper than %d at %s", MAX_DEPTH, c->path);
    return NULL;
  }
  /* Per level: the key, the value and a metatable; made before this
   * level allocates anything. */
  if (depth > 0 && depth % CHUNK == 0 && !reserve(L, 3 * CHUNK + 8)) {
    fail(c, "out of memory at %s", c->path);
    return NULL;
  }

  int marked = 0;
  if (lua_getmetatable(L, idx)) {
    marked = lua_rawequal(L, -1, c->array_mt);
    lua_pop(L, 1);
  }

  /* One pass over the keys: how many, the largest index, and the first
   * key that is not an index (any type) or not a string (for objects). */
  size_t count = 0, max = 0;
  char not_index[64] = "", not_string[64] = "";
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    int t = lua_type(L, -1);
    if (t == LUA_TNUMBER && is_index(lua_tonumber(L, -1))) {
      size_t k = (size_t)lua_tonumber(L, -1);
      if (k > max) max = k;
    } else if (!not_index[0]) {
      if (t == LUA_TSTRING)
        snprintf(not_index, sizeof not_index, "\"%.40s\"", lua_tostring(L, -1));
      else
        key_desc(L, not_index, sizeof not_index);
    }
    if (t != LUA_TSTRING && !not_string[0]) key_desc(L, not_string, sizeof not_string);
  }

  json_t *out = NULL;
  c->open[c->nopen++] = self;
  if (marked) {
    if (not_index[0])
      fail(c, "key %s of array at %s is not an index", not_index, c->path);
    else if (max != count)
      fail(c, "array at %s has holes (use json.null)", c->path);
    else
      out = convert_array(c, idx, count, depth);
  } else if (count > 0 && !not_index[0] && max == count) {
    out = convert_array(c, idx, count, depth);
  } else if (not_string[0]) {
    fail(c, "key %s of table at %s is not a string", not_string, c->path);
  } else {
    out = convert_object(c, idx, depth);
  }
  c->nopen--;
  return out;
}

static json_t *convert(to_ctx *c, int idx, int depth) {
  lua_State *L = c->L;
  json_t *out = NULL;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    out = json_null();
    break;
  case LUA_TBOOLEAN:
    out = json_boolean(lua_toboolean(L, idx));
    break;
  case LUA_TNUMBER: {
    lua_Number d = lua_tonumber(L, idx);
    if (isnan(d)) {
      fail(c, "NaN at %s", c->path);
      return NULL;
    }
    if (isinf(d)) {
      fail(c, "infinity at %s", c->path);
      return NULL;
    }
    if (d == floor(d) && fabs(d) <= EXACT_INT_MAX)
      out = json_integer((json_int_t)d);
    else
      out = json_real(d);
    break;
  }
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    out = json_stringn(s, n);
    if (!out) {
      fail(c, "invalid UTF-8 in string at %s", c->path);
      return NULL;
    }
    break;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) {
      out = json_null();
      break;
    }
    fail(c, "light userdata at %s", c->path);
    return NULL;
  case LUA_TTABLE:
    return convert_table(c, idx, depth);
  default:
    fail(c, "%s at %s", lua_typename(L, lua_type(L, idx)), c->path);
    return NULL;
  }
  if (!out) fail(c, "out of memory at %s", c->path);
  return out;
}

json_t *rm_lua_to_json(lua_State *L, int idx, char *err, size_t errlen) {
  if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
  if (err && errlen) err[0] = '\0';
  if (!reserve(L, 3 * CHUNK + 16)) { /* the first levels, and the array metatable */
    if (err && errlen) snprintf(err, errlen, "out of memory");
    return NULL;
  }
  rm_lua_push_array_mt(L);
  to_ctx c = {.L = L, .array_mt = lua_gettop(L), .path = "$", .plen = 1, .err = err,
              .errlen = errlen};
  json_t *out = convert(&c, idx, 0);
  lua_pop(L, 1);
  return out;
}
