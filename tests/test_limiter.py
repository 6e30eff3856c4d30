"""The local limiter on virtual time (its lanes, max_wait, 429s), and rate-limit headers.

The arithmetic is tested with plain numbers in ``test_gcra.py``; the scenarios of a busy key
through whole clients in ``test_limiter_scenarios.py``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import time

import anyio
import anyio.lowlevel
import pytest
import trio.testing

import helpcrunch_async as hc
from tests.conftest import StubLimiter
from tests.strict_server import most_in_any_window

# --- rate-limit headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Content-Type": "application/json"}, None),
        ({"Retry-After": "7"}, hc.RateLimitHeaders(retry_after=7.0)),
        (
            {"X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"},
            hc.RateLimitHeaders(limit=120, remaining=0, reset=30.0),
        ),
        (  # a Unix time as the reset, as GitHub sends it
            {"x-ratelimit-reset": "1700000042"},
            hc.RateLimitHeaders(reset=42.0),
        ),
        (
            {"RateLimit-Limit": "100", "RateLimit-Remaining": "5", "RateLimit-Reset": "3"},
            hc.RateLimitHeaders(limit=100, remaining=5, reset=3.0),
        ),
        (
            {"RateLimit-Policy": "100;w=60, 1000;w=3600"},
            hc.RateLimitHeaders(limit=100, window=60.0),
        ),
        (
            {"RateLimit-Policy": '"default";q=100;w=60', "RateLimit": '"default";r=50;t=30'},
            hc.RateLimitHeaders(limit=100, remaining=50, reset=30.0, window=60.0),
        ),
        (
            {"RateLimit": "limit=10, remaining=1, reset=7"},
            hc.RateLimitHeaders(limit=10, remaining=1, reset=7.0),
        ),
        (  # the IETF headers win over the X- ones
            {"RateLimit-Limit": "100", "X-RateLimit-Limit": "50"},
            hc.RateLimitHeaders(limit=100),
        ),
        (
            {"Retry-After": "Tue, 14 Nov 2023 22:13:40 GMT"},
            hc.RateLimitHeaders(retry_after=20.0),
        ),
    ],
)
def test_rate_limit_headers_are_read(headers, expected):
    """Every documented header style is read into the same RateLimitHeaders."""
    assert expected == hc.parse_rate_limit_headers(headers, now=1_700_000_000.0)


NOTHING = hc.RateLimitHeaders()


@pytest.mark.parametrize(
    ("headers", "now", "expected"),
    [
        # a list value: its first member counts
        ({"RateLimit-Limit": "100, 100;w=60, 1000;w=3600"}, 0.0, hc.RateLimitHeaders(limit=100)),
        ({"RateLimit-Reset": "3, 4, 5"}, 0.0, hc.RateLimitHeaders(reset=3.0)),
        # the largest counts and delays believed, and one past them
        ({"RateLimit-Limit": "1000000000"}, 0.0, hc.RateLimitHeaders(limit=10**9)),
        ({"RateLimit-Limit": "1000000001"}, 0.0, NOTHING),
        ({"RateLimit-Reset": "86400"}, 0.0, hc.RateLimitHeaders(reset=86_400.0)),
        ({"RateLimit-Reset": "86401"}, 0.0, NOTHING),
        ({"Retry-After": "86400"}, 0.0, hc.RateLimitHeaders(retry_after=86_400.0)),
        ({"Retry-After": "86401"}, 0.0, NOTHING),
        # a reset is a Unix time only past 10**9 s; a Unix time now or past is no wait
        ({"X-RateLimit-Reset": "1000000000"}, 999_999_990.0, NOTHING),
        ({"X-RateLimit-Reset": "1700000000"}, 1_700_000_000.0, hc.RateLimitHeaders(reset=0.0)),
        # only X-RateLimit-Reset may be one: the IETF draft's reset is seconds
        ({"RateLimit-Reset": "1700000010"}, 1_700_000_000.0, NOTHING),
        ({"RateLimit": "limit=100, reset=1700000010"}, 1_700_000_000.0, hc.RateLimitHeaders(100)),
        # at most 16 parameters of a policy are read
        (
            {"RateLimit-Policy": "100" + ";a=1" * 14 + ";w=60"},
            0.0,
            hc.RateLimitHeaders(100, window=60.0),
        ),
        ({"RateLimit-Policy": "100" + ";a=1" * 15 + ";w=60"}, 0.0, hc.RateLimitHeaders(limit=100)),
        # names and values as bytes, as some servers' header objects give them
        ({b"Retry-After": b"7"}, 0.0, hc.RateLimitHeaders(retry_after=7.0)),
    ],
)
def test_rate_limit_header_edges(headers, now, expected):
    """Lists, the largest values believed, Unix-time resets, long policies and bytes."""
    assert expected == hc.parse_rate_limit_headers(headers, now=now)


def test_at_most_a_thousand_headers_are_read():
    """A header past the first thousand is not looked at: a hostile mapping costs bounded time."""
    headers: dict[str, str] = {f"x-junk-{i}": "x" for i in range(1000)}
    headers["Retry-After"] = "7"

    assert hc.parse_rate_limit_headers(headers, now=0.0) is None


def test_a_unix_time_reset_is_measured_from_the_current_time():
    """Without ``now``, a Unix-time reset is measured from the current time."""
    in_a_day = str(int(time.time()) + 80_000)

    info = hc.parse_rate_limit_headers({"X-RateLimit-Reset": in_a_day})

    assert info is not None
    assert info.reset is not None
    assert 79_000 < info.reset <= 80_000


@pytest.mark.parametrize(
    "value",
    [
        "",
        "-5",
        "abc",
        "1e400",
        "nan",
        "inf",
        "9" * 5000,
        "1" * 13,
        "12.5.6",
        "\x00\xff",
        ";;;,,,===",
        '"default";q=;w=',
        "q=" + "9" * 40,
        "Tue, 99 Nov 2023 99:99:99 GMT",
    ],
)
def test_hostile_header_values_give_nothing_and_never_raise(value):
    """Garbled, huge or negative values are ignored field by field, never an exception."""
    names = [
        "Retry-After",
        "RateLimit",
        "RateLimit-Policy",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    ]

    info = hc.parse_rate_limit_headers(dict.fromkeys(names, value), now=0.0)

    assert info is not None
    assert info.limit is None or 0 <= info.limit <= 10**9
    assert info.reset is None or 0 <= info.reset <= 86_400
    assert info.retry_after is None or 0 <= info.retry_after <= 86_400


def test_random_header_bytes_never_raise():
    """Seeded random junk in every header (bytes and text, any mapping) never raises."""
    rng = random.Random(18)  # noqa: S311 - reproducible junk, not secrets
    alphabet = '0123456789;,="qrtwlimitesa .-\t\x00é'
    for _ in range(2000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        headers: dict[object, object] = {
            "RateLimit": value,
            "RateLimit-Policy": value[::-1],
            "X-RateLimit-Reset": value,
            b"retry-after": value.encode(),
            3: None,
        }
        hc.parse_rate_limit_headers(headers)  # type: ignore[arg-type]


def test_a_mapping_that_fails_to_iterate_is_no_headers():
    """A hostile mapping whose items() raises reads as "no headers"."""

    class Broken(dict[str, str]):
        def items(self):
            raise RuntimeError("boom")

    assert hc.parse_rate_limit_headers(Broken()) is None


# --- the async limiter -------------------------------------------------------------------

VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
#: For the tests that run hours of virtual time: a clock of their own, so that the others'
#: times stay small (float sums of intervals lose precision as the clock grows).
LONG_VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)


@pytest.mark.anyio
@VIRTUAL
async def test_many_concurrent_waiters_keep_every_window_and_arrival_order(anyio_backend):
    """1,000 concurrent acquires on virtual time: FIFO order, and no window over the limit."""
    limit = hc.RateLimit(requests=120, per=60.0)
    limiter = hc.LocalRateLimiter(limit)
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
    limiter = hc.LocalRateLimiter()
    start = anyio.current_time()
    waited: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        waited.append(anyio.current_time() - start)

    async with anyio.create_task_group() as tg:
        for _ in range(11):
            tg.start_soon(one)

    assert pytest.approx([0.0] * 10, abs=1e-9) == waited[:10]  # float sums of intervals
    assert pytest.approx(60.5 / 120) == waited[10]


@pytest.mark.anyio
@VIRTUAL
async def test_a_newcomer_never_overtakes_a_queued_caller(anyio_backend):
    """A caller that finds the slot free still goes after the caller already queued for it."""
    late = 0.0  # how far the limiter's clock runs ahead of the event loop's

    def clock() -> float:
        return anyio.current_time() + late

    limiter = hc.LocalRateLimiter(hc.RateLimit(requests=1, per=10.0, margin=0.0), clock=clock)
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
        limiter = hc.LocalRateLimiter(limit)
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
    limiter = hc.LocalRateLimiter(limit, clock=lambda: now)
    start = anyio.current_time()

    await limiter.acquire()
    now = 10.0
    await limiter.acquire()

    assert start == anyio.current_time()


@pytest.mark.anyio
@VIRTUAL
async def test_429_pauses_queued_callers_together(anyio_backend):
    """A 429 reported while others wait pushes all of them back; then they resume at the
    rate in force: one 429 teaches nothing."""
    limit = hc.RateLimit(requests=60, per=60.0, burst=1, margin=0.0)
    limiter = hc.LocalRateLimiter(limit)
    await limiter.acquire()  # t=0
    assert 30.0 == await limiter.on_rate_limited(30.0, sent_ago=0.0)
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        times.append(anyio.current_time())

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)

    # all wait out the pause, then go at the configured pace: a busy key is no lesson
    assert pytest.approx([30.0, 31.0, 32.0]) == [t - start for t in times]
    assert 60 == limiter.current_rate
    assert limiter.learned_limit is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("sent_ago", "error", "message"),
    [
        (-1.0, ValueError, "sent_ago must be a finite number >= 0, got -1.0"),
        (float("nan"), ValueError, "sent_ago must be a finite number >= 0, got nan"),
        ("1", TypeError, "sent_ago must be a number, not str"),
    ],
)
async def test_a_bad_sent_ago_is_refused_by_name(anyio_backend, sent_ago, error, message):
    """A custom sender that passes a bad ``sent_ago`` learns which argument is wrong."""
    limiter = hc.LocalRateLimiter(hc.RateLimit(requests=60, per=60.0))
    with pytest.raises(error) as info:
        await limiter.on_rate_limited(None, sent_ago=sent_ago)
    assert message == str(info.value)
    assert limiter.current_rate == 60


@pytest.mark.anyio
@VIRTUAL
async def test_a_429_told_without_sent_ago_is_dated_now(anyio_backend):
    """A limiter called directly, without ``sent_ago``, takes the refused request as sent
    at the 429: a busy key's whole window."""
    limiter = hc.LocalRateLimiter(hc.RateLimit(requests=4, per=1.0, burst=1, margin=0.0))
    await limiter.acquire()

    assert 1.0 == await limiter.on_rate_limited(None)
    assert 1.0 == limiter.expected_wait()


