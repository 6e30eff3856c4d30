"""The pytest plugin (entry point ``helpcrunch``): the emulator and a client, as fixtures.

pytest loads it in every project that has the package. Loading it costs no server and no
extra: the emulator (starlette, uvicorn) is imported, and started, when a test first asks
for a fixture. The fixtures are synchronous on purpose: pytest-asyncio (strict or auto),
anyio's plugin (asyncio or trio) and a plain test all take them alike, and nothing of
them depends on the loop a test runs on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ._fixture import EmulatorFixture

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._client import HelpCrunch
    from ._session import SessionEmulator

#: What a test that asks for a fixture without the emulator is told.
MISSING_EXTRA = (
    "the helpcrunch_emulator and helpcrunch_client fixtures need the emulator: "
    'pip install "helpcrunch-async[testing]"'
)
#: The emulator's own dependencies: their absence is the missing extra, nothing else is.
EXTRA_MODULES = frozenset({"starlette", "uvicorn"})


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker, for ``--strict-markers``."""
    config.addinivalue_line(
        "markers",
        "helpcrunch_emulator(**settings): the test's emulator settings (chats, rate_limit, "
        "faults, payload_style, error_style, seed, webhook_signing_key); see "
        "helpcrunch_async.testing.EmulatorFixture",
    )


@pytest.fixture(scope="session")
def _helpcrunch_server() -> Iterator[SessionEmulator]:
    """One emulator server for the session, started when a test first needs it."""
    try:
        from ._session import SessionEmulator  # noqa: PLC0415 - only when a fixture is used
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in EXTRA_MODULES:
            raise
        missing = exc.name
    else:
        with SessionEmulator.start() as server:
            yield server
        return
    pytest.fail(f"{MISSING_EXTRA} ({missing} is not installed)", pytrace=False)


@pytest.fixture
def helpcrunch_emulator(
    _helpcrunch_server: SessionEmulator, request: pytest.FixtureRequest
) -> Iterator[EmulatorFixture]:
    """The HelpCrunch emulator, from its seeded state, set by the test's marker.

    See ``helpcrunch_async.testing.EmulatorFixture``.
    """
    settings: dict[str, object] = {}
    # Closest last: a test's marker wins over its class's, which wins over its module's.
    for marker in reversed(list(request.node.iter_markers("helpcrunch_emulator"))):
        if marker.args:
            pytest.fail("@pytest.mark.helpcrunch_emulator takes settings by name", pytrace=False)
        settings.update(marker.kwargs)
    try:
        emulator = EmulatorFixture(_helpcrunch_server, settings)
    except (TypeError, ValueError) as exc:
        refused = f"@pytest.mark.helpcrunch_emulator: {exc}"
    else:
        try:
            yield emulator
        finally:
            emulator.close()
        return
    pytest.fail(refused, pytrace=False)  # out of the except block: one message, no chain


@pytest.fixture
def helpcrunch_client(helpcrunch_emulator: EmulatorFixture) -> HelpCrunch:
    """A ``HelpCrunch`` bound to ``helpcrunch_emulator``, closed after the test.

    Made by ``helpcrunch_emulator.client()``: the emulator's limit, retries at once.
    """
    return helpcrunch_emulator.client()
