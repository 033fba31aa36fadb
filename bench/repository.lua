-- wrk script for bench/repository.py: POST the body of $WRK_BODY_FILE to a model of the
-- repository drawn uniformly at random per request (/models/mNNN/predict, $WRK_MODELS models).
local f = assert(io.open(assert(os.getenv("WRK_BODY_FILE"), "WRK_BODY_FILE unset"), "r"))
local body = f:read("*a"):gsub("%s+$", "")
f:close()
local models = tonumber(os.getenv("WRK_MODELS") or "100")
local headers = { ["Content-Type"] = "application/json" }

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  local path = string.format("/models/m%03d/predict", math.random(0, models - 1))
  return wrk.format("POST", path, headers, body)
end
