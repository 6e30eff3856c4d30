"""Fleet tests' tools: the emulator with an audit of every status update, and its checks.

The audit notes each ``PUT /v1/chats/status`` as it arrives (the emulator's clock, the chat
id, the answer's status), so a test can tell which chat was updated twice, the busiest
window, and the time from the first update to the last: what a fleet's speed is judged on,
whatever its workers' start-up took.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Audit:
    """ASGI middleware in front of the emulator: every status update, as it arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: (arrival, chat id, HTTP status) of each status update.
        self.updates: list[tuple[float, int | None, int]] = []

    def wrap(self, app: App) -> App:
        """``app`` with every status update noted."""

        async def audited(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"] != "/v1/chats/status":
                await app(scope, receive, send)
                return
            arrived = time.monotonic()
            messages = [await receive()]
            while messages[-1]["type"] == "http.request" and messages[-1].get("more_body"):
                messages.append(await receive())
            body = b"".join(m.get("body", b"") for m in messages)
            replay = iter(messages)
            status = [0]

            async def replayed() -> Message:
                return next(replay, None) or await receive()

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await app(scope, replayed, sending)
            finally:
                chat_id = json.loads(body).get("id") if body else None
                with self.lock:
                    self.updates.append((arrived, chat_id, status[0]))

        return audited

    def count(self) -> int:
        """Status updates seen so far."""
        with self.lock:
            return len(self.updates)

    async def wait_for(self, count: int) -> None:
        """Until ``count`` updates have arrived."""
        while self.count() < count:  # noqa: ASYNC110 - the emulator's thread has no hook
            await anyio.sleep(0.02)

    def updated(self) -> Counter[int]:
        """Chat id -> times it was updated (answered 200)."""
        with self.lock:
            return Counter(i for _, i, status in self.updates if status == 200 and i is not None)

    def busiest(self, per: float) -> int:
        """The most status updates that arrived within any ``per`` seconds."""
        with self.lock:
            times = sorted(at for at, _, _ in self.updates)
        most, first = 0, 0
        for last, at in enumerate(times):
            while times[first] <= at - per:
                first += 1
            most = max(most, last - first + 1)
        return most
