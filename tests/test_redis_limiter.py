"""The Redis limiter's arithmetic shared by a fleet: learning, traffic classes, max_wait.

Each ``RedisRateLimiter`` here stands for one process: the only state they share is Redis's.
Where a test asserts a delay, the script's clock is pinned (its override, ``now``): the delays
are then exact, however long the machine takes between two calls.
"""

from __future__ import annotations

import functools

import anyio
import pytest
import redis

import helpcrunch_async as hc
from helpcrunch_async.redis import BACKGROUND_LOOKAHEAD, RedisRateLimiter

pytestmark = pytest.mark.redis

#: The script's clock, pinned where a test asserts delays (any time far from 0 will do).
NOW = 1000.0


@pytest.fixture
def flush(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def fleet(redis_url: str, key: str, n: int, **limit: float) -> list[RedisRateLimiter]:
    """``n`` limiters on one key, as ``n`` processes would have, with ``RateLimit(**limit)``."""
    budget = hc.RateLimit(**limit)  # type: ignore[arg-type]
    return [RedisRateLimiter.from_url(redis_url, key=key, limit=budget) for _ in range(n)]


def pin_clock(monkeypatch: pytest.MonkeyPatch, limiters: list[RedisRateLimiter]) -> None:
    """Every script call of ``limiters`` runs at ``NOW`` instead of Redis's TIME."""
    for limiter in limiters:
        monkeypatch.setattr(limiter, "_run", functools.partial(limiter._run, now=NOW))


async def close_all(limiters: list[RedisRateLimiter]) -> None:
    for limiter in limiters:
        await limiter.aclose()


@pytest.mark.anyio
async def test_one_process_429_teaches_every_process(anyio_backend, redis_url, flush):
    """A sends 21 in the window and gets a 429: B's next grant runs at the learned 20."""
    a, b = fleet(redis_url, "t:learn", 2, requests=40, per=30.0, burst=40)
    for _ in range(21):
        assert 0.0 <= await a._run("acquire", -1.0)

    await a.on_rate_limited(None)
    await b._run("acquire", -1.0, ahead=0.0)

    assert 20 == a.learned_limit
    assert 20 == b.learned_limit
    assert 20 == b.current_rate
    await close_all([a, b])


@pytest.mark.anyio
async def test_429s_in_flight_are_one_episode_for_the_fleet(anyio_backend, redis_url, flush):
    """Several processes reporting 429s for the same burst lower the shared rate once."""
    limiters = fleet(redis_url, "t:episode", 3, requests=40, per=30.0, burst=40)
    for _ in range(25):
        await limiters[0]._run("acquire", -1.0)

    for limiter in limiters:
        await limiter.on_rate_limited(None)

    assert 24 == limiters[-1].learned_limit
    await close_all(limiters)


@pytest.mark.anyio
async def test_headers_stated_limit_is_shared(anyio_backend, redis_url, flush):
    """A stated limit seen by one process caps the rate of all; the full one lifts it."""
    a, b = fleet(redis_url, "t:stated", 2, requests=120, per=60.0)

    await a.on_rate_limit_headers(hc.RateLimitHeaders(limit=60))
    await b._run("acquire", -1.0)
    lowered = b.learned_limit
    await b.on_rate_limit_headers(hc.RateLimitHeaders(limit=120))
    await a._run("acquire", -1.0)

    assert 60 == lowered
    assert a.learned_limit is None
    await close_all([a, b])


@pytest.mark.anyio
async def test_no_requests_remaining_pauses_the_fleet(anyio_backend, redis_url, flush, monkeypatch):
    """remaining=0 with a reset, seen by one process, pauses the next grant of another."""
    a, b = fleet(redis_url, "t:remaining", 2, requests=120, per=60.0)
    pin_clock(monkeypatch, [a, b])

    await a.on_rate_limit_headers(hc.RateLimitHeaders(remaining=0, reset=5.0))
    delay = await b._run("acquire", -1.0)

    assert 5.0 == delay
    await close_all([a, b])


@pytest.mark.anyio
async def test_interactive_from_any_process_skips_the_background_backlog(
    anyio_backend, redis_url, flush, monkeypatch
):
    """Background reserves only a slot within reach; another process's interactive gets it."""
    bulk, web = fleet(redis_url, "t:classes", 2, requests=10, per=10.0, burst=1, margin=0.0)
    pin_clock(monkeypatch, [bulk, web])
    interval = 1.0

    assert 0.0 <= await bulk._run("acquire", -1.0, ahead=BACKGROUND_LOOKAHEAD)
    refused = await bulk._run("acquire", -1.0, ahead=BACKGROUND_LOOKAHEAD)
    granted = await web._run("acquire", -1.0)

    assert interval == -refused  # nothing reserved: it will ask again
    assert interval == granted  # the very next slot
    await close_all([bulk, web])


@pytest.mark.anyio
async def test_saturating_bulk_process_leaves_the_next_slot_to_interactive(
    anyio_backend, redis_url, flush
):
    """A bulk process saturating the key leaves another's interactive call a slot in 2 intervals."""
    bulk, web = fleet(redis_url, "t:saturate", 2, requests=20, per=1.0, burst=1, margin=0.0)
    interval = 1.0 / 20
    granted: list[str] = []
    waits: list[float] = []

    async def saturate() -> None:
        while len(granted) < 30:
            await bulk.acquire(priority="background")
            granted.append("bulk")

    async def interactive() -> None:
        await anyio.sleep(0.3)
        reserved = await web._run("acquire", -1.0)
        waits.append(reserved)
        await anyio.sleep(reserved)
        granted.append("web")

    async with anyio.create_task_group() as tg:
        tg.start_soon(saturate)
        tg.start_soon(interactive)

    assert 1 == granted.count("web")
    assert waits[0] <= 2 * interval + BACKGROUND_LOOKAHEAD
    await close_all([bulk, web])


@pytest.mark.anyio
async def test_max_wait_refused_at_once_with_retry_after_and_nothing_reserved(
    anyio_backend, redis_url, flush, monkeypatch
):
    """A slot beyond max_wait is refused without sleeping, and the next caller gets it."""
    a, b = fleet(redis_url, "t:maxwait", 2, requests=10, per=10.0, burst=1, margin=0.0)
    pin_clock(monkeypatch, [a, b])
    await a.acquire()

    with pytest.raises(hc.LimiterTimeoutError) as caught:
        await a.acquire(deadline=anyio.current_time() + 0.2)
    delay = await b._run("acquire", -1.0)

    assert 1.0 == caught.value.retry_after
    assert 1.0 == delay  # the refused caller took nothing
    await close_all([a, b])


@pytest.mark.anyio
async def test_local_line_serves_interactive_before_background(anyio_backend, redis_url, flush):
    """Within one process the Redis limiter's line is the priority gate: interactive first."""
    (limiter,) = fleet(redis_url, "t:line", 1, requests=100, per=1.0, burst=1, margin=0.0)
    order: list[str] = []
    await limiter.acquire()

    async def one(name: str) -> None:
        priority = "interactive" if name[0] == "i" else "background"
        await limiter.acquire(priority=priority)  # type: ignore[arg-type]
        order.append(name)

    async with limiter._line.enter():  # hold the line while it forms
        async with anyio.create_task_group() as tg:
            for name in ["b0", "b1", "i0", "i1"]:
                tg.start_soon(one, name)
                await anyio.sleep(0.01)
            limiter._line.release()
            await limiter._line.acquire("background")  # back in line last, for enter()'s exit
    assert ["i0", "i1", "b0", "b1"] == order
    await limiter.aclose()
