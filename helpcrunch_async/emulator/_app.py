"""The emulator's HTTP surface: a Starlette app speaking HelpCrunch's API.

Chats, messages, agents and departments are here; customers, ratings and read marks, and
the account have modules of their own.

A handler refuses a request by raising ``_Refusal`` (a Starlette ``HTTPException`` holding
the error answer), from however deep it finds the problem; one exception handler sends it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._config import is_int
from ._account import account_routes
from ._chat_marks import chat_mark_routes
from ._customer_routes import customer_routes
from ._customers import short
from ._front import FrontDoor, error_response
from ._query import OPERATORS, compare
from ._recording import Recorder
from ._state import STATUSES, EmulatorConfig, EmulatorState
from ._webhooks import WebhookSender, envelope, message_event, webhook_chat

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp

__all__ = ["create_app"]

_ACCEPTED = {
    "spec": set(STATUSES),
    # The legacy server spells on-hold with a space and takes no other spelling of it.
    "legacy": (set(STATUSES) - {"on-hold"}) | {"on hold"},
}
_TIMESTAMPS = ("closedAt", "createdAt", "lastMessageAt", "lastCustomerMessageAt", "snoozedUntil")
#: What a seeded chat has from its made-up past, and a created one does not have yet.
_HISTORY = (
    "assignee",
    "department",
    "rating",
    "lastMessageText",
    "lastMessageId",
    "lastMessageAt",
    "lastCustomerMessageAt",
    "lastCommunicatedAgentId",
)
_SORTS = {"createdAt", "lastCustomerMessageAt", "lastMessageAt", "closedAt"}


def _render(config: EmulatorConfig, chat: dict[str, Any]) -> dict[str, Any]:
    if config.payload_style == "spec":
        return chat
    out = dict(chat)
    for key in _TIMESTAMPS:
        if out.get(key) is not None:
            out[key] = f"{out[key]:.3f}"
    out["agents"] = chat["agents"][0] if chat["agents"] else {}
    if out["status"] == "on-hold":
        out["status"] = "on hold"
    return out


def _canonical_status(value: str) -> str:
    return "on-hold" if value in ("on hold", "onhold") else value


class _Refusal(HTTPException):
    """An API error answer, raised from any depth of a handler; ``_refused`` renders it."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _refused(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Refusal)  # noqa: S101 - registered for this class only
    return exc.response


