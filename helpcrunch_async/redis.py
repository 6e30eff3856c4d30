"""One rate limit shared by every process and machine using an API key, through Redis.

Needs the ``redis`` extra (``pip install "helpcrunch-async[redis]"``)::

    from helpcrunch_async.redis import RedisRateLimiter

    limiter = RedisRateLimiter.from_url("redis://localhost:6379/0")
    async with HelpCrunch(rate_limit=limiter) as client:
        ...

The arithmetic is the local limiter's (GCRA bounded by a record of the last grants, with the
same 429 pause and rate adaptation), run in one atomic Lua script on the Redis server, with
the time taken from Redis (``TIME``) so that the machines' clocks do not matter. Each grant
is one round trip: the script reserves the next slot and says how long to wait for it.

The Redis key is derived from a SHA-256 of the API key (never the key itself) and expires
when idle. Within a process, callers queue in arrival order and only the head of the queue
holds a reservation, so a cancelled caller wastes at most one slot.

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
from ._errors import RateLimiterUnavailableError
from ._limiter import (
    ADAPT_DECREASE,
    ADAPT_FLOOR,
    ADAPT_RECOVERY,
    TokenBucketLimiter,
    api_key_fingerprint,
)

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript, Script

__all__ = ["RateLimiterUnavailableError", "RedisRateLimiter", "key_for"]

logger = logging.getLogger("helpcrunch_async")

#: Prefix of every Redis key this module writes.
KEY_PREFIX = "helpcrunch-async:ratelimit:"
#: Share of the rate a process allows itself when Redis is down and fallback is on.
DEFAULT_LOCAL_SHARE = 0.25

# KEYS[1]: state hash (tat, factor, last_penalty, hold_until, seq); KEYS[2]: grants zset.
# ARGV: mode ("acquire"/"penalize"), requests, window, burst, pause (-1: none), idle ttl ms,
# and the adaptation constants. Returns, as a string, the seconds to wait (acquire) or the
# pause applied (penalize). Mirrors helpcrunch_async._limiter.GCRA line for line.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local mode = ARGV[1]
local requests = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local pause = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local decrease, floor_share, recovery = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])

local s = redis.call('HMGET', KEYS[1], 'tat', 'factor', 'last_penalty', 'hold_until')
local tat = tonumber(s[1]) or -1e300
local factor = tonumber(s[2]) or 1.0
local last_penalty = tonumber(s[3]) or -1e300
local hold_until = tonumber(s[4]) or -1e300

local function current_factor(at)
  if factor >= 1.0 then return 1.0 end
  local windows = math.floor(math.max(0, at - last_penalty) / window)
  return math.min(1.0, factor + recovery * windows)
end
local function capacity(at)
  return math.max(1, math.floor(requests * current_factor(at)))
end

local cap = capacity(now)
local interval = window / cap
local tau = (math.min(burst, cap) - 1) * interval
local result

if mode == 'acquire' then
  local slot = math.max(now, tat - tau)
  if redis.call('ZCARD', KEYS[2]) >= cap then
    local oldest = redis.call('ZRANGE', KEYS[2], -cap, -cap, 'WITHSCORES')
    slot = math.max(slot, tonumber(oldest[2]) + window)
  end
  tat = math.max(tat, slot) + interval
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZADD', KEYS[2], slot, tostring(seq))
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(requests + 1))
  result = slot - now
else
  if pause < 0 then pause = math.min(burst, cap) * interval end
  pause = math.min(pause, window)
  if now >= hold_until then
    factor = math.max(floor_share, current_factor(now) * decrease)
    last_penalty = now
    hold_until = now + pause
  end
  cap = capacity(now)
  tau = (math.min(burst, cap) - 1) * (window / cap)
  tat = math.max(tat, now + pause + tau)
  result = pause
end

redis.call('HSET', KEYS[1], 'tat', tostring(tat), 'factor', tostring(factor),
           'last_penalty', tostring(last_penalty), 'hold_until', tostring(hold_until))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return tostring(result)
"""


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
        self._queue = anyio.Lock()
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

    async def acquire(self) -> None:
        """Reserve the next shared slot (one round trip) and wait for it."""
        async with self._queue:
            try:
                delay = await self._run("acquire", -1.0)
            except _UnavailableError as exc:
                if self.on_unavailable == "fail":
                    raise RateLimiterUnavailableError(
                        f"the shared rate limiter (Redis) is unreachable: {exc}"
                    ) from exc.__cause__
                await self._fallback.acquire()
                return
            if delay > 0:
                logger.debug("redis rate limiter: waiting %.3f s for a slot", delay)
                await anyio.sleep(delay)

    async def on_rate_limited(self, retry_after: float | None) -> None:
        """Push the shared schedule back for every process, and lower the shared rate."""
        try:
            pause = await self._run("penalize", -1.0 if retry_after is None else retry_after)
        except _UnavailableError:
            await self._fallback.on_rate_limited(retry_after)
            return
        logger.debug("redis rate limiter: 429 received, everyone pauses %.3f s", pause)

    async def _run(self, mode: str, pause: float) -> float:
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
            ADAPT_DECREASE,
            ADAPT_FLOOR,
            ADAPT_RECOVERY,
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
        return float(raw)

    async def aclose(self) -> None:
        """Close the connection pool of a client made by ``from_url``."""
        if isinstance(self._client, redis_asyncio.Redis):
            await self._client.aclose()
        else:
            await anyio.to_thread.run_sync(self._client.close)


class _UnavailableError(Exception):
    """Redis could not be reached (internal: becomes a fallback or the public error)."""
