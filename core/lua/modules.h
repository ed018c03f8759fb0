/* Lua-facing modules. Each rm_lua_open_<x> pushes one new module table
 * onto the stack and returns 1, like a luaopen_ function.
 *
 * "Pure" modules (json, jsonpath, xml, re, codec, notify) neither yield nor touch
 * the event loop, so they are also exported to plain LuaJIT through
 * restmon_native.so (luaopen_restmon_native) for the busted tests.
 * Functions return nil, "E_CODE: message" on bad input; they raise
 * errors only for programming mistakes (wrong argument types). */
#ifndef RM_LUA_MODULES_H
#define RM_LUA_MODULES_H

#include <lua.h>

int rm_lua_open_json(lua_State *L);     /* mod_json.c */
int rm_lua_open_jsonpath(lua_State *L); /* mod_jsonpath.c */
int rm_lua_open_xml(lua_State *L);      /* mod_xml.c */
int rm_lua_open_re(lua_State *L);       /* mod_re.c */
int rm_lua_open_codec(lua_State *L);    /* mod_codec.c: base64, url, hex, sha256, hmac */
int rm_lua_open_notify(lua_State *L);   /* mod_notify.c: templates and layout of notifications */

typedef struct rm_lua_module {
  const char *name;
  lua_CFunction open;
} rm_lua_module;

/* Pushes a new zeroed userdata of size n whose protected metatable tname
 * has __gc = gc (modules.c). */
void *rm_lua_new_box(lua_State *L, size_t n, const char *tname, lua_CFunction gc);

/* The pure modules, NULL-terminated (modules.c). */
extern const rm_lua_module rm_lua_pure_modules[];

#endif
