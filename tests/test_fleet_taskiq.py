"""The taskiq recipe (examples/fleet_taskiq) for real: workers, a scheduler, a producer, Redis.

Three ``taskiq worker`` processes, one ``taskiq scheduler`` and the producer, with the broker,
the shared limiter and the journal on one private redis-server, against the emulator with
its audit (tests/fleet.py). The workers are stopped with SIGTERM at the end, as a deployment
would stop them, and must run their shutdown hook.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

import anyio
import anyio.abc
import pytest
import redis

from helpcrunch_async.emulator import EmulatorConfig, EmulatorState, ServerLimit, serve
from tests.fleet import Audit

pytest.importorskip("taskiq_redis", reason="the taskiq recipe needs the taskiq extra")

pytestmark = [
    pytest.mark.redis,
    pytest.mark.fleet,
    pytest.mark.emulator,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.anyio,
]

RECIPE = Path(__file__).parent.parent / "examples" / "fleet_taskiq"
IDS, REQUESTS, PER = 240, 40, 2.0
#: The server: the fleet's count over half its window (tests/fleet.py, SHARING_PROOF, says why).
SHARING_PROOF = ServerLimit(REQUESTS, PER / 2)
FIRST = EmulatorState.FIRST_ID
WORKERS = 3
#: Seconds the whole recipe may take before the test fails instead of hanging.
TIMEOUT = 100
#: Seconds a worker has to stop after SIGTERM (its shutdown hook included).
STOP_TIMEOUT = 30


def signal_group(process: anyio.abc.Process, signum: int) -> None:
    """Signal the process's group: taskiq's supervisor and its worker, as a deployment does."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)


async def stopped(process: anyio.abc.Process) -> int | None:
    """The exit code, once the process ends; ``None`` if it is still running after the
    stop timeout (then it is killed)."""
    with anyio.move_on_after(STOP_TIMEOUT):
        return await process.wait()
    signal_group(process, signal.SIGKILL)
    await process.wait()
    return None


class Recipe:
    """The recipe's processes, each in a session of its own, their output in a file each."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: list[anyio.abc.Process] = []

    async def start(self, *command: str) -> anyio.abc.Process:
        with (self.logs / f"{len(self.processes)}.txt").open("wb") as out:
            process = await anyio.open_process(
                [sys.executable, *command],
                cwd=RECIPE,
                env=self.env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def outputs(self) -> list[str]:
        return [(self.logs / f"{n}.txt").read_text() for n in range(len(self.processes))]


async def run_recipe(
    redis_url: str, audit: Audit, spans: Path, *, kill_one: bool
) -> tuple[int | None, list[int | None], list[str]]:
    """Workers, the scheduler, then the producer; with ``kill_one``, SIGKILL a worker once a
    third of the ids are done. The producer's exit code, the others' after SIGTERM, outputs.
    """
    config = EmulatorConfig(chats=IDS, rate_limit=SHARING_PROOF)
    with tempfile.TemporaryDirectory() as logs:
        async with serve(config) as emulator:
            env = os.environ | {
                "HELPCRUNCH_API_KEY": emulator.api_key,
                "HELPCRUNCH_BASE_URL": emulator.base_url,
                "FLEET_REDIS_URL": redis_url,
                "FLEET_RATE": f"{REQUESTS}/{PER:g}",
                "FLEET_MARGIN": "0.2",
                "FLEET_LEASE": "3",
                "FLEET_MAX_WAIT": "2",
                "FLEET_CONCURRENCY": "2",
                "FLEET_SPANS_FILE": str(spans),
                "FLEET_READY_KEY": "test:ready",
            }
            recipe = Recipe(env, Path(logs))
            try:
                for _ in range(WORKERS):
                    await recipe.start(*WORKER)
                await recipe.start(*SCHEDULER)
                with anyio.fail_after(TIMEOUT), redis.Redis.from_url(redis_url) as probe:
                    while probe.scard("test:ready") < WORKERS:  # noqa: ASYNC110
                        await anyio.sleep(0.05)
                    job = await recipe.start(*PRODUCER)
                    if kill_one:
                        await audit.wait_for(IDS // 3)
                        signal_group(recipe.processes[0], signal.SIGKILL)
                    produced = await job.wait()
                for process in recipe.processes:
                    signal_group(process, signal.SIGTERM)
                codes = [await stopped(process) for process in recipe.processes[: WORKERS + 1]]
            finally:
                for process in recipe.processes:
                    signal_group(process, signal.SIGKILL)
                    await process.wait()
            assert 0 == emulator.stats()["rejected"]
        return produced, codes, recipe.outputs()


WORKER = ["-m", "taskiq", "worker", "fleet_tasks:broker", "--workers", "1"]
WORKER += ["--max-async-tasks", "2", "--max-prefetch", "0", "--ack-type", "when_executed"]
WORKER += ["--log-level", "INFO"]  # where a worker that does not stop got to, if one does
SCHEDULER = ["-m", "taskiq", "scheduler", "fleet_tasks:scheduler", "--update-interval", "1"]
SCHEDULER += ["--log-level", "WARNING"]
PRODUCER = ["producer.py", "--job", "close-240", "--first-id", str(FIRST), "--count", str(IDS)]
PRODUCER += ["--stall", "5"]


async def test_the_taskiq_recipe_runs_a_job_on_real_workers(redis_node, audit, tmp_path):
    """Chunks through a real broker: every chat once, the limit shared, one trace, clean stop."""
    spans = tmp_path / "spans.jsonl"
    produced, codes, texts = await run_recipe(redis_node.url, audit, spans, kill_one=False)

    assert 0 == produced, texts[-1]
    updated = audit.updated()
    assert set(range(FIRST, FIRST + IDS)) == set(updated), texts
    assert {1} == set(updated.values())
    assert [0] * WORKERS == codes[:WORKERS], texts  # the scheduler has no hook: it just ends
    assert codes[WORKERS] is not None
    assert all("shut down cleanly" in text for text in texts[:WORKERS]), texts
    summary = json.loads(texts[-1].splitlines()[-1])
    sdk = [json.loads(line) for line in spans.read_text().splitlines()]
    sdk = [span for span in sdk if span["name"] == "helpcrunch chats.update_status"]
    assert IDS <= len(sdk)
    assert {summary["trace_id"]} == {span["trace"] for span in sdk}


async def test_a_killed_workers_chunks_are_finished_by_the_others(redis_node, audit, tmp_path):
    """SIGKILL a worker mid-job: the producer sees every id settled, the broker or not."""
    spans = tmp_path / "spans.jsonl"
    produced, codes, texts = await run_recipe(redis_node.url, audit, spans, kill_one=True)

    assert 0 == produced, texts[-1]
    assert set(range(FIRST, FIRST + IDS)) == set(audit.updated()), texts
    assert [-signal.SIGKILL, 0, 0] == codes[:WORKERS], texts
