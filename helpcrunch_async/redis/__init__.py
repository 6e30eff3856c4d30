"""One rate limit shared by every process and machine using an API key, through Redis.

Needs the ``redis`` extra (``pip install "helpcrunch-async[redis]"``)::

    from helpcrunch_async.redis import RedisRateLimiter

    limiter = RedisRateLimiter.from_url("redis://localhost:6379/0")
    async with HelpCrunch(rate_limit=limiter) as client:
        ...

A single Redis, a Redis Cluster and a Sentinel-managed primary are all supported: pass a
``redis.Redis``, ``redis.cluster.RedisCluster`` or ``Sentinel(...).master_for(...)`` client
(or their ``redis.asyncio`` twins, asyncio only), or a URL to ``from_url``:

- ``redis://[user:password@]host:6379/0``, ``rediss://...`` (TLS), ``unix:///path.sock``;
- ``redis+cluster://[user:password@]host:port`` (``rediss+cluster://`` for TLS): any one node
  of the cluster, the others are discovered;
- ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``
  (``rediss+sentinel://`` for TLS): the sentinels and the service name they watch; the user
  and password are the primary's (sentinels themselves without auth: pass a client for more).

The arithmetic is the local limiter's (GCRA bounded by a record of the last grants, with the
same 429 pause and learning of the real limit), run in one atomic Lua script on the Redis
server, with the time taken from Redis (``TIME``) so that the machines' clocks do not
matter. A grant is usually one round trip: the script reserves the next slot and says how
long to wait for it.

Learning the key's real limit is shared too: the learned rate, the hold and the probes live
in the same Redis hash, so one process's 429 teaches every process at once (see
``helpcrunch_async._limiter`` for the algorithm), and rate-limit headers seen by one process
(``on_rate_limit_info``) set the rate of all.

Traffic classes across processes: two thresholds on how far ahead a caller may reserve.
A background caller reserves only a slot at most ``BACKGROUND_LOOKAHEAD`` seconds away; an
interactive caller one up to an interval further. Farther than that, nothing is reserved:
the caller sleeps until the slot comes within its reach and asks again. So however many
background callers a fleet has, the schedule never holds more than a lookahead's worth of
background reservations, and an interactive call from any process reaches the next slot
first: within about one interval plus the lookahead, even while another process's bulk
job saturates the key. (Short reservations also mean few stale ones: a slot reserved
before a 429 is still used after it, and would likely be answered 429 too.) The limit
itself is never at stake (every grant, whatever its class, goes through the same GCRA and
grant record), and background throughput stays at the limit: when no interactive call
comes, the background callers take every slot, the lookahead hiding the round trip. We
chose this over a reserve of slots kept for interactive calls (it would cost background
throughput all the time, and the grant record binds in a saturated window anyway) and over
a shared queue in Redis (more state, more round trips, and a crashed process's entries to
clean up). The cost: while the key is saturated a caller may make two round trips per
grant instead of one.

Every key the limiter touches for an API key shares one hash slot (a ``{...}`` hash tag around
the SHA-256 fingerprint of the key, never the key itself), so the script runs on a cluster;
the keys expire when idle. Within a process, callers line up in a ``PriorityGate``
(interactive first, arrival order within a class) and only the head of the line holds a
reservation, so a cancelled caller wastes at most one slot. ``max_wait`` is checked against
the slot Redis computes: a slot beyond it is refused at once, without reserving it.

When Redis loses the schedule (a restart without persistence, an eviction, a failover to a
replica that was behind), the fleet does not burst: a state that is missing while a caller saw
it, that went back in time, or that was written under another replication ID is taken as
"the last window was full", so nobody is granted for one window, then the pace resumes.

When Redis cannot be reached or answers with an error (``READONLY``, ``OOM``, ``CLUSTERDOWN``,
a wrong type...), after a short retry (``MOVED``/``ASK``/``TRYAGAIN`` are retried by
redis-py itself), the limiter by default fails the request with ``RateLimiterUnavailableError``
(nothing is sent). With ``on_unavailable="local"`` it falls back to a local limiter at the
process's share of the rate (one over the fleet's size as last seen in Redis), logging a
warning, and returns to Redis as soon as it answers again. It is never a silent free-for-all.
"""

from __future__ import annotations

import functools
import logging
import math
import secrets
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

import anyio
import attrs
import redis as redis_sync
import redis.asyncio as redis_asyncio
import redis.asyncio.cluster as redis_asyncio_cluster
import redis.cluster as redis_cluster
import redis.exceptions
import redis.sentinel

