/* The re module: PCRE2 regular expressions in UTF mode.
 *
 * Every match runs under a match limit, a depth limit and a heap limit,
 * so a pattern that backtracks catastrophically stops within
 * milliseconds with an E_REGEX error instead of stalling the engine: a
 * C call cannot be interrupted by the sandbox's instruction hook.
 * Subjects that are not valid UTF-8 are matched anyway
 * (PCRE2_MATCH_INVALID_UTF): a stray byte in a response body must not
 * make every check on it fail.
 *
 * Compiled patterns are cached per lua_State in a registry table keyed by
 * options and pattern, dropped whole when it reaches CACHE_MAX. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <lauxlib.h>
#include <pcre2.h>
#include <string.h>

#include "lua/json_bridge.h"
#include "lua/modules.h"

#define CODE_MT "restmon.re.code"
#define MATCH_MT "restmon.re.match"
#define CACHE_KEY "restmon.re.cache"
#define CACHE_MAX 256
#define MAX_PATTERN 65536
#define MATCH_LIMIT 1000000
#define DEPTH_LIMIT 10000
#define HEAP_LIMIT_KIB 65536
#define MAX_OUTPUT ((size_t)64 << 20)

typedef struct code_box {
  pcre2_code *code;
  pcre2_match_context *mctx;
} code_box;

/* Per-call scratch memory, freed by __gc if a Lua error cuts the call. */
typedef struct match_box {
  pcre2_match_data *md;
} match_box;

static int code_gc(lua_State *L) {
  code_box *b = luaL_checkudata(L, 1, CODE_MT);
  pcre2_code_free(b->code);
  pcre2_match_context_free(b->mctx);
  b->code = NULL;
  b->mctx = NULL;
  return 0;
}

static int match_gc(lua_State *L) {
  match_box *b = luaL_checkudata(L, 1, MATCH_MT);
  pcre2_match_data_free(b->md);
  b->md = NULL;
  return 0;
}


static uint32_t parse_flags(lua_State *L, int idx) {
  uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C;
  const char *f = luaL_optstring(L, idx, "");
  for (; *f; f++) {
    switch (*f) {
    case 'i': opts |= PCRE2_CASELESS; break;
    case 'm': opts |= PCRE2_MULTILINE; break;
    case 's': opts |= PCRE2_DOTALL; break;
    case 'x': opts |= PCRE2_EXTENDED; break;
    default: luaL_argerror(L, idx, "flags are a string of i, m, s, x");
    }
  }
  return opts;
}

static void push_pcre2_error(lua_State *L, int rc) {
  PCRE2_UCHAR msg[256];
  if (pcre2_get_error_message(rc, msg, sizeof msg) < 0) strcpy((char *)msg, "unknown error");
  lua_pushstring(L, (const char *)msg);
}

/* Returns the compiled pattern at idx with the flags at fidx, leaving its
 * userdata on the stack; or NULL after pushing nil and the error. */
static code_box *compiled(lua_State *L, int idx, int fidx) {
  size_t plen;
  const char *pat = luaL_checklstring(L, idx, &plen);
  uint32_t opts = parse_flags(L, fidx);
  if (plen > MAX_PATTERN) {
    lua_pushnil(L);
    lua_pushfstring(L, "E_REGEX: pattern is over the %d byte limit", MAX_PATTERN);
    return NULL;
  }

  lua_getfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 16);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
  }
  lua_pushfstring(L, "%d/", (int)opts);
  lua_pushvalue(L, idx);
  lua_concat(L, 2);
  lua_pushvalue(L, -1);
  lua_rawget(L, -3);
  code_box *b = luaL_testudata(L, -1, CODE_MT);
  if (b && b->code) {
    lua_replace(L, -3);
    lua_pop(L, 1);
    return b;
  }
  lua_pop(L, 1);

  /* Stack: cache, key. The count lives at integer key 0. */
  lua_rawgeti(L, -2, 0);
  int count = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (count >= CACHE_MAX) {
    lua_createtable(L, 0, 16);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
    lua_replace(L, -3);
    count = 0;
  }

  b = rm_lua_new_box(L, sizeof *b, CODE_MT, code_gc);
  int err;
  PCRE2_SIZE erroff;
  b->code = pcre2_compile((PCRE2_SPTR)pat, plen, opts, &err, &erroff, NULL);
  if (!b->code) {
    lua_pop(L, 3);
    lua_pushnil(L);
    lua_pushliteral(L, "E_REGEX: at offset ");
    lua_pushinteger(L, (lua_Integer)erroff);
    lua_pushliteral(L, ": ");
    push_pcre2_error(L, err);
    lua_concat(L, 4);
    return NULL;
  }
  b->mctx = pcre2_match_context_create(NULL);
  if (!b->mctx) luaL_error(L, "out of memory");
  pcre2_set_match_limit(b->mctx, MATCH_LIMIT);
  pcre2_set_depth_limit(b->mctx, DEPTH_LIMIT);
  pcre2_set_heap_limit(b->mctx, HEAP_LIMIT_KIB);

  /* Stack: cache, key, box. */
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  lua_rawset(L, -5);
  lua_pushinteger(L, count + 1);
  lua_rawseti(L, -4, 0);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return b;
}

