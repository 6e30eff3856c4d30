"""What the API returns: ``Chat`` and its parts, built from any documented payload variant.

Every model is ``@attrs.frozen`` and built with ``from_json``; the wire's camelCase becomes
snake_case, timestamps become timezone-aware UTC ``datetime``s, and unknown fields are kept
only in ``raw``. A known field of an impossible type raises ``ResponseValidationError``.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

import attrs

from ._config import is_int
from ._errors import ResponseValidationError

__all__ = [
    "Agent",
    "AgentRole",
    "Chat",
    "ChatStatus",
    "Customer",
    "Department",
    "Filter",
    "Message",
]

#: Largest chat id we accept: the API's ids are signed 64-bit integers.
MAX_ID = 2**63 - 1


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


class AgentRole(str, enum.Enum):
    """An agent's role, as documented: the supervisor role is spelled ``"superviser"`` (sic).

    Conversion is forgiving: ``AgentRole("supervisor")`` and ``AgentRole("agent_chat_only")``
    work too. A role the SDK does not know yet stays a plain string on ``Agent.role``.
    """

    ADMIN = "admin"
    AGENT = "agent"
    AGENT_CHAT_ONLY = "agentChatOnly"
    SUPERVISER = "superviser"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> AgentRole | None:
        if isinstance(value, str):
            return _ROLE_ALIASES.get(_squash(value))
        return None


_ROLE_ALIASES: dict[str, AgentRole] = {_squash(r.value): r for r in AgentRole} | {
    "supervisor": AgentRole.SUPERVISER,
}


def _role(value: Any) -> AgentRole | str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return AgentRole(text)
    except ValueError:
        return text  # a role this SDK does not know yet is kept, not rejected


def validate_chat_id(chat_id: object, *, name: str = "chat_id") -> int:
    """Return ``chat_id`` if it is a positive 64-bit int; else a ``TypeError``/``ValueError``."""
    if not is_int(chat_id):
        raise TypeError(f"{name} must be an int, not {type(chat_id).__name__}: {chat_id!r}")
    if not 0 < chat_id <= MAX_ID:
        raise ValueError(f"{name} must be a positive 64-bit integer, got {chat_id!r}")
    return chat_id


# --- converters: wire value -> Python value, raising _BadValueError with a reason -------------


class _BadValueError(Exception):
    """A known field holds a value of an impossible type; becomes ResponseValidationError."""


#: Unix seconds of the last instant a ``datetime`` can hold (9999-12-31T23:59:59 UTC), and
#: of the first (0001-01-01): anything further is rejected before any arithmetic, so a
#: 13-byte ``"1e999999999"`` never becomes a billion-digit integer.
_LATEST = 253_402_300_799
_EARLIEST = -62_135_596_800
#: Longest text a number or a date may be sent as; an ISO 8601 date with micros and offset
#: is 32 characters.
_MAX_SCALAR_TEXT = 64
#: The API's integers (ids) are signed 64-bit.
_MIN_INT = -(2**63)
#: A decimal number as JSON and the docs write it, ASCII digits only (Python's own parsers
#: also take "1_000", "NaN" and non-ASCII digits such as "²" or "١٢").
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}", re.ASCII)
#: Arithmetic on wire numbers in a context of our own: the caller's decimal context (its
#: precision, its traps) must not change how a timestamp parses.
_DECIMALS = Context(prec=40, rounding=ROUND_HALF_EVEN, traps=[])
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _shown(value: Any) -> str:
    """``value`` for an error message, cut short: wire data can be anything, of any size."""
    if is_int(value) and not _MIN_INT <= value <= MAX_ID:
        return f"an integer of {value.bit_length()} bits"  # repr() of a huge int can fail
    text = repr(value)
    return text if len(text) <= _MAX_SCALAR_TEXT else text[:_MAX_SCALAR_TEXT] + "..."


def _seconds(value: Any) -> Decimal | None:
    """Unix seconds as an exact ``Decimal``; ``None`` if ``value`` is no number."""
    if is_int(value):
        # Compared before converting: an int of thousands of digits is refused at once.
        return Decimal(value) if _EARLIEST <= value <= _LATEST else Decimal("Infinity")
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else Decimal("Infinity")
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return Decimal(value)
    return None


def _timestamp(value: Any) -> datetime | None:
    """Unix seconds as int, float, numeric or decimal string (``"1597758468.250"``), or ISO 8601."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.strip()
        if len(value) > _MAX_SCALAR_TEXT:
            raise _BadValueError(f"expected a timestamp, got a string of {len(value)} characters")
    seconds = _seconds(value)
    if seconds is None:
        if isinstance(value, str):
            return _iso_datetime(value)
        raise _BadValueError(f"expected a timestamp, got {type(value).__name__}")
    if not (seconds.is_finite() and _EARLIEST <= seconds <= _LATEST):
        raise _BadValueError(f"timestamp out of range: {_shown(value)}")
    micros = int(_DECIMALS.to_integral_value(_DECIMALS.multiply(seconds, 1_000_000)))
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:  # within a second of the ends of the calendar
        raise _BadValueError(f"timestamp out of range: {_shown(value)}") from None


