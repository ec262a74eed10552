-- wrk: GET /v1/cases/{id}, rotating over a list of case ids, as the bearer
-- of $TOKEN (e.g. a dsl). The ids come from $CASES ("id1,id2,...") or else
-- are $CASE_PREFIX (default "case-") followed by 000001 .. $CASE_COUNT
-- (default 2000), the ids `caseledger seed --cases N` writes. Each wrk
-- thread starts at a different place in the list.
-- Note: caseledger records every case read in the case's access log, durably,
-- before it answers, so each GET is also an fsynced append.
--   TOKEN=clt_... CASE_COUNT=2000 wrk -s bench/http/get_case.lua http://127.0.0.1:8080
-- Also used unchanged against http_minimal_server (which ignores path and
-- token), so the ceiling is measured with the same client work.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
dofile(here .. "/common.lua")

local ids = {}
local cases = os.getenv("CASES")
if cases ~= nil and cases ~= "" then
  for id in string.gmatch(cases, "[^,%s]+") do table.insert(ids, id) end
else
  local prefix = os.getenv("CASE_PREFIX") or "case-"
  local count = tonumber(os.getenv("CASE_COUNT") or "2000")
  for i = 1, count do table.insert(ids, string.format("%s%06d", prefix, i)) end
end
assert(#ids > 0, "no case ids: set CASES or CASE_COUNT")

local auth = bearer()

function init(args)
  common_init()
  -- Built once per thread; request() only picks the next one.
  requests_ = {}
  for i, id in ipairs(ids) do
    requests_[i] = wrk.format("GET", "/v1/cases/" .. id,
                              {["Authorization"] = auth})
  end
  next_ = ((thread_index or 0) * 997) % #requests_
end

function request()
  next_ = next_ % #requests_ + 1
  return requests_[next_]
end
