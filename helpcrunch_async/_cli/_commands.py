"""The ``helpcrunch`` command: bulk status changes, search, the emulator and the demo."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, TYPE_CHECKING, Any

import anyio
import attrs
import click
from rich.console import Console

from .. import _config
from .._client import HelpCrunch
from .._errors import AuthenticationError, HelpCrunchError
from .._journal import Journal
from .._models import ChatStatus, validate_chat_id
from ._output import ProgressDisplay, Report, duration

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Exit codes.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _rate(value: str | None) -> _config.RateLimit | None:
    if value is None:
        return _config.RateLimit()
    if value.lower() == "none":
        return None
    try:
        requests, per = value.split("/")
        return _config.RateLimit(requests=int(requests), per=float(per))
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(f"expected N/S such as 120/60, or none; got {value!r}") from exc


def _status(value: str) -> ChatStatus:
    try:
        return ChatStatus.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def read_ids(args: Iterable[str], source: IO[str] | None) -> list[int]:
    """Chat ids from arguments and a file (one per line; blank lines and ``#`` comments skipped).

    Every line is checked before anything is sent; a bad one is a usage error naming the
    file (``<stdin>`` for ``-``) and the line.
    """
    ids = [_parse_id(arg, f"argument {arg!r}") for arg in args]
    if source is not None:
        name = getattr(source, "name", "<input>")
        for number, line in enumerate(source, start=1):
            text = line.split("#", 1)[0].strip()
            if text:
                ids.append(_parse_id(text, f"{name}:{number}"))
    return ids


def _parse_id(text: str, where: str) -> int:
    try:
        return validate_chat_id(int(text))
    except ValueError:
        raise click.UsageError(f"{where}: not a chat id: {text!r}") from None


@attrs.frozen
class JobResult:
    """Counts of a finished set-status job (or of one a wrong key stopped)."""

    updated: int
    failed: int
    skipped: int
    duplicates: int
    fatal: HelpCrunchError | None
    seconds: float


async def run_set_status(
    client: HelpCrunch,
    ids: list[int],
    status: ChatStatus,
    *,
    console: Console,
    journal: str | None,
    report: str | None,
    concurrency: int | None,
) -> JobResult:
    """Update every id with a progress display; record outcomes in the journal and report."""
    started = time.monotonic()
    fatal = None
    out = Report(report, status.value)
    stream = client.chats.stream_update_status(
        ids, status, concurrency=concurrency, journal=journal
    )
    try:
        with ProgressDisplay(console, status.value, len(ids)) as display:
            async with stream as outcomes:
                display.update(outcomes.progress())
                async for outcome in outcomes:
                    out.write(outcome)
                    display.update(outcomes.progress())
    except AuthenticationError as exc:
        fatal = exc
    finally:
        out.close()
    return JobResult(
        updated=stream.done - stream.failed,
        failed=stream.failed,
        skipped=stream.skipped,
        duplicates=stream.duplicates,
        fatal=fatal,
        seconds=time.monotonic() - started,
    )


def print_summary(console: Console, client: HelpCrunch, result: JobResult, status: str) -> None:
    """The end-of-job summary: outcomes, then what the client did to get there."""
    stats = client.stats()
    console.print(
        f"\n[bold]{result.updated} chats set to {status!r}[/], "
        f"[red]{result.failed} failed[/], {result.skipped} skipped (already done), "
        f"{result.duplicates} duplicates, in {duration(result.seconds)}."
    )
    console.print(
        f"Requests sent: {stats.requests} ({stats.retries} retries); "
        f"429 answers: {stats.rate_limited}; "
        f"time spent waiting for the rate limiter: {duration(stats.limiter_wait)} "
        "(summed over concurrent workers).",
        highlight=False,
    )


def exit_code(result: JobResult) -> int:
    """0 all succeeded, 1 some failed, 3 the run was stopped by a fatal error."""
    if result.fatal is not None:
        return EXIT_FATAL
    return EXIT_FAILED if result.failed else EXIT_OK


def run_cli(args: list[str] | None = None) -> None:
    """Run the command; Ctrl-C gives a short message and exit code 130, never a traceback."""
    try:
        code = cli.main(args, prog_name="helpcrunch", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="helpcrunch-async")
def cli() -> None:
    """Work with HelpCrunch chats from a terminal."""


_common = [
    click.option(
        "--api-key", envvar="HELPCRUNCH_API_KEY", help="API key [env HELPCRUNCH_API_KEY]."
    ),
    click.option(
        "--base-url", envvar="HELPCRUNCH_BASE_URL", help="API root [env HELPCRUNCH_BASE_URL]."
    ),
    click.option("--rate", default=None, help="Client rate limit N/S (default 120/60), or none."),
]


def _with_common(func: Any) -> Any:
    for option in reversed(_common):
        func = option(func)
    return func


def _journal_done(journal: str | None, target: ChatStatus) -> set[int]:
    """The ids the journal has done; a journal that cannot be used is a usage error, at once."""
    try:
        return Journal(journal).done(target.value) if journal else set()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _client(api_key: str | None, base_url: str | None, rate: str | None) -> HelpCrunch:
    try:
        return HelpCrunch(api_key, base_url=base_url, rate_limit=_rate(rate))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@cli.group()
def chats() -> None:
    """Chats: change their status in bulk, search them."""


@chats.command("set-status")
@click.argument("status")
@click.argument("chat_ids", nargs=-1)
@click.option(
    "--from-file", "from_file", type=click.File("r"), help="Ids, one per line; - for stdin."
)
@click.option(
    "--journal", type=click.Path(dir_okay=False), help="Record outcomes; rerun to resume."
)
@click.option(
    "--report", type=click.Path(dir_okay=False), help="Write every outcome (.csv or JSON lines)."
)
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="Updates in flight.")
@click.option("--dry-run", is_flag=True, help="Check the input and show what would be done.")
@_with_common
def set_status(
    status: str,
    chat_ids: tuple[str, ...],
    from_file: IO[str] | None,
    journal: str | None,
    report: str | None,
    concurrency: int | None,
    dry_run: bool,
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
) -> None:
    """Set STATUS on every CHAT_ID (and every id in --from-file).

    STATUS is one of: new, opened, pending, on-hold, no communication, closed.
    """
    target = _status(status)
    ids = read_ids(chat_ids, from_file)
    if not ids:
        raise click.UsageError("no chat ids: pass them as arguments or with --from-file")
    client = _client(api_key, base_url, rate)
    console = Console(stderr=True)
    done = _journal_done(journal, target)
    if dry_run:
        todo = len({i for i in ids if i not in done})
        console.print(
            f"Dry run: would set {target.value!r} on {todo} chats "
            f"({len(ids) - todo} already done or repeated) via {client.base_url}; nothing sent.",
            highlight=False,
        )
        return

    async def main() -> JobResult:
        async with client:
            result = await run_set_status(
                client,
                ids,
                target,
                console=console,
                journal=journal,
                report=report,
                concurrency=concurrency,
            )
            print_summary(console, client, result, target.value)
            return result

    try:
        result = anyio.run(main)
    except ValueError as exc:  # the journal is in use by another run: nothing was sent
        raise click.ClickException(str(exc)) from None
    if result.fatal is not None:
        console.print(f"[red]Stopped:[/] {result.fatal}", highlight=False)
    sys.exit(exit_code(result))


@chats.command("search")
@click.option("--status", "statuses", multiple=True, help="Match this status (repeatable).")
@click.option(
    "--filter",
    "filters",
    nargs=3,
    multiple=True,
    metavar="FIELD OP VALUE",
    help="A filter such as: chats.lastMessageAt '<' 1700000000 (repeatable).",
)
@click.option("--any", "match_any", is_flag=True, help="Match any filter (OR), not all (AND).")
@click.option(
    "--sort", default=None, help="createdAt, lastMessageAt, lastCustomerMessageAt, closedAt."
)
@click.option("--order", type=click.Choice(["asc", "desc"]), default=None)
@click.option("--ids", "ids_only", is_flag=True, help="Print only chat ids, one per line.")
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
    """Find chats; with --ids, feed the result to set-status --from-file -.

    \b
    Example:
      helpcrunch chats search --status pending --ids |
        helpcrunch chats set-status closed --from-file -
    """  # noqa: D301 - \b is click's "do not rewrap" marker
    from .._models import Filter  # noqa: PLC0415

    try:
        wanted = [Filter("chats.status", "=", _status(s)) for s in statuses]
        wanted += [Filter(field, op, _number_or_text(value)) for field, op, value in filters]
        if not wanted:
            raise click.UsageError("give at least one --status or --filter")
        if len(statuses) > 1 and not match_any and not filters:
            match_any = True  # several statuses can only mean "any of them"
        client = _client(api_key, base_url, rate)
        results = client.chats.search(
            wanted,
            comparison="OR" if match_any else "AND",
            sort=sort,
            order=order,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    async def main() -> None:
        async with client:
            async for chat in results:
                line = str(chat.id) if ids_only else json.dumps(chat.raw, default=str)
                click.echo(line)

    try:
        anyio.run(main)
    except HelpCrunchError as exc:
        raise click.ClickException(str(exc)) from None


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
@click.option("--payload-style", type=click.Choice(["spec", "legacy"]), default="spec")
@click.option("--error-style", type=click.Choice(["older", "newer"]), default="older")
@click.option("--server-errors", type=float, default=0.0, help="Share of 5xx answers (0-1).")
@click.option("--dropped", type=float, default=0.0, help="Share of cut connections (0-1).")
@click.option("--truncated", type=float, default=0.0, help="Share of truncated bodies (0-1).")
@click.option("--latency", type=float, default=0.0, help="Seconds added to each answer.")
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
    """Serve a HelpCrunch emulator on loopback until Ctrl-C."""
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
