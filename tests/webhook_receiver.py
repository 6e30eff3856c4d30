"""A webhook receiver on loopback, in a thread of its own: where the emulator's deliveries go."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import uvicorn

from helpcrunch_async.webhooks import WebhookEndpoint, WebhookEvent

#: Seconds a test waits at most for deliveries it expects; a bound against hangs, not a timing.
WAIT_TIMEOUT = 30.0


class Receiver:
    """Records each delivery; fails (answers 500) the first ``failures`` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.tried: list[tuple[str, int]] = []
        self.events: list[WebhookEvent] = []
        self.failures = failures
        self._changed = threading.Condition()

    async def handle(self, event: WebhookEvent) -> None:
        with self._changed:
            self.tried.append((event.id, event.attempts))
            self._changed.notify_all()
            if self.failures:
                self.failures -= 1
                raise RuntimeError("receiver down, on purpose")
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, count: int, *, tried: bool = False) -> list[WebhookEvent]:
        """Block until ``count`` events were handled (or tried); return the handled ones."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: len(self.tried if tried else self.events) >= count, WAIT_TIMEOUT
            )
            if not done:
                raise TimeoutError(f"{count} deliveries expected, got {self.tried}")
            return list(self.events)


@contextlib.contextmanager
def webhook_receiver(signing_key: str, *, failures: int = 0) -> Iterator[tuple[str, Receiver]]:
    """Serve a ``WebhookEndpoint`` on a free loopback port; yield its URL and the receiver."""
    receiver = Receiver(failures)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # before the URL is known to anyone: early deliveries wait in the backlog
    endpoint = WebhookEndpoint(receiver.handle, signing_key=signing_key)
    server = uvicorn.Server(uvicorn.Config(endpoint, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks", receiver
    finally:
        server.should_exit = True
        thread.join(WAIT_TIMEOUT)
        sock.close()
