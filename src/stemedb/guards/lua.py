"""The Lua scripts of the Redis-backed guards (guards/shared.py).

Each check is one script, so it is atomic across every node sharing the Redis. The
caller's clock comes in as an argument (Redis's own clock is never read): nodes keep
their clocks in sync with NTP anyway, and tests can drive the scripts with a fake clock.

Numbers cross the boundary as text with 17 significant digits, which round-trips a
double exactly, so a script computes the same IEEE doubles as the in-process Python.

Memory is bounded by key expiry: every key carries a TTL past which it holds no
information (a full bucket, an idle breaker).
"""

from __future__ import annotations

__all__ = ["BREAKER", "GCRA"]

# KEYS[1]: the key's TAT (theoretical arrival time).
# ARGV: now, interval, tau, burst, cost, slack_ms (TTL beyond the TAT).
# Returns {allowed (0/1), tat, retry_after}: the same arithmetic as RateLimiter.check().
GCRA = r"""
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local slack = tonumber(ARGV[6])
local stored = tonumber(redis.call('GET', KEYS[1]))
local tat = now
if stored and stored > now then tat = stored end
local fit = cost
if fit > burst then fit = burst end
local allow_at = tat + fit * interval - tau
if allow_at <= now + 1e-9 then
  tat = tat + cost * interval
  if tat > now then
    redis.call('SET', KEYS[1], string.format('%.17g', tat),
               'PX', math.ceil((tat - now) * 1000) + slack)
  elseif stored then
    redis.call('DEL', KEYS[1])
  end
  return {1, string.format('%.17g', tat), '0'}
end
return {0, string.format('%.17g', tat), string.format('%.17g', allow_at - now)}
"""

