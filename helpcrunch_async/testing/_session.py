"""The kit's one emulator per test session, started afresh for each test at the cost of a seed.

Imported only when a test asks for a fixture: it needs the emulator (starlette, uvicorn).

The server starts once, in a thread with its own event loop (``emulator.serving``), so that
any test reaches it whatever its runner and loop: pytest-asyncio's loop per test, anyio's
runner, trio. Between tests only the ASGI app behind the socket changes: ``_Switch`` hands
each request to the current emulator app, and a reset puts a new one in, seeded from
scratch (milliseconds for the default 500 chats), with the test's settings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from ..emulator import EmulatorConfig, EmulatorState, ServerLimit, create_app
from ..emulator._server import serving

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["SETTINGS", "SessionEmulator", "config_from"]

#: What a test may set, through the marker or ``reset()``: ``EmulatorConfig``'s fields but
#: the API key (the clients are bound to it) and the webhook sender's (the kit delivers
#: webhooks itself, on the test's own loop: ``EmulatorWebhooks``), the signing key aside.
SETTINGS = frozenset(
    {
        "chats",
        "rate_limit",
        "faults",
        "payload_style",
        "error_style",
        "seed",
        "webhook_signing_key",
    }
)

#: The kit's emulator unless a test says otherwise: the emulator's defaults (500 chats, the
#: newer payloads, the older errors, seed 0) without a rate limit, so that tests are fast.
DEFAULTS = EmulatorConfig(rate_limit=None)


def config_from(settings: Mapping[str, object]) -> EmulatorConfig:
    """The kit's defaults changed by ``settings``; ``rate_limit`` may be ``"N/S"``.

    Raises:
        TypeError: a setting the kit does not take.
        ValueError: a value ``EmulatorConfig`` refuses.
    """
    unknown = sorted(set(settings) - SETTINGS)
    if unknown:
        raise TypeError(
            f"helpcrunch_emulator takes {', '.join(sorted(SETTINGS))}; not {', '.join(unknown)}"
        )
    changes: dict[str, Any] = dict(settings)  # the validators check each value
    if isinstance(changes.get("rate_limit"), str):
        changes["rate_limit"] = ServerLimit.parse(str(changes["rate_limit"]))
    return attrs.evolve(DEFAULTS, **changes)


class _Switch:
    """ASGI app: each request goes to the emulator app current when it arrives."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class SessionEmulator:
    """The running server, and the emulator state the current test sees."""

    def __init__(self, base_url: str, switch: _Switch, state: EmulatorState) -> None:
        self.base_url = base_url
        self.api_key = DEFAULTS.api_key
        self._switch = switch
        self.state = state

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[SessionEmulator]:
        """Serve the emulator on a free loopback port for the block."""
        app, state = create_app(DEFAULTS)
        switch = _Switch(app)
        with serving(switch) as base_url:
            yield cls(base_url, switch, state)

    def reset(self, settings: Mapping[str, object]) -> None:
        """Serve a freshly seeded emulator with ``settings`` from the next request on."""
        app, state = create_app(config_from(settings))
        self.state = state
        self._switch.app = app
