/* The one list of pure modules, shared by the plugin sandbox and
 * restmon_native.so. */
#include "lua/modules.h"

#include <lauxlib.h>
#include <stddef.h>
#include <string.h>

const rm_lua_module rm_lua_pure_modules[] = {
    {"json", rm_lua_open_json},
    {"jsonpath", rm_lua_open_jsonpath},
    {"xml", rm_lua_open_xml},
    {"re", rm_lua_open_re},
    {"codec", rm_lua_open_codec},
    {"notify", rm_lua_open_notify},
    {NULL, NULL},
};

void *rm_lua_new_box(lua_State *L, size_t n, const char *tname, lua_CFunction gc) {
  void *p = lua_newuserdata(L, n);
  memset(p, 0, n);
  if (luaL_newmetatable(L, tname)) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushstring(L, tname);
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
  return p;
}
