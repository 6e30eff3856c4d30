"""Wire values to Python values: the converters every model is built with.

Each converter takes what a JSON field held (``None`` when absent) and returns the Python
value, or raises ``BadValueError`` with a reason; ``convert_fields`` runs a model's table of
converters over a payload in one pass and names the field in the ``ResponseValidationError``.
Every converter is total and bounded: any JSON value, of any size, gets an answer or a
``BadValueError``, never another exception.

Each converter tests the form the API usually sends first (an ``int`` timestamp, a ``str``
text), and a ``dict`` is told from other objects without the ABC check: building a ``Chat``
is a large share of the SDK's own CPU per call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, TypeGuard

import attrs

from .._config import is_int
from .._errors import ResponseValidationError

#: Largest id we accept: the API's ids are signed 64-bit integers.
MAX_ID = 2**63 - 1
#: Largest bad id quoted whole in a message (larger ones are described by their size).
MAX_ECHOED_BITS = 128
#: The API's integers (ids) are signed 64-bit.
MIN_INT = -(2**63)
#: Unix seconds of the last instant a ``datetime`` can hold (9999-12-31T23:59:59 UTC), and
#: of the first (0001-01-01): anything further is rejected before any arithmetic, so a
#: 13-byte ``"1e999999999"`` never becomes a billion-digit integer.
_LATEST = 253_402_300_799
_EARLIEST = -62_135_596_800
#: Longest text a number or a date may be sent as; an ISO 8601 date with micros and offset
#: is 32 characters.
MAX_SCALAR_TEXT = 64
#: A decimal number as JSON and the docs write it, ASCII digits only (Python's own parsers
#: also take "1_000", "NaN" and non-ASCII digits such as "²" or "١٢").
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}", re.ASCII)
#: Arithmetic on wire numbers in a context of our own: the caller's decimal context (its
#: precision, its traps) must not change how a timestamp parses.
_DECIMALS = Context(prec=40, rounding=ROUND_HALF_EVEN, traps=[])
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: A model's fields: (attribute, wire name, converter), in the order they are converted.
FieldTable = tuple[tuple[str, str, Callable[[Any], Any]], ...]


class BadValueError(Exception):
    """A known field holds a value of an impossible type; becomes ResponseValidationError."""


def convert_fields(payload: Mapping[str, Any], table: FieldTable, model: str) -> dict[str, Any]:
    """The keyword arguments of a model: each field of ``table`` read from ``payload``.

    Raises:
        ResponseValidationError: a field's value is impossible; the message names it
            (``"chat.closedAt: timestamp out of range: ..."``).
    """
    values: dict[str, Any] = {}
    get = payload.get
    for attribute, name, convert in table:
        try:
            values[attribute] = convert(get(name))
        except BadValueError as exc:
            raise ResponseValidationError(f"{model}.{name}: {exc}") from None
    return values


def shown(value: Any) -> str:
    """``value`` for an error message, cut short: wire data can be anything, of any size."""
    if is_int(value) and not MIN_INT <= value <= MAX_ID:
        return f"an integer of {value.bit_length()} bits"  # repr() of a huge int can fail
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # a container holding a huge int, or nested deep
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= MAX_SCALAR_TEXT else text[:MAX_SCALAR_TEXT] + "..."


def _seconds(value: Any) -> Decimal | None:
    """Unix seconds (not an int) as an exact ``Decimal``; ``None`` if ``value`` is no number."""
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else Decimal("Infinity")
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return Decimal(value)
    return None


def timestamp(value: Any) -> datetime | None:
    """Unix seconds as int, float, numeric or decimal string (``"1597758468.250"``), or ISO 8601."""
    if is_int(value):  # the usual form, exact without Decimal
        # Compared before any arithmetic: an int of thousands of digits is refused at once.
        if not _EARLIEST <= value <= _LATEST:
            raise BadValueError(f"timestamp out of range: {shown(value)}")
        return _EPOCH + timedelta(seconds=value)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.strip()
        if len(value) > MAX_SCALAR_TEXT:
            raise BadValueError(f"expected a timestamp, got a string of {len(value)} characters")
    seconds = _seconds(value)
    if seconds is None:
        if isinstance(value, str):
            return _iso_datetime(value)
        raise BadValueError(f"expected a timestamp, got {type(value).__name__}")
    if not (seconds.is_finite() and _EARLIEST <= seconds <= _LATEST):
        raise BadValueError(f"timestamp out of range: {shown(value)}")
    # Within the calendar's ends, rounding to the microsecond cannot leave them.
    micros = int(_DECIMALS.to_integral_value(_DECIMALS.multiply(seconds, 1_000_000)))
    return _EPOCH + timedelta(microseconds=micros)


def _iso_datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # not a date; a date whose UTC is year 0 or 10000
        raise BadValueError(f"expected a timestamp, got {shown(value)}") from None


def integer(value: Any) -> int | None:
    """A signed 64-bit integer, as an int, an integral float or a string of ASCII digits."""
    number: int | None = None
    if is_int(value):  # the usual form
        number = value
    elif value is None or value == "":
        return None
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None:
        raise BadValueError(f"expected an integer, got {shown(value)}")
    if not MIN_INT <= number <= MAX_ID:
        raise BadValueError("integer out of the signed 64-bit range")
    return number


def text(value: Any) -> str | None:
    """A string; an id sent as a number becomes its decimal text."""
    if value is None or isinstance(value, str):
        return value
    if is_int(value):
        return str(integer(value))  # 64-bit, so str() is cheap
    if isinstance(value, float):
        return repr(value)
    raise BadValueError(f"expected a string, got {type(value).__name__}")


def flag(value: Any) -> bool | None:
    """A boolean, as ``true``/``false``, ``0``/``1`` or their strings."""
    if value is None or isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return bool(int(value))
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadValueError(f"expected a boolean, got {shown(value)}")


def is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """Whether ``value`` is an object: a ``dict`` (as JSON gives) is told without the ABC check."""
    return type(value) is dict or isinstance(value, Mapping)


def unwrap(payload: Any, what: str) -> Mapping[str, Any]:
    """The object itself, from either it or an envelope ``{"data": {...}}``.

    Raises:
        ResponseValidationError: neither is an object.
    """
    if is_mapping(payload):
        data = payload.get("data")
        return data if is_mapping(data) else payload
    raise ResponseValidationError(f"expected {what} object, got {type(payload).__name__}")


@attrs.frozen
class Nested:
    """A converter of an object field into ``model`` (``None`` for null, ``[]`` or ``{}``).

    The object may also come as its bare id (webhook payloads send some so): then only the
    model's ``id`` is set. ``what`` names the object in errors (``"a customer"``).
    """

    model: Any
    what: str

    def __call__(self, value: Any) -> Any:
        if value is None or value in ([], {}):
            return None
        if is_mapping(value):
            return self.model.from_json(value)
        if is_int(value) or (isinstance(value, str) and _INTEGER.fullmatch(value)):
            return self.model(id=integer(value))
        raise BadValueError(f"expected {self.what} object or id, got {type(value).__name__}")


def check_encodable(text: str, what: str) -> None:
    """Refuse text that UTF-8 cannot encode (a lone surrogate), before it fails in httpx.

    Raises:
        ValueError: naming ``what``.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid text: {shown(text)}") from None


def validate_id(chat_id: object, *, name: str = "chat_id") -> int:
    """Return an id given by the caller if it is a positive 64-bit int, else a clear error.

    ``name`` is the argument's name in the message (``chat_id``, ``agent_id``...).

    Raises:
        TypeError: not an int (a bool is not one).
        ValueError: not between 1 and 2**63 - 1.
    """
    if not is_int(chat_id):
        raise TypeError(f"{name} must be an int, not {type(chat_id).__name__}: {shown(chat_id)}")
    if not 0 < chat_id <= MAX_ID:
        # A huge int is not echoed: its digits would drown the message (or fail to print).
        bits = chat_id.bit_length()
        got = repr(chat_id) if bits <= MAX_ECHOED_BITS else f"an integer of {bits} bits"
        raise ValueError(f"{name} must be a positive 64-bit integer, got {got}")
    return chat_id
