"""What listings and searches send: the sort order and the search body, checked once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._models import Filter

__all__ = ["search_body", "sorting"]


def sorting(sort: object, order: object, *, prefix: str, fields: Iterable[str]) -> dict[str, str]:
    """The ``sort`` and ``order`` parameters: ``sort`` one of ``fields``, ``prefix.`` optional.

    Raises:
        ValueError: an unknown field, or an order other than asc or desc.
    """
    params = {}
    known = tuple(fields)
    if sort is not None:
        if not isinstance(sort, str) or sort.removeprefix(prefix + ".") not in known:
            raise ValueError(f"sort must be one of {', '.join(known)}, got {sort!r}")
        params["sort"] = f"{prefix}.{sort.removeprefix(prefix + '.')}"
    if order is not None:
        if order not in ("asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")
        params["order"] = order
    return params


def search_body(filters: Filter | Iterable[Filter], comparison: object) -> dict[str, Any]:
    """The body of a search: its filters and how they combine.

    Raises:
        TypeError: a filter that is not a ``Filter``.
        ValueError: no filter, or a comparison other than AND or OR.
    """
    wanted = [filters] if isinstance(filters, Filter) else [*filters]
    if not wanted:
        raise ValueError("search needs at least one Filter")
    for item in wanted:
        if not isinstance(item, Filter):
            raise TypeError(f"filters must be Filter objects, not {type(item).__name__}")
    if comparison not in ("AND", "OR"):
        raise ValueError(f"comparison must be 'AND' or 'OR', got {comparison!r}")
    return {"filter": [f.to_json() for f in wanted], "comparison": comparison}
