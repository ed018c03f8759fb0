-- wrk script of bench/bench_api.py: GET requests with a Bearer token,
-- rotating through a list of paths, optionally paced to a fixed total
-- rate, and one JSON line of results at the end (so the caller never
-- scrapes wrk's text report).
--
-- Environment:
--   API_TOKEN       the Bearer token (required)
--   API_PATHS       a file of request paths, one a line (required)
--   API_RATE        requests/s over all threads; 0 or unset = as fast as
--                   the connections go
--   API_THREADS     wrk's -t, for the per-thread share of API_RATE
--
-- Pacing: wrk calls delay() once before each request of a connection
-- (after the previous answer on it). Each thread keeps one schedule of
-- send slots API_THREADS/API_RATE seconds apart and hands every request
-- the next free slot, so the thread sends at its share of the rate while
-- it has idle connections, whatever the latency. A slot never lies in the
-- past: a server that falls behind is not sent a catch-up burst, and the
-- achieved rate (printed) then stays below the target. Latency is wrk's,
-- from sending a request to its answer; the wait for a slot is not in it.

local ffi = require("ffi")

ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } rm_timespec;
  int clock_gettime(int clk, rm_timespec *ts);
]]

local CLOCK_MONOTONIC = 1
local ts = ffi.new("rm_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local function read_paths(file)
  local paths = {}
  local f = assert(io.open(file, "r"), "API_PATHS: cannot open " .. file)
  for line in f:lines() do
    if line ~= "" then paths[#paths + 1] = line end
  end
  f:close()
  assert(#paths > 0, "API_PATHS: no path in " .. file)
  return paths
end

local token = assert(os.getenv("API_TOKEN"), "API_TOKEN is not set")
local paths = read_paths(assert(os.getenv("API_PATHS"), "API_PATHS is not set"))
local rate = tonumber(os.getenv("API_RATE") or "0") or 0
local nthreads = tonumber(os.getenv("API_THREADS") or "1") or 1

wrk.method = "GET"
wrk.path = paths[1]
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Accept"] = "application/json"

-- In wrk's main Lua state: numbers the threads.
local started = 0

function setup(thread)
  started = started + 1
  thread:set("thread_no", started)
end

-- Per thread (each has its own Lua state).
local next_i = 1
local interval_ms = 0
local next_slot = 0

function init(args)
  local no = rawget(_G, "thread_no") or 1
  -- Threads start at different places in the list.
  next_i = ((no - 1) * math.floor(#paths / nthreads)) % #paths + 1
  if rate > 0 then interval_ms = 1000.0 * nthreads / rate end
end

-- Only defined when needed: without request() wrk sends one prepared
-- request, without delay() it sends back to back.
if #paths > 1 then
  function request()
    local p = paths[next_i]
    next_i = next_i % #paths + 1
    return wrk.format(nil, p)
  end
end

if rate > 0 then
  function delay()
    local now = now_ms()
    if next_slot < now then next_slot = now end
    local wait = next_slot - now
    next_slot = next_slot + interval_ms
    return math.floor(wait + 0.5)
  end
end

function done(summary, latency, requests)
  local pct = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    pct[#pct + 1] = string.format('"%s": %.1f', tostring(p), latency:percentile(p))
  end
  local e = summary.errors
  io.write(string.format(
    '{"wrk_json": 1, "duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %.1f, "mean": %.1f, "max": %.1f, "stdev": %.1f, "percentiles": {%s}}, ' ..
    '"paths": %d, "target_rate": %.1f}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev, table.concat(pct, ", "),
    #paths, rate))
end
