"""What a bulk run reports: one outcome per id, progress counts, and the collected result.

An outcome names its id and result after what the run updates (``ChatOutcome.chat_id`` and
``.chat``, ``CustomerOutcome.customer_id`` and ``.customer``); the engine and the CLI see
only what every outcome has: ``id``, ``ok`` and ``error``.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

import attrs

from .._config import is_int
from .._models import Chat, Customer

__all__ = [
    "BulkOutcome",
    "BulkResult",
    "ChatOutcome",
    "CustomerOutcome",
    "Progress",
    "outcome_key",
    "without_frames",
]

T = TypeVar("T")
ExcT = TypeVar("ExcT", bound=BaseException)


class BulkOutcome(Protocol):
    """What the engine, the journal and the CLI read from any outcome."""

    @property
    def id(self) -> Any:
        """The id as given."""

    @property
    def error(self) -> Exception | None:
        """Why it failed, or ``None``."""

    @property
    def ok(self) -> bool:
        """``True`` if the update succeeded."""


class _Outcome:
    """Behaviour shared by the outcome classes: exactly one of a result and an error."""

    error: Exception | None

    def _check(self, result: object, name: str) -> None:
        if (result is None) == (self.error is None):
            raise ValueError(f"a {type(self).__name__} has exactly one of {name} and error")

    @property
    def ok(self) -> bool:
        """``True`` if the update succeeded."""
        return self.error is None


@attrs.frozen
class ChatOutcome(_Outcome):
    """What happened to one chat of a bulk run: exactly one of ``chat`` and ``error`` is set.

    Attributes:
        chat_id: The id as given (an ``int`` whenever it was a valid id).
        chat: The updated chat, or ``None`` if the update failed.
        error: Why it failed: a ``HelpCrunchError``, or a ``TypeError``/``ValueError`` for an
            id that is not a valid chat id; ``None`` on success.

    Raises:
        ValueError: both or neither of ``chat`` and ``error`` given.
    """

    chat_id: Any
    chat: Chat | None = None
    error: Exception | None = None

    def __attrs_post_init__(self) -> None:
        self._check(self.chat, "chat")

    @property
    def id(self) -> Any:
        """``chat_id``, the name every outcome has."""
        return self.chat_id


@attrs.frozen
class CustomerOutcome(_Outcome):
    """What happened to one customer of a bulk run: exactly one of ``customer`` and ``error``.

    Attributes:
        customer_id: The id as given (an ``int`` whenever it was a valid id).
        customer: The customer as the server returned it after the change, or ``None``.
        error: Why it failed: a ``HelpCrunchError``, or a ``TypeError``/``ValueError`` for an
            id that is not a valid customer id; ``None`` on success.

    Raises:
        ValueError: both or neither of ``customer`` and ``error`` given.
    """

    customer_id: Any
    customer: Customer | None = None
    error: Exception | None = None

    def __attrs_post_init__(self) -> None:
        self._check(self.customer, "customer")

    @property
    def id(self) -> Any:
        """``customer_id``, the name every outcome has."""
        return self.customer_id


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
class BulkResult(Generic[T]):
    """Every outcome of a bulk run, collected: ``BulkResult[Chat]``, ``BulkResult[Customer]``.

    Attributes:
        succeeded: The updated chats (or customers), in completion order.
        failed: Id -> the error for that id. A valid id is its ``int``; anything that
            is not a valid id is keyed by its ``repr`` (so ``True`` and ``1`` never collide).
        skipped: Ids skipped because the journal had them done already.
        duplicates: Repeated ids, updated only once.
    """

    succeeded: list[T]
    failed: dict[int | str, Exception]
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


def outcome_key(chat_id: Any) -> int | str:
    """The ``BulkResult.failed`` key of an id: the int of a valid id, else its ``repr``."""
    if is_int(chat_id):
        return chat_id
    return repr(chat_id)


#: How far down ``__cause__``/``__context__`` a kept error is stripped of its frames.
MAX_CHAIN = 16


def without_frames(error: ExcT) -> ExcT:
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
