"""The bulk engine: one per-id operation over many chats, outcomes streamed as they complete.

The engine knows nothing of statuses: it runs any ``operation(chat_id) -> Chat`` (a status
update, an assignment, a snooze...) under a name that the journal records.

Why a context manager and not a bare async generator: the work lives in a task group, and a
generator that yields from inside a task group hands its cancel scope to whatever code runs
in the loop body; a ``break`` then leaves the work running until garbage collection.
``async with`` gives it a scope of its own that ends exactly when the block does.

One id, one outcome: every id taken from the input ends as exactly one outcome (success or
failure), except when the whole run stops (a wrong key, a closed client, an unusable shared
limiter, a journal that cannot be written): then every outcome already completed is journaled
and yielded first, the updates still in flight are cancelled (they are not journaled, so a
resume sends them again), and the stream raises the error that stopped it.

One error per run: the workers never raise. Whatever goes wrong in one of them ends the run
through ``_stop`` and comes out of the iteration as itself, never as an ``ExceptionGroup``.

A failed outcome keeps its error's facts (class, message, status, headers, excerpt), not
the frames it was raised through: a traceback holds every local of the call, the answer's
body included, and a run of 100,000 ids keeps every failure until it ends.
"""

from __future__ import annotations

from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sized,
)
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._config import is_int
from .._errors import (
    AuthenticationError,
    ClientClosedError,
    HelpCrunchError,
    JournalError,
    LimiterUnavailableError,
    ResponseValidationError,
)
from .._models import Chat, validate_id
from .._models._json import MAX_TEXT, cut
from ._outcomes import ChatOutcome, Progress, outcome_key

if TYPE_CHECKING:
    from types import TracebackType

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectSendStream

    from ._breaker import CircuitBreaker
    from ._journal import Journal

__all__ = ["OutcomeStream"]

ExcT = TypeVar("ExcT", bound=BaseException)


#: Errors that end the whole run instead of failing one id: every other id would fail the
#: same way (the key is wrong, the client is closed, the shared limiter is unusable).
RUN_ENDING_ERRORS = (AuthenticationError, ClientClosedError, LimiterUnavailableError)
#: How far down ``__cause__``/``__context__`` a kept error is stripped of its frames.
MAX_CHAIN = 16


