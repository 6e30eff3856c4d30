"""What a webhook delivers: the envelope and the typed data of each documented event.

Built like the API's models (``_models.py``): frozen attrs classes, ``from_json``, the same
converters; the wire's camelCase (and the message events' snake_case ``chat_id``) becomes
snake_case, timestamps become timezone-aware UTC ``datetime``s, the payload stays in ``raw``.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from .._errors import ResponseValidationError
from .._models import Agent, Chat, Customer, Message
from .._models._wire import (
    BadValueError,
    FieldTable,
    Nested,
    convert_fields,
    flag,
    integer,
    text,
    timestamp,
)

__all__ = [
    "CHAT_EVENTS",
    "CUSTOMER_EVENTS",
    "MESSAGE_EVENTS",
    "ChatEventData",
    "CustomerEventData",
    "MessageEventData",
    "WebhookEvent",
]

#: The documented chat events, each with the ``ChatEventData`` field it changed
#: (``None``: the whole chat is news).
CHAT_EVENTS: Mapping[str, str | None] = types.MappingProxyType(
    {
        "chat.new": None,
        "chat.status_updated": "status",
        "chat.assigned": "assignee",
        "chat.snoozed": "snoozed_until",
        "chat.unsnoozed": "snoozed_until",
        "chat.closed": "status",
        "chat.rated": "rating",
    }
)
#: The documented message events.
MESSAGE_EVENTS = frozenset(
    {
        "message.chat.customer",
        "message.email.customer",
        "message.private",
        "message.chat.agent",
        "message.email.agent",
    }
)
#: The documented customer events.
CUSTOMER_EVENTS = frozenset(
    {
        "customer.new",
        "customer.email_updated",
        "customer.tags_changed",
        "customer.unsubscribed",
        "customer.subscribed",
        "customer.blocked",
        "customer.unblocked",
        "customer.deleted",
    }
)


def _field(payload: Mapping[str, Any], name: str, convert: Any, *, model: str) -> Any:
    """One field of ``payload``, converted; see ``convert_fields``."""
    return convert_fields(payload, ((name, name, convert),), model)[name]


def _ids(value: Any) -> tuple[int, ...]:
    """A list of ids; agent objects are tolerated and reduced to their ids."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadValueError(f"expected a list of ids, got {type(value).__name__}")
    ids = []
    for item in value:
        found = integer(item.get("id")) if isinstance(item, Mapping) else integer(item)
        if found is not None:
            ids.append(found)
    return tuple(ids)


def _payload(payload: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise ResponseValidationError(f"{what}: expected an object, got {type(payload).__name__}")
    return payload


def _missing(what: str) -> ResponseValidationError:
    return ResponseValidationError(f"{what}: missing")


@attrs.frozen
class ChatEventData:
    """The chat a ``chat.*`` event is about, as it is after the change.

    Attributes:
        chat_id: The chat's id.
        chat: The chat itself, as a ``Chat`` (the event carries the chat object; a nested
            customer, assignee or department sent as a bare id has only its ``id`` set).
        changed: The attribute the event changed (``"status"``, ``"assignee"``,
            ``"snoozed_until"``, ``"rating"``), or ``None`` for ``chat.new``.
        communicated_agent_ids: Ids of the agents who talked in the chat
            (``communicatedAgents``).
        raw: The ``eventData`` as received.
    """

    chat_id: int
    chat: Chat
    changed: str | None = None
    communicated_agent_ids: tuple[int, ...] = ()
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, payload: Any, *, changed: str | None = None) -> ChatEventData:
        """Build from a chat event's ``eventData``; ``changed`` comes from the event type.

        Raises:
            ResponseValidationError: not an object, no ``id``, or a field of an impossible type.
        """
        payload = _payload(payload, "eventData")
        chat = Chat.from_json(payload)
        agents = _field(payload, "communicatedAgents", _ids, model="chat")
        return cls(
            chat_id=chat.id, chat=chat, changed=changed, communicated_agent_ids=agents, raw=payload
        )


@attrs.frozen
class MessageEventData:
    """A ``message.*`` event: who wrote what in which chat.

    Attributes:
        chat_id: The chat (``chat_id`` on the wire, snake_case in this event).
        message: The message.
        agent: The agent who wrote it, or ``None`` when the customer did.
        customer: The chat's customer.
        raw: The ``eventData`` as received.
    """

    chat_id: int
    message: Message | None = None
    agent: Agent | None = None
    customer: Customer | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, payload: Any) -> MessageEventData:
        """Build from a message event's ``eventData``.

        Raises:
            ResponseValidationError: not an object, no chat id, or a field of an impossible type.
        """
        payload = _payload(payload, "eventData")

        chat_id = _field(payload, "chat_id", integer, model="event")
        if chat_id is None:  # the camelCase the rest of the API uses
            chat_id = _field(payload, "chatId", integer, model="event")
        if chat_id is None:
            raise _missing("event.chat_id")
        fields = convert_fields(payload, _MESSAGE_EVENT_FIELDS, "event")
        return cls(chat_id=chat_id, **fields, raw=payload)


