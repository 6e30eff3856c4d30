"""``--log-json FILE``: the client's events as JSON lines, for jobs run under a scheduler."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from types import TracebackType

    from .._send._events import ClientEvent


class EventLog:
    """An ``on_event`` observer appending one JSON object per event to a file.

    Each line is ``{"time": <UTC ISO 8601>, "event": <kind>, ...the event's fields}``, for
    example ``{"time": "2026-11-27T16:02:11.250143+00:00", "event": "retry_scheduled",
    "operation": "chats.update_status", "call_id": 42, "attempt": 1, "reason":
    "throttled", "error_type": "RateLimitError", "delay": 2.0}``. The file is appended
    to (a resumed job continues its log) and line-buffered, so ``tail -f`` shows each event
    as it happens. Events carry no key and no body, and neither does the log.
    """

    def __init__(self, path: str) -> None:
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._file = target.open("a", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise click.FileError(path, hint=exc.strerror or str(exc)) from None

    def __repr__(self) -> str:
        return f"EventLog({self._file.name!r})"

    def __call__(self, event: ClientEvent) -> None:
        """Write ``event`` as one line."""
        line = {"time": datetime.now(timezone.utc).isoformat(), **event.to_json()}
        self._file.write(json.dumps(line) + "\n")

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
