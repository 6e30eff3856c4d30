"""What the emulator received and what it announced, kept for tests to assert on.

``Recorder`` is ASGI middleware in front of everything else (the front door included), so
that a request refused with a 401 or a 429 is recorded too; the app's handlers add each
webhook event they cause. Both lists are bounded: a long-running emulator keeps the latest.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import attrs

from .._errors import ResponseValidationError
from .._models._json import decode_json

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_RECORDED_BODY", "RECORD_SIZE", "ReceivedRequest", "Recorder", "Recording"]

#: Requests, and webhook events, kept at most: the latest ones.
RECORD_SIZE = 1000
#: The largest body kept (decoded) with its request: the SDK's are a few KiB at most, and
#: the record of a long-running emulator stays bounded whatever it is sent.
MAX_RECORDED_BODY = 64 * 1024
#: The API's root on the emulator; recorded paths are relative to it, as the SDK's are.
API_ROOT = "/v1"


@attrs.frozen
class ReceivedRequest:
    """One request the emulator received, as it arrived.

    Attributes:
        method: ``"PUT"``, ``"GET"``...
        path: Relative to the API root, as ``HelpCrunch.request`` takes it
            (``"/chats/status"``); a path outside the root is kept whole.
        query: The query string's parameters (the last value of a repeated one).
        json: The body, decoded; ``None`` for no body, one that is not JSON, or one over
            ``MAX_RECORDED_BODY`` bytes (64 KiB).
        status: The status the emulator answered (401 and 429 included); ``None`` while
            the answer has not started.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    status: int | None = None


@attrs.define
class _Entry:
    """A request being recorded: its status comes when the answer starts."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    status: int | None = None


def _decoded(body: bytes) -> Any:
    if not body or len(body) > MAX_RECORDED_BODY:
        return None
    try:
        return decode_json(body)
    except ResponseValidationError:
        return None


class Recording:
    """The latest requests received and webhook events caused; safe to read from any thread."""

    def __init__(self, size: int = RECORD_SIZE) -> None:
        self._lock = threading.Lock()
        self._requests: deque[_Entry] = deque(maxlen=size)
        self._events: deque[dict[str, Any]] = deque(maxlen=size)

    def received(self, scope: Scope, body: bytes) -> _Entry:
        """Record a request that just arrived; the caller fills its status in later."""
        path: str = scope["path"]
        if path.startswith(f"{API_ROOT}/"):
            path = path.removeprefix(API_ROOT)
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        entry = _Entry(scope["method"], path, query, _decoded(body))
        with self._lock:
            self._requests.append(entry)
        return entry

    def announced(self, envelope: dict[str, Any]) -> None:
        """Record a webhook event a change caused (its envelope, as HelpCrunch sends it)."""
        with self._lock:
            self._events.append(envelope)

    def requests(self) -> list[ReceivedRequest]:
        """The requests received, oldest first."""
        with self._lock:
            return [ReceivedRequest(**attrs.asdict(entry)) for entry in self._requests]

    def events(self) -> list[dict[str, Any]]:
        """The webhook events caused, oldest first."""
        with self._lock:
            return list(self._events)


class Recorder:
    """ASGI middleware: read each request's body, record it, and replay it to the app."""

    def __init__(self, app: ASGIApp, recording: Recording) -> None:
        self.app = app
        self.recording = recording

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending it all
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        entry = self.recording.received(scope, body)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # past the body: what the server says next (a disconnect)
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        await self.app(scope, replay, answer)