_MESSAGE_EVENT_FIELDS: FieldTable = (
    ("message", "message", Nested(Message, "a message")),
    ("agent", "agent", Nested(Agent, "an agent")),
    ("customer", "customer", Nested(Customer, "a customer")),
)


@attrs.frozen
class CustomerEventData:
    """A ``customer.*`` event: the customer, as it is after the change.

    Attributes:
        custom_data: The account's own fields for the customer (``customData``), as sent.
        raw: The ``eventData`` as received, with the fields not modelled here (tags...).
    """

    id: int
    name: str | None = None
    email: str | None = None
    user_id: str | None = None
    unsubscribed: bool | None = None
    custom_data: Any = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, payload: Any) -> CustomerEventData:
        """Build from a customer event's ``eventData``.

        Raises:
            ResponseValidationError: not an object, no ``id``, or a field of an impossible type.
        """
        payload = _payload(payload, "eventData")

        customer_id = _field(payload, "id", integer, model="customer")
        if customer_id is None:
            raise _missing("customer.id")
        fields = convert_fields(payload, _CUSTOMER_EVENT_FIELDS, "customer")
        return cls(id=customer_id, **fields, custom_data=payload.get("customData"), raw=payload)


_CUSTOMER_EVENT_FIELDS: FieldTable = (
    ("name", "name", text),
    ("email", "email", text),
    ("user_id", "userId", text),
    ("unsubscribed", "unsubscribed", flag),
)


#: What ``WebhookEvent.data`` is for an event type this SDK does not know: the raw object.
EventData = ChatEventData | MessageEventData | CustomerEventData | Mapping[str, Any]


@attrs.frozen
class WebhookEvent:
    """One webhook delivery's envelope, verified and parsed by ``parse_event``.

    Attributes:
        id: The event's id (a UUID string). A redelivery keeps it: de-duplicate on it.
        type: The event type, as sent in ``event`` (``"chat.new"``, ``"message.private"``...).
        data: ``ChatEventData``, ``MessageEventData`` or ``CustomerEventData`` for the
            documented types; for a type this SDK does not know yet, the ``eventData``
            object itself, read-only.
        attempts: The delivery attempts of this event before this one, as HelpCrunch counts
            them: 0 on a first delivery (as in HelpCrunch's documented example), then 1, 2...
            on redeliveries; 0 when the envelope does not say.
        last_attempt_at: When this delivery was tried, in UTC.
        created_at: When the event happened, in UTC.
        raw: The whole envelope as received.
    """

    id: str
    type: str
    data: EventData
    attempts: int = 0
    last_attempt_at: datetime | None = None
    created_at: datetime | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def is_redelivery(self) -> bool:
        """``True`` when an earlier delivery of this event was tried (``attempts`` > 0)."""
        return self.attempts > 0

    @classmethod
    def from_json(cls, payload: Any) -> WebhookEvent:
        """Build from a decoded envelope (``id``, ``event``, ``eventData``, ``attempts``...).

        Raises:
            ResponseValidationError: not an envelope, or a field of an impossible type.
        """
        payload = _payload(payload, "envelope")
        event_id = _field(payload, "id", text, model="event")
        event_type = _field(payload, "event", text, model="event")
        if not event_id:
            raise _missing("event.id")
        if not event_type:
            raise _missing("event.event")
        attempts = _field(payload, "attempts", integer, model="event")
        if attempts is not None and attempts < 0:
            raise ResponseValidationError(f"event.attempts: {attempts} is below 0")
        return cls(
            id=event_id,
            type=event_type,
            data=_data(event_type, payload.get("eventData")),
            attempts=0 if attempts is None else attempts,
            last_attempt_at=_field(payload, "lastAttemptAt", timestamp, model="event"),
            created_at=_field(payload, "createdAt", timestamp, model="event"),
            raw=payload,
        )


def _data(event_type: str, payload: Any) -> EventData:
    if event_type in CHAT_EVENTS:
        return ChatEventData.from_json(payload, changed=CHAT_EVENTS[event_type])
    if event_type in MESSAGE_EVENTS:
        return MessageEventData.from_json(payload)
    if event_type in CUSTOMER_EVENTS:
        return CustomerEventData.from_json(payload)
    if payload is None:
        return types.MappingProxyType({})
    return types.MappingProxyType(dict(_payload(payload, "eventData")))
