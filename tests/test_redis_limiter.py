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
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async.redis import BACKGROUND_LOOKAHEAD, RedisRateLimiter
from tests.strict_server import on_virtual_time

pytestmark = pytest.mark.redis
VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)

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


async def send(limiter: RedisRateLimiter, count: int, now: float) -> float:
    """``count`` background grants from ``now`` on the script's clock; the last one's time."""
    for _ in range(count):
        delay = await limiter._run("acquire", -1.0, now=now, priority="background")
        now += delay
    return now


@pytest.mark.anyio
async def test_one_429_teaches_no_process_anything(anyio_backend, redis_url, flush):
    """A's 429 is a busy key: the whole fleet pauses a window, and nothing is learned."""
    a, b = fleet(redis_url, "t:busy", 2, requests=40, per=2.0, margin=0.0)
    last = await send(a, 21, 1000.0)

    pause = await a._run("penalize", -1.0, now=last + 0.003, age=0.003)
    delay = await b._run("acquire", -1.0, now=last + 0.003)

    assert 2.0 == pytest.approx(pause) == pytest.approx(delay)
    assert a.learned_limit is None
    assert b.learned_limit is None
    assert 40 == b.current_rate
    await close_all([a, b])


@pytest.mark.anyio
async def test_a_429_that_recurs_in_one_process_teaches_every_process(
    anyio_backend, redis_url, flush
):
    """A's 429, a window's pause, then B's 429 at the 21st request of the window after:
    evidence; every process holds to 20 from its next round trip."""
    a, b, c = fleet(redis_url, "t:learn", 3, requests=40, per=2.0, margin=0.0)
    last = await send(a, 21, 1000.0)
    await a._run("penalize", -1.0, now=last + 0.003, age=0.003)
    last = await send(b, 21, last + 0.003)

    await b._run("penalize", -1.0, now=last + 0.003, age=0.003)
    await c._run("acquire", -1.0, now=last + 0.003, ahead=0.0)

    assert 20 == b.learned_limit == c.learned_limit
    assert 20 == c.current_rate
    await close_all([a, b, c])


@pytest.mark.anyio
async def test_429s_in_flight_are_one_episode_for_the_fleet(anyio_backend, redis_url, flush):
    """Processes reporting 429s for requests sent before the pause began add nothing: the
    pause reported is what is left of it, and nothing is learned."""
    limiters = fleet(redis_url, "t:episode", 3, requests=40, per=2.0, margin=0.0)
    last = await send(limiters[0], 25, 1000.0)

    pauses = [
        await limiter._run("penalize", -1.0, now=last + 0.003 * k, age=0.003 * k + 0.01)
        for k, limiter in enumerate(limiters, start=1)
    ]

    assert pytest.approx([2.0, 1.997, 1.994]) == pauses
    assert limiters[-1].learned_limit is None
    await close_all(limiters)


@pytest.mark.anyio
async def test_headers_stated_limit_is_shared(anyio_backend, redis_url, flush):
    """A stated limit seen by one process caps the rate of all; the full one lifts it."""
    a, b = fleet(redis_url, "t:stated", 2, requests=120, per=60.0)

    await a.on_rate_limit_headers(hc.RateLimitHeaders(limit=60))
    await b._run("acquire", -1.0)
    lowered = b.current_rate, b.learned_limit
    await b.on_rate_limit_headers(hc.RateLimitHeaders(limit=120))
    await a._run("acquire", -1.0)

    assert (60, 60) == lowered
    assert 120 == a.current_rate
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
@VIRTUAL
async def test_an_interactive_call_from_another_process_waits_at_most_about_an_interval(
    anyio_backend, redis_url, flush
):
    """Five background callers saturate the key from one process (10 per 10 s); another
    process's interactive call takes the next slot (0.7 s away), not a place after them."""
    bulk, web = fleet(redis_url, "t:lookahead", 2, requests=10, per=10.0, burst=1, margin=0.0)
    for limiter in (bulk, web):
        on_virtual_time(limiter)
    waited: list[float] = []

    async def saturate() -> None:
        while True:
            await bulk.acquire(priority="background")

    async def interactive() -> None:
        await anyio.sleep(3.3)
        start = anyio.current_time()
        await web.acquire()
        waited.append(anyio.current_time() - start)

    with anyio.move_on_after(8.0):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(saturate)
            tg.start_soon(interactive)

    assert [0.7] == [round(wait, 6) for wait in waited]
    await close_all([bulk, web])


@pytest.mark.anyio
@VIRTUAL
async def test_at_a_high_rate_background_reserves_at_most_half_an_interval_ahead(
    anyio_backend, redis_url, flush
):
    """At 40 per 2 s (one every 0.05 s) a background caller leaves the slot 0.04 s away
    (past half an interval) unreserved: another process's interactive call takes it."""
    bulk, web = fleet(redis_url, "t:share", 2, requests=40, per=2.0, burst=1, margin=0.0)
    for limiter in (bulk, web):
        on_virtual_time(limiter)
    await bulk.acquire()
    await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(bulk.acquire, priority="background"))
        await anyio.wait_all_tasks_blocked()
        start = anyio.current_time()
        await web.acquire()
        waited = anyio.current_time() - start

    assert 0.04 == round(waited, 6)
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
@VIRTUAL
async def test_a_saturating_background_job_asks_redis_once_per_grant(
    anyio_backend, redis_url, flush
):
    """Its callers ask when their slot can be within reach, not at once after the last grant
    (a reservation is at most half an interval ahead, the pace one interval): one round trip
    per grant, and the full rate."""
    (limiter,) = fleet(redis_url, "t:trips", 1, requests=40, per=2.0, margin=0.0)
    on_virtual_time(limiter)
    grants: list[float] = []

    async def bulk() -> None:
        while True:
            await limiter.acquire(priority="background")
            grants.append(anyio.current_time())

    with anyio.move_on_after(3 * 2.0):
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(bulk)

    assert 3 * 40 == len(grants)
    assert len(grants) + 1 >= limiter.round_trips
    await limiter.aclose()


@pytest.mark.anyio
@VIRTUAL
async def test_a_background_caller_never_holds_an_interactive_one_in_a_process(
    anyio_backend, redis_url, flush, monkeypatch
):
    """Within one process each class has a lane: arrivals b0 b1 i0 i1, granted i0 i1 b0 b1,
    one a second (on the virtual clock)."""
    (limiter,) = fleet(redis_url, "t:lanes", 1, requests=10, per=10.0, burst=1, margin=0.0)
    on_virtual_time(limiter)
    granted: list[tuple[str, float]] = []
    await limiter.acquire()
    start = anyio.current_time()

    async def one(name: str) -> None:
        priority = "interactive" if name[0] == "i" else "background"
        await limiter.acquire(priority=priority)  # type: ignore[arg-type]
        granted.append((name, anyio.current_time() - start))

    async with anyio.create_task_group() as tg:
        for name in ["b0", "b1", "i0", "i1"]:
            tg.start_soon(one, name)
            await anyio.wait_all_tasks_blocked()

    assert ["i0", "i1", "b0", "b1"] == [name for name, _ in granted]
    assert pytest.approx([1.0, 2.0, 3.0, 4.0]) == [t for _, t in granted]
    await limiter.aclose()
