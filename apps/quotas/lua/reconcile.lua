-- Correct one scope's budget counters for one period from PostgreSQL's truth.
-- ARGV[1] is JSON: {pre, n, p, bx, pg_tokens, pg_cost, cutoff, now, dl, rttl, restore}.
-- pg_* are the sums of runs that finished before ``cutoff``; settlements logged at
-- or after it are added from Redis's own log, so a run that finishes while this
-- runs is counted once. ``restore`` holds reservations of runs PostgreSQL says are
-- still unfinished: Redis gets back any it lost (never one already settled).
-- Reserved amounts are summed again from the live reservations.
-- ``recent`` (when seeding: a new quota, a new period, counters lost) lists the runs
-- PostgreSQL says finished at or after ``cutoff``, each {id, t, c, f}: those the log
-- doesn't have (they never reserved on this scope) are counted, logged, and marked
-- ``counted`` so that their own settlement, if one comes, adds nothing. The hash is
-- marked ``seeded``: from now on settlements keep it exact.
-- Returns {tokens before, cost before, rtokens before, rcost before, and after ...}.
local spec = cjson.decode(ARGV[1])
local pre, n, p, now = spec.pre, spec.n, spec.p, spec.now
local b = key(pre, n, "b:" .. p)
local before = redis.call("HMGET", b, "tokens", "cost", "rtokens", "rcost")

for _, r in ipairs(spec.restore) do
  if redis.call("EXISTS", pre .. ":done:" .. r.id) == 0 then
    local rkey = pre .. ":res:" .. r.id
    if redis.call("EXISTS", rkey) == 0 then
      redis.call("SET", rkey, r.rec, "EX", spec.rttl)
      redis.call("ZADD", pre .. ":res:index", int(now), r.id)
    end
    local rec = cjson.decode(r.rec)
    for _, s in ipairs(rec.s) do
      redis.call("ZADD", key(pre, s.n, "run"), int(spec.dl), r.id)
      redis.call("EXPIRE", key(pre, s.n, "run"), spec.rttl)
    end
  end
end

local uk = key(pre, n, "run")
local rt, rc = 0, 0
for _, id in ipairs(redis.call("ZRANGE", uk, 0, -1)) do
  local raw = redis.call("GET", pre .. ":res:" .. id)
  if not raw then
    redis.call("ZREM", uk, id)
  else
    local rec = cjson.decode(raw)
    for _, s in ipairs(rec.s) do
      if s.n == n and s.p == p then
        rt = rt + rec.tokens
        rc = rc + rec.cost
      end
    end
  end
end

local log = b .. ":log"
local lt, lc = 0, 0
for _, member in ipairs(redis.call("ZRANGEBYSCORE", log, int(spec.cutoff), "+inf")) do
  local _, t, c = string.match(member, "^(.*):(%-?%d+):(%-?%d+)$")
  lt = lt + num(t)
  lc = lc + num(c)
end

local tokens, cost = spec.pg_tokens + lt, spec.pg_cost + lc
if spec.recent and #spec.recent > 0 then
  local logged = {}
  for _, member in ipairs(redis.call("ZRANGE", log, 0, -1)) do
    logged[string.match(member, "^(.*):%-?%d+:%-?%d+$")] = true
  end
  local counted = b .. ":counted"
  for _, r in ipairs(spec.recent) do
    if not logged[r.id] and redis.call("HEXISTS", counted, r.id) == 0 then
      tokens = tokens + r.t
      cost = cost + r.c
      redis.call("ZADD", log, int(r.f), r.id .. ":" .. int(r.t) .. ":" .. int(r.c))
      redis.call("HSET", counted, r.id, 1)
    end
  end
  redis.call("EXPIREAT", counted, int(spec.bx))
  redis.call("EXPIREAT", log, int(spec.bx))
end
redis.call(
  "HSET", b, "tokens", int(tokens), "cost", int(cost), "rtokens", int(rt), "rcost", int(rc),
  "seeded", 1
)
redis.call("EXPIREAT", b, int(spec.bx))
return {
  int(num(before[1])), int(num(before[2])), int(num(before[3])), int(num(before[4])),
  int(tokens), int(cost), int(rt), int(rc),
}
