"""Learning the key's real limit: a client configured for 40 per 2 s against lower real limits.

The emulator allows a real limit of 100 %, 75 %, 50 % and 25 % of the configured one (a strict
sliding window that counts rejected requests too). Side by side: the time for N updates as a
multiple of what the real limit allows, and the share of requests answered 429; locally, and
through Redis with several processes. Last, the real limit goes from half back to the full
configured one in the middle of a job: how many windows until the client is back at the full
rate.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import attrs
from _common import heading, row

sys.path.insert(0, str(Path(__file__).parent.parent))
import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, ServerLimit, serve
from tests.redis_server import redis_server

REQUESTS, PER, MARGIN, N = 40, 2.0, 0.02, 600
SHARES = (1.0, 0.75, 0.5, 0.25)
REDIS_SHARES = (1.0, 0.5)
PROCESSES = 3
#: Updates sent at half the limit before the real limit goes back up.
RECOVERY_SWITCH = 300


async def gather_updates(client: hc.HelpCrunch, ids: list[int]) -> None:
    await asyncio.gather(*(client.chats.update_status(i, "closed") for i in ids))


async def local(url: str, key: str, ids: list[int]) -> int | None:
    limiter = hc.LocalRateLimiter(hc.RateLimit(requests=REQUESTS, per=PER, margin=MARGIN))
    async with hc.HelpCrunch(key, base_url=url, rate_limit=limiter) as client:
        await gather_updates(client, ids)
    return limiter.learned_limit


async def worker(url: str, key: str, redis_url: str, ids: list[int]) -> None:
    """One process of the fleet (run as ``bench_learning.py --worker ...``)."""
    from helpcrunch_async.redis import RedisRateLimiter  # noqa: PLC0415 - the redis extra

    limiter = RedisRateLimiter.from_url(
        redis_url,
        limit=hc.RateLimit(requests=REQUESTS, per=PER, margin=MARGIN),
        key="bench:learning",
    )
    async with hc.HelpCrunch(key, base_url=url, rate_limit=limiter) as client:
        await gather_updates(client, ids)
    print(json.dumps({"learned": limiter.learned_limit}), flush=True)
    await limiter.aclose()


async def fleet(url: str, key: str, ids: list[int], redis_url: str) -> int | None:
    import redis  # noqa: PLC0415 - the redis extra

    redis.Redis.from_url(redis_url).flushdb()
    share = len(ids) // PROCESSES
    slices = [ids[k * share : (k + 1) * share] for k in range(PROCESSES - 1)]
    slices.append(ids[(PROCESSES - 1) * share :])
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--worker",
            url,
            key,
            redis_url,
            ",".join(map(str, part)),
            stdout=asyncio.subprocess.PIPE,
        )
        for part in slices
    ]
    learned = []
    for process in processes:
        out, _ = await process.communicate()
        learned.append(json.loads(out.decode().strip().splitlines()[-1])["learned"])
    return None if learned[-1] is None else int(learned[-1])


async def measure(real: int, job: object, *extra: object) -> tuple[str, ...]:
    config = EmulatorConfig(chats=N, rate_limit=ServerLimit(real, PER))
    async with serve(config) as emulator:
        ids = sorted(emulator.state.chats)
        started = time.perf_counter()
        learned = await job(emulator.base_url, emulator.api_key, ids, *extra)  # type: ignore[operator]
        elapsed = time.perf_counter() - started
        stats = emulator.stats()
    ideal = N * PER / real
    share = 100 * stats["rejected"] / max(stats["requests"], 1)
    return (
        f"{elapsed / ideal:.3f}",
        f"{stats['rejected']} ({share:.1f} %)",
        "-" if learned is None else str(learned),
    )


async def recovery() -> None:
    config = EmulatorConfig(chats=N, rate_limit=ServerLimit(REQUESTS // 2, PER))
    window = PER + MARGIN
    async with serve(config) as emulator:
        ids = sorted(emulator.state.chats)
        limiter = hc.LocalRateLimiter(hc.RateLimit(requests=REQUESTS, per=PER, margin=MARGIN))
        marks: dict[str, float] = {}

        async def watch() -> None:
            while "full" not in marks:
                await asyncio.sleep(0.02)
                if "raised" in marks and limiter.current_rate >= REQUESTS:
                    marks["full"] = time.perf_counter()

        async with hc.HelpCrunch(
            emulator.api_key, base_url=emulator.base_url, rate_limit=limiter
        ) as client:
            watcher = asyncio.ensure_future(watch())
            await gather_updates(client, ids[:RECOVERY_SWITCH])
            learned = limiter.learned_limit
            emulator.state.config = attrs.evolve(config, rate_limit=ServerLimit(REQUESTS, PER))
            marks["raised"] = time.perf_counter()
            await gather_updates(client, ids[RECOVERY_SWITCH:])
            watcher.cancel()
        stats = emulator.stats()
    back = (marks["full"] - marks["raised"]) / window if "full" in marks else float("nan")
    heading(
        f"Real limit back from {REQUESTS // 2} to {REQUESTS} per {PER:g} s"
        f" after {RECOVERY_SWITCH} updates (local)"
    )
    row("learned before", "windows until the full rate again", "429s over the whole job")
    row(*["---"] * 3)
    row(learned, f"{back:.1f}", stats["rejected"])


async def main() -> None:
    heading(
        f"{N} updates, client configured for {REQUESTS} per {PER:g} s, against a lower real"
        " limit: time / what the real limit allows, 429 share, learned limit"
    )
    row(
        "real limit",
        "local: time",
        "local: 429s",
        "local: learned",
        *(f"Redis x{PROCESSES}: {c}" for c in ("time", "429s", "learned")),
    )
    row(*["---"] * 7)
    with redis_server() as redis_url:
        for share in SHARES:
            real = round(REQUESTS * share)
            local_cells = await measure(real, local)
            redis_cells = (
                await measure(real, fleet, redis_url) if share in REDIS_SHARES else ("",) * 3
            )
            row(f"{real} per {PER:g} s ({share:.0%})", *local_cells, *redis_cells)
    await recovery()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        url, key, redis_url, ids = sys.argv[2:6]
        asyncio.run(worker(url, key, redis_url, [int(i) for i in ids.split(",")]))
    else:
        asyncio.run(main())
