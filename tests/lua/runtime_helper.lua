-- Loaded by every runtime spec (dofile from the repository root): finds the
-- runtime library in ./lua and the native modules in the release build
-- (tests/lua/helper.lua: ./build/rel, or RESTMON_NATIVE_DIR), and gives
-- the host side of an attempt context (compile, new_env) the way the
-- engine provides it, with plain LuaJIT instead of a sandbox.
package.path = "./lua/?.lua;" .. package.path
dofile("tests/lua/helper.lua")
package.preload["restmon.native"] = function() return require "restmon_native" end

local native = require "restmon.native"

local helper = { native = native }

local SAFE = { "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring",
               "type", "unpack" }

-- A fresh environment for custom Lua: safe globals and the native modules.
function helper.new_env()
  local env = { string = string, table = table, math = math }
  for _, name in ipairs(SAFE) do env[name] = _G[name] end
  for name, mod in pairs(native) do env[name] = mod end
  env.log = function() end
  return env
end

-- Text-only compile into env, as the host's compiler does.
function helper.compile(src, chunkname, env)
  return load(src, chunkname, "t", env)
end

-- A plugin whose run returns the given values (a canned response, or nil
-- and an error string), the plugin contract in its smallest form.
function helper.plugin(...)
  local n, values = select("#", ...), { ... }
  return { run = function() return unpack(values, 1, n) end }
end

-- A JSON response with status 200 unless given.
function helper.json_response(body, fields)
  local r = { status = 200, headers = { ["content-type"] = "application/json" },
              body = type(body) == "string" and body or native.json.encode(body), duration_ms = 12 }
  for k, v in pairs(fields or {}) do r[k] = v end
  return r
end

-- An attempt context: the task (a Lua table or JSON text, decoded so that
-- arrays carry json.array_mt as the engine's are), the plugin, and options
-- overriding the other fields.
function helper.ctx(task, plugin, opts)
  if type(task) == "string" then task = assert(native.json.decode(task)) end
  local ctx = { task_name = "t", task = task or {}, vars = {}, inputs = {}, attempt = 1, dry_run = false,
                plugin = plugin, compile = helper.compile, new_env = helper.new_env }
  for k, v in pairs(opts or {}) do ctx[k] = v end
  return ctx
end

-- Runs one attempt of task against a canned response.
function helper.run(task, response, opts)
  local runtime = require "restmon.runtime"
  return runtime.run_attempt(helper.ctx(task, helper.plugin(response), opts))
end

return helper
