-- wrk script: POST /enqueue with a unique id per request (thread id + counter), zero-work @ok payload.
-- `thread_id` must stay a global: `thread:set` writes the thread's globals, and a `local` of the same
-- name would shadow it (every thread would then post the same ids, and half the requests would be
-- idempotent repeats instead of new jobs). An optional argument (`wrk ... -- TAG`) prefixes every id, for
-- several wrk processes started in the same second (os.time() and thread ids would repeat).
local counter = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = string.format("%s%d-%d-", args[1] or "", os.time(), thread_id)
end

function request()
  counter = counter + 1
  local body = string.format('{"id":"%s%d","payload":"@ok"}', prefix, counter)
  return wrk.format("POST", "/enqueue", {["Content-Type"] = "application/json"}, body)
end
