"""Serving the emulator: uvicorn on loopback, in a thread (for tests and the demo) or in front."""

from __future__ import annotations

import logging
import socket
import threading
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import uvicorn

from ._app import create_app
from ._front import DroppedConnectionError
from ._state import EmulatorConfig, EmulatorState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["RunningEmulator", "run", "serve"]

#: Connections the kernel queues before the server accepts them (uvicorn's default).
BACKLOG = 2048
#: How long serve() waits for the server thread to come up.
STARTUP_TIMEOUT = 15.0


@attrs.frozen
class RunningEmulator:
    """A started emulator: where it listens, the key it takes, and its state."""

    base_url: str
    api_key: str
    state: EmulatorState = attrs.field(repr=False)

    def stats(self) -> dict[str, int]:
        """Requests seen, 429s answered, and the most requests seen in one window."""
        return self.state.stats()


class _QuietDrops(logging.Filter):
    """Hide the tracebacks of connections the emulator cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnectionError)


#: One instance, so that adding it for every server started is a no-op after the first.
_QUIET_DROPS = _QuietDrops()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listen before announcing the URL: a client that connects before uvicorn has started
    # waits in the backlog instead of being refused. (serve() still waits for `started`, to
    # report a server that failed to start rather than leave its clients hanging.)
    sock.listen(BACKLOG)
    return sock


def _server(config: EmulatorConfig, log_level: str) -> tuple[Any, Any]:
    app, state = create_app(config)
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on")
    )
    return server, state


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/v1"


@asynccontextmanager
async def serve(
    config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningEmulator]:
    """Run the emulator on loopback for the duration of the block; works under asyncio and trio.

    The server runs in its own thread with its own event loop, so it serves real sockets
    whatever the caller's backend is. ``port=0`` picks a free port.

    Example:
        >>> async with serve() as emulator:  # doctest: +SKIP
        ...     async with HelpCrunch(emulator.api_key, base_url=emulator.base_url) as client:
        ...         await client.chats.update_status(5215700, "closed")
    """
    config = EmulatorConfig() if config is None else config
    sock = _bind(host, port)
    server, state = _server(config, "warning")
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="helpcrunch-emulator", daemon=True
    )
    thread.start()
    try:
        with anyio.fail_after(STARTUP_TIMEOUT):
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("the emulator failed to start")
                await anyio.sleep(0.01)
        yield RunningEmulator(_url(sock), config.api_key, state)
    finally:
        server.should_exit = True
        await anyio.to_thread.run_sync(thread.join)
        sock.close()


def run(config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the emulator in the foreground until Ctrl-C (the ``helpcrunch emulator`` command)."""
    config = EmulatorConfig() if config is None else config
    sock = _bind(host, port)
    server, _ = _server(config, "info")
    print(f"HelpCrunch emulator on {_url(sock)}  ({config.chats} chats)")  # noqa: T201
    print(f"  export HELPCRUNCH_BASE_URL={_url(sock)}")  # noqa: T201
    print(f"  export HELPCRUNCH_API_KEY={config.api_key}")  # noqa: T201
    if config.webhook_url is not None:
        print(f"Webhooks to {config.webhook_url}, signed with the key you gave")  # noqa: T201
    print("Press Ctrl-C to stop.", flush=True)  # noqa: T201
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
