"""``--journal`` naming a job in Redis: ``redis://host:6379/0#job-name`` (any Redis URL).

A journal option is a file path, or a Redis URL whose fragment names the job: every
machine running the same command with the same URL and job shares the journal
(``RedisJournal``), so they can be handed the same ids. The URL may carry a password: it is
never printed (``shown`` masks it).
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, overload

import click

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..redis import RedisJournal

__all__ = ["closing", "is_redis", "journal_file", "open_journal", "shown"]

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


@contextlib.asynccontextmanager
async def closing(journal: str | RedisJournal | None) -> AsyncIterator[None]:
    """Close a Redis journal's connections at the end of the block (a path needs nothing)."""
    try:
        yield
    finally:
        if not isinstance(journal, str | None):
            await journal.aclose()
