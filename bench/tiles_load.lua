-- wrk script for bench/bench_tiles.py: cycle through a list of tile paths, report JSON.
--
--   wrk -t2 -c100 -d10s --latency -s bench/tiles_load.lua http://127.0.0.1:8001 -- paths.txt
--
-- paths.txt holds one request path per line (with its query string). Each thread starts at
-- a different place in the list, so the connections do not march over the tiles in step.
-- done() prints one line, "BENCH_JSON {...}", with the counts, the errors by kind and the
-- latency percentiles in microseconds. No response() hook: defining one makes wrk hand
-- every response to Lua, which would slow the client, and wrk already counts statuses
-- >= 400 in summary.errors.status.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local file = args[1]
   if file == nil then
      error("tiles_load.lua: give the path list after --")
   end
   paths = {}
   for line in io.lines(file) do
      if #line > 0 then
         table.insert(paths, line)
      end
   end
   if #paths == 0 then
      error("tiles_load.lua: no paths in " .. file)
   end
   -- spread the threads' starting points over the list
   local nthreads = tonumber(args[2] or "1")
   counter = math.floor((id or 0) * #paths / math.max(nthreads, 1))
end

function request()
   counter = counter + 1
   return wrk.format("GET", paths[(counter % #paths) + 1])
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"p50": %d, "p95": %d, "p99": %d, "mean": %.1f, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(95), latency:percentile(99),
      latency.mean, latency.max))
end
