/* restmon_native.so: the pure modules for plain LuaJIT, so the Lua
 * runtime library is tested with busted against the same C code the
 * daemon runs. `local native = require "restmon_native"` gives
 * {json=..., jsonpath=..., xml=..., re=..., codec=...}. */
#include <lua.h>

#include "lua/modules.h"

int luaopen_restmon_native(lua_State *L);

int luaopen_restmon_native(lua_State *L) {
  lua_newtable(L);
  for (const rm_lua_module *m = rm_lua_pure_modules; m->name; m++) {
    lua_pushcfunction(L, m->open);
    lua_call(L, 0, 1);
    lua_setfield(L, -2, m->name);
  }
  return 1;
}
