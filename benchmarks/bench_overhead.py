"""What the SDK costs: CPU per request against raw httpx, and latency on an idle client.

Both clients talk to the same emulator, running in its own process so that its CPU is not
counted. CPU is this process's CPU time (time.process_time) per request, measured over
alternating batches of the two clients.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
from _common import API_KEY, emulator_process, heading, row

import helpcrunch_async as hc

CONCURRENCY = 10
#: Requests per batch, and batches per client: the two clients' batches alternate.
BATCH, BATCHES = 200, 50
LATENCY_TRIALS = 15
FIRST = 5_215_700


async def cpu_per_request(url: str) -> tuple[list[float], list[float]]:
    """CPU per request of each batch, for raw httpx and for the SDK.

    Both clients stay open for the whole run, with their pools full, and their batches
    alternate, each leading in turn: this VM's speed drifts by 10 % and more within a minute,
    and a drift then hits both alike. Garbage is collected, untimed, before each batch.
    """
    limits = httpx.Limits(max_connections=CONCURRENCY)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as http,
        hc.HelpCrunch(
            API_KEY, base_url=url, rate_limit=None, max_connections=CONCURRENCY
        ) as client,
    ):
        gate = asyncio.Semaphore(CONCURRENCY)

        async def raw_one(i: int) -> None:
            async with gate:
                answer = await http.put(
                    url + "/chats/status", json={"id": FIRST + i % 400, "status": "closed"}
                )
                answer.raise_for_status()
                json.loads(answer.content)

        async def sdk_one(i: int) -> None:
            await client.chats.update_status(FIRST + i % 400, "closed")

        async def batch(one: Callable[[int], Awaitable[None]]) -> float:
            # The garbage of the batch before is collected untimed: it is not charged to
            # whichever client comes next.
            gc.collect()
            started = time.process_time()
            await asyncio.gather(*(one(i) for i in range(BATCH)))
            return (time.process_time() - started) / BATCH

        await batch(raw_one)  # fill both pools before measuring
        await batch(sdk_one)
        raw, ours = [], []
        for number in range(BATCHES):  # raw first, then the SDK first: neither always leads
            if number % 2 == 0:
                raw.append(await batch(raw_one))
                ours.append(await batch(sdk_one))
            else:
                ours.append(await batch(sdk_one))
                raw.append(await batch(raw_one))
        return raw, ours


async def five_at_once(url: str, rate_limit: hc.RateLimit | None) -> tuple[float, float]:
    """Wall time of 5 concurrent calls, and the time they spent waiting for the limiter."""
    async with hc.HelpCrunch(API_KEY, base_url=url, rate_limit=rate_limit) as client:
        await asyncio.gather(*(client.chats.get(FIRST + i) for i in range(5)))  # warm pool
        await asyncio.sleep(1.0)  # let the bucket refill: the key is idle again
        waited = client.stats().limiter_wait
        started = time.perf_counter()
        await asyncio.gather(*(client.chats.update_status(FIRST + i, "opened") for i in range(5)))
        return time.perf_counter() - started, client.stats().limiter_wait - waited


async def main() -> None:
    with emulator_process("--rate-limit", "none", "--chats", "400") as url:
        raw, ours = await cpu_per_request(url)
        ratios = sorted(o / r for r, o in zip(raw, ours, strict=True))
        heading(
            f"CPU per request, limiting off ({BATCHES} batches of {BATCH} updates per client, "
            f"{CONCURRENCY} in flight, batches alternating)"
        )
        row("client", "CPU per request (mean)", "ratio to raw httpx (all batches)")
        row("---", "---", "---")
        row("raw httpx", f"{statistics.fmean(raw) * 1e6:.0f} µs", "1.00")
        quartiles = statistics.quantiles(ratios, n=4)
        row(
            "helpcrunch-async",
            f"{statistics.fmean(ours) * 1e6:.0f} µs",
            f"{sum(ours) / sum(raw):.3f} (paired batches: median {statistics.median(ratios):.3f}, "
            f"middle half {quartiles[0]:.3f} to {quartiles[2]:.3f})",
        )

        limited, unlimited = [], []
        for _ in range(LATENCY_TRIALS):  # alternate, as above
            limited.append(await five_at_once(url, hc.RateLimit()))
            unlimited.append(await five_at_once(url, None))
        # Wall times on loopback are bimodal (a ~40 ms delayed-ACK stall hits either client
        # at random), so the limiter's own share is read from what it reports it waited.
        heading(f"5 concurrent calls on an idle client (median of {LATENCY_TRIALS} trials)")
        row("client", "wall time", "waited on the limiter (5 calls, worst trial)")
        row("---", "---", "---")
        row("rate_limit=None", f"{statistics.median(w for w, _ in unlimited) * 1e3:.1f} ms", "")
        worst = max(waited for _, waited in limited)
        row(
            "default RateLimit()",
            f"{statistics.median(w for w, _ in limited) * 1e3:.1f} ms",
            f"{worst * 1e3:.2f} ms",
        )


if __name__ == "__main__":
    asyncio.run(main())
