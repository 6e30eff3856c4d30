"""The API's enumerations: chat statuses and agent roles, with every documented spelling."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any

from .._config import is_int
from ._wire import BadValueError, integer, text

__all__ = ["ON_HOLD_SPELLINGS", "SENDABLE_VALUES", "AgentRole", "ChatStatus", "chat_status", "role"]


def _words(spelling: str) -> list[str]:
    """The words of a documented spelling: ``"on-hold"`` and ``"agentChatOnly"`` have three."""
    return re.findall(r"[A-Z]?[a-z]+|[0-9]+", spelling.replace("-", " ")) or [spelling]


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
            return _FORGIVEN.get(cls, {}).get(value.strip().lower())
        return None


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
        if isinstance(value, ChatStatus):
            status = value
        elif isinstance(value, str):
            found = _FORGIVEN[ChatStatus].get(value.strip().lower())
            if found is None:
                raise ValueError(
                    f"unknown chat status {value!r}; valid values: {', '.join(SENDABLE_VALUES)}"
                )
            status = ChatStatus(found)
        else:
            raise TypeError(f"chat status must be a ChatStatus or str, not {type(value).__name__}")
        if status is ChatStatus.EMPTY:
            raise ValueError(
                "ChatStatus.EMPTY is reported by the server for chats without messages and "
                f"cannot be set; valid values: {', '.join(SENDABLE_VALUES)}"
            )
        return status


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
    AgentRole: _forgiving(
        {role.value: role for role in AgentRole} | {"supervisor": AgentRole.SUPERVISER}
    ),
}

#: The values a caller may send, for error messages.
SENDABLE_VALUES = tuple(s.value for s in ChatStatus if s is not ChatStatus.EMPTY)

#: The ways the documentation spells on-hold, in the order we try them: our spec's first.
ON_HOLD_SPELLINGS = ("on-hold", "on hold", "onhold")


#: Exact wire spellings first: one dict lookup, without the Enum machinery.
_ROLES: dict[str, AgentRole] = {r.value: r for r in AgentRole}


def role(value: Any) -> AgentRole | str | None:
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
