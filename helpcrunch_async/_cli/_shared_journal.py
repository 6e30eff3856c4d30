"""``--journal`` naming a job in Redis: ``redis://host:6379/0#job-name`` (any Redis URL).

A journal option is a file path, or a Redis URL whose fragment names the job: every
machine running the same command with the same URL and job shares the journal
(``RedisJournal``), so they can be handed the same ids, and the key's rate limit through
the same Redis (``RedisRateLimiter``): machines on one job are on one API key, and each at
the full ``--rate`` would go over it. The URL may carry a password: it is never printed
(``shown`` masks it).
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import TYPE_CHECKING, overload

import anyio
import click

from .._errors import JournalError
from ._input import FileError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .._config import RateLimit
    from ..redis import JournalReport, RedisJournal, RedisRateLimiter

__all__ = [
    "closing",
    "is_redis",
    "job_report",
    "journal_file",
    "open_journal",
    "shared_limit",
    "shown",
]

#: What a Redis URL starts with (``rediss`` for TLS; ``+cluster``, ``+sentinel``).
_REDIS_URL = re.compile(r"^(rediss?(\+\w+)?|unix)://", re.IGNORECASE)
#: A URL's user information, password included: masked wherever a URL is shown.
_USERINFO = re.compile(r"(\b(?:rediss?(?:\+\w+)?|unix)://)[^/@\s]*@", re.IGNORECASE)


def is_redis(journal: str | None) -> bool:
    """``True`` when ``--journal`` names a job in Redis rather than a file."""
    return journal is not None and _REDIS_URL.match(journal) is not None


def journal_file(journal: str | None) -> str | None:
    """The journal's path if it is a file (its checks apply), else ``None``."""
    return None if is_redis(journal) else journal


@overload
def shown(text: str) -> str: ...
@overload
def shown(text: None) -> None: ...


def shown(text: str | None) -> str | None:
    """``text`` with every Redis URL's user and password masked."""
    return None if text is None else _USERINFO.sub(r"\1***@", text)


def open_journal(journal: str | None) -> str | RedisJournal | None:
    """The journal ``--journal`` names: the path itself, a ``RedisJournal``, or ``None``.

    Raises:
        click.UsageError: a Redis URL without ``#job``, or not a valid URL or job name;
            the ``redis`` extra missing.
    """
    if journal is None or not is_redis(journal):
        return journal
    url, _, job = journal.partition("#")
    if not job:
        raise click.UsageError(
            f"--journal {shown(url)}: name the job after a #, e.g. {shown(url)}#close-stale"
        )
    try:
        from ..redis import RedisJournal  # noqa: PLC0415 - the redis extra is optional
    except ImportError:
        raise click.UsageError(
            '--journal in Redis needs the redis extra: pip install "helpcrunch-async[redis]"'
        ) from None
    try:
        return RedisJournal.from_url(url, job)
    except ValueError as exc:  # the message never holds the URL
        raise click.UsageError(f"--journal {shown(journal)}: {exc}") from None


def shared_limit(
    journal: str | None, limit: RateLimit | None
) -> RateLimit | RedisRateLimiter | None:
    """The rate limit of a job: ``limit`` (``--rate``), shared through Redis if it can be.

    Through the Redis of ``journal`` (``--journal``, checked by ``open_journal`` first) when
    it names a job there; else ``limit`` itself.
    """
    if journal is None or limit is None or not is_redis(journal):
        return limit
    from ..redis import RedisRateLimiter  # noqa: PLC0415 - the redis extra is optional

    return RedisRateLimiter.from_url(journal.partition("#")[0], limit=limit)


@contextlib.asynccontextmanager
async def closing(*resources: object) -> AsyncIterator[None]:
    """Close each Redis journal and limiter's connections at the end of the block.

    A path, a ``RateLimit`` or ``None`` needs nothing.
    """
    try:
        yield
    finally:
        for resource in resources:
            close = getattr(resource, "aclose", None)
            if close is not None:
                await close()


@click.command("job-report")
@click.argument("journal")
@click.option(
    "--limit",
    type=click.IntRange(0, 10_000),
    default=20,
    show_default=True,
    help="Failed ids listed, with their reasons.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def job_report(journal: str, limit: int, as_json: bool) -> None:
    """A job's state across every machine: JOURNAL is its --journal, redis://host:6379/0#job.

    Counts by outcome, the failed ids with their reasons, claims in flight and lapsed, live
    sessions. Reading writes nothing.
    """
    opened = open_journal(journal)
    if isinstance(opened, str | None):
        raise click.UsageError("JOURNAL is a job in Redis: redis://host:6379/0#job-name")

    async def read() -> JournalReport:
        async with closing(opened):
            return await opened.report(limit=limit)

    try:
        report = anyio.run(read)
    except JournalError as exc:
        raise FileError(str(exc)) from None
    if not as_json:
        click.echo(str(report))
        return
    failures = [
        {"id": item, "operation": op, "reason": reason}
        for item, (op, reason) in report.failures.items()
    ]
    counts = {
        "job": report.job,
        "at": report.at.isoformat(),
        "succeeded": report.succeeded,
        "failed": report.failed,
        "in_flight": report.in_flight,
        "lapsed": report.lapsed,
        "sessions": report.sessions,
        "takeovers": report.takeovers,
        "lost_states": report.lost_states,
    }
    click.echo(json.dumps(counts | {"failures": failures}))
