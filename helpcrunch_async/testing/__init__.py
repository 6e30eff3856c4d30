"""A test kit: HelpCrunch's emulator and a client as pytest fixtures, for your own tests.

``pip install "helpcrunch-async[testing]"`` (the emulator's starlette and uvicorn); pytest
finds the plugin by itself, no ``conftest.py`` needed:

```python
import pytest

import helpcrunch_async as hc


@pytest.mark.anyio  # or @pytest.mark.asyncio, with pytest-asyncio
async def test_closing(helpcrunch_client: hc.HelpCrunch, helpcrunch_emulator) -> None:
    await helpcrunch_client.chats.update_status(5215700, "closed")

    [sent] = helpcrunch_emulator.requests
    assert ("PUT", "/chats/status") == (sent.method, sent.path)
```

- ``helpcrunch_emulator`` (an ``EmulatorFixture``): a real emulator on loopback, started
  once per session; each test starts from the same seeded state. Its settings come from
  ``@pytest.mark.helpcrunch_emulator(...)`` or ``helpcrunch_emulator.reset(...)``; its
  ``requests`` are what it received, its ``webhooks`` (an ``EmulatorWebhooks``) the events
  its changes caused, delivered to your ASGI app or a URL when you ask.
- ``helpcrunch_client``: a ``HelpCrunch`` bound to it, closed after the test.

Both work under pytest-asyncio (strict or auto) and anyio's plugin (asyncio or trio).
``pytest -p no:helpcrunch`` turns the plugin off.
"""

from ._fixture import EmulatorFixture
from ._webhooks import EmulatorWebhooks

__all__ = ["EmulatorFixture", "EmulatorWebhooks"]

# Tracebacks and reprs show the public path, as httpx does.
EmulatorFixture.__module__ = __name__
EmulatorWebhooks.__module__ = __name__
