"""What the API returns: ``Chat`` and its parts, built from any documented payload variant.

Every model is ``@attrs.frozen`` and built with ``from_json``; the wire's camelCase becomes
snake_case, timestamps become timezone-aware UTC ``datetime``s, and unknown fields are kept
only in ``raw``. A known field of an impossible type raises ``ResponseValidationError``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from ._errors import ResponseValidationError

__all__ = ["Agent", "Chat", "ChatStatus", "Customer", "Department", "Filter", "Message"]

#: Largest chat id we accept: the API's ids are signed 64-bit integers.
MAX_ID = 2**63 - 1

#: An integer sent as a string: ASCII digits only (``str.isdigit`` also takes "²", which
#: ``int`` refuses), and no longer than a signed 64-bit integer.
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,19}")


class ChatStatus(str, enum.Enum):
    """A chat's status.

    Strings are normalised when converted, so ``ChatStatus("on hold")``, ``"onhold"``,
    ``"On-Hold"`` and ``"ON_HOLD"`` are all ``ChatStatus.ON_HOLD``, and ``"open"`` is
    ``ChatStatus.OPENED``. ``EMPTY`` (a chat with no messages) only appears in answers:
    sending it is a ``ValueError``.
    """

    NEW = "new"
    OPENED = "opened"
    PENDING = "pending"
    ON_HOLD = "on-hold"
    NO_COMMUNICATION = "no communication"
    CLOSED = "closed"
    EMPTY = "empty"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> ChatStatus | None:
        if isinstance(value, str):
            return _ALIASES.get(_squash(value))
        return None

    @classmethod
    def parse(cls, value: ChatStatus | str) -> ChatStatus:
        """Convert user input to a status that can be sent, or raise a clear error.

        Raises:
            TypeError: ``value`` is not a string.
            ValueError: ``value`` is no known spelling, or is ``EMPTY``.
        """
        if isinstance(value, ChatStatus):
            status = value
        elif isinstance(value, str):
            found = _ALIASES.get(_squash(value))
            if found is None:
                raise ValueError(
                    f"unknown chat status {value!r}; valid values: {', '.join(SENDABLE_VALUES)}"
                )
            status = found
        else:
            raise TypeError(f"chat status must be a ChatStatus or str, not {type(value).__name__}")
        if status is ChatStatus.EMPTY:
            raise ValueError(
                "ChatStatus.EMPTY is reported by the server for chats without messages and "
                f"cannot be set; valid values: {', '.join(SENDABLE_VALUES)}"
            )
        return status


def _squash(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch not in " -_\t")


_ALIASES: dict[str, ChatStatus] = {_squash(s.value): s for s in ChatStatus} | {
    "open": ChatStatus.OPENED,
}

#: The values a caller may send, for error messages.
SENDABLE_VALUES = tuple(s.value for s in ChatStatus if s is not ChatStatus.EMPTY)

#: The ways the documentation spells on-hold, in the order we try them: our spec's first.
ON_HOLD_SPELLINGS = ("on-hold", "on hold", "onhold")


def validate_chat_id(chat_id: object, *, name: str = "chat_id") -> int:
    """Return ``chat_id`` if it is a positive 64-bit int; else a ``TypeError``/``ValueError``."""
    if isinstance(chat_id, bool) or not isinstance(chat_id, int):
        raise TypeError(f"{name} must be an int, not {type(chat_id).__name__}: {chat_id!r}")
    if not 0 < chat_id <= MAX_ID:
        raise ValueError(f"{name} must be a positive 64-bit integer, got {chat_id!r}")
    return chat_id


# --- converters: wire value -> Python value, raising _Bad with a reason ----------------------


class _BadValueError(Exception):
    """A known field holds a value of an impossible type; becomes ResponseValidationError."""


def _timestamp(value: Any) -> datetime | None:
    """Unix seconds as int, float, numeric or decimal string (``"1597758468.250"``), or ISO 8601."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _BadValueError(f"expected a timestamp, got {value!r}")
    if isinstance(value, int | float):
        seconds = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    elif isinstance(value, str):
        try:
            seconds = Decimal(value.strip())
        except InvalidOperation:
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise _BadValueError(f"expected a timestamp, got {value!r}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            return parsed.astimezone(timezone.utc)
    else:
        raise _BadValueError(f"expected a timestamp, got {type(value).__name__}")
    if not seconds.is_finite():
        raise _BadValueError(f"expected a timestamp, got {value!r}")
    whole = int(seconds.to_integral_value(rounding="ROUND_FLOOR"))
    micros = int(((seconds - whole) * 1_000_000).to_integral_value())
    try:
        return datetime.fromtimestamp(whole, tz=timezone.utc) + timedelta(microseconds=micros)
    except (OverflowError, OSError, ValueError):
        raise _BadValueError(f"timestamp out of range: {value!r}") from None


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _BadValueError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    raise _BadValueError(f"expected an integer, got {value!r}")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _BadValueError(f"expected a string, got {type(value).__name__}")


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return bool(int(value))
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _BadValueError(f"expected a boolean, got {value!r}")


def _status(value: Any) -> ChatStatus | str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # numeric codes appear in some docs; their mapping is undocumented
    if not isinstance(value, str):
        raise _BadValueError(f"expected a status string, got {type(value).__name__}")
    try:
        return ChatStatus(value)
    except ValueError:
        return value  # a status this SDK does not know yet is kept, not rejected


def _object(value: Any, what: str) -> Mapping[str, Any] | None:
    if value is None or value in ([], {}):
        return None
    if not isinstance(value, Mapping):
        raise _BadValueError(f"expected {what} object, got {type(value).__name__}")
    return value


def _field(payload: Mapping[str, Any], name: str, convert: Any, *, model: str) -> Any:
    try:
        return convert(payload.get(name))
    except _BadValueError as exc:
        raise ResponseValidationError(f"{model}.{name}: {exc}") from None


@attrs.frozen
class Customer:
    """The customer a chat belongs to."""

    id: int | None
    name: str | None = None
    email: str | None = None
    user_id: str | None = None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Customer:
        """Build from the wire object (``id``, ``name``, ``email``, ``userId``)."""
        return cls(
            id=_field(payload, "id", _int, model="customer"),
            name=_field(payload, "name", _text, model="customer"),
            email=_field(payload, "email", _text, model="customer"),
            user_id=_field(payload, "userId", _text, model="customer"),
        )


@attrs.frozen
class Agent:
    """An agent (support team member): a chat's assignee, or one of its ``agents``."""

    id: int | None
    name: str | None = None
    email: str | None = None
    role: str | None = None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Agent:
        """Build from the wire object (``id``, ``name``, ``email``, ``role``)."""
        return cls(
            id=_field(payload, "id", _int, model="agent"),
            name=_field(payload, "name", _text, model="agent"),
            email=_field(payload, "email", _text, model="agent"),
            role=_field(payload, "role", _text, model="agent"),
        )


@attrs.frozen
class Department:
    """A department chats can be routed to."""

    id: int | None
    name: str | None = None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Department:
        """Build from the wire object (``id``, ``name``)."""
        return cls(
            id=_field(payload, "id", _int, model="department"),
            name=_field(payload, "name", _text, model="department"),
        )


def _agents(value: Any) -> tuple[Agent, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):  # one doc version sends a single agent object
        return () if not value else (Agent.from_json(value),)
    if isinstance(value, list):
        agents = []
        for item in value:
            if not isinstance(item, Mapping):
                raise _BadValueError(f"expected agent objects, got {type(item).__name__}")
            agents.append(Agent.from_json(item))
        return tuple(agents)
    raise _BadValueError(f"expected a list of agents, got {type(value).__name__}")


def _nested(cls: Any, what: str) -> Any:
    def convert(value: Any) -> Any:
        obj = _object(value, what)
        return None if obj is None else cls.from_json(obj)

    return convert


@attrs.frozen
class Chat:
    """A HelpCrunch chat, as the API returned it.

    Timestamps are timezone-aware UTC ``datetime``s or ``None``. ``status`` is a
    ``ChatStatus`` when the SDK knows the value, else the string as sent. ``raw`` is the
    payload as received, for fields this SDK does not model yet.

    Example:
        >>> chat = Chat.from_json({"id": 7, "status": "on hold", "closedAt": "1597758468"})
        >>> chat.status, chat.closed_at.year
        (<ChatStatus.ON_HOLD: 'on-hold'>, 2020)
    """

    id: int
    status: ChatStatus | str | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None
    created_at: datetime | None = None
    last_message_at: datetime | None = None
    last_customer_message_at: datetime | None = None
    snoozed_until: datetime | None = None
    rating: str | None = None
    last_message_text: str | None = None
    last_message_id: int | None = None
    last_communicated_agent_id: int | None = None
    agents: tuple[Agent, ...] = ()
    customer: Customer | None = None
    assignee: Agent | None = None
    department: Department | None = None
    notes: str | None = None
    created_with: str | None = None
    application_id: int | None = None
    read_by_agent: bool | None = None
    read_by_customer: bool | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, payload: Any) -> Chat:
        """Build a ``Chat`` from a payload in any documented variant.

        Accepts the chat object itself or an envelope ``{"data": {...}}``.

        Raises:
            ResponseValidationError: not an object, no usable ``id``, or a known field of an
                impossible type.
        """
        if isinstance(payload, Mapping) and isinstance(payload.get("data"), Mapping):
            payload = payload["data"]
        if not isinstance(payload, Mapping):
            raise ResponseValidationError(f"expected a chat object, got {type(payload).__name__}")
        chat_id = _field(payload, "id", _int, model="chat")
        if chat_id is None:
            raise ResponseValidationError("chat.id: missing")

        def get(name: str, convert: Any) -> Any:
            return _field(payload, name, convert, model="chat")

        return cls(
            id=chat_id,
            status=get("status", _status),
            closed_by=get("closedBy", _text),
            closed_at=get("closedAt", _timestamp),
            created_at=get("createdAt", _timestamp),
            last_message_at=get("lastMessageAt", _timestamp),
            last_customer_message_at=get("lastCustomerMessageAt", _timestamp),
            snoozed_until=get("snoozedUntil", _timestamp),
            rating=get("rating", _text),
            last_message_text=get("lastMessageText", _text),
            last_message_id=get("lastMessageId", _int),
            last_communicated_agent_id=get("lastCommunicatedAgentId", _int),
            agents=get("agents", _agents),
            customer=get("customer", _nested(Customer, "a customer")),
            assignee=get("assignee", _nested(Agent, "an assignee")),
            department=get("department", _nested(Department, "a department")),
            notes=get("notes", _text),
            created_with=get("createdWith", _text),
            application_id=get("applicationId", _int),
            read_by_agent=get("readByAgent", _flag),
            read_by_customer=get("readByCustomer", _flag),
            raw=payload,
        )


