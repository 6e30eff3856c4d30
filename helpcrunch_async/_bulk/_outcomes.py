"""What a bulk run reports: one outcome per id, progress counts, and the collected result."""

from __future__ import annotations

from typing import Any

import attrs

from .._config import is_int
from .._models import Chat

__all__ = ["BulkResult", "ChatOutcome", "Progress", "outcome_key"]


@attrs.frozen
class ChatOutcome:
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
        if (self.chat is None) == (self.error is None):
            raise ValueError("a ChatOutcome has exactly one of chat and error")

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
        failed: Chat id -> the error for that id. A valid id is its ``int``; anything that
            is not a valid id is keyed by its ``repr`` (so ``True`` and ``1`` never collide).
        skipped: Ids skipped because the journal had them done already.
        duplicates: Repeated ids, updated only once.
    """

    succeeded: list[Chat]
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