from .._config import RateLimit, is_number
from .._errors import LimiterTimeoutError, RateLimiterUnavailableError
from .._limit._gate import INTERACTIVE, Priority, PriorityGate, check_wait
from .._limit._limiter import (
    ADAPT_FLOOR,
    LEARN_PROBE_MAX,
    LEARN_PROBE_MIN,
    RateLimitInfo,
    TokenBucketLimiter,
    api_key_fingerprint,
    refusal,
)

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript, Script

__all__ = ["RateLimiterUnavailableError", "RedisRateLimiter", "client_from_url", "key_for"]

logger = logging.getLogger("helpcrunch_async")

#: Prefix of every Redis key this module writes.
KEY_PREFIX = "helpcrunch-async:ratelimit:"
#: Share of the rate a process allows itself when Redis is down and fallback is on, before
#: it has seen the fleet's size in Redis (afterwards: one over that size).
DEFAULT_LOCAL_SHARE = 0.25
#: Seconds ahead a background caller may reserve a slot: enough to hide a round trip, short
#: enough that an interactive call from any process finds the next slot free.
BACKGROUND_LOOKAHEAD = 0.05
#: Shortest sleep between two asks of a caller whose slot is not yet within reach.
MIN_POLL = 0.005
#: Seconds ``from_url``'s clients wait to connect and for an answer.
CONNECT_TIMEOUT = 5.0
#: Seconds one script call may take, whatever the client's own timeouts (a stuck Redis
#: must not hold callers for ever); a call that takes longer counts as a failure.
CALL_TIMEOUT = 10.0
#: Seconds a failing Redis call is retried (a failover, a resharding) before it counts as
#: unavailable; the first retry waits ``RETRY_FIRST_WAIT``, each next one twice as long.
RETRY_FOR = 1.5
RETRY_FIRST_WAIT = 0.05
#: A reply asking to wait longer than this many windows is not believed (a hostile reply
#: must not park callers for ever; a real wait this long needs 100 callers per slot).
MAX_DELAY_WINDOWS = 100
#: Characters of a Redis error kept in messages and logs.
MAX_ERROR_TEXT = 200
#: The script replies with this many short strings, each at most ``MAX_REPLY_ITEM`` long.
REPLY_ITEMS = 6
MAX_REPLY_ITEM = 64
#: Largest fleet size and sequence number believed from Redis (a hostile reply could claim
#: any number; a sequence number past 2**53 would no longer count exactly in Lua).
MAX_FLEET = 100_000
MAX_SEQ = 2**53

_CLIENTS = (
    redis_sync.Redis,
    redis_asyncio.Redis,
    redis_cluster.RedisCluster,
    redis_asyncio_cluster.RedisCluster,
)
_ASYNC_CLIENTS = (redis_asyncio.Redis, redis_asyncio_cluster.RedisCluster)
#: The clients ``RedisRateLimiter`` takes (a Sentinel's ``master_for()`` is a ``Redis``).
RedisClient = (
    redis_sync.Redis
    | redis_asyncio.Redis
    | redis_cluster.RedisCluster
    | redis_asyncio_cluster.RedisCluster
)
#: What a Redis client can raise: a connection problem, an error reply, a cluster problem.
_FAILURES = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError)
#: Those of them that a failover or a resharding causes, and that a moment later may not:
#: retried for ``RETRY_FOR`` (an error reply such as WRONGTYPE or OOM is not).
_TRANSIENT_FAILURES = (
    redis.exceptions.ConnectionError,  # BusyLoadingError, a Sentinel's "no master" too
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterError,  # CLUSTERDOWN, MASTERDOWN
    redis.exceptions.AskError,  # MOVED too, when redis-py's own redirects run out
    redis.exceptions.SlotNotCoveredError,
    OSError,
)

