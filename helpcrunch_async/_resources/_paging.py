"""Listings: the page-size check, the page-after-page loop, and the lists that come whole."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from .._config import require_int
from .._errors import ResponseValidationError

__all__ = ["MAX_PAGE_SIZE", "check_page_size", "listed", "paginate"]

#: The API's largest page.
MAX_PAGE_SIZE = 100

T = TypeVar("T")


def check_page_size(value: int) -> int:
    """Return ``value`` if it is a valid page size; else a ``TypeError``/``ValueError``."""
    if not 1 <= require_int(value, "page_size") <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {value!r}")
    return value


async def paginate(
    fetch: Callable[[int, int], Awaitable[Any]], size: int, parse: Callable[[Any], T]
) -> AsyncIterator[T]:
    """Every item of a paged endpoint: ask page after page until a short one.

    ``meta.total`` is not trusted alone: items can come and go while paging.
    """
    offset = 0
    while True:
        body = await fetch(offset, size)
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ResponseValidationError(
                f"expected a page with a 'data' list, got {type(body).__name__}"
            )
        for item in items:
            yield parse(item)
        if len(items) < size:
            return
        offset += len(items)


def listed(body: Any, what: str) -> list[Any]:
    """The items of a listing that comes whole: the list itself or ``{"data": [...]}``.

    The documentation's versions show both envelopes for departments.

    Raises:
        ResponseValidationError: neither.
    """
    items = body.get("data") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ResponseValidationError(f"expected a list of {what}, got {type(body).__name__}")
    return items
