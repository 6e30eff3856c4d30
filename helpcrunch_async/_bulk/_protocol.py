"""What the bulk engine asks of a journal: a session per run, a claim before an id, a record after.

Two journals implement it: ``Journal`` (a local file, one run at a time) and
``helpcrunch_async.redis.RedisJournal`` (shared by a fleet of workers). The engine talks to
nothing else, so a journal of your own (a database table...) plugs in the same way:

- ``journal.session(op)`` is entered when a run of operation ``op`` starts and left when it
  ends, whatever the reason;
- ``await session.claim(id)`` before sending an id: ``SEND`` it (the session now holds it),
  ``SKIP`` it (its latest record is a success of ``op``, or another worker of this run
  settled it), or ``Claim("wait", retry_in=...)``: another worker holds it, ask again later;
- ``await session.record(id, ok=..., error=...)`` once the id has an outcome (it ends the
  claim); ``await session.release(id)`` when nothing was sent after all.

A session method that cannot do its job raises a ``HelpCrunchError`` (such as
``JournalError``): the run then ends with it, after the outcomes already recorded.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol, runtime_checkable

import attrs

__all__ = ["SEND", "SKIP", "BulkJournal", "Claim", "JournalSession"]


@attrs.frozen
class Claim:
    """A journal's answer about one id: send it, skip it, or wait and ask again.

    Attributes:
        action: ``"send"``: the session holds the id, send it; ``"skip"``: done already, or
            settled by another worker of the run; ``"wait"``: another worker holds it.
        retry_in: For ``"wait"``, seconds until asking again may change the answer (the
            holder's lease ends then).
    """

    action: Literal["send", "skip", "wait"]
    retry_in: float = 0.0


#: The answers with nothing more to say.
SEND = Claim("send")
SKIP = Claim("skip")


@runtime_checkable
class JournalSession(Protocol):
    """One run of one operation, as the bulk engine uses a journal (see the module)."""

    async def claim(self, item_id: int) -> Claim:
        """Ask to send ``item_id``; see ``Claim``."""
        ...

    async def record(self, item_id: int | str, *, ok: bool, error: str | None = None) -> None:
        """Record an outcome: ``item_id`` (or the text of an invalid one) succeeded or failed."""
        ...

    async def release(self, item_id: int) -> None:
        """Give a claimed id back with nothing recorded: nothing was sent."""
        ...


@runtime_checkable
class BulkJournal(Protocol):
    """A journal the bulk helpers take as ``journal=``: ``Journal``, ``RedisJournal``, yours."""

    def session(self, op: str) -> AbstractAsyncContextManager[JournalSession]:
        """A run of operation ``op`` (``"closed"``...): entered as it starts, left as it ends."""
        ...
