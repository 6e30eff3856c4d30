"""The ``helpcrunch`` command: bulk status changes, search and list, the emulator, the demo."""

from __future__ import annotations

import json
import shlex
import signal
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

import anyio
import attrs
import click
from rich.console import Console

from .. import _config
from .._client import HelpCrunch
from .._errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    HelpCrunchError,
    ServerError,
)
from .._models import ChatStatus, Filter
from ._input import check_job_files, is_timestamp_field, parse_timestamp, read_ids
from ._job import (
    DEFAULT_STOP_AFTER,
    EXIT_ABORTED,
    EXIT_FAILED,
    EXIT_FATAL,
    EXIT_OK,
    EXIT_USAGE,
    JobResult,
    exit_code,
    journal_done,
    print_stop,
    print_summary,
    run_set_status,
    summary_json,
)
from ._output import plural
from ._signals import exit_code_for, stop_on_signals

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

EXIT_CODES_HELP = """\b
Exit codes:
  0    done: every chat updated, or nothing to do
  1    some chats failed (see the summary and --report)
  2    bad usage or input, or an unusable journal/report/id file
  3    the API key was refused (401)
  4    stopped: the API looks unreachable or failing (circuit breaker)
  130  stopped by Ctrl-C (SIGINT); 143: stopped by SIGTERM

\b
Summaries go to stdout; progress and diagnostics to stderr."""

#: The command line as typed, for the "to resume, run ..." hint (set by run_cli).
_argv: list[str] | None = None


def _command_line() -> str:
    return shlex.join(["helpcrunch", *(sys.argv[1:] if _argv is None else _argv)])


def _err() -> Console:
    # soft_wrap: no hard line breaks at 80 columns when the output is not a terminal.
    return Console(stderr=True, soft_wrap=True, markup=False, highlight=False)


def _out() -> Console:
    return Console(soft_wrap=True, markup=False, highlight=False)


def _rate(value: str | None) -> _config.RateLimit | None:
    if value is None:
        return _config.RateLimit()
    if value.lower() == "none":
        return None
    try:
        requests, per = value.split("/")
        return _config.RateLimit(requests=int(requests), per=float(per))
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(
            f"expected N/S such as 120/60, or none; got {value!r}", param_hint="--rate"
        ) from exc


def _status(value: str) -> ChatStatus:
    try:
        return ChatStatus.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="helpcrunch-async")
def cli() -> None:
    """Work with HelpCrunch chats from a terminal."""


_common = [
    click.option(
        "--api-key",
        envvar="HELPCRUNCH_API_KEY",
        help="API key [env HELPCRUNCH_API_KEY].",
    ),
    click.option(
        "--base-url",
        envvar="HELPCRUNCH_BASE_URL",
        help="API root [env HELPCRUNCH_BASE_URL; default: https://api.helpcrunch.com/v1].",
    ),
    click.option(
        "--rate",
        default=None,
        help="Client rate limit N/S, or none.  [default: 120/60, HelpCrunch's limit]",
    ),
]


def _with_common(func: Any) -> Any:
    for option in reversed(_common):
        func = option(func)
    return func


def _client(api_key: str | None, base_url: str | None, rate: str | None) -> HelpCrunch:
    if not api_key:
        raise click.UsageError("no API key: pass --api-key KEY or set HELPCRUNCH_API_KEY")
    limit = _rate(rate)
    try:
        return HelpCrunch(api_key, base_url=base_url, rate_limit=limit)
    except ValueError as exc:
        # The SDK speaks Python (base_url=...); the CLI speaks options.
        raise click.UsageError(
            str(exc).replace("base_url", "--base-url").replace("api_key=...", "--api-key")
        ) from None


@cli.group()
def chats() -> None:
    """Chats: change their status in bulk, search and list them."""


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
    help="Stop (exit 4) when this many chats in a row fail with a connection error or "
    "a 5xx: the API is down. 0 never stops.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary (or dry run) as one JSON object."
)
@click.option("--dry-run", is_flag=True, help="Check the input and show what would be done.")
@_with_common
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
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
) -> None:
    """Set STATUS on every CHAT_ID (and every id in --from-file).

    STATUS is one of: new, opened, pending, on-hold, no communication, closed.
    Every id is checked before anything is sent. Ctrl-C or SIGTERM stop cleanly: what
    completed is in the journal and the report, and the same command resumes.
    """
    target = _status(status)
    err, out = _err(), _out()
    if from_file is not None and from_file.isatty():
        err.print("Reading chat ids from the terminal, one per line; end with Ctrl-D.")
    ids = read_ids(chat_ids, from_file)
    if not ids:
        if from_file is None:
            raise click.UsageError("no chat ids: pass them as arguments or with --from-file")
        # An empty pipe: the command before it found nothing, or failed (and said so).
        err.print(f"No chat ids in {from_file.name}: nothing to do.")
        sys.exit(EXIT_OK)
    client = _client(api_key, base_url, rate)
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
            result = await run_set_status(
                client,
                ids,
                target,
                console=err,
                journal=journal,
                report=report,
                concurrency=concurrency,
                stop_after=stop_after or None,
            )
            if as_json:
                click.echo(summary_json(result, target.value, report))
            else:
                print_summary(out, client, result, target.value, report)
            return result

    result = anyio.run(main)
    command = _command_line()
    if from_file is not None and from_file.name == "<stdin>":
        command += "   # with the same ids on stdin"
    print_stop(err, result, journal=journal, command=command, base_url=str(client.base_url))
    sys.exit(exit_code(result))


