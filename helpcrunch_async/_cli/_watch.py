"""What a set-status job watches in the client's events: the limiter's share, and reachability.

Two facts the client's counters cannot give, read from the same events (an ``on_event``
observer):

- How much of the run was spent waiting for the rate limiter, as wall time. The client sums
  each call's wait, so ten workers waiting together for one second count ten seconds: a
  run of 1m26s "waited 13m53s", which says nothing a user can act on. Here the waits are
  laid on one time line and their union measured: "the limiter held the run back 97 % of
  the time" says the rate, not the server or the network, set the pace.
- Whether the API can be reached at all. The circuit breaker judges each id's final outcome,
  after the client's retries; against a URL where nothing answers (a wrong host, a closed
  port) that takes 10 ids times 6 attempts, which the rate limiter spaces over half a
  minute. No attempt reaching a server for ``UNREACHABLE_AFTER`` seconds says it sooner.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .._send._events import LimiterWaited, ResponseReceived, TransportFailed

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._send._events import ClientEvent

__all__ = ["UNREACHABLE_AFTER", "JobWatch"]

#: Seconds in which every attempt failed to connect (refused, unresolvable, timed out while
#: connecting) that stop a job: longer than a blip the client's retries ride out (a
#: restart, a network handover), short enough that a wrong --base-url stops at once.
UNREACHABLE_AFTER = 10.0
#: Waits shorter than this are no wait for the share: an idle limiter still takes a few
#: microseconds, and thousands of such slivers would only cost memory.
MIN_WAIT = 0.001
#: Separate stretches of waiting kept before the oldest are added up for good.
MAX_SPANS = 1024


class JobWatch:
    """An ``on_event`` observer: limiter time on the wall clock, and connections never made.

    Attributes:
        could_not_connect: Attempts that never reached a server (no connection was made).
        unreachable_for: Seconds without a single connection when the job was stopped for
            it, else ``None``.
        on_unreachable: Called once when ``unreachable_after`` seconds and ``min_failures``
            attempts in a row failed to connect (the job sets it to stop the run).
    """

    def __init__(
        self,
        *,
        unreachable_after: float | None = UNREACHABLE_AFTER,
        min_failures: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._unreachable_after = unreachable_after
        self._min_failures = min_failures
        self.on_unreachable: Callable[[], None] | None = None
        self.could_not_connect = 0
        self.unreachable_for: float | None = None
        # Attempts in a row that could not connect, and when the first of them started.
        self._failures = 0
        self._failing_since: float | None = None
        # Stretches of waiting, disjoint and in order; what came before `_settled_until`
        # is added up in `_settled`.
        self._spans: list[tuple[float, float]] = []
        self._settled = 0.0
        self._settled_until = float("-inf")

    def __repr__(self) -> str:
        return f"JobWatch(could_not_connect={self.could_not_connect})"

    def __call__(self, event: ClientEvent) -> None:
        """Take one event of the client."""
        if isinstance(event, LimiterWaited):
            if event.seconds >= MIN_WAIT:
                self._waited(event.seconds)
        elif isinstance(event, ResponseReceived):
            self._connected()
        elif isinstance(event, TransportFailed):
            if event.request_sent:
                self._connected()  # cut or timed out, but a server was there
            else:
                self._not_connected(event.elapsed)

    @property
    def limiter_seconds(self) -> float:
        """Wall-clock seconds during which at least one call waited for its turn."""
        return self._settled + sum(end - start for start, end in self._spans)

    def _waited(self, seconds: float) -> None:
        # The event comes as the wait ends, so each new stretch ends last: it swallows
        # every stretch it overlaps, all at the end of the list.
        end = self._clock()
        start = max(end - seconds, self._settled_until)
        while self._spans and self._spans[-1][1] >= start:
            start = min(start, self._spans.pop()[0])
        self._spans.append((start, end))
        if len(self._spans) > MAX_SPANS:
            settled = self._spans[: MAX_SPANS // 2]
            del self._spans[: MAX_SPANS // 2]
            self._settled += sum(end - start for start, end in settled)
            self._settled_until = settled[-1][1]

    def _connected(self) -> None:
        self._failures = 0
        self._failing_since = None

    def _not_connected(self, elapsed: float) -> None:
        self.could_not_connect += 1
        self._failures += 1
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now - elapsed
        failing_for = now - self._failing_since
        if (
            self.unreachable_for is None
            and self._unreachable_after is not None
            and self._failures >= self._min_failures
            and failing_for >= self._unreachable_after
        ):
            self.unreachable_for = failing_for
            if self.on_unreachable is not None:
                self.on_unreachable()
