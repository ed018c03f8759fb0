/* Converting between jansson values and Lua values.
 *
 * Lua representation (the same everywhere in RestMon):
 *   object -> table with string keys
 *   array  -> table 1..n with the shared metatable json.array_mt
 *             (registry key RM_JSON_ARRAY_MT), so [] and {} stay distinct
 *   null   -> json.null, the light userdata NULL
 *   number -> number (integers that fit exactly stay integral)
 * Encoding a Lua table: array_mt or keys exactly 1..n (n >= 1) -> array;
 * otherwise an object whose keys must all be strings; an empty table with
 * no array_mt -> {}. Object keys are written sorted, so output is stable.
 */
#ifndef RM_LUA_JSON_BRIDGE_H
#define RM_LUA_JSON_BRIDGE_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

#define RM_JSON_ARRAY_MT "restmon.json.array_mt"

/* Pushes the Lua form of v (borrowed). Nesting deeper than 256 pushes
 * nil and returns RM_ETOOBIG. 0 on success. */
int rm_lua_push_json(lua_State *L, const json_t *v);

/* Converts the Lua value at idx to a new jansson value (caller decrefs).
 * On failure returns NULL and writes why into err (e.g. "key 3 of table
 * at $.items is not a string", "cycle at $.a.b", "function at $.f"). */
json_t *rm_lua_to_json(lua_State *L, int idx, char *err, size_t errlen);

/* Pushes the shared array metatable (created on first use). */
void rm_lua_push_array_mt(lua_State *L);

#endif
