"""One set-status job: run it with a progress display, stop it cleanly, summarise it.

Exit codes (also in ``helpcrunch --help``):

====  ==========================================================================
0     every chat was updated (or there was nothing to do)
1     some chats failed (the summary and the report say which and why)
2     bad usage or input, or a journal/report/id file that cannot be used
3     the API key was refused (401): nothing more is sent
4     stopped: the API looks unreachable or failing (the circuit breaker, or no connection)
130   stopped by Ctrl-C (SIGINT); 143: stopped by SIGTERM
141   the reader of the output closed it (``... | head -1``), as for any Unix tool
====  ==========================================================================
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import attrs

from .._bulk._journal import Journal
from .._config import plural
from .._errors import AuthenticationError, BulkAbortedError, HelpCrunchError, JournalError
from .._send._observe import ClientStats
from ._input import FileError
from ._options import find_error
from ._output import (
    FailureSummary,
    ProgressDisplay,
    Report,
    is_wrong_url,
    wrong_url_hint,
)
from ._signals import exit_code_for, stop_on_signals

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rich.console import Console

    from .._bulk._engine import OutcomeStream
    from .._client import HelpCrunch
    from .._models import ChatStatus
    from ..redis import RedisJournal
    from ._watch import JobWatch

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_FATAL, EXIT_ABORTED = 0, 1, 2, 3, 4
#: Ids in a row failing with a connection error, a 5xx or a 404 that is not HelpCrunch's
#: (after the client's own retries) that stop a bulk run: the API is down or the URL wrong,
#: every other id would fail the same way.
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
    #: Attempts that never reached a server (no connection could be made).
    could_not_connect: int = 0
    #: Wall-clock seconds during which the rate limiter held at least one update back.
    limiter_seconds: float = 0.0
    #: Seconds without a single connection, when the job stopped for that.
    unreachable_for: float | None = None
    #: The client's counters when the run ended.
    stats: ClientStats = attrs.field(factory=ClientStats)

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
    watch: JobWatch,
    stop_after: int | None = DEFAULT_STOP_AFTER,
) -> JobResult:
    """Update every id with a progress display on ``console``; journal and report outcomes.

    SIGINT/SIGTERM end it cleanly (workers cancelled, files closed, display stopped); so do
    a refused key, a tripped circuit breaker (``fatal``) and an API that cannot be reached
    at all (``watch``, one of the client's observers). A closed output stops it the same
    way, then raises ``BrokenPipeError``.
    """
    stream = client.chats.stream_update_status(
        ids,
        status,
        concurrency=concurrency,
        journal=journal,
        stop_after_consecutive_failures=stop_after,
    )
    return await run_job(
        client,
        stream,
        ids,
        label=status.value,
        console=console,
        journal=journal,
        report=report,
        watch=watch,
    )


async def run_job(
    client: HelpCrunch,
    stream: OutcomeStream[Any],
    ids: list[int],
    *,
    label: str,
    console: Console,
    journal: str | RedisJournal | None,
    report: str | None,
    watch: JobWatch,
    noun: str = "chat",
    columns: tuple[str, ...] = Report.COLUMNS,
) -> JobResult:
    """Run any bulk ``stream`` over ``ids`` as ``run_set_status`` does (``label`` is shown).

    ``noun`` names the ids in messages; ``columns`` name the report's id and label columns;
    ``watch`` (one of ``client``'s observers) stops the run when no connection can be made.
    """
    started = time.monotonic()
    distinct = list(dict.fromkeys(ids))
    done_before = await already_done(journal, stream.name, distinct)
    earlier = [item_id for item_id in distinct if item_id in done_before]
    if earlier:
        where = journal
        if journal is not None and not isinstance(journal, str):
            where = f"the shared journal of job {journal.name!r}"
        console.print(
            f"Resuming from {where}: {len(earlier)} of {plural(len(distinct), noun)} "
            f"already done, {len(distinct) - len(earlier)} to go.",
            highlight=False,
        )
    failures = FailureSummary(noun, base_url=str(client.base_url))
    fatal: HelpCrunchError | None = None
    out: Report | None = None
    problem: FileError | BrokenPipeError | None = None
    display = ProgressDisplay(console, label, len(ids))
    async with stop_on_signals() as interrupt:
        # Caught here, inside: past the signal watcher's task group it would be a group.
        try:
            with display:
                async with stream as outcomes:
                    # Opened once the journal is locked: a second run of the same job is
                    # refused before it can truncate the first one's report.
                    out = Report(report, label, columns=columns)
                    out.write_earlier(earlier)
                    # A signal, an unreachable API or a closed output stop the workers;
                    # the outcomes they completed still reach the report (they are in
                    # the journal already).
                    interrupt.on_signal = watch.on_unreachable = outcomes.stop
                    display.on_closed = outcomes.stop
                    display.update(outcomes.progress())
                    async for outcome in outcomes:
                        out.write(outcome)
                        failures.add(outcome)
                        display.update(outcomes.progress())
        except HelpCrunchError as exc:  # a refused key, a tripped breaker: the run ended
            fatal = exc
        except Exception as exc:  # noqa: BLE001 - anything but a file problem is raised again
            problem = _as_file_error(exc)
        finally:
            watch.on_unreachable = None
    if out is not None:
        try:
            out.close()
        except OSError as exc:
            problem = problem or FileError(f"cannot write the journal or report: {exc}")
    problem = problem or display.closed
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
        could_not_connect=watch.could_not_connect,
        limiter_seconds=watch.limiter_seconds,
        unreachable_for=watch.unreachable_for,
        stats=client.stats(),
    )


def _as_file_error(exc: Exception) -> FileError | BrokenPipeError:
    """A problem with the job's files as the CLI's one-line error; anything else re-raised.

    A closed pipe (the progress, or a report written to a pipe) is no file problem: it is
    returned as it is, for the command to end quietly.
    """
    if isinstance(exc, FileError):
        return exc
    closed = find_error(exc, BrokenPipeError)
    if closed is not None:
        return closed
    if isinstance(exc, ValueError):  # the journal is in use by another run: nothing was sent
        return FileError(f"--journal: {exc}")
    # A full disk, from the report here or from the journal in a worker (in a group).
    disk_error = find_error(exc, OSError)
    if disk_error is None:
        raise exc
    return FileError(f"cannot write the journal or report: {disk_error}")


def stopped_by(result: JobResult) -> str | None:
    if result.signum is not None:
        return "signal"
    if result.unreachable_for is not None:
        return "unreachable"
    if isinstance(result.fatal, AuthenticationError):
        return "authentication"
    if isinstance(result.fatal, BulkAbortedError):
        return "circuit-breaker"
    return None


def print_stop(
    err: Console,
    result: JobResult,
    *,
    journal: str | None,
    command: str,
    base_url: str,
    key_from_environment: bool = False,
) -> None:
    """Why the run stopped early, on ``err`` (stderr), and how to resume it.

    ``command`` resumes the run; a key typed on the command line is already replaced in it by
    ``$HELPCRUNCH_API_KEY`` (``key_from_environment``), never shown.
    """
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
    elif result.unreachable_for is not None:
        err.print(
            f"Stopped: no connection to {base_url} could be made for "
            f"{result.unreachable_for:.0f} s ({plural(result.could_not_connect, 'attempt')} "
            f"refused, unresolved or timed out): the API is unreachable from here. "
            f"{result.not_started} not started. Check --base-url and the network.",
            highlight=False,
        )
    elif isinstance(result.fatal, BulkAbortedError):
        last = result.fatal.last_error
        check = (
            wrong_url_hint(base_url)
            if is_wrong_url(last, base_url)
            else "Check --base-url and the network."
        )
        err.print(
            f"Stopped: {plural(result.fatal.failures, result.noun)} in a row failed with "
            f"{type(last).__name__}: the API at {base_url} looks "
            f"unreachable or failing (last error: {last}). "
            f"{result.not_started} not started. {check[0].upper()}{check[1:]}",
            highlight=False,
        )
    elif result.fatal is not None:  # the shared journal could not be used
        err.print(f"Stopped: {result.fatal}. {result.not_started} not started.", highlight=False)
    else:
        return
    if journal is not None:
        key = "; with the API key in HELPCRUNCH_API_KEY" if key_from_environment else ""
        err.print(f"To resume (the journal {journal} skips what is done{key}):", highlight=False)
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
    if result.fatal is not None or result.unreachable_for is not None:
        return EXIT_ABORTED
    return EXIT_FAILED if result.failed else EXIT_OK
