-- wrk script: POST /v1/events with 100 new events per request (unique ids, so
-- nothing is deduplicated away). Usage: wrk -s events_batch.lua URL -- API_KEY RUN_ID
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  api_key = args[1]
  run_id = args[2]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. api_key
end

function request()
  counter = counter + 1
  local parts = {}
  for i = 1, 100 do
    local n = counter * 100 + i
    parts[i] = string.format(
      '{"id":"%s-%d-%d","type":"page.viewed","lead_id":"lead-%d","data":{"url":"https://www.example.com/pricing?n=%d","title":"Pricing"}}',
      run_id, tid, n, n % 5000, n)
  end
  return wrk.format(nil, "/v1/events", nil, '{"events":[' .. table.concat(parts, ",") .. "]}")
end
