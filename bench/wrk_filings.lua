-- wrk script for bench/load.py: POST /v1/filings, each request a distinct pre-built CEB message.
--
--   wrk -t T -c C -d 60s -s bench/wrk_filings.lua URL -- BODIES_FILE API_KEY T [PATH]
--
-- PATH is where each body is posted (default /v1/filings; bench/receipts.py: /v1/regulators/receipts).
-- BODIES_FILE holds records "<length>\n<body>"; thread k (0-based) takes records k, k+T, k+2T, ...
-- A thread that runs out of bodies stops; the request it must still return is a resend of its last
-- body, which swx answers as a replay (header Idempotent-Replayed), counted apart.
-- done() prints one line "WRK_RESULT {json}" with counts by status and latency percentiles (µs).

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local requests = {}
local n = 0
statuses = {}
replays = 0
exhausted = 0

function init(args)
   local path, key, nthreads = args[1], args[2], tonumber(args[3])
   local target = args[4] or "/v1/filings"
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   local headers = {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/xml"}
   local pos, k = 1, 0
   while pos <= #data do
      local nl = string.find(data, "\n", pos, true)
      local len = tonumber(string.sub(data, pos, nl - 1))
      if k % nthreads == id then
         requests[#requests + 1] = wrk.format("POST", target, headers, string.sub(data, nl + 1, nl + len))
      end
      pos = nl + 1 + len
      k = k + 1
   end
   data = nil
end

function request()
   n = n + 1
   if n > #requests then
      exhausted = exhausted + 1
      wrk.thread:stop()
      return requests[#requests]
   end
   return requests[n]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if headers["Idempotent-Replayed"] or headers["idempotent-replayed"] then
      replays = replays + 1
   end
end

function done(summary, latency, requests)
   local counts = {}
   local rep, exh = 0, 0
   for _, t in ipairs(threads) do
      local s = t:get("statuses")
      for code, c in pairs(s) do
         counts[code] = (counts[code] or 0) + c
      end
      rep = rep + t:get("replays")
      exh = exh + t:get("exhausted")
   end
   local parts = {}
   for code, c in pairs(counts) do
      parts[#parts + 1] = string.format('"%d": %d', code, c)
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_RESULT {"requests": %d, "duration_us": %d, "statuses": {%s}, "replays": %d, "exhausted": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, table.concat(parts, ", "), rep, exh,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
end