@pytest.mark.anyio
@VIRTUAL
async def test_a_lesson_is_logged_once_at_info(anyio_backend, caplog):
    """A busy key's 429 logs nothing; a 429 that recurs after the pause, a lesson, one INFO
    line; the same episode's next 429s none (the client's DEBUG log of its events says the
    rest)."""
    caplog.set_level(logging.DEBUG, logger="helpcrunch_async")
    limiter = hc.LocalRateLimiter(hc.RateLimit(requests=4, per=1.0, burst=1, margin=0.0))

    await limiter.acquire()
    await limiter.on_rate_limited(None, sent_ago=0.0)  # a busy key: a window, no lesson
    assert not caplog.records
    for _ in range(3):  # one second later, then one interval (0.25 s) apart
        await limiter.acquire()
    await limiter.on_rate_limited(None, sent_ago=0.0)  # recurs: a lesson, at INFO
    lesson = (
        "rate limiter: 429s recurred at the rate already refused: the key allows about"
        " 2 requests per 1 s"
    )
    assert [("INFO", lesson)] == [(r.levelname, r.getMessage()) for r in caplog.records]
    await limiter.on_rate_limited(None, sent_ago=0.1)  # sent before that pause: nothing new
    await limiter.on_rate_limit_headers(hc.RateLimitHeaders(remaining=0, reset=0.75))

    assert 1 == len(caplog.records)
    assert 2 == limiter.learned_limit


