"""The limiter: GCRA arithmetic with plain numbers, and the async limiter on virtual time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import anyio
import anyio.lowlevel
import pytest
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async._limiter import GCRA


def most_in_any_window(times: Sequence[float], window: float) -> int:
    """The largest number of grants inside any half-open window [t, t + window).

    Differences are compared with a nanosecond tolerance: float sums such as 0.2 + 1.0 - 0.2
    must not read as a window shorter than it is.
    """
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window - 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


def greedy(gcra: GCRA, count: int, *, start: float = 0.0) -> list[float]:
    """Grant ``count`` requests as early as the schedule allows."""
    times = []
    now = start
    for _ in range(count):
        now = gcra.next_time(now)
        gcra.take(now)
        times.append(now)
    return times


# --- arithmetic --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limit",
    [
        hc.RateLimit(),
        hc.RateLimit(requests=40, per=2.0, burst=40, margin=0.0),
        hc.RateLimit(requests=5, per=1.0, burst=1, margin=0.0),
        hc.RateLimit(requests=1, per=1.0),
    ],
)
def test_no_window_ever_exceeds_the_limit(limit):
    """Under greedy load no window of ``per + margin`` holds more than ``requests``, bursts too."""
    times = greedy(GCRA(limit), limit.requests * 5)

    assert limit.requests >= most_in_any_window(times, limit.per + limit.margin)


@pytest.mark.parametrize(
    ("burst", "expected"),
    [
        (1, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
        (4, [0.0, 0.0, 0.0, 0.0, 4.0, 4.0, 4.0, 4.0, 8.0]),
    ],
)
def test_the_margin_widens_the_window_the_limiter_keeps(burst, expected):
    """4 per 3 s with a 1 s margin: spaced 4 s / 4 apart, and a full burst waits 4 s, not 3."""
    limit = hc.RateLimit(requests=4, per=3.0, burst=burst, margin=1.0)

    assert expected == greedy(GCRA(limit), 9)


def test_burst_on_idle_key_then_steady_pace():
    """An idle key lets ``burst`` requests go at once, then spaces them window/requests apart."""
    limit = hc.RateLimit(requests=120, per=60.0, burst=10, margin=0.0)

    times = greedy(GCRA(limit), 12)

    assert [0.0] * 10 == times[:10]
    assert [0.5, 1.0] == times[10:]


def test_long_run_rate_is_the_configured_rate():
    """Over many windows the pace is exactly requests per (per + margin): 1,201 grants, 605 s."""
    times = greedy(GCRA(hc.RateLimit(requests=120, per=60.0, margin=0.5)), 120 * 10 + 1)

    assert pytest.approx(10 * 60.5) == times[-1] - times[0]


def test_the_grant_record_never_outgrows_the_limit():
    """However long a process runs, the limiter remembers at most ``requests`` grant times."""
    gcra = GCRA(hc.RateLimit(requests=5, per=1.0))

    greedy(gcra, 1000)

    assert 5 == len(gcra.grants)


def test_calls_below_the_rate_never_wait():
    """Requests that arrive slower than the rate are granted at their arrival time."""
    gcra = GCRA(hc.RateLimit(requests=120, per=60.0))
    for arrival in range(0, 300, 1):  # one per second: half the limit
        assert float(arrival) == gcra.next_time(float(arrival))
        gcra.take(float(arrival))


def test_penalty_pauses_everyone_then_resumes_without_burst():
    """A 429 pushes the schedule back by the pause; after it requests resume one by one."""
    limit = hc.RateLimit(requests=120, per=60.0, burst=10, margin=0.0)
    gcra = GCRA(limit)

    pause = gcra.penalize(100.0, 4.0)

    assert 4.0 == pause
    first = gcra.next_time(100.0)
    assert 104.0 == first
    gcra.take(first)
    assert first < gcra.next_time(first)


def test_penalty_without_retry_after_waits_for_the_burst_to_refill():
    """With no Retry-After the pause is the time to refill the burst, and is capped at a window."""
    limit = hc.RateLimit(requests=120, per=60.0, burst=10, margin=0.0)

    assert 10 * 0.5 == GCRA(limit).penalize(0.0, None)
    assert limit.window == GCRA(limit).penalize(0.0, 10_000.0)


def test_repeated_429s_lower_the_rate_and_it_recovers_slowly():
    """429 episodes lower the rate; quiet windows give it back, never above configured."""
    limit = hc.RateLimit(requests=100, per=10.0, margin=0.0)
    gcra = GCRA(limit)

    gcra.penalize(0.0, 1.0)
    gcra.penalize(0.5, 1.0)  # inside the same pause: the same episode
    assert 80 == gcra.capacity(0.5)
    gcra.penalize(2.0, 1.0)
    assert 64 == gcra.capacity(2.0)

    assert 74 == gcra.capacity(12.0)  # one quiet window later
    assert 100 == gcra.capacity(1000.0)


def test_recovery_counts_whole_windows_only():
    """On a half-second window, the rate comes back one step per full window, not sooner."""
    gcra = GCRA(hc.RateLimit(requests=100, per=0.5, margin=0.0))
    gcra.penalize(0.0, 0.1)

    assert [80, 90, 90, 100] == [gcra.capacity(t) for t in (0.4, 0.5, 0.99, 1.0)]


def test_a_429_when_the_pause_ends_is_a_new_episode():
    """A 429 arriving exactly as the previous pause ends lowers the rate again."""
    gcra = GCRA(hc.RateLimit(requests=100, per=10.0, margin=0.0))

    gcra.penalize(0.0, 1.0)
    gcra.penalize(1.0, 1.0)

    assert 64 == gcra.capacity(1.0)


def test_rate_never_drops_below_the_floor():
    """However many 429s, the rate keeps a floor of a tenth so the client makes progress."""
    limit = hc.RateLimit(requests=100, per=10.0, margin=0.0)
    gcra = GCRA(limit)
    for i in range(100):
        gcra.penalize(i * 1.5, 1.0)

    assert 10 == gcra.capacity(100 * 1.5)


def test_a_tiny_limit_keeps_one_request_per_window_after_many_429s():
    """A limit of 3 per second, after fifty 429s in a row, still grants one request a second."""
    gcra = GCRA(hc.RateLimit(requests=3, per=1.0, margin=0.0))
    for i in range(50):
        gcra.penalize(i * 0.5, 0.5)  # each one as the previous pause ends

    assert 1 == gcra.capacity(25.0)
    assert [25.0, 26.0, 27.0] == greedy(gcra, 3, start=25.0)


# --- the async limiter -------------------------------------------------------------------

VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)


@pytest.mark.anyio
@VIRTUAL
async def test_many_concurrent_waiters_keep_every_window_and_arrival_order(anyio_backend):
    """1,000 concurrent acquires on virtual time: FIFO order, and no window over the limit."""
    limit = hc.RateLimit(requests=120, per=60.0)
    limiter = hc.TokenBucketLimiter(limit)
    granted: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        await limiter.acquire()
        granted.append((i, anyio.current_time()))

    async with anyio.create_task_group() as tg:
        for i in range(1000):
            tg.start_soon(one, i)
            await anyio.lowlevel.checkpoint()  # start in order

    assert list(range(1000)) == [i for i, _ in granted]
    assert limit.requests >= most_in_any_window([t for _, t in granted], limit.per)


@pytest.mark.anyio
@VIRTUAL
async def test_a_burst_on_an_idle_limiter_never_waits(anyio_backend):
    """On virtual time: ten concurrent acquires on an idle default limiter wait 0 s, the 11th
    one interval, 60.5 / 120 s."""
    limiter = hc.TokenBucketLimiter()
    start = anyio.current_time()
    waited: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        waited.append(anyio.current_time() - start)

    async with anyio.create_task_group() as tg:
        for _ in range(11):
            tg.start_soon(one)

    assert [0.0] * 10 == waited[:10]
    assert pytest.approx(60.5 / 120) == waited[10]


@pytest.mark.anyio
@VIRTUAL
async def test_a_newcomer_never_overtakes_a_queued_caller(anyio_backend):
    """A caller that finds the slot free still goes after the caller already queued for it."""
    late = 0.0  # how far the limiter's clock runs ahead of the event loop's

    def clock() -> float:
        return anyio.current_time() + late

    limiter = hc.TokenBucketLimiter(hc.RateLimit(requests=1, per=10.0, margin=0.0), clock=clock)
    order: list[str] = []

    async def one(name: str) -> None:
        await limiter.acquire()
        order.append(name)

    await limiter.acquire()  # this window's only slot
    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "queued")
        await anyio.wait_all_tasks_blocked()  # "queued" now sleeps until the next window
        late = 10.0  # the next window has come, and "queued" has not woken up yet
        tg.start_soon(one, "newcomer")

    assert ["queued", "newcomer"] == order


@pytest.mark.anyio
@VIRTUAL
async def test_cancelled_waiters_cost_later_callers_nothing(anyio_backend):
    """Waiters cancelled in the queue take no slot: the rest are granted as if they never came."""
    limit = hc.RateLimit(requests=10, per=10.0, burst=1, margin=0.0)

    async def run(cancel_some: bool) -> list[float]:
        limiter = hc.TokenBucketLimiter(limit)
        times: list[float] = []

        async def one(i: int) -> None:
            if cancel_some and i % 2:
                with anyio.move_on_after(0.5):
                    await limiter.acquire()
                    times.append(anyio.current_time())  # pragma: no cover - never reached
                return
            await limiter.acquire()
            times.append(anyio.current_time())

        base = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for i in range(20 if cancel_some else 10):
                tg.start_soon(one, i if cancel_some else 2 * i)
                await anyio.lowlevel.checkpoint()
        return [t - base for t in times]

    uncancelled = await run(cancel_some=False)
    with_cancellations = await run(cancel_some=True)

    assert uncancelled == with_cancellations


@pytest.mark.anyio
@VIRTUAL
async def test_the_limiter_schedules_on_the_clock_it_is_given(anyio_backend):
    """With ``clock=``, the next window comes when that clock says, not the event loop's."""
    now = 0.0
    limit = hc.RateLimit(requests=1, per=10.0, margin=0.0)
    limiter = hc.TokenBucketLimiter(limit, clock=lambda: now)
    start = anyio.current_time()

    await limiter.acquire()
    now = 10.0
    await limiter.acquire()

    assert start == anyio.current_time()


