"""Serving the emulator: uvicorn on loopback, in a thread (for tests and the demo) or in front."""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import uvicorn

from ._app import create_app
from ._front import DroppedConnectionError
from ._state import EmulatorConfig, EmulatorState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from starlette.types import ASGIApp

    from ._recording import ReceivedRequest

__all__ = ["ListenError", "RunningEmulator", "run", "serve", "serving"]

#: Connections the kernel queues before the server accepts them (uvicorn's default).
BACKLOG = 2048
#: How long serve() waits for the server thread to come up.
STARTUP_TIMEOUT = 15.0
#: Seconds between two looks at whether it has.
STARTUP_POLL = 0.01
#: Seconds the requests still being handled get when the server stops; then they are
#: cancelled (uvicorn would wait for them for ever: one stuck handler would hang its caller).
SHUTDOWN_TIMEOUT = 5


@attrs.frozen
class RunningEmulator:
    """A started emulator: where it listens, the key it takes, and its state."""

    base_url: str
    api_key: str
    state: EmulatorState = attrs.field(repr=False)

    def stats(self) -> dict[str, int]:
        """Requests seen, 429s answered, and the most requests seen in one window."""
        return self.state.stats()

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The requests it received, oldest first (the latest ``RECORD_SIZE``)."""
        return self.state.recording.requests()


class _QuietDrops(logging.Filter):
    """Hide the tracebacks of connections the emulator cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnectionError)


#: One instance, so that adding it for every server started is a no-op after the first.
_QUIET_DROPS = _QuietDrops()


class ListenError(OSError):
    """The emulator cannot listen where asked; nothing was started.

    The port is in use or privileged, or the host is not one of this machine's addresses.
    """


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listen before announcing the URL: a client that connects before uvicorn has
        # started waits in the backlog instead of being refused. (serve() still waits for
        # `started`, to report a server that failed to start rather than leave its clients
        # hanging.)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ListenError(exc.errno, f"cannot listen on {host}:{port}: {reason}") from None
    return sock


def _uvicorn(app: ASGIApp, log_level: str) -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=SHUTDOWN_TIMEOUT,
        )
    )


def _server(config: EmulatorConfig, log_level: str) -> tuple[Any, Any]:
    app, state = create_app(config)
    return _uvicorn(app, log_level), state


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/v1"


