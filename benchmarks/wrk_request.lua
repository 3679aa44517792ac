-- wrk script of benchmarks/run.py (one script for every endpoint, so every endpoint pays
-- the same load-generator cost).
--
--   wrk ... -s wrk_request.lua URL -- METHOD PATH MAX_REQUESTS MODE FILE THREADS
--
-- MODE "none": no body. "static": the first line of FILE is the body of every request.
-- "each": every line of FILE is used for exactly one request ("BODY" or "PATH<TAB>BODY");
-- thread i takes the i-th contiguous block of lines. A thread stops after
-- ceil(MAX_REQUESTS / THREADS) requests, or when its block is used up ("exhausted").
-- done() prints one line "BENCHJSON {...}" with the summary and, per thread, how many
-- requests were built ("sent") and how many lines were handed out ("consumed").

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local function read_lines(file)
   local lines = {}
   local f = assert(io.open(file, "r"))
   for line in f:lines() do
      if line ~= "" then
         lines[#lines + 1] = line
      end
   end
   f:close()
   return lines
end

function init(args)
   method = args[1]
   path = args[2]
   local max_requests = tonumber(args[3])
   mode = args[4]
   local file = args[5]
   local nthreads = tonumber(args[6])
   max_per_thread = math.ceil(max_requests / nthreads)
   sent = 0
   consumed = 0
   exhausted = 0
   if mode == "none" then
      static_request = wrk.format(method, path)
   elseif mode == "static" then
      static_request = wrk.format(method, path, nil, read_lines(file)[1])
   elseif mode == "each" then
      lines = read_lines(file)
      local block = math.ceil(#lines / nthreads)
      pos = id * block + 1
      last = math.min(#lines, (id + 1) * block)
      filler = wrk.format("GET", path)
   else
      error("unknown mode " .. tostring(mode))
   end
end

function request()
   sent = sent + 1
   if sent >= max_per_thread then
      wrk.thread:stop()
   end
   if static_request then
      return static_request
   end
   if pos > last then
      -- Never reuse a one-use credential: stop, and send something harmless meanwhile.
      exhausted = 1
      wrk.thread:stop()
      return filler
   end
   local line = lines[pos]
   pos = pos + 1
   consumed = consumed + 1
   local tab = string.find(line, "\t", 1, true)
   if tab then
      return wrk.format(method, string.sub(line, 1, tab - 1), nil, string.sub(line, tab + 1))
   end
   return wrk.format(method, path, nil, line)
end

function done(summary, latency, requests)
   local per = {}
   for _, t in ipairs(threads) do
      per[#per + 1] = string.format(
         '{"id":%.0f,"sent":%.0f,"consumed":%.0f,"exhausted":%s}',
         t:get("id"), t:get("sent") or 0, t:get("consumed") or 0,
         tostring((t:get("exhausted") or 0) == 1))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
      '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
      '"latency_us":{"p50":%.0f,"p90":%.0f,"p99":%.0f,"mean":%.1f,"max":%.0f},"threads":[%s]}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max, table.concat(per, ",")))
end
