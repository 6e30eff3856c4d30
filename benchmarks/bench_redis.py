"""N processes (1, 2, 4) sharing one limit through Redis, against a strict server.

Every process runs examples/fleet_redis.py's worker with its own client; the emulator allows
40 requests in any 2 s window and counts rejected ones.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
import redis
from _common import heading, row

sys.path.insert(0, str(Path(__file__).parent.parent))
from helpcrunch_async.emulator import EmulatorConfig, ServerLimit, serve
from tests.redis_server import redis_server

REQUESTS, PER, UPDATES = 40, 2.0, 200
FLEET = Path(__file__).parent.parent / "examples" / "fleet_redis.py"


async def one_run(redis_url: str, processes: int) -> None:
    config = EmulatorConfig(chats=UPDATES, rate_limit=ServerLimit(REQUESTS, PER))
    stats_client = redis.Redis.from_url(redis_url)
    stats_client.flushdb()
    before = stats_client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    async with serve(config) as emulator:
        env = os.environ | {
            "HELPCRUNCH_API_KEY": emulator.api_key,
            "HELPCRUNCH_BASE_URL": emulator.base_url,
        }
        command = [
            sys.executable,
            str(FLEET),
            "--redis-url",
            redis_url,
            "--processes",
            str(processes),
            "--first-id",
            "5215700",
            "--count",
            str(UPDATES),
            "--rate",
            f"{REQUESTS}/{PER:g}",
        ]
        started = time.perf_counter()
        await anyio.run_process(command, env=env)
        elapsed = time.perf_counter() - started
        stats = emulator.stats()
    calls = stats_client.info("commandstats")["cmdstat_evalsha"]["calls"] - before
    stats_client.close()
    rate = stats["requests"] / elapsed
    row(
        processes,
        f"{rate / (REQUESTS / PER):.2f}",
        f"{stats['max_in_window']}/{REQUESTS}",
        stats["rejected"],
        f"{calls / stats['requests']:.2f}",
        f"{elapsed:.1f} s",
    )


async def main() -> None:
    heading(f"{UPDATES} updates by N processes sharing {REQUESTS} per {PER:g} s through Redis")
    row(
        "processes",
        "aggregate rate / limit",
        "busiest window",
        "429s",
        "Redis round trips per grant",
        "time",
    )
    row(*["---"] * 6)
    with redis_server() as url:
        for processes in (1, 2, 4):
            await one_run(url, processes)


if __name__ == "__main__":
    anyio.run(main)
