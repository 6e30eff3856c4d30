"""A HelpCrunch emulator: a real HTTP server on loopback that speaks the chats API.

Needs the ``emulator`` extra (``pip install "helpcrunch-async[emulator]"``). Use it to try
the SDK, develop against it and test it offline:

```python
from helpcrunch_async.emulator import EmulatorConfig, serve

async with serve(EmulatorConfig(chats=100)) as emulator:
    async with HelpCrunch(emulator.api_key, base_url=emulator.base_url) as client:
        ...
```

or from a terminal: ``helpcrunch emulator --port 8765``.
"""

from ._app import create_app
from ._recording import ReceivedRequest
from ._server import ListenError, RunningEmulator, run, serve
from ._state import EmulatorConfig, EmulatorState, Faults, ServerLimit

__all__ = [
    "EmulatorConfig",
    "EmulatorState",
    "Faults",
    "ListenError",
    "ReceivedRequest",
    "RunningEmulator",
    "ServerLimit",
    "create_app",
    "run",
    "serve",
]
