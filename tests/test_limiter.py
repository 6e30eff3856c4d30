"""The limiter: GCRA arithmetic with plain numbers, and the async limiter on virtual time."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence

import anyio
import anyio.lowlevel
import pytest
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async._limit._gcra import GCRA, LEARN_PROBE_MAX, LEARN_PROBE_MIN
from tests.conftest import StubLimiter


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


def test_penalty_without_retry_after_pauses_one_interval_and_a_given_pause_is_applied_as_is():
    """With no Retry-After the pause is one interval at the new rate; a pause given (already
    capped once by the client at retry_after_max) is applied unchanged."""
    limit = hc.RateLimit(requests=120, per=60.0, burst=10, margin=0.0)
    gcra = GCRA(limit)
    times = greedy(gcra, 41)  # 41 sent in the window: the rate punished

    assert 60.0 / 40 == gcra.penalize(times[-1], None)
    assert 100.0 == GCRA(limit).penalize(0.0, 100.0)


def test_one_episode_learns_the_rate_that_was_punished():
    """The first 429 holds the rate one under what was sent in the window: the real limit."""
    limit = hc.RateLimit(requests=40, per=2.0, burst=10, margin=0.0)
    gcra = GCRA(limit)
    times = greedy(gcra, 21)  # a server allowing 20 per 2 s rejects the 21st

    gcra.penalize(times[-1] + 0.01, None)

    assert 21 == gcra.punished
    assert 20 == gcra.capacity(times[-1] + 0.01)
    assert 20 == gcra.learned_limit(times[-1] + 0.01)


def test_429s_of_requests_already_in_flight_are_one_episode():
    """429s that arrive before anything could be sent after the first teach nothing more."""
    limit = hc.RateLimit(requests=40, per=2.0, burst=10, margin=0.0)
    gcra = GCRA(limit)
    times = greedy(gcra, 23)

    gcra.penalize(times[-1], None)
    gcra.penalize(times[-1] + 0.001, None)
    gcra.penalize(times[-1] + 0.002, None)

    assert 22 == gcra.capacity(times[-1] + 0.002)


def test_learned_rate_is_held_then_probed_one_request_more():
    """After a lesson the rate is held LEARN_PROBE_MIN windows, then probed by one request."""
    limit = hc.RateLimit(requests=40, per=2.0, margin=0.0)
    gcra = GCRA(limit)
    greedy(gcra, 21)
    gcra.penalize(1.0, None)

    held = [gcra.capacity(1.0 + w * limit.window) for w in range(LEARN_PROBE_MIN)]
    probe = gcra.capacity(1.0 + LEARN_PROBE_MIN * limit.window)

    assert [20] * LEARN_PROBE_MIN == held
    assert 21 == probe


def test_probe_that_survives_doubles_back_to_the_configured_rate():
    """A probe window without a 429 means the limit rose: the rate doubles each window."""
    limit = hc.RateLimit(requests=40, per=2.0, margin=0.0)
    gcra = GCRA(limit)
    greedy(gcra, 21)
    gcra.penalize(1.0, None)
    first_probe = 1.0 + LEARN_PROBE_MIN * limit.window

    climb = [gcra.capacity(first_probe + w * limit.window) for w in range(4)]

    assert [21, 40, 40, 40] == climb
    assert gcra.learned_limit(first_probe + limit.window) is None


def test_punished_probe_returns_under_the_limit_and_waits_longer():
    """A probe punished at the old rate drops back under it and doubles the hold, to a cap."""
    limit = hc.RateLimit(requests=40, per=2.0, margin=0.0)
    gcra = GCRA(limit)
    now = 0.0
    times = greedy(gcra, 21)
    gcra.penalize(times[-1], None)
    waits = []
    for _ in range(4):
        now = gcra.since + gcra.probe_wait * limit.window  # the first probing window
        assert 21 == gcra.capacity(now)
        times = greedy(gcra, 21, start=now)
        gcra.penalize(times[-1], None)
        waits.append(gcra.probe_wait)

    assert 20 == gcra.capacity(times[-1])
    assert [min(LEARN_PROBE_MAX, LEARN_PROBE_MIN * 2**k) for k in range(1, 5)] == waits


def test_429_at_a_higher_rate_than_last_time_is_a_fresh_lesson():
    """Punished above the rate punished before, the limit had risen: the hold starts short."""
    limit = hc.RateLimit(requests=40, per=2.0, margin=0.0)
    gcra = GCRA(limit)
    times = greedy(gcra, 21)
    gcra.penalize(times[-1], None)
    gcra.probe_wait = LEARN_PROBE_MAX
    climb = gcra.since + (LEARN_PROBE_MAX + 1) * limit.window  # second probing window: 42

    times = greedy(gcra, 31, start=climb)
    gcra.penalize(times[-1], None)

    assert 31 == gcra.punished
    assert LEARN_PROBE_MIN == gcra.probe_wait
    assert 30 == gcra.capacity(times[-1])


def test_rate_never_drops_below_the_floor():
    """However many 429s, the rate keeps a floor of a tenth so the client makes progress."""
    limit = hc.RateLimit(requests=100, per=10.0, margin=0.0)
    gcra = GCRA(limit)
    for i in range(100):
        gcra.penalize(i * 20.0, 1.0)

    assert 10 == gcra.capacity(100 * 20.0)


def test_a_tiny_limit_keeps_one_request_per_window_after_many_429s():
    """A limit of 3 per second, after fifty 429s in a row, still grants one request a second."""
    gcra = GCRA(hc.RateLimit(requests=3, per=1.0, margin=0.0))
    for i in range(50):
        gcra.penalize(i * 0.5, 0.5)  # each one as the previous pause ends

    assert 1 == gcra.capacity(25.0)
    assert [25.0, 26.0, 27.0] == greedy(gcra, 3, start=25.0)


def test_stated_limit_caps_the_rate_and_stated_recovery_lifts_it():
    """Headers stating a lower limit set the rate at once; stating the full one restores it."""
    limit = hc.RateLimit(requests=120, per=60.0, margin=0.0)
    gcra = GCRA(limit)

    gcra.observe(0.0, hc.RateLimitHeaders(limit=1, window=1.0))  # 1 per second: 60 per minute
    lowered = gcra.capacity(1000.0)  # no probing above a stated limit
    gcra.observe(5.0, hc.RateLimitHeaders(limit=120))

    assert 60 == lowered
    assert 120 == gcra.capacity(5.0)


def test_no_requests_remaining_pauses_until_the_reset():
    """remaining=0 with a reset pauses every caller until then, without lowering the rate."""
    limit = hc.RateLimit(requests=120, per=60.0, margin=0.0)
    gcra = GCRA(limit)

    assert 0.0 == gcra.observe(0.0, hc.RateLimitHeaders(remaining=3, reset=7.0))
    assert 7.0 == gcra.observe(0.0, hc.RateLimitHeaders(remaining=0, reset=7.0))
    assert 7.0 == gcra.next_time(0.0)
    assert 120 == gcra.capacity(0.0)


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

    assert [0.0] * 10 == waited[:10]
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
    """A 429 reported while others wait pushes all of them back."""
    limit = hc.RateLimit(requests=60, per=60.0, burst=1, margin=0.0)
    limiter = hc.LocalRateLimiter(limit)
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

    # all wait out the pause, then go at the rate learned from it: one request had been
    # sent, so the floor of a tenth (6 a minute: 10 s apart)
    assert pytest.approx([30.0, 40.0, 50.0]) == [t - start for t in times]
    assert 6 == limiter.current_rate


@pytest.mark.anyio
@VIRTUAL
async def test_a_lesson_is_logged_once_at_info(anyio_backend, caplog):
    """A 429 that teaches a lower limit leaves one INFO line; the same episode's next 429s
    none (the client's DEBUG log of its events says the rest)."""
    caplog.set_level(logging.DEBUG, logger="helpcrunch_async")
    limiter = hc.LocalRateLimiter(hc.RateLimit(requests=2, per=1.0, burst=1, margin=0.0))

    await limiter.acquire()
    await limiter.acquire()  # half a second later
    await limiter.on_rate_limited(4.0)  # a lesson, at INFO
    await limiter.on_rate_limited(None)  # same episode: nothing new learned
    await limiter.on_rate_limit_headers(hc.RateLimitHeaders(remaining=0, reset=0.75))

    assert [
        ("INFO", "rate limiter: learned that the key allows about 1 requests per 1 s"),
    ] == [(r.levelname, r.getMessage()) for r in caplog.records]


@pytest.mark.parametrize(
    ("info", "capacity"),
    [
        (hc.RateLimitHeaders(limit=1, window=1.0), 60),  # 1 a second: 60 a minute
        (hc.RateLimitHeaders(limit=2, window=2.0), 60),
        (hc.RateLimitHeaders(limit=1, window=60.0), 1),
        (hc.RateLimitHeaders(limit=0), 120),  # a limit of 0 is no limit we can keep: ignored
        (hc.RateLimitHeaders(limit=500), 120),  # never above the configured rate
    ],
)
def test_a_stated_limit_sets_the_rate(info, capacity):
    """A limit the server states, per its window, becomes the rate (never above configured)."""
    gcra = GCRA(hc.RateLimit(requests=120, per=60.0, margin=0.0))

    gcra.observe(0.0, info)

    assert capacity == gcra.capacity(0.0)


def test_one_request_remaining_is_no_pause():
    """remaining=1 still allows a request: no pause until the server says none are left."""
    gcra = GCRA(hc.RateLimit(requests=120, per=60.0, margin=0.0))

    assert 0.0 == gcra.observe(0.0, hc.RateLimitHeaders(remaining=1, reset=7.0))
    assert 0.0 == gcra.next_time(0.0)


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
        # interactive goes before the queued background caller, after the one holding its turn
        assert 2.0 + 2.0 == limiter.expected_wait("interactive")


class SlidingWindowServer:
    """A strict server on the event loop's clock: ``requests`` per ``per`` s, rejections counted."""

    def __init__(self, requests: int, per: float) -> None:
        self.requests, self.per = requests, per
        self.arrivals: deque[float] = deque()
        self.seen = self.rejected = 0

    def admit(self) -> bool:
        now = anyio.current_time()
        self.seen += 1
        while self.arrivals and now - self.arrivals[0] >= self.per - 1e-9:
            self.arrivals.popleft()
        admitted = len(self.arrivals) < self.requests
        self.arrivals.append(now)
        self.rejected += not admitted
        return admitted


async def send_all(
    limiter: hc.LocalRateLimiter,
    server: SlidingWindowServer,
    count: int,
    *,
    on_success: Callable[[int], None] | None = None,
) -> float:
    """``count`` updates through 10 connections, retrying 429s; return the virtual time taken."""
    slots = anyio.Semaphore(10)
    done = 0
    start = anyio.current_time()

    async def one() -> None:
        nonlocal done
        while True:
            async with slots:
                await limiter.acquire(priority="background")
                await anyio.sleep(ROUND_TRIP / 2)
                admitted = server.admit()
                await anyio.sleep(ROUND_TRIP / 2)
            if admitted:
                done += 1
                if on_success is not None:
                    on_success(done)
                return
            await limiter.on_rate_limited(None)

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)
    return anyio.current_time() - start


