-- Loads restmon_native.so for the busted specs. The build directory
-- defaults to ./build/rel (run busted from the repository root);
-- RESTMON_NATIVE_DIR points it elsewhere, e.g. at an ASan build.
local dir = os.getenv("RESTMON_NATIVE_DIR") or "./build/rel"
local entry = dir .. "/?.so"
if not package.cpath:find(entry, 1, true) then
  package.cpath = entry .. ";" .. package.cpath
end

local helper = {}

helper.native = require "restmon_native"

-- CPU seconds spent in fn, for asserting that limits stop work fast.
function helper.timed(fn)
  local t0 = os.clock()
  local a, b = fn()
  return os.clock() - t0, a, b
end

-- A string of n nested arrays: "[[[...]]]".
function helper.nested_arrays(n)
  return string.rep("[", n) .. string.rep("]", n)
end

return helper