/* Pushes nil and the error for a failed pcre2_match/substitute code. */
static int match_error(lua_State *L, int rc) {
  lua_pushnil(L);
  switch (rc) {
  case PCRE2_ERROR_MATCHLIMIT:
  case PCRE2_ERROR_DEPTHLIMIT:
  case PCRE2_ERROR_HEAPLIMIT:
    lua_pushliteral(L, "E_REGEX: pattern backtracks too much (");
    push_pcre2_error(L, rc);
    lua_pushliteral(L, ")");
    lua_concat(L, 3);
    break;
  default:
    lua_pushliteral(L, "E_REGEX: ");
    push_pcre2_error(L, rc);
    lua_concat(L, 2);
  }
  return 2;
}

/* Pushes the captures table for a successful match: [0] the whole match,
 * [1..n] the groups, and named groups by name; unset groups are false. */
static void push_captures(lua_State *L, const pcre2_code *code, pcre2_match_data *md,
                          const char *subject) {
  uint32_t ngroups = 0, namecount = 0, entsize = 0;
  PCRE2_SPTR table = NULL;
  pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &ngroups);
  pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &namecount);
  pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &entsize);
  pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &table);
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
  uint32_t npairs = pcre2_get_ovector_count(md);

  lua_createtable(L, (int)ngroups, (int)namecount + 1);
  for (uint32_t i = 0; i <= ngroups; i++) {
    if (i < npairs && ov[2 * i] != PCRE2_UNSET)
      lua_pushlstring(L, subject + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
    else
      lua_pushboolean(L, 0);
    lua_rawseti(L, -2, (int)i);
  }
  /* With (?J) several groups share a name: the one that matched wins. */
  for (uint32_t i = 0; i < namecount; i++) {
    PCRE2_SPTR ent = table + (size_t)i * entsize;
    int group = (ent[0] << 8) | ent[1];
    const char *name = (const char *)ent + 2;
    lua_getfield(L, -1, name);
    int have = lua_isstring(L, -1);
    lua_pop(L, 1);
    if (have) continue;
    lua_rawgeti(L, -1, group);
    lua_setfield(L, -2, name);
  }
}

/* Runs one match at offset; returns pcre2_match's code. */
static int run_match(code_box *b, match_box *m, const char *s, size_t len, size_t off,
                     uint32_t opts) {
  return pcre2_match(b->code, (PCRE2_SPTR)s, len, off, opts, m->md, b->mctx);
}

/* Checks the common arguments and leaves code and match boxes on the
 * stack. Returns NULL after pushing nil and the error. */
static code_box *prepare(lua_State *L, int fidx, match_box **m) {
  luaL_checktype(L, 1, LUA_TSTRING);
  luaL_checktype(L, 2, LUA_TSTRING);
  code_box *b = compiled(L, 2, fidx);
  if (!b) return NULL;
  *m = rm_lua_new_box(L, sizeof **m, MATCH_MT, match_gc);
  (*m)->md = pcre2_match_data_create_from_pattern(b->code, NULL);
  if (!(*m)->md) luaL_error(L, "out of memory");
  return b;
}

/* re.match(subject, pattern [, flags]) -> captures | nil | nil, err */
static int l_match(lua_State *L) {
  match_box *m;
  lua_settop(L, 3);
  code_box *b = prepare(L, 3, &m);
  if (!b) return 2;
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  int rc = run_match(b, m, s, len, 0, 0);
  if (rc == PCRE2_ERROR_NOMATCH) {
    lua_pushnil(L);
    return 1;
  }
  if (rc < 0) return match_error(L, rc);
  push_captures(L, b->code, m->md, s);
  return 1;
}

