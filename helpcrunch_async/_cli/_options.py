"""What every ``helpcrunch`` command shares: options, the client, consoles, exit codes."""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from .. import _config
from .._client import HelpCrunch
from .._models import ChatStatus

if TYPE_CHECKING:
    from .._limit._protocol import RateLimiter
    from .._send._events import ClientEvent

E = TypeVar("E", bound=BaseException)

EXIT_CODES_HELP = """\b
Exit codes:
  0    done: every chat updated, or nothing to do
  1    some chats failed (see the summary and --report)
  2    bad usage or input, or an unusable journal/report/id file
  3    the API key was refused (401)
  4    stopped: the API looks unreachable or failing (circuit breaker)
  130  stopped by Ctrl-C (SIGINT); 143: stopped by SIGTERM
  141  the reader closed the output (... | head -1), as for any Unix tool

\b
Summaries go to stdout; progress and diagnostics to stderr."""


class _Console(Console):
    """rich's console, but a closed pipe is the CLI's to handle (rich would exit 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the reader closed the output")


class UsageLineError(click.ClickException):
    """Bad usage found once the options are parsed (a port in use...): one line, exit 2."""

    exit_code = 2


def err_console(*, markup: bool = False) -> Console:
    """Progress and diagnostics: stderr."""
    # soft_wrap: no hard line breaks at 80 columns when the output is not a terminal.
    return _Console(stderr=True, soft_wrap=True, markup=markup, highlight=False)


def out_console(*, markup: bool = False) -> Console:
    """Summaries: stdout."""
    return _Console(soft_wrap=True, markup=markup, highlight=False)


def find_error(exc: BaseException, kind: type[E]) -> E | None:
    """The exception of type ``kind`` that is ``exc`` or inside it (exception groups), if any."""
    if isinstance(exc, kind):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = find_error(inner, kind)
        if found is not None:
            return found
    return None


def rate_limit(value: str | None) -> _config.RateLimit | None:
    """``--rate``: ``N/S``, ``none``, or the default limit."""
    if value is None:
        return _config.RateLimit()
    if value.lower() == "none":
        return None
    try:
        requests, per = _config.parse_rate(value)
        return _config.RateLimit(requests=requests, per=per)
    except ValueError as exc:
        raise click.BadParameter(
            f"expected N/S such as 120/60, or none; got {value!r}", param_hint="--rate"
        ) from exc


def parse_status(value: str) -> ChatStatus:
    """A status argument, or a usage error listing the valid ones."""
    try:
        return ChatStatus.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


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


def stacked(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """One decorator that adds every option of ``options`` to a command, in order."""

    def decorate(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


#: Add --api-key, --base-url and --rate to a command.
with_common = stacked(_common)


def make_client(
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
    on_event: Sequence[Callable[[ClientEvent], None]] = (),
    *,
    share: Callable[[_config.RateLimit | None], RateLimiter | _config.RateLimit | None]
    | None = None,
) -> HelpCrunch:
    """A command's client, its events to each of ``on_event``; bad options in the CLI's words.

    ``share`` turns ``--rate``'s limit into a limiter shared with other machines.
    """
    if not api_key:
        raise click.UsageError("no API key: pass --api-key KEY or set HELPCRUNCH_API_KEY")
    limit = rate_limit(rate) if share is None else share(rate_limit(rate))
    try:
        return HelpCrunch(api_key, base_url=base_url, rate_limit=limit, on_event=list(on_event))
    except ValueError as exc:
        # The SDK speaks Python (base_url=...); the CLI speaks options.
        raise click.UsageError(
            str(exc).replace("base_url", "--base-url").replace("api_key=...", "--api-key")
        ) from None


__all__ = [
    "EXIT_CODES_HELP",
    "UsageLineError",
    "err_console",
    "find_error",
    "make_client",
    "out_console",
    "parse_status",
    "rate_limit",
    "stacked",
    "with_common",
]