# One agent's breaker is a hash: s state (0 CLOSED, 1 OPEN, 2 HALF_OPEN), w the window
# as a string of '0'/'1' (a ring once full, next slot p), f failures in it, o/u opened_at
# and until (unix seconds), r reason, m manual, po/pk probes out/ok, pa last probe.
# {prefix}cb:epoch holds a token of the data set, so that a node can tell a Redis that
# came back empty and put its manual bans back.
# KEYS[1] index: zset of agents, score = the instant their hash expires.
# KEYS[2] open index: zset of agents not CLOSED (for counts()).
# KEYS[3..]: the agents' hashes; ARGV[14..]: their agent ids, in the same order.
# ARGV: op, now, prefix, threshold, min_requests, window, timeout, probes,
#       probe_lease, idle, max_agents, reason_failure_rate, reason_probe_failed, ...
# The state machine is the one of breaker.py (CircuitBreakers), op by op.
BREAKER = r"""
local op = ARGV[1]
local now = tonumber(ARGV[2])
local PREFIX = ARGV[3]
local THRESHOLD = tonumber(ARGV[4])
local MIN = tonumber(ARGV[5])
local WINDOW = tonumber(ARGV[6])
local TIMEOUT = tonumber(ARGV[7])
local PROBES = tonumber(ARGV[8])
local LEASE = tonumber(ARGV[9])
local IDLE = tonumber(ARGV[10])
local MAX_AGENTS = tonumber(ARGV[11])
local R_RATE = ARGV[12]
local R_PROBE = ARGV[13]
local IDX, OPEN_IDX = KEYS[1], KEYS[2]
local CLOSED, OPEN, HALF = 0, 1, 2

local function fmt(x)
  if x == nil then return '' end
  return string.format('%.17g', x)
end

local function num(v)
  if v == false or v == nil or v == '' then return nil end
  return tonumber(v)
end

local function load(key)
  local h = redis.call('HGETALL', key)
  if #h == 0 then return nil end
  local t = {}
  for i = 1, #h, 2 do t[h[i]] = h[i + 1] end
  local a = {s = tonumber(t.s), w = t.w or '', p = tonumber(t.p), f = tonumber(t.f),
             o = num(t.o), u = num(t.u), r = t.r or '', m = tonumber(t.m),
             po = tonumber(t.po), pk = tonumber(t.pk), pa = num(t.pa) or 0}
  if #a.w > WINDOW then a.w, a.p, a.f = '', 0, 0 end  -- the window size was changed
  return a
end

local function new()
  return {s = CLOSED, w = '', p = 0, f = 0, o = nil, u = nil, r = '', m = 0,
          po = 0, pk = 0, pa = 0}
end

-- Kept for IDLE seconds after the last change, an OPEN one until its ban is over too.
local function save(key, agent, a)
  redis.call('HSET', key, 's', a.s, 'w', a.w, 'p', a.p, 'f', a.f, 'o', fmt(a.o),
             'u', fmt(a.u), 'r', a.r, 'm', a.m, 'po', a.po, 'pk', a.pk, 'pa', fmt(a.pa))
  local keep = IDLE
  if a.s == OPEN and a.u > now then keep = keep + (a.u - now) end
  redis.call('PEXPIRE', key, math.ceil(keep * 1000))
  redis.call('ZADD', IDX, now + keep, agent)
  if a.s == CLOSED then
    redis.call('ZREM', OPEN_IDX, agent)
  else
    redis.call('ZADD', OPEN_IDX, now + keep, agent)
  end
end

local function forget(agent)
  redis.call('DEL', PREFIX .. agent)
  redis.call('ZREM', IDX, agent)
  redis.call('ZREM', OPEN_IDX, agent)
end

local function open(a, reason)
  a.s, a.u, a.o, a.r, a.m, a.po, a.pk = OPEN, now + TIMEOUT, now, reason, 0, 0, 0
end

local function half_open(a)
  a.s, a.po, a.pk, a.pa = HALF, 0, 0, now
end

local function close(a)
  a.s, a.w, a.p, a.f, a.o, a.u, a.r, a.m, a.po, a.pk = CLOSED, '', 0, 0, nil, nil, '', 0, 0, 0
end

local function push(a, bit)
  local n = #a.w
  if n < WINDOW then
    a.w = a.w .. bit
    n = n + 1
  else
    local pos = a.p
    if string.sub(a.w, pos + 1, pos + 1) == '1' then a.f = a.f - 1 end
    a.w = string.sub(a.w, 1, pos) .. bit .. string.sub(a.w, pos + 2)
    if pos + 1 < WINDOW then a.p = pos + 1 else a.p = 0 end
  end
  if bit == '1' then a.f = a.f + 1 end
  if a.f > 0 and n >= MIN and a.f / n >= THRESHOLD then open(a, R_RATE) end
end

-- Expired agents first (their hash is gone or going), then the least soon expiring
-- beyond MAX_AGENTS, never an OPEN one whose ban runs: a few looks per call.
local function trim()
  local evicted = 0
  for _, agent in ipairs(redis.call('ZRANGEBYSCORE', IDX, '-inf', '(' .. fmt(now),
                                    'LIMIT', 0, 2)) do
    forget(agent)
  end
  local excess = redis.call('ZCARD', IDX) - MAX_AGENTS
  if excess <= 0 then return 0 end
  for _, agent in ipairs(redis.call('ZRANGE', IDX, 0, 15)) do
    if excess <= 0 then break end
    local st = redis.call('HMGET', PREFIX .. agent, 's', 'u')
    if not (tonumber(st[1]) == OPEN and (num(st[2]) or 0) > now) then
      forget(agent)
      evicted = evicted + 1
      excess = excess - 1
    end
  end
  return evicted
end

local function view(a)
  if a == nil then return {0, 0, 0, '', '', '', 0} end
  return {a.s, a.f, #a.w, a.r, fmt(a.o), fmt(a.u), a.m}
end

local function view_of(key, agent)
  local a = load(key)
  if a ~= nil and a.s == OPEN and now >= a.u then
    half_open(a)
    save(key, agent, a)
  end
  return a
end

local key, agent = KEYS[3], ARGV[14]

if op == 'admit' then
  -- ep: whether the data set's token is the caller's (ARGV[15]); if not, Redis lost
  -- the data the caller wrote its manual bans to.
  local ep = 0
  if redis.call('GET', PREFIX .. 'epoch') == ARGV[15] then ep = 1 end
  local a = load(key)
  if a == nil or a.s == CLOSED then return {1, CLOSED, '0', 0, ep} end
  if a.s == OPEN then
    local left = a.u - now
    if left > 0 then return {0, OPEN, fmt(left), 0, ep} end
    half_open(a)
  end
  if a.po > 0 and now - a.pa >= LEASE then a.po = 0 end
  if a.po + a.pk < PROBES then
    a.po = a.po + 1
    a.pa = now
    save(key, agent, a)
    return {1, HALF, '0', 1, ep}
  end
  save(key, agent, a)
  return {0, HALF, '0', 0, ep}

elseif op == 'record' then
  local failure, probe = ARGV[15] == '1', ARGV[16] == '1'
  local a = load(key)
  local created = a == nil
  if created then
    a = new()
  elseif a.s == OPEN and now >= a.u then
    half_open(a)
  end
  if a.s == CLOSED then
    push(a, failure and '1' or '0')
  elseif a.s == HALF and probe then
    if a.po > 0 then a.po = a.po - 1 end
    if failure then
      open(a, R_PROBE)
    else
      a.pk = a.pk + 1
      if a.pk >= PROBES then close(a) end
    end
  end
  save(key, agent, a)
  local evicted = 0
  if created then evicted = trim() end
  return {a.s, evicted}

elseif op == 'release' then
  local a = load(key)
  if a ~= nil and a.s == HALF and a.po > 0 then
    a.po = a.po - 1
    save(key, agent, a)
  end
  return 1

elseif op == 'open' then
  local reason, opened, untl = ARGV[15], tonumber(ARGV[16]), tonumber(ARGV[17])
  local a = load(key)
  if untl - now > 0 then
    local created = a == nil
    if created then a = new() end
    a.s, a.u, a.o, a.r, a.m, a.po, a.pk = OPEN, untl, opened, reason, 1, 0, 0
    save(key, agent, a)
    if created then trim() end
  elseif a ~= nil and a.s == OPEN and now >= a.u then
    half_open(a)
    save(key, agent, a)
  end
  return view(a)

elseif op == 'reset' then
  forget(agent)
  return 1

elseif op == 'view' then
  return view(view_of(key, agent))

elseif op == 'views' then
  local out = {}
  for i = 3, #KEYS do
    local a = view_of(KEYS[i], ARGV[11 + i])
    if a == nil then
      redis.call('ZREM', IDX, ARGV[11 + i])
      redis.call('ZREM', OPEN_IDX, ARGV[11 + i])
    else
      out[#out + 1] = ARGV[11 + i]
      out[#out + 1] = view(a)
    end
  end
  return out

elseif op == 'counts' then
  local total = redis.call('ZCOUNT', IDX, fmt(now), '+inf')
  local opened, half = 0, 0
  for _, member in ipairs(redis.call('ZRANGE', OPEN_IDX, 0, -1)) do
    local st = redis.call('HMGET', PREFIX .. member, 's', 'u')
    local s = tonumber(st[1])
    if s == nil or s == CLOSED then
      redis.call('ZREM', OPEN_IDX, member)
    elseif s == OPEN and (num(st[2]) or 0) > now then
      opened = opened + 1
    else
      half = half + 1
    end
  end
  return {total, opened, half}
end
return redis.error_reply('unknown op ' .. op)
"""
