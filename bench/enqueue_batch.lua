-- wrk script: POST /enqueue with batches {"jobs":[...]} of unique ids, for a fixed number of jobs, then stop.
-- Used by bench/api_features.py (bulk enqueue A3, the priority/schedule prefill A4, the callback prefill A2).
--   wrk -t2 -c32 -d120s -s bench/enqueue_batch.lua URL -- JOBS_PER_REQUEST TOTAL_JOBS THREADS [MODE [ARG]] [PREFIX]
-- TOTAL_JOBS must be a multiple of JOBS_PER_REQUEST * THREADS: each thread sends its share of batches, counts
-- the answers, and stops when the last one came; a connection that asks for more meanwhile sends
-- `GET /healthz` (not a job; its answer is told apart by its body). Ids: PREFIX, thread, batch, index.
-- MODE: plain (payload @ok), priority (priority = job number % 10), delayed (delay_ms ARG), callback
-- (callback_url ARG). done() prints one line `batches: posted=N answered_200=N other=N` for the harness.
-- `thread_id` must stay a global (see enqueue.lua).
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  per_request = tonumber(args[1])
  local total = tonumber(args[2])
  local nthreads = tonumber(args[3])
  mode = args[4] or "plain"
  modearg = args[5]
  local prefix = args[6] or "b"
  quota = math.floor(total / (per_request * nthreads))
  sent, answered, ok, other = 0, 0, 0, 0
  idbase = string.format("%s%d-", prefix, thread_id)
  local extra = ""
  if mode == "delayed" then extra = ',"delay_ms":' .. modearg
  elseif mode == "callback" then extra = ',"callback_url":"' .. modearg .. '"' end
  tail = '","payload":"@ok"' .. extra .. '}'
  healthz = wrk.format("GET", "/healthz")
  -- wrk calls request() once in thread 0's state before the run to check the script (script_verify_request)
  -- and never sends that request: it must not count.
  verifying = thread_id == 0
end

function request()
  if verifying then
    verifying = false
    return healthz
  end
  if sent >= quota then return healthz end
  sent = sent + 1
  local parts = {}
  local base = (sent - 1) * per_request
  for i = 1, per_request do
    local n = base + i
    if mode == "priority" then
      parts[i] = string.format('{"id":"%s%d","payload":"@ok","priority":%d}', idbase, n, n % 10)
    else
      parts[i] = '{"id":"' .. idbase .. n .. tail
    end
  end
  local body = '{"jobs":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/enqueue", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 200 and body:sub(1, 14) == '{"status":"ok"' then return end  -- a /healthz past the quota
  answered = answered + 1
  if status == 200 then ok = ok + 1 else other = other + 1 end
  if answered >= quota then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local s, a, o = 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    a = a + t:get("ok")
    o = o + t:get("other")
  end
  io.write(string.format("batches: posted=%d answered_200=%d other=%d\n", s, a, o))
end