@pytest.mark.anyio
@VIRTUAL
async def test_expected_wait_counts_the_callers_ahead(anyio_backend):
    """A newcomer's expected wait: the next slot plus one interval per caller ahead of it."""
    limiter = hc.LocalRateLimiter(hc.RateLimit(requests=1, per=2.0, burst=1, margin=0.0))
    await limiter.acquire()
    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(functools.partial(limiter.acquire, priority="background"))
        await anyio.wait_all_tasks_blocked()

        assert 2.0 + 2 * 2.0 == limiter.expected_wait("background")
        # interactive goes before both: it has a lane of its own, and goes first when due
        assert 2.0 == limiter.expected_wait("interactive")


@pytest.mark.anyio
@VIRTUAL
async def test_expected_wait_counts_the_burst_and_the_lesson_in_force(anyio_backend):
    """Nothing to wait for on an idle key; after nine interactive calls at once, the burst's
    credit is an interactive newcomer's alone; while a lesson holds, its interval counts."""
    limit = hc.RateLimit(requests=40, per=2.0, burst=10, margin=0.0)
    limiter = hc.LocalRateLimiter(limit, clock=lambda: 100.0)
    assert 0.0 == limiter.expected_wait("background")

    for _ in range(9):
        await limiter.acquire()

    assert 0.0 == limiter.expected_wait("interactive")
    assert pytest.approx(9 * 0.05) == limiter.expected_wait("background")
    limiter._gcra.base, limiter._gcra.episode = 20, 100.0  # a lesson: 20 per 2 s
    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(limiter.acquire, priority="background"))
        await anyio.wait_all_tasks_blocked()
        # the pace at 20 (0.1 s), plus the background head ahead of it
        assert pytest.approx(9 * 0.05 + 0.1) == limiter.expected_wait("background")
        tg.cancel_scope.cancel()


