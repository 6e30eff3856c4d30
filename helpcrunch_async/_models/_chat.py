"""A chat and its messages, as the API returns them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from .._errors import ResponseValidationError
from ._customer import Customer
from ._enums import ChatRating, ChatStatus, chat_rating, chat_status
from ._people import Agent, Department, agents
from ._wire import FieldTable, Nested, convert_fields, flag, integer, text, timestamp, unwrap

__all__ = ["Chat", "Message"]


@attrs.frozen
class Chat:
    """A HelpCrunch chat, as the API returned it.

    Timestamps are timezone-aware UTC ``datetime``s or ``None``. ``status`` is a
    ``ChatStatus`` and ``rating`` a ``ChatRating`` when the SDK knows the value, else the
    string as sent. ``raw`` is the
    payload as received, for fields this SDK does not model yet.

    Examples:
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
    rating: ChatRating | str | None = None
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
    ("status", "status", chat_status),
    ("closed_by", "closedBy", text),
    ("closed_at", "closedAt", timestamp),
    ("created_at", "createdAt", timestamp),
    ("last_message_at", "lastMessageAt", timestamp),
    ("last_customer_message_at", "lastCustomerMessageAt", timestamp),
    ("snoozed_until", "snoozedUntil", timestamp),
    ("rating", "rating", chat_rating),
    ("last_message_text", "lastMessageText", text),
    ("last_message_id", "lastMessageId", integer),
    ("last_communicated_agent_id", "lastCommunicatedAgentId", integer),
    ("agents", "agents", agents),
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
    """One message of a chat, from the API or from a ``message.*`` webhook.

    Fields beyond these are in ``raw``.

    Attributes:
        id: The message id.
        text: The text, if any.
        sender: Who wrote it, as sent in ``from`` (``"customer"``, ``"agent"``...).
        created_at: When it was written, in UTC.
        updated_at: When it was last edited, in UTC.
        read: Whether it was read.
        edited: Whether it was edited.
        application_id: The application (widget) it was written in.
        broadcast_type: As sent (``broadcastType``); ``None`` for an ordinary message.
    """

    id: int | None
    text: str | None = None
    sender: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    read: bool | None = None
    edited: bool | None = None
    application_id: int | None = None
    broadcast_type: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, payload: Any) -> Message:
        """Build from the wire object (``id``, ``text``, ``from``, ``createdAt``...).

        Accepts the message itself or an envelope ``{"data": {...}}``.
        """
        payload = unwrap(payload, "a message")
        return cls(**convert_fields(payload, _MESSAGE_FIELDS, "message"), raw=payload)


_MESSAGE_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("text", "text", text),
    ("sender", "from", text),
    ("created_at", "createdAt", timestamp),
    ("updated_at", "updatedAt", timestamp),
    ("read", "read", flag),
    ("edited", "edited", flag),
    ("application_id", "applicationId", integer),
    ("broadcast_type", "broadcastType", text),
)
