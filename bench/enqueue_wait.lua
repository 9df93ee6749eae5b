-- wrk script: POST to the URL's own path and query (e.g. /enqueue?wait_ms=5000) with a unique id per request
-- and the zero-work @ok payload; otherwise as enqueue.lua (whose path is fixed to /enqueue).
-- `thread_id` must stay a global (see enqueue.lua).
local counter = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = string.format("w%d-%d-", os.time(), thread_id)
end

function request()
  counter = counter + 1
  local body = string.format('{"id":"%s%d","payload":"@ok"}', prefix, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
