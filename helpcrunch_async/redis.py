"""One rate limit shared by every process and machine using an API key, through Redis.

Needs the ``redis`` extra (``pip install "helpcrunch-async[redis]"``)::

    from helpcrunch_async.redis import RedisRateLimiter

    limiter = RedisRateLimiter.from_url("redis://localhost:6379/0")
    async with HelpCrunch(rate_limit=limiter) as client:
        ...

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

The Redis key is derived from a SHA-256 of the API key (never the key itself) and expires
when idle. Within a process, callers line up in a ``PriorityGate`` (interactive first,
arrival order within a class) and only the head of the line holds a reservation, so a
cancelled caller wastes at most one slot. ``max_wait`` is checked against the slot Redis
computes: a slot beyond it is refused at once, without reserving it.

When Redis cannot be reached, the limiter by default fails the request with
``RateLimiterUnavailableError`` (nothing is sent). With ``on_unavailable="local"`` it falls
back to a local limiter at ``local_share`` of the rate, logging a warning, and returns to
Redis as soon as it answers again. It is never a silent free-for-all.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import TYPE_CHECKING, Any, Literal

import anyio
import redis as redis_sync
import redis.asyncio as redis_asyncio
import redis.exceptions

from ._config import DEFAULT_BURST, DEFAULT_MARGIN, RateLimit
from ._errors import HelpCrunchError, LimiterTimeoutError
from ._gate import INTERACTIVE, Priority, PriorityGate, check_wait
from ._limiter import (
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

__all__ = ["RateLimiterUnavailableError", "RedisRateLimiter", "key_for"]

logger = logging.getLogger("helpcrunch_async")

#: Prefix of every Redis key this module writes.
KEY_PREFIX = "helpcrunch-async:ratelimit:"
#: Share of the rate a process allows itself when Redis is down and fallback is on.
DEFAULT_LOCAL_SHARE = 0.25
#: Seconds ahead a background caller may reserve a slot: enough to hide a round trip, short
#: enough that an interactive call from any process finds the next slot free.
BACKGROUND_LOOKAHEAD = 0.05
#: Shortest sleep between two asks of a background caller (no busy loop on a clock skew).
MIN_POLL = 0.005

# KEYS[1]: state hash (tat, base, since, probe_wait, hold_until, punished, stated, seen_limit,
# seen_window, seq); KEYS[2]: grants zset (score: the slot's time).
# ARGV: mode ("acquire"/"penalize"/"observe"), requests, window, burst, pause (-1: none),
# idle ttl ms, the learning constants (floor share, probe min, probe max), per, ahead (acquire:
# reserve only a slot at most this many seconds away, -1: any), and the headers' limit,
# window, remaining, reset (-1: absent). Returns {result, capacity, learned (-1: none)} as
# strings. result: acquire, the seconds until the reserved slot, or minus the seconds until
# the next slot when it was farther than ``ahead`` (nothing reserved); penalize/observe, the
# pause applied. Mirrors helpcrunch_async._limiter.GCRA line for line.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local mode = ARGV[1]
local requests = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local pause = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local floor_share, probe_min, probe_max = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local per = tonumber(ARGV[10])
local ahead = tonumber(ARGV[11])
local info_limit, info_window = tonumber(ARGV[12]), tonumber(ARGV[13])
local info_remaining, info_reset = tonumber(ARGV[14]), tonumber(ARGV[15])

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
if mode == 'acquire' then
  local slot = next_time(now)
  if ahead >= 0 and slot - now > ahead then
    result = -(slot - now)
  else
    tat = math.max(tat, slot) + window / capacity(slot)
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    redis.call('ZADD', KEYS[2], slot, tostring(seq))
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(requests + 1))
    result = slot - now
  end
elseif mode == 'penalize' then
  local lesson = now >= hold_until
  if lesson then
    local cap = capacity(now)
    local sent = redis.call('ZCOUNT', KEYS[2], '(' .. tostring(now - per), tostring(now))
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

redis.call('HSET', KEYS[1], 'tat', tostring(tat), 'base', tostring(base),
           'since', tostring(since), 'probe_wait', tostring(probe_wait),
           'hold_until', tostring(hold_until), 'punished', tostring(punished),
           'stated', tostring(stated), 'seen_limit', tostring(seen_limit),
           'seen_window', tostring(seen_window))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local cap = capacity(now)
local learned = -1
if cap < requests then learned = math.min(base, top()) end
return {tostring(result), tostring(cap), tostring(learned)}
"""


class RateLimiterUnavailableError(HelpCrunchError):
    """The shared rate limiter (Redis) could not be reached; the request was not sent."""


def key_for(api_key: str) -> str:
    """The Redis key for an API key: a prefix and a SHA-256 fingerprint, never the key."""
    return KEY_PREFIX + api_key_fingerprint(api_key)


