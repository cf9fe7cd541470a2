-- POST /refresh as a chain of rotations, one connection per thread (-t N -c N). Thread i
-- starts from line i of $REFRESH_TOKENS_FILE and always presents the token the previous
-- response returned, as a real client does. A broken chain shows up as non-2xx responses.
local started = 0
local tokens = {}

function setup(thread)
  if #tokens == 0 then
    for line in io.lines(os.getenv("REFRESH_TOKENS_FILE")) do
      tokens[#tokens + 1] = line
    end
  end
  started = started + 1
  thread:set("token", tokens[started])
end

local path = (os.getenv("API_PREFIX") or "/api/v1/auth") .. "/refresh"

function request()
  return wrk.format("POST", path, {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    local next_token = string.match(body, '"refresh_token":"([^"]+)"')
    if next_token then token = next_token end
  end
end
