-- Shared helpers, prepended to every script (Redis runs each script atomically).
local WINDOW = 60000 -- ms: requests and tokens per minute are a sliding 60 s log
local LOG_KEEP = 600000 -- ms of settlements kept for reconciliation

local function int(v)
  -- Lua 5.1 prints 1e14 as "1e+14" and -0 as "-0"; Redis wants plain digits.
  if v == 0 then
    return "0"
  end
  return string.format("%.0f", v)
end

local function num(v)
  return tonumber(v) or 0
end

local function key(pre, scope, suffix)
  return pre .. ":" .. scope .. ":" .. suffix
end

-- Drop token entries older than the window from a scope's tokens-per-minute log and
-- return the tokens still in it. The zset orders entries by time, the hash holds
-- each entry's tokens and their running sum in "_sum".
local function tpm_trim(zkey, hkey, now)
  local old = redis.call("ZRANGEBYSCORE", zkey, "-inf", int(now - WINDOW))
  if #old > 0 then
    local freed = 0
    for _, member in ipairs(old) do
      freed = freed + num(redis.call("HGET", hkey, member))
      redis.call("HDEL", hkey, member)
      redis.call("ZREM", zkey, member)
    end
    redis.call("HINCRBY", hkey, "_sum", int(-freed))
  end
  return num(redis.call("HGET", hkey, "_sum"))
end
