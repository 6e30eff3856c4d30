"""The taskiq recipe (examples/fleet_taskiq) for real: workers, a scheduler, a producer, Redis.

Three ``taskiq worker`` processes, one ``taskiq scheduler`` and the producer, with the broker,
the shared limiter and the journal on one private redis-server, against the emulator with
its audit (tests/fleet.py). The workers are stopped with SIGTERM at the end, as a deployment
would stop them, and must run their shutdown hook.
"""

from __future__ import annotations

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

pytest.importorskip("taskiq_redis", reason="the taskiq recipe needs the taskiq extra")

pytestmark = [
    pytest.mark.redis,
    pytest.mark.emulator,
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.anyio,
]

RECIPE = Path(__file__).parent.parent / "examples" / "fleet_taskiq"
IDS, REQUESTS, PER = 240, 40, 2.0
FIRST = EmulatorState.FIRST_ID
WORKERS = 3
#: Seconds the whole recipe may take before the test fails instead of hanging.
TIMEOUT = 100
#: Seconds a worker has to stop after SIGTERM (its shutdown hook included).
STOP_TIMEOUT = 30


async def stop(process: anyio.abc.Process, signum: int = signal.SIGTERM) -> int | None:
    """Signal the process's group (taskiq's supervisor and its worker) and wait for it."""
    if process.returncode is None:
        os.killpg(process.pid, signum)
    with anyio.move_on_after(STOP_TIMEOUT):
        return await process.wait()
    os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
    return None


async def test_the_taskiq_recipe_runs_a_job_on_real_workers(redis_node, audit, tmp_path):
    """Chunks through a real broker: every chat updated, under the limit, one trace, clean stop."""
    config = EmulatorConfig(chats=IDS, rate_limit=ServerLimit(REQUESTS, PER))
    spans = tmp_path / "spans.jsonl"
    with tempfile.TemporaryDirectory() as logs:
        async with serve(config) as emulator:
            env = os.environ | {
                "HELPCRUNCH_API_KEY": emulator.api_key,
                "HELPCRUNCH_BASE_URL": emulator.base_url,
                "FLEET_REDIS_URL": redis_node.url,
                "FLEET_RATE": f"{REQUESTS}/{PER:g}",
                "FLEET_MARGIN": "0.2",
                "FLEET_LEASE": "3",
                "FLEET_MAX_WAIT": "2",
                "FLEET_CONCURRENCY": "2",
                "FLEET_SPANS_FILE": str(spans),
                "FLEET_READY_KEY": "test:ready",
            }
            worker = [sys.executable, "-m", "taskiq", "worker", "fleet_tasks:broker"]
            worker += ["--workers", "1", "--max-async-tasks", "2", "--max-prefetch", "0"]
            worker += ["--ack-type", "when_executed", "--log-level", "WARNING"]
            scheduler = [sys.executable, "-m", "taskiq", "scheduler", "fleet_tasks:scheduler"]
            scheduler += ["--update-interval", "1", "--log-level", "WARNING"]
            producer = [sys.executable, "producer.py", "--job", "close-240"]
            producer += ["--first-id", str(FIRST), "--count", str(IDS), "--stall", "5"]
            processes: list[anyio.abc.Process] = []
            outputs = [Path(logs) / f"{n}.txt" for n in range(WORKERS + 2)]

            async def start(command: list[str], out: Path) -> anyio.abc.Process:
                with out.open("wb") as file:
                    process = await anyio.open_process(
                        command,
                        cwd=RECIPE,
                        env=env,
                        stdout=file,
                        stderr=file,
                        start_new_session=True,
                    )
                processes.append(process)
                return process

            try:
                for number in range(WORKERS):
                    await start(worker, outputs[number])
                await start(scheduler, outputs[WORKERS])
                with anyio.fail_after(TIMEOUT), redis.Redis.from_url(redis_node.url) as probe:
                    while probe.scard("test:ready") < WORKERS:  # noqa: ASYNC110
                        await anyio.sleep(0.05)
                    job = await start(producer, outputs[WORKERS + 1])
                    produced = await job.wait()
                codes = [await stop(process) for process in processes[: WORKERS + 1]]
            finally:
                for process in processes:
                    await stop(process, signal.SIGKILL)
            assert 0 == emulator.stats()["rejected"]
        texts = [out.read_text() for out in outputs]

    assert 0 == produced, texts[-1]
    assert set(range(FIRST, FIRST + IDS)) == set(audit.updated()), texts
    assert REQUESTS >= audit.busiest(PER)
    assert [0] * WORKERS == codes[:WORKERS], texts  # the scheduler has no hook: it just ends
    assert codes[WORKERS] is not None
    assert all("shut down cleanly" in text for text in texts[:WORKERS]), texts
    summary = json.loads(texts[-1].splitlines()[-1])
    sdk = [json.loads(line) for line in spans.read_text().splitlines()]
    sdk = [span for span in sdk if span["name"] == "helpcrunch chats.update_status"]
    assert IDS <= len(sdk)
    assert {summary["trace_id"]} == {span["trace"] for span in sdk}
