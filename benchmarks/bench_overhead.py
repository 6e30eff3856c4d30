"""What the SDK costs: CPU per request against raw httpx, and latency on an idle client.

Both clients talk to the same emulator, running in its own process so that its CPU is not
counted. CPU is this process's CPU time (time.process_time) per request.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import httpx
from _common import API_KEY, emulator_process, heading, row

import helpcrunch_async as hc

N, CONCURRENCY, ROUNDS = 500, 10, 31
LATENCY_TRIALS = 15
FIRST = 5_215_700


async def raw_httpx(url: str) -> float:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as http:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                answer = await http.put(
                    url + "/chats/status", json={"id": FIRST + i % 400, "status": "closed"}
                )
                answer.raise_for_status()
                json.loads(answer.content)

        await one(0)  # connect before measuring
        started = time.process_time()
        await asyncio.gather(*(one(i) for i in range(N)))
        return (time.process_time() - started) / N


async def sdk(url: str) -> float:
    async with hc.HelpCrunch(
        API_KEY, base_url=url, rate_limit=None, max_connections=CONCURRENCY
    ) as client:
        await client.chats.update_status(FIRST, "closed")
        started = time.process_time()
        await asyncio.gather(
            *(client.chats.update_status(FIRST + i % 400, "closed") for i in range(N))
        )
        return (time.process_time() - started) / N


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
        raw, ours = [], []
        for _ in range(ROUNDS):  # alternate, so drift in machine load hits both alike
            raw.append(await raw_httpx(url))
            ours.append(await sdk(url))
        # The VM's speed drifts by ±10 % over a minute: each SDK round is compared with the
        # raw round just before it, and the ratio is the median of those paired ratios.
        ratios = [o / r for r, o in zip(raw, ours, strict=True)]
        heading(
            f"CPU per request, limiting off ({N} updates, {CONCURRENCY} in flight, "
            f"{ROUNDS} alternating rounds)"
        )
        row("client", "CPU per request (median)", "ratio to raw httpx (median of paired rounds)")
        row("---", "---", "---")
        row("raw httpx", f"{statistics.median(raw) * 1e6:.0f} µs", "1.00")
        row(
            "helpcrunch-async",
            f"{statistics.median(ours) * 1e6:.0f} µs",
            f"{statistics.median(ratios):.3f} (rounds: {min(ratios):.3f} to {max(ratios):.3f})",
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