# --- traffic classes and max_wait --------------------------------------------------------

#: One request per second, no burst: every grant after the first waits a whole interval.
ONE_PER_SECOND = hc.RateLimit(requests=10, per=10.0, burst=1, margin=0.0)


async def settle() -> None:
    """Let every runnable task run until it blocks."""
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


@pytest.mark.anyio
@VIRTUAL
async def test_interactive_goes_before_every_background_caller_fifo_within_class(anyio_backend):
    """Arrivals b0 b1 i0 b2 i1: granted i0 i1 b0 b1 b2, each a full interval apart; the
    background head waiting for its slot does not hold the interactive callers back."""
    limiter = hc.LocalRateLimiter(ONE_PER_SECOND)
    await limiter.acquire()
    granted: list[tuple[str, float]] = []

    async def one(name: str) -> None:
        priority = "interactive" if name[0] == "i" else "background"
        await limiter.acquire(priority=priority)  # type: ignore[arg-type]
        granted.append((name, anyio.current_time()))

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for name in ["b0", "b1", "i0", "b2", "i1"]:
            tg.start_soon(one, name)
            await settle()

    assert ["i0", "i1", "b0", "b1", "b2"] == [name for name, _ in granted]
    assert [1.0, 2.0, 3.0, 4.0, 5.0] == [t - start for _, t in granted]


@pytest.mark.anyio
@VIRTUAL
async def test_a_background_head_paying_for_a_burst_never_holds_interactive_calls(anyio_backend):
    """Ten interactive calls spend the burst; a background call then waits nine intervals,
    and interactive calls that come meanwhile are granted at once, not behind it."""
    limit = hc.RateLimit(requests=40, per=2.0, burst=10, margin=0.0)
    limiter = hc.LocalRateLimiter(limit)
    granted: dict[str, float] = {}
    start = anyio.current_time()

    async def one(name: str, priority: str) -> None:
        await limiter.acquire(priority=priority)  # type: ignore[arg-type]
        granted[name] = anyio.current_time() - start

    for _ in range(9):
        await limiter.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "bulk", "background")
        await settle()
        tg.start_soon(one, "web", "interactive")

    assert pytest.approx({"web": 0.0, "bulk": 0.5}) == granted


