"""``helpcrunch chats search`` and ``helpcrunch chats list``: chats as JSON lines or ids."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import anyio
import click

from .._errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    HelpCrunchError,
    ServerError,
)
from .._models import Filter
from ._filters import FIELDS, parse_filter
from ._job import EXIT_ABORTED, EXIT_FAILED, EXIT_FATAL, EXIT_OK, EXIT_USAGE
from ._options import (
    EXIT_CODES_HELP,
    err_console,
    make_client,
    parse_status,
    stacked,
    with_common,
)
from ._output import is_wrong_url, wrong_url_hint
from ._signals import exit_code_for, stop_on_signals

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from .._client import HelpCrunch

_search_options = [
    click.option(
        "--sort", default=None, help="createdAt, lastMessageAt, lastCustomerMessageAt, closedAt."
    ),
    click.option("--order", type=click.Choice(["asc", "desc"]), default=None),
    click.option("--ids", "ids_only", is_flag=True, help="Print only chat ids, one per line."),
    click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print every chat as one JSON object a line (the default without --ids).",
    ),
]


_with_search_options = stacked(_search_options)


@click.command("search", epilog=EXIT_CODES_HELP)
@click.option(
    "--status", "statuses", multiple=True, help="Match this status; repeat for any of several."
)
@click.option(
    "--filter",
    "filters",
    nargs=3,
    multiple=True,
    metavar="FIELD OP VALUE",
    help="A condition such as: chats.createdAt '<' 2024-01-31 (repeatable). FIELD is one "
    f"of HelpCrunch's searchable fields: {', '.join(FIELDS)}. OP is = != < > <= >= "
    "(~ contains and !~ does not, for text). Timestamps take epoch seconds or ISO 8601 "
    "dates/datetimes (naive = UTC).",
)
@click.option(
    "--any", "match_any", is_flag=True, help="Match any condition (OR) instead of all (AND)."
)
@_with_search_options
@with_common
def search(
    statuses: tuple[str, ...],
    filters: tuple[tuple[str, str, str], ...],
    match_any: bool,
    sort: str | None,
    order: str | None,
    ids_only: bool,
    as_json: bool,
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
) -> None:
    """Find chats; print them as JSON lines, or only their ids with --ids.

    Several --status match any of them, AND-ed with every --filter: "(on-hold OR new) AND
    created before X" is --status on-hold --status new --filter chats.createdAt '<' X.
    The API takes one kind of comparison per request, so that is one search per status,
    merged without duplicates (each status's chats in --sort order, one status after the
    other).

    \b
    Example:
      helpcrunch chats search --status pending --ids |
        helpcrunch chats set-status closed --from-file -
    """  # noqa: D301 - \b is click's "do not rewrap" marker
    _one_format(ids_only=ids_only, as_json=as_json)
    try:
        conditions = [parse_filter(field, op, value) for field, op, value in filters]
        by_status = [Filter("chats.status", "=", parse_status(s)) for s in statuses]
        if not by_status and not conditions:
            raise click.UsageError(
                "give at least one --status or --filter (every chat: helpcrunch chats list)"
            )
        if match_any or len(by_status) <= 1:
            queries = [(by_status + conditions, "OR" if match_any else "AND")]
        else:
            queries = [([one, *conditions], "AND") for one in by_status]
        client = make_client(api_key, base_url, rate)
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


@click.command("list", epilog=EXIT_CODES_HELP)
@_with_search_options
@with_common
def list_chats(
    sort: str | None,
    order: str | None,
    ids_only: bool,
    as_json: bool,
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
) -> None:
    """Every chat, as JSON lines, or only their ids with --ids."""
    _one_format(ids_only=ids_only, as_json=as_json)
    client = make_client(api_key, base_url, rate)
    try:
        pages = client.chats.list(sort=sort, order=order)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(_print_chats(client, [pages], ids_only=ids_only))


def _one_format(*, ids_only: bool, as_json: bool) -> None:
    if ids_only and as_json:
        raise click.UsageError("--ids and --json are two formats: choose one")


def _print_chats(
    client: HelpCrunch,
    sources: list[AsyncIterator[Any]],
    *,
    ids_only: bool,
    show: Callable[[Any], None] | None = None,
    noun: str = "chat",
) -> int:
    """Print every chat (or customer) of ``sources`` once; the exit code says how it ended.

    ``show`` prints one instead of the JSON line (or the id, with ``ids_only``).
    """
    err = err_console()
    printed = show or (_echo_id if ids_only else _echo_json)

    async def main() -> tuple[int, int | None, BrokenPipeError | None]:
        seen: set[int] = set()
        code = EXIT_OK
        closed: BrokenPipeError | None = None
        async with client, stop_on_signals() as interrupt:
            try:
                for source in sources:
                    async for chat in source:
                        if chat.id in seen:
                            continue
                        seen.add(chat.id)
                        printed(chat)
            except BrokenPipeError as exc:  # raised past the signal watcher it would be a group
                closed = exc
            except HelpCrunchError as exc:
                message, code = _failure(exc, str(client.base_url), noun)
                err.print(message)
        return code, interrupt.signum, closed

    code, signum, closed = anyio.run(main)
    if closed is not None:
        raise closed
    if signum is not None:
        err.print("Interrupted.")
        return exit_code_for(signum)
    return code


def _echo_id(item: Any) -> None:
    click.echo(str(item.id))


def _echo_json(item: Any) -> None:
    click.echo(json.dumps(item.raw, default=str))


def _failure(exc: HelpCrunchError, base_url: str, noun: str = "chat") -> tuple[str, int]:
    """What to say, and the exit code, when a search or a listing failed."""
    if isinstance(exc, AuthenticationError):
        return (
            f"The API key was refused ({exc}); check --api-key or HELPCRUNCH_API_KEY.",
            EXIT_FATAL,
        )
    if isinstance(exc, BadRequestError):
        return f"The API refused the search: {exc}", EXIT_USAGE
    if isinstance(exc, APIConnectionError | ServerError):
        return f"The API at {base_url} is unreachable or failing: {exc}", EXIT_ABORTED
    if is_wrong_url(exc, base_url):
        hint = wrong_url_hint(base_url)
        return (
            f"The server answered {exc}: the URL, not a {noun}, was not found; {hint}",
            EXIT_ABORTED,
        )
    return f"Error: {exc}", EXIT_FAILED


__all__ = ["list_chats", "search"]
