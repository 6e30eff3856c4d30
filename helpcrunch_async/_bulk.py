"""Bulk status updates: a bounded pool of workers, outcomes streamed as they complete.

Why a context manager and not a bare async generator: the workers live in a task group, and
a generator that yields from inside a task group hands its cancel scope to whatever code runs
in the loop body; a ``break`` then leaves the workers running until garbage collection.
``async with`` gives the workers a scope of their own that ends exactly when the block does.
"""

from __future__ import annotations

from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Sized,
)
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._errors import AuthenticationError, HelpCrunchError
from ._events import BulkItemDone
from ._models import Chat, ChatStatus, validate_chat_id

if TYPE_CHECKING:
    from types import TracebackType

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectSendStream

    from ._chats import Chats
    from ._journal import Journal

__all__ = ["BulkResult", "ChatOutcome", "OutcomeStream", "Progress"]


@attrs.frozen
class ChatOutcome:
    """What happened to one chat of a bulk run.

    Attributes:
        chat_id: The id as given (an ``int`` whenever it was a valid id).
        chat: The updated chat, or ``None`` if the update failed.
        error: Why it failed: a ``HelpCrunchError``, or a ``TypeError``/``ValueError`` for an
            id that is not a valid chat id; ``None`` on success.
    """

    chat_id: Any
    chat: Chat | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """``True`` if the chat was updated."""
        return self.error is None


@attrs.frozen
class Progress:
    """Counts of a running bulk job, for a progress bar.

    Attributes:
        done: Outcomes so far, failures included.
        failed: Failed outcomes so far.
        total: Ids to process, if the input has a length (minus resumed ones), else ``None``.
        skipped: Ids skipped because the journal already had them done.
    """

    done: int
    failed: int
    total: int | None
    skipped: int = 0


@attrs.frozen
class BulkResult:
    """Every outcome of a bulk run, collected.

    Attributes:
        succeeded: The updated chats, in completion order.
        failed: Chat id (as given) -> the error for that id.
        skipped: Ids skipped because the journal had them done already.
        duplicates: Repeated ids, updated only once.
    """

    succeeded: list[Chat]
    failed: dict[Any, Exception]
    skipped: int = 0
    duplicates: int = 0

    @property
    def ok(self) -> bool:
        """``True`` if nothing failed."""
        return not self.failed

    def __str__(self) -> str:
        return (
            f"{len(self.succeeded)} updated, {len(self.failed)} failed, "
            f"{self.skipped} skipped (already done), {self.duplicates} duplicates"
        )


class OutcomeStream:
    """The outcomes of ``Chats.stream_update_status``, one per distinct id, as they complete.

    Use it as ``async with ... as outcomes: async for outcome in outcomes``. Leaving the block
    (``break``, an exception, a cancel) stops the workers and leaves the client usable; an
    outcome already yielded is final. A 401 stops the whole run: the stream raises
    ``AuthenticationError`` after the outcomes already completed.

    Attributes:
        done: Outcomes yielded so far, failures included.
        failed: Failed outcomes yielded so far.
        skipped: Ids skipped because the journal had them done.
        duplicates: Repeated ids, skipped.
    """

    def __init__(
        self,
        chats: Chats,
        chat_ids: Iterable[Any] | AsyncIterable[Any],
        status: ChatStatus,
        *,
        concurrency: int,
        journal: Journal | None,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self._chats = chats
        self._events = chats._client._events  # noqa: SLF001 - the client's own emitter
        self._ids = chat_ids
        self._status = status
        self._concurrency = concurrency
        self._journal = journal
        self._on_progress = on_progress
        self._total = len(chat_ids) if isinstance(chat_ids, Sized) else None
        self._seen: set[int] = set()
        self._already_done: set[int] = set()
        # Ends the whole run: a 401 (the key is wrong), or the id source itself failing.
        self._fatal: Exception | None = None
        self._tg: TaskGroup | None = None
        self._workers: anyio.CancelScope | None = None
        self._next_lock = anyio.Lock()
        self._sync: Iterator[Any] | None = None
        self._async: AsyncIterator[Any] | None = None
        self.done = self.failed = self.skipped = self.duplicates = 0

    async def __aenter__(self) -> OutcomeStream:
        if self._tg is not None:
            raise RuntimeError("an OutcomeStream can be entered only once")
        if self._journal is not None:
            self._already_done = self._journal.done(self._status.value)
            self._journal.open()
        if isinstance(self._ids, AsyncIterable):
            self._async = aiter(self._ids)
        else:
            self._sync = iter(self._ids)
        send, self._receive = anyio.create_memory_object_stream[ChatOutcome](self._concurrency)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run, send)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None  # noqa: S101 - __aenter__ ran
        self._tg.cancel_scope.cancel()
        try:
            # The caller's exception is theirs: the task group must not wrap it in a group.
            await self._tg.__aexit__(None, None, None)
        finally:
            self._receive.close()
            if self._journal is not None:
                self._journal.close()

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

    def progress(self) -> Progress:
        """The counts so far."""
        total = None if self._total is None else self._total - self.skipped - self.duplicates
        return Progress(self.done, self.failed, total, self.skipped)

    async def _run(self, send: MemoryObjectSendStream[ChatOutcome]) -> None:
        async with send, anyio.create_task_group() as workers:
            self._workers = workers.cancel_scope
            for _ in range(self._concurrency):
                workers.start_soon(self._work, send)

    async def _next_id(self) -> tuple[bool, Any]:
        """The next id to process, skipping duplicates and journaled ones: (more, id)."""
        async with self._next_lock:
            while True:
                try:
                    if self._async is not None:
                        raw = await anext(self._async)
                    else:
                        assert self._sync is not None  # noqa: S101 - set by __aenter__
                        raw = next(self._sync)
                except (StopIteration, StopAsyncIteration):
                    return False, None
                except Exception as exc:  # noqa: BLE001 - the caller's iterable failed
                    self._stop(exc)
                    return False, None
                if isinstance(raw, int) and not isinstance(raw, bool):
                    if raw in self._already_done:
                        self.skipped += 1
                        continue
                    if raw in self._seen:
                        self.duplicates += 1
                        continue
                    self._seen.add(raw)
                return True, raw

    def _stop(self, exc: Exception) -> None:
        if self._fatal is None:
            self._fatal = exc
        assert self._workers is not None  # noqa: S101 - set by _run
        self._workers.cancel()

    async def _work(self, send: MemoryObjectSendStream[ChatOutcome]) -> None:
        while True:
            more, raw = await self._next_id()
            if not more:
                return
            try:
                chat_id = validate_chat_id(raw)
            except (TypeError, ValueError) as exc:
                outcome = ChatOutcome(raw, error=exc)
            else:
                try:
                    chat = await self._chats.update_status(chat_id, self._status)
                except AuthenticationError as exc:
                    self._stop(exc)  # the key is wrong: every other id would fail the same
                    return
                except HelpCrunchError as exc:
                    outcome = ChatOutcome(chat_id, error=exc)
                else:
                    outcome = ChatOutcome(chat_id, chat=chat)
            if self._events:  # events: bulk outcome
                error = None if outcome.error is None else type(outcome.error).__name__
                self._events.emit(
                    BulkItemDone(operation="chats.update_status", ok=outcome.ok, error_type=error)
                )
            if self._journal is not None:
                self._journal.record(outcome, self._status.value)
            await send.send(outcome)