@attrs.frozen
class Message:
    """One message of a chat. Fields beyond these are in ``raw``.

    Attributes:
        id: The message id.
        text: The text, if any.
        sender: Who wrote it, as sent in ``from`` (``"customer"``, ``"agent"``...).
        created_at: When it was written, in UTC.
    """

    id: int | None
    text: str | None = None
    sender: str | None = None
    created_at: datetime | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, payload: Any) -> Message:
        """Build from the wire object (``id``, ``text``, ``from``, ``createdAt``)."""
        if not isinstance(payload, Mapping):
            raise ResponseValidationError(
                f"expected a message object, got {type(payload).__name__}"
            )
        return cls(
            id=_field(payload, "id", _int, model="message"),
            text=_field(payload, "text", _text, model="message"),
            sender=_field(payload, "from", _text, model="message"),
            created_at=_field(payload, "createdAt", _timestamp, model="message"),
            raw=payload,
        )


#: Search operators, as documented: ``~`` is "contains", ``!~`` "does not contain".
OPERATORS = ("=", "!=", ">", "<", ">=", "<=", "~", "!~")


def _operator(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in OPERATORS:
        raise ValueError(f"unknown filter operator {value!r}; valid: {' '.join(OPERATORS)}")


def _field_name(_: object, __: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"filter field must be a non-empty string, got {value!r}")


def _filter_value(value: Any) -> Any:
    if isinstance(value, ChatStatus):
        return value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"filter datetimes must be timezone-aware, got {value!r}")
        return int(value.timestamp())
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"filter value must be a str, number, datetime or None, not {value!r}")


@attrs.frozen
class Filter:
    """One condition of ``client.chats.search``.

    ``field`` is a dotted path such as ``"chats.status"`` or ``"customer.email"``;
    ``operator`` one of ``= != > < >= <= ~ !~``; a ``ChatStatus`` or an aware ``datetime``
    value is sent in its wire form.

    Example:
        >>> Filter("chats.status", "=", ChatStatus.PENDING)
        Filter(field='chats.status', operator='=', value='pending')
    """

    field: str = attrs.field(validator=_field_name)
    operator: str = attrs.field(validator=_operator)
    value: Any = attrs.field(converter=_filter_value)

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"field": self.field, "operator": self.operator, "value": self.value}
