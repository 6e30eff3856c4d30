"""``client.agents``: the account's agents, with their roles; unsubscribing one from news."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any

from .._models import Agent, validate_id
from ._base import Resource
from ._paging import MAX_PAGE_SIZE, check_page_size, paginate

__all__ = ["Agents"]


class Agents(Resource):
    """The agents resource; reach it as ``client.agents``."""

    def list(self, *, page_size: int = MAX_PAGE_SIZE) -> AsyncIterator[Agent]:
        """Every agent, page by page: ``async for agent in client.agents.list(): ...``.

        ``agent.role`` is an ``AgentRole`` (``ADMIN``, ``AGENT``, ``AGENT_CHAT_ONLY``,
        ``SUPERVISER``), or the string as sent for a role the SDK does not know yet.
        """
        size = check_page_size(page_size)

        def fetch(offset: int, limit: int) -> Awaitable[Any]:
            query = {"offset": offset, "limit": limit}
            return self._call("GET", "/agents", params=query, operation="agents.list")

        return paginate(fetch, size, Agent.from_json)

    async def unsubscribe(self, agent_id: int) -> None:
        """Unsubscribe an agent (team member) from HelpCrunch's newsletters.

        Raises:
            NotFoundError: no such agent.
        """
        agent_id = validate_id(agent_id, name="agent_id")
        await self._call(
            "GET",
            f"/agents/{agent_id}/unsubscribe",
            json_answer=False,
            operation="agents.unsubscribe",
        )