@pytest.mark.anyio
@LONG_VIRTUAL
@pytest.mark.parametrize(
    ("limit", "moments"),
    [
        pytest.param(hc.RateLimit(), [2.5 * k for k in range(73)], id="120/60"),
        pytest.param(
            hc.RateLimit(requests=40, per=2.0, margin=0.02),
            [0.05 * k for k in range(122)],
            id="40/2",
        ),
    ],
)
async def test_an_interactive_call_at_any_moment_of_a_saturating_job_waits_one_interval(
    anyio_backend, limit, moments
):
    """One interactive call at every moment of a grid over three windows of a saturating bulk
    job (one run each): granted within one interval; no window ever over the limit."""
    interval = limit.window / limit.requests
    worst = 0.0
    for moment in moments:
        limiter = hc.LocalRateLimiter(limit)
        grants: list[float] = []
        start = anyio.current_time()

        async def bulk(
            limiter: hc.LocalRateLimiter = limiter, grants: list[float] = grants
        ) -> None:
            while True:
                await limiter.acquire(priority="background")
                grants.append(anyio.current_time())

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(bulk)
            await anyio.sleep_until(start + moment)
            asked = anyio.current_time()
            await limiter.acquire()
            grants.append(anyio.current_time())
            worst = max(worst, anyio.current_time() - asked)
            tg.cancel_scope.cancel()
        assert limit.requests >= most_in_any_window(grants, limit.per)

    assert interval + 1e-9 >= worst


