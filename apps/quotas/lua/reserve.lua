-- Reserve a run's worst case against every limit of every scope, or nothing.
-- ARGV[1] is JSON: {pre, id, now, tokens, cost, rttl, dl, record, s: [scope, ...]}
-- where a scope is {n, p, bx, reset, tl, cl, rl, pl, ul}: its name (t12, k5), the
-- budget period id (or null), when the period's counters expire and reset (unix s,
-- ms), and limits (-1: none) for tokens and cost per period, requests and tokens per
-- minute, concurrent runs.
-- All checks happen before any write, and Redis runs the script alone, so two
-- processes can never both take the last unit of a limit.
-- Returns {1} or {0, scope index, limit name, current, limit, requested, reset ms},
-- or {2, scope index, ...} without writing anything when a budget's counters for the
-- period were never set from the ledger (a new period, a new quota, counters lost in
-- a restart): the caller seeds them and asks again with spec.seeded_ok, so no
-- refusal is decided on an undercount.
local spec = cjson.decode(ARGV[1])
local pre, now, id = spec.pre, spec.now, spec.id
local tokens, cost = spec.tokens, spec.cost
local refusal, refusal_reset = nil, nil

if not spec.seeded_ok then
  local unseeded = {2}
  for i, s in ipairs(spec.s) do
    if s.p ~= cjson.null and s.p ~= nil and (s.tl >= 0 or s.cl >= 0) then
      if redis.call("HEXISTS", key(pre, s.n, "b:" .. s.p), "seeded") == 0 then
        table.insert(unseeded, i)
      end
    end
  end
  if #unseeded > 1 then
    return unseeded
  end
end

local function refuse(i, name, current, limit, requested, reset)
  -- Retry-After must cover the limit that frees up last (-1: when a run ends).
  if refusal == nil or reset > refusal_reset then
    refusal = {0, i, name, int(current), int(limit), int(requested), int(reset)}
    refusal_reset = reset
  end
end

for i, s in ipairs(spec.s) do
  if s.p ~= cjson.null and s.p ~= nil then
    local b = key(pre, s.n, "b:" .. s.p)
    local used = redis.call("HMGET", b, "tokens", "rtokens", "cost", "rcost")
    local t = num(used[1]) + num(used[2])
    local c = num(used[3]) + num(used[4])
    if s.tl >= 0 and t + tokens > s.tl then
      refuse(i, "token_budget", t, s.tl, tokens, s.reset)
    end
    if s.cl >= 0 and c + cost > s.cl then
      refuse(i, "cost_budget", c, s.cl, cost, s.reset)
    end
  end
  if s.rl >= 0 then
    local rk = key(pre, s.n, "rpm")
    redis.call("ZREMRANGEBYSCORE", rk, "-inf", int(now - WINDOW))
    local count = redis.call("ZCARD", rk)
    if count + 1 > s.rl then
      local oldest = redis.call("ZRANGE", rk, 0, 0, "WITHSCORES")
      refuse(i, "requests_per_minute", count, s.rl, 1, num(oldest[2]) + WINDOW)
    end
  end
  if s.pl >= 0 then
    local zk, hk = key(pre, s.n, "tpm"), key(pre, s.n, "tpmv")
    local inwindow = tpm_trim(zk, hk, now)
    if inwindow + tokens > s.pl then
      -- when enough of the oldest entries have aged out for this request to fit
      local reset = now + WINDOW
      local freed = 0
      local entries = redis.call("ZRANGE", zk, 0, -1, "WITHSCORES")
      for j = 1, #entries, 2 do
        freed = freed + num(redis.call("HGET", hk, entries[j]))
        reset = num(entries[j + 1]) + WINDOW
        if inwindow - freed + tokens <= s.pl then
          break
        end
      end
      refuse(i, "tokens_per_minute", inwindow, s.pl, tokens, reset)
    end
  end
  if s.ul >= 0 then
    local uk = key(pre, s.n, "run")
    redis.call("ZREMRANGEBYSCORE", uk, "-inf", int(now))
    local running = redis.call("ZCARD", uk)
    if running + 1 > s.ul then
      refuse(i, "concurrent_runs", running, s.ul, 1, -1)
    end
  end
end

if refusal ~= nil then
  return refusal
end

for _, s in ipairs(spec.s) do
  if s.p ~= cjson.null and s.p ~= nil then
    local b = key(pre, s.n, "b:" .. s.p)
    redis.call("HINCRBY", b, "rtokens", int(tokens))
    redis.call("HINCRBY", b, "rcost", int(cost))
    redis.call("EXPIREAT", b, int(s.bx))
  end
  if s.rl >= 0 then
    local rk = key(pre, s.n, "rpm")
    redis.call("ZADD", rk, int(now), id)
    redis.call("PEXPIRE", rk, WINDOW + 1000)
  end
  if s.pl >= 0 then
    local zk, hk = key(pre, s.n, "tpm"), key(pre, s.n, "tpmv")
    redis.call("ZADD", zk, int(now), id)
    redis.call("HSET", hk, id, int(tokens))
    redis.call("HINCRBY", hk, "_sum", int(tokens))
    redis.call("PEXPIRE", zk, WINDOW + 1000)
    redis.call("PEXPIRE", hk, WINDOW + 1000)
  end
  -- the scope's live reservations: concurrency, and what reconciliation sums
  local uk = key(pre, s.n, "run")
  redis.call("ZADD", uk, int(spec.dl), id)
  redis.call("EXPIRE", uk, spec.rttl)
end
redis.call("SET", pre .. ":res:" .. id, spec.record, "EX", spec.rttl)
redis.call("ZADD", pre .. ":res:index", int(now), id)
return {1}
