"""The emulator's HTTP surface: a Starlette app speaking HelpCrunch's chats API."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._state import STATUSES, EmulatorConfig, EmulatorState

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DroppedConnectionError", "create_app"]

# Older-style code -> (newer-style code, message).
_CODES = {
    "invalid_token": ("unauthorized", "Invalid token"),
    "chat_not_found": ("not_found", "Chat not found"),
    "too_many_requests": ("too_many_requests", "You have exceeded your requests limit"),
    "invalid_chat_value": ("status", "status value is invalid"),
}
_ACCEPTED = {
    "spec": set(STATUSES),
    # The legacy server spells on-hold with a space and takes no other spelling of it.
    "legacy": (set(STATUSES) - {"on-hold"}) | {"on hold"},
}
_TIMESTAMPS = ("closedAt", "createdAt", "lastMessageAt", "lastCustomerMessageAt", "snoozedUntil")
_SORTS = {"createdAt", "lastCustomerMessageAt", "lastMessageAt", "closedAt"}
_OPERATORS = {"=", "!=", ">", "<", ">=", "<=", "~", "!~"}


class DroppedConnectionError(Exception):
    """Raised inside the app to make the server cut a connection (a fault, on purpose)."""


def _error(config: EmulatorConfig, status: int, code: str, message: str | None = None) -> Response:
    newer, default = _CODES.get(code, (code, code))
    text = message or default
    if config.error_style == "newer":
        entries = [{"code": "invalid_request", "message": "Invalid request"}]
        entries.append({"code": newer, "message": text})
    else:
        entries = [{"code": code, "message": text}]
    return JSONResponse({"errors": entries}, status_code=status)


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


class _Faults:
    """ASGI middleware: latency, auth, the rate limit, then the injected faults."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state, config = self.state, self.state.config
        faults = config.faults
        if faults.latency or faults.jitter:
            await anyio.sleep(faults.latency + state.random.random() * faults.jitter)
        headers = dict(scope["headers"])
        if headers.get(b"authorization", b"") != f"Bearer {config.api_key}".encode():
            await _error(config, 401, "invalid_token")(scope, receive, send)
            return
        if not state.admit(time.monotonic()):
            await _error(config, 429, "too_many_requests")(scope, receive, send)
            return
        dice = state.random.random()
        if dice < faults.server_errors:
            status = state.random.choice((500, 502, 503))
            await Response("<html>upstream failure</html>", status, media_type="text/html")(
                scope, receive, send
            )
            return
        dice -= faults.server_errors
        if dice < faults.dropped:
            await self.app(scope, receive, _dropping(send))
            return
        dice -= faults.dropped
        if dice < faults.truncated:
            await self.app(scope, receive, _truncating(send))
            return
        await self.app(scope, receive, send)


