"""The emulator's customer endpoints, and customer events.

List, search, get, create, update, replace, delete, batch and tags; each change is announced
by its ``customer.*`` webhook.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .._config import is_int
from ._customers import (
    InvalidWriteError,
    apply_write,
    blank_customer,
    render,
    short,
    tags_of,
    webhook_customer,
)
from ._query import OPERATORS, compare

if TYPE_CHECKING:
    from starlette.requests import Request

    from ._app import _Handlers

__all__ = ["customer_routes"]

#: What a customer search may filter on: the field -> how to read it from a customer.
_SEARCHABLE = {
    "id": ("id",),
    "name": ("name",),
    "email": ("email",),
    "userId": ("userId",),
    "company": ("company",),
    "phone": ("phone",),
    "firstSeen": ("firstSeen",),
    "lastSeen": ("lastSeen",),
    "city": ("location", "city"),
    "regionCode": ("location", "regionCode"),
    "countryCode": ("location", "countryCode"),
    "telegramId": ("telegramId",),
    "facebookId": ("facebookId",),
    "instagramId": ("instagramId",),
    "viberId": ("viberId",),
    "whatsappId": ("whatsappId",),
}
#: Most customers one batch request may carry, as documented.
MAX_BATCH = 10


def _read(customer: dict[str, Any], path: tuple[str, ...]) -> Any:
    current: Any = customer
    for part in path:
        current = current.get(part) if isinstance(current, dict) else None
    return current


class _Customers:
    """The endpoints, on the app's handlers (config, state, refusals, webhooks)."""

    def __init__(self, handlers: _Handlers) -> None:
        self.h = handlers
        self.state = handlers.state

    def show(self, customer: dict[str, Any], status: int = 200) -> Response:
        return JSONResponse(render(customer, self.h.config.payload_style), status_code=status)

    def find(self, raw: object) -> dict[str, Any]:
        customer = self.state.customers.get(raw) if is_int(raw) else None
        if customer is None:
            raise self.h.refuse(404, "entity_not_found", "Customer not found")
        return customer

    def page(self, items: list[dict[str, Any]], source: Any) -> Response:
        offset, limit = self.h.paging(source)
        style = self.h.config.payload_style
        shown = [render(c, style) for c in items[offset : offset + limit]]
        if style == "legacy":  # the older pages put total first
            return JSONResponse({"total": len(items), "data": shown})
        return JSONResponse({"data": shown, "total": len(items)})

    def ordered(self, items: list[dict[str, Any]], sort: object, order: object) -> list[Any]:
        if sort is None:
            return items
        field = str(sort).removeprefix("customers.")
        direction = str(order or "asc").lower()
        if field not in ("firstSeen", "lastSeen") or direction not in ("asc", "desc"):
            raise self.h.refuse(400, "sort", f"cannot sort by {sort!r} {order!r}")
        return sorted(items, key=lambda c: c.get(field) or 0, reverse=direction == "desc")

    async def every(self, request: Request) -> Response:
        query = request.query_params
        items = list(self.state.customers.values())
        return self.page(self.ordered(items, query.get("sort"), query.get("order")), query)

    async def search(self, request: Request) -> Response:
        body = await self.h.body_of(request)
        filters = body.get("filter")
        if not isinstance(filters, list) or not filters:
            raise self.h.refuse(400, "filter", "filter must be a non-empty list")
        tests = [self.condition(i, f) for i, f in enumerate(filters)]
        combine = any if str(body.get("comparison", "AND")).upper() == "OR" else all
        found = [c for c in self.state.customers.values() if combine(t(c) for t in tests)]
        return self.page(self.ordered(found, body.get("sort"), body.get("order")), body)

    def condition(self, index: int, given: object) -> Any:
        if not isinstance(given, dict) or given.get("operator") not in OPERATORS:
            raise self.h.refuse(400, f"filter[{index}].operator", "unknown operator")
        field = str(given.get("field", "")).removeprefix("customers.")
        operator, value = given["operator"], given.get("value")
        if field == "tagsData":
            names = (
                [t.get("name") for t in value if isinstance(t, dict)]
                if isinstance(value, list)
                else None
            )
            if not names or operator not in ("=", "!="):
                raise self.h.refuse(
                    400, f"filter[{index}].value", "tagsData takes = or != [{name}]"
                )
            wanted = {str(n).lower() for n in names}

            def has_tags(customer: dict[str, Any]) -> bool:
                has = wanted <= {t["name"].lower() for t in customer["tags"]}
                return has if operator == "=" else not has

            return has_tags
        path = _SEARCHABLE.get(field)
        if path is None or not str(given.get("field", "")).startswith("customers."):
            raise self.h.refuse(400, f"filter[{index}].field", "This value is not valid.")
        return lambda customer: compare(_read(customer, path), operator, value)

    async def get(self, request: Request) -> Response:
        return self.show(self.find(int(request.path_params["customer_id"])))

    async def create(self, request: Request) -> Response:
        body = await self.h.body_of(request)
        with self.state.lock:
            customer_id = self.state.next_customer_id
            self.state.next_customer_id += 1
        customer = blank_customer(customer_id)
        self.write(customer, body, replace=False, announce=False)
        self.state.customers[customer_id] = customer
        self.h.announce("customer.new", webhook_customer(customer))
        return self.show(customer)

    async def patch(self, request: Request) -> Response:
        return await self.change(request, replace=False)

    async def put(self, request: Request) -> Response:
        return await self.change(request, replace=True)

    async def change(self, request: Request, *, replace: bool) -> Response:
        customer = self.find(int(request.path_params["customer_id"]))
        self.write(customer, await self.h.body_of(request), replace=replace)
        return self.show(customer)

    def write(
        self,
        customer: dict[str, Any],
        body: dict[str, Any],
        *,
        replace: bool,
        announce: bool = True,
    ) -> None:
        """Apply a body to a copy first: a refused write changes nothing."""
        draft = json.loads(json.dumps(customer))
        try:
            before = apply_write(draft, body, replace=replace)
        except InvalidWriteError as exc:
            raise self.h.refuse(400, exc.code, str(exc)) from None
        user_id = draft.get("userId")
        others = (c for c in self.state.customers.values() if c["id"] != draft["id"])
        if user_id is not None and any(c["userId"] == user_id for c in others):
            raise self.h.refuse(400, "invalid_userId_value", "This userId is already in use.")
        customer.clear()
        customer.update(draft)
        if announce:
            self.announce_changes(before, customer)

    def announce_changes(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        data = webhook_customer(after)
        if before["email"] != after["email"]:
            self.h.announce("customer.email_updated", data)
        if before["tags"] != after["tags"]:
            self.h.announce("customer.tags_changed", data)
        for flag, on, off in (
            ("unsubscribed", "customer.unsubscribed", "customer.subscribed"),
            ("blocked", "customer.blocked", "customer.unblocked"),
        ):
            if before[flag] != after[flag]:
                self.h.announce(on if after[flag] else off, data)
        # A chat shows its customer as the customer is now.
        for chat in self.state.chats.values():
            if chat["customer"] and chat["customer"].get("id") == after["id"]:
                chat["customer"] = short(after)

    async def delete(self, request: Request) -> Response:
        customer = self.find(int(request.path_params["customer_id"]))
        del self.state.customers[customer["id"]]
        self.h.announce("customer.deleted", webhook_customer(customer))
        # The docs say only that the body is "Ok": one style sends it bare, one as JSON.
        if self.h.config.payload_style == "legacy":
            return JSONResponse("Ok")
        return PlainTextResponse("Ok")

    async def batch(self, request: Request) -> Response:
        try:
            items = json.loads(await request.body())
        except ValueError:
            raise self.h.refuse(400, "invalid_request", "Body is not valid JSON") from None
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
            raise self.h.refuse(400, "invalid_request", f"Send 1 to {MAX_BATCH} customers.")
        changes = []
        for item in items:
            if not isinstance(item, dict):
                raise self.h.refuse(400, "invalid_request", "Each item must be an object.")
            fields = dict(item)
            customer_id = fields.pop("customer", None)
            if not is_int(customer_id):
                raise self.h.refuse(400, "customer", "This value should be of type numeric.")
            changes.append((self.find(customer_id), fields))
        for customer, fields in changes:  # the older example sends partial items: merged
            self.write(customer, fields, replace=False)
        return JSONResponse([render(c, self.h.config.payload_style) for c, _ in changes])

    async def tag(self, request: Request) -> Response:
        customer, tags = await self.tags_in(request)
        known = {t["name"] for t in customer["tags"]}
        added = [t for t in tags if t["name"] not in known]
        self.write(customer, {"tags": customer["tags"] + added}, replace=False)
        return self.show(customer)

    async def untag(self, request: Request) -> Response:
        customer, tags = await self.tags_in(request)
        gone = {t["name"] for t in tags}
        kept = [t for t in customer["tags"] if t["name"] not in gone]
        self.write(customer, {"tags": kept}, replace=False)
        return self.show(customer)

    async def tags_in(self, request: Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        customer = self.find(int(request.path_params["customer_id"]))
        body = await self.h.body_of(request)
        try:
            tags = tags_of(body.get("tags"))
        except InvalidWriteError as exc:
            raise self.h.refuse(400, exc.code, str(exc)) from None
        if not tags:
            raise self.h.refuse(400, "tags", "Give at least one tag.")
        return customer, tags

    async def event(self, request: Request) -> Response:
        body = await self.h.body_of(request)
        if not is_int(body.get("customer")):
            raise self.h.refuse(400, "customer", "This value should be of type numeric.")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.h.refuse(400, "name", "This value should not be blank.")
        data = body.get("data", {})
        if not isinstance(data, dict):
            raise self.h.refuse(400, "data", "This value should be of type object.")
        customer = self.find(body["customer"])
        now = int(time.time())
        event = {"id": len(self.state.customer_events) + 1, "name": name, "data": data}
        self.state.customer_events.append({**event, "customer": customer["id"], "createdAt": now})
        if self.h.config.payload_style == "legacy":
            return JSONResponse({**event, "createdAt": now, "customer": customer["id"]})
        return JSONResponse({**event, "createdAt": str(now)})


def customer_routes(handlers: _Handlers) -> list[Route]:
    """The customer and event routes of an app whose endpoints are ``handlers``."""
    c = _Customers(handlers)
    one = "/v1/customers/{customer_id:int}"
    return [
        Route("/v1/customers", c.every, methods=["GET"]),
        Route("/v1/customers", c.create, methods=["POST"]),
        Route("/v1/customers/search", c.search, methods=["POST"]),
        Route("/v1/customers/batch", c.batch, methods=["PUT"]),
        Route(one, c.get, methods=["GET"]),
        Route(one, c.patch, methods=["PATCH"]),
        Route(one, c.put, methods=["PUT"]),
        Route(one, c.delete, methods=["DELETE"]),
        Route(one + "/tags", c.tag, methods=["PUT"]),
        Route(one + "/tags", c.untag, methods=["DELETE"]),
        Route("/v1/events", c.event, methods=["POST"]),
    ]
