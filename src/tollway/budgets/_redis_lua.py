"""The Lua scripts of the Redis counter store (one per operation; see `redis_store`).

Layout of one counter family with base key ``K`` (the store's prefix + the line's key):

- calendar window instance: hash ``K:w:<start_ms>``;
- rolling window: hash ``K:rb`` with ``b:<bucket index>`` (used per bucket), ``s`` (their
  sum), ``lo`` (the oldest bucket in the sum) and ``e``; and hash ``K:rs`` for reservations;
- concurrency gauge: hash ``K:g``.

A hash holding reservations has ``u`` (used; calendar only), ``r`` (reserved), ``n`` (no
live reservation expires before this instant) and ``e`` (the key's expiry instant, so the
TTL is extended once per `max_ttl_ms` rather than on every call). Beside it, the sorted set
``<hash>:z`` holds ``<reservation id>|<amount>`` scored by expiry: a settle removes its own
member (and learns whether the reservation was still live), and expired members are found
only when ``n`` says one may have expired, so the common path costs three commands a line.

Amounts travel and are stored as decimal strings and are added with two 12-digit limbs,
because Lua numbers are doubles (exact only to 2**53 pico-USD, about $9,007) and Redis
integers stop at 2**63 pico-USD (about $9.2M): a large org's monthly budget needs more.
Every instant comes from ``redis.call('TIME')``: the server's clock decides windows,
buckets and expiry, whatever the clocks of the replicas calling it. Replies are one
space-separated string, cheap to parse on the client.
"""

from __future__ import annotations