#: Round trip of the simulated server, seconds of virtual time.
ROUND_TRIP = 0.003
#: The configured limit of the learning tests: 40 per 2 s, the demo's and the benchmarks'.
CONFIGURED = hc.RateLimit(requests=40, per=2.0, margin=0.02)


@pytest.mark.anyio
@VIRTUAL
@pytest.mark.parametrize("real", [40, 30, 20, 10])
async def test_converges_under_a_lower_real_limit(anyio_backend, real):
    """Configured 40 per 2 s, real 40/30/20/10: 600 updates in 1.10x the real limit, <=2% 429."""
    limiter = hc.LocalRateLimiter(CONFIGURED)
    server = SlidingWindowServer(real, 2.0)

    elapsed = await send_all(limiter, server, 600)

    assert elapsed <= 1.10 * 600 * 2.0 / real
    assert server.rejected <= 0.02 * server.seen
    if real == CONFIGURED.requests:
        assert limiter.learned_limit is None
    else:  # just under the real limit
        assert limiter.learned_limit in (real - 1, real)


@pytest.mark.anyio
@VIRTUAL
async def test_holds_just_under_the_real_limit_over_a_long_job(anyio_backend):
    """Once learned, the limit is held: at most one 429 per LEARN_PROBE_MAX windows after that."""
    limiter = hc.LocalRateLimiter(CONFIGURED)
    server = SlidingWindowServer(20, 2.0)
    rejected_early: list[int] = []

    def note(done: int) -> None:
        if done == 100:
            rejected_early.append(server.rejected)

    elapsed = await send_all(limiter, server, 2000, on_success=note)

    windows_after = (elapsed - 100 * 2.0 / 20) / CONFIGURED.window
    assert server.rejected - rejected_early[0] <= windows_after / LEARN_PROBE_MAX + 1
    assert elapsed <= 1.03 * 2000 * 2.0 / 20


