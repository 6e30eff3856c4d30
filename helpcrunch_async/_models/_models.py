"""What the API returns: ``Chat`` and its parts, built from any documented payload variant.

Every model is ``@attrs.frozen`` and built with ``from_json``; the wire's camelCase becomes
snake_case, timestamps become timezone-aware UTC ``datetime``s, and unknown fields are kept
only in ``raw``. A known field of an impossible type raises ``ResponseValidationError``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from .._config import is_int
from .._errors import ResponseValidationError
from ._wire import (
    MAX_ID,
    MIN_INT,
    BadValueError,
    FieldTable,
    Nested,
    convert_fields,
    flag,
    integer,
    is_mapping,
    shown,
    text,
    timestamp,
    unwrap,
)

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


#: Exact wire spellings first: one dict lookup, without the Enum machinery.
_ROLES: dict[str, AgentRole] = {r.value: r for r in AgentRole}


def _role(value: Any) -> AgentRole | str | None:
    name = text(value)
    if name is None:
        return None
    role = _ROLES.get(name)
    if role is not None:
        return role
    try:
        return AgentRole(name)
    except ValueError:
        return name  # a role this SDK does not know yet is kept, not rejected


def validate_chat_id(chat_id: object, *, name: str = "chat_id") -> int:
    """Return ``chat_id`` if it is a positive 64-bit int; else a ``TypeError``/``ValueError``."""
    if not is_int(chat_id):
        raise TypeError(f"{name} must be an int, not {type(chat_id).__name__}: {chat_id!r}")
    if not 0 < chat_id <= MAX_ID:
        raise ValueError(f"{name} must be a positive 64-bit integer, got {chat_id!r}")
    return chat_id


_STATUSES: dict[str, ChatStatus] = {s.value: s for s in ChatStatus}


def _status(value: Any) -> ChatStatus | str | None:
    if value is None:
        return None
    if isinstance(value, str):
        status = _STATUSES.get(value)
        if status is not None:
            return status
        try:
            return ChatStatus(value)
        except ValueError:
            return value  # a status this SDK does not know yet is kept, not rejected
    if is_int(value):
        # Numeric codes appear in some docs; their mapping is undocumented.
        return str(integer(value))
    raise BadValueError(f"expected a status string, got {type(value).__name__}")


@attrs.frozen
class Customer:
    """The customer a chat belongs to."""

    id: int | None
    name: str | None = None
    email: str | None = None
    user_id: str | None = None

    @classmethod
    def from_json(cls, payload: Any) -> Customer:
        """Build from the wire object (``id``, ``name``, ``email``, ``userId``)."""
        if not is_mapping(payload):
            raise ResponseValidationError(
                f"expected a customer object, got {type(payload).__name__}"
            )
        return cls(**convert_fields(payload, _CUSTOMER_FIELDS, "customer"))


_CUSTOMER_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("name", "name", text),
    ("email", "email", text),
    ("user_id", "userId", text),
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
        if not is_mapping(payload):
            raise ResponseValidationError(f"expected an agent object, got {type(payload).__name__}")
        return cls(**convert_fields(payload, _AGENT_FIELDS, "agent"))


_AGENT_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("name", "name", text),
    ("email", "email", text),
    ("role", "role", _role),
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
        if not is_mapping(payload):
            raise ResponseValidationError(
                f"expected a department object, got {type(payload).__name__}"
            )
        return cls(**convert_fields(payload, _DEPARTMENT_FIELDS, "department"))


def _agents(value: Any) -> tuple[Agent, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        agents = []
        for item in value:
            if not is_mapping(item):
                raise BadValueError(f"expected agent objects, got {type(item).__name__}")
            agents.append(Agent.from_json(item))
        return tuple(agents)
    if is_mapping(value):  # one doc version sends a single agent object
        return () if not value else (Agent.from_json(value),)
    raise BadValueError(f"expected a list of agents, got {type(value).__name__}")


def _members(value: Any) -> tuple[Agent, ...]:
    """A department's agents: agent objects, or bare ids (the docs show both kinds of list)."""
    if isinstance(value, list) and any(isinstance(item, int | str) for item in value):
        return tuple(Agent(id=integer(item)) for item in value)
    return _agents(value)


_DEPARTMENT_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("name", "name", text),
    ("agents", "agents", _members),
)


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
        payload = unwrap(payload, "a chat")
        # The id first: a chat without one is "missing", whatever else is wrong with it.
        chat_id = convert_fields(payload, _CHAT_ID, "chat")["id"]
        if chat_id is None:
            raise ResponseValidationError("chat.id: missing")
        return cls(id=chat_id, **convert_fields(payload, _CHAT_FIELDS, "chat"), raw=payload)


_CHAT_ID: FieldTable = (("id", "id", integer),)
_CHAT_FIELDS: FieldTable = (
    ("status", "status", _status),
    ("closed_by", "closedBy", text),
    ("closed_at", "closedAt", timestamp),
    ("created_at", "createdAt", timestamp),
    ("last_message_at", "lastMessageAt", timestamp),
    ("last_customer_message_at", "lastCustomerMessageAt", timestamp),
    ("snoozed_until", "snoozedUntil", timestamp),
    ("rating", "rating", text),
    ("last_message_text", "lastMessageText", text),
    ("last_message_id", "lastMessageId", integer),
    ("last_communicated_agent_id", "lastCommunicatedAgentId", integer),
    ("agents", "agents", _agents),
    ("customer", "customer", Nested(Customer, "a customer")),
    ("assignee", "assignee", Nested(Agent, "an assignee")),
    ("department", "department", Nested(Department, "a department")),
    ("notes", "notes", text),
    ("created_with", "createdWith", text),
    ("application_id", "applicationId", integer),
    ("read_by_agent", "readByAgent", flag),
    ("read_by_customer", "readByCustomer", flag),
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
        payload = unwrap(payload, "a message")
        return cls(**convert_fields(payload, _MESSAGE_FIELDS, "message"), raw=payload)


_MESSAGE_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("text", "text", text),
    ("sender", "from", text),
    ("created_at", "createdAt", timestamp),
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
        raise ValueError(f"{what} is not valid text: {shown(text)}") from None


def _filter_value(value: Any) -> Any:
    if isinstance(value, ChatStatus):
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
