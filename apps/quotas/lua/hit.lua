-- One request against a requests-per-minute limit (the API key's door).
-- KEYS[1] the scope's request log; ARGV: now ms, limit, a unique member.
-- Returns {1, count} when counted, {0, count, reset ms} when refused.
local now, limit, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", int(now - WINDOW))
local count = redis.call("ZCARD", KEYS[1])
if count >= limit then
  local oldest = redis.call("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
  local reset = now + WINDOW
  if oldest[2] then
    reset = num(oldest[2]) + WINDOW
  end
  return {0, count, reset}
end
redis.call("ZADD", KEYS[1], int(now), member)
redis.call("PEXPIRE", KEYS[1], WINDOW + 1000)
return {1, count + 1}
