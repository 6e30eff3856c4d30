"""``client.departments``: the account's departments, with their agents."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .._errors import ResponseValidationError
from .._models import Department
from ._base import Resource

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
        items = body.get("data") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise ResponseValidationError(
                f"expected a list of departments, got {type(body).__name__}"
            )
        for item in items:
            yield Department.from_json(item)
