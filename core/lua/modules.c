/* The one list of pure modules, shared by the plugin sandbox and
 * restmon_native.so. */
#include "lua/modules.h"

#include <stddef.h>

const rm_lua_module rm_lua_pure_modules[] = {
    {"json", rm_lua_open_json},
    {"jsonpath", rm_lua_open_jsonpath},
    {"xml", rm_lua_open_xml},
    {"re", rm_lua_open_re},
    {"codec", rm_lua_open_codec},
    {NULL, NULL},
};
