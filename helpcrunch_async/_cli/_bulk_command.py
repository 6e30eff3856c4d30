"""A bulk command from ids to exit code: ``chats set-status``, ``customers tag``, ``untag``.

Each reads its ids the same way (arguments and ``--from-file``, every bad line reported at
once), checks its journal and report before anything is sent, can dry-run, runs with a
progress display that signals stop cleanly, prints a summary and how to resume, and exits
with the codes of ``helpcrunch --help``. What differs is in a ``BulkJob``.
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
from typing import IO, TYPE_CHECKING, Any, NoReturn

import anyio
import attrs
import click

from .._config import plural
from ._event_log import EventLog
from ._input import check_job_files, read_ids
from ._job import (
    DEFAULT_STOP_AFTER,
    EXIT_OK,
    JobResult,
    already_done,
    exit_code,
    print_stop,
    run_job,
)
from ._options import err_console, make_client, out_console, stacked
from ._output import Report
from ._shared_journal import closing, journal_file, open_journal, shared_limit, shown
from ._summary import print_summary, summary_document
from ._watch import UNREACHABLE_AFTER, JobWatch

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._bulk._engine import OutcomeStream
    from .._client import HelpCrunch
    from ..redis import RedisJournal

__all__ = ["KEY_FROM_ENVIRONMENT", "BulkJob", "job_options", "resume_command", "run_job_command"]

#: What the resume hint shows where the key was typed: the hint is printed, logged and
#: copied around, the key must not be.
KEY_FROM_ENVIRONMENT = '"$HELPCRUNCH_API_KEY"'


def resume_command(argv: list[str]) -> tuple[str, bool]:
    """The command line to resume with, and whether a typed ``--api-key`` was replaced in it.

    Every argument is quoted for a POSIX shell, except the key's value: it becomes
    ``"$HELPCRUNCH_API_KEY"``, which the shell expands from the environment.
    """
    words, replaced, options_ended = ["helpcrunch"], False, False
    rest = iter(argv)
    for arg in rest:
        if options_ended:
            words.append(shlex.quote(arg))
        elif arg == "--api-key":
            words.append(arg)
            if next(rest, None) is not None:
                words.append(KEY_FROM_ENVIRONMENT)
                replaced = True
        elif arg.startswith("--api-key="):
            words.append("--api-key=" + KEY_FROM_ENVIRONMENT)
            replaced = True
        else:
            options_ended = arg == "--"
            words.append(shlex.quote(arg))
    return " ".join(words), replaced


def job_options(noun: str) -> Callable[[Any], Any]:
    """The options of a bulk command over ``noun`` ids (``--from-file``, ``--journal``...)."""
    return stacked(
        [
            click.option(
                "--from-file",
                "from_file",
                type=click.File("r"),
                help="Ids, one per line; - for stdin.",
            ),
            click.option(
                "--journal",
                help="Record every outcome as it happens; run the same command again to "
                "resume (ids done with the same operation are skipped). A file, or a job in "
                "Redis shared by every machine given the same ids: redis://host:6379/0#JOB "
                "(any Redis URL, #job-name); the machines then share --rate there too.",
            ),
            click.option(
                "--report",
                type=click.Path(dir_okay=False),
                help="Write every id's outcome (.csv, else JSON lines). Rewritten by each "
                "run; with --journal it also lists the ids earlier runs did, so after any "
                "number of resumes each id appears once, with its final outcome.",
            ),
            click.option(
                "--concurrency",
                type=click.IntRange(min=1),
                default=None,
                help="Updates in flight.  [default: the client's connection pool, 10]",
            ),
            click.option(
                "--stop-after",
                type=click.IntRange(min=0),
                default=DEFAULT_STOP_AFTER,
                show_default=True,
                help=f"Stop (exit 4) when this many {noun}s in a row fail with a connection "
                "error, a 5xx or a 404 that is not HelpCrunch's: the API is down or the URL "
                "wrong. Also stop when no connection at all could be made for 10 s (at least "
                "this many attempts). 0 never stops.",
            ),
            click.option(
                "--json",
                "as_json",
                is_flag=True,
                help="Print the summary (or dry run) as one JSON object.",
            ),
            click.option(
                "--dry-run", is_flag=True, help="Check the input and show what would be done."
            ),
            click.option(
                "--log-json",
                type=click.Path(dir_okay=False),
                help="Append every request, answer, retry, 429 and outcome to FILE as JSON lines.",
            ),
        ]
    )


@attrs.frozen
class BulkJob:
    """What one bulk command does.

    Attributes:
        noun: What the ids are (``"chat"``, ``"customer"``).
        label: The operation, in the progress display, the report and the summary.
        verb: The dry run's wording: "would {verb} 3 chats" (``"set 'closed' on"``).
        action: The summary's: "3 chats {action}" (``"set to 'closed'"``).
        stream: Makes the run: ``stream(client, ids, options)``, the options being
            ``concurrency``, ``journal`` and ``stop_after_consecutive_failures``.
        key: The name of ``label`` in the ``--json`` summary.
        columns: The report's columns.
    """

    noun: str
    label: str
    verb: str
    action: str
    stream: Callable[[HelpCrunch, list[int], dict[str, Any]], OutcomeStream[Any]]
    key: str = "status"
    columns: tuple[str, ...] = Report.COLUMNS


def run_job_command(
    job: BulkJob,
    *,
    ids_given: tuple[str, ...],
    from_file: IO[str] | None,
    journal: str | None,
    report: str | None,
    concurrency: int | None,
    stop_after: int,
    as_json: bool,
    dry_run: bool,
    log_json: str | None,
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
    argv: list[str],
) -> NoReturn:
    """Run ``job`` over the ids given, as ``helpcrunch chats set-status`` does; exit.

    The keyword arguments are the command's options (``job_options`` and ``with_common``).
    """
    err, out = err_console(), out_console()
    noun = job.noun
    if from_file is not None and from_file.isatty():
        err.print(f"Reading {noun} ids from the terminal, one per line; end with Ctrl-D.")
    ids = read_ids(ids_given, from_file, noun)
    if not ids:
        if from_file is None:
            raise click.UsageError(f"no {noun} ids: pass them as arguments or with --from-file")
        # An empty pipe: the command before it found nothing, or failed (and said so).
        err.print(f"No {noun} ids in {from_file.name}: nothing to do.")
        sys.exit(EXIT_OK)
    log = EventLog(log_json) if log_json and not dry_run else None
    # --stop-after 0 never stops: neither for failed ids nor for an unreachable API.
    watch = JobWatch(
        unreachable_after=UNREACHABLE_AFTER if stop_after else None, min_failures=stop_after
    )
    check_job_files(journal_file(journal), report, writable=not dry_run)
    opened = open_journal(journal)
    client = make_client(
        api_key,
        base_url,
        rate,
        on_event=[watch] if log is None else [log, watch],
        # A job in Redis shares the key's limit there too (not for a dry run: nothing is sent).
        share=None if dry_run else functools.partial(shared_limit, journal),
    )
    options = {
        "concurrency": concurrency,
        "journal": opened,
        "stop_after_consecutive_failures": stop_after or None,
    }
    if dry_run:
        done = anyio.run(_done_before, opened, job.stream(client, ids, options).name, ids)
        distinct = set(ids)
        todo = len(distinct - done)
        if as_json:
            counts = {"would_update": todo, "already_done": len(distinct) - todo}
            click.echo(json.dumps(counts | {"repeated": len(ids) - len(distinct)}))
            sys.exit(EXIT_OK)
        out.print(
            f"Dry run: would {job.verb} {plural(todo, noun)} "
            f"({len(distinct) - todo} already done, {len(ids) - len(distinct)} repeated) "
            f"via {client.base_url}; nothing sent."
        )
        sys.exit(EXIT_OK)

    async def main() -> JobResult:
        async with client, closing(opened, client.limiter):
            return await run_job(
                client,
                job.stream(client, ids, options),
                ids,
                label=job.label,
                console=err,
                journal=opened,
                report=report,
                watch=watch,
                noun=noun,
                columns=job.columns,
            )

    try:
        result = anyio.run(main)
    finally:
        if log is not None:
            log.close()
    if as_json:
        click.echo(json.dumps(summary_document(client, result, job.label, report, key=job.key)))
    else:
        print_summary(out, client, result, job.label, report, action=job.action)
    command_line, key_typed = resume_command(argv)
    if from_file is not None and from_file.name == "<stdin>":
        command_line += "   # with the same ids on stdin"
    print_stop(
        err,
        result,
        journal=shown(journal),
        command=shown(command_line),
        base_url=str(client.base_url),
        key_from_environment=key_typed,
    )
    sys.exit(exit_code(result))


async def _done_before(
    journal: str | RedisJournal | None, operation: str, ids: list[int]
) -> set[int]:
    """What a dry run needs of the journal: the ids it has done (then closed)."""
    async with closing(journal):
        return await already_done(journal, operation, ids)
