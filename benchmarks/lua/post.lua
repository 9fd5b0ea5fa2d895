-- wrk script for the closed-loop runs: sends BENCH_METHOD (default POST) with the body
-- read from BENCH_BODY_FILE; headers (the signature too: the body never changes, so
-- one signature is valid for every request) come from wrk's -H flags.
--
-- With BENCH_UNIQUE_HEADER set, every request carries a delivery id in that header,
-- "<BENCH_RUN_ID>-<thread>-<n>". With BENCH_REPEAT_LAG = L as well, every odd request
-- past the first 2L repeats the id of request n - 2L - 1 (duplicate-heavy traffic;
-- benchmarks/_spec.py delivery_number computes the same). With BENCH_COUNT_SENT=1 or a
-- unique header, each thread counts the requests it puts on the wire. done() prints one
-- machine-readable line starting with "BENCH-RESULT ".

wrk.method = os.getenv("BENCH_METHOD") or "POST"
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
   local file = assert(io.open(body_file, "rb"))
   wrk.body = file:read("*a")
   file:close()
end

local unique = os.getenv("BENCH_UNIQUE_HEADER")
local run_id = os.getenv("BENCH_RUN_ID") or tostring(os.time())
local lag = tonumber(os.getenv("BENCH_REPEAT_LAG") or "0")
local thread_count = 0
local threads = {}

function setup(thread)
   thread_count = thread_count + 1
   thread:set("thread_id", thread_count)
   table.insert(threads, thread)
end

local count_sent = os.getenv("BENCH_COUNT_SENT") == "1"

if (unique and unique ~= "") or count_sent then
   -- A global, so that done() can read each thread's count: requests put on the wire.
   counter = 0
   request = function()
      counter = counter + 1
      local number = counter
      if lag > 0 and counter % 2 == 1 and counter > 2 * lag then
         number = counter - 2 * lag - 1
      end
      if not (unique and unique ~= "") then
         return wrk.format(nil, nil, nil, nil)
      end
      local headers = {}
      for name, value in pairs(wrk.headers) do
         headers[name] = value
      end
      headers[unique] = string.format("%s-%d-%d", run_id, thread_id or 0, number)
      return wrk.format(nil, nil, headers, nil)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local sent = -1
   if (unique and unique ~= "") or count_sent then
      sent = 0
      for _, thread in ipairs(threads) do
         sent = sent + (thread:get("counter") or 0)
      end
      -- wrk calls request() once on the first thread's state to check what it builds
      -- (script_verify_request), a request it never sends.
      sent = math.max(0, sent - 1)
   end
   io.write(string.format(
      'BENCH-RESULT {"sent": %d, "requests": %d, "duration_us": %d, "connect": %d, "read": %d, '
         .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, '
         .. '"p99_us": %d, "p999_us": %d, "max_us": %d}\n',
      sent, summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
      e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
