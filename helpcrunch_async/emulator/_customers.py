"""The emulator's customers: seeded from the chats' customers, changed by writes, rendered.

A customer is stored in one wire-like form (camelCase, integer timestamps, ``customData`` as
an object, ``location`` nested); ``render`` shows it as either documented version does:

- ``spec``: the newer pages (timestamps as numeric strings, ``customData`` an object,
  ``createdFrom`` and ``integrationId``);
- ``legacy``: the older pages (integer timestamps, ``customData`` a ``[{property, value}]``
  list, no ``createdFrom``/``integrationId``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from .._config import is_int

__all__ = [
    "InvalidWriteError",
    "apply_write",
    "render",
    "seed_customers",
    "short",
    "webhook_customer",
]

_TEXTS = (
    "name",
    "email",
    "userId",
    "company",
    "phone",
    "source",
    "referer",
    "lastPage",
    "locale",
    "createdFrom",
    "integrationId",
    "notes",
)
_TIMES = ("firstSeen", "lastSeen")
_FLAGS = ("unsubscribed", "blocked")
_PLACES = ("city", "regionCode", "countryCode")
_CITIES = (
    ("London", "ENG", "GB"),
    ("Kyiv", "30", "UA"),
    ("Austin", "TX", "US"),
    ("Lyon", "ARA", "FR"),
)
_PLANS = ("free", "starter", "pro", "enterprise")
#: The colour the API gives a tag created without one.
DEFAULT_COLOR = "#c377e0"


class InvalidWriteError(ValueError):
    """A write the API would refuse: ``code`` is the field (or error code) to name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def seed_customers(chats: Iterable[dict[str, Any]], seed: int) -> dict[int, dict[str, Any]]:
    """A full customer for each customer the seeded chats name, from dice of their own.

    The chats' dice stay as they were: the fault dice that follow them must not move.
    """
    rnd = random.Random(f"customers:{seed}")
    customers: dict[int, dict[str, Any]] = {}
    for chat in chats:
        who = chat["customer"]
        if who["id"] in customers:
            continue
        first = chat["createdAt"] - rnd.randint(86400, 365 * 86400)
        city, region, country = rnd.choice(_CITIES)
        vip = rnd.random() < 0.2
        customers[who["id"]] = {
            **who,
            "company": rnd.choice(("Acme", "Globex", "Initech", None)),
            "phone": None if rnd.random() < 0.3 else f"+1555{rnd.randint(1_000_000, 9_999_999)}",
            "firstSeen": first,
            "lastSeen": chat["createdAt"],
            "location": {"regionCode": region, "countryCode": country, "city": city},
            "device": None
            if rnd.random() < 0.2
            else {
                "id": who["id"] * 7,
                "ip": f"192.0.2.{rnd.randint(1, 254)}",
                "timezone": "Europe/London",
                "platform": rnd.choice(("desktop", "mobile")),
                "userAgent": "Mozilla/5.0",
            },
            "unsubscribed": rnd.random() < 0.1,
            "blocked": False,
            "source": "https://example.com/pricing",
            "referer": "https://www.google.com/",
            "lastPage": "https://example.com/account",
            "locale": rnd.choice(("en", "uk", "fr")),
            "createdFrom": rnd.choice(("widget", "telegram")),
            "integrationId": None,
            "notes": None,
            "tags": [{"name": "vip", "color": "#ff0000"}] if vip else [],
            "customData": {
                "plan": rnd.choice(_PLANS),
                "number_of_payments": rnd.randint(0, 40),
                "last_paid_amount": round(rnd.uniform(5, 500), 2),
                "trial": rnd.random() < 0.3,
            },
        }
    return customers


def short(customer: dict[str, Any]) -> dict[str, Any]:
    """The customer as a chat carries it."""
    return {key: customer.get(key) for key in ("id", "name", "email", "userId")}


