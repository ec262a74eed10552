-- wrk: GET /v1/learning/feed?after=N&limit=100, the anonymised learning feed,
-- as the bearer of $TOKEN (an integration token). N walks through the feed
-- a page at a time, 0, 100, 200, ... up to $FEED_LAST_SEQ (default 5000;
-- run_http_bench.sh measures it on the seeded store), then wraps, so every
-- request reads a full page from the read model. Each wrk thread starts at a
-- different page.
--   TOKEN=clt_... FEED_LAST_SEQ=7000 wrk -s bench/http/feed_page.lua http://127.0.0.1:8080
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
dofile(here .. "/common.lua")

local limit = 100
local last = tonumber(os.getenv("FEED_LAST_SEQ") or "5000")
-- The pages that are full: after = 0, 100, ..., last - limit.
local pages = math.max(1, math.floor(last / limit))
local headers = {["Authorization"] = bearer()}

function init(args)
  common_init()
  page_ = ((thread_index or 0) * 7) % pages
end

function request()
  local after = page_ * limit
  page_ = (page_ + 1) % pages
  return wrk.format("GET", "/v1/learning/feed?after=" .. after ..
                    "&limit=" .. limit, headers)
end
