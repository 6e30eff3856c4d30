-- The shared rate limiter's script: one atomic decision per call, in Redis.
-- KEYS (one hash slot): state hash (tat, until, episode, base, hold, stated, seen_limit,
-- seen_window, replid), grants zset (slot times), fleet zset (caller id -> last call), and
-- the sequence hash (seq, at: the time of the last call), which outlives the others.
-- ARGV: mode ("acquire"/"penalize"/"observe"), requests, window, burst, pause (-1: none),
-- idle ttl ms, the learning constants (floor share, hold min, hold max); then the glue's:
-- highest seq this caller saw, "1" if it distrusts the state, its fleet id, and a clock
-- override ("" for Redis's TIME; tests only); then per, ahead (acquire: reserve only a slot
-- at most this many seconds away, -1: any) and the headers' limit, window, remaining, reset
-- (-1: absent); then the traffic class ("interactive"/"background", acquire) and the age
-- of the refused request (penalize: seconds since it was granted, -1: unknown; an age, not
-- a time: the callers' clocks are not Redis's), and the sequence hash's ttl ms. Returns
-- strings: the result (acquire: the
-- seconds until the reserved slot, or minus the seconds until the next slot when it was
-- farther than ``ahead`` and nothing was reserved; penalize/observe: the pause in force),
-- the fleet size, the seq, "1" if the state was found lost, the capacity in force and the
-- learned limit (-1: none). The arithmetic mirrors helpcrunch_async._limit._gcra.GCRA
-- (tests/test_redis.py checks it against GCRA, decision by decision).

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if ARGV[13] ~= '' then now = tonumber(ARGV[13]) end  -- the differential test's clock
local mode = ARGV[1]
local requests = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local pause = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local floor_share, hold_min, hold_max = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local per = tonumber(ARGV[14])
local ahead = tonumber(ARGV[15])
local info_limit, info_window = tonumber(ARGV[16]), tonumber(ARGV[17])
local info_remaining, info_reset = tonumber(ARGV[18]), tonumber(ARGV[19])
local priority = ARGV[20]
local age = tonumber(ARGV[21])
-- Numbers go to Redis as text: 17 digits round-trip a double (tostring keeps 14), so the
-- stored schedule is exactly the computed one, as in GCRA.
local function exact(x) return string.format('%.17g', x) end

-- 'until' is a Lua keyword: the local is pause_end.
local s = redis.call('HMGET', KEYS[1], 'tat', 'until', 'episode', 'base', 'hold', 'stated',
                     'seen_limit', 'seen_window')
local tat = tonumber(s[1]) or -1e300
local pause_end = tonumber(s[2]) or -1e300
local episode = tonumber(s[3]) or -1e300
local base = tonumber(s[4]) or requests
local hold = tonumber(s[5]) or hold_min
local stated = tonumber(s[6]) or -1
local seen_limit = tonumber(s[7]) or -1
local seen_window = tonumber(s[8]) or -1

local function top()
  if stated > 0 and stated < requests then return stated end
  return requests
end
local function floor_cap()
  return math.max(1, math.floor(requests * floor_share))
end
-- A lesson holds from its episode for `hold` windows, then one probing window.
local function held(at)
  return base < top() and at < episode + (hold + 1) * window
end
local function capacity(at)
  if base < top() and at < episode + hold * window then return base end
  return top()
end
-- Only an interactive grant may run ahead of the steady pace (the burst), never while a
-- lesson holds (next_time).
local function credit(cap, class)
  if class ~= 'interactive' then return 0 end
  return (math.min(burst, cap) - 1) * (window / cap)
end
local function next_time(at, class)
  local cap = capacity(at)
  local ahead = 0
  if not held(at) then ahead = credit(cap, class) end
  local slot = math.max(at, pause_end, tat - ahead)
  if redis.call('ZCARD', KEYS[2]) >= cap then
    local oldest = redis.call('ZRANGE', KEYS[2], -cap, -cap, 'WITHSCORES')
    slot = math.max(slot, tonumber(oldest[2]) + window)
  end
  return slot
end
local result = 0