def clumps(seed: int, limit: hc.RateLimit, windows: float = 6.0) -> list[float]:
    """Interactive calls in clumps of 1 to 4 at random moments, about 20 % of the limit."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    clumps_per_second = 0.2 * limit.requests / limit.window / 2.5
    t, asks = 0.0, list[float]()
    while True:
        t += rng.expovariate(clumps_per_second)
        if t > windows * limit.window:
            return asks
        asks += [t] * rng.randint(1, 4)


@pytest.mark.anyio
@LONG_VIRTUAL
@pytest.mark.parametrize("limit", [hc.RateLimit(), hc.RateLimit(requests=40, per=2.0, margin=0.02)])
@pytest.mark.parametrize("seed", range(4))
async def test_no_background_grant_while_an_interactive_call_waits(anyio_backend, limit, seed):
    """Random clumps of interactive calls during a saturating bulk job: no background call is
    granted while one of them waits, and each waits at most two intervals beyond one per call
    ahead of it in its lane; no window ever over the limit."""
    limiter = hc.LocalRateLimiter(limit)
    interval = limit.window / limit.requests
    background: list[float] = []
    asks = clumps(seed, limit)
    calls = [(math.nan, math.nan)] * len(asks)  # (asked, granted), in the order asked
    start = anyio.current_time()

    async def bulk() -> None:
        while True:
            await limiter.acquire(priority="background")
            background.append(anyio.current_time())

    async def web(index: int) -> None:
        await anyio.sleep_until(start + asks[index])
        asked = anyio.current_time()
        await limiter.acquire()
        calls[index] = (asked, anyio.current_time())

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(bulk)
        async with anyio.create_task_group() as webs:
            for index in range(len(asks)):
                webs.start_soon(web, index)
                await anyio.lowlevel.checkpoint()  # in the lane in the order asked
        tg.cancel_scope.cancel()

    assert 0 == max(sum(a < t < g for t in background) for a, g in calls)
    for asked, granted in calls:
        # Ahead of it in its lane: the calls asked no later, still waiting, granted before it.
        ahead = sum(a <= asked <= g < granted for a, g in calls)
        assert (ahead + 2) * interval + 1e-9 >= granted - asked
    assert limit.requests >= most_in_any_window(background + [g for _, g in calls], limit.per)


@pytest.mark.anyio
@VIRTUAL
async def test_interactive_granted_within_two_intervals_behind_200_background(anyio_backend):
    """With 200 background calls queued, an interactive call waits at most two intervals."""
    limit = hc.RateLimit(requests=120, per=60.0)
    limiter = hc.LocalRateLimiter(limit)
    waits: list[float] = []

    async def interactive() -> None:
        for _ in range(5):
            await anyio.sleep(7.3)
            asked = anyio.current_time()
            await limiter.acquire(priority="interactive")
            waits.append(anyio.current_time() - asked)

    async with anyio.create_task_group() as tg:
        for _ in range(200):
            tg.start_soon(functools.partial(limiter.acquire, priority="background"))
        tg.start_soon(interactive)

    assert 5 == len(waits)
    assert max(waits) <= 2 * limit.window / limit.requests


@pytest.mark.anyio
@VIRTUAL
async def test_background_alone_runs_at_the_full_rate_without_the_burst(anyio_backend):
    """Background calls alone go one per interval from the first: the full rate, without
    the idle-key burst that interactive calls have."""

    async def run(priority: str) -> list[float]:
        limiter = hc.LocalRateLimiter(hc.RateLimit(requests=120, per=60.0))
        times: list[float] = []
        start = anyio.current_time()

        async def one() -> None:
            await limiter.acquire(priority=priority)  # type: ignore[arg-type]
            times.append(anyio.current_time() - start)

        async with anyio.create_task_group() as tg:
            for _ in range(150):
                tg.start_soon(one)
        return times

    interval = 60.5 / 120
    interactive, background = await run("interactive"), await run("background")
    assert pytest.approx([k * interval for k in range(150)]) == background
    assert pytest.approx([0.0] * 10, abs=1e-9) == interactive[:10]
    assert pytest.approx(interval) == interactive[10]


@pytest.mark.anyio
@VIRTUAL
@pytest.mark.parametrize("priority", ["interactive", "background"])
async def test_cancelled_waiters_of_either_class_cost_nothing(anyio_backend, priority):
    """Waiters of either class cancelled in the line take no slot; the rest keep their times."""

    async def run(cancel_some: bool) -> list[float]:
        limiter = hc.LocalRateLimiter(ONE_PER_SECOND)
        times: list[float] = []

        async def one(i: int) -> None:
            if cancel_some and i % 2:
                with anyio.move_on_after(0.5):
                    await limiter.acquire(priority=priority)
                    times.append(-1.0)  # pragma: no cover - never reached
                return
            await limiter.acquire(priority="background")
            times.append(anyio.current_time())

        base = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for i in range(20 if cancel_some else 10):
                tg.start_soon(one, i if cancel_some else 2 * i)
                await settle()
        return [t - base for t in times]

    assert await run(cancel_some=False) == await run(cancel_some=True)


@pytest.mark.anyio
@VIRTUAL
async def test_max_wait_beyond_the_expected_slot_refuses_at_once(anyio_backend):
    """When the slot is known to come after max_wait, the refusal is immediate and takes nothing."""
    limiter = hc.LocalRateLimiter(ONE_PER_SECOND)
    await limiter.acquire()
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(functools.partial(limiter.acquire, priority="background"))
        await settle()
        asked = anyio.current_time()
        before = limiter.expected_wait("background")

        with pytest.raises(hc.LimiterTimeoutError) as caught:
            await limiter.acquire(priority="background", deadline=anyio.current_time() + 2.0)

        assert asked == anyio.current_time()
        assert before == limiter.expected_wait("background")  # it took no slot
        assert 4.0 == caught.value.retry_after  # behind the head and two others
        assert "no rate-limit slot within max_wait (one expected in 4.000 s)" == str(caught.value)
        interactive_asked = anyio.current_time()
        # the next slot: before the background head, which waits for it too
        await limiter.acquire(priority="interactive", deadline=anyio.current_time() + 2.0)
        assert pytest.approx(1.0) == anyio.current_time() - interactive_asked


@pytest.mark.anyio
@VIRTUAL
async def test_max_wait_past_in_the_line_raises_and_the_next_moves_up(anyio_backend):
    """A waiter pushed back by interactive arrivals raises by its deadline; the next moves up."""
    limiter = hc.LocalRateLimiter(ONE_PER_SECOND)
    await limiter.acquire()  # t=0; next slot at 1, 2, 3...
    results: dict[str, float] = {}
    refused: dict[str, float] = {}
    messages: list[str] = []
    start = anyio.current_time()

    async def one(name: str, priority: str, max_wait: float | None = None) -> None:
        deadline = None if max_wait is None else anyio.current_time() + max_wait
        try:
            await limiter.acquire(priority=priority, deadline=deadline)  # type: ignore[arg-type]
        except hc.LimiterTimeoutError as exc:
            refused[name] = anyio.current_time() - start
            messages.append(str(exc))
        else:
            results[name] = anyio.current_time() - start

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "head", "background")
        await settle()
        tg.start_soon(one, "impatient", "background", 2.5)  # expected at 2: accepted
        await settle()
        tg.start_soon(one, "after", "background")
        await settle()
        for i in range(3):  # interactive callers push "impatient" to 5
            tg.start_soon(one, f"i{i}", "interactive")
            await settle()

    assert ["impatient"] == list(refused)
    assert 2.5 >= refused["impatient"]
    assert ["no rate-limit slot within max_wait"] == [m.partition(" (")[0] for m in messages]
    assert [1.0, 2.0, 3.0] == [results[f"i{i}"] for i in range(3)]  # before the head
    assert 4.0 == results["head"]
    assert 5.0 == results["after"]  # the impatient caller's place went to the next one


@pytest.mark.anyio
@VIRTUAL
async def test_an_interactive_caller_refused_in_its_lane_gets_its_own_estimate(anyio_backend):
    """Queued behind an interactive head that a 429 holds back, a caller reaches its
    max_wait in the lane: its retry_after counts its own lane, not the background one."""
    limiter = hc.LocalRateLimiter(ONE_PER_SECOND)
    await limiter.acquire()  # t = 0; the next slot at 1
    refused: list[hc.LimiterTimeoutError] = []

    async def impatient() -> None:
        try:
            await limiter.acquire(deadline=anyio.current_time() + 2.5)  # expected at 2
        except hc.LimiterTimeoutError as exc:
            refused.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(limiter.acquire, priority="background"))
        tg.start_soon(limiter.acquire)  # the interactive head
        await settle()
        tg.start_soon(impatient)
        await settle()
        await limiter.on_rate_limited(5.0, sent_ago=0.0)  # nothing before t = 5

    # refused at 2.5: the slot at 5, behind the interactive head (the background one waits)
    assert [3.5] == [exc.retry_after for exc in refused]


@pytest.mark.anyio
@VIRTUAL
async def test_max_wait_long_enough_is_granted(anyio_backend):
    """A max_wait that covers the expected slot is simply granted at that slot."""
    limiter = hc.LocalRateLimiter(ONE_PER_SECOND)
    await limiter.acquire()
    start = anyio.current_time()

    await limiter.acquire(deadline=anyio.current_time() + 1.0)

    assert pytest.approx(1.0) == anyio.current_time() - start


@pytest.mark.anyio
@VIRTUAL
async def test_429_while_waiting_refuses_the_head_once_past_max_wait(anyio_backend):
    """A 429 that pushes the slot past a waiter's max_wait refuses it when it next looks."""
    limiter = hc.LocalRateLimiter(ONE_PER_SECOND)
    await limiter.acquire()
    start = anyio.current_time()
    refused: list[hc.LimiterTimeoutError] = []

    async def impatient() -> None:
        try:
            await limiter.acquire(deadline=anyio.current_time() + 1.5)  # expected at 1.0: accepted
        except hc.LimiterTimeoutError as exc:
            refused.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(impatient)
        await settle()
        await limiter.on_rate_limited(8.0, sent_ago=0.0)

    assert 1 == len(refused)
    # it looked again when its slot was due
    assert pytest.approx(1.0) == anyio.current_time() - start
    # the pause ends at 8 s: 7 s from then
    assert 7.0 == refused[0].retry_after
    assert "no rate-limit slot within max_wait (one expected in 7.000 s)" == str(refused[0])
    assert 7.0 == limiter.expected_wait()  # the refused waiter took no slot


