"""Many updates at once: gather over 10,000 calls, and a stream over 20,000 ids.

Limiting is off here (the emulator has no limit) so the figures show the SDK's own cost:
tasks, connections and memory must stay bounded however many ids there are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psutil
from _common import API_KEY, emulator_process, heading, row

import helpcrunch_async as hc

FIRST, CHATS = 5_215_700, 1000


class Sampler:
    """Samples this process's tasks, TCP connections and RSS while a job runs."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.tasks = self.connections = 0
        self.rss_start = self.rss_peak = self.process.memory_info().rss

    async def run(self) -> None:
        while True:
            self.tasks = max(self.tasks, len(asyncio.all_tasks()))
            self.connections = max(self.connections, len(self.process.net_connections("tcp")))
            self.rss_peak = max(self.rss_peak, self.process.memory_info().rss)
            await asyncio.sleep(0.05)


def ids(count: int) -> Iterator[int]:
    for i in range(count):
        yield FIRST + i % CHATS


async def gather_10k(url: str) -> None:
    sampler = Sampler()
    watcher = asyncio.create_task(sampler.run())
    async with hc.HelpCrunch(API_KEY, base_url=url, rate_limit=None) as client:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(client.chats.update_status(i, "closed") for i in ids(10_000)), return_exceptions=True
        )
        elapsed = time.perf_counter() - started
    watcher.cancel()
    ok = sum(isinstance(r, hc.Chat) for r in results)
    heading("asyncio.gather over 10,000 update_status calls on one client")
    row("succeeded", "peak TCP connections", "throughput")
    row("---", "---", "---")
    row(
        f"{ok}/10000",
        f"{sampler.connections} (max_connections={client.max_connections})",
        f"{10_000 / elapsed:.0f} updates/s",
    )


async def stream_20k(url: str) -> None:
    sampler = Sampler()
    watcher = asyncio.create_task(sampler.run())
    count = 25_000
    async with hc.HelpCrunch(API_KEY, base_url=url, rate_limit=None) as client:
        started = time.perf_counter()
        first = None
        done = 0
        # Distinct ids, so none is skipped as a duplicate: the emulator knows CHATS of them,
        # the rest are answered 404 and come back as failed outcomes.
        source = (FIRST + i for i in range(count))
        async with client.chats.stream_update_status(source, "closed") as outcomes:
            async for _ in outcomes:
                if first is None:
                    first = time.perf_counter() - started
                done += 1
        elapsed = time.perf_counter() - started
    watcher.cancel()
    heading(f"stream_update_status over {count:,} ids from a generator")
    row("outcomes", "peak tasks", "RSS growth", "time to first outcome", "throughput")
    row("---", "---", "---", "---", "---")
    growth = (sampler.rss_peak - sampler.rss_start) / 2**20
    row(
        done,
        sampler.tasks,
        f"{growth:.1f} MiB",
        f"{(first or 0) * 1e3:.0f} ms",
        f"{done / elapsed:.0f} outcomes/s",
    )


async def main() -> None:
    with emulator_process("--rate-limit", "none", "--chats", str(CHATS)) as url:
        await gather_10k(url)
        await stream_20k(url)


if __name__ == "__main__":
    asyncio.run(main())
