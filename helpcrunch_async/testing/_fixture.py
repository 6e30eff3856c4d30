"""``EmulatorFixture``: what a test sees of the kit's emulator, and the clients bound to it."""

from __future__ import annotations

import functools
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from .._client import HelpCrunch, default_headers
from .._config import RateLimit, Retry
from ._webhooks import EmulatorWebhooks

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..emulator import EmulatorConfig, EmulatorState, ReceivedRequest
    from ._session import SessionEmulator

__all__ = ["EmulatorFixture"]


@functools.cache
def _tls() -> ssl.SSLContext:
    """One context for every client the kit makes: loading the CA bundle takes ~25 ms."""
    return httpx.create_ssl_context()


class EmulatorFixture:
    """The emulator a test talks to: the ``helpcrunch_emulator`` fixture.

    A real HelpCrunch emulator (``helpcrunch_async.emulator``) on a free loopback port,
    started once per test session; every test starts from the same seeded state: chats
    5215700 to 5216199, agents 1 to 5, departments 1 and 2, no rate limit, no faults.

    Set a test's emulator with the marker (on a test, a class or a module; the closest
    setting wins), or with ``reset()`` from inside the test:

    ```python
    @pytest.mark.helpcrunch_emulator(rate_limit="5/1", faults=Faults(server_errors=0.2))
    async def test_the_job_copes(helpcrunch_client, helpcrunch_emulator): ...
    ```

    Settings: ``chats``, ``rate_limit`` (a ``ServerLimit``, ``"N/S"`` or ``None``),
    ``faults`` (a ``Faults``), ``payload_style`` (``"spec"`` or ``"legacy"``),
    ``error_style`` (``"older"`` or ``"newer"``), ``seed`` and ``webhook_signing_key``, as
    ``EmulatorConfig`` has them.
    """

    def __init__(self, session: SessionEmulator, settings: Mapping[str, object]) -> None:
        self._session = session
        self._settings = dict(settings)
        self._clients: list[HelpCrunch] = []
        #: The events the emulator's changes caused, and their delivery to your app.
        self.webhooks = EmulatorWebhooks(session)
        self.reset()

    def __repr__(self) -> str:
        return f"EmulatorFixture(base_url={self.base_url!r}, config={self.config!r})"

    @property
    def base_url(self) -> str:
        """The emulator's API root (``http://127.0.0.1:<port>/v1``)."""
        return self._session.base_url

    @property
    def api_key(self) -> str:
        """The one API key the emulator accepts."""
        return self._session.api_key

    @property
    def env(self) -> dict[str, str]:
        """The two variables that point ``HelpCrunch()`` at the emulator.

        ``HELPCRUNCH_API_KEY`` and ``HELPCRUNCH_BASE_URL``, for code that makes its own
        client or runs as another process: ``monkeypatch.setenv`` them, or pass them on.
        """
        return {"HELPCRUNCH_API_KEY": self.api_key, "HELPCRUNCH_BASE_URL": self.base_url}

    @property
    def config(self) -> EmulatorConfig:
        """The test's settings, as an ``EmulatorConfig``."""
        return self._session.state.config

    @property
    def state(self) -> EmulatorState:
        """The emulator's data (``state.chats``, ``state.customers``...), to arrange a test."""
        return self._session.state

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The requests it received in this test, oldest first: method, path, query, JSON.

        Refused ones (401, 429, injected faults) included; the latest ``RECORD_SIZE``
        (1000) are kept. ``path`` is relative to ``base_url``, as the SDK writes it:

        ```python
        assert ("PUT", "/chats/status") == (sent.method, sent.path)
        ```
        """
        return self._session.state.recording.requests()

    def stats(self) -> dict[str, int]:
        """Requests seen, 429s answered, and the most requests seen in one window."""
        return self._session.state.stats()

    def reset(self, **settings: Any) -> None:
        """Start again from the seeded state, with these settings over the marker's.

        Everything the test changed, and what was recorded, is gone. ``helpcrunch_client``
        keeps the limit it was made with: call ``client()`` for one that follows a new one.

        Raises:
            TypeError: a setting the kit does not take (see the class).
            ValueError: a value out of range.
        """
        merged = {**self._settings, **settings}
        self._session.reset(merged)
        self._settings = merged

    def client(self, **options: Any) -> HelpCrunch:
        """A new ``HelpCrunch`` bound to the emulator, closed after the test.

        Made as a test wants it unless ``options`` (``HelpCrunch``'s arguments) say
        otherwise: the emulator's limit as its rate limit (none when the emulator has none),
        retries at once (``Retry(backoff=0)``), and connections closed after each answer,
        so that nothing of it outlives the test's event loop. ``api_key="wrong"`` makes a
        client the emulator refuses.
        """
        limit = self.config.rate_limit
        options.setdefault("api_key", self.api_key)
        options.setdefault("base_url", self.base_url)
        options.setdefault(
            "rate_limit", None if limit is None else RateLimit(limit.requests, limit.per)
        )
        options.setdefault("retry", Retry(backoff=0))
        if options.get("http_client") is None:
            # No connection kept alive: each closes with its answer, on the test's loop,
            # and the client is closed after the test with no loop of the test's to run on.
            options["http_client"] = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                headers=default_headers(),
                trust_env=False,  # loopback, never through a proxy of the environment
                verify=_tls(),
            )
        client = HelpCrunch(**options)
        self._clients.append(client)
        return client

    def close(self) -> None:
        """Close the clients made for the test; the fixture calls it after the test."""
        clients, self._clients = self._clients, []
        if not clients:
            return

        async def close_all() -> None:
            for client in clients:
                await client.aclose()

        # The test's loop may be gone (pytest-asyncio closes it first): a loop of its own,
        # in a thread of its own, so that this thread's event loop settings stay untouched.
        with ThreadPoolExecutor(1, thread_name_prefix="helpcrunch-kit") as pool:
            pool.submit(anyio.run, close_all).result()
