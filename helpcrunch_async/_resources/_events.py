"""``client.events``: activity events recorded on a customer's profile."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._models import CustomerEvent, validate_id
from .._models._wire import check_encodable
from ._base import Resource
from ._customer_fields import json_data

__all__ = ["CustomerEvents"]


class CustomerEvents(Resource):
    """The customer events resource; reach it as ``client.events``."""

    async def create(
        self, customer_id: int, name: str, *, data: Mapping[str, Any] | None = None
    ) -> CustomerEvent:
        """Record an event on a customer's profile ("User Actions") and return it.

        ``data`` holds the event's details: JSON values (an aware ``datetime`` is sent as
        Unix seconds). Never repeated once the request may have reached the server: an
        event recorded twice would show twice.

        Example:
            >>> await client.events.create(  # doctest: +SKIP
            ...     542335, "Button Click", data={"button": "Start Free Trial", "clicks": 2}
            ... )

        Raises:
            TypeError, ValueError: a bad argument, before anything is sent.
            NotFoundError: no such customer.
        """
        body: dict[str, Any] = {"customer": validate_id(customer_id, name="customer_id")}
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if not name.strip():
            raise ValueError("name must not be empty")
        check_encodable(name, "name")
        body["name"] = name
        if data is not None:
            if not isinstance(data, Mapping):
                raise TypeError(f"data must be a mapping, not {type(data).__name__}")
            body["data"] = json_data(data, "data")
        raw = await self._call(
            "POST", "/events", json_body=body, idempotent=False, operation="events.create"
        )
        return CustomerEvent.from_json(raw)
