-- wrk script of scripts/bench-verifier: replays a plan of verify requests (one line each:
-- "challenge factor code"); thread k of n takes lines k, k+n, k+2n, … (formatted once, at
-- start, so the load generator spends its time sending) and stops when its share is used.
-- wrk counts answers that are not 2xx (summary.errors.status); the script checks the server's
-- own count of 200s on /metrics too.
local counter, threads = 0, {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local n, i = tonumber(args[2]), 0
  local headers = { ["Content-Type"] = "application/json" }
  plan, next_i = {}, 1
  for line in io.lines(args[1]) do
    if i % n == id then
      local c, f, code = line:match("(%S+) (%S+) (%S+)")
      plan[#plan + 1] = wrk.format("POST", "/v1/login/" .. c .. "/verify", headers,
                                   '{"factor":"' .. f .. '","code":"' .. code .. '"}')
    end
    i = i + 1
  end
end

function request()
  local r = plan[next_i]
  if r == nil then
    wrk.thread:stop()
    return plan[#plan]
  end
  next_i = next_i + 1
  return r
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d seconds=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status))
end
