-- wrk script for bench/run.sh (B6): rotate through the request paths listed
-- in $BENCH_PATHS (one per line) with method $BENCH_METHOD (default GET),
-- sending $BENCH_AUTH as the Authorization header when it is set.
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do
  if line ~= "" then paths[#paths + 1] = line end
end
local method = os.getenv("BENCH_METHOD") or "GET"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
local i = 0

function setup(thread)
  thread:set("offset", math.random(#paths))
end

function init(args)
  i = offset or 0
end

function request()
  i = i % #paths + 1
  return wrk.format(method, paths[i])
end
