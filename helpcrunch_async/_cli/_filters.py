"""``--filter FIELD OP VALUE``: checked against HelpCrunch's documented search fields.

Two tables: the chats' (``chats search``) and the customers' (``customers search``).

The SDK's ``Filter`` takes any field, so that a program can use one HelpCrunch adds before
the SDK knows it. The command is for people typing at a terminal, where a typo
(``chats.staus``) would otherwise be sent, match nothing, and exit 0 as "no chats": here
the field, the operator and the value are checked against what "Search for chats" documents
(https://docs.helpcrunch.com/en/rest-api-v1/search-chats-v1, "Accepted searchable fields"),
and anything else is a usage error listing what is allowed.
"""

from __future__ import annotations

import enum

import click

from .._models import ChatStatus, Filter
from ._input import parse_timestamp

__all__ = ["CUSTOMER_FIELDS", "FIELDS", "parse_filter"]


class Kind(enum.Enum):
    """What a field holds, which decides its operators and how its value is read."""

    ID = "an id (integer)"
    TIMESTAMP = "a timestamp"
    STATUS = "a chat status"
    RATING = "a rating"
    TEXT = "text"


#: The searchable fields of the documentation's table. ``chats.customer.tagsData`` is
#: documented too, but its value is a list of tags, which one ``--filter`` cannot express.
FIELDS: dict[str, Kind] = {
    "chats.agents": Kind.ID,
    "chats.assignee": Kind.ID,
    "chats.closedAt": Kind.TIMESTAMP,
    "chats.createdAt": Kind.TIMESTAMP,
    "chats.customer": Kind.ID,
    "chats.customer.email": Kind.TEXT,
    "chats.department": Kind.ID,
    "chats.rating": Kind.RATING,
    "chats.status": Kind.STATUS,
    "chats.updatedAt": Kind.TIMESTAMP,
}

#: The customers' searchable fields: the documentation's table is cut short in every copy,
#: so this is its rows plus the fields its prose and examples use (see
#: ``/shared/helpcrunch-api-customers.md``, "POST /customers/search"). Tags are ``--tag``.
CUSTOMER_FIELDS: dict[str, Kind] = {
    "customers.id": Kind.ID,
    **{
        f"customers.{name}": Kind.TEXT
        for name in (
            "name",
            "email",
            "userId",
            "company",
            "phone",
            "city",
            "regionCode",
            "countryCode",
            "telegramId",
            "facebookId",
            "instagramId",
            "viberId",
            "whatsappId",
        )
    },
    "customers.createdAt": Kind.TIMESTAMP,
    "customers.firstSeen": Kind.TIMESTAMP,
    "customers.lastSeen": Kind.TIMESTAMP,
}

#: Comparisons first, then "contains" (``~``) and "does not contain" (``!~``): the
#: documented operators, each kept to the kinds of value it means something for.
_COMPARE = ("=", "!=", "<", ">", "<=", ">=")
OPERATORS: dict[Kind, tuple[str, ...]] = {
    Kind.ID: _COMPARE,
    Kind.TIMESTAMP: _COMPARE,
    Kind.STATUS: ("=", "!="),
    Kind.RATING: ("=", "!="),
    Kind.TEXT: ("=", "!=", "~", "!~"),
}

#: Ratings as documented: "great", "average" or "poor" on the search page, and
#: "perfect" and "very poor" too on the page that rates a chat.
RATINGS = ("perfect", "great", "average", "poor", "very poor")

#: Every status a search can match: the ones a chat can be set to, and "empty".
_STATUSES = ", ".join(status.value for status in ChatStatus)


def parse_filter(field: str, operator: str, value: str, fields: dict[str, Kind] = FIELDS) -> Filter:
    """One ``--filter`` over ``fields``, or a ``click.BadParameter`` saying what is allowed."""
    kind = fields.get(field)
    if kind is None:
        hint = (
            "its value is a list of tags, which --filter cannot express"
            if field.endswith(".tagsData")
            else f"unknown search field {field!r}"
        )
        raise _bad(f"{hint}; searchable fields: {', '.join(fields)}")
    allowed = OPERATORS[kind]
    if operator not in allowed:
        known = any(operator in ops for ops in OPERATORS.values())
        problem = "does not apply to" if known else "is no search operator; valid for"
        choices = " ".join(allowed)
        raise _bad(f"{operator!r} {problem} {field} ({kind.value}): use one of {choices}")
    return Filter(field, operator, _value(field, kind, value))


def _value(field: str, kind: Kind, value: str) -> object:
    if kind is Kind.TIMESTAMP:
        return parse_timestamp(value)
    if kind is Kind.ID:
        try:
            return int(value)
        except ValueError:
            raise _bad(f"{field} takes an id (an integer), got {value!r}") from None
    if kind is Kind.STATUS:
        try:
            return ChatStatus(value)
        except ValueError:
            raise _bad(f"unknown chat status {value!r}; valid values: {_STATUSES}") from None
    if kind is Kind.RATING:
        rating = " ".join(value.lower().replace("-", " ").replace("_", " ").split())
        if rating not in RATINGS:
            raise _bad(f"unknown rating {value!r}; valid values: {', '.join(RATINGS)}")
        return rating
    return value


def _bad(message: str) -> click.BadParameter:
    return click.BadParameter(message, param_hint="--filter")