def render(customer: dict[str, Any], style: str) -> dict[str, Any]:
    """The customer as the configured documentation version shows it."""
    out = dict(customer)
    if style == "spec":
        for key in _TIMES:
            out[key] = None if out[key] is None else str(out[key])
        return out
    del out["createdFrom"], out["integrationId"]
    out["customData"] = [{"property": k, "value": v} for k, v in customer["customData"].items()]
    return out


def webhook_customer(customer: dict[str, Any]) -> dict[str, Any]:
    """A ``customer.*`` event's ``eventData``: a flat customer, ``customData`` an object.

    The documented example stops after ``customData``; ``blocked`` and ``tags`` are added so
    that ``customer.blocked`` and ``customer.tags_changed`` show what changed.
    """
    keys = ("id", "name", "userId", "email", "unsubscribed", "blocked", "tags", "customData")
    return {key: customer.get(key) for key in keys}


def apply_write(customer: dict[str, Any], body: dict[str, Any], *, replace: bool) -> dict[str, Any]:
    """Apply a create/update body to ``customer``; return what it was before.

    ``replace`` is PUT: every field the body leaves out becomes null, as the newer pages say.

    Raises:
        InvalidWriteError: an unknown field, or a value of the wrong type.
    """
    before = {**customer, "tags": list(customer["tags"])}
    if replace:
        keep = {"id": customer["id"], "device": customer["device"]}
        customer.clear()
        customer.update(blank_customer(keep["id"]), device=keep["device"])
    for key, value in body.items():
        _set(customer, key, value, replace=replace)
    return before


def _set(customer: dict[str, Any], key: str, value: object, *, replace: bool) -> None:
    if key in _TEXTS or key in _PLACES:
        if value is not None and not isinstance(value, str):
            raise InvalidWriteError(key, "This value should be of type string.")
        if key in _PLACES:  # the write examples flatten the location
            customer["location"] = {**(customer["location"] or {}), key: value}
        else:
            customer[key] = value
    elif key in _TIMES:
        customer[key] = _seconds(key, value)
    elif key in _FLAGS:
        if not isinstance(value, bool):
            raise InvalidWriteError(key, "This value should be of type bool.")
        customer[key] = value
    elif key == "tags":
        customer["tags"] = tags_of(value)
    elif key == "customData":
        data = {} if replace else dict(customer["customData"])
        customer["customData"] = data | _custom_data(value)
    else:
        raise InvalidWriteError(key, "This field was not expected.")


def blank_customer(customer_id: int) -> dict[str, Any]:
    """A customer with every field empty, as ``POST /customers`` with an empty body makes."""
    return {
        "id": customer_id,
        **dict.fromkeys(("name", "email", "userId", "company", "phone")),
        **dict.fromkeys(_TIMES),
        "location": None,
        "device": None,
        "unsubscribed": False,
        "blocked": False,
        **dict.fromkeys(("source", "referer", "lastPage", "locale")),
        **dict.fromkeys(("createdFrom", "integrationId", "notes")),
        "tags": [],
        "customData": {},
    }


def tags_of(value: object) -> list[dict[str, Any]]:
    """A ``tags`` body: ``[{name, color?}]``, a missing colour the default one."""
    if not isinstance(value, list):
        raise InvalidWriteError("tags", "This value should be of type array.")
    tags = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidWriteError("tags", "Each tag needs a name.")
        tags.append({"name": item["name"], "color": item.get("color") or DEFAULT_COLOR})
    return tags


def _seconds(key: str, value: object) -> int | None:
    if value is None or is_int(value):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)  # the newer pages send dates as numeric strings
    raise InvalidWriteError(key, "This value should be a UNIX timestamp.")


def _custom_data(value: object) -> dict[str, Any]:
    """``customData`` as the docs write it (a ``[{property, value}]`` list) or as an object."""
    if isinstance(value, dict):
        return dict(value)
    if not isinstance(value, list):
        raise InvalidWriteError("customData", "This value should be of type array.")
    data = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("property"), str):
            raise InvalidWriteError("customData", "Each entry needs a property.")
        data[item["property"]] = item.get("value")
    return data
