"""Fleet tests' tools: worker processes on one job, the emulator with an audit of every
status update, and its checks (tests/test_fleet.py; benchmarks/bench_fleet.py times them).

Three processes of ``examples/fleet_journal.py`` (two on asyncio, one on trio) are handed the
same 240 ids at 40 per 2 s. The audit notes each ``PUT /v1/chats/status`` as it arrives (the
emulator's clock, the chat id, the answer's status), so a test can tell which chat was
updated twice and the busiest window, and a benchmark the time from the first update to the
last: what a fleet's speed is judged on, whatever its workers' start-up took.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import IO, Any
from unittest import mock

import anyio
import anyio.abc

from helpcrunch_async.emulator import EmulatorConfig, EmulatorState, ServerLimit, create_app, serve
from helpcrunch_async.emulator._server import RunningEmulator

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

    def span(self) -> float:
        """Seconds from the first status update to the last."""
        with self.lock:
            times = [at for at, _, _ in self.updates]
        return max(times) - min(times)

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


@contextlib.contextmanager
def audited_emulators() -> Iterator[Audit]:
    """An audit in front of every emulator started in the block."""
    audit = Audit()

    def audited(config: Any) -> tuple[Any, Any]:
        app, state = create_app(config)
        return audit.wrap(app), state

    with mock.patch("helpcrunch_async.emulator._server.create_app", audited):
        yield audit


EXAMPLES = Path(__file__).parent.parent / "examples"
IDS = 240
REQUESTS, PER = 40, 2.0
#: The job's ideal time, in seconds: what the key allows for every id.
N_OVER_R = IDS / (REQUESTS / PER)
#: Seconds a claim lives: a dead worker's ids are taken over this long after it died.
LEASE = 3.0
#: Seconds added to the client's window: room for a request delayed between its grant and
#: its arrival on a loaded machine.
MARGIN = 0.2

FIRST = EmulatorState.FIRST_ID
#: The workers' backends: both, in one fleet.
BACKENDS = ["asyncio", "asyncio", "trio"]
WORKERS = len(BACKENDS)
#: Seconds a fleet may take before the test fails instead of hanging.
FLEET_TIMEOUT = 100


class Fleet:
    """Worker processes of one job, their output in a file each."""

    def __init__(self, redis_url: str, emulator: RunningEmulator, logs: Path) -> None:
        self.redis_url = redis_url
        self.emulator = emulator
        self.logs = logs
        self.workers: list[anyio.abc.Process] = []
        self.outputs: list[IO[bytes]] = []

    async def start(self, backends: list[str]) -> None:
        env = os.environ | {
            "HELPCRUNCH_API_KEY": self.emulator.api_key,
            "HELPCRUNCH_BASE_URL": self.emulator.base_url,
        }
        for number, backend in enumerate(backends):
            out = (self.logs / f"worker-{number}.txt").open("wb")
            self.outputs.append(out)
            command = [
                sys.executable,
                str(EXAMPLES / "fleet_journal.py"),
                *("--redis-url", self.redis_url, "--job", "close-240"),
                *("--first-id", str(FIRST), "--count", str(IDS)),
                *("--rate", f"{REQUESTS}/{PER:g}", "--margin", str(MARGIN)),
                *("--lease", str(LEASE), "--backend", backend),
            ]
            process = await anyio.open_process(command, env=env, stdout=out, stderr=out)
            self.workers.append(process)

    async def wait(self) -> list[int | None]:
        """Every worker's exit code (negative: killed by that signal)."""
        with anyio.fail_after(FLEET_TIMEOUT):
            return [await worker.wait() for worker in self.workers]

    def output(self) -> str:
        for out in self.outputs:
            out.close()
        return "\n".join(
            (self.logs / f"worker-{n}.txt").read_text() for n in range(len(self.outputs))
        )


#: The key's limit, as a strict server holds it: what the benchmark measures against.
STRICT = ServerLimit(REQUESTS, PER)
#: The server the tests use: the fleet's count over half its window. The emulator stamps a
#: request when its thread gets to it, on a loaded machine tenths of a second after the
#: limiter granted it: against STRICT, "no 429" would test the machine's load. Against this
#: one, 41 requests reach a 1 s window only if one is held up a whole second, while a fleet
#: that did not share its limit (three times the rate) meets 429s by the dozen.
SHARING_PROOF = ServerLimit(REQUESTS, PER / 2)


async def run_fleet(
    redis_url: str, audit: Audit, disrupt=None, *, server: ServerLimit = STRICT
) -> tuple[list[int | None], str, int]:
    """Three workers on the same ids; ``disrupt(fleet)`` once a third of them is done.

    Returns the workers' exit codes, their output, and the 429s the emulator answered.
    """
    config = EmulatorConfig(chats=IDS, rate_limit=server)
    with tempfile.TemporaryDirectory() as logs:
        async with serve(config) as emulator:
            fleet = Fleet(redis_url, emulator, Path(logs))
            await fleet.start(BACKENDS)
            try:
                if disrupt is not None:
                    with anyio.fail_after(FLEET_TIMEOUT):
                        await audit.wait_for(IDS // 3)
                    await disrupt(fleet)
                codes = await fleet.wait()
            finally:
                for worker in fleet.workers:
                    if worker.returncode is None:
                        worker.kill()
                        await worker.wait()
            output = fleet.output()
            assert IDS == sum(c["status"] == "closed" for c in emulator.state.chats.values())
            rejected = emulator.stats()["rejected"]
    return codes, output, rejected
