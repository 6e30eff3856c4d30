"""What the CLI shows and writes: a live progress display, the summary and the report."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console

    from .._bulk import ChatOutcome
    from .._bulk import Progress as BulkProgress

#: Seconds between plain progress lines when the output is not a terminal.
PLAIN_EVERY = 2.0


def duration(seconds: float) -> str:
    """``75.2`` -> ``"1m15s"``."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


class ProgressDisplay:
    """A rich progress bar on a terminal; a plain line every few seconds elsewhere."""

    def __init__(self, console: Console, label: str, total: int | None) -> None:
        self.console = console
        self.started = time.monotonic()
        self._last_line = self.started
        self._bar: Progress | None = None
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("[red]{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]}/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
            )
            self._task = self._bar.add_task(label, total=total, failed=0, rate="0.0")

    def __enter__(self) -> ProgressDisplay:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, progress: BulkProgress) -> None:
        """Show the latest counts."""
        now = time.monotonic()
        rate = progress.done / max(now - self.started, 1e-9)
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=progress.done,
                total=progress.total,
                failed=progress.failed,
                rate=f"{rate:.1f}",
            )
        elif now - self._last_line >= PLAIN_EVERY:
            self._last_line = now
            of = f"/{progress.total}" if progress.total is not None else ""
            self.console.print(
                f"progress: {progress.done}{of} done, {progress.failed} failed, {rate:.1f}/s",
                highlight=False,
            )


class Report:
    """Every outcome, one row each: CSV if the path ends in ``.csv``, else JSON lines."""

    def __init__(self, path: str | None, status: str) -> None:
        self.status = status
        self._file: IO[str] | None = None
        self._csv: Any = None
        if path is None:
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._file = target.open("w", encoding="utf-8", newline="")
        if target.suffix.lower() == ".csv":
            self._csv = csv.writer(self._file)
            self._csv.writerow(["chat_id", "status", "ok", "error"])

    def write(self, outcome: ChatOutcome) -> None:
        """Add one outcome."""
        if self._file is None:
            return
        error = (
            None if outcome.error is None else f"{type(outcome.error).__name__}: {outcome.error}"
        )
        if self._csv is not None:
            self._csv.writerow([outcome.chat_id, self.status, outcome.ok, error or ""])
        else:
            row = {"chat_id": outcome.chat_id, "status": self.status, "ok": outcome.ok}
            self._file.write(json.dumps(row | {"error": error}, default=repr) + "\n")

    def close(self) -> None:
        """Flush and close the file."""
        if self._file is not None:
            self._file.close()
