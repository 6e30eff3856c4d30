"""The emulator's front door: auth, the rate limit and injected faults, and the error bodies.

``FrontDoor`` is ASGI middleware in front of the endpoints; ``error_response`` builds the
API's error answers, in either documented style, for it and for the endpoints alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ._state import EmulatorConfig, EmulatorState

__all__ = ["DroppedConnectionError", "FrontDoor", "error_response"]

# Older-style code -> (newer-style code, message).
_CODES = {
    "invalid_token": ("unauthorized", "Invalid token"),
    "chat_not_found": ("not_found", "Chat not found"),
    "entity_not_found": ("not_found", "Entity not found"),
    "too_many_requests": ("too_many_requests", "You have exceeded your requests limit"),
    "invalid_chat_value": ("status", "status value is invalid"),
}


class DroppedConnectionError(Exception):
    """Raised inside the app to make the server cut a connection (a fault, on purpose)."""


def error_response(
    config: EmulatorConfig, status: int, code: str, message: str | None = None
) -> Response:
    """An error answer in the configured style; ``code`` is the older style's."""
    newer, default = _CODES.get(code, (code, code))
    text = message or default
    if config.error_style == "newer":
        entries = [{"code": "invalid_request", "message": "Invalid request"}]
        entries.append({"code": newer, "message": text})
    else:
        entries = [{"code": code, "message": text}]
    return JSONResponse({"errors": entries}, status_code=status)


class FrontDoor:
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
            await error_response(config, 401, "invalid_token")(scope, receive, send)
            return
        # The event loop's clock: monotonic when served, virtual under a test's MockClock.
        if not state.admit(anyio.current_time()):
            await error_response(config, 429, "too_many_requests")(scope, receive, send)
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
