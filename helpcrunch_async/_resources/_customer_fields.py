"""What a customer write sends: fields in snake_case, checked, then in the documented wire form.

Create, update, replace and batch update take the same fields (``CustomerFields``). Each is
checked before anything is sent, and written as the documentation's request examples write
it: camelCase names, location flattened to ``city``/``regionCode``/``countryCode``, dates as
strings of Unix seconds (the newest pages' rule; the older ones send integers, which the
same server reads), tags as ``[{name, color}]`` and custom data as ``[{property, value}]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypedDict, Union

from .._config import is_int
from .._models import Tag
from .._models._json import MAX_JSON_DEPTH
from .._models._wire import MAX_ID, MIN_INT, check_encodable, shown

__all__ = [
    "CustomValue",
    "CustomerFields",
    "customer_body",
    "json_data",
    "some_fields",
    "tags_body",
]

#: A value of custom data or event data: an aware ``datetime`` is sent as Unix seconds.
CustomValue = Union[str, int, float, bool, datetime, None]  # noqa: UP007 - a runtime alias


class CustomerFields(TypedDict, total=False):
    """The fields of a customer that can be written, by their Python names.

    Used as keyword arguments (``client.customers.create(name="Ann", user_id="u-1")``) and
    as the values of ``client.customers.batch_update``. ``None`` clears a field (sends
    ``null``); a field left out is not sent. Dates are aware ``datetime``s or Unix seconds;
    ``tags`` are tag names or ``Tag``s (a name alone takes the server's default colour);
    ``custom_data`` maps your custom attributes' names to their values.
    """

    name: str | None
    email: str | None
    user_id: str | None
    company: str | None
    phone: str | None
    first_seen: datetime | int | None
    last_seen: datetime | int | None
    city: str | None
    region_code: str | None
    country_code: str | None
    unsubscribed: bool
    blocked: bool
    source: str | None
    referer: str | None
    last_page: str | None
    locale: str | None
    created_from: str | None
    integration_id: str | None
    notes: str | None
    tags: Tag | str | Iterable[Tag | str]
    custom_data: Mapping[str, CustomValue]


_TEXTS = {
    "name": "name",
    "email": "email",
    "user_id": "userId",
    "company": "company",
    "phone": "phone",
    "city": "city",
    "region_code": "regionCode",
    "country_code": "countryCode",
    "source": "source",
    "referer": "referer",
    "last_page": "lastPage",
    "locale": "locale",
    "created_from": "createdFrom",
    "integration_id": "integrationId",
    "notes": "notes",
}
_DATES = {"first_seen": "firstSeen", "last_seen": "lastSeen"}
_FLAGS = {"unsubscribed": "unsubscribed", "blocked": "blocked"}


def some_fields(fields: object, what: str) -> Mapping[str, Any]:
    """``fields`` if it is a non-empty mapping, else a ``TypeError``/``ValueError``."""
    if not isinstance(fields, Mapping):
        raise TypeError(f"{what}: fields must be a mapping, not {type(fields).__name__}")
    if not fields:
        raise ValueError(f"{what} needs at least one field")
    return fields


def customer_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The wire body of ``fields`` (see ``CustomerFields``).

    Raises:
        TypeError: an unknown field, or a value of the wrong type (naming the field).
        ValueError: a value the API cannot take (a naive datetime, text UTF-8 cannot encode).
    """
    body: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _TEXTS:
            body[_TEXTS[key]] = _text(value, key)
        elif key in _DATES:
            body[_DATES[key]] = _date(value, key)
        elif key in _FLAGS:
            if not isinstance(value, bool):
                raise TypeError(f"{key} must be a bool, not {type(value).__name__}")
            body[_FLAGS[key]] = value
        elif key == "tags":
            body["tags"] = tags_body(value)
        elif key == "custom_data":
            body["customData"] = _custom_data(value)
        else:
            known = ", ".join(CustomerFields.__annotations__)
            raise TypeError(f"unknown customer field {key!r}; known: {known}")
    return body


def _text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")
    check_encodable(value, name)
    return value


def _date(value: object, name: str) -> str | None:
    """An aware ``datetime`` or Unix seconds, as the string of its whole seconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware (e.g. tzinfo=timezone.utc)")
        return str(int(value.timestamp()))
    if is_int(value):
        if not 0 <= value <= MAX_ID:
            raise ValueError(f"{name} must be non-negative Unix seconds, got {shown(value)}")
        return str(value)
    raise TypeError(f"{name} must be a datetime, Unix seconds or None, not {type(value).__name__}")


def tags_body(tags: object, *, names_only: bool = False) -> list[dict[str, str]]:
    """``[{"name": ..., "color": ...}]`` from tag names or ``Tag``s (one, or an iterable).

    Repeated names are sent once. With ``names_only`` colours are left out (untagging).

    Raises:
        TypeError: not tag names or ``Tag``s.
        ValueError: no tag, or an empty name.
    """
    if isinstance(tags, Tag | str):
        tags = [tags]
    if not isinstance(tags, Iterable):
        raise TypeError(f"tags must be tag names or Tags, not {type(tags).__name__}")
    wire: dict[str, dict[str, str]] = {}
    for tag in tags:
        if isinstance(tag, str):
            tag = Tag(tag)  # noqa: PLW2901 - a name is a tag of the default colour
        if not isinstance(tag, Tag) or not isinstance(tag.name, str):
            raise TypeError(f"tags must be tag names or Tags, not {tag!r}")
        if not tag.name.strip():
            raise ValueError("a tag name must not be empty")
        check_encodable(tag.name, "tag name")
        entry = {"name": tag.name}
        if tag.color is not None and not names_only:
            entry["color"] = _text(tag.color, "tag color") or ""
        wire.setdefault(tag.name, entry)
    if not wire:
        raise ValueError("give at least one tag")
    return list(wire.values())


def _custom_data(values: object) -> list[dict[str, Any]]:
    if not isinstance(values, Mapping):
        raise TypeError(f"custom_data must be a mapping, not {type(values).__name__}")
    entries = []
    for name, value in values.items():
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"custom_data names must be non-empty strings, not {name!r}")
        check_encodable(name, "custom_data name")
        entries.append({"property": name, "value": _scalar(value, f"custom_data[{name!r}]")})
    return entries


def _scalar(value: object, what: str) -> Any:
    """A JSON scalar, checked; an aware ``datetime`` becomes its Unix seconds as a string."""
    if value is None or isinstance(value, bool):
        return value
    if is_int(value):
        if not MIN_INT <= value <= MAX_ID:
            raise ValueError(f"{what} is out of the signed 64-bit range: {shown(value)}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number (JSON has no {value!r})")
        return value
    if isinstance(value, str):
        check_encodable(value, what)
        return value
    if isinstance(value, datetime):
        return _date(value, what)
    raise TypeError(
        f"{what} must be a str, number, bool, datetime or None, not {type(value).__name__}"
    )


def json_data(value: object, what: str, depth: int = 0) -> Any:
    """A JSON value of the caller's own (event data): scalars as ``_scalar``, nested bounded.

    Raises:
        TypeError, ValueError: something JSON cannot carry, naming where it is.
    """
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{what} keys must be strings, not {key!r}")
            check_encodable(key, f"{what} key")
            out[key] = json_data(item, f"{what}[{key!r}]", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [json_data(item, f"{what}[{i}]", depth + 1) for i, item in enumerate(value)]
    return _scalar(value, what)