# KEYS (one hash slot): state hash (tat, base, since, probe_wait, hold_until, punished,
# stated, seen_limit, seen_window, seq, replid), grants zset (slot times), fleet zset (caller id
# -> last call). ARGV: mode ("acquire"/"penalize"/"observe"), requests, window, burst, pause
# (-1: none), idle ttl ms, the learning constants (floor share, probe min, probe max); then
# the glue's: highest seq this caller saw, "1" if it distrusts the state, its fleet id, and a
# clock override ("" for Redis's TIME; tests only); then per, ahead (acquire: reserve only a
# slot at most this many seconds away, -1: any) and the headers' limit, window, remaining,
# reset (-1: absent). Returns strings: the result (acquire: the seconds until the reserved
# slot, or minus the seconds until the next slot when it was farther than ``ahead`` and
# nothing was reserved; penalize/observe: the pause applied), the fleet size, the seq, "1" if
# the state was found lost, the capacity in force and the learned limit (-1: none). The
# arithmetic mirrors helpcrunch_async._limiter.GCRA (tests/test_redis.py checks it against
# GCRA, decision by decision).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if ARGV[13] ~= '' then now = tonumber(ARGV[13]) end  -- the differential test's clock
local mode = ARGV[1]
local requests = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local pause = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local floor_share, probe_min, probe_max = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local per = tonumber(ARGV[14])
local ahead = tonumber(ARGV[15])
local info_limit, info_window = tonumber(ARGV[16]), tonumber(ARGV[17])
local info_remaining, info_reset = tonumber(ARGV[18]), tonumber(ARGV[19])
-- Numbers go to Redis as text: 17 digits round-trip a double (tostring keeps 14), so the
-- stored schedule is exactly the computed one, as in GCRA.
local function exact(x) return string.format('%.17g', x) end

local s = redis.call('HMGET', KEYS[1], 'tat', 'base', 'since', 'probe_wait', 'hold_until',
                     'punished', 'stated', 'seen_limit', 'seen_window')
local tat = tonumber(s[1]) or -1e300
local base = tonumber(s[2]) or requests
local since = tonumber(s[3]) or -1e300
local probe_wait = tonumber(s[4]) or probe_min
local hold_until = tonumber(s[5]) or -1e300
local punished = tonumber(s[6]) or -1
local stated = tonumber(s[7]) or -1
local seen_limit = tonumber(s[8]) or -1
local seen_window = tonumber(s[9]) or -1

local function top()
  if stated > 0 and stated < requests then return stated end
  return requests
end
local function floor_cap()
  return math.max(1, math.floor(requests * floor_share))
end
local function probing(at)
  local windows = math.floor(math.max(0, at - since) / window)
  return math.max(0, windows - probe_wait + 1)
end
local function capacity(at)
  local highest = top()
  if base >= highest then return highest end
  local probes = probing(at)
  if probes == 0 then return base end
  return math.min(highest, (base + 1) * 2 ^ math.min(probes - 1, 40))
end
local function tau(cap)
  return (math.min(burst, cap) - 1) * (window / cap)
end
local function next_time(at)
  local cap = capacity(at)
  local slot = math.max(at, tat - tau(cap))
  if redis.call('ZCARD', KEYS[2]) >= cap then
    local oldest = redis.call('ZRANGE', KEYS[2], -cap, -cap, 'WITHSCORES')
    slot = math.max(slot, tonumber(oldest[2]) + window)
  end
  return slot
end
local function pause_all(seconds)
  tat = math.max(tat, now + seconds + tau(capacity(now)))
end
local result = 0

-- BEGIN lost-state guard (Python glue: RedisRateLimiter._run). A state that is missing
-- while a caller saw it (restart without persistence, eviction, failover), that went back
-- in time (a promoted replica behind the primary), that was written under another
-- replication ID (failover, restore) or that a caller distrusts (it granted locally while
-- Redis was away) may have lost grants the server still counts: assume the last window was
-- full, so nobody is granted for one window, then resume at the steady pace, no burst.
local seen_seq, suspect = tonumber(ARGV[10]), ARGV[11] == '1'
-- INFO may be refused by an ACL: then no replication ID, and only callers' memory guards.
local info = redis.pcall('INFO', 'replication')
local replid = type(info) == 'string' and string.match(info, 'master_replid:(%w+)') or ''
local g = redis.call('HMGET', KEYS[1], 'seq', 'replid')
local stored_seq = tonumber(g[1]) or 0
local lost = suspect or stored_seq < seen_seq or (s[1] ~= false and g[2] ~= replid)
if lost then
  tat = math.max(tat, now + window + tau(capacity(now)))
  redis.call('HSET', KEYS[1], 'seq', tostring(math.max(stored_seq, seen_seq)))
end
-- END lost-state guard

if mode == 'acquire' then
  local slot = next_time(now)
  if ahead >= 0 and slot - now > ahead then
    result = -(slot - now)  -- out of this caller's reach: nothing reserved
  else
    tat = math.max(tat, slot) + window / capacity(slot)  -- as GCRA.take: the rate at the slot
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    redis.call('ZADD', KEYS[2], exact(slot), tostring(seq))
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(requests + 1))
    result = slot - now
  end