@pytest.mark.anyio
@VIRTUAL
async def test_headers_saying_nothing_remains_pause_the_local_limiter(anyio_backend):
    """on_rate_limit_headers with remaining=0 and a reset holds the next grant until the reset."""
    limiter = hc.LocalRateLimiter(hc.RateLimit(requests=120, per=60.0))
    start = anyio.current_time()

    await limiter.on_rate_limit_headers(hc.RateLimitHeaders(limit=120, remaining=0, reset=3.0))
    await limiter.acquire()

    assert pytest.approx(3.0) == anyio.current_time() - start
    assert limiter.learned_limit is None


def test_a_limiter_missing_a_part_of_the_protocol_is_refused_when_the_client_is_built():
    """The protocol is checked whole, once: a missing method or a sync one is a TypeError."""

    class Partial:
        async def acquire(self, *, priority: str = "interactive", deadline=None) -> None:
            """No on_rate_limited, no bind_key..."""

    class SyncAcquire(StubLimiter):
        def acquire(self, *, priority: str = "interactive", deadline=None) -> None:  # type: ignore[override]
            """Not a coroutine."""

    with pytest.raises(TypeError, match="missing on_rate_limited"):
        hc.HelpCrunch("k", rate_limit=Partial())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="acquire must be an async method"):
        hc.HelpCrunch("k", rate_limit=SyncAcquire())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rate_limit"):
        hc.HelpCrunch("k", rate_limit=object())  # type: ignore[arg-type]
    assert StubLimiter is type(hc.HelpCrunch("k", rate_limit=StubLimiter()).limiter)


