-- wrk script: POST JSON bodies and print a one-line JSON summary (with every status counted) at
-- the end, for bench/load.py to read. Arguments after `--`, as key=value:
--   body=FILE        one body for every request, or
--   signed=FILE      lines "signature<TAB>timestamp<TAB>action<TAB>body": pre-signed Destination
--                    callbacks, a different one per request (thread n of t sends lines n+1,
--                    n+1+t, ...; a thread that runs out starts again and counts the wrap: a
--                    replayed callback is acknowledged but not stored again)
--   skip=N           with signed=: start after the first N lines (an earlier run used them)
--   auth=VALUE       an Authorization header
--   threads=T        wrk's -t (a thread cannot see how many there are)
--   slow_ms=N        also count the responses that took N ms or longer ("slow" in the summary),
--                    timed by the thread itself: exact only with one connection per thread
--                    (-t equal to -c), where each response answers the thread's last request.
--                    wrk's own latency figures cannot give this count: it adds corrected
--                    samples to its distribution for responses slower than the usual interval.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local options = {}
  for _, arg in ipairs(args) do
    local key, value = arg:match("^([%w_]+)=(.*)$")
    options[key] = value
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if options.auth then
    wrk.headers["Authorization"] = options.auth
  end
  if options.body then
    local file = assert(io.open(options.body, "rb"))
    wrk.body = file:read("*a")
    file:close()
  end
  signed = {}
  if options.signed then
    for line in io.lines(options.signed) do
      local signature, timestamp, action, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      table.insert(signed, {signature, timestamp, action, body})
    end
  end
  step = tonumber(options.threads or "1")
  next_line = tonumber(options.skip or "0") + id + 1
  wraps = 0
  statuses = {}
  slow_ms = tonumber(options.slow_ms or "0")
  slow = 0
  sent_ms = 0
end

function request()
  sent_ms = now_ms()
  if #signed == 0 then
    return wrk.format()
  end
  if next_line > #signed then
    next_line = id + 1
    wraps = wraps + 1
  end
  local row = signed[next_line]
  next_line = next_line + step
  return wrk.format(nil, nil, {
    ["X-Lead-Router-Signature"] = row[1],
    ["X-Lead-Router-Timestamp"] = row[2],
    ["X-Lead-Router-Action"] = row[3],
  }, row[4])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if slow_ms > 0 and now_ms() - sent_ms >= slow_ms then
    slow = slow + 1
  end
end

function done(summary, latency, requests)
  local counts, wrapped, slow_total = {}, 0, 0
  for _, thread in ipairs(threads) do
    wrapped = wrapped + thread:get("wraps")
    slow_total = slow_total + thread:get("slow")
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, '"' .. status .. '":' .. n)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},'
      .. '"statuses":{%s},"wraps":%d,"slow":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), table.concat(parts, ","), wrapped, slow_total))
end
