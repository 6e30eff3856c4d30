"""A call's turn: a connection slot, then the rate limiter's grant, under one deadline."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .._errors import LimiterTimeoutError
from ._gate import PriorityGate

if TYPE_CHECKING:
    from ._gate import Priority
    from ._protocol import RateLimiter

__all__ = ["INTERACTIVE_SLOTS", "Turn"]

#: Connection slots background calls leave to interactive ones (none when a client has a
#: single slot). At 2 requests a second, the other slots are more than bulk work can use.
INTERACTIVE_SLOTS = 1


class Turn:
    """Grants each attempt its turn: a connection slot first, then the limiter's grant.

    In that order, so that the moment the limiter grants is the moment the request leaves.
    Both wait in the call's traffic class (interactive callers first) and under the same
    deadline, which the caller computes once from its ``max_wait``. One slot stays open to
    interactive calls: background calls hold theirs while they wait for the limiter, and an
    interactive call must not wait for one of them.

    Args:
        slots: Requests in flight at once (the client's ``max_connections``).
        limiter: The rate limiter, or ``None`` for none.
    """

    __slots__ = ("limiter", "slots")

    def __init__(self, slots: int, limiter: RateLimiter | None) -> None:
        self.slots = PriorityGate(slots, reserve=INTERACTIVE_SLOTS)
        self.limiter = limiter

    def __repr__(self) -> str:
        return f"Turn({self.slots!r}, limiter={self.limiter!r})"

    async def acquire(self, priority: Priority, deadline: float | None) -> float:
        """Wait for a slot and the limiter's grant; return the seconds waited for both.

        Pair with ``release()`` once the attempt's exchange is over.

        Raises:
            LimiterTimeoutError: no turn by ``deadline``; nothing was taken.
        """
        if self.limiter is None:  # no clock to read: nothing to report but the slot
            await self.slots.acquire(priority, deadline)
            return 0.0
        started = anyio.current_time()
        await self.slots.acquire(priority, deadline)
        try:
            await _grant(self.limiter, priority, deadline)
        except BaseException:
            self.slots.release()
            raise
        return anyio.current_time() - started

    def release(self) -> None:
        """Give the slot back (the limiter's grant is spent: the request went)."""
        self.slots.release()


async def _grant(limiter: RateLimiter, priority: Priority, deadline: float | None) -> None:
    """The limiter's grant by ``deadline``.

    The limiter refuses past the deadline itself, with its estimate of the wait; the cancel
    scope keeps the promise even for a limiter of your own that would not.
    """
    if deadline is None:
        await limiter.acquire(priority=priority, deadline=None)
        return
    with anyio.CancelScope(deadline=deadline) as scope:
        await limiter.acquire(priority=priority, deadline=deadline)
    if scope.cancelled_caught:
        raise LimiterTimeoutError("no rate-limit slot within max_wait")
