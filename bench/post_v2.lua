-- wrk script: POST the body of the file named by $WRK_BODY_FILE byte for byte (binary tensor
-- data included), with $WRK_CONTENT_TYPE and, when set, Inference-Header-Content-Length.
local f = assert(io.open(assert(os.getenv("WRK_BODY_FILE"), "WRK_BODY_FILE unset"), "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE") or "application/json"
local length = os.getenv("WRK_HEADER_LENGTH")
if length and length ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = length
end
