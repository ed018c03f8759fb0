/* The plugins: built into the binary (plugins/ at build time) and those an
 * admin drops into a plugin folder (one folder each, with manifest.json
 * and plugin.lua), which override built-ins of that name. A manifest's
 * "kind" says what a plugin is: a task type ("task", the default: its
 * code exports run(ctx)) or a notification channel type ("channel": its
 * code exports send(ctx); lua/channel.h). */
#ifndef RM_LUA_PLUGINS_H
#define RM_LUA_PLUGINS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Returns a new object name -> {"manifest": {...}, "code": "...", "path":
 * "..."} (caller decrefs), or NULL with the plugin and file in err. dir
 * may be NULL or missing (then only built-ins). */
json_t *rm_lua_plugins_load(const char *dir, char *err, size_t errlen);

/* Whether a manifest is a channel plugin's ("kind": "channel"). */
bool rm_lua_plugin_is_channel(const json_t *manifest);

#endif
