"""The API's enumerations: chat statuses, ratings and agent roles, with every spelling."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .._config import is_int
from ._wire import BadValueError, integer, text

__all__ = [
    "ON_HOLD_SPELLINGS",
    "SENDABLE_VALUES",
    "AgentRole",
    "ChatRating",
    "ChatStatus",
    "chat_rating",
    "chat_status",
    "role",
]


def _words(spelling: str) -> list[str]:
    """The words of a documented spelling: ``"on-hold"`` has two, ``"agentChatOnly"`` three."""
    return re.findall(r"[A-Z]?[a-z]+|[0-9]+", spelling) or [spelling]


def spellings(documented: str) -> set[str]:
    """Every accepted spelling of a documented value, lower case.

    Its words joined by a space, a hyphen, an underscore or nothing (``on hold``,
    ``on-hold``, ``on_hold``, ``onhold``); a separator anywhere else (``c l o s e d``) or
    at the ends is not one of them.
    """
    words = [word.lower() for word in _words(documented)]
    return {sep.join(words) for sep in (" ", "-", "_", "")}


class _Spelled(str, enum.Enum):
    """A str enum that converts any accepted spelling of its values (see ``spellings``)."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def _missing_(cls, value: object) -> _Spelled | None:
        if isinstance(value, str):
            return _FORGIVEN[cls].get(value.strip().lower())
        return None

    @classmethod
    def _from_input(cls, value: object, what: str, valid: Sequence[str]) -> Any:
        """A member from user input (a member, or any accepted spelling), or a clear error."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            found = _FORGIVEN[cls].get(value.strip().lower())
            if found is None:
                raise ValueError(f"unknown {what} {value!r}; valid values: {', '.join(valid)}")
            return found
        raise TypeError(f"{what} must be a {cls.__name__} or str, not {type(value).__name__}")


class ChatStatus(_Spelled):
    """A chat's status.

    Strings are normalised when converted: case aside, the words of a documented spelling
    may be joined by a space, a hyphen, an underscore or nothing, so ``ChatStatus("on
    hold")``, ``"onhold"``, ``"On-Hold"`` and ``"ON_HOLD"`` are all ``ChatStatus.ON_HOLD``,
    and ``"open"`` is ``ChatStatus.OPENED``. ``EMPTY`` (a chat with no messages) only appears
    in answers: sending it is a ``ValueError``.
    """

    NEW = "new"
    OPENED = "opened"
    PENDING = "pending"
    ON_HOLD = "on-hold"
    NO_COMMUNICATION = "no communication"
    CLOSED = "closed"
    EMPTY = "empty"

    @classmethod
    def parse(cls, value: ChatStatus | str) -> ChatStatus:
        """Convert user input to a status that can be sent, or raise a clear error.

        Raises:
            TypeError: ``value`` is not a string.
            ValueError: ``value`` is no accepted spelling, or is ``EMPTY``.
        """
        status: ChatStatus = cls._from_input(value, "chat status", SENDABLE_VALUES)
        if status is ChatStatus.EMPTY:
            raise ValueError(
                "ChatStatus.EMPTY is reported by the server for chats without messages and "
                f"cannot be set; valid values: {', '.join(SENDABLE_VALUES)}"
            )
        return status


class ChatRating(_Spelled):
    """A customer's rating of a chat, as ``client.chats.rate`` documents it.

    The chat pages list only great, average and poor; the rating page adds perfect and very
    poor (shown as Excellent ... Very poor in the widget). Strings are normalised like
    statuses: ``"Very_Poor"`` is ``ChatRating.VERY_POOR``.
    """

    PERFECT = "perfect"
    GREAT = "great"
    AVERAGE = "average"
    POOR = "poor"
    VERY_POOR = "very poor"

    @classmethod
    def parse(cls, value: ChatRating | str) -> ChatRating:
        """Convert user input to a documented rating, or raise a clear error.

        Raises:
            TypeError: ``value`` is not a string.
            ValueError: ``value`` is no accepted spelling of a documented rating.
        """
        rating: ChatRating = cls._from_input(value, "chat rating", [r.value for r in cls])
        return rating


class AgentRole(_Spelled):
    """An agent's role, as documented: the supervisor role is spelled ``"superviser"`` (sic).

    Conversion is forgiving: ``AgentRole("supervisor")`` and ``AgentRole("agent_chat_only")``
    work too. A role the SDK does not know yet stays a plain string on ``Agent.role``.
    """

    ADMIN = "admin"
    AGENT = "agent"
    AGENT_CHAT_ONLY = "agentChatOnly"
    SUPERVISER = "superviser"


def _forgiving(members: Mapping[str, _Spelled]) -> dict[str, _Spelled]:
    """Accepted spelling -> member, for each documented spelling (value or alias)."""
    return {form: member for spelling, member in members.items() for form in spellings(spelling)}


#: Per enum: every accepted spelling -> its member.
_FORGIVEN: dict[type[_Spelled], dict[str, _Spelled]] = {
    ChatStatus: _forgiving(
        {status.value: status for status in ChatStatus} | {"open": ChatStatus.OPENED}
    ),
    ChatRating: _forgiving({rating.value: rating for rating in ChatRating}),
    AgentRole: _forgiving(
        {role.value: role for role in AgentRole} | {"supervisor": AgentRole.SUPERVISER}
    ),
}

#: The values a caller may send, for error messages.
SENDABLE_VALUES = tuple(s.value for s in ChatStatus if s is not ChatStatus.EMPTY)

#: The ways the documentation spells on-hold, in the order we try them: our spec's first.
ON_HOLD_SPELLINGS = ("on-hold", "on hold", "onhold")


E = TypeVar("E", bound="_Spelled")


def _open_enum(cls: type[E]) -> Callable[[Any], E | str | None]:
    """A converter to ``cls`` that keeps a value the SDK does not know yet as its string."""
    # Exact wire spellings first: one dict lookup, without the Enum machinery.
    exact = {member.value: member for member in cls}

    def convert(value: Any) -> E | str | None:
        name = text(value)
        if name is None:
            return None
        member = exact.get(name)
        if member is not None:
            return member
        try:
            return cls(name)
        except ValueError:
            return name  # kept, not rejected

    return convert


role = _open_enum(AgentRole)
chat_rating = _open_enum(ChatRating)


_STATUSES: dict[str, ChatStatus] = {s.value: s for s in ChatStatus}


def chat_status(value: Any) -> ChatStatus | str | None:
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
