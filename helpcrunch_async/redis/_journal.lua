-- The shared bulk journal's script: one atomic step of one worker's session, in Redis.
-- KEYS (one hash slot, the job's tag): 1 meta hash (epoch, created, nextop), 2 ops hash
-- (operation name -> small code), 3 counts hash (record -> ids whose latest record it is;
-- "takeovers", "lost"), 4 errs hash (id -> "at_ms<TAB>code<TAB>reason", while the latest
-- record is a failure), 5 owner hash (id -> session token, while claimed), 6 lease zset (id -> lease end
-- ms), 7 sessions zset (token -> last call ms); from 8 on, the record buckets the call needs
-- (hash: id -> record, 100 neighbouring ids a bucket). A record is the operation's code for a
-- success and minus it for a failure ("3", "-3").
-- ARGV: 1 mode, 2 ttl ms, 3 the session's token, 4 the epoch it saw ("" for none), 5 a fresh
-- epoch (used when the job has none), 6 how long a session counts as live (ms); then the
-- mode's own. Ids come as pairs: the id, then the KEYS index of its bucket.
-- Returns strings: the epoch ("" if none yet), "1" if the job's state was found lost, Redis's time (ms), then
-- the mode's reply.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local meta, ops, counts, errs, owner, lease, sessions =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local mode, ttl, token, seen, fresh = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local live = tonumber(ARGV[6])

-- Reading (status, report, time) writes nothing: a dashboard must not keep a job alive.
local reading = mode == 'status' or mode == 'report' or mode == 'time'

-- The lost-state guard: a job whose meta vanished (a restart without persistence, an
-- eviction, a failover to a replica that was behind) while this session had seen it, or
-- that another epoch replaced. Ids done before may then be sent again; none is lost.
local epoch = redis.call('HGET', meta, 'epoch')
local lost = '0'
if not reading then
  if not epoch then
    epoch = fresh
    redis.call('HSET', meta, 'epoch', epoch, 'created', now)
    if seen ~= '' then lost = '1' end
  elseif seen ~= '' and seen ~= epoch then
    lost = '1'
  end
  if lost == '1' then redis.call('HINCRBY', counts, 'lost', 1) end
  redis.call('ZADD', sessions, now, token)
  redis.call('ZREMRANGEBYSCORE', sessions, '-inf', now - live)
end

local function bump(record, by)
  if tonumber(redis.call('HINCRBY', counts, record, by)) <= 0 then
    redis.call('HDEL', counts, record)
  end
end

-- Whether the id's latest record settles it for a session of `code` started at `since`:
-- "d" a success of the operation, "f" a failure of it at or after `since`, false otherwise.
local function settled(id, bucket, code, since)
  local record = redis.call('HGET', bucket, id)
  if not code or not record then return false end
  if record == code then return 'd' end
  if since and record == '-' .. code then
    local err = redis.call('HGET', errs, id)
    local at = err and tonumber(string.match(err, '^(%d+)\t'))
    if at and at >= since then return 'f' end
  end
  return false
end

local reply = {epoch or '', lost, tostring(now)}
local touched = {}

if mode == 'claim' then
  -- ARGV 7 operation, 8 lease ms, 9 session start ms; ids. Per id: "d" done, "f" failed in
  -- this run, "b<ms>" another session holds it for ms more, "m" claimed, "t" claimed from a
  -- lease that lapsed (a takeover). Claiming one's own id renews it.
  local code = redis.call('HGET', ops, ARGV[7])
  local ms, since = tonumber(ARGV[8]), tonumber(ARGV[9])
  for i = 10, #ARGV, 2 do
    local id, bucket = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
    touched[bucket] = true
    local verdict = settled(id, bucket, code, since)
    if not verdict then
      local holder = redis.call('HGET', owner, id)
      verdict = 'm'
      if holder and holder ~= token then
        local till = tonumber(redis.call('ZSCORE', lease, id) or '0')
        if till > now then verdict = 'b' .. (till - now) else verdict = 't' end
      end
      if verdict == 'm' or verdict == 't' then
        if verdict == 't' then redis.call('HINCRBY', counts, 'takeovers', 1) end
        redis.call('HSET', owner, id, token)
        redis.call('ZADD', lease, now + ms, id)
      end
    end
    reply[#reply + 1] = verdict
  end
elseif mode == 'renew' then
  -- ARGV 7 operation, 8 lease ms; ids. Per id "1" still this session's (re-established if
  -- the state was lost and nobody took it meanwhile), "0" lost to another session or done.
  local code = redis.call('HGET', ops, ARGV[7])
  local ms = tonumber(ARGV[8])
  for i = 9, #ARGV, 2 do
    local id, bucket = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
    local holder = redis.call('HGET', owner, id)
    local mine = holder == token
    if not holder and not settled(id, bucket, code, nil) then
      redis.call('HSET', owner, id, token)
      mine = true
    end
    if mine then
      redis.call('ZADD', lease, now + ms, id)
      reply[#reply + 1] = '1'
    else
      reply[#reply + 1] = '0'
    end
  end
elseif mode == 'record' then
  -- ARGV 7 operation, 8 "1" success / "0" failure, 9 the failure's reason; one id. The
  -- latest record replaces the id's earlier one; the claim ends if this session holds it (a
  -- record by a session whose claim was taken over is still written: it is true).
  local code = redis.call('HGET', ops, ARGV[7])
  if not code then
    code = tostring(redis.call('HINCRBY', meta, 'nextop', 1))
    redis.call('HSET', ops, ARGV[7], code)
  end
  local id, bucket = ARGV[10], KEYS[tonumber(ARGV[11])]
  touched[bucket] = true
  local record = code
  if ARGV[8] ~= '1' then record = '-' .. code end
  local old = redis.call('HGET', bucket, id)
  if old then bump(old, -1) end
  redis.call('HSET', bucket, id, record)
  bump(record, 1)
  if ARGV[8] == '1' then
    redis.call('HDEL', errs, id)
  else
    redis.call('HSET', errs, id, now .. '\t' .. code .. '\t' .. ARGV[9])
  end
  if redis.call('HGET', owner, id) == token then
    redis.call('HDEL', owner, id)
    redis.call('ZREM', lease, id)
  end
elseif mode == 'release' then
  -- Ids (their buckets unused): end this session's claims, recording nothing.
  for i = 7, #ARGV, 2 do
    local id = ARGV[i]
    if redis.call('HGET', owner, id) == token then
      redis.call('HDEL', owner, id)
      redis.call('ZREM', lease, id)
    end
  end
elseif mode == 'status' then
  -- ARGV 7 operation, 8 since ms ("" : every failure is pending); ids. One character per
  -- id: "1" settled (as a claim would skip it), "0" pending.
  local code = redis.call('HGET', ops, ARGV[7])
  local since = tonumber(ARGV[8])
  local flags = {}
  for i = 9, #ARGV, 2 do
    local bucket = KEYS[tonumber(ARGV[i + 1])]
    flags[#flags + 1] = settled(ARGV[i], bucket, code, since) and '1' or '0'
  end
  reply[#reply + 1] = table.concat(flags)
elseif mode == 'report' then
  -- ARGV 7 how many failed ids to list at most. Reply: claims in flight, lapsed claims, live
  -- sessions, then three counted lists: operations (name, code), counts (record, ids), and
  -- failed ids (id, the errs entry).
  local most = tonumber(ARGV[7])
  reply[#reply + 1] = tostring(redis.call('ZCOUNT', lease, now, '+inf'))
  reply[#reply + 1] = tostring(redis.call('ZCOUNT', lease, '-inf', '(' .. now))
  reply[#reply + 1] = tostring(redis.call('ZCOUNT', sessions, now - live, '+inf'))
  for _, key in ipairs({ops, counts}) do
    local all = redis.call('HGETALL', key)
    reply[#reply + 1] = tostring(#all / 2)
    for _, item in ipairs(all) do reply[#reply + 1] = item end
  end
  local failed, cursor = {}, '0'
  repeat
    local page = redis.call('HSCAN', errs, cursor, 'COUNT', 100)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      if #failed < 2 * most then
        failed[#failed + 1] = page[2][i]
        failed[#failed + 1] = page[2][i + 1]
      end
    end
  until cursor == '0' or #failed >= 2 * most
  reply[#reply + 1] = tostring(#failed / 2)
  for _, item in ipairs(failed) do reply[#reply + 1] = item end
end
-- open: the guard only; the reply's time is the session's start. time: Redis's time only.

if not reading then
  for i = 1, 7 do redis.call('PEXPIRE', KEYS[i], ttl) end
  for bucket in pairs(touched) do redis.call('PEXPIRE', bucket, ttl) end
end
return reply
