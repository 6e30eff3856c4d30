"""``helpcrunch customers``: list, search, get and export customers; tag and untag in bulk.

The listings print JSON lines (or ids with ``--ids``, to pipe into ``tag``/``untag``) and end
with the exit codes of ``chats search``; ``tag`` and ``untag`` are bulk jobs run as
``chats set-status`` is (journal, resume, report, signals, every bad line at once).
"""

from __future__ import annotations

import csv
import json
import sys
from typing import IO, TYPE_CHECKING, Any

import click

from .._errors import NotFoundError
from .._models import Filter
from ._bulk_command import BulkJob, job_options, run_job_command
from ._filters import CUSTOMER_FIELDS, parse_filter
from ._input import read_ids
from ._job import EXIT_FAILED, EXIT_OK
from ._options import EXIT_CODES_HELP, err_console, make_client, stacked, with_common
from ._search import _print_chats

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .._client import HelpCrunch
    from .._models import Customer

__all__ = ["customers"]

#: The exit codes, in the customers' words.
CUSTOMER_EXIT_CODES = EXIT_CODES_HELP.replace("chats", "customers").replace("chat", "customer")
#: The columns of ``export --csv``, in order.
CSV_COLUMNS = (
    "id",
    "name",
    "email",
    "user_id",
    "company",
    "phone",
    "first_seen",
    "last_seen",
    "city",
    "region_code",
    "country_code",
    "unsubscribed",
    "blocked",
    "locale",
    "source",
    "referer",
    "last_page",
    "created_from",
    "integration_id",
    "notes",
    "tags",
    "custom_data",
)


@click.group()
def customers() -> None:
    """Customers: list, search, get and export them; tag and untag them in bulk."""


_listing_options = [
    click.option("--sort", default=None, help="firstSeen or lastSeen."),
    click.option("--order", type=click.Choice(["asc", "desc"]), default=None),
]
_search_options = [
    click.option(
        "--filter",
        "filters",
        nargs=3,
        multiple=True,
        metavar="FIELD OP VALUE",
        help="A condition such as: customers.email '~' example.com (repeatable). firstSeen and "
        "lastSeen take epoch seconds or ISO 8601 dates (naive = UTC).",
    ),
    click.option(
        "--tag", "tags", multiple=True, help="Has this tag; repeat for all of several tags."
    ),
    click.option("--any", "match_any", is_flag=True, help="Match any condition (OR), not all."),
]


def _conditions(
    filters: tuple[tuple[str, str, str], ...], tags: tuple[str, ...], match_any: bool
) -> list[Filter]:
    """The search's filters: each --filter, and the tags (all in one, or one each with --any)."""
    found = [parse_filter(field, op, value, CUSTOMER_FIELDS) for field, op, value in filters]
    if tags:
        groups = [[tag] for tag in tags] if match_any else [list(tags)]
        found += [Filter("customers.tagsData", "=", group) for group in groups]
    return found