class _Handlers:
    """The endpoints; one instance per app, holding its config and state."""

    def __init__(
        self, config: EmulatorConfig, state: EmulatorState, webhooks: WebhookSender | None
    ) -> None:
        self.config = config
        self.state = state
        self.webhooks = webhooks

    def refuse(self, status: int, code: str, message: str | None = None) -> _Refusal:
        return _Refusal(error_response(self.config, status, code, message))

    def announce(self, event: str, data: dict[str, Any]) -> None:
        wrapped = envelope(event, data)
        self.state.recording.announced(wrapped)
        if self.webhooks is not None:
            self.webhooks.emit(wrapped)

    async def body_of(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise self.refuse(400, "invalid_request", "Body is not valid JSON") from None
        if not isinstance(body, dict):
            raise self.refuse(400, "invalid_request", "Body must be a JSON object")
        return body

    def find(self, raw: object) -> dict[str, Any]:
        if not is_int(raw):
            raise self.refuse(400, "id", "id must be an integer")
        chat = self.state.chats.get(raw)
        if chat is None:
            raise self.refuse(404, "chat_not_found")
        return chat

    def ok(self, chat: dict[str, Any], status: int = 200) -> Response:
        return JSONResponse(_render(self.config, chat), status_code=status)

    async def update(
        self, request: Request, field: str, apply: Callable[[dict[str, Any], object], list[str]]
    ) -> Response:
        body = await self.body_of(request)
        chat = self.find(body.get("id"))
        if field not in body:
            raise self.refuse(400, field, f"{field} is required")
        for event in apply(chat, body[field]):
            self.announce(event, webhook_chat(chat))
        return self.ok(chat)

    def set_status(self, chat: dict[str, Any], value: object) -> list[str]:
        if not isinstance(value, str) or value not in _ACCEPTED[self.config.payload_style]:
            raise self.refuse(400, "invalid_chat_value")
        chat["status"] = _canonical_status(value)
        closed = chat["status"] == "closed"
        chat["closedAt"] = int(time.time()) if closed else None
        chat["closedBy"] = "agent" if closed else None
        return ["chat.status_updated", "chat.closed"] if closed else ["chat.status_updated"]

    def set_assignee(self, chat: dict[str, Any], value: object) -> list[str]:
        agent = self.agent(value)
        if value is not None and agent is None:
            raise self.refuse(400, "assignee", "Agent not found")
        chat["assignee"] = agent
        return ["chat.assigned"]

    def set_department(self, chat: dict[str, Any], value: object) -> list[str]:
        department = next((d for d in self.state.departments if d["id"] == value), None)
        if department is None:
            raise self.refuse(400, "department", "Department not found")
        chat["department"] = department
        return []  # HelpCrunch documents no webhook for a department change

    def set_snooze(self, chat: dict[str, Any], value: object) -> list[str]:
        if isinstance(value, str) and value.isdigit():
            value = int(value)  # one doc version sends the number as a string
        if value is not None and not is_int(value):
            raise self.refuse(400, "snoozedUntil", "snoozedUntil must be a timestamp")
        chat["snoozedUntil"] = value
        return ["chat.unsnoozed" if value is None else "chat.snoozed"]

    def agent(self, value: object) -> dict[str, Any] | None:
        return next((a for a in self.state.agents if a["id"] == value), None)

    async def put_status(self, request: Request) -> Response:
        return await self.update(request, "status", self.set_status)

    async def put_assignee(self, request: Request) -> Response:
        return await self.update(request, "assignee", self.set_assignee)

    async def put_department(self, request: Request) -> Response:
        return await self.update(request, "department", self.set_department)

    async def put_snooze(self, request: Request) -> Response:
        return await self.update(request, "snoozedUntil", self.set_snooze)

    async def get_chat(self, request: Request) -> Response:
        return self.ok(self.find(int(request.path_params["chat_id"])))

    def page(self, items: list[dict[str, Any]], offset: int, limit: int) -> Response:
        chunk = [_render(self.config, c) for c in items[offset : offset + limit]]
        return JSONResponse({"data": chunk, "meta": {"total": len(items)}})

    def paging(self, source: Any) -> tuple[int, int]:
        try:
            offset = int(source.get("offset", 0))
            limit = int(source.get("limit", 100))
        except (TypeError, ValueError):
            raise self.refuse(400, "invalid_request", "offset and limit must be integers") from None
        if offset < 0 or not 1 <= limit <= 100:
            raise self.refuse(400, "limit", "limit must be between 1 and 100")
        return offset, limit

    def sorted_chats(
        self, items: list[dict[str, Any]], sort: object, order: object
    ) -> list[dict[str, Any]]:
        if sort is None:
            return items
        field = str(sort).removeprefix("chats.")
        if field not in _SORTS or order not in (None, "asc", "desc"):
            raise self.refuse(400, "sort", f"cannot sort by {sort!r} {order!r}")
        return sorted(items, key=lambda c: c.get(field) or 0, reverse=order == "desc")

    async def list_chats(self, request: Request) -> Response:
        bounds = self.paging(request.query_params)
        items = self.sorted_chats(
            list(self.state.chats.values()),
            request.query_params.get("sort"),
            request.query_params.get("order"),
        )
        return self.page(items, *bounds)

    async def search(self, request: Request) -> Response:
        body = await self.body_of(request)
        bounds = self.paging(body)
        filters = body.get("filter")
        if not isinstance(filters, list) or not filters:
            raise self.refuse(400, "filter", "filter must be a non-empty list")
        tests = []
        for i, f in enumerate(filters):
            if not isinstance(f, dict) or f.get("operator") not in OPERATORS:
                raise self.refuse(400, f"filter[{i}].operator", "unknown operator")
            path = str(f.get("field", "")).split(".")
            if path[0] != "chats" and path[0] != "customer":
                raise self.refuse(400, f"filter[{i}].field", "unknown field")
            tests.append((path, f["operator"], f.get("value")))
        combine = any if body.get("comparison") == "OR" else all
        matched = [c for c in self.state.chats.values() if combine(_match(c, *t) for t in tests)]
        return self.page(self.sorted_chats(matched, body.get("sort"), body.get("order")), *bounds)

    async def create_chat(self, request: Request) -> Response:
        body = await self.body_of(request)
        for field in ("customer", "application"):
            if not is_int(body.get(field)):
                raise self.refuse(400, field, f"{field} is required")
        with self.state.lock:
            chat_id = self.state.next_id
            self.state.next_id += 1
        now = int(time.time())
        chat = self.state.seed_chat(chat_id, now)
        known = self.state.customers.get(body["customer"])
        customer = short(known) if known else {"id": body["customer"]}
        chat.update(status="new", createdAt=now, customer=customer, agents=[])
        # A new chat has no history: nothing of the seeded dice's conversation applies to it.
        chat.update(dict.fromkeys(_HISTORY))
        chat["applicationId"] = body["application"]
        self.state.chats[chat_id] = chat
        for field, setter in (("assignee", self.set_assignee), ("department", self.set_department)):
            if body.get(field) is not None:
                setter(chat, body[field])
        self.announce("chat.new", webhook_chat(chat))
        return self.ok(chat, 201)

    async def messages(self, request: Request) -> Response:
        chat = self.find(int(request.path_params["chat_id"]))
        offset, limit = self.paging(request.query_params)
        items = [
            {
                "id": chat["id"] * 10 + i,
                "text": f"message {i + 1}",
                "from": "customer" if i % 2 == 0 else "agent",
                "createdAt": chat["createdAt"] + 60 * i,
            }
            for i in range(4)
        ]
        items += [_public_message(m) for m in self.state.messages.get(chat["id"], [])]
        return JSONResponse({"data": items[offset : offset + limit], "total": len(items)})

    async def post_message(self, request: Request) -> Response:
        body = await self.body_of(request)
        chat_id = body.get("chat")
        if not is_int(chat_id):
            raise self.refuse(400, "invalid_chat_value", "Invalid chat ID")
        chat = self.find(chat_id)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise self.refuse(400, "text", "text is required")
        kind = body.get("type", "message")
        if kind not in ("message", "private"):
            raise self.refuse(400, "type", "type must be message or private")
        agent = None
        if body.get("agent") is not None:
            agent = self.agent(body["agent"])
            if agent is None:
                raise self.refuse(404, "entity_not_found", "Agent not found")
        message = self.state.add_message(chat, text, agent, private=kind == "private")
        if "markdownText" in body:
            message["markdownText"] = body["markdownText"]
        if kind == "private":
            event = "message.private"
        else:
            event = "message.chat.agent" if agent else "message.chat.customer"
        self.announce(event, message_event(chat, message))
        shown = _public_message(message)
        return JSONResponse({"data": shown} if self.config.payload_style == "legacy" else shown)

    async def list_agents(self, request: Request) -> Response:
        offset, limit = self.paging(request.query_params)
        agents = self.state.agents
        return JSONResponse(
            {"data": agents[offset : offset + limit], "meta": {"total": len(agents)}}
        )

    def department(self, department: dict[str, Any]) -> dict[str, Any]:
        members = self.state.department_agents.get(department["id"], [])
        return {**department, "agents": [a for a in self.state.agents if a["id"] in members]}

    async def list_departments(self, _: Request) -> Response:
        items = [self.department(d) for d in self.state.departments]
        # The docs' versions show the bare list and the usual envelope.
        return JSONResponse(items if self.config.payload_style == "legacy" else {"data": items})

    async def get_department(self, request: Request) -> Response:
        wanted = int(request.path_params["department_id"])
        found = next((d for d in self.state.departments if d["id"] == wanted), None)
        if found is None:
            raise self.refuse(404, "entity_not_found", "Department not found")
        return JSONResponse(self.department(found))


def _public_message(message: dict[str, Any]) -> dict[str, Any]:
    """A posted message as the REST API shows it (``from``, the agent's id, no internals)."""
    agent = message["agent"]
    return {
        "id": message["id"],
        "text": message["text"],
        "from": "agent" if agent else "customer",
        "type": message["type"],
        "agent": agent["id"] if agent else None,
        "createdAt": message["createdAt"],
    }


def create_app(config: EmulatorConfig | None = None) -> tuple[ASGIApp, EmulatorState]:
    """Build the emulator's ASGI app and the state it serves.

    With ``config.webhook_url``, the app's lifespan runs the webhook sender: serve it with
    lifespan on (``serve()`` and ``run()`` do).
    """
    config = EmulatorConfig() if config is None else config
    state = EmulatorState(config)
    webhooks = None if config.webhook_url is None else WebhookSender(config)
    state.webhooks = webhooks
    handlers = _Handlers(config, state, webhooks)
    routes = [
        Route("/v1/chats/status", handlers.put_status, methods=["PUT"]),
        Route("/v1/chats/assignee", handlers.put_assignee, methods=["PUT"]),
        Route("/v1/chats/department", handlers.put_department, methods=["PUT"]),
        Route("/v1/chats/snooze", handlers.put_snooze, methods=["PUT"]),
        Route("/v1/chats/search", handlers.search, methods=["POST"]),
        Route("/v1/chats", handlers.list_chats, methods=["GET"]),
        Route("/v1/chats", handlers.create_chat, methods=["POST"]),
        Route("/v1/chats/{chat_id:int}", handlers.get_chat, methods=["GET"]),
        Route("/v1/chats/{chat_id:int}/messages", handlers.messages, methods=["GET"]),
        Route("/v1/messages", handlers.post_message, methods=["POST"]),
        Route("/v1/agents", handlers.list_agents, methods=["GET"]),
        Route("/v1/departments", handlers.list_departments, methods=["GET"]),
        Route("/v1/departments/{department_id:int}", handlers.get_department, methods=["GET"]),
        *chat_mark_routes(handlers),
        *customer_routes(handlers),
        *account_routes(handlers),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if webhooks is None:
            yield
            return
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(webhooks.run)
            yield
            tasks.cancel_scope.cancel()

    app = Starlette(routes=routes, exception_handlers={_Refusal: _refused}, lifespan=lifespan)
    return Recorder(FrontDoor(app, state), state.recording), state


def _match(chat: dict[str, Any], path: list[str], operator: str, value: Any) -> bool:
    current: Any = chat
    for part in path[1:]:
        current = current.get(part) if isinstance(current, dict) else None
    if isinstance(current, dict):
        current = current.get("id")
    if path[-1] == "status" and isinstance(value, str):
        value = _canonical_status(value)
    return compare(current, operator, value)
