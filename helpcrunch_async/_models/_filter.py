"""``Filter``: one condition of a search, checked before it is sent."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import attrs

from .._config import is_int
from ._customer import Tag
from ._enums import ChatRating, ChatStatus
from ._wire import MAX_ID, MIN_INT, check_encodable, shown

__all__ = ["OPERATORS", "Filter"]


#: Search operators, as documented: ``~`` is "contains", ``!~`` "does not contain".
OPERATORS = ("=", "!=", ">", "<", ">=", "<=", "~", "!~")


def _operator(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in OPERATORS:
        raise ValueError(f"unknown filter operator {value!r}; valid: {' '.join(OPERATORS)}")


def _field_name(_: object, __: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"filter field must be a non-empty string, got {value!r}")
    check_encodable(value, "filter field")


def _tag_names(value: list[Any] | tuple[Any, ...]) -> tuple[Tag, ...] | None:
    """The tags a ``tagsData`` filter matches, by name; ``None`` if ``value`` holds others."""
    if not value:
        raise ValueError("a list filter value needs at least one tag name")
    names = [item.name if isinstance(item, Tag) else item for item in value]
    if not all(isinstance(name, str) and name.strip() for name in names):
        return None
    for name in names:
        check_encodable(name, "tag name")
    return tuple(Tag(name) for name in names)


def _filter_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        tags = _tag_names(value)
        if tags is not None:
            return tags
    elif isinstance(value, ChatStatus | ChatRating):
        return value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"filter datetimes must be timezone-aware, got {value!r}")
        return int(value.timestamp())
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"filter values must be finite numbers (JSON has no {value!r})")
    if is_int(value) and not MIN_INT <= value <= MAX_ID:
        raise ValueError(f"filter value out of the signed 64-bit range: {shown(value)}")
    if isinstance(value, str):
        check_encodable(value, "filter value")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(
        f"filter value must be a str, number, datetime, list of tags or None, not {value!r}"
    )


@attrs.frozen
class Filter:
    """One condition of ``client.chats.search`` or ``client.customers.search``.

    ``field`` is a dotted path such as ``"chats.status"``, ``"chats.customer.email"`` or
    ``"customers.userId"``; ``operator`` one of ``= != > < >= <= ~ !~``; a ``ChatStatus`` or
    an aware ``datetime`` value is sent in its wire form. A list of tag names (or ``Tag``s),
    for the ``tagsData`` fields, is sent as ``[{"name": ...}]`` and matches customers that
    have all of them.

    Examples:
        >>> Filter("chats.status", "=", ChatStatus.PENDING)
        Filter(field='chats.status', operator='=', value='pending')
        >>> Filter("customers.tagsData", "=", ["vip"]).to_json()["value"]
        [{'name': 'vip'}]
    """

    field: str = attrs.field(validator=_field_name)
    operator: str = attrs.field(validator=_operator)
    value: Any = attrs.field(converter=_filter_value)

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        value = self.value
        if isinstance(value, tuple):
            value = [{"name": tag.name} for tag in value]
        return {"field": self.field, "operator": self.operator, "value": value}