/* re.test(subject, pattern [, flags]) -> boolean | nil, err */
static int l_test(lua_State *L) {
  match_box *m;
  lua_settop(L, 3);
  code_box *b = prepare(L, 3, &m);
  if (!b) return 2;
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  int rc = run_match(b, m, s, len, 0, 0);
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) return match_error(L, rc);
  lua_pushboolean(L, rc >= 0);
  return 1;
}

/* re.find_all(subject, pattern [, flags]) -> array of captures | nil, err
 * After an empty match the next attempt must not be empty at the same
 * place; failing that, it moves on one character (not one byte). */
static int l_find_all(lua_State *L) {
  match_box *m;
  lua_settop(L, 3);
  code_box *b = prepare(L, 3, &m);
  if (!b) return 2;
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  lua_newtable(L);
  rm_lua_push_array_mt(L);
  lua_setmetatable(L, -2);
  int n = 0;
  size_t off = 0;
  uint32_t opts = 0;
  while (off <= len) {
    int rc = run_match(b, m, s, len, off, opts);
    if (rc == PCRE2_ERROR_NOMATCH) {
      if (!opts) break;
      opts = 0;
      off++;
      while (off < len && ((unsigned char)s[off] & 0xC0) == 0x80) off++;
      continue;
    }
    if (rc < 0) return match_error(L, rc);
    push_captures(L, b->code, m->md, s);
    lua_rawseti(L, -2, ++n);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
    off = ov[1];
    opts = ov[0] == ov[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
  }
  return 1;
}

/* re.gsub(subject, pattern, replacement [, flags]) -> text, count | nil, err
 * The replacement uses PCRE2's extended syntax: $1, ${name}, \u etc. */
static int l_gsub(lua_State *L) {
  match_box *m;
  lua_settop(L, 4);
  luaL_checktype(L, 3, LUA_TSTRING);
  code_box *b = prepare(L, 4, &m);
  if (!b) return 2;
  size_t len, rlen;
  const char *s = lua_tolstring(L, 1, &len);
  const char *rep = lua_tolstring(L, 3, &rlen);
  uint32_t opts = PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_EXTENDED |
                  PCRE2_SUBSTITUTE_UNSET_EMPTY | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH;
  PCRE2_SIZE outlen = len + len / 2 + 64;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (outlen > MAX_OUTPUT) {
      lua_pushnil(L);
      lua_pushfstring(L, "E_TOOBIG: result over the %d MiB limit", (int)(MAX_OUTPUT >> 20));
      return 2;
    }
    /* A userdata buffer: collected even if a later call raises. */
    PCRE2_UCHAR *out = lua_newuserdata(L, outlen + 1);
    PCRE2_SIZE got = outlen + 1;
    int rc = pcre2_substitute(b->code, (PCRE2_SPTR)s, len, 0, opts, m->md, b->mctx,
                              (PCRE2_SPTR)rep, rlen, out, &got);
    if (rc >= 0) {
      lua_pushlstring(L, (const char *)out, got);
      lua_pushinteger(L, rc);
      return 2;
    }
    lua_pop(L, 1);
    if (rc == PCRE2_ERROR_NOMEMORY) {
      outlen = got;
      continue;
    }
    if (rc == PCRE2_ERROR_BADREPLACEMENT || rc == PCRE2_ERROR_BADREPESCAPE ||
        rc == PCRE2_ERROR_BADSUBSTITUTION || rc == PCRE2_ERROR_BADSUBSPATTERN ||
        rc == PCRE2_ERROR_REPMISSINGBRACE || rc == PCRE2_ERROR_NOSUBSTRING ||
        rc == PCRE2_ERROR_UNKNOWN_ESCAPE) {
      lua_pushnil(L);
      lua_pushfstring(L, "E_REGEX: replacement at offset %d: ", (int)got);
      push_pcre2_error(L, rc);
      lua_concat(L, 2);
      return 2;
    }
    return match_error(L, rc);
  }
  return match_error(L, PCRE2_ERROR_NOMEMORY);
}

static const luaL_Reg re_funcs[] = {
    {"match", l_match},
    {"test", l_test},
    {"find_all", l_find_all},
    {"gsub", l_gsub},
    {NULL, NULL},
};

int rm_lua_open_re(lua_State *L) {
  luaL_newlib(L, re_funcs);
  return 1;
}
