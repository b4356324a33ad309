-- Decides one request of one identity session, rate limit and quota together, in one atomic
-- step on Redis's own clock (TIME), so every gateway node shares one exact counter.
--
-- This restates crates/limits/src/gcra.rs and crates/limits/src/quota.rs (the in-process
-- limiter's math); the shared scenario table in crates/limits/tests/backends.rs runs the same
-- request sequences through both backends and keeps them equal. Change them together.
--
-- Lua numbers are doubles, exact for integers below 2^53: times are therefore kept relative
-- to now (rate: TAT - now in ns) or in microseconds (quota), never as ns since the epoch.
-- Exact while a rate window is below 2^53 ns (104 days) and a quota period below 2^52 us.
--
-- KEYS[1]  rate counter, a hash: s = TAT in whole seconds, n = the nanoseconds after s
-- KEYS[2]  quota counter, a hash: used = requests counted, renews_us = end of the period (us)
-- ARGV[1]  '1' when a rate limit applies; ARGV[2] requests, ARGV[3] emission interval (ns),
--          ARGV[4] burst tolerance (ns) = window - interval
-- ARGV[5]  '1' when a quota applies; ARGV[6] max, ARGV[7] renewal period (us)
-- ARGV[8]  '1' to peek: decide, write nothing, and report what remains now (not after this
--          request)
-- Returns {verdict (0 allowed, 1 rate limited, 2 quota exceeded), retry_after_ms,
--          rate_remaining, rate_reset_ms, quota_remaining, quota_reset_ms}.
-- A rejected request writes nothing. Every write sets a PEXPIRE: a rate counter lives until
-- its TAT (then it is at rest), a quota counter until its period ends.

local NS_PER_S = 1000000000
local NS_PER_MS = 1000000

-- Quotient of non-negative integers below 2^53, corrected for floating-point rounding.
local function div_floor(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local function div_ceil(a, b)
  local q = div_floor(a, b)
  if q * b < a then
    q = q + 1
  end
  return q
end

local function int(x)
  return string.format('%d', x)
end

local time = redis.call('TIME')
local now_s = tonumber(time[1])
local now_us_in_s = tonumber(time[2])
local now_us = now_s * 1000000 + now_us_in_s

local verdict, retry_after_ms = 0, 0
local peek = ARGV[8] == '1'

-- Rate limit (gcra.rs). `debt` is TAT - now: the stored TAT, or now when it is in the past.
local rate_remaining, rate_reset_ms, new_debt = 0, 0, nil
if ARGV[1] == '1' then
  local requests, interval, tolerance = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local tat = redis.call('HMGET', KEYS[1], 's', 'n')
  local debt = 0
  if tat[1] and tat[2] then
    debt = (tonumber(tat[1]) - now_s) * NS_PER_S + (tonumber(tat[2]) - now_us_in_s * 1000)
    if debt < 0 then
      debt = 0
    end
  end
  local after = debt
  if debt > tolerance then
    verdict = 1
    retry_after_ms = div_ceil(debt - tolerance, NS_PER_MS)
  else
    new_debt = debt + interval
    if not peek then
      after = new_debt
    end
  end
  if tolerance >= after then
    rate_remaining = math.min(div_floor(tolerance - after, interval) + 1, requests)
  end
  rate_reset_ms = div_ceil(after, NS_PER_MS)
end

-- Quota (quota.rs): a period starts at the first request after the previous one ended.
local quota_remaining, quota_reset_ms, next_used, renews_us = 0, 0, nil, 0
if ARGV[5] == '1' then
  local max, renewal_us = tonumber(ARGV[6]), tonumber(ARGV[7])
  local state = redis.call('HMGET', KEYS[2], 'used', 'renews_us')
  local used = tonumber(state[1]) or 0
  renews_us = tonumber(state[2]) or 0
  if now_us >= renews_us then
    used = 0
    renews_us = now_us + renewal_us
  end
  local left_us = renews_us - now_us
  quota_reset_ms = div_ceil(left_us, 1000)
  if used < max then
    next_used = used + 1
  else
    if verdict == 0 then
      verdict = 2
      retry_after_ms = div_ceil(left_us, 1000)
    end
    next_used = used
  end
  -- (used exceeds max when a reload lowered max during the period)
  if peek then
    quota_remaining = math.max(max - used, 0)
  else
    quota_remaining = math.max(max - next_used, 0)
  end
end

if verdict == 0 and not peek then
  if new_debt then
    local since_s = now_us_in_s * 1000 + new_debt
    local whole_s = div_floor(since_s, NS_PER_S)
    redis.call('HSET', KEYS[1], 's', int(now_s + whole_s), 'n', int(since_s - whole_s * NS_PER_S))
    redis.call('PEXPIRE', KEYS[1], int(div_ceil(new_debt, NS_PER_MS)))
  end
  if next_used then
    redis.call('HSET', KEYS[2], 'used', int(next_used), 'renews_us', int(renews_us))
    redis.call('PEXPIRE', KEYS[2], int(div_ceil(renews_us - now_us, 1000)))
  end
end

return {verdict, retry_after_ms, rate_remaining, rate_reset_ms, quota_remaining, quota_reset_ms}