@pytest.mark.anyio
@VIRTUAL
async def test_429_pauses_queued_callers_together(anyio_backend):
    """A 429 reported while others wait pushes all of them back."""
    limit = hc.RateLimit(requests=60, per=60.0, burst=1, margin=0.0)
    limiter = hc.TokenBucketLimiter(limit)
    await limiter.acquire()  # t=0
    await limiter.on_rate_limited(30.0)
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        times.append(anyio.current_time())

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)

    # all wait out the pause, then go at the lowered rate (48 a minute: 1.25 s apart)
    assert pytest.approx([30.0, 31.25, 32.5]) == [t - start for t in times]
    assert pytest.approx(48.0) == limiter.current_rate


@pytest.mark.anyio
@VIRTUAL
async def test_waits_and_pauses_are_logged(anyio_backend, caplog):
    """A caller that waits, and a 429 that pauses everyone, each leave a debug line."""
    caplog.set_level(logging.DEBUG, logger="helpcrunch_async")
    limiter = hc.TokenBucketLimiter(hc.RateLimit(requests=2, per=1.0, burst=1, margin=0.0))

    await limiter.acquire()
    await limiter.acquire()  # half a second later
    await limiter.on_rate_limited(4.0)  # capped at one window

    assert [
        "rate limiter: waiting 0.500 s for a slot",
        "rate limiter: 429 received, pausing 1.000 s; rate now 1.6 per 1.0 s",
    ] == [r.getMessage() for r in caplog.records]