@pytest.mark.anyio
@VIRTUAL
async def test_recovers_the_full_rate_when_the_limit_goes_back_up(anyio_backend):
    """When the real limit returns to the configured one, the full rate is back in bounded time."""
    limiter = hc.LocalRateLimiter(CONFIGURED)
    server = SlidingWindowServer(20, 2.0)
    raised_at: list[float] = []
    full_at: list[float] = []

    def raise_limit(done: int) -> None:
        if done == 600:
            server.requests = 40
            raised_at.append(anyio.current_time())
        if raised_at and not full_at and limiter.current_rate == 40:
            full_at.append(anyio.current_time())

    await send_all(limiter, server, 2000, on_success=raise_limit)

    bound = (LEARN_PROBE_MAX + 3) * CONFIGURED.window
    assert full_at
    assert full_at[0] - raised_at[0] <= bound
    assert limiter.learned_limit is None


# --- traffic classes and max_wait --------------------------------------------------------

#: One request per second, no burst: every grant after the first waits a whole interval.
ONE_PER_SECOND = hc.RateLimit(requests=10, per=10.0, burst=1, margin=0.0)


async def settle() -> None:
    """Let every runnable task run until it blocks."""
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


@pytest.mark.anyio
@VIRTUAL
async def test_interactive_goes_before_queued_background_fifo_within_class(anyio_backend):
    """Line b0 (head) b1 i0 b2 i1: granted b0 i0 i1 b1 b2, each a full interval apart."""
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

    assert ["b0", "i0", "i1", "b1", "b2"] == [name for name, _ in granted]
    assert [1.0, 2.0, 3.0, 4.0, 5.0] == [t - start for _, t in granted]


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
async def test_background_alone_runs_at_the_full_rate(anyio_backend):
    """With no interactive caller, background calls get exactly the schedule FIFO calls get."""

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

    assert await run("interactive") == await run("background")


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
        # next after the head
        await limiter.acquire(priority="interactive", deadline=anyio.current_time() + 2.0)
        assert 2.0 == anyio.current_time() - interactive_asked


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
    assert 1.0 == results["head"]
    assert [2.0, 3.0, 4.0] == [results[f"i{i}"] for i in range(3)]
    assert 5.0 == results["after"]  # the impatient caller's place went to the next one


