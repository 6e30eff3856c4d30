"""A job journal: every bulk outcome appended to a JSONL file as it happens, for resuming.

The guarantee, honestly: an id is skipped on resume only if its success was written here.
An update the server applied but whose answer never arrived (a crash, a cut connection, a
Ctrl-C mid-request) is not recorded, so it is sent again on resume; that is harmless
because setting a status is idempotent. Failed ids are recorded too, and retried on resume.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

__all__ = ["Journal"]


class Journal:
    """Outcomes of bulk runs, one JSON object per line, appended and flushed as they happen.

    One journal can hold several runs and statuses: ``done(status)`` only counts successes
    of that status, so closing chats never skips ids that were merely opened before.

    Example:
        >>> journal = Journal("close-stale.jsonl")  # doctest: +SKIP
        >>> await client.chats.bulk_update_status(ids, "closed", journal=journal)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    def done(self, status: str) -> set[int]:
        """Ids whose latest recorded outcome for ``status`` is a success.

        A last line cut short by a crash is ignored; any other unreadable line is a
        ``ValueError`` naming the line, since resuming from a damaged journal could redo
        or skip work silently.
        """
        if not self.path.exists():
            return set()
        done: dict[int, bool] = {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                chat_id, ok, entry_status = entry["id"], entry["ok"], entry["status"]
            except (ValueError, KeyError, TypeError):
                if number == len(lines):
                    break  # the write a crash interrupted
                raise ValueError(
                    f"{self.path}:{number}: not a journal entry: {line[:80]!r}"
                ) from None
            if entry_status == status and isinstance(chat_id, int):
                done[chat_id] = bool(ok)
        return {chat_id for chat_id, ok in done.items() if ok}

    def open(self) -> None:
        """Open for appending (done by the bulk run that uses the journal)."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")

    def record(self, chat_id: Any, status: str, ok: bool, error: str | None) -> None:
        """Append one outcome (``error`` is ``None`` on success) and flush it to the OS."""
        if self._file is None:
            self.open()
            assert self._file is not None  # noqa: S101 - for mypy
        entry: dict[str, Any] = {
            "id": chat_id if isinstance(chat_id, int) else repr(chat_id),
            "status": status,
            "ok": ok,
            "error": error,
            "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Flush to disk and close."""
        if self._file is not None:
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
