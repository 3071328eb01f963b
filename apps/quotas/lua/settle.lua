-- Settle a reservation: give back what was reserved and count what was used.
-- ARGV[1] is JSON: {pre, id, tokens, cost, fin, now, add}. With add false (a
-- reservation whose run never existed, or one reconciliation already counted from
-- PostgreSQL) nothing is counted. The reservation record is deleted and a tombstone
-- left, so a second settle of the same run changes nothing. A run that a seeding
-- reconciliation already counted from the ledger (``b:<period>:counted``) only gives
-- its reservation back.
-- Returns {0} when there was nothing to settle, else {1, scope, tokens, cost, ...}
-- with each budget scope's consumption after settling.
local spec = cjson.decode(ARGV[1])
local pre, id, now = spec.pre, spec.id, spec.now
local rkey = pre .. ":res:" .. id
local raw = redis.call("GET", rkey)
if not raw then
  return {0}
end
local rec = cjson.decode(raw)
redis.call("DEL", rkey)
redis.call("SET", pre .. ":done:" .. id, "1", "EX", 172800)
redis.call("ZREM", pre .. ":res:index", id)
local tokens = spec.add and spec.tokens or 0
local cost = spec.add and spec.cost or 0
local out = {1}
for _, s in ipairs(rec.s) do
  if s.p ~= cjson.null and s.p ~= nil then
    local b = key(pre, s.n, "b:" .. s.p)
    local rt = redis.call("HINCRBY", b, "rtokens", int(-rec.tokens))
    local rc = redis.call("HINCRBY", b, "rcost", int(-rec.cost))
    if rt < 0 then
      redis.call("HSET", b, "rtokens", 0)
    end
    if rc < 0 then
      redis.call("HSET", b, "rcost", 0)
    end
    -- counted: runs a seeding reconciliation already took from the ledger (and logged)
    if spec.add and redis.call("HEXISTS", b .. ":counted", id) == 0 then
      redis.call("HINCRBY", b, "tokens", int(tokens))
      redis.call("HINCRBY", b, "cost", int(cost))
      local log = b .. ":log"
      redis.call("ZADD", log, int(spec.fin), id .. ":" .. int(tokens) .. ":" .. int(cost))
      redis.call("ZREMRANGEBYSCORE", log, "-inf", int(now - LOG_KEEP))
      redis.call("EXPIREAT", log, int(s.bx))
    end
    redis.call("EXPIREAT", b, int(s.bx))
    local used = redis.call("HMGET", b, "tokens", "cost")
    table.insert(out, s.n)
    table.insert(out, int(num(used[1])))
    table.insert(out, int(num(used[2])))
  end
  local zk, hk = key(pre, s.n, "tpm"), key(pre, s.n, "tpmv")
  local old = redis.call("HGET", hk, id)
  if old and redis.call("ZSCORE", zk, id) then
    redis.call("HSET", hk, id, int(tokens))
    redis.call("HINCRBY", hk, "_sum", int(tokens - num(old)))
  end
  redis.call("ZREM", key(pre, s.n, "run"), id)
end
return out
