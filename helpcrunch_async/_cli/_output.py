"""What the CLI shows and writes: a live progress display, the failure summary and the report.

The split: progress and diagnostics go to stderr, summaries (what a script or a log wants to
keep) to stdout.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections import deque
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .._config import plural
from .._errors import APIError, NotFoundError
from ._input import FileError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    from rich.console import Console

    from .._bulk._outcomes import BulkOutcome
    from .._bulk._outcomes import Progress as BulkProgress

#: Seconds between plain progress lines when the output is not a terminal.
PLAIN_EVERY = 2.0
#: The rate is measured over this many most recent seconds.
RATE_WINDOW = 60.0
#: No rate (nor ETA) is shown before this many seconds and outcomes: the first requests
#: leave in a burst, and a rate measured on them promises far more than the limit allows.
MIN_RATE_SECONDS = 5.0
MIN_RATE_OUTCOMES = 5
#: Example ids printed per failure reason.
EXAMPLES_PER_REASON = 3
#: Failure reasons printed before "... and N more reasons".
MAX_REASONS_SHOWN = 10


def duration(seconds: float) -> str:
    """``75.2`` -> ``"1m15s"``; ``4000`` -> ``"1h06m40s"``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


class RateEstimator:
    """Outcomes per second over the last ``RATE_WINDOW`` seconds; ``None`` until trustworthy."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._samples: deque[tuple[float, int]] = deque([(self._started, 0)])

    def add(self, processed: int) -> float | None:
        """Record the count of outcomes so far; return the rate, or ``None`` if too early."""
        now = self._clock()
        self._samples.append((now, processed))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW:  # noqa: PLR2004
            self._samples.popleft()
        if now - self._started < MIN_RATE_SECONDS or processed < MIN_RATE_OUTCOMES:
            return None
        since, before = self._samples[0]
        return (processed - before) / max(now - since, 1e-9)


def _eta(rate: float | None, remaining: int | None) -> str:
    if rate is None or remaining is None:
        return "-"
    if rate <= 0:
        return "?"
    return duration(remaining / rate)


class ProgressDisplay:
    """A rich progress bar on a terminal; a plain line every few seconds elsewhere.

    "processed" counts outcomes, failures included; "updated" and "failed" split it.
    Once the reader of the console has gone (a closed pipe), nothing more is shown: the
    error is kept in ``closed`` and ``on_closed`` is called, to stop the run gently.
    """

    def __init__(self, console: Console, label: str, total: int | None) -> None:
        self.console = console
        self.closed: BrokenPipeError | None = None
        self.on_closed: Callable[[], None] | None = None
        self._rate = RateEstimator()
        self._last_line = time.monotonic()
        self._bar: Progress | None = None
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.fields[of]} processed"),
                TextColumn("[green]{task.fields[updated]} updated"),
                TextColumn("[red]{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]}/s"),
                TimeElapsedColumn(),
                TextColumn("ETA {task.fields[eta]}"),
                console=console,
            )
            self._task = self._bar.add_task(
                label, total=total, of=total or "?", updated=0, failed=0, rate="-", eta="-"
            )

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
        # Stopping rich's live display ends the line and shows the cursor again.
        if self._bar is not None:
            self._bar.stop()

    def update(self, progress: BulkProgress) -> None:
        """Show the latest counts."""
        if self.closed is not None:
            return
        try:
            self._show(progress)
        except BrokenPipeError as exc:
            self.closed = exc
            if self.on_closed is not None:
                self.on_closed()

    def _show(self, progress: BulkProgress) -> None:
        rate = self._rate.add(progress.done)
        remaining = None if progress.total is None else max(progress.total - progress.done, 0)
        rate_text = "-" if rate is None else f"{rate:.1f}"
        eta = _eta(rate, remaining)
        updated = progress.done - progress.failed
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=progress.done,
                total=progress.total,
                of=progress.total or "?",
                updated=updated,
                failed=progress.failed,
                rate=rate_text,
                eta=eta,
            )
            return
        now = time.monotonic()
        if now - self._last_line >= PLAIN_EVERY:
            self._last_line = now
            of = f"/{progress.total}" if progress.total is not None else ""
            self.console.print(
                f"progress: {progress.done}{of} processed ({updated} updated, "
                f"{progress.failed} failed), {rate_text}/s, ETA {eta}",
                highlight=False,
            )


#: A version segment at the end of an API root: HelpCrunch's is ``/v1``.
_VERSIONED = re.compile(r"/v\d+/?$")


def wrong_url_hint(base_url: str) -> str:
    """What to check when 404s are not HelpCrunch's: the URL, not the chats, is missing."""
    if _VERSIONED.search(base_url) is None:
        return f"is --base-url missing /v1? (it is {base_url})"
    return f"is --base-url right? (it is {base_url})"


