"""What every bulk helper shares: its options checked once, the run built, the result collected.

``client.chats.stream_update_status``, ``client.customers.stream_tag``... each say what one
id's operation is and how the journal names it; this module does the rest the same way for
all of them: the options checked before anything is sent, the run made background traffic,
its outcomes reported as events, and ``bulk_*`` collecting a stream into a ``BulkResult``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import attrs

from .._bulk._breaker import CircuitBreaker
from .._bulk._engine import OutcomeStream, as_journal
from .._bulk._outcomes import BulkOutcome, BulkResult, Progress, outcome_key
from .._bulk._protocol import BulkJournal
from .._config import MAX_CONCURRENCY, require_int
from .._limit._gate import BACKGROUND
from .._send._events import BulkItemDone
from .._settings import validate_callback

if TYPE_CHECKING:
    from ._base import Resource

__all__ = ["BulkOptions", "bulk_run", "collect"]

S = TypeVar("S", bound="Resource")
R = TypeVar("R")
Out = TypeVar("Out", bound=BulkOutcome)


class BulkOptions(TypedDict, total=False):
    """The options every bulk helper takes (see ``client.chats.stream_update_status``).

    Attributes:
        concurrency: Operations in flight at most (default: the client's connections).
        journal: A path, a ``Journal`` or a ``RedisJournal`` (any ``BulkJournal``): outcomes
            are recorded as they happen, and the ids it records as done with the same
            operation are skipped (run again to resume).
        on_progress: Called with a ``Progress`` after each outcome.
        stop_after_consecutive_failures: Stop the run (``BulkAbortedError``) once this many
            ids in a row failed as in an outage (a connection error, a 5xx, or a 404
            that is not HelpCrunch's: a wrong ``base_url``).
    """

    concurrency: int | None
    journal: BulkJournal | str | os.PathLike[str] | None
    on_progress: Callable[[Progress], None] | None
    stop_after_consecutive_failures: int | None


def bulk_run(
    resource: S,
    operation: Callable[[S, int], Awaitable[R]],
    ids: Iterable[int] | AsyncIterable[int],
    *,
    name: str,
    event: str,
    outcome: Callable[[Any, R | None, Exception | None], Out],
    what: str,
    options: BulkOptions,
) -> OutcomeStream[Out]:
    """A bulk run of ``operation(resource, id)`` over ``ids``, its options checked at once.

    ``name`` is the operation in the journal, ``event`` in the ``BulkItemDone`` events;
    ``what`` names an id in messages (``"customer"``).

    Raises:
        TypeError, ValueError: a bad option or ``ids`` that is no iterable.
    """
    unknown = set(options) - set(BulkOptions.__annotations__)
    if unknown:
        raise TypeError(f"unexpected keyword argument {min(unknown)!r}")
    sender = resource._sender  # noqa: SLF001 - the resources' own package
    concurrency = options.get("concurrency")
    if concurrency is None:
        concurrency = sender.turn.slots.permits
    require_int(concurrency, "concurrency", minimum=1)
    if concurrency > MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be <= {MAX_CONCURRENCY}, got {concurrency!r}")
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable | AsyncIterable):
        raise TypeError(f"{what}_ids must be an iterable of ints, not {type(ids).__name__}")
    on_progress = options.get("on_progress")
    validate_callback(on_progress, "on_progress")
    journal = as_journal(options.get("journal"))
    threshold = options.get("stop_after_consecutive_failures")
    breaker = None if threshold is None else CircuitBreaker(threshold, noun=what + "s")
    # Bulk work is background traffic unless the caller's view chose a class.
    view = resource._options  # noqa: SLF001 - the resources' own package
    background = type(resource)(sender, attrs.evolve(view, priority=view.priority or BACKGROUND))
    emit = sender.observers.emit
    resource_name, _, method = event.partition(".")

    def report(done: Out) -> None:
        error = done.error
        kind = None if error is None else type(error).__name__
        emit(BulkItemDone(operation=event, ok=error is None, error_type=kind))

    return OutcomeStream(
        lambda item_id: operation(background, item_id),
        ids,
        name=name,
        outcome=outcome,
        concurrency=concurrency,
        journal=journal,
        on_progress=on_progress,
        on_outcome=report,
        breaker=breaker,
        what=what,
        call=f"client.{resource_name}.stream_{method}(...)",
    )


async def collect(stream: OutcomeStream[Out], result: Callable[[Out], R | None]) -> BulkResult[R]:
    """Run ``stream`` to its end and collect every outcome (``result`` reads a success's)."""
    succeeded: list[R] = []
    failed: dict[int | str, Exception] = {}
    async with stream as outcomes:
        async for done in outcomes:
            if done.error is not None:
                failed[outcome_key(done.id)] = done.error
            else:
                value = result(done)
                if value is not None:
                    succeeded.append(value)
    return BulkResult(succeeded, failed, stream.skipped, stream.duplicates)
