"""The ``helpcrunch`` command: bulk status changes, search and list, the emulator, the demo."""

from __future__ import annotations

import functools
import json
import shlex
import signal
import sys
import threading
from typing import IO, Any

import anyio
import attrs
import click

from ._event_log import EventLog
from ._input import check_job_files, read_ids
from ._job import (
    DEFAULT_STOP_AFTER,
    EXIT_OK,
    JobResult,
    exit_code,
    journal_done,
    print_stop,
    print_summary,
    run_set_status,
    summary_document,
)
from ._options import (
    EXIT_CODES_HELP,
    UsageLineError,
    err_console,
    make_client,
    out_console,
    parse_status,
    rate_limit,
    with_common,
)
from ._output import plural
from ._search import list_chats, search
from ._signals import EXIT_OUTPUT_CLOSED, exit_code_for, silence_closed_output
from ._watch import UNREACHABLE_AFTER, JobWatch

#: The command line as typed, for the "to resume, run ..." hint (set by run_cli).
_argv: list[str] | None = None
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


class _TerminatedError(Exception):
    """SIGTERM outside a run (a run handles it itself, with the signal watcher)."""


def _terminated(_signum: int, _frame: object) -> None:
    raise _TerminatedError


def run_cli(args: list[str] | None = None) -> None:
    """Run the command; every way it ends is an exit code, never a traceback."""
    global _argv  # noqa: PLW0603 - the hint needs the line as typed
    _argv = args
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        code = cli.main(args, prog_name="helpcrunch", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt, _TerminatedError) as exc:
        # Before or after a run (reading ids, printing); a run itself stops on its own.
        click.echo("Interrupted.", err=True)
        terminated = isinstance(exc, _TerminatedError)
        sys.exit(exit_code_for(signal.SIGTERM if terminated else signal.SIGINT))
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


class _OutputClosedError(click.ClickException):
    """The reader of the output went away (``| head -1``): nobody is left to tell."""

    exit_code = EXIT_OUTPUT_CLOSED

    def __init__(self) -> None:
        super().__init__("the output was closed")

    def show(self, file: IO[Any] | None = None) -> None:  # noqa: ARG002 - nothing to show
        """Say nothing, and keep Python's last flush at exit from failing into the pipe."""
        silence_closed_output()


