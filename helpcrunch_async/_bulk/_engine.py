"""The bulk engine: one per-id operation over many ids, outcomes streamed as they complete.

The engine knows nothing of statuses or tags: it runs any ``operation(id) -> result`` (a
chat's status update, a customer's tagging...) under a name that the journal records, and
wraps each id's result or error in the outcome class it is given (``ChatOutcome``...).

Why a context manager and not a bare async generator: the work lives in a task group, and a
generator that yields from inside a task group hands its cancel scope to whatever code runs
in the loop body; a ``break`` then leaves the work running until garbage collection.
``async with`` gives it a scope of its own that ends exactly when the block does.

One id, one outcome: every id taken from the input ends as exactly one outcome (success or
failure), except when the whole run stops (a wrong key, a closed client, an unusable shared
limiter or journal): then every outcome already completed is journaled and yielded first, the
updates still in flight are cancelled (they are not journaled, so a resume sends them again),
and the stream raises the error that stopped it.

The journal is any ``BulkJournal`` (``_protocol.py``): the engine claims each valid id before
sending it and records its outcome after, so workers sharing a journal (``RedisJournal``)
never send one id at the same time. An id another worker holds is set aside and asked about
again when its lease may have ended; the run ends when every id is settled, by this worker
or another. An id that got no turn from the limiter within ``max_wait`` was never sent: it is
yielded as a failure (``LimiterTimeoutError``) but given back to the journal, not recorded.

One error per run: the workers never raise. Whatever goes wrong in one of them ends the run
through ``_stop`` and comes out of the iteration as itself, never as an ``ExceptionGroup``.

A failed outcome keeps its error's facts (class, message, status, headers, excerpt), not
the frames it was raised through: a traceback holds every local of the call, the answer's
body included, and a run of 100,000 ids keeps every failure until it ends.
"""

from __future__ import annotations

import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sized,
)
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from .._config import is_int
from .._errors import (
    AuthenticationError,
    ClientClosedError,
    HelpCrunchError,
    JournalError,
    LimiterTimeoutError,
    LimiterUnavailableError,
    ResponseValidationError,
)
from .._models import validate_id
from .._models._json import MAX_TEXT, cut
from ._journal import Journal
from ._outcomes import BulkOutcome, Progress, outcome_key, without_frames
from ._protocol import BulkJournal, JournalSession

if TYPE_CHECKING:
    from types import TracebackType

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectSendStream

    from ._breaker import CircuitBreaker

__all__ = ["OutcomeStream", "as_journal"]

R = TypeVar("R")
Out = TypeVar("Out", bound=BulkOutcome)


#: Errors that end the whole run instead of failing one id: every other id would fail the
#: same way (the key is wrong, the client is closed, the shared limiter is unusable).
RUN_ENDING_ERRORS = (AuthenticationError, ClientClosedError, LimiterUnavailableError)
#: Longest wait, in seconds, before asking the journal again about an id another worker
#: holds: how late a worker learns that its peers settled the ids it set aside.
WAIT_POLL = 1.0
#: Shortest such wait (a hostile or rounded "ask again in 0 ms" must not spin).
MIN_WAIT = 0.01


def as_journal(journal: object) -> BulkJournal | None:
    """The ``journal=`` of a bulk helper: a ``BulkJournal``, a path (a ``Journal``) or ``None``.

    Raises:
        TypeError: anything else.
    """
    if journal is None or isinstance(journal, BulkJournal):
        return journal
    if isinstance(journal, str | os.PathLike):
        return Journal(journal)
    raise TypeError(
        "journal must be a path, a Journal, a RedisJournal or another BulkJournal, "
        f"not {type(journal).__name__}"
    )


