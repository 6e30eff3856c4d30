"""The account itself: its organization (with the team's availability) and its applications."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._wire import FieldTable, convert_fields, flag, integer, text, unwrap

__all__ = ["Application", "Organization"]


@attrs.frozen
class Organization:
    """The account's organization and its two switches, as ``client.organization.get()`` says.

    Attributes:
        id: The organization's id.
        domain: Its HelpCrunch domain.
        team_online: Whether the team shows as online (``teamOnline``): a bot can hand a chat
            to a person when it is ``True``.
        chat_enabled: Whether the chat widget is switched on (``chatEnabled``).
        raw: The payload as received.
    """

    id: int | None
    domain: str | None = None
    team_online: bool | None = None
    chat_enabled: bool | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, payload: Any) -> Organization:
        """Build from the wire object, or from the documented envelope ``{"data": {...}}``.

        Raises:
            ResponseValidationError: not an object, or a field of an impossible type.
        """
        payload = unwrap(payload, "an organization")
        return cls(**convert_fields(payload, _ORGANIZATION_FIELDS, "organization"), raw=payload)


_ORGANIZATION_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("domain", "domain", text),
    ("team_online", "teamOnline", flag),
    ("chat_enabled", "chatEnabled", flag),
)


@attrs.frozen
class Application:
    """An application (a website widget, a mobile SDK, a messenger...) chats come through.

    ``client.chats.create`` needs its ``id``. HelpCrunch's pages on applications were not
    available; the fields are those public clients read, and everything is in ``raw``.

    Attributes:
        id: The application's id.
        name: Its name.
        display_name: The name shown to customers (``displayName``).
        type: Its kind, as sent.
        active: Whether it is active.
        raw: The payload as received.
    """

    id: int | None
    name: str | None = None
    display_name: str | None = None
    type: str | None = None
    active: bool | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, payload: Any) -> Application:
        """Build from the wire object (``id``, ``name``, ``displayName``, ``type``, ``active``).

        Raises:
            ResponseValidationError: not an object, or a field of an impossible type.
        """
        payload = unwrap(payload, "an application")
        return cls(**convert_fields(payload, _APPLICATION_FIELDS, "application"), raw=payload)


_APPLICATION_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("name", "name", text),
    ("display_name", "displayName", text),
    ("type", "type", text),
    ("active", "active", flag),
)
