"""The team of a chat: its agents, and departments of agents (customers: ``_customer``)."""

from __future__ import annotations

from typing import Any

import attrs

from .._errors import ResponseValidationError
from ._enums import AgentRole, role
from ._wire import BadValueError, FieldTable, convert_fields, integer, is_mapping, text

__all__ = ["Agent", "Department", "agents"]


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
    ("role", "role", role),
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


def agents(value: Any) -> tuple[Agent, ...]:
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
    return agents(value)


_DEPARTMENT_FIELDS: FieldTable = (
    ("id", "id", integer),
    ("name", "name", text),
    ("agents", "agents", _members),
)