-- BEGIN lost-state guard (Python glue: RedisRateLimiter._run). A schedule whose sequence
-- number is missing or behind what a caller saw (a restart without persistence, a promoted
-- replica behind the primary), a state missing within a window of the last call (evicted),
-- one written under another replication ID (failover, restore) or one that a caller
-- distrusts (it granted locally while Redis was away) may have lost grants the server still
-- counts: assume the last window was full, so nobody is granted for one window.
local seen_seq, suspect = tonumber(ARGV[10]), ARGV[11] == '1'
-- INFO may be refused by an ACL: then no replication ID, and only callers' memory guards.
local info = redis.pcall('INFO', 'replication')
local replid = type(info) == 'string' and string.match(info, 'master_replid:(%w+)') or ''
-- The sequence hash outlives the state: a state that expired (nobody called for its ttl,
-- longer than a window, so nothing it held is still counted) is no loss.
local g = redis.call('HMGET', KEYS[4], 'seq', 'at')
local stored_seq, last_call = tonumber(g[1]) or 0, tonumber(g[2]) or -1e300
if not (stored_seq >= 0 and stored_seq < 2^53 and stored_seq == math.floor(stored_seq)) then
  stored_seq = 0  -- not a sequence number (written by someone else): none, overwritten below
end
local present = s[1] ~= false
local lost = suspect or stored_seq < seen_seq
  or (present and redis.call('HGET', KEYS[1], 'replid') ~= replid)
  or (not present and now - last_call < window)
if lost then
  pause_end = math.max(pause_end, now + window)
end
local seq = math.max(stored_seq, seen_seq)  -- carried over a lost state
-- END lost-state guard

if mode == 'acquire' then
  local slot = next_time(now, priority)
  if ahead >= 0 and slot - now > ahead then
    result = -(slot - now)  -- out of this caller's reach: nothing reserved
  else
    tat = math.max(tat, slot) + window / capacity(slot)  -- as GCRA.take: the rate at the slot
    seq = seq + 1
    redis.call('ZADD', KEYS[2], exact(slot), string.format('%d', seq))
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(requests + 1))
    result = slot - now
  end
elseif mode == 'penalize' then
  local sent_at = now
  if age >= 0 then sent_at = math.min(now - age, now) end
  if sent_at >= pause_end then  -- else sent before the pause in force began: nothing new
    if base < top() and not held(sent_at) then base, hold = top(), hold_min end
    local was_held = base < top()
    local clean = sent_at >= episode + per
    local recurring = was_held or sent_at <= pause_end + window
    local estimate
    local sent = redis.call('ZCOUNT', KEYS[2], '(' .. exact(sent_at - per), exact(sent_at))
    if clean and recurring then  -- evidence: the key refused what the record counts
      if was_held then hold = math.min(2 * hold, hold_max) else hold = hold_min end
      base = math.min(top(), math.max(floor_cap(), sent - 1))
      episode = now
      estimate = math.max(next_time(now, 'background') - now, window / capacity(now))
    elseif clean and sent >= capacity(sent_at) then  -- a busy key our own sends filled
      episode = now
      estimate = math.max(next_time(now, 'background') - now, window / capacity(now))
    else  -- a busy key: only a whole window surely empties it
      if clean then episode = now end
      estimate = window
    end
    if pause < 0 then pause = estimate end
  end
  -- the pause in force: the one given when it is the longest, exactly as given
  if pause >= 0 and now + pause >= pause_end then
    pause_end = now + pause
    result = pause
  else
    result = math.max(0, pause_end - now)
  end
else
  if info_limit > 0 and (info_limit ~= seen_limit or info_window ~= seen_window) then
    seen_limit, seen_window = info_limit, info_window
    local their = per
    if info_window > 0 then their = info_window end
    local st = math.max(1, math.floor(info_limit * per / their))
    if st < requests then stated = st else stated = -1 end
    base, hold = top(), hold_min
  end
  if info_remaining == 0 and info_reset >= 0 then
    result = math.min(info_reset, window)
    pause_end = math.max(pause_end, now + result)
  end
end

redis.call('HSET', KEYS[1], 'tat', exact(tat), 'until', exact(pause_end),
           'episode', exact(episode), 'base', exact(base), 'hold', exact(hold),
           'stated', exact(stated), 'seen_limit', exact(seen_limit),
           'seen_window', exact(seen_window))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local in_force = capacity(now)
local learned = -1
if held(now) then learned = base elseif stated > 0 then learned = stated end

-- BEGIN fleet heartbeat: every caller marks itself alive; the fleet is who called within a
-- window (its size sets the share of the local fallback), the schedule's identity goes back.
redis.call('HSET', KEYS[1], 'replid', replid)
redis.call('ZADD', KEYS[3], exact(now), ARGV[12])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', exact(now - window))
redis.call('PEXPIRE', KEYS[3], ttl)
local fleet = redis.call('ZCARD', KEYS[3])
redis.call('HSET', KEYS[4], 'seq', string.format('%d', seq), 'at', exact(now))
redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[22]))
return {exact(result), tostring(fleet), string.format('%d', seq), lost and '1' or '0',
        exact(in_force), exact(learned)}
-- END fleet heartbeat
