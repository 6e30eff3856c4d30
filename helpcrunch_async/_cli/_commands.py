"""The ``helpcrunch`` command: bulk status changes, search and list, the emulator, the demo.

The customer commands are in ``_customers``.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
from typing import IO, Any

import anyio
import attrs
import click

from ._bulk_command import BulkJob, job_options, run_job_command
from ._customers import customers
from ._job import EXIT_OK
from ._options import (
    EXIT_CODES_HELP,
    UsageLineError,
    parse_status,
    rate_limit,
    with_common,
)
from ._search import list_chats, search
from ._shared_journal import job_report
from ._signals import EXIT_OUTPUT_CLOSED, exit_code_for, silence_closed_output

#: The command line as typed, for the "to resume, run ..." hint (set by run_cli).
_argv: list[str] | None = None


def command_words() -> list[str]:
    """The command's arguments as typed (``run_cli``'s, else the process's)."""
    return list(sys.argv[1:] if _argv is None else _argv)


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
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Work with HelpCrunch chats and customers from a terminal."""
    ctx.obj = command_words()  # for the subcommands' "to resume, run ..." hint


@cli.group()
def chats() -> None:
    """Chats: change their status in bulk, search and list them."""


chats.add_command(search)
chats.add_command(list_chats)
cli.add_command(customers)
cli.add_command(job_report)


@chats.command("set-status", epilog=EXIT_CODES_HELP)
@click.argument("status")
@click.argument("chat_ids", nargs=-1)
@job_options("chat")
@with_common
def set_status(status: str, chat_ids: tuple[str, ...], **options: Any) -> None:
    """Set STATUS on every CHAT_ID (and every id in --from-file).

    STATUS is one of: new, opened, pending, on-hold, no communication, closed.
    Every id is checked before anything is sent. Ctrl-C or SIGTERM stop cleanly: what
    completed is in the journal and the report, and the same command resumes.
    """
    target = parse_status(status)
    job = BulkJob(
        noun="chat",
        label=target.value,
        verb=f"set {target.value!r} on",
        action=f"set to {target.value!r}",
        stream=lambda client, ids, settings: client.chats.stream_update_status(
            ids, target, **settings
        ),
    )
    run_job_command(job, ids_given=chat_ids, **options, argv=command_words())


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
