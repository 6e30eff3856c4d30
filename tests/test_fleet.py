"""A job bigger than one machine: worker processes sharing a Redis limiter and journal.

Three processes of ``examples/fleet_journal.py`` (two on asyncio, one on trio) are handed the
same 240 ids at 40 per 2 s, against the emulator with an audit of every update (tests/fleet.py).
Speed is judged from the emulator's first update to its last, so the workers' start-up does
not count; N/R is 12 s, a scale at which scheduling jitter of a loaded machine is small.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
from pathlib import Path
from typing import IO

import anyio
import anyio.abc
import pytest

from helpcrunch_async.emulator import EmulatorConfig, EmulatorState, ServerLimit, serve
from helpcrunch_async.emulator._server import RunningEmulator
from tests.fleet import Audit

pytestmark = [
    pytest.mark.redis,
    pytest.mark.fleet,
    pytest.mark.emulator,
    # The workers pick their own backends; the test process only watches.
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.anyio,
]

EXAMPLES = Path(__file__).parent.parent / "examples"
IDS = 240
REQUESTS, PER = 40, 2.0
#: Seconds a claim lives: a dead worker's ids are taken over this long after it died.
LEASE = 3.0
#: Seconds added to the client's window: room for a request delayed between its grant and
#: its arrival on a loaded machine. (How close to N/R a fleet finishes is a figure of
#: benchmarks/bench_redis.py, not a test: it is the machine's load as much as the SDK.)
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


async def run_fleet(
    redis_url: str, audit: Audit, disrupt=None
) -> tuple[list[int | None], str, int]:
    """Three workers on the same ids; ``disrupt(fleet)`` once a third of them is done.

    Returns the workers' exit codes, their output, and the 429s the emulator answered.
    """
    config = EmulatorConfig(chats=IDS, rate_limit=ServerLimit(REQUESTS, PER))
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


async def test_three_workers_on_the_same_ids_update_each_once(redis_url, audit):
    """Every chat updated, none twice, never over the limit."""
    codes, output, rejected = await run_fleet(redis_url, audit)

    assert ([0, 0, 0], 0) == (codes, rejected), output
    updated = audit.updated()
    assert set(range(FIRST, FIRST + IDS)) == set(updated)
    assert {1} == set(updated.values()), output
    assert REQUESTS >= audit.busiest(PER)
    assert 3 == output.count("done by others; Redis lost the job 0 times")


async def test_a_worker_killed_mid_run_has_its_ids_taken_over(redis_node, audit):
    """SIGKILL one worker: the two others update every chat, never over the limit."""

    async def kill(fleet: Fleet) -> None:
        fleet.workers[0].send_signal(signal.SIGKILL)

    codes, output, rejected = await run_fleet(redis_node.url, audit, disrupt=kill)

    assert ([-signal.SIGKILL, 0, 0], 0) == (codes, rejected), output
    updated = audit.updated()
    assert set(range(FIRST, FIRST + IDS)) == set(updated)
    # Only an update the dead worker had sent, unrecorded, may be sent again.
    assert 10 >= sum(n - 1 for n in updated.values())
    assert REQUESTS >= audit.busiest(PER)


async def test_redis_restarted_empty_mid_run_loses_no_id(redis_node, audit):
    """Redis dies and comes back empty: every chat updated (some twice at worst), none lost.

    The limiter then holds the fleet back for one window, but a slot a worker had reserved
    before still goes (README, "When Redis misbehaves"): at most one request per worker
    over the limit, which the strict emulator may answer 429 (then retried).
    """

    async def restart(_: Fleet) -> None:
        await anyio.to_thread.run_sync(redis_node.kill)
        await anyio.to_thread.run_sync(redis_node.start)

    codes, output, _ = await run_fleet(redis_node.url, audit, disrupt=restart)

    assert [0, 0, 0] == codes, output
    assert set(range(FIRST, FIRST + IDS)) == set(audit.updated())
    assert REQUESTS + WORKERS >= audit.busiest(PER)
    lost = [int(n) for n in re.findall(r"Redis lost the job (\d+) times", output)]
    assert 3 == len(lost), output
    assert any(lost), output  # the workers noticed, and said so