class RedisRateLimiter:
    """A ``RateLimiter`` shared through Redis by every client using the same API key.

    Args:
        client: A ``redis.Redis`` (used from a worker thread: works under asyncio and trio)
            or a ``redis.asyncio.Redis`` (asyncio only).
        requests, per, burst, margin: The budget, as in ``RateLimit``.
        key: The Redis key to keep the schedule under; by default derived from the API key
            of the client this limiter is passed to.
        on_unavailable: ``"fail"`` (default) raises ``RateLimiterUnavailableError`` when Redis
            cannot be reached; ``"local"`` falls back to a local limiter at ``local_share``
            of the rate.
        local_share: Share of the rate for the local fallback.

    Example:
        >>> limiter = RedisRateLimiter.from_url("redis://localhost:6379/0")  # doctest: +SKIP
        >>> client = HelpCrunch(rate_limit=limiter)  # doctest: +SKIP
    """

    def __init__(
        self,
        client: redis_sync.Redis | redis_asyncio.Redis,
        *,
        requests: int = 120,
        per: float = 60.0,
        burst: int = DEFAULT_BURST,
        margin: float = DEFAULT_MARGIN,
        key: str | None = None,
        on_unavailable: Literal["fail", "local"] = "fail",
        local_share: float = DEFAULT_LOCAL_SHARE,
    ) -> None:
        if not isinstance(client, redis_sync.Redis | redis_asyncio.Redis):
            raise TypeError(
                f"client must be a redis.Redis or redis.asyncio.Redis, not {type(client).__name__}"
            )
        if on_unavailable not in ("fail", "local"):
            raise ValueError(f"on_unavailable must be 'fail' or 'local', got {on_unavailable!r}")
        if not 0 < local_share <= 1:
            raise ValueError(f"local_share must be in (0, 1], got {local_share!r}")
        self.limit = RateLimit(requests=requests, per=per, burst=burst, margin=margin)
        self.key = key
        self._fingerprint: str | None = None
        self.on_unavailable = on_unavailable
        self._client = client
        self._script: Script | AsyncScript = client.register_script(_SCRIPT)
        self._line = PriorityGate(1)
        self._fallback = TokenBucketLimiter(
            RateLimit(
                requests=max(1, math.floor(requests * local_share)),
                per=per,
                burst=max(1, math.floor(burst * local_share)),
                margin=margin,
            )
        )
        self._degraded = False
        #: Script calls made (Redis round trips, before any NOSCRIPT reload).
        self.round_trips = 0
        #: What the last script call said: the shared rate in force and the learned limit.
        self._capacity = self.limit.requests
        self._learned: int | None = None
        self._info_seen: tuple[int, float | None] | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        requests: int = 120,
        per: float = 60.0,
        key: str | None = None,
        **kwargs: Any,
    ) -> RedisRateLimiter:
        """Connect to Redis at ``url`` (``redis://host:6379/0``); other options as the class."""
        client = redis_sync.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        return cls(client, requests=requests, per=per, key=key, **kwargs)

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
            self.key = KEY_PREFIX + fingerprint

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
                                f"the shared rate limiter (Redis) is unreachable: {exc}"
                            ) from exc.__cause__
                        wait = None if max_wait is None else left
                        await self._fallback.acquire(priority=priority, max_wait=wait)
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
            await self._fallback.on_rate_limit_info(info)

    # --- end of the rate limiter's side --------------------------------------------------

    async def _run(
        self,
        mode: str,
        pause: float,
        *,
        ahead: float = math.inf,
        info: RateLimitInfo | None = None,
    ) -> float:
        if self.key is None:
            raise RuntimeError(
                "RedisRateLimiter has no key: pass it to a HelpCrunch client or give key=..."
            )
        limit = self.limit
        ttl_ms = math.ceil(2 * limit.window * 1000) + 1000
        keys = [self.key + ":state", self.key + ":grants"]
        args: list[str | int | float] = [
            mode,
            limit.requests,
            limit.window,
            limit.effective_burst,
            pause,
            ttl_ms,
            ADAPT_FLOOR,
            LEARN_PROBE_MIN,
            LEARN_PROBE_MAX,
            limit.per,
            -1.0 if math.isinf(ahead) else ahead,
            *_info_args(info),
        ]
        self.round_trips += 1
        try:
            if isinstance(self._client, redis_asyncio.Redis):
                raw = await self._script(keys=keys, args=args)
            else:
                call = functools.partial(self._script, keys=keys, args=args)
                raw = await anyio.to_thread.run_sync(call)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            if not self._degraded:
                self._degraded = True
                logger.warning(
                    "Redis rate limiter unreachable (%s); %s",
                    exc,
                    "failing requests"
                    if self.on_unavailable == "fail"
                    else f"falling back to a local limit of {self._fallback.limit.requests}"
                    f" per {self.limit.per:g} s",
                )
            raise _UnavailableError(str(exc)) from exc
        if self._degraded:
            self._degraded = False
            logger.warning("Redis rate limiter reachable again; sharing the limit through it")
        return self._read_reply(raw)

    def _read_reply(self, raw: object) -> float:
        """Parse the script's ``{result, capacity, learned}``; anything else is an outage."""
        try:
            result, capacity, learned = (float(x) for x in raw)  # type: ignore[attr-defined]
        except (TypeError, ValueError) as exc:
            raise _UnavailableError(f"unexpected reply from the Redis script: {raw!r:.80}") from exc
        if not all(math.isfinite(x) for x in (result, capacity, learned)):
            raise _UnavailableError("non-finite reply from the Redis script")
        self._capacity = max(1, min(self.limit.requests, int(capacity)))
        self._learned = int(learned) if 0 < learned < self.limit.requests else None
        return result

    async def aclose(self) -> None:
        """Close the connection pool of a client made by ``from_url``."""
        if isinstance(self._client, redis_asyncio.Redis):
            await self._client.aclose()
        else:
            await anyio.to_thread.run_sync(self._client.close)


def _info_args(info: RateLimitInfo | None) -> list[float]:
    """The headers' limit, window, remaining and reset as script arguments (-1: absent)."""
    if info is None:
        return [-1, -1, -1, -1]
    return [-1 if v is None else v for v in (info.limit, info.window, info.remaining, info.reset)]


class _UnavailableError(Exception):
    """Redis could not be reached (internal: becomes a fallback or the public error)."""