_search_options = [
    click.option(
        "--sort", default=None, help="createdAt, lastMessageAt, lastCustomerMessageAt, closedAt."
    ),
    click.option("--order", type=click.Choice(["asc", "desc"]), default=None),
    click.option("--ids", "ids_only", is_flag=True, help="Print only chat ids, one per line."),
]


def _with_search_options(func: Any) -> Any:
    for option in reversed(_search_options):
        func = option(func)
    return func


@chats.command("search", epilog=EXIT_CODES_HELP)
@click.option(
    "--status", "statuses", multiple=True, help="Match this status; repeat for any of several."
)
@click.option(
    "--filter",
    "filters",
    nargs=3,
    multiple=True,
    metavar="FIELD OP VALUE",
    help="A condition such as: chats.lastMessageAt '<' 2024-01-31 (repeatable). Timestamps "
    "(fields ending in At) take epoch seconds or ISO 8601 dates/datetimes (naive = UTC).",
)
@click.option(
    "--any", "match_any", is_flag=True, help="Match any condition (OR) instead of all (AND)."
)
@_with_search_options
@_with_common
def search(
    statuses: tuple[str, ...],
    filters: tuple[tuple[str, str, str], ...],
    match_any: bool,
    sort: str | None,
    order: str | None,
    ids_only: bool,
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
) -> None:
    """Find chats; print them as JSON lines, or only their ids with --ids.

    Several --status match any of them, AND-ed with every --filter: "(on-hold OR new) AND
    older than X" is --status on-hold --status new --filter chats.lastMessageAt '<' X.
    The API takes one kind of comparison per request, so that is one search per status,
    merged without duplicates (each status's chats in --sort order, one status after the
    other).

    \b
    Example:
      helpcrunch chats search --status pending --ids |
        helpcrunch chats set-status closed --from-file -
    """  # noqa: D301 - \b is click's "do not rewrap" marker
    try:
        conditions = [_filter(field, op, value) for field, op, value in filters]
        by_status = [Filter("chats.status", "=", _status(s)) for s in statuses]
        if not by_status and not conditions:
            raise click.UsageError(
                "give at least one --status or --filter (every chat: helpcrunch chats list)"
            )
        if match_any or len(by_status) <= 1:
            queries = [(by_status + conditions, "OR" if match_any else "AND")]
        else:
            queries = [([one, *conditions], "AND") for one in by_status]
        client = _client(api_key, base_url, rate)
        searches = [
            client.chats.search(
                query,
                comparison=comparison,  # type: ignore[arg-type]
                sort=sort,
                order=order,  # type: ignore[arg-type]
            )
            for query, comparison in queries
        ]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(_print_chats(client, searches, ids_only=ids_only))


@chats.command("list", epilog=EXIT_CODES_HELP)
@_with_search_options
@_with_common
def list_chats(
    sort: str | None,
    order: str | None,
    ids_only: bool,
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
) -> None:
    """Every chat, as JSON lines, or only their ids with --ids."""
    client = _client(api_key, base_url, rate)
    try:
        pages = client.chats.list(sort=sort, order=order)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(_print_chats(client, [pages], ids_only=ids_only))


def _filter(field: str, op: str, value: str) -> Filter:
    if is_timestamp_field(field):
        return Filter(field, op, parse_timestamp(value))
    return Filter(field, op, _number_or_text(value))


def _print_chats(client: HelpCrunch, sources: list[AsyncIterator[Any]], *, ids_only: bool) -> int:
    """Print every chat of ``sources`` once; the exit code says how it ended."""
    err = _err()

    async def main() -> tuple[int, int | None]:
        seen: set[int] = set()
        code = EXIT_OK
        async with client, stop_on_signals() as interrupt:
            try:
                for source in sources:
                    async for chat in source:
                        if chat.id in seen:
                            continue
                        seen.add(chat.id)
                        click.echo(str(chat.id) if ids_only else json.dumps(chat.raw, default=str))
            except AuthenticationError as exc:
                err.print(
                    f"The API key was refused ({exc}); check --api-key or HELPCRUNCH_API_KEY."
                )
                code = EXIT_FATAL
            except BadRequestError as exc:
                err.print(f"The API refused the search: {exc}")
                code = EXIT_USAGE
            except (APIConnectionError, ServerError) as exc:
                err.print(f"The API at {client.base_url} is unreachable or failing: {exc}")
                code = EXIT_ABORTED
            except HelpCrunchError as exc:
                err.print(f"Error: {exc}")
                code = EXIT_FAILED
        return code, interrupt.signum

    code, signum = anyio.run(main)
    if signum is not None:
        err.print("Interrupted.")
        return exit_code_for(signum)
    return code


def _number_or_text(value: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


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
) -> None:
    """Serve a HelpCrunch emulator on loopback until Ctrl-C or SIGTERM; print its statistics."""
    from ..emulator import EmulatorConfig, Faults, ServerLimit, run  # noqa: PLC0415

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
    run(config, host=host, port=port)


@cli.command()
@click.option("--chats", "chat_count", default=300, show_default=True, type=click.IntRange(1, 5000))
@click.option("--rate", default="40/2", show_default=True, help="The emulated limit, N/S.")
def demo(chat_count: int, rate: str) -> None:
    """Bulk-close chats on a local emulator with a strict rate limit: no network needed."""
    from ._demo import run_demo  # noqa: PLC0415

    limit = _rate(rate)
    if limit is None:
        raise click.UsageError("the demo needs a rate limit")
    sys.exit(anyio.run(run_demo, chat_count, limit))


__all__ = ["cli", "run_cli"]
