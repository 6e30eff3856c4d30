"""The local rate limiter: GCRA on anyio primitives, for the clients of one process."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from .._config import RateLimit, finite_number
from .._errors import LimiterTimeoutError
from ._gate import BACKGROUND, INTERACTIVE, Lanes, Priority
from ._gcra import GCRA
from ._protocol import check_deadline, check_pause, refusal

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._headers import RateLimitHeaders

__all__ = ["LocalRateLimiter"]

logger = logging.getLogger("helpcrunch_async")


class LocalRateLimiter:
    """A ``RateLimiter`` for one process (asyncio or trio): GCRA on anyio primitives.

    What ``HelpCrunch(rate_limit=RateLimit(...))`` builds. Waiters line up in one lane per
    traffic class, in arrival order within each; only the head of each lane watches the
    clock, so nothing polls. An interactive caller never waits behind a background one: when
    both heads may go at the same moment, the interactive one goes first. A waiter cancelled
    or past its deadline in a lane never took a slot, so it costs later callers nothing.

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
        self._lanes = Lanes()
        self._fingerprint: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.limit!r})"

    @property
    def current_rate(self) -> int:
        """Requests per window allowed now (below the configured rate while a lesson holds)."""
        return self._gcra.capacity(self._clock())

    @property
    def learned_limit(self) -> int | None:
        """Requests per window the key was shown to allow, below the configured rate; or ``None``.

        Learned only from evidence (429s that recur at a rate already refused, across
        windows), never from one episode, and ``None`` again once the configured rate has
        been tried for a window without a 429; or the lower limit a server's headers state.
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
        ahead = self._lanes.ahead_of(priority)
        due = self._gcra.next_time(now, priority)
        return max(0.0, due - now) + ahead * self._gcra.interval(now)

    async def acquire(
        self, *, priority: Priority = INTERACTIVE, deadline: float | None = None
    ) -> None:
        """Wait for a slot in ``priority``'s lane; see ``RateLimiter.acquire``.

        Raises:
            LimiterTimeoutError: the slot would come after ``deadline``; raised as soon as
                that is known, having taken nothing.
            TypeError, ValueError: ``deadline`` is not a number (or is too large for a float).
        """
        deadline = check_deadline(deadline)
        now = self._clock()
        if not self._lanes.ahead_of(priority) and self._gcra.next_time(now, priority) <= now:
            self._gcra.take(now)
            return
        if deadline is not None:
            expected = self.expected_wait(priority)
            if now + expected > deadline:  # refuse at once rather than sleep to find out
                raise refusal(expected)
        try:
            async with self._lanes.enter(priority, deadline):
                while True:
                    now = self._clock()
                    due = self._gcra.next_time(now, priority)
                    if due <= now:
                        if priority == BACKGROUND and self._lanes.busy(INTERACTIVE):
                            # The interactive head may go now too (its credit is never less):
                            # it goes first, then this one looks again.
                            await self._lanes.wait_for_interactive()
                            continue
                        break
                    if deadline is not None and due > deadline:
                        raise refusal(due - now)
                    # Re-read the schedule after sleeping: a 429 may have pushed it back.
                    await anyio.sleep(due - now)
                self._gcra.take(now)
        except LimiterTimeoutError as exc:
            if exc.retry_after is None:  # the lane's own timeout: give the limiter's estimate
                raise refusal(self.expected_wait(priority)) from None
            raise

    async def on_rate_limited(self, pause: float | None, *, sent_ago: float | None = None) -> float:
        """Pause every caller after a 429, learn from evidence; see ``RateLimiter``.

        Raises:
            TypeError, ValueError: ``pause`` or ``sent_ago`` is not ``None`` or a finite
                number >= 0.
        """
        pause = check_pause(pause)
        if sent_ago is not None:
            sent_ago = finite_number(sent_ago, "sent_ago", zero=True)
        now = self._clock()
        before = self._gcra.learned_limit(now)
        granted = None if sent_ago is None else now - sent_ago
        applied = self._gcra.penalize(now, pause, granted)
        after = self._gcra.learned_limit(now)
        if after is not None and after != before:
            logger.info(
                "rate limiter: 429s recurred at the rate already refused: the key allows"
                " about %d requests per %g s",
                after,
                self.limit.per,
            )
        return applied

    async def on_rate_limit_headers(self, headers: RateLimitHeaders) -> None:
        """Apply a response's rate-limit headers; see ``RateLimiter.on_rate_limit_headers``."""
        self._gcra.observe(self._clock(), headers)