def _dropping(send: Send) -> Send:
    """Send the headers, then cut the connection: the work is done, the answer is lost."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise DroppedConnectionError
        await send(message)

    return wrapped


def _truncating(send: Send) -> Send:
    """Answer with the body cut in half (and a Content-Length that matches the cut)."""
    start: dict[str, Any] = {}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        body = message.get("body", b"")[: len(message.get("body", b"")) // 2]
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


class _Handlers:
    """The endpoints; one instance per app, holding its config and state."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState) -> None:
        self.config = config
        self.state = state

    async def body_of(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(self.config, 400, "invalid_request", "Body is not valid JSON")
        if not isinstance(body, dict):
            return _error(self.config, 400, "invalid_request", "Body must be a JSON object")
        return body

    def find(self, raw: object) -> dict[str, Any] | Response:
        if isinstance(raw, bool) or not isinstance(raw, int):
            return _error(self.config, 400, "id", "id must be an integer")
        chat = self.state.chats.get(raw)
        if chat is None:
            return _error(self.config, 404, "chat_not_found")
        return chat

    def ok(self, chat: dict[str, Any], status: int = 200) -> Response:
        return JSONResponse(_render(self.config, chat), status_code=status)

    async def update(self, request: Request, field: str, apply: Any) -> Response:
        body = await self.body_of(request)
        if isinstance(body, Response):
            return body
        chat = self.find(body.get("id"))
        if isinstance(chat, Response):
            return chat
        if field not in body:
            return _error(self.config, 400, field, f"{field} is required")
        problem = apply(chat, body[field])
        return problem if isinstance(problem, Response) else self.ok(chat)

    def set_status(self, chat: dict[str, Any], value: object) -> Response | None:
        if not isinstance(value, str) or value not in _ACCEPTED[self.config.payload_style]:
            return _error(self.config, 400, "invalid_chat_value")
        chat["status"] = _canonical_status(value)
        closed = chat["status"] == "closed"
        chat["closedAt"] = int(time.time()) if closed else None
        chat["closedBy"] = "agent" if closed else None
        return None

    def set_assignee(self, chat: dict[str, Any], value: object) -> Response | None:
        agent = next((a for a in self.state.agents if a["id"] == value), None)
        if value is not None and agent is None:
            return _error(self.config, 400, "assignee", "Agent not found")
        chat["assignee"] = agent
        return None

    def set_department(self, chat: dict[str, Any], value: object) -> Response | None:
        department = next((d for d in self.state.departments if d["id"] == value), None)
        if department is None:
            return _error(self.config, 400, "department", "Department not found")
        chat["department"] = department
        return None

    def set_snooze(self, chat: dict[str, Any], value: object) -> Response | None:
        if isinstance(value, str) and value.isdigit():
            value = int(value)  # one doc version sends the number as a string
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return _error(self.config, 400, "snoozedUntil", "snoozedUntil must be a timestamp")
        chat["snoozedUntil"] = value
        return None

    async def put_status(self, request: Request) -> Response:
        return await self.update(request, "status", self.set_status)

    async def put_assignee(self, request: Request) -> Response:
        return await self.update(request, "assignee", self.set_assignee)

    async def put_department(self, request: Request) -> Response:
        return await self.update(request, "department", self.set_department)

    async def put_snooze(self, request: Request) -> Response:
        return await self.update(request, "snoozedUntil", self.set_snooze)

    async def get_chat(self, request: Request) -> Response:
        chat = self.find(int(request.path_params["chat_id"]))
        return chat if isinstance(chat, Response) else self.ok(chat)

    def page(self, items: list[dict[str, Any]], offset: int, limit: int) -> Response:
        chunk = [_render(self.config, c) for c in items[offset : offset + limit]]
        return JSONResponse({"data": chunk, "meta": {"total": len(items)}})

    def paging(self, source: Any) -> tuple[int, int] | Response:
        try:
            offset = int(source.get("offset", 0))
            limit = int(source.get("limit", 100))
        except (TypeError, ValueError):
            return _error(self.config, 400, "invalid_request", "offset and limit must be integers")
        if offset < 0 or not 1 <= limit <= 100:
            return _error(self.config, 400, "limit", "limit must be between 1 and 100")
        return offset, limit

    def sorted_chats(self, items: list[dict[str, Any]], sort: object, order: object) -> Any:
        if sort is None:
            return items
        field = str(sort).removeprefix("chats.")
        if field not in _SORTS or order not in (None, "asc", "desc"):
            return _error(self.config, 400, "sort", f"cannot sort by {sort!r} {order!r}")
        return sorted(items, key=lambda c: c.get(field) or 0, reverse=order == "desc")

    async def list_chats(self, request: Request) -> Response:
        bounds = self.paging(request.query_params)
        if isinstance(bounds, Response):
            return bounds
        items = self.sorted_chats(
            list(self.state.chats.values()),
            request.query_params.get("sort"),
            request.query_params.get("order"),
        )
        return items if isinstance(items, Response) else self.page(items, *bounds)

    async def search(self, request: Request) -> Response:
        body = await self.body_of(request)
        if isinstance(body, Response):
            return body
        bounds = self.paging(body)
        if isinstance(bounds, Response):
            return bounds
        filters = body.get("filter")
        if not isinstance(filters, list) or not filters:
            return _error(self.config, 400, "filter", "filter must be a non-empty list")
        tests = []
        for i, f in enumerate(filters):
            if not isinstance(f, dict) or f.get("operator") not in _OPERATORS:
                return _error(self.config, 400, f"filter[{i}].operator", "unknown operator")
            path = str(f.get("field", "")).split(".")
            if path[0] != "chats" and path[0] != "customer":
                return _error(self.config, 400, f"filter[{i}].field", "unknown field")
            tests.append((path, f["operator"], f.get("value")))
        combine = any if body.get("comparison") == "OR" else all
        matched = [c for c in self.state.chats.values() if combine(_match(c, *t) for t in tests)]
        items = self.sorted_chats(matched, body.get("sort"), body.get("order"))
        return items if isinstance(items, Response) else self.page(items, *bounds)

    async def create_chat(self, request: Request) -> Response:
        body = await self.body_of(request)
        if isinstance(body, Response):
            return body
        for field in ("customer", "application"):
            if isinstance(body.get(field), bool) or not isinstance(body.get(field), int):
                return _error(self.config, 400, field, f"{field} is required")
        with self.state.lock:
            chat_id = self.state.next_id
            self.state.next_id += 1
        now = int(time.time())
        chat = self.state.seed_chat(chat_id, now)
        chat.update(status="new", createdAt=now, customer={"id": body["customer"]}, agents=[])
        chat["applicationId"] = body["application"]
        self.state.chats[chat_id] = chat
        for field, setter in (("assignee", self.set_assignee), ("department", self.set_department)):
            if body.get(field) is not None:
                problem = setter(chat, body[field])
                if problem is not None:
                    return problem
        return self.ok(chat, 201)

    async def messages(self, request: Request) -> Response:
        chat = self.find(int(request.path_params["chat_id"]))
        if isinstance(chat, Response):
            return chat
        bounds = self.paging(request.query_params)
        if isinstance(bounds, Response):
            return bounds
        offset, limit = bounds
        items = [
            {
                "id": chat["id"] * 10 + i,
                "text": f"message {i + 1}",
                "from": "customer" if i % 2 == 0 else "agent",
                "createdAt": chat["createdAt"] + 60 * i,
            }
            for i in range(4)
        ]
        return JSONResponse({"data": items[offset : offset + limit], "total": len(items)})


def create_app(config: EmulatorConfig | None = None) -> tuple[ASGIApp, EmulatorState]:
    """Build the emulator's ASGI app and the state it serves."""
    config = EmulatorConfig() if config is None else config
    state = EmulatorState(config)
    handlers = _Handlers(config, state)
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
    ]
    return _Faults(Starlette(routes=routes), state), state


def _match(chat: dict[str, Any], path: list[str], operator: str, value: Any) -> bool:
    current: Any = chat
    for part in path[1:]:
        current = current.get(part) if isinstance(current, dict) else None
    if isinstance(current, dict):
        current = current.get("id")
    if path[-1] == "status" and isinstance(value, str):
        value = _canonical_status(value)
    if operator in ("~", "!~"):
        found = str(value).lower() in str(current or "").lower()
        return found if operator == "~" else not found
    if operator in ("=", "!="):
        same = str(current) == str(value) if current is not None else value is None
        return same if operator == "=" else not same
    try:
        left, right = float(current), float(value)
    except (TypeError, ValueError):
        return False
    return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[
        operator
    ]
