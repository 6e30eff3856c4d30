"""Remembering which webhook events were handled, so that a redelivery runs once."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from .._config import finite_number, require_int

__all__ = ["DEFAULT_DEDUP_SIZE", "DEFAULT_DEDUP_TTL", "EventDeduplicator"]

#: Event ids an ``EventDeduplicator`` remembers by default.
DEFAULT_DEDUP_SIZE = 10_000
#: Seconds an ``EventDeduplicator`` remembers an id by default: a day, longer than any
#: redelivery schedule is likely to last.
DEFAULT_DEDUP_TTL = 24 * 3600.0


class EventDeduplicator:
    """The ids of recent events, so that a redelivered event is handled once.

    HelpCrunch redelivers an event (same ``id``, ``attempts`` + 1) when a delivery failed or
    timed out, even if your handler did the work. Claim the id before handling, and release
    it if handling failed, so that the next redelivery is handled:

    ```python
    if dedup.claim(event.id):
        try:
            await handle(event)
        except Exception:
            dedup.release(event.id)
            raise
    ```

    ``WebhookEndpoint(..., deduplicator=dedup)`` does exactly that. Memory is bounded: at most
    ``max_events`` ids (the oldest forgotten first), each for at most ``ttl`` seconds. It
    lives in one process; a fleet of bot processes needs a shared store (Redis ``SET NX EX``
    on the event id does the same job).

    Args:
        max_events: Ids remembered at most.
        ttl: Seconds an id is remembered.
        clock: Monotonic seconds; ``time.monotonic`` unless a test passes its own.
    """

    def __init__(
        self,
        *,
        max_events: int = DEFAULT_DEDUP_SIZE,
        ttl: float = DEFAULT_DEDUP_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        require_int(max_events, "max_events", minimum=1)
        self.max_events = max_events
        self.ttl = finite_number(ttl, "ttl")
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"EventDeduplicator(max_events={self.max_events}, ttl={self.ttl}, held={len(self)})"

    def _expire(self) -> None:
        now = self._clock()
        while self._seen:
            event_id, at = next(iter(self._seen.items()))
            if now - at < self.ttl:
                return
            del self._seen[event_id]

    def claim(self, event_id: str) -> bool:
        """Record ``event_id``; ``True`` if it was not already recorded (handle the event).

        Raises:
            TypeError: ``event_id`` is not a str.
        """
        if not isinstance(event_id, str):
            raise TypeError(f"event_id must be a str, not {type(event_id).__name__}")
        self._expire()
        if event_id in self._seen:
            return False
        self._seen[event_id] = self._clock()
        while len(self._seen) > self.max_events:
            self._seen.popitem(last=False)
        return True

    def release(self, event_id: str) -> None:
        """Forget ``event_id`` (its handling failed), so that a redelivery is handled."""
        self._seen.pop(event_id, None)

    def __contains__(self, event_id: object) -> bool:
        self._expire()
        return event_id in self._seen

    def __len__(self) -> int:
        self._expire()
        return len(self._seen)