class OutcomeStream:
    """The outcomes of a bulk run, one per distinct id, as they complete.

    Use it as ``async with ... as outcomes: async for outcome in outcomes``. Leaving the block
    (``break``, an exception, a cancel) stops the work and leaves the client usable; an
    outcome already yielded is final. A run-ending error (``AuthenticationError``,
    ``ClientClosedError``, ``LimiterUnavailableError``, ``JournalError``, or
    ``BulkAbortedError`` from a tripped circuit breaker) is raised once, by itself (never in
    an ``ExceptionGroup``), after every outcome that completed (and, with a journal, was
    recorded) before it. ``stop()`` ends the run gently: the same, without an error.

    With a journal, an outcome is yielded only once it is recorded. A journal that cannot
    be written ends the run with ``JournalError``: nothing more is sent, and the outcome it
    could not record is not yielded (a resume does it again).

    Attributes:
        done: Outcomes yielded so far, failures included.
        failed: Failed outcomes yielded so far.
        skipped: Ids skipped because the journal had them done.
        duplicates: Repeated ids, skipped.
    """

    def __init__(
        self,
        operation: Callable[[int], Awaitable[Chat]],
        chat_ids: Iterable[Any] | AsyncIterable[Any],
        *,
        name: str,
        concurrency: int,
        journal: Journal | None,
        on_progress: Callable[[Progress], None] | None,
        on_outcome: Callable[[ChatOutcome], None] | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._breaker = breaker
        self._stopping = False
        self._operation = operation
        self._on_outcome = on_outcome
        self._ids = chat_ids
        self._name = name
        self._concurrency = concurrency
        self._journal = journal
        self._on_progress = on_progress
        self._total = len(chat_ids) if isinstance(chat_ids, Sized) else None
        self._seen: set[int] = set()
        self._already_done: set[int] = set()
        # What ended the whole run: a run-ending error, or the id source itself failing.
        self._fatal: Exception | None = None
        self._in_flight: set[anyio.CancelScope] = set()
        self._pulling = anyio.CancelScope()
        self._tg: TaskGroup | None = None
        self._sync: Iterator[Any] | None = None
        self._async: AsyncIterator[Any] | None = None
        self.done = self.failed = self.skipped = self.duplicates = 0

    async def __aenter__(self) -> OutcomeStream:
        if self._tg is not None:
            raise RuntimeError("an OutcomeStream can be entered only once")
        if self._journal is not None:
            # Locked and repaired before it is read, so no other run appends in between.
            self._journal.open()
            try:
                self._already_done = self._journal.done(self._name)
            except BaseException:
                self._journal.close()
                raise
        if isinstance(self._ids, AsyncIterable):
            self._async = aiter(self._ids)
        else:
            self._sync = iter(self._ids)
        send, self._receive = anyio.create_memory_object_stream[ChatOutcome](self._concurrency)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
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
            if self._journal is not None:
                try:
                    self._journal.close()
                except JournalError:
                    if exc is None:
                        raise
                    # The run already ends with an error of its own: that one is raised.

    def __aiter__(self) -> OutcomeStream:
        if self._tg is None:
            raise TypeError(
                "iterate the stream inside its context: "
                "`async with client.chats.stream_update_status(...) as outcomes: "
                "async for outcome in outcomes: ...`"
            )
        return self

    async def __anext__(self) -> ChatOutcome:
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

    async def _dispatch(self, send: MemoryObjectSendStream[ChatOutcome]) -> None:
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
        """The next id to process, skipping duplicates and journaled ones: (more, id)."""
        while True:
            try:
                if self._async is not None:
                    raw = await anext(self._async)
                elif self._sync is not None:
                    raw = next(self._sync)
                else:
                    return False, None
            except (StopIteration, StopAsyncIteration):
                return False, None
            except Exception as exc:  # noqa: BLE001 - the caller's iterable failed
                self._stop(exc)
                return False, None
            if is_int(raw):
                if raw in self._already_done:
                    self.skipped += 1
                    continue
                if raw in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(raw)
            return True, raw

    def _stop(self, exc: Exception) -> None:
        """End the run: no new ids, in-flight operations cancelled, completed ones kept."""
        if self._fatal is None:
            self._fatal = exc
        self._pulling.cancel()
        for scope in self._in_flight:
            scope.cancel()

    async def _one(
        self, raw: Any, send: MemoryObjectSendStream[ChatOutcome], slots: anyio.Semaphore
    ) -> None:
        try:
            async with send:
                outcome = await self._outcome(raw)
                if outcome is None:
                    return
                if self._on_outcome is not None:  # events: bulk outcome
                    self._on_outcome(outcome)
                if self._journal is not None and not self._recorded(outcome):
                    return
                # The circuit breaker: this outcome is journaled and still handed
                # over; the operations in flight are cancelled.
                if self._breaker is not None and self._breaker.record(outcome.error):
                    self._stop(self._breaker.error())
                await send.send(outcome)
        except Exception as exc:  # noqa: BLE001 - one error per run, never a group
            self._stop(exc)
        finally:
            slots.release()

    def _recorded(self, outcome: ChatOutcome) -> bool:
        """Journal ``outcome``; ``False`` (and the run ended) if the journal cannot record."""
        assert self._journal is not None  # noqa: S101 - for mypy
        if isinstance(self._fatal, JournalError):
            return False  # completed while the run was stopping: it cannot be recorded
        error = None if outcome.error is None else _describe(outcome.error)
        try:
            self._journal.record(
                outcome_key(outcome.chat_id), self._name, ok=outcome.ok, error=error
            )
        except JournalError as exc:
            self._stop(exc)
            return False
        return True

    async def _outcome(self, raw: Any) -> ChatOutcome | None:
        """Run the operation for one id; ``None`` when the run ended before it completed."""
        try:
            chat_id = validate_id(raw)
        except (TypeError, ValueError) as exc:
            return ChatOutcome(raw, error=_without_frames(exc))
        if self._ended():  # started after a stop: it must send nothing
            return None
        with anyio.CancelScope() as scope:
            self._in_flight.add(scope)
            try:
                return ChatOutcome(chat_id, chat=await self._operation(chat_id))
            except RUN_ENDING_ERRORS as exc:
                self._stop(exc)
            except HelpCrunchError as exc:
                return ChatOutcome(chat_id, error=_without_frames(exc))
            except Exception as exc:  # noqa: BLE001 - one answer's problem, not the run's
                error = ResponseValidationError(
                    f"chat {chat_id}: the answer could not be processed: "
                    f"{type(exc).__name__}: {exc}"[:MAX_TEXT]
                )
                error.__cause__ = exc
                return ChatOutcome(chat_id, error=_without_frames(error))
            finally:
                self._in_flight.discard(scope)
        return None


def _describe(error: Exception) -> str:
    return cut(f"{type(error).__name__}: {error}")


def _without_frames(error: ExcT) -> ExcT:
    """``error`` and the errors chained to it, without their tracebacks.

    The frames of a failed call hold its locals (the answer and its body among them); an
    outcome kept for the rest of the run must hold the error's facts only.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending and len(seen) < MAX_CHAIN:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending += [current.__cause__, current.__context__]
    return error
