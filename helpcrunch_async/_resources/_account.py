"""``client.organization`` and ``client.applications``: the account itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .._models import Application, Organization
from ._base import Resource
from ._paging import listed

__all__ = ["Applications", "OrganizationResource"]


class OrganizationResource(Resource):
    """The organization resource; reach it as ``client.organization``."""

    async def get(self) -> Organization:
        """The organization, with its two switches: is the team online, is the chat on.

        Example:
            >>> if (await client.organization.get()).team_online:  # doctest: +SKIP
            ...     await client.chats.update_assignee(chat_id, agent_id)
        """
        body = await self._call("GET", "/organization", operation="organization.get")
        return Organization.from_json(body)


class Applications(Resource):
    """The applications resource; reach it as ``client.applications``."""

    async def list(self) -> AsyncIterator[Application]:
        """Every application (widget, app, messenger) chats come through, all at once.

        ``client.chats.create`` needs one's ``id``. An async iterator, like the other
        listings: ``async for app in client.applications.list(): ...``.
        """
        body = await self._call("GET", "/applications", operation="applications.list")
        for item in listed(body, "applications"):
            yield Application.from_json(item)
