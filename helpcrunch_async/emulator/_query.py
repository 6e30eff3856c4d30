"""How the emulator's searches compare a stored value with a filter's, for chats and customers."""

from __future__ import annotations

from typing import Any

__all__ = ["OPERATORS", "compare"]

#: The documented search operators.
OPERATORS = frozenset({"=", "!=", ">", "<", ">=", "<=", "~", "!~"})


def compare(current: Any, operator: str, value: Any) -> bool:
    """Whether ``current`` (what is stored) meets ``operator value`` (what the filter says).

    ``~`` is "contains", case-insensitive; ``=`` compares texts, so ``"5"`` matches ``5``;
    the orderings compare numbers, and nothing that is no number matches them.
    """
    if operator in ("~", "!~"):
        found = str(value).lower() in str(current or "").lower()
        return found if operator == "~" else not found
    if operator in ("=", "!="):
        same = str(current) == str(value) if current is not None else value is None
        return same if operator == "=" else not same
    try:
        left, right = float(current), float(value)
    except (TypeError, ValueError):
        return False
    return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[
        operator
    ]
