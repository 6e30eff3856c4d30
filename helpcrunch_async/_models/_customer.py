"""A customer (contact) with its tags, location, device and custom data, and its events.

One ``Customer`` serves everywhere the API shows a customer: ``client.customers`` answers
carry every field, a chat's ``customer`` and the webhooks carry a few (``id``, ``name``,
``email``, ``userId``) and leave the others ``None``.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from .._errors import ResponseValidationError
from ._json import MAX_JSON_DEPTH
from ._wire import (
    BadValueError,
    FieldTable,
    convert_fields,
    flag,
    integer,
    is_mapping,
    text,
    timestamp,
    unwrap,
)

__all__ = ["Customer", "CustomerEvent", "Device", "Location", "Tag", "custom_data", "read_only"]

_EMPTY: Mapping[str, Any] = types.MappingProxyType({})


def read_only(value: Any, depth: int = 0) -> Any:
    """A JSON value with every object made a read-only mapping and every array a tuple.

    Custom data and event data are the customer's own, of any shape: they stay as sent, but
    a frozen model must not hand out a dict its caller could change.
    """
    if depth > MAX_JSON_DEPTH:
        raise BadValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if is_mapping(value):
        return types.MappingProxyType(
            {str(key): read_only(item, depth + 1) for key, item in value.items()}
        )
    if isinstance(value, list | tuple):
        return tuple(read_only(item, depth + 1) for item in value)
    return value


def custom_data(value: Any) -> Mapping[str, Any]:
    """``customData`` as a read-only mapping, from an object or a ``[{property, value}]`` list.

    The documentation shows both forms in answers; keys may hold spaces and capitals
    (``"Next payment date"``). In the list form a repeated property keeps its last value.
    """
    if value is None or value in ([], {}):
        return _EMPTY
    if is_mapping(value):
        return read_only(value)  # type: ignore[no-any-return]
    if not isinstance(value, list):
        raise BadValueError(f"expected an object or a list, got {type(value).__name__}")
    pairs = {}
    for entry in value:
        if not is_mapping(entry):
            raise BadValueError(f"expected {{property, value}} entries, got {type(entry).__name__}")
        name = text(entry.get("property"))
        if not name:
            raise BadValueError("an entry has no property name")
        pairs[name] = read_only(entry.get("value"), 1)
    return types.MappingProxyType(pairs)


def _embedded(model: Any, what: str) -> Any:
    """A converter of an object field into ``model``; ``None`` for null, ``{}`` or ``[]``."""

    def convert(value: Any) -> Any:
        if value is None or value in ([], {}):
            return None
        if is_mapping(value):
            return model.from_json(value)
        raise BadValueError(f"expected {what} object, got {type(value).__name__}")

    return convert


def _object(payload: Any, what: str) -> Mapping[str, Any]:
    if not is_mapping(payload):
        raise ResponseValidationError(f"expected {what} object, got {type(payload).__name__}")
    return payload


@attrs.frozen
class Tag:
    """A customer's tag: its name and its CSS colour.

    As an argument (``client.customers.tag``...), ``color`` may be left out: the server
    then uses its default (``#c377e0``). A plain string is taken as a tag of that name.

    Example:
        >>> Tag("vip", "#ff0000")
        Tag(name='vip', color='#ff0000')
    """

    name: str
    color: str | None = None

    @classmethod
    def from_json(cls, payload: Any) -> Tag:
        """Build from the wire object (``name``, ``color``); a bare string is a name."""
        if isinstance(payload, str):
            return cls(payload)
        values = convert_fields(_object(payload, "a tag"), _TAG_FIELDS, "tag")
        if values["name"] is None:
            raise ResponseValidationError("tag.name: missing")
        return cls(**values)


_TAG_FIELDS: FieldTable = (("name", "name", text), ("color", "color", text))


def _tags(value: Any) -> tuple[Tag, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadValueError(f"expected a list of tags, got {type(value).__name__}")
    return tuple(Tag.from_json(item) for item in value)


@attrs.frozen
class Location:
    """Where a customer was last seen, as the API guessed it (free text: ``"EN"`` occurs)."""

    city: str | None = None
    region_code: str | None = None
    country_code: str | None = None

    @classmethod
    def from_json(cls, payload: Any) -> Location:
        """Build from the wire object (``city``, ``regionCode``, ``countryCode``)."""
        return cls(**convert_fields(_object(payload, "a location"), _LOCATION_FIELDS, "location"))


_LOCATION_FIELDS: FieldTable = (
    ("city", "city", text),
    ("region_code", "regionCode", text),
    ("country_code", "countryCode", text),
)


@attrs.frozen
class Device:
    """The device a customer was last seen on.

    ``timezone`` is as sent, not necessarily an IANA name (``"America/Los Angeles"`` occurs).
    """

    id: int | None = None
    ip: str | None = None
    timezone: str | None = None
    platform: str | None = None
    user_agent: str | None = None

    @classmethod
    def from_json(cls, payload: Any) -> Device:
        """Build from the wire object (``id``, ``ip``, ``timezone``, ``platform``...)."""
        return cls(**convert_fields(_object(payload, "a device"), _DEVICE_FIELDS, "device"))


_DEVICE_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("ip", "ip", text),
    ("timezone", "timezone", text),
    ("platform", "platform", text),
    ("user_agent", "userAgent", text),
)


@attrs.frozen
class Customer:
    """A HelpCrunch customer (contact), as the API returned it.

    Every field but ``id`` may be ``None`` (or empty): a chat's ``customer`` and the
    webhooks carry only ``id``, ``name``, ``email`` and ``user_id``. Timestamps are
    timezone-aware UTC ``datetime``s, whether sent as integers, numeric strings or null.

    Attributes:
        id: HelpCrunch's id of the customer.
        user_id: Your own id of the customer (``userId``), as you gave it.
        first_seen: When the customer was first seen (``firstSeen``).
        last_seen: When the customer was last seen (``lastSeen``).
        location: Where, as a ``Location``, or ``None``.
        device: On what, as a ``Device``, or ``None`` (the API sends ``null`` at times).
        unsubscribed: Whether the customer unsubscribed from emails.
        blocked: Whether the customer is blocked.
        source: The page the customer first came from; ``referer`` the referrer,
            ``last_page`` the last page seen.
        locale: An ISO 639-1 language code.
        created_from: Where the customer was created (``createdFrom``: ``"telegram"``...).
        integration_id: The id of that integration (``integrationId``).
        notes: The notes on the customer's profile.
        tags: The customer's tags, as ``Tag(name, color)``.
        custom_data: Your own fields (``customData``), read-only; sent as an object or a
            ``[{property, value}]`` list, both read into the same mapping.
        raw: The payload as received.

    Example:
        >>> customer = Customer.from_json({"id": 7, "userId": "u-7", "firstSeen": "1603885746",
        ...     "customData": [{"property": "Plan", "value": "pro"}]})
        >>> customer.user_id, customer.first_seen.year, customer.custom_data["Plan"]
        ('u-7', 2020, 'pro')
    """

    id: int
    name: str | None = None
    email: str | None = None
    user_id: str | None = None
    company: str | None = None
    phone: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    location: Location | None = None
    device: Device | None = None
    unsubscribed: bool | None = None
    blocked: bool | None = None
    source: str | None = None
    referer: str | None = None
    last_page: str | None = None
    locale: str | None = None
    created_from: str | None = None
    integration_id: str | None = None
    notes: str | None = None
    tags: tuple[Tag, ...] = ()
    # Compared, not hashed: a read-only mapping has no hash.
    custom_data: Mapping[str, Any] = attrs.field(default=_EMPTY, hash=False)
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def tag_names(self) -> tuple[str, ...]:
        """The names of ``tags``, in order."""
        return tuple(tag.name for tag in self.tags)

    @classmethod
    def from_json(cls, payload: Any) -> Customer:
        """Build a ``Customer`` from a payload in any documented variant.

        Accepts the customer object itself or an envelope ``{"data": {...}}``.

        Raises:
            ResponseValidationError: not an object, no usable ``id``, or a known field of an
                impossible type.
        """
        payload = unwrap(payload, "a customer")
        fields = convert_fields(payload, _CUSTOMER_FIELDS, "customer")
        if fields["id"] is None:
            raise ResponseValidationError("customer.id: missing")
        return cls(**fields, raw=payload)


_CUSTOMER_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("name", "name", text),
    ("email", "email", text),
    ("user_id", "userId", text),
    ("company", "company", text),
    ("phone", "phone", text),
    ("first_seen", "firstSeen", timestamp),
    ("last_seen", "lastSeen", timestamp),
    ("location", "location", _embedded(Location, "a location")),
    ("device", "device", _embedded(Device, "a device")),
    ("unsubscribed", "unsubscribed", flag),
    ("blocked", "blocked", flag),
    ("source", "source", text),
    ("referer", "referer", text),
    ("last_page", "lastPage", text),
    ("locale", "locale", text),
    ("created_from", "createdFrom", text),
    ("integration_id", "integrationId", text),
    ("notes", "notes", text),
    ("tags", "tags", _tags),
    ("custom_data", "customData", custom_data),
)


def _event_data(value: Any) -> Mapping[str, Any]:
    if value is None or value in ([], {}):
        return _EMPTY
    if not is_mapping(value):
        raise BadValueError(f"expected an object, got {type(value).__name__}")
    return read_only(value)  # type: ignore[no-any-return]


@attrs.frozen
class CustomerEvent:
    """An activity event recorded on a customer's profile ("User Actions").

    Attributes:
        id: The event's id.
        name: What happened (``"Button Click"``).
        data: The event's details, read-only.
        created_at: When it was recorded, in UTC.
        customer_id: The customer, when the answer says (one doc version does).
        raw: The payload as received.
    """

    id: int | None
    name: str | None = None
    data: Mapping[str, Any] = attrs.field(default=_EMPTY, hash=False)
    created_at: datetime | None = None
    customer_id: int | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_json(cls, payload: Any) -> CustomerEvent:
        """Build from the wire object (``id``, ``name``, ``data``, ``createdAt``, ``customer``).

        Accepts the event itself or an envelope ``{"data": {...}}``.

        Raises:
            ResponseValidationError: not an object, or a field of an impossible type.
        """
        payload = _object(payload, "an event")
        # An event has a ``data`` object of its own: only an object without an id is an
        # envelope around the event.
        if "id" not in payload and is_mapping(payload.get("data")):
            payload = payload["data"]
        return cls(**convert_fields(payload, _EVENT_FIELDS, "event"), raw=payload)


_EVENT_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("name", "name", text),
    ("data", "data", _event_data),
    ("created_at", "createdAt", timestamp),
    ("customer_id", "customer", integer),
)
