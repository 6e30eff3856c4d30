"""N processes sharing one limit through Redis: a single server, a Cluster, Sentinel.

Every process runs examples/fleet_redis.py's worker with its own client; the emulator allows
40 requests in any 2 s window and counts rejected ones. The aggregate rate is measured from
the server's first request to its last (the fleet's limit has a 0.1 s margin: at most 0.95). The servers are private ones on
loopback (tests/redis_server.py): one redis-server; a three-master cluster; a primary, a
replica and a sentinel.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
from _common import heading, row

sys.path.insert(0, str(Path(__file__).parent.parent))
from helpcrunch_async.emulator import EmulatorConfig, ServerLimit, serve
from tests.redis_server import redis_cluster, redis_sentinel, redis_server, single_redis

REQUESTS, PER, UPDATES = 40, 2.0, 200
#: Restart trials: three processes, a Redis restarted empty a third of the way through.
TRIALS, TRIAL_UPDATES = 6, 60
FLEET = Path(__file__).parent.parent / "examples" / "fleet_redis.py"


@contextlib.contextmanager
def topology(name: str) -> Iterator[str]:
    """Start the servers of one topology; yield the URL the limiter takes."""
    if name == "single":
        with redis_server() as url:
            yield url
    elif name == "cluster":
        with redis_cluster() as cluster:
            yield cluster.url
    else:
        with redis_sentinel() as sentinel:
            yield sentinel.url


def fleet_command(url: str, processes: int, updates: int) -> list[str]:
    return [
        sys.executable,
        str(FLEET),
        "--redis-url",
        url,
        "--processes",
        str(processes),
        "--first-id",
        "5215700",
        "--count",
        str(updates),
        "--rate",
        f"{REQUESTS}/{PER:g}",
    ]


def emulator_env(emulator) -> dict[str, str]:
    return os.environ | {
        "HELPCRUNCH_API_KEY": emulator.api_key,
        "HELPCRUNCH_BASE_URL": emulator.base_url,
    }


async def restart_trial() -> dict[str, int]:
    """One run of three processes during which Redis restarts empty; the server's counts."""
    config = EmulatorConfig(chats=TRIAL_UPDATES, rate_limit=ServerLimit(REQUESTS, PER))
    with single_redis() as node:
        async with serve(config) as emulator:
            async with await anyio.open_process(
                fleet_command(node.url, 3, TRIAL_UPDATES), env=emulator_env(emulator)
            ) as fleet:
                # The emulator runs in this event loop and has no hook: poll its counter.
                while emulator.stats()["requests"] < TRIAL_UPDATES // 3:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
                node.kill()
                node.start()
                await fleet.wait()
            return emulator.stats()


async def one_run(name: str, url: str, processes: int) -> None:
    config = EmulatorConfig(chats=UPDATES, rate_limit=ServerLimit(REQUESTS, PER))
    async with serve(config) as emulator:
        env = emulator_env(emulator)
        command = fleet_command(url, processes, UPDATES)
        started = time.perf_counter()
        changes: list[float] = []  # when the server's request count changed

        async def watch() -> None:
            count = 0
            while True:
                if emulator.stats()["requests"] != count:
                    count = emulator.stats()["requests"]
                    changes.append(time.perf_counter())
                await anyio.sleep(0.002)

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            done = await anyio.run_process(command, env=env)
            group.cancel_scope.cancel()
        elapsed = time.perf_counter() - started
        stats = emulator.stats()
    trips = sum(int(n) for n in re.findall(r"(\d+) Redis round trips", done.stdout.decode()))
    # The rate while the fleet sends: from the server's first request to its last, so that
    # starting the processes is not counted.
    rate = (stats["requests"] - 1) / (changes[-1] - changes[0])
    row(
        name,
        processes,
        f"{rate / (REQUESTS / PER):.2f}",
        f"{stats['max_in_window']}/{REQUESTS}",
        stats["rejected"],
        f"{trips / stats['requests']:.2f}",
        f"{elapsed:.1f} s",
    )


async def main() -> None:
    heading(f"{UPDATES} updates by N processes sharing {REQUESTS} per {PER:g} s through Redis")
    row(
        "Redis",
        "processes",
        "aggregate rate / limit",
        "busiest window",
        "429s",
        "Redis round trips per grant",
        "time",
    )
    row(*["---"] * 7)
    for name in ("single", "cluster", "sentinel"):
        with topology(name) as url:
            for processes in (1, 3):
                await one_run(name, url, processes)

    heading(
        f"Redis restarted empty a third of the way through {TRIAL_UPDATES} updates"
        f" by 3 processes ({TRIALS} trials, {REQUESTS} per {PER:g} s)"
    )
    row("trials", "over the limit", "busiest window", "429s")
    row(*["---"] * 4)
    results = [await restart_trial() for _ in range(TRIALS)]
    row(
        TRIALS,
        sum(r["max_in_window"] > REQUESTS for r in results),
        f"{max(r['max_in_window'] for r in results)}/{REQUESTS}",
        sum(r["rejected"] for r in results),
    )


if __name__ == "__main__":
    anyio.run(main)