elseif mode == 'penalize' then
  local lesson = now >= hold_until
  if lesson then
    local cap = capacity(now)
    local sent = redis.call('ZCOUNT', KEYS[2], '(' .. exact(now - per), exact(now))
    local p = math.max(1, math.min(cap, sent))
    if punished < 0 or base >= top() then
      probe_wait = probe_min
    elseif cap > base then
      if p <= punished then
        probe_wait = math.min(probe_max, 2 * probe_wait)
      else
        probe_wait = probe_min
      end
    end
    punished = p
    base = math.max(floor_cap(), p - 1)
    since = now
  end
  local cap = capacity(now)
  if pause < 0 then pause = window / cap end
  pause = math.min(pause, window)
  pause_all(pause)
  if lesson then hold_until = math.max(now + pause, next_time(now)) end
  result = pause
else
  if info_limit > 0 and (info_limit ~= seen_limit or info_window ~= seen_window) then
    seen_limit, seen_window = info_limit, info_window
    local their = per
    if info_window > 0 then their = info_window end
    local st = math.max(1, math.floor(info_limit * per / their))
    if st < requests then stated = st else stated = -1 end
    base = top()
    since = now
    probe_wait = probe_min
  end
  if info_remaining == 0 and info_reset >= 0 then
    result = math.min(info_reset, window)
    pause_all(result)
  end
end

redis.call('HSET', KEYS[1], 'tat', exact(tat), 'base', exact(base), 'since', exact(since),
           'probe_wait', exact(probe_wait), 'hold_until', exact(hold_until),
           'punished', exact(punished), 'stated', exact(stated),
           'seen_limit', exact(seen_limit), 'seen_window', exact(seen_window))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local in_force = capacity(now)
local learned = -1
if in_force < requests then learned = math.min(base, top()) end

-- BEGIN fleet heartbeat: every caller marks itself alive; the fleet is who called within a
-- window (its size sets the share of the local fallback), the schedule's identity goes back.
redis.call('HSET', KEYS[1], 'replid', replid)
redis.call('ZADD', KEYS[3], exact(now), ARGV[12])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', exact(now - window))
redis.call('PEXPIRE', KEYS[3], ttl)
local fleet = redis.call('ZCARD', KEYS[3])
local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
return {exact(result), tostring(fleet), seq, lost and '1' or '0', exact(in_force),
        exact(learned)}
-- END fleet heartbeat
"""


def key_for(api_key: str) -> str:
    """The Redis key for an API key: a prefix and a SHA-256 fingerprint as a hash tag.

    The fingerprint is never the key; the braces make every key derived from this one live
    in one Redis Cluster hash slot.
    """
    return f"{KEY_PREFIX}{{{api_key_fingerprint(api_key)}}}"


def _hash_tagged(key: str) -> str:
    """``key`` if it already holds a Redis Cluster hash tag (``{...}``), else ``{key}``."""
    opening = key.find("{")
    closing = key.find("}", opening + 1)
    if opening >= 0 and closing > opening + 1:
        return key
    return "{" + key + "}"


def client_from_url(url: str) -> redis_sync.Redis | redis_cluster.RedisCluster:
    """A synchronous redis-py client for a URL (schemes: see the module's docstring).

    Raises:
        ValueError: an unknown scheme, or a Sentinel URL without a service name.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("a Redis URL looks like redis://host:6379/0")
    timeouts: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": CONNECT_TIMEOUT,
    }
    base, _, topology = scheme.lower().partition("+")
    if base not in ("redis", "rediss", "unix") or (base == "unix" and topology):
        raise ValueError(f"unknown Redis URL scheme {scheme!r}")
    if not topology:
        return redis_sync.Redis.from_url(url, **timeouts)
    if topology == "cluster":
        if urlsplit(url).path.strip("/") not in ("", "0"):
            raise ValueError("a Redis Cluster has only database 0")
        return redis_cluster.RedisCluster.from_url(
            f"{base}://{rest}", require_full_coverage=False, **timeouts
        )
    if topology == "sentinel":
        return _sentinel_client(base == "rediss", rest, timeouts)
    raise ValueError(f"unknown Redis URL scheme {scheme!r}")


def _sentinel_client(tls: bool, rest: str, timeouts: dict[str, Any]) -> redis_sync.Redis:
    parts = urlsplit("//" + rest)
    if parts.query or parts.fragment:
        raise ValueError("a Sentinel URL takes no options: build the client for those")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ValueError("a Sentinel URL names its sentinels as host:port[,host:port...]")
        sentinels.append((name.strip("[]"), int(port)))
    service, *db = [unquote(p) for p in parts.path.split("/") if p] or [""]
    if not service or len(db) > 1 or not all(d.isdigit() for d in db):
        raise ValueError("a Sentinel URL ends with /service or /service/db")
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        sentinels, sentinel_kwargs=dict(timeouts), **timeouts
    )
    client: redis_sync.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        service,
        db=int(db[0]) if db else 0,
        username=unquote(user) or None,
        password=unquote(password) or None,
        ssl=tls,
    )
    return client