_PRELUDE = r"""
local B = 1000000000000
local function P(s)
  if not s then return {0, 0} end
  local n = #s
  if n <= 12 then return {0, tonumber(s)} end
  return {tonumber(string.sub(s, 1, n - 12)), tonumber(string.sub(s, n - 11))}
end
local function add(a, b)
  local hi, lo = a[1] + b[1], a[2] + b[2]
  if lo >= B then return {hi + 1, lo - B} end
  return {hi, lo}
end
local function sub(a, b)
  local hi, lo = a[1] - b[1], a[2] - b[2]
  if lo < 0 then hi, lo = hi - 1, lo + B end
  if hi < 0 then return {0, 0} end
  return {hi, lo}
end
local function gt(a, b) return a[1] > b[1] or (a[1] == b[1] and a[2] > b[2]) end
local function S(a)
  if a[1] == 0 then return string.format('%.0f', a[2]) end
  return string.format('%.0f%012.0f', a[1], a[2])
end
local function I(x) return string.format('%.0f', x) end
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local LINE = '^(%a) (%S+) (%d+) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+)$'

-- Give back the expired reservations of `skey`; returns what stays reserved.
local function drop_expired(skey, now, reserved)
  local z = skey .. ':z'
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', I(now), 'LIMIT', 0, 500)
  for _, member in ipairs(gone) do
    reserved = sub(reserved, P(string.match(member, '|(%d+)$')))
  end
  if #gone > 0 then redis.call('ZREM', z, unpack(gone)) end
  local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('HSET', skey, 'r', S(reserved), 'n', first[2])
  else
    redis.call('HSET', skey, 'r', S(reserved))
    redis.call('HDEL', skey, 'n')
  end
  return reserved
end

-- Drop the buckets of `rb` that left the window ending with bucket `idx`; returns the sum
-- of the buckets left, the oldest bucket summed (nil when nothing is stored) and `e`.
local function roll(rb, idx, nb)
  local h = redis.call('HMGET', rb, 's', 'lo', 'e')
  local lo = tonumber(h[2])
  if lo == nil then return {0, 0}, nil, nil end
  local s = P(h[1])
  local cutoff = idx - nb + 1
  if cutoff > lo then
    if cutoff - lo >= nb then
      redis.call('DEL', rb)
      return {0, 0}, nil, nil
    end
    local fields = {}
    for j = lo, cutoff - 1 do fields[#fields + 1] = 'b:' .. I(j) end
    local vals = redis.call('HMGET', rb, unpack(fields))
    for k = 1, #fields do if vals[k] then s = sub(s, P(vals[k])) end end
    redis.call('HDEL', rb, unpack(fields))
    redis.call('HSET', rb, 's', S(s), 'lo', I(cutoff))
    lo = cutoff
  end
  return s, lo, tonumber(h[3])
end

-- Where a line counts at `now`: its hash, window bounds (as strings, and the end as a
-- number) and, if rolling, its bucket index. Calendar lines carry (prev start, start, end,
-- next end) computed by the caller; the server's clock picks among them, or nil asks the
-- caller to retry with server time.
local function resolve(base, mode, a_s, b_s, c_s, d_s, now)
  if mode == 'c' then
    local a, b, c, d = tonumber(a_s), tonumber(b_s), tonumber(c_s), tonumber(d_s)
    if now >= b and now < c then return base .. ':w:' .. b_s, b_s, c_s, c, nil
    elseif now >= a and now < b then return base .. ':w:' .. a_s, a_s, b_s, b, nil
    elseif now >= c and now < d then return base .. ':w:' .. c_s, c_s, d_s, d, nil end
    return nil
  elseif mode == 'r' then
    local bucket_ms, nb = tonumber(a_s), tonumber(b_s)
    local idx = math.floor(now / bucket_ms)
    local we = (idx + 1) * bucket_ms
    return base .. ':rs', I((idx - nb + 1) * bucket_ms), I(we), we, idx
  end
  return base .. ':g', '0', '0', 0, nil
end

-- When enough rolling buckets will have left the window to free `excess`.
local function roll_retry(rb, idx, nb, bucket_ms, excess, we)
  local first = idx - nb + 1
  local fields = {}
  for j = first, idx do fields[#fields + 1] = 'b:' .. I(j) end
  local vals = redis.call('HMGET', rb, unpack(fields))
  local freed = {0, 0}
  for k = 1, #fields do
    if vals[k] then
      freed = add(freed, P(vals[k]))
      if not gt(excess, freed) then return I((first + k - 1 + nb) * bucket_ms) end
    end
  end
  return we
end

-- The new expiry instant of a key whose recorded expiry `e` falls short of `want`, with
-- slack so that TTLs are extended once per `slack` ms, not on every call; nil if none.
-- Callers set it with PEXPIREAT *after* writing (an expiry on a missing key is a no-op).
local function renewal(e, want, slack)
  if e and e >= want then return nil end
  return I(want + slack)
end
"""

