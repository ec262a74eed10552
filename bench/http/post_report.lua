-- wrk: POST /v1/cases with the body of scripts/examples/report.json, as the
-- bearer of $TOKEN (a role that may report, e.g. dsl). Every request
-- reports a new concern: the server names a new case and appends its first
-- event durably (fsync, group commit) before it answers 201.
--   TOKEN=clt_... wrk -s bench/http/post_report.lua http://127.0.0.1:8080
-- $REPORT_JSON overrides the body file.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
dofile(here .. "/common.lua")

local function read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local s = f:read("*a")
  f:close()
  return s
end

-- One request, the same every time: wrk sends it without calling Lua.
wrk.method = "POST"
wrk.path = "/v1/cases"
wrk.body = read_file(os.getenv("REPORT_JSON") or
                     (here .. "/../../scripts/examples/report.json"))
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = bearer()

function init(args)
  common_init()
end
