"""Client-side rate limiting: the limiter protocol, GCRA arithmetic, and the local limiter.

The schedule is GCRA (one "theoretical arrival time", ``tat``, per bucket) bounded by a
record of the last ``requests`` grant times:

- GCRA spaces requests ``interval = window / requests`` apart and lets ``burst`` leave at
  once on an idle key, so interactive callers below the rate never wait;
- the record makes the guarantee hard: a request is granted only when the request
  ``requests`` grants ago is at least ``window`` old, so no window ever holds more than
  ``requests``, bursts included.

A 429 pushes ``tat`` forward for everybody (all callers pause together, then resume at the
steady pace without a burst) and lowers the rate (see ``Adaptation``); the rate recovers
step by step while no 429 comes, never above the configured one.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import anyio
import attrs

from ._config import RateLimit

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["GCRA", "RateLimiter", "TokenBucketLimiter", "api_key_fingerprint"]

logger = logging.getLogger("helpcrunch_async")

#: A 429 multiplies the rate by this...
ADAPT_DECREASE = 0.8
#: ...never below this share of the configured rate...
ADAPT_FLOOR = 0.1
#: ...and each full window without a 429 gives back this share of the configured rate.
ADAPT_RECOVERY = 0.1


@runtime_checkable
class RateLimiter(Protocol):
    """What the client needs from a rate limiter; pass any implementation as ``rate_limit=``.

    The client calls ``acquire()`` before every attempt of every request (retries included:
    the server counts rejected requests too), and ``on_rate_limited()`` whenever the server
    answers 429, so that the limiter can hold back every caller, not only the one that got it.
    Implementations must be safe to cancel: a caller cancelled inside ``acquire()`` must not
    cost later callers more than a bounded wait.

    A limiter whose budget belongs to an API key (shared through Redis, say) may also have a
    ``scope(fingerprint: str)`` method: the client calls it once with
    ``api_key_fingerprint(key)``, so the limiter can keep one schedule per key without ever
    seeing the key.
    """

    async def acquire(self) -> None:
        """Wait until one more request may be sent, and count it as sent."""
        ...

    async def on_rate_limited(self, retry_after: float | None) -> None:
        """Report a 429, with the server's ``Retry-After`` in seconds if it sent one."""
        ...


def api_key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for an API key (32 hex digits of a SHA-256)."""
    return hashlib.sha256(b"helpcrunch-async:" + api_key.encode()).hexdigest()[:32]


@attrs.define
class GCRA:
    """The limiter's arithmetic, free of any clock or I/O, so it can be tested with numbers.

    ``next_time(now)`` is the earliest time a request may go; ``take(t)`` records a grant at
    ``t``; ``penalize(now, pause)`` is a 429. Times are seconds on any monotonic clock.
    """

    limit: RateLimit
    tat: float = -math.inf
    grants: deque[float] = attrs.field(factory=deque)
    #: Share of the configured rate in force after the last 429 (1.0: never adapted).
    factor: float = 1.0
    last_penalty: float = -math.inf
    #: No second rate decrease before this time: a burst of 429s is one signal.
    hold_until: float = -math.inf

    def current_factor(self, now: float) -> float:
        """The rate share in force at ``now``: ``factor`` plus the recovery since the last 429."""
        if self.factor >= 1.0:
            return 1.0
        windows = max(0.0, now - self.last_penalty) // self.limit.window
        return min(1.0, self.factor + ADAPT_RECOVERY * windows)

    def capacity(self, now: float) -> int:
        """Requests allowed per window at ``now`` (lower than configured after 429s)."""
        return max(1, math.floor(self.limit.requests * self.current_factor(now)))

    def next_time(self, now: float) -> float:
        """Earliest time >= ``now`` at which a request may be granted."""
        cap = self.capacity(now)
        interval = self.limit.window / cap
        tau = (min(self.limit.effective_burst, cap) - 1) * interval
        t = max(now, self.tat - tau)
        if len(self.grants) >= cap:
            t = max(t, self.grants[-cap] + self.limit.window)
        return t

    def take(self, t: float) -> None:
        """Record a request granted at ``t``."""
        cap = self.capacity(t)
        self.tat = max(self.tat, t) + self.limit.window / cap
        self.grants.append(t)
        while len(self.grants) > self.limit.requests:
            self.grants.popleft()

    def penalize(self, now: float, pause: float | None) -> float:
        """Apply a 429 at ``now``; return the pause applied to every caller.

        Without a ``Retry-After``, the pause is the time the bucket takes to refill its
        burst. The rate drops to ``ADAPT_DECREASE`` of what it was, at most once per pause.
        """
        cap = self.capacity(now)
        interval = self.limit.window / cap
        if pause is None:
            pause = min(self.limit.effective_burst, cap) * interval
        pause = min(pause, self.limit.window)
        if now >= self.hold_until:
            self.factor = max(ADAPT_FLOOR, self.current_factor(now) * ADAPT_DECREASE)
            self.last_penalty = now
            self.hold_until = now + pause
        # Resume at the steady pace, without a burst, once the pause is over.
        cap = self.capacity(now)
        tau = (min(self.limit.effective_burst, cap) - 1) * (self.limit.window / cap)
        self.tat = max(self.tat, now + pause + tau)
        return pause


class TokenBucketLimiter:
    """The local limiter: GCRA on anyio primitives, for one process (asyncio or trio).

    Waiters are served in arrival order. Only the head of the queue watches the clock; the
    others wait on an event until it is their turn, so nothing polls. A waiter cancelled
    while queued never took a slot, so cancellation costs later callers nothing.

    Share one instance between clients of the same process and event loop to share one
    budget; for several processes use ``helpcrunch_async.redis.RedisRateLimiter``.

    Args:
        limit: The budget to keep to.
        clock: Seconds on a monotonic clock; ``anyio.current_time`` (the event loop's
            clock, virtual under a trio ``MockClock``) by default.
    """

    def __init__(
        self, limit: RateLimit | None = None, *, clock: Callable[[], float] | None = None
    ) -> None:
        self.limit = RateLimit() if limit is None else limit
        self._gcra = GCRA(self.limit)
        self._clock = anyio.current_time if clock is None else clock
        self._queue: deque[anyio.Event] = deque()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.limit!r})"

    @property
    def current_rate(self) -> float:
        """Requests per ``per`` seconds allowed now (below the configured rate after 429s)."""
        return self.limit.requests * self._gcra.current_factor(self._clock())

    async def acquire(self) -> None:
        """Wait for a slot, in arrival order; see ``RateLimiter.acquire``."""
        now = self._clock()
        if not self._queue and self._gcra.next_time(now) <= now:
            self._gcra.take(now)
            return
        turn = anyio.Event()
        self._queue.append(turn)
        try:
            if self._queue[0] is not turn:
                await turn.wait()
            while True:
                now = self._clock()
                due = self._gcra.next_time(now)
                if due <= now:
                    break
                logger.debug("rate limiter: waiting %.3f s for a slot", due - now)
                # Re-read the schedule after sleeping: a 429 may have pushed it back.
                await anyio.sleep(due - now)
            self._gcra.take(now)
        finally:
            head = self._queue[0] is turn
            self._queue.remove(turn)
            if head and self._queue:
                self._queue[0].set()

    async def on_rate_limited(self, retry_after: float | None) -> None:
        """Pause every caller and lower the rate; see ``RateLimiter.on_rate_limited``."""
        pause = self._gcra.penalize(self._clock(), retry_after)
        logger.debug(
            "rate limiter: 429 received, pausing %.3f s; rate now %.1f per %.1f s",
            pause,
            self.current_rate,
            self.limit.per,
        )
