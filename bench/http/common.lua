-- Shared by the wrk scripts in bench/http/ (loaded with dofile): counts the
-- responses outside 2xx in every wrk thread and prints the total in done(),
-- so a run that is quietly answering 401/404/500 cannot pass for a fast one.
-- run_http_bench.sh reads the "bench non-2xx:" line and fails the run on it.
--
-- A script that loads this defines its own init(args) and calls
-- common_init() from it; it may define request() too.

local threads = {}

-- Keeps each thread for done(), and numbers them (thread_index, from 0) so
-- a script can start each thread at a different place.
function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
function common_init()
  non2xx = 0
  first_bad = ""
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local bad, sample = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    local s = t:get("first_bad")
    if sample == "" and s ~= nil then sample = s end
  end
  local e = summary.errors
  io.write(string.format("bench requests: %d\n", summary.requests))
  io.write(string.format("bench non-2xx: %d\n", bad))
  io.write(string.format(
    "bench socket errors: connect %d, read %d, write %d, timeout %d\n",
    e.connect, e.read, e.write, e.timeout))
  if bad > 0 then
    io.write("bench first non-2xx: " .. sample:gsub("\n", " ") .. "\n")
  end
end

-- The bearer token from $TOKEN; wrk stops if it is missing.
function bearer()
  local token = os.getenv("TOKEN")
  if token == nil or token == "" then
    error("set TOKEN to a bearer token")
  end
  return "Bearer " .. token
end