class RedisRateLimiter:
    """A ``RateLimiter`` shared through Redis by every client using the same API key.

    Args:
        client: A ``redis.Redis``, ``redis.cluster.RedisCluster`` or Sentinel
            ``master_for(...)`` client (used from a worker thread: works under asyncio and
            trio), or a ``redis.asyncio`` one of these (asyncio only).
        limit: The budget (``RateLimit()``, HelpCrunch's default, when omitted).
        key: The Redis key to keep the schedule under (wrapped in a hash tag unless it has
            one); by default derived from the API key of the client this limiter is given to.
        on_unavailable: ``"fail"`` (default) raises ``RateLimiterUnavailableError`` when Redis
            cannot be used; ``"local"`` falls back to a local limiter at this process's share.
        local_share: Share of the rate for the local fallback. By default one over the size
            of the fleet last seen in Redis (``DEFAULT_LOCAL_SHARE`` before any), which keeps
            the fleet within the limit; a fixed share lets ``n`` processes send up to
            ``n * local_share`` of the limit.
        requests, per, burst, margin: Deprecated: pass ``limit=RateLimit(...)``.

    Example:
        >>> limiter = RedisRateLimiter.from_url("redis://localhost:6379/0")  # doctest: +SKIP
        >>> client = HelpCrunch(rate_limit=limiter)  # doctest: +SKIP
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        limit: RateLimit | None = None,
        key: str | None = None,
        on_unavailable: Literal["fail", "local"] = "fail",
        local_share: float | None = None,
        requests: int | None = None,
        per: float | None = None,
        burst: int | None = None,
        margin: float | None = None,
    ) -> None:
        if not isinstance(client, _CLIENTS):
            raise TypeError(
                "client must be a redis-py client (Redis, RedisCluster, a Sentinel's"
                f" master_for(), or their redis.asyncio twins), not {type(client).__name__}"
            )
        if on_unavailable not in ("fail", "local"):
            raise ValueError(f"on_unavailable must be 'fail' or 'local', got {on_unavailable!r}")
        share: object = local_share  # checked as what a caller may really pass
        if share is not None and (not is_number(share) or not 0 < share <= 1):
            raise ValueError(f"local_share must be a number in (0, 1], got {share!r}")
        given_key: object = key
        if given_key is not None and (not isinstance(given_key, str) or not given_key):
            raise ValueError("key must be a non-empty string")
        self.limit = _limit_from(limit, requests=requests, per=per, burst=burst, margin=margin)
        self.key = None if key is None else _hash_tagged(key)
        self._fingerprint: str | None = None
        self.on_unavailable = on_unavailable
        self.local_share = local_share
        self._client = client
        self._owned: list[RedisClient] = []
        self._script: Script | AsyncScript = client.register_script(_SCRIPT)
        self._line = PriorityGate(1)
        self._member = secrets.token_hex(8)
        #: Highest schedule sequence number seen (0: never talked to Redis).
        self._seen_seq = 0
        #: Fleet size at the last reply (0: unknown).
        self.fleet_size = 0
        self._last_reply: float | None = None
        self._last_local: float | None = None
        self._fallback: TokenBucketLimiter | None = None
        self._fallback_from = -math.inf
        self._degraded = False
        #: Script calls made (Redis round trips, before any NOSCRIPT reload or retry).
        self.round_trips = 0
        #: Times Redis was found to have lost the schedule (the fleet then paused a window).
        self.lost_states = 0
        #: Grants made by the local fallback while Redis could not be used.
        self.local_grants = 0
        #: What the last script call said: the shared rate in force and the learned limit.
        self._capacity = self.limit.requests
        self._learned: int | None = None
        self._info_seen: tuple[int, float | None] | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        limit: RateLimit | None = None,
        key: str | None = None,
        on_unavailable: Literal["fail", "local"] = "fail",
        local_share: float | None = None,
        requests: int | None = None,
        per: float | None = None,
        burst: int | None = None,
        margin: float | None = None,
    ) -> RedisRateLimiter:
        """Connect to a Redis, a Redis Cluster or a Sentinel service named by ``url``.

        Schemes: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+cluster://``,
        ``redis+sentinel://host:port[,host:port]/service[/db]`` (and their ``rediss+``
        forms); see the module's docstring. Other options as the class; ``aclose()`` closes
        the connections made here.

        Raises:
            ValueError: the URL is not one of those.
            RateLimiterUnavailableError: a cluster could not be reached (redis-py asks a
                cluster for its slots at once; the other clients connect on first use).
        """
        try:
            client = client_from_url(url)
        except _FAILURES as exc:
            raise RateLimiterUnavailableError(
                f"the shared rate limiter (Redis) is unavailable: {_describe(exc)}"
            ) from exc
        limiter = cls(
            client,
            limit=limit,
            key=key,
            on_unavailable=on_unavailable,
            local_share=local_share,
            requests=requests,
            per=per,
            burst=burst,
            margin=margin,
        )
        limiter._owned.append(client)
        return limiter

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self.limit!r}, on_unavailable={self.on_unavailable!r})"

    def scope(self, fingerprint: str) -> None:
        """Bind to an API key's fingerprint (the client calls this), unless ``key`` was given.

        Raises:
            ValueError: the limiter already serves another API key.
        """
        if self._fingerprint not in (None, fingerprint):
            raise ValueError(
                "this RedisRateLimiter already serves another API key; create one per key"
            )
        self._fingerprint = fingerprint
        if self.key is None:
            self.key = f"{KEY_PREFIX}{{{fingerprint}}}"

    # --- the rate limiter's side: traffic classes, max_wait, learning (see _limiter) --------

    @property
    def current_rate(self) -> int:
        """Requests per window the fleet allows itself, as of this process's last round trip."""
        return self._capacity

    @property
    def learned_limit(self) -> int | None:
        """The key's limit the fleet learned (below the configured rate), or ``None``.

        As of this process's last round trip: one process's 429 teaches every process.
        """
        return self._learned

    async def acquire(
        self, *, priority: Priority = INTERACTIVE, max_wait: float | None = None
    ) -> None:
        """Reserve a shared slot and wait for it; see ``RateLimiter.acquire``.

        Background callers reserve only a slot at most ``BACKGROUND_LOOKAHEAD`` seconds
        away, interactive ones up to an interval further; a farther slot is not reserved:
        the caller sleeps until it comes within reach and asks again, so that an
        interactive call from any process reaches the next slot first (see the module
        docstring).

        Raises:
            LimiterTimeoutError: the slot would come later than ``max_wait`` seconds from
                now; raised as soon as Redis says so, having reserved nothing.
            RateLimiterUnavailableError: Redis could not be used (``on_unavailable="fail"``).
        """
        check_wait(priority, max_wait)
        started = anyio.current_time()
        last_delay: float | None = None
        try:
            async with self._line.enter(priority, max_wait):
                while True:
                    left = math.inf
                    if max_wait is not None:
                        left = max(0.0, max_wait - (anyio.current_time() - started))
                    ahead = min(left, self._lookahead(priority))
                    try:
                        delay = await self._run("acquire", -1.0, ahead=ahead)
                    except _UnavailableError as exc:
                        if self.on_unavailable == "fail":
                            raise RateLimiterUnavailableError(
                                f"the shared rate limiter (Redis) is unavailable: {exc}"
                            ) from exc.__cause__
                        await self._acquire_locally(priority, None if max_wait is None else left)
                        return
                    if delay >= 0:
                        if delay > 0:
                            logger.debug("redis rate limiter: waiting %.3f s for a slot", delay)
                            await anyio.sleep(delay)
                        return
                    last_delay = -delay
                    if last_delay > left:
                        raise refusal(last_delay, max_wait)
                    # Nothing reserved: ask again when the slot comes within reach.
                    await anyio.sleep(max(last_delay - self._lookahead(priority), MIN_POLL))
        except LimiterTimeoutError as exc:
            if exc.retry_after is None and last_delay is not None:
                raise refusal(last_delay, max_wait) from None
            raise

    def _lookahead(self, priority: Priority) -> float:
        """How far ahead a caller of ``priority`` may reserve: the two thresholds."""
        if priority == INTERACTIVE:
            return self.limit.window / self._capacity + BACKGROUND_LOOKAHEAD
        return BACKGROUND_LOOKAHEAD

    async def on_rate_limited(self, retry_after: float | None) -> None:
        """Push the shared schedule back for every process, and teach them the key's limit."""
        try:
            pause = await self._run("penalize", -1.0 if retry_after is None else retry_after)
        except _UnavailableError:
            if self._fallback is not None:
                await self._fallback.on_rate_limited(retry_after)
            return
        logger.debug(
            "redis rate limiter: 429 received, everyone pauses %.3f s; rate now %d per %g s",
            pause,
            self._capacity,
            self.limit.per,
        )

    async def on_rate_limit_info(self, info: RateLimitInfo) -> None:
        """Share what a response's rate-limit headers said (a round trip only when it matters)."""
        seen = None if info.limit is None else (info.limit, info.window)
        exhausted = info.remaining == 0 and info.reset is not None
        if not exhausted and (seen is None or seen == self._info_seen):
            return
        self._info_seen = seen or self._info_seen
        try:
            await self._run("observe", -1.0, info=info)
        except _UnavailableError:
            if self._fallback is not None:
                await self._fallback.on_rate_limit_info(info)

    # --- end of the rate limiter's side --------------------------------------------------

    async def _acquire_locally(
        self, priority: Priority = INTERACTIVE, max_wait: float | None = None
    ) -> None:
        # Entering the fallback, this process's Redis grants of the last window still count
        # on the server: start once they are a window old, at this process's share.
        if self._fallback is None:
            self._fallback = TokenBucketLimiter(self._local_limit())
            if self._last_reply is not None:
                self._fallback_from = self._last_reply + self.limit.window
        await anyio.sleep_until(self._fallback_from)
        await self._fallback.acquire(priority=priority, max_wait=max_wait)
        self.local_grants += 1
        self._last_local = anyio.current_time()

    def _local_limit(self) -> RateLimit:
        share = self.local_share
        if share is None:
            share = 1 / self.fleet_size if self.fleet_size else DEFAULT_LOCAL_SHARE
        return attrs.evolve(
            self.limit,
            requests=max(1, math.floor(self.limit.requests * share)),
            burst=max(1, math.floor(self.limit.effective_burst * share)),
        )

    async def _run(
        self,
        mode: str,
        pause: float,
        *,
        now: float | None = None,
        ahead: float = math.inf,
        info: RateLimitInfo | None = None,
    ) -> float:
        if self.key is None:
            raise RuntimeError(
                "RedisRateLimiter has no key: pass it to a HelpCrunch client or give key=..."
            )
        # Grants made locally within the last window are unknown to Redis: say so, and the
        # script makes the fleet wait them out.
        suspect = (
            self._last_local is not None
            and anyio.current_time() - self._last_local < self.limit.window
        )
        keys = [self.key + ":state", self.key + ":grants", self.key + ":fleet"]
        args = [*self._arithmetic_args(mode, pause)]
        args += [self._seen_seq, "1" if suspect else "0", self._member, "" if now is None else now]
        args += self._learning_args(ahead, info)
        self.round_trips += 1
        raw = await self._call_with_retries(keys, args)
        try:
            delay, fleet, seq, lost, capacity, learned = _parse_reply(raw, self.limit)
        except ValueError as exc:
            self._note_unavailable(exc)
            raise _UnavailableError(str(exc)) from exc
        if lost:
            self.lost_states += 1
            logger.warning(
                "Redis lost the shared schedule (restart, failover or eviction): the fleet"
                " waits one window before sending again"
            )
        self._seen_seq = max(self._seen_seq, seq)
        self.fleet_size = fleet
        self._capacity, self._learned = capacity, learned
        self._last_reply = anyio.current_time()
        if suspect:
            self._last_local = None  # told: the script made the fleet wait them out
        self._fallback = None
        if self._degraded:
            self._degraded = False
            logger.warning("Redis rate limiter usable again; sharing the limit through it")
        return delay

    def _arithmetic_args(self, mode: str, pause: float) -> list[str | int | float]:
        limit = self.limit
        return [
            mode,
            limit.requests,
            limit.window,
            limit.effective_burst,
            pause,
            math.ceil(2 * limit.window * 1000) + 1000,
            ADAPT_FLOOR,
            LEARN_PROBE_MIN,
            LEARN_PROBE_MAX,
        ]

    def _learning_args(self, ahead: float, info: RateLimitInfo | None) -> list[float]:
        """``per``, how far ahead to reserve (-1: any), the headers' fields (-1: absent)."""
        fields: tuple[float | None, ...] = (None,) * 4
        if info is not None:
            fields = (info.limit, info.window, info.remaining, info.reset)
        return [
            self.limit.per,
            -1.0 if math.isinf(ahead) else ahead,
            *(-1.0 if value is None else float(value) for value in fields),
        ]

    async def _call_with_retries(self, keys: list[str], args: list[Any]) -> Any:
        # A failover or a resharding lasts a moment: retry briefly before giving up.
        deadline = anyio.current_time() + RETRY_FOR
        wait = RETRY_FIRST_WAIT
        while True:
            try:
                return await self._call(keys, args)
            except _FAILURES as exc:
                if (
                    not isinstance(exc, _TRANSIENT_FAILURES)
                    or anyio.current_time() + wait > deadline
                ):
                    self._note_unavailable(exc)
                    raise _UnavailableError(_describe(exc)) from exc
            await anyio.sleep(wait)
            wait *= 2

    async def _call(self, keys: list[str], args: list[Any]) -> Any:
        with anyio.fail_after(CALL_TIMEOUT):  # TimeoutError: an OSError, so transient
            if isinstance(self._client, _ASYNC_CLIENTS):
                try:
                    return await self._script(keys=keys, args=args)
                except RuntimeError as exc:
                    if "no running event loop" not in str(exc):  # what asyncio says under trio
                        raise
                    raise RuntimeError(
                        "a redis.asyncio client works under asyncio only; under trio pass"
                        " redis.Redis or redis.cluster.RedisCluster"
                    ) from exc
            call: Callable[[], Any] = functools.partial(self._script, keys=keys, args=args)
            # A thread cannot be interrupted: on a timeout or a cancel, leave it behind.
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)

    def _note_unavailable(self, exc: BaseException) -> None:
        if not self._degraded:  # once per outage, not once per request
            self._degraded = True
            logger.warning(
                "Redis rate limiter unavailable (%s); %s",
                _describe(exc),
                "failing requests"
                if self.on_unavailable == "fail"
                else f"falling back to a local limit of {self._local_limit().requests}"
                f" per {self.limit.per:g} s",
            )

    async def aclose(self) -> None:
        """Close the connections of a client made by ``from_url``."""
        for client in self._owned:
            if isinstance(client, _ASYNC_CLIENTS):
                await client.aclose()
            else:
                await anyio.to_thread.run_sync(client.close)
            pool = getattr(client, "connection_pool", None)  # a cluster has one per node
            manager = getattr(pool, "sentinel_manager", None)
            for sentinel in [] if manager is None else manager.sentinels:
                await anyio.to_thread.run_sync(sentinel.close)
        self._owned.clear()


