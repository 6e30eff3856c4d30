"""What the CLI reads: chat ids from arguments and files, timestamps, and the job's files.

Everything here runs before a request is sent; a problem is a ``click.UsageError`` (or
``FileError``) with one line per problem, never a traceback.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from .._models import validate_id
from ._options import UsageLineError

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Bad id lines printed before "... and N more": enough to see the pattern, not a flood.
MAX_BAD_LINES_SHOWN = 10


class FileError(UsageLineError):
    """A journal, report or id file that cannot be read or written: one line, exit 2."""


def read_ids(args: Iterable[str], source: IO[str] | None, noun: str = "chat") -> list[int]:
    """Ids from arguments and a file (one per line; blank lines and ``#`` comments skipped).

    Every argument and line is checked before anything is sent, and every bad one is
    reported in one usage error naming the file (``<stdin>`` for ``-``) and the line; at
    most ``MAX_BAD_LINES_SHOWN`` are printed.
    """
    ids: list[int] = []
    bad: list[str] = []

    def take(text: str, where: str) -> None:
        try:
            ids.append(validate_id(int(text)))
        except ValueError:
            bad.append(f"{where}: not a {noun} id: {text[:40]!r}")

    for arg in args:
        take(arg, f"argument {arg[:40]!r}")
    if source is not None:
        name = getattr(source, "name", "<input>")
        try:
            for number, line in enumerate(source, start=1):
                text = line.split("#", 1)[0].strip()
                if text:
                    take(text, f"{name}:{number}")
        except (OSError, UnicodeDecodeError) as exc:
            raise FileError(f"cannot read {name}: {exc}") from None
    if bad:
        shown = bad[:MAX_BAD_LINES_SHOWN]
        more = len(bad) - len(shown)
        if more:
            shown.append(f"... and {more} more")
        count = f"{len(bad)} bad {noun} id{'s' if len(bad) != 1 else ''}"
        raise click.UsageError(f"{count}, nothing was sent:\n  " + "\n  ".join(shown))
    return ids


def parse_timestamp(value: str) -> int | datetime:
    """Epoch seconds as given, or an ISO 8601 date / datetime (naive means UTC) as aware."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(
                f"expected epoch seconds or an ISO 8601 date or datetime "
                f"(2024-01-31, 2024-01-31T12:00:00+02:00), got {value!r}"
            ) from None
        when = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def check_job_files(journal: str | None, report: str | None, *, writable: bool = True) -> None:
    """Refuse the same file as journal and report, and unwritable files (if ``writable``).

    Missing files are created empty. Checked before anything is sent, so a 14-hour job
    does not fail on its first outcome.
    """
    paths = {"--journal": journal, "--report": report}
    resolved = {opt: Path(p).resolve() for opt, p in paths.items() if p is not None}
    if len(resolved) == 2 and resolved["--journal"] == resolved["--report"]:  # noqa: PLR2004
        raise click.UsageError(f"--journal and --report are the same file: {journal}")
    if not writable:
        return
    for option, path in resolved.items():
        if path.is_dir():
            raise FileError(f"{option} {paths[option]}: is a directory")
        if option == "--journal" and path.exists() and not path.is_file():
            # A device or a pipe: resuming would read it whole (/dev/zero never ends).
            raise FileError(f"--journal {paths[option]}: not a regular file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise FileError(f"{option} {paths[option]}: cannot write: {exc.strerror}") from None
