"""The local rate limiter: GCRA on anyio primitives, for the clients of one process."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from .._config import RateLimit
from .._errors import LimiterTimeoutError
from ._gate import INTERACTIVE, Priority, PriorityGate
from ._gcra import GCRA
from ._protocol import check_deadline, check_pause, refusal

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._headers import RateLimitHeaders

__all__ = ["LocalRateLimiter"]

logger = logging.getLogger("helpcrunch_async")


class LocalRateLimiter:
    """A ``RateLimiter`` for one process (asyncio or trio): GCRA on anyio primitives.

    What ``HelpCrunch(rate_limit=RateLimit(...))`` builds. Waiters line up in a
    ``PriorityGate``: interactive callers before every queued background caller, arrival
    order within a class. Only the head of the line watches the clock; the others wait their
    turn, so nothing polls. A waiter cancelled or past its deadline in the line never took a
    slot, so it costs later callers nothing.

    Share one instance between clients of the same process, event loop and API key to share
    one budget; for several processes use ``helpcrunch_async.redis.RedisRateLimiter``.

    Args:
        limit: The budget to keep to.
        clock: Seconds on a monotonic clock; ``anyio.current_time`` (the event loop's
            clock, virtual under a trio ``MockClock``) by default.
    """

    def __init__(
        self, limit: RateLimit | None = None, *, clock: Callable[[], float] | None = None
    ) -> None:
        self.limit = RateLimit() if limit is None else limit
        if not isinstance(self.limit, RateLimit):
            raise TypeError(f"limit must be a RateLimit, not {type(limit).__name__}")
        self._gcra = GCRA(self.limit)
        self._clock = anyio.current_time if clock is None else clock
        self._line = PriorityGate(1)
        self._fingerprint: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.limit!r})"

    @property
    def current_rate(self) -> int:
        """Requests per window allowed now (below the configured rate once a limit is learned)."""
        return self._gcra.capacity(self._clock())

    @property
    def learned_limit(self) -> int | None:
        """Requests per window the limiter learned the key allows, when below the configured rate.

        ``None`` while the limiter runs at the configured rate (nothing learned, or fully
        recovered since).
        """
        return self._gcra.learned_limit(self._clock())

    def bind_key(self, fingerprint: str) -> None:
        """Serve the API key of ``fingerprint``; see ``RateLimiter.bind_key``.

        Raises:
            ValueError: the limiter already serves another API key (a limit is a key's).
        """
        if self._fingerprint not in (None, fingerprint):
            raise ValueError("this rate limiter already serves another API key; create one per key")
        self._fingerprint = fingerprint

    def expected_wait(self, priority: Priority = INTERACTIVE) -> float:
        """Seconds until a newcomer of ``priority`` would be granted, if nobody else came."""
        now = self._clock()
        ahead = self._line.ahead_of(priority) + (self._line.permits - self._line.free)
        return max(0.0, self._gcra.next_time(now) - now) + ahead * self._gcra.interval(now)

    async def acquire(
        self, *, priority: Priority = INTERACTIVE, deadline: float | None = None
    ) -> None:
        """Wait for a slot in ``priority``'s line; see ``RateLimiter.acquire``.

        Raises:
            LimiterTimeoutError: the slot would come after ``deadline``; raised as soon as
                that is known, having taken nothing.
            TypeError, ValueError: ``deadline`` is not a number (or is too large for a float).
        """
        deadline = check_deadline(deadline)
        now = self._clock()
        idle = not self._line.ahead_of(priority) and self._line.free
        if idle and self._gcra.next_time(now) <= now:
            self._gcra.take(now)
            return
        if deadline is not None:
            expected = self.expected_wait(priority)
            if now + expected > deadline:  # refuse at once rather than sleep to find out
                raise refusal(expected)
        try:
            async with self._line.enter(priority, deadline):
                while True:
                    now = self._clock()
                    due = self._gcra.next_time(now)
                    if due <= now:
                        break
                    if deadline is not None and due > deadline:
                        raise refusal(due - now)
                    # Re-read the schedule after sleeping: a 429 may have pushed it back.
                    await anyio.sleep(due - now)
                self._gcra.take(now)
        except LimiterTimeoutError as exc:
            if exc.retry_after is None:  # the line's own timeout: give the limiter's estimate
                raise refusal(self.expected_wait(priority)) from None
            raise

    async def on_rate_limited(self, pause: float | None) -> float:
        """Pause every caller and learn the key's limit; see ``RateLimiter.on_rate_limited``.

        Raises:
            TypeError, ValueError: ``pause`` is not ``None`` or a finite number >= 0.
        """
        pause = check_pause(pause)
        before = self.learned_limit
        applied = self._gcra.penalize(self._clock(), pause)
        after = self.learned_limit
        if after is not None and after != before:
            logger.info(
                "rate limiter: learned that the key allows about %d requests per %g s",
                after,
                self.limit.per,
            )
        return applied

    async def on_rate_limit_headers(self, headers: RateLimitHeaders) -> None:
        """Apply a response's rate-limit headers; see ``RateLimiter.on_rate_limit_headers``."""
        self._gcra.observe(self._clock(), headers)