def is_wrong_url(error: BaseException | None, base_url: str) -> bool:
    """A 404 that says the URL is wrong: not HelpCrunch's answer, or a root with no version."""
    if not isinstance(error, NotFoundError):
        return False
    return error.endpoint_not_found or _VERSIONED.search(base_url) is None


def reason(error: BaseException) -> str:
    """How failures are grouped: the error class, plus the HTTP status and codes if any."""
    name = type(error).__name__
    if isinstance(error, NotFoundError) and error.endpoint_not_found:
        return f"{name} (HTTP 404, not HelpCrunch's answer)"
    if isinstance(error, APIError):
        codes = ", ".join(code for code in error.codes if code)
        return f"{name} (HTTP {error.status_code}{': ' + codes if codes else ''})"
    return name


class FailureSummary:
    """Failures grouped by reason, with counts and a few example ids each (of ``noun``s)."""

    def __init__(self, noun: str = "chat", *, base_url: str = "") -> None:
        self._groups: dict[str, list[Any]] = {}
        self.noun = noun
        self._base_url = base_url
        #: Failures that say the URL is wrong (``is_wrong_url``).
        self.wrong_url = 0

    def add(self, outcome: BulkOutcome) -> None:
        """Count one outcome (successes are ignored)."""
        if outcome.error is not None:
            self._groups.setdefault(reason(outcome.error), []).append(outcome.id)
            self.wrong_url += is_wrong_url(outcome.error, self._base_url)

    @property
    def total(self) -> int:
        """Failures counted."""
        return sum(len(ids) for ids in self._groups.values())

    def as_dict(self) -> dict[str, int]:
        """Reason -> count, most frequent first."""
        ordered = sorted(self._groups.items(), key=lambda item: -len(item[1]))
        return {name: len(ids) for name, ids in ordered}

    def lines(self, report: str | None) -> list[str]:
        """The summary, most frequent reason first, and where the full list is."""
        if not self._groups:
            return []
        ordered = sorted(self._groups.items(), key=lambda item: -len(item[1]))
        lines = [f"Failures by reason ({plural(self.total, self.noun)}):"]
        for name, ids in ordered[:MAX_REASONS_SHOWN]:
            examples = ", ".join(str(i) for i in ids[:EXAMPLES_PER_REASON])
            more = ", ..." if len(ids) > EXAMPLES_PER_REASON else ""
            lines.append(f"  {len(ids):>6}  {name}: {examples}{more}")
        if len(ordered) > MAX_REASONS_SHOWN:
            lines.append(f"  ... and {len(ordered) - MAX_REASONS_SHOWN} more reasons")
        if self.wrong_url:
            lines.append(
                f"{plural(self.wrong_url, self.noun)} failed with a 404 that says the URL is "
                f"wrong, not the {self.noun}: {wrong_url_hint(self._base_url)}"
            )
        if report is not None:
            lines.append(f"Every failed id, with its error: {report}")
        else:
            lines.append("Pass --report FILE for the list of every failed id and its error.")
        return lines


class Report:
    """Every id's outcome, one row each: CSV if the path ends in ``.csv``, else JSON lines.

    The file is rewritten by each run of a job: first the ids an earlier run already did
    (from the journal), then this run's outcomes as they complete; so after any number of
    resumes it lists each id once, with its final outcome. ``columns`` name the id and what
    was done (``customer_id``, ``operation`` for a customer job).
    """

    COLUMNS = ("chat_id", "status", "ok", "error", "run")

    def __init__(
        self, path: str | None, status: str, *, columns: tuple[str, ...] = COLUMNS
    ) -> None:
        self.path = path
        self.status = status
        self.columns = columns
        self._file: IO[str] | None = None
        self._csv: Any = None
        if path is None:
            return
        target = Path(path)
        try:
            self._file = target.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise FileError(f"--report {path}: cannot write: {exc.strerror}") from None
        if target.suffix.lower() == ".csv":
            self._csv = csv.writer(self._file)
            self._csv.writerow(self.columns)

    def _row(self, chat_id: Any, ok: bool, error: str | None, run: str) -> None:
        if self._file is None:
            return
        if self._csv is not None:
            self._csv.writerow([chat_id, self.status, ok, error or "", run])
        else:
            row = dict(zip(self.columns, (chat_id, self.status, ok, error, run), strict=True))
            self._file.write(json.dumps(row, default=repr) + "\n")

    def write_earlier(self, chat_ids: Iterable[int]) -> None:
        """Rows for ids an earlier run of the job already updated (the journal says so)."""
        for chat_id in chat_ids:
            self._row(chat_id, True, None, "earlier")  # noqa: FBT003

    def write(self, outcome: BulkOutcome) -> None:
        """Add one outcome of this run."""
        error = (
            None if outcome.error is None else f"{type(outcome.error).__name__}: {outcome.error}"
        )
        self._row(outcome.id, outcome.ok, error, "this")

    def close(self) -> None:
        """Flush and close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