class _Commands(click.Group):
    """The command group, with a closed output turned into a quiet exit 141 for any command.

    click would turn the ``BrokenPipeError`` into exit 1 itself; the work of the command
    has stopped cleanly where the write failed (a run stops as for a signal).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _OutputClosedError from None


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(package_name="helpcrunch-async")
def cli() -> None:
    """Work with HelpCrunch chats from a terminal."""


@cli.group()
def chats() -> None:
    """Chats: change their status in bulk, search and list them."""


chats.add_command(search)
chats.add_command(list_chats)


@chats.command("set-status", epilog=EXIT_CODES_HELP)
@click.argument("status")
@click.argument("chat_ids", nargs=-1)
@click.option(
    "--from-file", "from_file", type=click.File("r"), help="Ids, one per line; - for stdin."
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False),
    help="Record every outcome as it happens; run the same command again to resume "
    "(ids done with this status are skipped).",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    help="Write every id's outcome (.csv, else JSON lines). Rewritten by each run; with "
    "--journal it also lists the ids earlier runs did, so after any number of resumes "
    "each id appears once, with its final outcome.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Updates in flight.  [default: the client's connection pool, 10]",
)
@click.option(
    "--stop-after",
    type=click.IntRange(min=0),
    default=DEFAULT_STOP_AFTER,
    show_default=True,
    help="Stop (exit 4) when this many chats in a row fail with a connection error, a 5xx "
    "or a 404 that is not HelpCrunch's: the API is down or the URL wrong. Also stop when no "
    "connection at all could be made for 10 s (at least this many attempts). 0 never stops.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary (or dry run) as one JSON object."
)
@click.option("--dry-run", is_flag=True, help="Check the input and show what would be done.")
@click.option(
    "--log-json",
    type=click.Path(dir_okay=False),
    help="Append every request, answer, retry, 429 and outcome to FILE as JSON lines.",
)
@with_common
def set_status(
    status: str,
    chat_ids: tuple[str, ...],
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
) -> None:
    """Set STATUS on every CHAT_ID (and every id in --from-file).

    STATUS is one of: new, opened, pending, on-hold, no communication, closed.
    Every id is checked before anything is sent. Ctrl-C or SIGTERM stop cleanly: what
    completed is in the journal and the report, and the same command resumes.
    """
    target = parse_status(status)
    err, out = err_console(), out_console()
    if from_file is not None and from_file.isatty():
        err.print("Reading chat ids from the terminal, one per line; end with Ctrl-D.")
    ids = read_ids(chat_ids, from_file)
    if not ids:
        if from_file is None:
            raise click.UsageError("no chat ids: pass them as arguments or with --from-file")
        # An empty pipe: the command before it found nothing, or failed (and said so).
        err.print(f"No chat ids in {from_file.name}: nothing to do.")
        sys.exit(EXIT_OK)
    log = EventLog(log_json) if log_json and not dry_run else None
    # --stop-after 0 never stops: neither for failed chats nor for an unreachable API.
    watch = JobWatch(
        unreachable_after=UNREACHABLE_AFTER if stop_after else None, min_failures=stop_after
    )
    client = make_client(api_key, base_url, rate, on_event=[watch] if log is None else [log, watch])
    check_job_files(journal, report, writable=not dry_run)
    if dry_run:
        done = journal_done(journal, target.value)
        distinct = set(ids)
        todo = len(distinct - done)
        if as_json:
            counts = {"would_update": todo, "already_done": len(distinct) - todo}
            click.echo(json.dumps(counts | {"repeated": len(ids) - len(distinct)}))
            sys.exit(EXIT_OK)
        out.print(
            f"Dry run: would set {target.value!r} on {plural(todo, 'chat')} "
            f"({len(distinct) - todo} already done, {len(ids) - len(distinct)} repeated) "
            f"via {client.base_url}; nothing sent."
        )
        sys.exit(EXIT_OK)

    async def main() -> JobResult:
        async with client:
            return await run_set_status(
                client,
                ids,
                target,
                console=err,
                journal=journal,
                report=report,
                concurrency=concurrency,
                watch=watch,
                stop_after=stop_after or None,
            )

    try:
        result = anyio.run(main)
    finally:
        if log is not None:
            log.close()
    if as_json:
        click.echo(json.dumps(summary_document(client, result, target.value, report)))
    else:
        print_summary(out, client, result, target.value, report)
    command, key_typed = resume_command(sys.argv[1:] if _argv is None else _argv)
    if from_file is not None and from_file.name == "<stdin>":
        command += "   # with the same ids on stdin"
    print_stop(
        err,
        result,
        journal=journal,
        command=command,
        base_url=str(client.base_url),
        key_from_environment=key_typed,
    )
    sys.exit(exit_code(result))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--chats", "chat_count", default=500, show_default=True, type=click.IntRange(min=1))
@click.option("--api-key", default="emulator-key", show_default=True)
@click.option("--rate-limit", default="120/60", show_default=True, help="N/S, or none.")
@click.option(
    "--payload-style", type=click.Choice(["spec", "legacy"]), default="spec", show_default=True
)
@click.option(
    "--error-style", type=click.Choice(["older", "newer"]), default="older", show_default=True
)
@click.option(
    "--server-errors",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of 5xx answers (0-1).",
)
@click.option(
    "--dropped", type=float, default=0.0, show_default=True, help="Share of cut connections (0-1)."
)
@click.option(
    "--truncated",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of truncated bodies (0-1).",
)
@click.option(
    "--latency", type=float, default=0.0, show_default=True, help="Seconds added to each answer."
)
@click.option("--webhook-url", default=None, help="POST a signed webhook here for each change.")
@click.option(
    "--webhook-signing-key",
    envvar="HELPCRUNCH_WEBHOOK_SIGNING_KEY",
    help="Key the webhooks are signed with (default: the emulator's).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the banner, and the statistics at the end, as one JSON object each.",
)
def emulator(
    host: str,
    port: int,
    chat_count: int,
    api_key: str,
    rate_limit: str,
    payload_style: str,
    error_style: str,
    server_errors: float,
    dropped: float,
    truncated: float,
    latency: float,
    webhook_url: str | None,
    webhook_signing_key: str | None,
    as_json: bool,
) -> None:
    """Serve a HelpCrunch emulator on loopback until Ctrl-C or SIGTERM; print its statistics."""
    from ..emulator import EmulatorConfig, Faults, ListenError, ServerLimit, run  # noqa: PLC0415

    try:
        config = EmulatorConfig(
            api_key=api_key,
            chats=chat_count,
            rate_limit=None if rate_limit.lower() == "none" else ServerLimit.parse(rate_limit),
            faults=Faults(
                server_errors=server_errors, dropped=dropped, truncated=truncated, latency=latency
            ),
            payload_style=payload_style,  # type: ignore[arg-type]
            error_style=error_style,  # type: ignore[arg-type]
            webhook_url=webhook_url,
        )
        if webhook_signing_key is not None:
            config = attrs.evolve(config, webhook_signing_key=webhook_signing_key)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        run(config, host=host, port=port, as_json=as_json)
    except ListenError as exc:
        raise UsageLineError(
            f"{exc.strerror}: pick another --port (--port 0 picks a free one)"
        ) from None


@cli.command()
@click.option("--chats", "chat_count", default=300, show_default=True, type=click.IntRange(1, 5000))
@click.option("--rate", default="40/2", show_default=True, help="The emulated limit, N/S.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the summary, the client's and the server's, as one JSON object.",
)
def demo(chat_count: int, rate: str, as_json: bool) -> None:
    """Bulk-close chats on a local emulator with a strict rate limit: no network needed."""
    from ._demo import run_demo  # noqa: PLC0415 - the emulator loads only for the demo

    limit = rate_limit(rate)
    if limit is None:
        raise click.UsageError("the demo needs a rate limit")
    sys.exit(anyio.run(functools.partial(run_demo, chat_count, limit, as_json=as_json)))


__all__ = ["cli", "run_cli"]