@contextmanager
def serving(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn, in a thread with its own event loop, for the block.

    Yields the API root's URL once the server is up. The caller blocks while the server
    starts and stops, and needs no event loop: ``serve()`` and the pytest kit both use it.
    """
    sock = _bind(host, port)
    server = _uvicorn(app, "warning")

    def run() -> None:
        # uvicorn ends a failed startup with sys.exit(): here it ends the thread, quietly,
        # and the wait below reports it.
        with suppress(SystemExit):
            server.run(sockets=[sock])

    thread = threading.Thread(target=run, name="helpcrunch-emulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            thread.join(STARTUP_POLL)  # uvicorn offers no event to wait on
            if not thread.is_alive():
                raise RuntimeError("the emulator failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the emulator did not start within {STARTUP_TIMEOUT:g} s")
        yield _url(sock)
    finally:
        server.should_exit = True
        # Bounded: uvicorn cancels the handlers still running after SHUTDOWN_TIMEOUT; should
        # the thread still not end, force_exit stops its waits, and a daemon thread left
        # behind cannot keep the process alive.
        thread.join(SHUTDOWN_TIMEOUT + 5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(SHUTDOWN_TIMEOUT)
        sock.close()


@asynccontextmanager
async def serve(
    config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningEmulator]:
    """Run the emulator on loopback for the duration of the block; works under asyncio and trio.

    The server runs in its own thread with its own event loop, so it serves real sockets
    whatever the caller's backend is. ``port=0`` picks a free port.

    Examples:
        >>> async with serve() as emulator:  # doctest: +SKIP
        ...     async with HelpCrunch(emulator.api_key, base_url=emulator.base_url) as client:
        ...         await client.chats.update_status(5215700, "closed")
    """
    config = EmulatorConfig() if config is None else config
    app, state = create_app(config)
    running = serving(app, host=host, port=port)
    # Shielded: a server that started must be stopped, even if the caller was cancelled
    # while it started.
    with anyio.CancelScope(shield=True):
        url = await anyio.to_thread.run_sync(running.__enter__)
    try:
        yield RunningEmulator(url, config.api_key, state)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(running.__exit__, None, None, None)


def _banner(config: EmulatorConfig, url: str) -> str:
    """What the emulator serves: where, which ids, its limit, its faults, its payloads."""
    first = EmulatorState.FIRST_ID
    limit = config.rate_limit
    return "\n".join(
        [
            f"HelpCrunch emulator on {url}  ({config.chats} chats)",
            f"  export HELPCRUNCH_BASE_URL={url}",
            f"  export HELPCRUNCH_API_KEY={config.api_key}",
            f"  chat ids: {first} to {first + config.chats - 1}",
            "  rate limit: "
            + (
                "none"
                if limit is None
                else f"{limit.requests} requests per {limit.per:g} s "
                "(sliding window; rejected requests count too)"
            ),
            f"  faults: {config.faults}",
            f"  payload style: {config.payload_style}; error style: {config.error_style}",
            *(
                []
                if config.webhook_url is None
                else [f"  webhooks to {config.webhook_url}, signed with the key you gave"]
            ),
            "Press Ctrl-C to stop.",
        ]
    )


def _banner_json(config: EmulatorConfig, url: str) -> str:
    """The banner as one JSON object, for a script that starts the emulator."""
    first = EmulatorState.FIRST_ID
    limit = config.rate_limit
    return json.dumps(
        {
            "base_url": url,
            "api_key": config.api_key,
            "chats": config.chats,
            "first_id": first,
            "last_id": first + config.chats - 1,
            "rate_limit": None if limit is None else {"requests": limit.requests, "per": limit.per},
            "faults": attrs.asdict(config.faults),
            "payload_style": config.payload_style,
            "error_style": config.error_style,
            "webhook_url": config.webhook_url,
        }
    )


def _statistics(config: EmulatorConfig, state: EmulatorState) -> str:
    stats = state.stats()
    requests = stats["requests"]
    text = (
        f"Emulator stopped: {requests} request{'' if requests == 1 else 's'} with the key, "
        f"{stats['rejected']} answered 429"
    )
    if config.rate_limit is not None:
        text += (
            f"; busiest {config.rate_limit.per:g} s window: {stats['max_in_window']} requests "
            f"({config.rate_limit.requests} allowed)"
        )
    return text + "."


def run(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    as_json: bool = False,
) -> None:
    """Serve the emulator in the foreground until Ctrl-C or SIGTERM (``helpcrunch emulator``).

    The banner (URL, key, ids, limit, faults, styles) is flushed at once, for whoever reads
    it through a pipe; the statistics are printed when the server stops. With ``as_json``
    each is one JSON object on a line. Then a Ctrl-C ends as ``KeyboardInterrupt`` and a
    SIGTERM as ``SystemExit(143)``, the codes a shell expects.

    Raises:
        ListenError: ``host:port`` cannot be listened on (in use, privileged, not this
            machine's); nothing was started or printed.
    """
    config = EmulatorConfig() if config is None else config
    sock = _bind(host, port)
    server, state = _server(config, "info")
    caught: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        # A signal before uvicorn installs its own handlers (or re-raised by uvicorn after
        # its shutdown) only asks the server to stop: a KeyboardInterrupt in the middle of
        # starting an event loop would print a traceback instead of the statistics.
        caught.append(signum)
        server.should_exit = True

    in_main = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, stop) for signum in signals} if in_main else {}
    try:
        banner = _banner_json if as_json else _banner
        print(banner(config, _url(sock)), flush=True)  # noqa: T201
        server.run(sockets=[sock])
    finally:
        sock.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        statistics = json.dumps(state.stats()) if as_json else _statistics(config, state)
        print(statistics, flush=True)  # noqa: T201
    if caught and caught[0] == signal.SIGINT:
        raise KeyboardInterrupt
    if caught:
        raise SystemExit(128 + caught[0])
