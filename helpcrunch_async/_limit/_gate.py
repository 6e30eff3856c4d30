"""A priority gate: ``permits`` holders at a time, two traffic classes, each in FIFO order.

The waiting line of the connection slots (``max_connections`` permits), so that a background
call never holds a slot an interactive one waits for:

- within a class, callers are served in arrival order;
- a queued ``"interactive"`` caller is served before every queued ``"background"`` one;
- ``"background"`` callers are not starved: with no interactive caller waiting they get
  every permit;
- a released permit goes straight to the next waiter (no barging), and a waiter cancelled
  or past its deadline while queued took nothing, so it costs the others nothing.

``Lanes`` are the rate limiters' waiting lines: one gate of one permit per class, so each
class has a head of its own watching the schedule. A background head sleeping until its
slot (paying for an interactive burst, say) never holds an interactive caller back.

Deadlines are absolute, on ``anyio.current_time()``'s clock, as trio's cancel scopes are:
the caller (``_turn.Turn``) turns a call's ``max_wait`` into one deadline that every gate
on its way shares.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import TYPE_CHECKING, Literal

import anyio

from .._config import require_int
from .._errors import LimiterTimeoutError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["BACKGROUND", "INTERACTIVE", "PRIORITIES", "Lanes", "Priority", "PriorityGate"]

#: A call's traffic class.
Priority = Literal["interactive", "background"]
INTERACTIVE: Priority = "interactive"
BACKGROUND: Priority = "background"
#: The classes, highest first.
PRIORITIES: tuple[Priority, ...] = (INTERACTIVE, BACKGROUND)


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False


class PriorityGate:
    """At most ``permits`` holders at once; waiters served interactive first, FIFO in a class.

    Examples:
        >>> gate = PriorityGate(10)
        >>> async with gate.enter("background"):  # doctest: +SKIP
        ...     ...  # at most 10 tasks are here at once

    Args:
        permits: How many callers may hold the gate at once.
        reserve: Permits background callers leave free for interactive ones (never all of
            them: at least one permit is always open to background work). With background
            callers holding every other permit while they wait elsewhere (for the rate
            limiter, say), an interactive caller still finds a permit at once.
    """

    def __init__(self, permits: int, *, reserve: int = 0) -> None:
        self.permits = require_int(permits, "permits", minimum=1)
        self.reserve = min(require_int(reserve, "reserve", minimum=0), permits - 1)
        self._free = permits
        self._queues: dict[Priority, deque[_Waiter]] = {p: deque() for p in PRIORITIES}

    def __repr__(self) -> str:
        return (
            f"PriorityGate(permits={self.permits}, free={self._free}, "
            f"waiting={self.waiting(INTERACTIVE)}+{self.waiting(BACKGROUND)})"
        )

    @property
    def free(self) -> int:
        """Permits free right now (at most ``reserve`` while anyone is queued)."""
        return self._free

    def _open_to(self, priority: Priority) -> bool:
        """Whether a free permit may go to a caller of ``priority`` now."""
        return self._free > (0 if priority == INTERACTIVE else self.reserve)

    def waiting(self, priority: Priority | None = None) -> int:
        """Callers queued in ``priority`` (both classes when ``None``)."""
        if priority is None:
            return sum(len(q) for q in self._queues.values())
        return len(self._queues[priority])

    def ahead_of(self, priority: Priority) -> int:
        """Callers a newcomer of ``priority`` would find ahead of it in the line."""
        if priority == INTERACTIVE:
            return len(self._queues[INTERACTIVE])
        return self.waiting()

    @contextlib.asynccontextmanager
    async def enter(
        self, priority: Priority = INTERACTIVE, deadline: float | None = None
    ) -> AsyncIterator[None]:
        """Hold one permit for the block; wait for it in ``priority``'s line.

        Raises:
            LimiterTimeoutError: no permit by ``deadline`` (``retry_after`` is ``None``: when
                a holder leaves cannot be predicted). Nothing was taken.
        """
        await self.acquire(priority, deadline)
        try:
            yield
        finally:
            self.release()

    async def acquire(
        self, priority: Priority = INTERACTIVE, deadline: float | None = None
    ) -> None:
        """Take one permit, waiting in line; pair with ``release()`` (prefer ``enter``)."""
        if self._open_to(priority) and not self.ahead_of(priority):
            self._free -= 1
            return
        if deadline is not None and deadline <= anyio.current_time():
            raise LimiterTimeoutError("no free slot, and no time left to wait for one")
        waiter = _Waiter()
        queue = self._queues[priority]
        queue.append(waiter)
        try:
            if deadline is None:  # the common case: no cancel scope to set up and tear down
                await waiter.event.wait()
            else:
                with anyio.CancelScope(deadline=deadline):
                    await waiter.event.wait()
        except BaseException:
            self._abandon(waiter, queue)
            raise
        if not waiter.granted:
            queue.remove(waiter)
            raise LimiterTimeoutError("no free slot within max_wait")

    def release(self) -> None:
        """Give a permit back: straight to the next waiter, or to the free pool."""
        self._free += 1
        for priority in PRIORITIES:
            queue = self._queues[priority]
            if queue and self._open_to(priority):
                self._free -= 1
                waiter = queue.popleft()
                waiter.granted = True
                waiter.event.set()
                return

    def _abandon(self, waiter: _Waiter, queue: deque[_Waiter]) -> None:
        # Cancelled after a release handed us the permit: pass it on, or it would be lost.
        if waiter.granted:
            self.release()
        else:
            queue.remove(waiter)


class Lanes:
    """A rate limiter's waiting lines: one per traffic class, each with one head at a time.

    Within a lane callers are served in arrival order, and only the head watches the
    schedule (nothing polls). The heads of the two lanes wait side by side: an interactive
    caller never queues behind a background head. When both may go at the same moment the
    background head lets the interactive one go first (``wait_for_interactive``).
    """

    def __init__(self) -> None:
        self._gates = {priority: PriorityGate(1) for priority in PRIORITIES}
        #: Set when the interactive head leaves (made when first awaited: an Event needs an
        #: event loop, and a limiter may be built outside one).
        self._moved: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"Lanes(interactive={self.busy(INTERACTIVE)}, background={self.busy(BACKGROUND)})"

    def busy(self, priority: Priority) -> int:
        """Callers in ``priority``'s lane: its head and those queued behind it."""
        gate = self._gates[priority]
        return gate.permits - gate.free + gate.waiting()

    def ahead_of(self, priority: Priority) -> int:
        """Callers a newcomer of ``priority`` would let go first (background: both lanes)."""
        if priority == INTERACTIVE:
            return self.busy(INTERACTIVE)
        return self.busy(INTERACTIVE) + self.busy(BACKGROUND)

    @contextlib.asynccontextmanager
    async def enter(self, priority: Priority, deadline: float | None) -> AsyncIterator[None]:
        """Be the head of ``priority``'s lane for the block; wait in the lane for it.

        Raises:
            LimiterTimeoutError: not the head by ``deadline``; nothing was taken.
        """
        async with self._gates[priority].enter(priority, deadline):
            try:
                yield
            finally:
                if priority == INTERACTIVE and self._moved is not None:
                    self._moved.set()
                    self._moved = None

    async def wait_for_interactive(self) -> None:
        """Wait until the interactive lane's head leaves (granted, cancelled or refused).

        Call only while ``busy("interactive")``: a head is there, and it will leave.
        """
        if self._moved is None:
            self._moved = anyio.Event()
        await self._moved.wait()