def _customers(
    client: HelpCrunch,
    *,
    filters: tuple[tuple[str, str, str], ...],
    tags: tuple[str, ...],
    match_any: bool,
    sort: str | None,
    order: str | None,
) -> AsyncIterator[Customer]:
    """Every customer, or those the conditions match; a bad one is a usage error, at once."""
    try:
        conditions = _conditions(filters, tags, match_any)
        if not conditions:
            return client.customers.list(sort=sort, order=order)  # type: ignore[arg-type]
        return client.customers.search(
            conditions,
            comparison="OR" if match_any else "AND",
            sort=sort,
            order=order,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@customers.command("list", epilog=CUSTOMER_EXIT_CODES)
@stacked(_listing_options)
@click.option("--ids", "ids_only", is_flag=True, help="Print only customer ids, one per line.")
@with_common
def list_customers(
    sort: str | None,
    order: str | None,
    ids_only: bool,
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
) -> None:
    """Every customer, as JSON lines, or only their ids with --ids."""
    client = make_client(api_key, base_url, rate)
    found = _customers(client, filters=(), tags=(), match_any=False, sort=sort, order=order)
    sys.exit(_print_chats(client, [found], ids_only=ids_only))


@customers.command("search", epilog=CUSTOMER_EXIT_CODES)
@stacked(_search_options)
@stacked(_listing_options)
@click.option("--ids", "ids_only", is_flag=True, help="Print only customer ids, one per line.")
@with_common
def search_customers(
    filters: tuple[tuple[str, str, str], ...],
    tags: tuple[str, ...],
    match_any: bool,
    sort: str | None,
    order: str | None,
    ids_only: bool,
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
) -> None:
    """Find customers; print them as JSON lines, or only their ids with --ids.

    \b
    Example:
      helpcrunch customers search --tag trial --filter customers.lastSeen '<' 2024-01-31 \\
        --ids | helpcrunch customers tag lapsed --from-file -
    """  # noqa: D301 - \b is click's "do not rewrap" marker
    if not filters and not tags:
        raise click.UsageError(
            "give at least one --filter or --tag (every customer: helpcrunch customers list)"
        )
    client = make_client(api_key, base_url, rate)
    found = _customers(
        client, filters=filters, tags=tags, match_any=match_any, sort=sort, order=order
    )
    sys.exit(_print_chats(client, [found], ids_only=ids_only))


@customers.command("get", epilog=CUSTOMER_EXIT_CODES)
@click.argument("customer_ids", nargs=-1)
@click.option(
    "--from-file", "from_file", type=click.File("r"), help="Ids, one per line; - for stdin."
)
@with_common
def get_customers(
    customer_ids: tuple[str, ...],
    from_file: IO[str] | None,
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
) -> None:
    """Print each CUSTOMER_ID's customer as a JSON line, in the order given.

    A customer that does not exist is named on stderr and the exit code is 1.
    """
    ids = list(dict.fromkeys(read_ids(customer_ids, from_file, "customer")))
    if not ids:
        raise click.UsageError("no customer ids: pass them as arguments or with --from-file")
    client = make_client(api_key, base_url, rate)
    missing: list[int] = []

    async def fetch() -> AsyncIterator[Customer]:
        for customer_id in ids:
            try:
                yield await client.customers.get(customer_id)
            except NotFoundError:
                err_console().print(f"customer {customer_id}: not found")
                missing.append(customer_id)

    code = _print_chats(client, [fetch()], ids_only=False)
    sys.exit(EXIT_FAILED if code == EXIT_OK and missing else code)


@customers.command("export", epilog=CUSTOMER_EXIT_CODES)
@stacked(_search_options)
@stacked(_listing_options)
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row, not JSON lines.")
@click.option(
    "--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="- is stdout."
)
@with_common
def export_customers(
    filters: tuple[tuple[str, str, str], ...],
    tags: tuple[str, ...],
    match_any: bool,
    sort: str | None,
    order: str | None,
    as_csv: bool,
    output: IO[str],
    api_key: str | None,
    base_url: str | None,
    rate: str | None,
) -> None:
    """Every customer (or those --filter and --tag match), every field, to --output.

    With --csv: one row a customer; tags as names joined by "; ", custom data as JSON,
    timestamps as ISO 8601 in UTC. Without: the customers as the API sent them, JSON lines.
    """
    client = make_client(api_key, base_url, rate)
    found = _customers(
        client, filters=filters, tags=tags, match_any=match_any, sort=sort, order=order
    )
    if as_csv:
        writer = csv.writer(output)
        writer.writerow(CSV_COLUMNS)

        def show(customer: Customer) -> None:
            writer.writerow(_csv_row(customer))

    else:

        def show(customer: Customer) -> None:
            output.write(json.dumps(customer.raw, default=str) + "\n")

    sys.exit(_print_chats(client, [found], ids_only=False, show=show))


def _csv_row(customer: Customer) -> list[Any]:
    location = customer.location
    values: dict[str, Any] = {
        "first_seen": customer.first_seen.isoformat() if customer.first_seen else "",
        "last_seen": customer.last_seen.isoformat() if customer.last_seen else "",
        "city": location.city if location else "",
        "region_code": location.region_code if location else "",
        "country_code": location.country_code if location else "",
        "tags": "; ".join(customer.tag_names),
        "custom_data": json.dumps(dict(customer.custom_data), default=_plain)
        if customer.custom_data
        else "",
    }
    return [values[c] if c in values else _cell(getattr(customer, c)) for c in CSV_COLUMNS]


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _plain(value: Any) -> Any:
    """Read-only custom data (mappings, tuples) as JSON sees it."""
    return dict(value) if hasattr(value, "keys") else list(value)


def _tag_job(tags: str, *, remove: bool) -> BulkJob:
    """The bulk job of ``customers tag``/``untag``: TAGS is one name, or several with commas."""
    names = [name.strip() for name in tags.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("give a tag name (several: vip,lead)", param_hint="TAGS")
    shown = ", ".join(names)

    def stream(client: HelpCrunch, ids: list[int], settings: dict[str, Any]) -> Any:
        run = client.customers.stream_untag if remove else client.customers.stream_tag
        return run(ids, names, **settings)

    return BulkJob(
        noun="customer",
        label=f"{'untag' if remove else 'tag'} {shown}",
        verb=f"remove {shown!r} from" if remove else f"add {shown!r} to",
        action=f"{'untagged' if remove else 'tagged'} {shown!r}",
        stream=stream,
        key="operation",
        columns=("customer_id", "operation", "ok", "error", "run"),
    )


def _command_words() -> list[str]:
    """The command's arguments as typed, which the ``helpcrunch`` group keeps for the hint."""
    root = click.get_current_context().find_root().obj
    return root if isinstance(root, list) else sys.argv[1:]


def _tag_command(name: str, *, remove: bool) -> click.Command:
    verb = "Remove the tag TAGS from" if remove else "Add the tag TAGS to"

    @click.command(name, epilog=CUSTOMER_EXIT_CODES)
    @click.argument("tags")
    @click.argument("customer_ids", nargs=-1)
    @job_options("customer")
    @with_common
    def command(tags: str, customer_ids: tuple[str, ...], **options: Any) -> None:
        run_job_command(
            _tag_job(tags, remove=remove),
            ids_given=customer_ids,
            argv=_command_words(),
            **options,
        )

    command.help = (
        f"{verb} every CUSTOMER_ID (and every id in --from-file); several tags: vip,lead.\n\n"
        "Every id is checked before anything is sent. Ctrl-C or SIGTERM stop cleanly: what "
        "completed is in the journal and the report, and the same command resumes."
    )
    return command


customers.add_command(_tag_command("tag", remove=False))
customers.add_command(_tag_command("untag", remove=True))
