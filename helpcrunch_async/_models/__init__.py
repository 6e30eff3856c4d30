"""What the API returns, as frozen attrs models built from any documented payload variant.

Every model is ``@attrs.frozen`` and built with ``from_json``; the wire's camelCase becomes
snake_case, timestamps become timezone-aware UTC ``datetime``s, and unknown fields are kept
only in ``raw``. A known field of an impossible type raises ``ResponseValidationError``.

- ``_json``: the one bounded JSON decoder, and the cap on text kept from outside;
- ``_wire``: converters of wire values (ids, timestamps, text, flags) and the field tables;
- ``_enums``: chat statuses, ratings and agent roles; ``_people``: agents, departments;
- ``_customer``: customers (tags, location, device, custom data) and their events;
- ``_account``: the organization and its applications;
- ``_chat``: chats and messages; ``_filter``: search conditions.
"""

from ._account import Application, Organization
from ._chat import Chat, Message
from ._customer import Customer, CustomerEvent, Device, Location, Tag
from ._enums import ON_HOLD_SPELLINGS, SENDABLE_VALUES, AgentRole, ChatRating, ChatStatus
from ._filter import OPERATORS, Filter
from ._people import Agent, Department
from ._wire import validate_id

__all__ = [
    "ON_HOLD_SPELLINGS",
    "OPERATORS",
    "SENDABLE_VALUES",
    "Agent",
    "AgentRole",
    "Application",
    "Chat",
    "ChatRating",
    "ChatStatus",
    "Customer",
    "CustomerEvent",
    "Department",
    "Device",
    "Filter",
    "Location",
    "Message",
    "Organization",
    "Tag",
    "validate_id",
]