@pytest.mark.anyio
async def test_limiter_satisfies_the_protocol(anyio_backend):
    """The local limiter is a RateLimiter: any such object plugs into the client."""
    assert isinstance(hc.TokenBucketLimiter(), hc.RateLimiter)
    assert "TokenBucketLimiter(RateLimit(requests=120, per=60.0, burst=10, margin=0.5))" == repr(
        hc.TokenBucketLimiter()
    )


def test_a_scoped_limiter_gets_a_stable_fingerprint_of_the_key(make_client):
    """A limiter with ``scope()`` gets 32 hex digits of a SHA-256 of the key, never the key.

    The value is pinned: processes of different SDK versions must share one schedule.
    """
    scopes: list[str] = []

    class Scoped:
        async def acquire(self) -> None:
            pass

        async def on_rate_limited(self, retry_after: float | None) -> None:
            pass

        def scope(self, fingerprint: str) -> None:
            scopes.append(fingerprint)

    make_client(rate_limit=Scoped())

    assert ["9037e49a759679e8c1abc678e4518b74"] == scopes


@pytest.mark.asyncio
async def test_asyncio_gather_on_tiny_time_scale():
    """Under asyncio.gather on real time (scaled down), no window holds more than the limit.

    The grant times are read from the limiter's own clock, not measured after the fact: a
    loaded machine may resume a task late, which says nothing about when it was granted.
    """
    limit = hc.RateLimit(requests=10, per=0.2, burst=3, margin=0.0)
    loop = asyncio.get_running_loop()
    last_read = [0.0]

    def clock() -> float:
        last_read[0] = loop.time()
        return last_read[0]

    limiter = hc.TokenBucketLimiter(limit, clock=clock)

    async def one() -> float:
        await limiter.acquire()
        return last_read[0]  # no other task ran since the grant read the clock

    times = await asyncio.gather(*(one() for _ in range(35)))

    assert 35 == len(times)
    assert limit.requests >= most_in_any_window(times, limit.per)