def _iso_datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # not a date; a date whose UTC is year 0 or 10000
        raise _BadValueError(f"expected a timestamp, got {_shown(value)}") from None


def _int(value: Any) -> int | None:
    """A signed 64-bit integer, as an int, an integral float or a string of ASCII digits."""
    if value is None or value == "":
        return None
    number: int | None = None
    if is_int(value):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None:
        raise _BadValueError(f"expected an integer, got {_shown(value)}")
    if not _MIN_INT <= number <= MAX_ID:
        raise _BadValueError("integer out of the signed 64-bit range")
    return number


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if is_int(value):
        return str(_int(value))  # an id sent as a number; 64-bit, so str() is cheap
    if isinstance(value, float):
        return repr(value)
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
    raise _BadValueError(f"expected a boolean, got {_shown(value)}")


def _status(value: Any) -> ChatStatus | str | None:
    if value is None:
        return None
    if is_int(value):
        return str(_int(value))  # numeric codes appear in some docs; their mapping is undocumented
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
    role: AgentRole | str | None = None

    @classmethod
    def from_json(cls, payload: Any) -> Agent:
        """Build from the wire object (``id``, ``name``, ``email``, ``role``).

        ``role`` is an ``AgentRole`` when the SDK knows the value, else the string as sent.
        """
        if not isinstance(payload, Mapping):
            raise ResponseValidationError(f"expected an agent object, got {type(payload).__name__}")
        return cls(
            id=_field(payload, "id", _int, model="agent"),
            name=_field(payload, "name", _text, model="agent"),
            email=_field(payload, "email", _text, model="agent"),
            role=_field(payload, "role", _role, model="agent"),
        )


@attrs.frozen
class Department:
    """A department chats can be routed to.

    ``agents`` are its members, as ``client.departments.list()`` nests them; a chat's
    ``department`` carries none.
    """

    id: int | None
    name: str | None = None
    agents: tuple[Agent, ...] = ()

    @classmethod
    def from_json(cls, payload: Any) -> Department:
        """Build from the wire object (``id``, ``name``, ``agents``).

        ``agents`` may be agent objects, bare agent ids, or one agent object.
        """
        if not isinstance(payload, Mapping):
            raise ResponseValidationError(
                f"expected a department object, got {type(payload).__name__}"
            )
        return cls(
            id=_field(payload, "id", _int, model="department"),
            name=_field(payload, "name", _text, model="department"),
            agents=_field(payload, "agents", _members, model="department"),
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


def _members(value: Any) -> tuple[Agent, ...]:
    """A department's agents: agent objects, or bare ids (the docs show both kinds of list)."""
    if isinstance(value, list) and any(isinstance(item, int | str) for item in value):
        return tuple(Agent(id=_int(item)) for item in value)
    return _agents(value)


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
        """Build from the wire object (``id``, ``text``, ``from``, ``createdAt``).

        Accepts the message itself or an envelope ``{"data": {...}}``.
        """
        if isinstance(payload, Mapping) and isinstance(payload.get("data"), Mapping):
            payload = payload["data"]
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
    _encodable(value, "filter field")


def _encodable(text: str, what: str) -> None:
    """Refuse text that UTF-8 cannot encode (a lone surrogate), before it fails in httpx."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid text: {_shown(text)}") from None


def _filter_value(value: Any) -> Any:
    if isinstance(value, ChatStatus):
        return value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"filter datetimes must be timezone-aware, got {value!r}")
        return int(value.timestamp())
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"filter values must be finite numbers (JSON has no {value!r})")
    if is_int(value) and not _MIN_INT <= value <= MAX_ID:
        raise ValueError(f"filter value out of the signed 64-bit range: {_shown(value)}")
    if isinstance(value, str):
        _encodable(value, "filter value")
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
