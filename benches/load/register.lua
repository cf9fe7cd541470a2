-- POST /register with a new address every request (enumeration protection answers 202).
local n = 0
local prefix = (os.getenv("API_PREFIX") or "/api/v1/auth")
local run = tostring(os.time())

function request()
  n = n + 1
  return wrk.format("POST", prefix .. "/register", {["Content-Type"] = "application/json"},
    string.format('{"email":"u%s-%d@example.com","password":"load-test-secret-123"}', run, n))
end