RESERVE = (
    _PRELUDE
    + r"""
-- ARGV: id, ttl_ms, grace_ms, max_ttl_ms, tombstone key, n,
--       then two per line: base key, 'mode limit amount a b c d' (limit '-' = none)
-- Numbers read from ARGV or hashes are passed on as the strings they came as: formatting
-- numbers is the dearest thing a script like this does.
local now = server_now()
local now_s = I(now)
local id = ARGV[1]
local exp = now + tonumber(ARGV[2])
local exp_s = I(exp)
local grace = tonumber(ARGV[3])
local max_ttl = tonumber(ARGV[4])
local keep = now + max_ttl + grace
local n = tonumber(ARGV[6])
if redis.call('EXISTS', ARGV[5]) == 1 then return 'dup' end
local plan = {}
local out = {'ok', now_s, exp_s}
for i = 1, n do
  local base = ARGV[5 + 2 * i]
  local mode, limit, amount_s, a, b, c, d = string.match(ARGV[6 + 2 * i], LINE)
  local skey, ws_s, we_s, we, idx = resolve(base, mode, a, b, c, d, now)
  if skey == nil then return 'skew ' .. now_s end
  local amount = P(amount_s)
  local h = redis.call('HMGET', skey, 'u', 'r', 'e', 'n')
  local used, used_s
  if mode == 'c' then
    used_s = h[1] or '0'
    used = P(h[1])
  elseif mode == 'r' then
    used = roll(base .. ':rb', idx, tonumber(b))
    used_s = S(used)
  else
    used, used_s = {0, 0}, '0'
  end
  local reserved, reserved_s = P(h[2]), h[2] or '0'
  local next_exp = tonumber(h[4])
  if next_exp and next_exp <= now then
    reserved = drop_expired(skey, now, reserved)
    reserved_s = S(reserved)
    next_exp = tonumber(redis.call('HGET', skey, 'n'))
  end
  if limit ~= '-' then
    local lim = P(limit)
    local total = add(add(used, reserved), amount)
    if gt(total, lim) then
      local retry = '-'
      if mode == 'c' then retry = we_s
      elseif mode == 'r' then
        retry = roll_retry(base .. ':rb', idx, tonumber(b), tonumber(a), sub(total, lim), we_s)
      end
      return table.concat({'deny', I(i), used_s, reserved_s, now_s, ws_s, we_s, retry}, ' ')
    end
  end
  local want = keep
  if mode == 'c' then want = math.max(we + grace, keep) end
  plan[i] = {skey, reserved, amount, amount_s, next_exp, h[3], want}
  out[#out + 1] = used_s
  out[#out + 1] = reserved_s
  out[#out + 1] = ws_s
  out[#out + 1] = we_s
end
for i = 1, n do
  local p = plan[i]
  local skey = p[1]
  local fields = {'r', S(add(p[2], p[3]))}
  if p[5] == nil or exp < p[5] then
    fields[3], fields[4] = 'n', exp_s
  end
  local at = renewal(tonumber(p[6]), p[7], max_ttl)
  if at then
    fields[#fields + 1] = 'e'
    fields[#fields + 1] = at
  end
  redis.call('HSET', skey, unpack(fields))
  redis.call('ZADD', skey .. ':z', exp_s, id .. '|' .. p[4])
  -- The set may have just been created: it lives as long as its hash.
  redis.call('PEXPIREAT', skey .. ':z', at or p[6])
  if at then redis.call('PEXPIREAT', skey, at) end
end
return table.concat(out, ' ')
"""
)

SETTLE = (
    _PRELUDE
    + r"""
-- ARGV: id, tombstone key, tombstone_ms, grace_ms, max_ttl_ms, n,
--       then two per line: base key, 'mode reserved actual p1 p2 p3 0'
--       (calendar: start, end, -; rolling: bucket_ms, buckets, bucket charged; gauge: -)
local now = server_now()
local id = ARGV[1]
if redis.call('EXISTS', ARGV[2]) == 1 then return 0 end
local grace = tonumber(ARGV[4])
local max_ttl = tonumber(ARGV[5])
local keep = now + max_ttl + grace
local n = tonumber(ARGV[6])
for i = 1, n do
  local base = ARGV[5 + 2 * i]
  local mode, held, actual, p1_s, p2, p3_s = string.match(ARGV[6 + 2 * i], LINE)
  actual = P(actual)
  local skey
  if mode == 'c' then skey = base .. ':w:' .. p1_s
  elseif mode == 'r' then skey = base .. ':rs'
  else skey = base .. ':g' end
  local p1, p3 = tonumber(p1_s), tonumber(p3_s)
  p2 = tonumber(p2)
  local h = redis.call('HMGET', skey, 'u', 'r', 'e', 'n')
  local reserved = P(h[2])
  local next_exp = tonumber(h[4])
  if next_exp and next_exp <= now then reserved = drop_expired(skey, now, reserved) end
  local fields = {}
  local renew = nil
  if redis.call('ZREM', skey .. ':z', id .. '|' .. held) == 1 then
    fields[1], fields[2] = 'r', S(sub(reserved, P(held)))
  end
  local charge = actual[1] > 0 or actual[2] > 0
  if charge and mode == 'c' then
    fields[#fields + 1] = 'u'
    fields[#fields + 1] = S(add(P(h[1]), actual))
    renew = renewal(tonumber(h[3]), math.max(p2 + grace, keep), max_ttl)
    if renew then
      fields[#fields + 1] = 'e'
      fields[#fields + 1] = renew
    end
  end
  if #fields > 0 then redis.call('HSET', skey, unpack(fields)) end
  if renew then
    redis.call('PEXPIREAT', skey, renew)
    redis.call('PEXPIREAT', skey .. ':z', renew)
  end
  if charge and mode == 'r' then
    local rb = base .. ':rb'
    local idx = math.floor(now / p1)
    local s, lo, e = roll(rb, idx, p2)
    local fields = {}
    if lo == nil then
      lo = idx - p2 + 1
      fields[1], fields[2] = 'lo', I(lo)
    end
    if p3 >= lo then  -- else: charged at a start that has left the window
      local f = 'b:' .. p3_s
      local v = P(redis.call('HGET', rb, f))
      fields[#fields + 1] = f
      fields[#fields + 1] = S(add(v, actual))
      fields[#fields + 1] = 's'
      fields[#fields + 1] = S(add(s, actual))
      local window = p1 * p2
      local at = renewal(e, now + window + grace, window)
      if at then
        fields[#fields + 1] = 'e'
        fields[#fields + 1] = at
      end
      redis.call('HSET', rb, unpack(fields))
      if at then redis.call('PEXPIREAT', rb, at) end
    end
  end
end
redis.call('SET', ARGV[2], '1', 'PX', ARGV[3])
return 1
"""
)

