"""One set-status job: run it with a progress display, stop it cleanly, summarise it.

Exit codes (also in ``helpcrunch --help``):

====  ==========================================================================
0     every chat was updated (or there was nothing to do)
1     some chats failed (the summary and the report say which and why)
2     bad usage or input, or a journal/report/id file that cannot be used
3     the API key was refused (401): nothing more is sent
4     stopped by the circuit breaker: the API looks unreachable or failing
130   stopped by Ctrl-C (SIGINT); 143: stopped by SIGTERM
====  ==========================================================================
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import attrs

from .._bulk._journal import Journal
from .._errors import AuthenticationError, BulkAbortedError, HelpCrunchError, JournalError
from .._limit._local import LocalRateLimiter
from ._input import FileError
from ._output import FailureSummary, ProgressDisplay, Report, duration, plural
from ._signals import exit_code_for, stop_on_signals

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rich.console import Console

    from .._bulk._engine import OutcomeStream
    from .._client import HelpCrunch
    from .._models import ChatStatus
    from ..redis import RedisJournal

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_FATAL, EXIT_ABORTED = 0, 1, 2, 3, 4
#: Chats in a row failing with a connection error or a 5xx (after the client's own retries)
#: that stop a set-status run: the API is down, every other id would fail the same way.
DEFAULT_STOP_AFTER = 10


@attrs.frozen
class JobResult:
    """What a set-status run did, and why it ended."""

    updated: int
    failed: int
    skipped: int
    duplicates: int
    #: Distinct ids this run had to do (journaled ones and repeats excluded).
    todo: int
    fatal: HelpCrunchError | None
    signum: int | None
    seconds: float
    failures: FailureSummary = attrs.field(factory=FailureSummary)
    #: What the ids are, in messages.
    noun: str = "chat"

    @property
    def not_started(self) -> int:
        """Ids left undone by an interruption or a stop."""
        return max(self.todo - self.updated - self.failed, 0)


def journal_done(journal: str | None, status: str) -> set[int]:
    """Ids the journal has done with ``status``; a damaged or unreadable journal is a FileError."""
    if journal is None:
        return set()
    try:
        return Journal(journal).done(status)
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(f"--journal {journal}: cannot read: {exc}") from None
    except ValueError as exc:
        raise FileError(f"--journal: damaged, not resuming from it: {exc}") from None


async def already_done(
    journal: str | RedisJournal | None, operation: str, ids: Iterable[int]
) -> set[int]:
    """The ids among ``ids`` that the journal (a file, or a job in Redis) has done."""
    if journal is None or isinstance(journal, str):
        return journal_done(journal, operation).intersection(ids)
    wanted = list(dict.fromkeys(ids))
    return set(wanted) - set(await journal.pending(operation, wanted))


async def run_set_status(
    client: HelpCrunch,
    ids: list[int],
    status: ChatStatus,
    *,
    console: Console,
    journal: str | RedisJournal | None,
    report: str | None,
    concurrency: int | None,
    stop_after: int | None = DEFAULT_STOP_AFTER,
) -> JobResult:
    """Update every id with a progress display on ``console``; journal and report outcomes.

    SIGINT/SIGTERM end it cleanly (workers cancelled, files closed, display stopped); so do
    a refused key and a tripped circuit breaker (``fatal``).
    """
    stream = client.chats.stream_update_status(
        ids,
        status,
        concurrency=concurrency,
        journal=journal,
        stop_after_consecutive_failures=stop_after,
    )
    return await run_job(
        stream, ids, label=status.value, console=console, journal=journal, report=report
    )


async def run_job(
    stream: OutcomeStream[Any],
    ids: list[int],
    *,
    label: str,
    console: Console,
    journal: str | RedisJournal | None,
    report: str | None,
    noun: str = "chat",
    columns: tuple[str, ...] = Report.COLUMNS,
) -> JobResult:
    """Run any bulk ``stream`` over ``ids`` as ``run_set_status`` does (``label`` is shown).

    ``noun`` names the ids in messages; ``columns`` name the report's id and label columns.
    """
    started = time.monotonic()
    distinct = list(dict.fromkeys(ids))
    done_before = await already_done(journal, stream.name, distinct)
    earlier = [item_id for item_id in distinct if item_id in done_before]
    if earlier:
        where = journal if isinstance(journal, str) else repr(journal)
        console.print(
            f"Resuming from {where}: {len(earlier)} of {plural(len(distinct), noun)} "
            f"already done, {len(distinct) - len(earlier)} to go.",
            highlight=False,
        )
    failures = FailureSummary(noun)
    fatal: HelpCrunchError | None = None
    out: Report | None = None
    problem: FileError | None = None
    async with stop_on_signals() as interrupt:
        # Caught here, inside: past the signal watcher's task group it would be a group.
        try:
            with ProgressDisplay(console, label, len(ids)) as display:
                async with stream as outcomes:
                    # Opened once the journal is locked: a second run of the same job is
                    # refused before it can truncate the first one's report.
                    out = Report(report, label, columns=columns)
                    out.write_earlier(earlier)
                    # A signal stops the workers; the outcomes they completed still
                    # reach the report (they are in the journal already).
                    interrupt.on_signal = outcomes.stop
                    display.update(outcomes.progress())
                    async for outcome in outcomes:
                        out.write(outcome)
                        failures.add(outcome)
                        display.update(outcomes.progress())
        except HelpCrunchError as exc:  # a refused key, a tripped breaker: the run ended
            fatal = exc
        except Exception as exc:  # noqa: BLE001 - anything but a file problem is raised again
            problem = _as_file_error(exc)
    if out is not None:
        try:
            out.close()
        except OSError as exc:
            problem = problem or FileError(f"cannot write the journal or report: {exc}")
    if problem is not None:
        raise problem
    return JobResult(
        updated=stream.done - stream.failed,
        failed=stream.failed,
        skipped=stream.skipped,
        duplicates=stream.duplicates,
        todo=len(distinct) - len(earlier),
        fatal=fatal,
        signum=interrupt.signum,
        seconds=time.monotonic() - started,
        failures=failures,
        noun=noun,
    )


def _as_file_error(exc: Exception) -> FileError:
    """A problem with the job's files as the CLI's one-line error; anything else re-raised."""
    if isinstance(exc, FileError):
        return exc
    if isinstance(exc, ValueError):  # the journal is in use by another run: nothing was sent
        return FileError(f"--journal: {exc}")
    # A full disk, from the report here or from the journal in a worker (in a group).
    disk_error = _os_error(exc)
    if disk_error is None:
        raise exc
    return FileError(f"cannot write the journal or report: {disk_error}")


def _os_error(exc: BaseException) -> OSError | None:
    """The ``OSError`` in ``exc``, looking inside exception groups."""
    if isinstance(exc, OSError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _os_error(inner)
        if found is not None:
            return found
    return None


def print_summary(
    out: Console,
    client: HelpCrunch,
    result: JobResult,
    status: str,
    report: str | None,
    *,
    action: str | None = None,
) -> None:
    """The end-of-job summary on ``out`` (stdout): outcomes, failures by reason, the client.

    ``action`` says what was done (default: ``set to 'status'``).
    """
    stats = client.stats()
    done = action or f"set to {status!r}"
    out.print(
        f"{plural(result.updated, result.noun)} {done}, {result.failed} failed, "
        f"{result.skipped} skipped (already done), "
        f"{plural(result.duplicates, 'duplicate')}, in {duration(result.seconds)}.",
        highlight=False,
    )
    for line in result.failures.lines(report):
        out.print(line, highlight=False)
    out.print(
        f"Requests sent: {stats.requests} ({plural(stats.retries, 'retry', 'retries')}); "
        f"429 answers: {stats.throttled}; "
        f"time spent waiting for the rate limiter: {duration(stats.limiter_wait)} "
        "(summed over concurrent workers).",
        highlight=False,
    )
    limiter = client.limiter
    if stats.learned_limit is not None and isinstance(limiter, LocalRateLimiter):
        limit = limiter.limit
        out.print(
            f"The server answered 429 below the configured {limit.requests} requests per "
            f"{limit.per:g} s: the client learned to hold to {stats.learned_limit} per "
            f"{limit.per:g} s. Your key's real limit is about that; set --rate to match.",
            highlight=False,
        )


def summary_json(result: JobResult, status: str, report: str | None, *, key: str = "status") -> str:
    """The summary as one JSON object, for scripts (``--json``); ``key`` names ``status``."""
    document: dict[str, Any] = {
        key: status,
        "updated": result.updated,
        "failed": result.failed,
        "skipped": result.skipped,
        "duplicates": result.duplicates,
        "not_started": result.not_started,
        "failures_by_reason": result.failures.as_dict(),
        "report": report,
        "stopped_by": _stopped_by(result),
        "exit_code": exit_code(result),
        "seconds": round(result.seconds, 3),
    }
    return json.dumps(document)


def _stopped_by(result: JobResult) -> str | None:
    if result.signum is not None:
        return "signal"
    if isinstance(result.fatal, AuthenticationError):
        return "authentication"
    if isinstance(result.fatal, BulkAbortedError):
        return "circuit-breaker"
    return None


def print_stop(
    err: Console, result: JobResult, *, journal: str | None, command: str, base_url: str
) -> None:
    """Why the run stopped early, on ``err`` (stderr), and how to resume it."""
    if result.signum is not None:
        name = "Ctrl-C" if exit_code_for(result.signum) == 130 else "SIGTERM"  # noqa: PLR2004
        err.print(
            f"Interrupted by {name}: {plural(result.updated + result.failed, result.noun)} "
            "processed "
            f"({result.updated} updated, {result.failed} failed), "
            f"{result.not_started} not started.",
            highlight=False,
        )
    elif isinstance(result.fatal, AuthenticationError):
        err.print(
            f"Stopped: the API key was refused ({result.fatal}). Check --api-key or "
            "HELPCRUNCH_API_KEY; nothing more was sent.",
            highlight=False,
        )
    elif isinstance(result.fatal, BulkAbortedError):
        err.print(
            f"Stopped: {plural(result.fatal.failures, result.noun)} in a row failed with "
            f"{type(result.fatal.last_error).__name__}: the API at {base_url} looks "
            f"unreachable or failing (last error: {result.fatal.last_error}). "
            f"{result.not_started} not started. Check --base-url and the network.",
            highlight=False,
        )
    elif result.fatal is not None:  # the shared journal could not be used
        err.print(f"Stopped: {result.fatal}. {result.not_started} not started.", highlight=False)
    else:
        return
    if journal is not None:
        err.print(f"To resume (the journal {journal} skips what is done):", highlight=False)
        err.print(f"  {command}", highlight=False, soft_wrap=True)
    else:
        err.print(
            "Without --journal a rerun starts over; add --journal FILE to be able to resume.",
            highlight=False,
        )


def exit_code(result: JobResult) -> int:
    """0 done, 1 some failed, 2 an unusable journal, 3 key refused, 4 circuit breaker.

    130 and 143 for SIGINT and SIGTERM.
    """
    if result.signum is not None:
        return exit_code_for(result.signum)
    if isinstance(result.fatal, AuthenticationError):
        return EXIT_FATAL
    if isinstance(result.fatal, JournalError):  # a full disk, an unreachable Redis journal
        return EXIT_USAGE
    if result.fatal is not None:
        return EXIT_ABORTED
    return EXIT_FAILED if result.failed else EXIT_OK