class OutcomeStream(Generic[Out]):
    """The outcomes of a bulk run, one per distinct id, as they complete.

    ``OutcomeStream[ChatOutcome]`` for chats, ``OutcomeStream[CustomerOutcome]`` for
    customers.

    Use it as ``async with ... as outcomes: async for outcome in outcomes``. Leaving the block
    (``break``, an exception, a cancel) stops the work and leaves the client usable; an
    outcome already yielded is final. A run-ending error (``AuthenticationError``,
    ``ClientClosedError``, ``LimiterUnavailableError``, or ``BulkAbortedError`` from a
    tripped circuit breaker) is raised after every outcome that completed before it.
    ``stop()`` ends the run gently: the same, without an error.

    Args:
        operation: The per-id operation.
        ids: The ids, read lazily.
        name: The operation's name in the journal.
        outcome: Builds an outcome from ``(id, result, error)``: ``ChatOutcome``...
        concurrency: Operations in flight at most.
        journal: Where outcomes are recorded, and what a resume skips.
        on_progress: Called with a ``Progress`` after each outcome.
        on_outcome: Called with each outcome as it completes (events).
        breaker: Stops the run when every recent id failed as in an outage.
        what: What an id stands for, in messages (``"customer"``: ``customer_id``).
        call: The call that made the stream, for the message of one iterated outside it.

    Attributes:
        name: The operation, as the journal records it (``"closed"``, ``"customers.tag ..."``).
        done: Outcomes yielded so far, failures included.
        failed: Failed outcomes yielded so far.
        skipped: Ids the journal said not to send: done before (or, with a journal shared
            by several workers, by another one), or failed in this run on another worker.
        duplicates: Repeated ids, skipped.
    """

    def __init__(
        self,
        operation: Callable[[int], Awaitable[R]],
        ids: Iterable[Any] | AsyncIterable[Any],
        *,
        name: str,
        outcome: Callable[[Any, R | None, Exception | None], Out],
        concurrency: int,
        journal: BulkJournal | str | os.PathLike[str] | None,
        on_progress: Callable[[Progress], None] | None,
        on_outcome: Callable[[Out], None] | None = None,
        breaker: CircuitBreaker | None = None,
        what: str = "chat",
        call: str = "client.chats.stream_update_status(...)",
    ) -> None:
        self._breaker = breaker
        self._stopping = False
        self._operation = operation
        self._on_outcome = on_outcome
        self._ids = ids
        self.name = name
        self._make = outcome
        self._what = what
        #: How the caller made this stream, for the message of one iterated outside it.
        self._call = call
        self._concurrency = concurrency
        self._journal = as_journal(journal)
        self._session_cm: AbstractAsyncContextManager[JournalSession] | None = None
        self._session: JournalSession | None = None
        # Ids another worker holds -> when to ask the journal about them again.
        self._waiting: dict[int, float] = {}
        self._on_progress = on_progress
        self._total = len(ids) if isinstance(ids, Sized) else None
        self._seen: set[int] = set()
        # What ended the whole run: a run-ending error, or the id source itself failing.
        self._fatal: Exception | None = None
        self._in_flight: set[anyio.CancelScope] = set()
        # Made when the run reads its next id: a stream is built without an event loop
        # (a dry run only asks for its ``name``) and runs in one.
        self._pulling: anyio.CancelScope | None = None
        self._tg: TaskGroup | None = None
        # The id source, set by __aenter__: an async one, or else a sync one.
        self._async: AsyncIterator[Any] | None = None
        self._sync: Iterator[Any] = iter(())
        self.done = self.failed = self.skipped = self.duplicates = 0

    async def __aenter__(self) -> OutcomeStream[Out]:
        if self._tg is not None:
            raise RuntimeError("an OutcomeStream can be entered only once")
        if self._journal is not None:
            # Before anything is sent: a journal that cannot be used refuses the run here.
            session_cm = self._journal.session(self.name)
            self._session = await session_cm.__aenter__()
            self._session_cm = session_cm
        try:
            if isinstance(self._ids, AsyncIterable):
                self._async = aiter(self._ids)
            else:
                self._sync = iter(self._ids)
            send, self._receive = anyio.create_memory_object_stream[Out](self._concurrency)
            self._tg = anyio.create_task_group()
            await self._tg.__aenter__()
        except BaseException:
            if self._session_cm is not None:
                await self._session_cm.__aexit__(None, None, None)
            raise
        self._tg.start_soon(self._dispatch, send)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tg is None:
            raise RuntimeError("__aexit__ without __aenter__")
        self._tg.cancel_scope.cancel()
        try:
            # The caller's exception is theirs: the task group must not wrap it in a group.
            await self._tg.__aexit__(None, None, None)
        finally:
            self._receive.close()
            if self._session_cm is not None:
                try:
                    await self._session_cm.__aexit__(None, None, None)
                except JournalError:
                    if exc is None:
                        raise
                    # The run already ends with an error of its own: that one is raised.

    def __aiter__(self) -> OutcomeStream[Out]:
        if self._tg is None:
            raise TypeError(
                "iterate the stream inside its context: "
                f"`async with {self._call} as outcomes: async for outcome in outcomes: ...`"
            )
        return self

    async def __anext__(self) -> Out:
        try:
            outcome = await self._receive.receive()
        except anyio.EndOfStream:
            if self._fatal is not None:
                raise self._fatal from None
            raise StopAsyncIteration from None
        self.done += 1
        self.failed += not outcome.ok
        if self._on_progress is not None:
            self._on_progress(self.progress())
        return outcome

    def stop(self) -> None:
        """Take no more ids and cancel the operations in flight (for a clean Ctrl-C).

        The outcomes already completed are still journaled and yielded, then the iteration
        ends normally; the cancelled ones are not journaled, so a resume sends them again.
        """
        self._stopping = True
        if self._pulling is not None:
            self._pulling.cancel()
        for scope in self._in_flight:
            scope.cancel()

    def _ended(self) -> bool:
        """``True`` once the run must take no more ids: stopped, or a run-ending error."""
        return self._stopping or self._fatal is not None

    def progress(self) -> Progress:
        """The counts so far."""
        total = None if self._total is None else self._total - self.skipped - self.duplicates
        return Progress(self.done, self.failed, total, self.skipped)

    async def _dispatch(self, send: MemoryObjectSendStream[Out]) -> None:
        """Start one task per id, never more than ``concurrency`` at once nor than ids."""
        slots = anyio.Semaphore(self._concurrency)
        async with send, anyio.create_task_group() as tasks:
            try:
                while not self._ended():
                    await slots.acquire()
                    # A run-ending error must not wait for a slow id source to yield again:
                    # _stop cancels this scope (checked inside it, so no stop slips between).
                    more, raw = False, None
                    with anyio.CancelScope() as self._pulling:
                        if not self._ended():
                            more, raw = await self._next_id()
                    if not more or self._ended():
                        slots.release()
                        return
                    tasks.start_soon(self._one, raw, send.clone(), slots)
            except Exception as exc:  # noqa: BLE001 - one error per run, never a group
                self._stop(exc)

    async def _next_id(self) -> tuple[bool, Any]:
        """The next id to send: an id set aside once due, else a new one; (more, id).

        Duplicates are skipped, and so are the ids the journal says not to send; an id
        another worker holds is set aside and asked about again later.
        """
        while True:
            due = [i for i, at in self._waiting.items() if at <= anyio.current_time()]
            if due:
                raw = due[0]
                del self._waiting[raw]
            else:
                more, raw = await self._pull()
                if not more:
                    if not self._waiting:
                        return False, None
                    await anyio.sleep_until(min(self._waiting.values()))
                    continue
            if self._session is None or not _valid(raw):
                return True, raw
            try:
                claim = await self._session.claim(raw)
            except HelpCrunchError as exc:  # the journal cannot be used: nothing is sent
                self._stop(exc)
                return False, None
            if claim.action == "send":
                return True, raw
            if claim.action == "skip":
                self.skipped += 1
            else:
                wait = min(max(claim.retry_in, MIN_WAIT), WAIT_POLL)
                self._waiting[raw] = anyio.current_time() + wait

    async def _pull(self) -> tuple[bool, Any]:
        """The next id of the input, duplicates skipped: (more, id)."""
        while True:
            try:
                if self._async is not None:
                    raw = await anext(self._async)
                else:
                    raw = next(self._sync)
            except (StopIteration, StopAsyncIteration):
                return False, None
            except Exception as exc:  # noqa: BLE001 - the caller's iterable failed
                self._stop(exc)
                return False, None
            if is_int(raw):
                if raw in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(raw)
            return True, raw

    def _stop(self, exc: Exception) -> None:
        """End the run: no new ids, in-flight operations cancelled, completed ones kept."""
        if self._fatal is None:
            self._fatal = exc
        if self._pulling is not None:
            self._pulling.cancel()
        for scope in self._in_flight:
            scope.cancel()

    async def _one(
        self, raw: Any, send: MemoryObjectSendStream[Out], slots: anyio.Semaphore
    ) -> None:
        try:
            async with send:
                outcome = await self._outcome(raw)
                if outcome is None:
                    return
                if self._session is not None and not await self._journaled(outcome):
                    return
                if self._on_outcome is not None:  # events: bulk outcome
                    self._on_outcome(outcome)
                # The circuit breaker: this outcome is journaled and still handed
                # over; the operations in flight are cancelled.
                if self._breaker is not None and self._breaker.record(outcome.error):
                    self._stop(self._breaker.error())
                await send.send(outcome)
        except Exception as exc:  # noqa: BLE001 - one error per run, never a group
            self._stop(exc)
        finally:
            slots.release()

    async def _journaled(self, outcome: Out) -> bool:
        """Record the outcome (or give back an id never sent); ``False`` if the journal failed.

        A journal that cannot record ends the run: this outcome is not handed over, and a
        resume sends its id again.
        """
        assert self._session is not None  # noqa: S101 - for mypy
        if isinstance(self._fatal, JournalError):
            return False  # completed while the run was stopping: it cannot be recorded
        try:
            if isinstance(outcome.error, LimiterTimeoutError):
                await self._session.release(outcome.id)
            else:
                error = None if outcome.error is None else _describe(outcome.error)
                await self._session.record(outcome_key(outcome.id), ok=outcome.ok, error=error)
        except HelpCrunchError as exc:
            self._stop(exc)
            return False
        return True

    async def _outcome(self, raw: Any) -> Out | None:
        """Run the operation for one id; ``None`` when the run ended before it completed."""
        try:
            item_id = validate_id(raw, name=f"{self._what}_id")
        except (TypeError, ValueError) as exc:
            return self._make(raw, None, without_frames(exc))
        if self._ended():  # started after a stop: it must send nothing
            return None
        with anyio.CancelScope() as scope:
            self._in_flight.add(scope)
            try:
                return self._make(item_id, await self._operation(item_id), None)
            except RUN_ENDING_ERRORS as exc:
                self._stop(exc)
            except HelpCrunchError as exc:
                return self._make(item_id, None, without_frames(exc))
            except Exception as exc:  # noqa: BLE001 - one answer's problem, not the run's
                error = ResponseValidationError(
                    f"{self._what} {item_id}: the answer could not be processed: "
                    f"{type(exc).__name__}: {exc}"[:MAX_TEXT]
                )
                error.__cause__ = exc
                return self._make(item_id, None, without_frames(error))
            finally:
                self._in_flight.discard(scope)
        return None


def _valid(raw: Any) -> bool:
    """``True`` for an id the operation will send (an invalid one fails without sending)."""
    try:
        validate_id(raw)
    except (TypeError, ValueError):
        return False
    return True


def _describe(error: Exception) -> str:
    return cut(f"{type(error).__name__}: {error}")
