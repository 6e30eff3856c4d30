"""Time for N updates under a strict sliding-window limit, against the physical limit.

The server (the emulator) allows at most 40 requests in any 2 s window and counts rejected
requests too. Side by side: this SDK, and the code a user would otherwise write (httpx, a
tenacity retry on 429, asyncio.gather).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import httpx
import tenacity
from _common import heading, row

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, ServerLimit, serve

REQUESTS, PER, N = 40, 2.0, 300
NAIVE_DEADLINE = 120.0


async def with_sdk(url: str, key: str, ids: list[int]) -> int:
    limit = hc.RateLimit(requests=REQUESTS, per=PER, margin=0.02)
    async with hc.HelpCrunch(key, base_url=url, rate_limit=limit) as client:
        await asyncio.gather(*(client.chats.update_status(i, "closed") for i in ids))
        return client.stats().throttled


async def naive(url: str, key: str, ids: list[int]) -> int:
    rejected = 0

    def is_429(exc: BaseException) -> bool:
        nonlocal rejected
        hit = isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 429
        rejected += hit
        return hit

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:

        @tenacity.retry(
            retry=tenacity.retry_if_exception(is_429),
            wait=tenacity.wait_random_exponential(multiplier=0.5, max=30),
            stop=tenacity.stop_after_attempt(20),
        )
        async def close(chat_id: int) -> None:
            answer = await http.put(url + "/chats/status", json={"id": chat_id, "status": "closed"})
            answer.raise_for_status()
            json.loads(answer.content)

        with contextlib.suppress(asyncio.TimeoutError):  # what did not finish shows as not updated
            await asyncio.wait_for(asyncio.gather(*(close(i) for i in ids)), NAIVE_DEADLINE)
    return rejected


async def run(name: str, job: object) -> None:
    config = EmulatorConfig(chats=N, rate_limit=ServerLimit(REQUESTS, PER))
    async with serve(config) as emulator:
        ids = sorted(emulator.state.chats)
        started = time.perf_counter()
        await job(emulator.base_url, emulator.api_key, ids)  # type: ignore[operator]
        elapsed = time.perf_counter() - started
        stats = emulator.stats()
        closed = sum(c["status"] == "closed" for c in emulator.state.chats.values())
    physical = N * PER / REQUESTS
    share = 100 * stats["rejected"] / max(stats["requests"], 1)
    row(
        name,
        f"{closed}/{N}",
        f"{elapsed:.1f} s",
        f"{elapsed / physical:.3f}",
        stats["requests"],
        f"{stats['rejected']} ({share:.1f} %)",
        f"{stats['max_in_window']}/{REQUESTS}",
    )


async def main() -> None:
    heading(
        f"{N} updates, strict limit {REQUESTS} per {PER:g} s (physical limit {N * PER / REQUESTS:.1f} s)"
    )
    row("client", "updated", "time", "time / physical limit", "requests", "429s", "busiest window")
    row(*["---"] * 7)
    await run("helpcrunch-async", with_sdk)
    await run("httpx + tenacity + gather", naive)


if __name__ == "__main__":
    asyncio.run(main())