def test_a_limiter_that_cannot_be_told_when_a_refused_request_left_is_refused():
    """on_rate_limited must take ``sent_ago=``: checked when the client is built, not at the
    first 429; taking it through ``**kwargs`` is fine."""

    class Deaf(StubLimiter):
        async def on_rate_limited(self, pause: float | None) -> float:  # type: ignore[override]
            """No sent_ago."""
            return pause or 0.0

    class Open(StubLimiter):
        async def on_rate_limited(self, pause: float | None, **options: object) -> float:
            """Any keyword."""
            return (pause or 0.0) + len(options)

    with pytest.raises(TypeError, match="on_rate_limited must take the keyword argument sent_ago"):
        hc.HelpCrunch("k", rate_limit=Deaf())  # type: ignore[arg-type]
    assert Open is type(hc.HelpCrunch("k", rate_limit=Open()).limiter)


@pytest.mark.anyio
async def test_a_limiter_serves_one_api_key(anyio_backend):
    """A limit is a key's: a local limiter shared by clients of two keys is refused."""
    limiter = hc.LocalRateLimiter()
    hc.HelpCrunch("key-one", rate_limit=limiter)
    hc.HelpCrunch("key-one", rate_limit=limiter)  # the same key again is fine
    with pytest.raises(ValueError, match="another API key"):
        hc.HelpCrunch("key-two", rate_limit=limiter)


@pytest.mark.anyio
async def test_limiter_satisfies_the_protocol(anyio_backend):
    """The local limiter is a RateLimiter: any such object plugs into the client."""
    assert isinstance(hc.LocalRateLimiter(), hc.RateLimiter)
    assert "LocalRateLimiter(RateLimit(requests=120, per=60.0, burst=10, margin=0.5))" == repr(
        hc.LocalRateLimiter()
    )


def test_a_local_limiter_takes_a_rate_limit_and_one_key():
    """Anything but a RateLimit is a TypeError naming what it got; a second key is refused."""
    with pytest.raises(TypeError) as wrong:
        hc.LocalRateLimiter("120/60")  # type: ignore[arg-type]
    limiter = hc.LocalRateLimiter()
    limiter.bind_key("one")
    with pytest.raises(ValueError) as second:
        limiter.bind_key("two")

    assert "limit must be a RateLimit, not str" == str(wrong.value)
    assert "this rate limiter already serves another API key; create one per key" == str(
        second.value
    )


def test_a_limiter_is_bound_to_a_stable_fingerprint_of_the_key(make_client):
    """``bind_key()`` gets 32 hex digits of a SHA-256 of the key, never the key.

    The value is pinned: processes of different SDK versions must share one schedule.
    """
    limiter = StubLimiter()

    make_client(rate_limit=limiter)

    assert ["9037e49a759679e8c1abc678e4518b74"] == limiter.keys


@pytest.mark.asyncio
async def test_asyncio_gather_on_tiny_time_scale():
    """Under asyncio.gather on real time (scaled down), no window holds more than the limit.

    The grant times are the limiter's own clock readings at each grant, not the time a task
    read afterwards: under load a task may look at the clock late, which says nothing of
    the schedule.
    """
    limit = hc.RateLimit(requests=10, per=0.2, burst=3, margin=0.0)
    loop = asyncio.get_running_loop()
    last_reading = [0.0]

    def clock() -> float:
        last_reading[0] = loop.time()
        return last_reading[0]

    limiter = hc.LocalRateLimiter(limit, clock=clock)

    async def one() -> float:
        await limiter.acquire()
        return last_reading[0]  # no other task ran since the grant: nothing was awaited

    times = await asyncio.gather(*(one() for _ in range(35)))

    assert 35 == len(times)
    assert limit.requests >= most_in_any_window(times, limit.per)
