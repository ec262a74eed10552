-- wrk: GET /v1/cases?limit=100, the first page of the case list, as the
-- bearer of $TOKEN (a DSL token). Each page read writes one access record
-- per case listed (durable appends, grouped).
--   TOKEN=clt_... wrk -s bench/http/list_page.lua http://127.0.0.1:8080
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
dofile(here .. "/common.lua")

local headers = {["Authorization"] = bearer()}

function init(args)
  common_init()
end

function request()
  return wrk.format("GET", "/v1/cases?limit=100", headers)
end
