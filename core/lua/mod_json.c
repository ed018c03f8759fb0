/* The json module: decode, encode, null, array_mt, array, doc.
 *
 * Every jansson value or output buffer that exists while Lua may raise
 * (an allocation refused by the sandbox's memory cap) lives in a doc
 * userdata whose __gc frees it, so a raised error never strands C memory.
 * The doc's first member is its json_t pointer: mod_jsonpath.c reads
 * json.doc values through that layout and the registry name below. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/json_bridge.h"
#include "lua/modules.h"
#include "util/buf.h"
#include "util/json_str.h"

#define DOC_MT "restmon.json.doc"
#define MAX_TEXT ((size_t)64 << 20)

typedef struct json_doc {
  json_t *root; /* first member: read by mod_jsonpath.c */
  rm_buf text;  /* encode output, before it becomes a Lua string */
} json_doc;

static int doc_gc(lua_State *L) {
  json_doc *d = luaL_checkudata(L, 1, DOC_MT);
  json_decref(d->root);
  d->root = NULL;
  rm_buf_free(&d->text);
  return 0;
}

static int doc_tostring(lua_State *L) {
  lua_pushfstring(L, "json.doc: %p", lua_touserdata(L, 1));
  return 1;
}

/* Pushes a new, empty doc userdata. */
static json_doc *doc_new(lua_State *L) {
  json_doc *d = lua_newuserdata(L, sizeof *d);
  memset(d, 0, sizeof *d);
  if (luaL_newmetatable(L, DOC_MT)) {
    lua_pushcfunction(L, doc_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, doc_tostring);
    lua_setfield(L, -2, "__tostring");
    /* Plugins must not reach __gc: calling it by hand would free twice. */
    lua_pushliteral(L, "json.doc");
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
  return d;
}

static int fail(lua_State *L, const char *code, const char *msg) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", code, msg);
  return 2;
}

/* Parses the string argument at idx into a new doc pushed on the stack.
 * Returns 1 on success, else pushes nil and the error and returns 2.
 * Integers too large for jansson are kept as reals rather than refused:
 * they are valid JSON. */
static int parse_doc(lua_State *L, int idx) {
  size_t len;
  const char *text = luaL_checklstring(L, idx, &len);
  if (len > MAX_TEXT) {
    lua_pushnil(L);
    lua_pushfstring(L, "E_TOOBIG: JSON text is over the %d MiB limit", (int)(MAX_TEXT >> 20));
    return 2;
  }
  json_doc *d = doc_new(L);
  size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
  json_error_t e;
  d->root = json_loadb(text, len, flags, &e);
  if (!d->root && json_error_code(&e) == json_error_numeric_overflow)
    d->root = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, &e);
  if (!d->root) {
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_pushfstring(L, "E_PARSE: line %d column %d: %s", e.line, e.column, e.text);
    return 2;
  }
  return 1;
}

/* json.decode(text) -> value | nil, err */
static int l_decode(lua_State *L) {
  int n = parse_doc(L, 1);
  if (n != 1) return n;
  json_doc *d = lua_touserdata(L, -1);
  if (rm_lua_push_json(L, d->root)) return fail(L, "E_TOOBIG", "JSON nesting deeper than 256");
  json_decref(d->root);
  d->root = NULL;
  return 1;
}

/* json.doc(text) -> doc | nil, err */
static int l_doc(lua_State *L) {
  return parse_doc(L, 1);
}

/* ---- encoding -------------------------------------------------------- */

typedef struct enc {
  rm_buf *b;
  int pretty;
  int rc;
} enc;

static void put(enc *e, const char *s, size_t n) {
  if (!e->rc) e->rc = rm_buf_append(e->b, s, n);
}

static void newline(enc *e, int level) {
  if (!e->pretty) return;
  put(e, "\n", 1);
  for (int i = 0; i < level; i++) put(e, "  ", 2);
}