@pytest.mark.anyio
@VIRTUAL
async def test_max_wait_long_enough_is_granted(anyio_backend):
    """A max_wait that covers the expected slot is simply granted at that slot."""
    limiter = hc.LocalRateLimiter(ONE_PER_SECOND)
    await limiter.acquire()
    start = anyio.current_time()

    await limiter.acquire(deadline=anyio.current_time() + 1.0)

    assert 1.0 == anyio.current_time() - start


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
        await limiter.on_rate_limited(8.0)

    assert 1 == len(refused)
    assert 1.0 == anyio.current_time() - start  # it looked again when its slot was due
    # the lesson: one request was sent in the window, so the rate is now 1 per 10 s
    assert 9.0 == refused[0].retry_after
    assert "no rate-limit slot within max_wait (one expected in 9.000 s)" == str(refused[0])
    assert 9.0 == limiter.expected_wait()  # the refused waiter took no slot


@pytest.mark.anyio
@VIRTUAL
async def test_headers_saying_nothing_remains_pause_the_local_limiter(anyio_backend):
    """on_rate_limit_headers with remaining=0 and a reset holds the next grant until the reset."""
    limiter = hc.LocalRateLimiter(hc.RateLimit(requests=120, per=60.0))
    start = anyio.current_time()

    await limiter.on_rate_limit_headers(hc.RateLimitHeaders(limit=120, remaining=0, reset=3.0))
    await limiter.acquire()

    assert 3.0 == anyio.current_time() - start
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
