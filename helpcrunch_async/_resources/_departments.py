"""``client.departments``: the account's departments, with their agents."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .._models import Department
from ._base import Resource
from ._paging import listed

__all__ = ["Departments"]


class Departments(Resource):
    """The departments resource; reach it as ``client.departments``."""

    async def list(self) -> AsyncIterator[Department]:
        """Every department, with its agents: ``async for d in client.departments.list(): ...``.

        The API answers with all departments at once (no paging); the answer may be the list
        itself or a ``{"data": [...]}`` envelope, as the documentation's versions differ.
        An async iterator all the same, like the other listings.
        """
        body = await self._call("GET", "/departments", operation="departments.list")
        for item in listed(body, "departments"):
            yield Department.from_json(item)
