"""A job journal: every outcome of a bulk run appended to a JSON-lines file, for resuming.

What a resume trusts, honestly:

- An id is skipped for an operation ``op`` only if the latest record of that id, whatever
  its operation, is a success of ``op``. A journal used to close, reopen and close again
  leaves every chat closed: the third run redoes the chats the second reopened. A failure
  recorded after a success makes the id pending again, since the failed attempt may have
  changed the chat (a timeout after the request was sent). Redoing is harmless: setting a
  status is idempotent.
- An update the server applied but whose answer never arrived (a crash, a cut connection, a
  Ctrl-C mid-request) is not recorded, so it is sent again on resume.
- A last line cut short by a crash is repaired (cut off) before anything is appended.
- One writer at a time: a second run opening the same journal is refused while the first
  holds it (``fcntl.flock`` on POSIX; Windows has no lock, and network file systems may not
  honour it).
- A path that is not a regular file (a FIFO, ``/dev/full``, a directory), or that cannot be
  read and written, is refused with a ``ValueError`` when the journal opens, before anything
  is sent. A damaged line anywhere but the torn last one is refused when the journal is
  read (``done()``, which every bulk run and ``session()`` call first).
- A write the disk refuses later (full, gone read-only) is a ``JournalError`` naming the path
  and the cause: a bulk run then stops sending, since it could not record what it does.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, overload

from .._config import is_int
from .._errors import JournalError, ResponseValidationError
from .._models._json import MAX_TEXT, decode_json, excerpt
from ._protocol import SEND, SKIP, Claim

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = ["FileSession", "Journal"]

#: Longest journal line read, in bytes. Records are written far shorter (see below), so a
#: longer line is damage, refused without reading it whole.
MAX_LINE = 64 * 1024
#: Longest id or operation name, in characters (an error's text is cut to ``MAX_TEXT``).
MAX_NAME = 200

# Never block on a FIFO; where the flag does not exist the fstat check still refuses it.
_OPEN_FLAGS = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class Journal:
    """Outcomes of bulk runs, one JSON object per line, appended and flushed as they happen.

    One journal can hold several runs and operations (``"closed"``, ``"opened"``...):
    ``done(op)`` is the set of ids whose latest record is a success of ``op``.

    Examples:
        >>> journal = Journal("close-stale.jsonl")  # doctest: +SKIP
        >>> await client.chats.bulk_update_status(ids, "closed", journal=journal)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"journal path must be a str or a path, not {type(path).__name__}")
        self.path = Path(path)
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @contextlib.asynccontextmanager
    async def session(self, op: str) -> AsyncIterator[FileSession]:
        """One bulk run of ``op``: opened (locked, repaired) and read once, closed at the end.

        The bulk engine uses it (``BulkJournal``): ids done with ``op`` are skipped, every
        outcome is appended. The lock makes the run the file's only writer, so a claim is
        never refused.

        Raises:
            ValueError: as ``open()`` and ``done()``.
        """
        self.open()
        try:
            yield FileSession(self, op, self.done(op))
        finally:
            self.close()

    def done(self, op: str) -> set[int]:
        """Ids whose latest record, across every operation, is a success of ``op``.

        Raises:
            ValueError: the path is not a readable regular file, or a line other than a
                torn last one is not a journal entry (the message names the line).
        """
        fd = self._os_open(os.O_RDONLY, "read", missing_ok=True)
        if fd is None:
            return set()
        latest: dict[int, tuple[str, bool]] = {}
        with os.fdopen(fd, "rb") as file:
            for chat_id, entry_op, ok in _entries(file, self.path):
                if is_int(chat_id):
                    latest[chat_id] = (entry_op, ok)
        return {chat_id for chat_id, (entry_op, ok) in latest.items() if ok and entry_op == op}

    def open(self) -> None:
        """Open for appending: lock, check and repair. Done by the bulk run that uses it.

        Raises:
            ValueError: not a regular file, not readable and writable, damaged beyond a
                torn last line, or in use by another run.
        """
        if self._fd is not None:
            # Two runs writing through one object would also share (and close) one file.
            raise ValueError(f"journal {self.path} is in use by another run of this process")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"journal {self.path}: cannot create its folder: {exc}") from None
        fd = self._os_open(os.O_RDWR | os.O_CREAT | os.O_APPEND, "read and written")
        try:
            _lock(fd, self.path)
            _repair(fd, self.path)
        except OSError as exc:  # a full disk while repairing a torn line: nothing sent yet
            os.close(fd)
            raise ValueError(
                f"journal {self.path} cannot be repaired: {exc.strerror or exc}"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def record(self, chat_id: int | str, op: str, *, ok: bool, error: str | None = None) -> None:
        """Append one outcome and hand it to the operating system.

        ``chat_id`` is the id, or a text standing for an invalid one; ``error`` is the reason
        of a failure (cut to ``MAX_TEXT`` characters).

        Raises:
            JournalError: the disk refused the write (full, gone read-only): the run cannot
                be recorded. The message names the path and the cause.
        """
        _check_record(chat_id, op, ok, error)
        if self._fd is None:
            self.open()
            assert self._fd is not None  # noqa: S101 - for mypy
        entry: dict[str, Any] = {
            "id": chat_id[:MAX_NAME] if isinstance(chat_id, str) else chat_id,
            "op": op,
            "ok": ok,
            "error": None if error is None else error[:MAX_TEXT],
            "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
        # ASCII only, so the bounds above bound the line in bytes too (well under MAX_LINE).
        line = (json.dumps(entry, ensure_ascii=True) + "\n").encode("ascii")
        try:
            _write_all(self._fd, line)
        except OSError as exc:
            raise self._failed("written", exc, "the outcomes recorded before it stand") from exc

    def close(self) -> None:
        """Flush to disk, release the lock and close.

        Raises:
            JournalError: the disk refused the flush: the last records may be lost.
        """
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            except OSError as exc:
                raise self._failed("flushed to disk", exc, "its last records may be lost") from exc
            finally:
                os.close(fd)  # releases the lock

    def _failed(self, how: str, exc: OSError, consequence: str) -> JournalError:
        """The error of a write or flush the disk refused, naming the path and the cause."""
        return JournalError(
            f"journal {self.path} cannot be {how}: {exc.strerror or exc}; {consequence}: "
            "run again with the same journal to resume once the disk can be written",
            path=self.path,
            errno=exc.errno,
        )

    @overload
    def _os_open(self, flags: int, how: str) -> int: ...
    @overload
    def _os_open(self, flags: int, how: str, *, missing_ok: bool) -> int | None: ...

    def _os_open(self, flags: int, how: str, *, missing_ok: bool = False) -> int | None:
        """Open the journal's path, refusing anything but a regular file without blocking.

        With ``missing_ok``, a path that does not exist (yet) gives ``None``.
        """
        try:
            fd = os.open(self.path, flags | _OPEN_FLAGS, 0o644)
        except OSError as exc:
            if missing_ok and isinstance(exc, FileNotFoundError | NotADirectoryError):
                return None
            raise ValueError(
                f"journal {self.path} cannot be {how}: {exc.strerror or exc}"
            ) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValueError(
                f"journal {self.path} is not a regular file (a device, FIFO or folder); "
                "give the path of a file"
            )
        return fd


class FileSession:
    """A ``JournalSession`` on a file: skips what it had done, appends every outcome."""

    def __init__(self, journal: Journal, op: str, done: set[int]) -> None:
        self._journal = journal
        self._op = op
        self._done = done

    async def claim(self, item_id: int) -> Claim:
        """``SKIP`` for an id done with the operation before the run, else ``SEND``."""
        return SKIP if item_id in self._done else SEND

    async def record(self, item_id: int | str, *, ok: bool, error: str | None = None) -> None:
        """Append the outcome (see ``Journal.record``)."""
        self._journal.record(item_id, self._op, ok=ok, error=error)

    async def release(self, item_id: int) -> None:
        """Nothing to give back: the file is this run's alone."""


def _check_record(chat_id: object, op: object, ok: object, error: object) -> None:
    """Refuse a record that could not be read back as written."""
    if not (is_int(chat_id) or isinstance(chat_id, str)):
        raise TypeError(f"chat_id must be an int or str, not {type(chat_id).__name__}")
    if not isinstance(op, str) or not 0 < len(op) <= MAX_NAME:
        raise ValueError(f"op must be a non-empty str of at most {MAX_NAME} characters")
    if not isinstance(ok, bool):
        raise TypeError(f"ok must be a bool, not {type(ok).__name__}")
    if error is not None and not isinstance(error, str):
        raise TypeError(f"error must be a str or None, not {type(error).__name__}")


def _lock(fd: int, path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - no advisory lock on Windows
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ValueError(
            f"journal {path} is in use by another run (it is locked); wait for that run to "
            "end, or give another journal"
        ) from None


def _repair(fd: int, path: Path) -> None:
    """Cut off a last line a crash left without its newline, unless it is a whole entry."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    start = max(0, size - MAX_LINE - 1)
    os.lseek(fd, start, os.SEEK_SET)
    tail = os.read(fd, size - start)
    if tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n")
    if cut < 0 and start > 0:
        raise ValueError(f"journal {path}: the last line is longer than {MAX_LINE} bytes")
    torn = tail[cut + 1 :]
    if _parse(torn) is not None:
        _write_all(fd, b"\n")  # the entry was whole; only its newline was lost
    else:
        os.ftruncate(fd, size - len(torn))


def _parse(line: bytes) -> tuple[Any, str, bool] | None:
    """A line's ``(id, op, ok)``, or ``None`` if it is not a journal entry."""
    try:
        entry = decode_json(line)
    except ResponseValidationError:
        return None
    if not isinstance(entry, dict):
        return None
    chat_id, ok = entry.get("id"), entry.get("ok")
    op = entry.get("op")
    if not (is_int(chat_id) or isinstance(chat_id, str)):
        return None
    if not isinstance(op, str) or not isinstance(ok, bool):
        return None
    return chat_id, op, ok


def _entries(file: IO[bytes], path: Path) -> Iterator[tuple[Any, str, bool]]:
    """``(id, op, ok)`` of each entry; blank lines and a torn end skipped."""
    number = 0
    while True:
        line: bytes = file.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE:
            raise ValueError(f"{path}:{number}: line longer than {MAX_LINE} bytes")
        if not line.strip():
            continue
        entry = _parse(line)
        if entry is None:
            if not line.endswith(b"\n"):
                return  # the write a crash interrupted
            raise ValueError(f"{path}:{number}: not a journal entry: {excerpt(line)!r}")
        yield entry


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