/* The shortest of %.15g..%.17g that reads back as the same double. */
static void put_real(enc *e, double d) {
  char tmp[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  put(e, tmp, strlen(tmp));
}

typedef struct member {
  const char *key;
  size_t klen;
  json_t *value;
} member;

static int member_cmp(const void *a, const void *b) {
  const member *x = a, *y = b;
  size_t n = x->klen < y->klen ? x->klen : y->klen;
  int c = memcmp(x->key, y->key, n);
  if (c) return c;
  return (x->klen > y->klen) - (x->klen < y->klen);
}

static void put_value(enc *e, json_t *v, int level);

/* Objects are written with their keys in byte order, so the same value
 * always gives the same text. */
static void put_object(enc *e, json_t *v, int level) {
  size_t n = json_object_size(v), i = 0;
  if (n == 0) {
    put(e, "{}", 2);
    return;
  }
  member *m = malloc(n * sizeof *m);
  if (!m) {
    e->rc = -1;
    return;
  }
  const char *key;
  size_t klen;
  json_t *child;
  json_object_keylen_foreach(v, key, klen, child) {
    m[i++] = (member){key, klen, child};
  }
  qsort(m, n, sizeof *m, member_cmp);
  put(e, "{", 1);
  for (i = 0; i < n && !e->rc; i++) {
    if (i) put(e, ",", 1);
    newline(e, level + 1);
    if (!e->rc) e->rc = rm_json_strn_append(e->b, m[i].key, m[i].klen);
    put(e, e->pretty ? ": " : ":", e->pretty ? 2 : 1);
    put_value(e, m[i].value, level + 1);
  }
  free(m);
  newline(e, level);
  put(e, "}", 1);
}

static void put_value(enc *e, json_t *v, int level) {
  char tmp[32];
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    put_object(e, v, level);
    break;
  case JSON_ARRAY: {
    size_t n = json_array_size(v);
    if (n == 0) {
      put(e, "[]", 2);
      break;
    }
    put(e, "[", 1);
    for (size_t i = 0; i < n && !e->rc; i++) {
      if (i) put(e, ",", 1);
      newline(e, level + 1);
      put_value(e, json_array_get(v, i), level + 1);
    }
    newline(e, level);
    put(e, "]", 1);
    break;
  }
  case JSON_STRING:
    if (!e->rc) e->rc = rm_json_strn_append(e->b, json_string_value(v), json_string_length(v));
    break;
  case JSON_INTEGER:
    snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    put(e, tmp, strlen(tmp));
    break;
  case JSON_REAL:
    put_real(e, json_real_value(v));
    break;
  case JSON_TRUE:
    put(e, "true", 4);
    break;
  case JSON_FALSE:
    put(e, "false", 5);
    break;
  case JSON_NULL:
  default:
    put(e, "null", 4);
    break;
  }
}

/* json.encode(value [, {pretty=true}]) -> text | nil, err
 * A json.doc is written as the document it holds. */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  int pretty = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "pretty");
    pretty = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  json_doc *src = luaL_testudata(L, 1, DOC_MT);
  json_doc *d = doc_new(L);
  if (src && src->root) {
    d->root = json_incref(src->root);
  } else {
    char err[320];
    d->root = rm_lua_to_json(L, 1, err, sizeof err);
    if (!d->root) return fail(L, "E_INVALID", err);
  }
  enc e = {.b = &d->text, .pretty = pretty};
  put_value(&e, d->root, 0);
  if (e.rc) return fail(L, "E_NOMEM", "out of memory encoding JSON");
  lua_pushlstring(L, d->text.data, d->text.len);
  json_decref(d->root);
  d->root = NULL;
  rm_buf_free(&d->text);
  return 1;
}

/* json.array([t]) -> t, marked as an array (a new one without t). */
static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
  }
  rm_lua_push_array_mt(L);
  lua_setmetatable(L, 1);
  return 1;
}

static const luaL_Reg json_funcs[] = {
    {"decode", l_decode},
    {"encode", l_encode},
    {"array", l_array},
    {"doc", l_doc},
    {NULL, NULL},
};

int rm_lua_open_json(lua_State *L) {
  luaL_newlib(L, json_funcs);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  rm_lua_push_array_mt(L);
  lua_setfield(L, -2, "array_mt");
  return 1;
}
