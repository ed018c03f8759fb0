/* The task types: plugins built into the binary (plugins/ at build time)
 * and those an admin drops into a plugin folder (one folder each, with
 * manifest.json and plugin.lua), which override built-ins of that name. */
#ifndef RM_LUA_PLUGINS_H
#define RM_LUA_PLUGINS_H

#include <jansson.h>
#include <stddef.h>

/* Returns a new object name -> {"manifest": {...}, "code": "...", "path":
 * "..."} (caller decrefs), or NULL with the plugin and file in err. dir
 * may be NULL or missing (then only built-ins). */
json_t *rm_lua_plugins_load(const char *dir, char *err, size_t errlen);

#endif