def _limit_from(limit: RateLimit | None, **legacy: Any) -> RateLimit:
    if limit is not None and not isinstance(limit, RateLimit):
        raise TypeError(f"limit must be a RateLimit, not {type(limit).__name__}")
    given = {name: value for name, value in legacy.items() if value is not None}
    if given:
        warnings.warn(
            f"RedisRateLimiter({', '.join(given)}=...) is deprecated: pass limit=RateLimit(...)",
            DeprecationWarning,
            stacklevel=3,
        )
    return attrs.evolve(RateLimit() if limit is None else limit, **given)


def _describe(exc: BaseException) -> str:
    # Bounded: an error reply is text from the server.
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "..."


def _parse_reply(raw: Any, limit: RateLimit) -> tuple[float, int, int, bool, int, int | None]:
    """The script's reply, checked: anything else is an error, never a crash."""
    if not isinstance(raw, list | tuple) or len(raw) != REPLY_ITEMS:
        raise ValueError("Redis gave an unexpected reply to the rate-limit script")
    if not all(isinstance(item, bytes | str) and len(item) <= MAX_REPLY_ITEM for item in raw):
        raise ValueError("Redis gave an unexpected reply to the rate-limit script")
    try:
        delay, fleet, seq = float(raw[0]), int(raw[1]), int(raw[2])
        capacity, learned = float(raw[4]), float(raw[5])
    except ValueError:
        raise ValueError("Redis gave a non-numeric reply to the rate-limit script") from None
    # A negative delay is a slot out of the caller's reach (nothing reserved).
    bound = MAX_DELAY_WINDOWS * limit.window
    if not (math.isfinite(delay) and -bound <= delay <= bound):
        raise ValueError("Redis asked for an implausible wait")
    if not (0 <= fleet <= MAX_FLEET and 0 <= seq <= MAX_SEQ):
        raise ValueError("Redis gave an implausible schedule")
    if not (1 <= capacity <= limit.requests and -1 <= learned <= limit.requests):
        raise ValueError("Redis gave an implausible rate")
    return (
        delay,
        max(1, fleet),
        seq,
        raw[3] in (b"1", "1"),
        int(capacity),
        int(learned) if learned >= 1 else None,
    )


class _UnavailableError(Exception):
    """Redis could not be used (internal: becomes a fallback or the public error)."""
