"""Interactive latency while a bulk job saturates the limit: one FIFO line vs traffic classes.

A bulk job keeps 200 calls queued on the limiter (40 per 2 s); meanwhile an interactive call
asks for a slot every 0.6 s. Side by side: the bulk job in the same line as the interactive calls
(FIFO, the behaviour before traffic classes) and the bulk job as ``"background"``. Locally,
through Redis in the same process, and through Redis with the bulk job in another process.
The figures are limiter grants (the wait a call has before it may be sent).

Then HelpCrunch's real limit, 120 per 60 s with the default settings: a web call every 3 s
from t = 45 s to t = 70 s of a saturating bulk job (whole clients, 10 connections each),
locally and with the bulk job in another process through Redis. Minutes of real time per
run, so it runs on trio's virtual clock (``tests/strict_server.py``), where the figures are
exact: the grant waits, and the most requests the server saw in any 60 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio
import trio
import trio.testing
from _common import heading, row

sys.path.insert(0, str(Path(__file__).parent.parent))
import helpcrunch_async as hc
from helpcrunch_async.redis import RedisRateLimiter
from tests.redis_server import redis_server
from tests.strict_server import DEFAULTS, fleet_of, interactive_waits

REQUESTS, PER, MARGIN = 40, 2.0, 0.02
BULK, PROBES, PROBE_EVERY, WARMUP = 200, 5, 0.6, 1.0
INTERVAL = (PER + MARGIN) / REQUESTS
KEY = "bench:priority"

Limiter = hc.LocalRateLimiter | RedisRateLimiter


def redis_limiter(url: str) -> RedisRateLimiter:
    limit = hc.RateLimit(requests=REQUESTS, per=PER, margin=MARGIN)
    return RedisRateLimiter.from_url(url, limit=limit, key=KEY)


async def bulk(limiter: Limiter, priority: str, granted: list[float]) -> None:
    async def one() -> None:
        while True:  # keep the line full: a saturating job
            await limiter.acquire(priority=priority)  # type: ignore[arg-type]
            granted.append(time.perf_counter())

    async with anyio.create_task_group() as tg:
        for _ in range(BULK):
            tg.start_soon(one)


async def probe(limiter: Limiter) -> list[float]:
    waits = []
    await anyio.sleep(WARMUP)
    for _ in range(PROBES):
        asked = time.perf_counter()
        await limiter.acquire(priority="interactive")
        waits.append(time.perf_counter() - asked)
        await anyio.sleep(PROBE_EVERY)
    return waits


async def same_process(limiter: Limiter, priority: str) -> tuple[list[float], float]:
    granted: list[float] = []
    waits: list[float] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(bulk, limiter, priority, granted)
        waits = await probe(limiter)
        tg.cancel_scope.cancel()
    return waits, throughput(granted)


def throughput(granted: list[float]) -> float:
    """Bulk grants per second after the first window, as a share of the limit."""
    window = PER + MARGIN
    start = granted[0] + window
    if granted[-1] - start < window / 2:
        return float("nan")
    count = sum(start <= t for t in granted)
    return count / ((granted[-1] - start) * REQUESTS / window)


async def other_process(url: str, priority: str) -> tuple[list[float], float]:
    bulk_process = await anyio.open_process(
        [sys.executable, __file__, "--bulk", url, priority], stdout=subprocess.DEVNULL
    )
    try:
        limiter = redis_limiter(url)
        waits = await probe(limiter)
        await limiter.aclose()
    finally:
        bulk_process.terminate()
        await bulk_process.wait()
    return waits, float("nan")


def cells(result: tuple[list[float], float]) -> list[str]:
    waits, share = result
    median, worst = statistics.median(waits), max(waits)
    return [
        f"{median:.3f} s ({median / INTERVAL:.1f})",
        f"{worst:.3f} s ({worst / INTERVAL:.1f})",
        "" if share != share else f"{share:.2f}",  # noqa: PLR0124 - NaN: not measured
    ]


async def main() -> None:
    heading(
        f"Interactive grant latency while a bulk job keeps {BULK} calls queued at {REQUESTS} per {PER:g} s"
        f" (interval {INTERVAL * 1000:.1f} ms; in intervals in brackets)"
    )
    row("limiter", "bulk job's class", "median wait", "worst wait", "bulk rate / limit")
    row(*["---"] * 5)
    import redis  # noqa: PLC0415 - the redis extra

    with redis_server() as url:
        for name in ("local", "Redis, same process", "Redis, bulk in another process"):
            for priority in ("interactive", "background"):
                redis.Redis.from_url(url).flushdb()
                label = "FIFO (same line)" if priority == "interactive" else "background"
                if name == "local":
                    limiter: Limiter = hc.LocalRateLimiter(
                        hc.RateLimit(requests=REQUESTS, per=PER, margin=MARGIN)
                    )
                    result = await same_process(limiter, priority)
                elif name == "Redis, same process":
                    limiter = redis_limiter(url)
                    result = await same_process(limiter, priority)
                    await limiter.aclose()
                else:
                    result = await other_process(url, priority)
                row(name, label, *cells(result))


#: The web calls at the real limit: every 3 s from t = 45 s to t = 70 s of the bulk job.
REAL_ASKS = [45.0 + 3 * k for k in range(9)]


async def real_limit_waits(redis_url: str | None) -> tuple[list[float], int]:
    """The web calls' waits at 120 per 60 s with defaults; the most in any 60 s window."""
    if redis_url is None:
        bulk = web = hc.LocalRateLimiter(DEFAULTS)
    else:
        bulk, web = fleet_of(redis_url, "bench:priority:real", 2, DEFAULTS)
    waits, server = await interactive_waits(bulk, web, DEFAULTS, REAL_ASKS)
    return waits, server.most_in_any_window("bulk", "web")


def real_limit_table() -> None:
    interval = DEFAULTS.window / DEFAULTS.requests
    heading(
        f"Web calls every 3 s from t = 45 s to 70 s of a saturating bulk job at"
        f" {DEFAULTS.requests} per {DEFAULTS.per:g} s with the defaults (burst {DEFAULTS.burst},"
        f" margin {DEFAULTS.margin:g} s, interval {interval:.3f} s; trio's virtual clock)"
    )
    row("bulk job", "median wait", "worst wait", "most in any 60 s")
    row(*["---"] * 4)
    with redis_server() as url:
        for name, through in (("same process", None), ("another process, Redis", url)):
            clock = trio.testing.MockClock(autojump_threshold=0)
            waits, most = trio.run(real_limit_waits, through, clock=clock)
            median, worst = statistics.median(waits), max(waits)
            row(name, f"{median:.3f} s", f"{worst:.3f} s", f"{most}/{DEFAULTS.requests}")


async def bulk_forever(url: str, priority: str) -> None:
    await bulk(redis_limiter(url), priority, [])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--bulk"]:
        anyio.run(bulk_forever, sys.argv[2], sys.argv[3])
    else:
        anyio.run(main)
        real_limit_table()
