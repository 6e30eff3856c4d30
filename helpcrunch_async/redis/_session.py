"""``RedisSession``: one worker's run of one operation on a ``RedisJournal``."""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

import anyio

from .._bulk._protocol import SEND, SKIP, Claim
from .._config import is_int
from .._errors import JournalError
from .._models._json import cut

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._journal import RedisJournal

__all__ = ["RedisSession"]

logger = logging.getLogger("helpcrunch_async")

#: Longest text kept for an invalid id (the bulk engine records its ``repr``).
MAX_ID_TEXT = 64
#: Seconds a session spends giving its claims back when it ends (Redis may be away).
RELEASE_TIMEOUT = 5.0


class RedisSession:
    """One worker's run of one operation on a ``RedisJournal`` (a ``JournalSession``)."""

    def __init__(self, journal: RedisJournal, op: str) -> None:
        self._journal = journal
        self._op = op
        self._token = secrets.token_hex(8)
        self._epoch = ""
        self._lease_ms = max(1, int(journal.lease * 1000))
        #: Redis's time (ms) when the session started: failures recorded since settle ids.
        self.since = 0
        # Ids this session holds (renewed), and ids being claimed right now (a claim cut
        # short by a cancel may have been made: given back at the end all the same).
        self._held: set[int] = set()
        self._asking: set[int] = set()
        #: Ids whose claim this session lost while it held them (its lease had lapsed).
        self.lost: set[int] = set()

    async def _run(
        self,
        mode: str,
        args: Sequence[object],
        ids: Sequence[int | str],
        *,
        items: int = 0,
        patient: bool = True,
    ) -> list[str]:
        """A script call of this session: the mode's reply (``items`` strings)."""
        reply = await self._journal._call(  # noqa: SLF001 - the journal's own session
            mode, self._token, self._epoch, args, ids, items=items, patient=patient
        )
        self._epoch = reply[0]
        return reply[3:]

    async def open(self) -> None:
        """Register the session; its start is Redis's time now."""
        reply = await self._journal._call(  # noqa: SLF001 - the journal's own session
            "open", self._token, "", [], [], items=0
        )
        self._epoch = reply[0]
        self.since = int(reply[2])

    async def claim(self, item_id: int) -> Claim:
        """``SEND`` (claimed, or taken over from a lapsed lease), ``SKIP`` or wait."""
        self._asking.add(item_id)
        try:
            args = [self._op, self._lease_ms, self.since]
            [verdict] = await self._run("claim", args, [item_id], items=1)
        finally:
            self._asking.discard(item_id)
        if verdict in ("m", "t"):
            self._held.add(item_id)
            return SEND
        if verdict in ("d", "f"):
            return SKIP
        left = verdict[1:]
        if verdict[:1] == "b" and left.isdigit() and int(left) <= 2 * self._lease_ms:
            return Claim("wait", retry_in=int(left) / 1000)
        raise self._journal._unusable("an unknown claim verdict")  # noqa: SLF001

    async def record(self, item_id: int | str, *, ok: bool, error: str | None = None) -> None:
        """Record an outcome (the latest record wins) and end this session's claim of it."""
        if not isinstance(ok, bool):
            raise TypeError(f"ok must be a bool, not {type(ok).__name__}")
        if error is not None and not isinstance(error, str):
            raise TypeError(f"error must be a str or None, not {type(error).__name__}")
        key = item_id if is_int(item_id) else str(item_id)[:MAX_ID_TEXT]
        reason = cut(error or "")
        await self._run("record", [self._op, "1" if ok else "0", reason], [key])
        if is_int(key):
            self._held.discard(key)

    async def release(self, item_id: int) -> None:
        """End this session's claim of an id, recording nothing (nothing was sent)."""
        await self._run("release", [], [item_id])
        self._held.discard(item_id)

    async def release_all(self) -> None:
        """Give back every claim still held (the session ends); one try, errors logged."""
        ids = sorted(self._held | self._asking)
        if not ids:
            return
        try:
            with anyio.fail_after(RELEASE_TIMEOUT, shield=True):
                await self._run("release", [], ids, patient=False)
        except (JournalError, TimeoutError) as exc:
            logger.warning("%s; %d claims will lapse after their lease", exc, len(ids))
        self._held.clear()

    async def renew_forever(self) -> None:
        """Every third of the lease, push back the leases of the claims held."""
        while True:
            await anyio.sleep(self._journal.lease / 3)
            held = sorted(self._held)
            if not held:
                continue
            try:
                args = [self._op, self._lease_ms]
                flags = await self._run("renew", args, held, items=len(held))
            except JournalError as exc:
                logger.warning("%s; cannot renew %d claims", exc, len(held))
                continue
            for item_id, kept in zip(held, flags, strict=True):
                if kept != "1" and item_id in self._held:
                    self._held.discard(item_id)
                    self.lost.add(item_id)
                    logger.warning(
                        "journal %r: the claim of %d lapsed and another worker took it over;"
                        " it may be sent twice",
                        self._journal.name,
                        item_id,
                    )