USAGE = (
    _PRELUDE
    + r"""
-- ARGV: n, then two per line: base key, 'mode - 0 a b c d'.
-- Returns 'ok now', then used, reserved, start, end per line.
local now = server_now()
local n = tonumber(ARGV[1])
local out = {'ok', I(now)}
for i = 1, n do
  local base = ARGV[2 * i]
  local mode, _, _, a, b, c, d = string.match(ARGV[2 * i + 1], LINE)
  local skey, ws_s, we_s, _, idx = resolve(base, mode, a, b, c, d, now)
  if skey == nil then return 'skew ' .. I(now) end
  local used = {0, 0}
  if mode == 'r' then used = roll(base .. ':rb', idx, tonumber(b)) end
  local h = redis.call('HMGET', skey, 'u', 'r', 'e', 'n')
  if mode == 'c' then used = P(h[1]) end
  local reserved = P(h[2])
  local next_exp = tonumber(h[4])
  if next_exp and next_exp <= now then reserved = drop_expired(skey, now, reserved) end
  out[#out + 1] = S(used)
  out[#out + 1] = S(reserved)
  out[#out + 1] = ws_s
  out[#out + 1] = we_s
end
return table.concat(out, ' ')
"""
)

SET_USED = (
    _PRELUDE
    + r"""
-- ARGV: base key, 'mode - used a b c d', grace_ms, max_ttl_ms
local now = server_now()
local base = ARGV[1]
local mode, _, used, a, b, c, d = string.match(ARGV[2], LINE)
local grace = tonumber(ARGV[3])
local max_ttl = tonumber(ARGV[4])
local skey, _, _, we, idx = resolve(base, mode, a, b, c, d, now)
a, b = tonumber(a), tonumber(b)
if skey == nil then return 'skew ' .. I(now) end
if mode == 'c' then
  local e = tonumber(redis.call('HGET', skey, 'e'))
  local at = renewal(e, math.max(we + grace, now + max_ttl + grace), max_ttl)
  if at then
    redis.call('HSET', skey, 'u', used, 'e', at)
    redis.call('PEXPIREAT', skey, at)
  else
    redis.call('HSET', skey, 'u', used)
  end
else
  local rb = base .. ':rb'
  local window = a * b
  redis.call('DEL', rb)
  local at = I(now + 2 * window + grace)
  redis.call('HSET', rb, 'b:' .. I(idx), used, 's', used, 'lo', I(idx - b + 1), 'e', at)
  redis.call('PEXPIREAT', rb, at)
end
return 'ok ' .. I(now)
"""
)
