"""The limiter where 429s come anyway, on trio's virtual clock, through real clients.

A 429 says the key's window is full, not who filled it: a job resumed at once after a kill,
another program's burst, a key whose real limit is lower than configured, a limit that
comes back. Each scenario runs whole clients (the send path, the limiter, the 429 feedback,
the retries) against ``StrictServer`` (a sliding window that counts rejected requests too,
no ``Retry-After`` unless said), locally and through a real Redis with several "processes"
(``RedisRateLimiter`` instances on one key, the script on the virtual clock). Time is a
multiple of N/R: the work's requests over the key's real rate.
"""

from __future__ import annotations

import io

import anyio
import pytest
import trio.lowlevel
import trio.testing
from rich.console import Console

import helpcrunch_async as hc
from helpcrunch_async._cli._job import JobResult
from helpcrunch_async._cli._summary import print_summary
from helpcrunch_async._limit._gcra import LEARN_HOLD_MAX
from helpcrunch_async.redis import RedisRateLimiter
from tests.strict_server import (
    DEFAULTS,
    SCALED,
    Job,
    RateLog,
    StrictServer,
    client_for,
    fleet_of,
    interactive_waits,
    run_fleet,
    run_job,
)

VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
pytestmark = [pytest.mark.anyio, VIRTUAL]
#: The scaled key's rate, requests per second.
RATE = SCALED.requests / SCALED.per


# --- a busy key is not a lower limit -------------------------------------------------------


async def test_a_job_killed_and_resumed_at_once_finishes_at_the_full_rate(anyio_backend):
    """Killed (SIGKILL) after 3 s, resumed at once by a new process: its first requests meet
    the old run's window, one 429, one pause; the rest within 1.15 x remaining/R plus one
    window, and nothing learned."""
    server = StrictServer(SCALED.requests, SCALED.per)
    first = Job()
    async with client_for(server, "killed", SCALED) as client:
        with anyio.move_on_after(3.0):
            await run_job(client, range(1, 401), first)
    remaining = sorted(set(range(1, 401)) - set(first.done))
    resumed = Job()
    async with client_for(server, "resumed", SCALED) as client:
        await run_job(client, remaining, resumed)
        stats = client.stats()

    assert sorted(remaining) == sorted(resumed.done)
    assert resumed.elapsed <= 1.15 * len(remaining) / RATE + SCALED.per
    assert 1 >= server.rejected("resumed")
    assert stats.learned_limit is None
    assert SCALED.requests >= server.most_in_any_window("resumed")


@pytest.mark.parametrize("retry_after", [None, "honest"])
async def test_a_burst_from_another_program_costs_one_pause(anyio_backend, retry_after):
    """A job of 400 meets another program's burst of 40: one pause, within 1.10 x (400 + 40)/R
    plus one window, at most 2 % of its own requests answered 429, nothing learned."""
    server = StrictServer(SCALED.requests, SCALED.per, retry_after)
    job = Job()
    async with client_for(server, "job", SCALED) as client, anyio.create_task_group() as tg:
        tg.start_soon(run_job, client, range(1, 401), job)
        await anyio.sleep(5.0)
        server.burst(40)
    learned = client.stats().learned_limit

    assert 400 == len(job.done)
    assert job.elapsed <= 1.10 * (400 + 40) / RATE + SCALED.per
    assert server.rejected("job") <= 0.02 * server.sent("job")
    assert learned is None
    assert SCALED.requests >= server.most_in_any_window("job")


def limiters_for(
    where: str, redis_url: str | None
) -> list[hc.LocalRateLimiter] | list[RedisRateLimiter]:
    """One local limiter, or three processes' on one Redis key."""
    if where == "local":
        return [hc.LocalRateLimiter(SCALED)]
    assert redis_url is not None
    return fleet_of(redis_url, "scenario:fleet", 3, SCALED)


WHERE = [
    pytest.param("local", id="local"),
    pytest.param("redis", id="redis-x3", marks=pytest.mark.redis),
]


@pytest.fixture
def fleet(request: pytest.FixtureRequest):
    """The limiters of the test's ``where``: local, or three processes through Redis."""
    where = request.param
    url = request.getfixturevalue("redis_url") if where == "redis" else None
    return limiters_for(where, url)


# --- a lower real limit --------------------------------------------------------------------


@pytest.mark.parametrize("fleet", WHERE, indirect=True)
@pytest.mark.parametrize("share", [1.0, 0.75, 0.5, 0.25])
async def test_a_lower_real_limit_is_learned_and_held(anyio_backend, fleet, share):
    """Configured 40 per 2 s, real 100/75/50/25 %: 600 updates within 1.10 x what the real
    limit allows, at most 2 % answered 429 at half the limit, the real limit reported at the
    end; the key's window never over the limit."""
    real = round(SCALED.requests * share)
    server = StrictServer(real, SCALED.per)
    rates = RateLog(fleet)

    elapsed, stats = await run_fleet(fleet, server, 600, rates.note)

    assert elapsed <= 1.10 * 600 * SCALED.per / real
    assert real >= server.most_in_any_window("fleet") - server.rejected("fleet")
    assert SCALED.requests >= server.most_in_any_window("fleet")
    if share == 1.0:
        assert 0 == server.rejected("fleet")
        assert {None} == {s.learned_limit for s in stats}
    else:
        assert {s.learned_limit for s in stats} <= {real - 1, real}
    if share >= 0.5:
        assert server.rejected("fleet") <= 0.02 * server.sent("fleet")
    else:  # one 429 per try of the configured rate: fewer requests between tries
        assert server.rejected("fleet") <= 0.03 * server.sent("fleet")


@pytest.mark.parametrize("fleet", WHERE, indirect=True)
@pytest.mark.parametrize("share", [0.5, 0.25])
async def test_direct_calls_at_a_lower_limit_pay_one_429_per_try(anyio_backend, fleet, share):
    """``asyncio.gather`` over direct (interactive) calls at half and a quarter of the limit:
    no burst while a lesson holds, and through Redis no reservation farther than half an
    interval, so each try of the configured rate costs one 429, not a burst of them."""
    real = round(SCALED.requests * share)
    server = StrictServer(real, SCALED.per)

    elapsed, stats = await run_fleet(fleet, server, 600, lambda: None, priority="interactive")

    assert elapsed <= 1.10 * 600 * SCALED.per / real
    assert server.rejected("fleet") <= (0.02 if share == 0.5 else 0.035) * server.sent("fleet")
    assert {s.learned_limit for s in stats} <= {real - 1, real}


@pytest.mark.parametrize("fleet", WHERE, indirect=True)
async def test_a_slow_server_does_not_mislead_the_lessons(anyio_backend, fleet):
    """Answers that take two intervals: the limiter knows when each refused request left,
    so requests still in flight when a 429 came are neither counted in the lesson nor taken
    for a new refusal; at half the limit the job still runs within 1.10 x."""
    server = StrictServer(20, SCALED.per)

    elapsed, stats = await run_fleet(fleet, server, 600, lambda: None, rtt=0.1)

    assert elapsed <= 1.10 * 600 * SCALED.per / 20
    assert {s.learned_limit for s in stats} <= {19, 20}


@pytest.mark.redis
@pytest.mark.parametrize("offset", [0.0, 17.3, 100.0])
async def test_a_fleet_at_half_the_limit_pays_one_429_per_try_whenever_it_runs(
    anyio_backend, redis_url, offset
):
    """Three processes through Redis at half the limit, started at different moments of the
    clock: at most 2 % answered 429 each time. No process reserves a background slot more
    than half an interval ahead, even one that last saw the learned rate while the fleet
    tries the configured one: its reservation would come before the 429 of the slot before."""
    trio.lowlevel.current_clock().jump(offset)  # type: ignore[attr-defined]
    server = StrictServer(20, SCALED.per)

    await run_fleet(fleet_of(redis_url, "scenario:offset", 3, SCALED), server, 600, lambda: None)

    assert server.rejected("fleet") <= 0.02 * server.sent("fleet")


@pytest.mark.parametrize("fleet", WHERE, indirect=True)
async def test_the_full_rate_is_back_within_two_windows_after_the_limit_returns(
    anyio_backend, fleet
):
    """Real 20 per 2 s, back to 40 after 300 of 600 updates: the full rate within two
    windows, for good, nothing reported at the end."""
    server = StrictServer(20, SCALED.per)
    rates = RateLog(fleet)
    raised: list[float] = []

    def note() -> None:
        rates.note()
        if len(rates.log) == 300 * len(fleet):
            server.requests = SCALED.requests
            raised.append(anyio.current_time())

    elapsed, stats = await run_fleet(fleet, server, 600, note)

    back = (rates.full_since(raised[0]) - raised[0]) / SCALED.window
    assert back <= 2.0
    assert {None} == {s.learned_limit for s in stats}
    assert elapsed <= 1.10 * (300 * SCALED.per / 20 + 300 / RATE)


@pytest.mark.parametrize("switch", [100, 170, 240, 310, 380, 450, 520])
async def test_the_full_rate_is_back_within_the_longest_hold_wherever_the_limit_returns(
    anyio_backend, switch
):
    """Wherever the real limit comes back, the full rate is back within LEARN_HOLD_MAX
    windows: a limit confirmed low is tried again that often (the trade-off: trying every two
    windows would answer more than 2 % of requests 429 while the limit stays low)."""
    server = StrictServer(20, SCALED.per)
    limiters = [hc.LocalRateLimiter(SCALED)]
    rates = RateLog(limiters)
    raised: list[float] = []

    def note() -> None:
        rates.note()
        if len(rates.log) == switch:
            server.requests = SCALED.requests
            raised.append(anyio.current_time())

    await run_fleet(limiters, server, 600, note)

    assert (rates.full_since(raised[0]) - raised[0]) / SCALED.window <= LEARN_HOLD_MAX


async def test_a_lesson_from_two_bursts_of_another_program_is_forgotten(anyio_backend):
    """Two bursts a window apart look like a lower limit; once the 429s stop, the configured
    rate is back within two windows, and nothing is reported at the end."""
    server = StrictServer(SCALED.requests, SCALED.per)
    limiters = [hc.LocalRateLimiter(SCALED)]
    rates = RateLog(limiters)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_fleet, limiters, server, 600, rates.note)
        for at in (5.0, 8.0):
            await anyio.sleep_until(at)
            server.burst(40)

    last = max(a.at for a in server.log if a.source == "fleet" and not a.admitted)
    assert (rates.full_since(last) - last) / SCALED.window <= 2.0
    assert limiters[0].learned_limit is None
    assert server.rejected("fleet") <= 0.02 * server.sent("fleet")


async def test_a_long_job_under_a_lower_limit_pays_one_429_per_longest_hold(anyio_backend):
    """Once the real limit is learned it is held, tried again every LEARN_HOLD_MAX windows:
    at most one 429 each time, and the job runs within 5 % of what the real limit allows."""
    server = StrictServer(20, SCALED.per)
    limiters = [hc.LocalRateLimiter(SCALED)]
    early: list[tuple[float, int]] = []

    def note() -> None:
        if len(early) < 100:
            early.append((anyio.current_time(), server.rejected("fleet")))

    started = anyio.current_time()
    elapsed, _ = await run_fleet(limiters, server, 2000, note)

    learned_at, rejected_then = early[-1]
    windows = (started + elapsed - learned_at) / SCALED.window
    assert server.rejected("fleet") - rejected_then <= windows / LEARN_HOLD_MAX + 1
    assert elapsed <= 1.05 * 2000 * SCALED.per / 20


# --- no stall: interactive calls during a saturating bulk job ------------------------------


def two_limiters(
    where: str, limit: hc.RateLimit, request: pytest.FixtureRequest
) -> tuple[hc.RateLimiter, hc.RateLimiter]:
    """The bulk job's limiter and the web calls': one local, or two processes through Redis."""
    if where == "local":
        limiter = hc.LocalRateLimiter(limit)
        return limiter, limiter
    bulk, web = fleet_of(request.getfixturevalue("redis_url"), "scenario:web", 2, limit)
    return bulk, web


@pytest.mark.parametrize("where", WHERE)
async def test_a_web_call_during_a_saturating_job_at_the_real_limit_waits_under_1_5_s(
    anyio_backend, where, request
):
    """120 per 60 s with the defaults, a web call every 3 s from t = 45 s to 70 s while a bulk
    job saturates the key (same process, or another through Redis): each is granted within
    1.5 s, and no window of 60 s holds more than 120."""
    bulk, web = two_limiters(where, DEFAULTS, request)

    waits, server = await interactive_waits(bulk, web, DEFAULTS, [45.0 + 3 * k for k in range(9)])

    assert 1.5 >= max(waits)
    assert DEFAULTS.requests >= server.most_in_any_window("bulk", "web")
    assert 0 == server.rejected("bulk", "web")


@pytest.mark.parametrize("where", WHERE)
async def test_a_web_call_during_a_saturating_job_at_40_per_2_waits_two_intervals(
    anyio_backend, where, request
):
    """40 per 2 s: web calls every 0.3 s over three windows of a saturating bulk job, each
    granted within two intervals; no window over the limit."""
    bulk, web = two_limiters(where, SCALED, request)
    interval = SCALED.window / SCALED.requests

    waits, server = await interactive_waits(bulk, web, SCALED, [0.3 * k for k in range(21)])

    assert 2 * interval >= max(waits)
    assert SCALED.requests >= server.most_in_any_window("bulk", "web")
    assert 0 == server.rejected("bulk", "web")


# --- one 429 rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["local", pytest.param("redis", marks=pytest.mark.redis), "none"],
)
async def test_retry_after_100_is_the_same_pause_with_or_without_a_limiter(
    anyio_backend, where, request
):
    """Retry-After: 100 pauses 100 s (capped once, at retry_after_max = 120), whether a
    limiter holds every caller (local or through Redis) or the retry sleeps; the event and
    stats() say 100."""
    rate_limit: hc.RateLimit | hc.RateLimiter | None = None
    if where == "local":
        rate_limit = SCALED
    elif where == "redis":
        (rate_limit,) = fleet_of(request.getfixturevalue("redis_url"), "scenario:ra", 1, SCALED)
    server = StrictServer(1, 100.0, retry_after=100.0)
    server.burst(1)  # another program filled the key's window: ours is refused
    events: list[hc.ClientEvent] = []
    async with client_for(server, "job", rate_limit, on_event=events.append) as client:
        started = anyio.current_time()
        await client.chats.update_status(1, "closed")
        took = anyio.current_time() - started
        stats = client.stats()

    throttled = [e for e in events if isinstance(e, hc.Throttled)]
    assert [(100.0, 100.0)] == [(e.retry_after, e.pause) for e in throttled]
    assert 100.0 == stats.throttled_pause
    assert 100.0 <= took < 100.0 + 0.1


# --- honest advice ------------------------------------------------------------------------


def summary(client: hc.HelpCrunch, job: Job) -> str:
    """The CLI's end-of-job summary for ``job`` run by ``client``."""
    out = io.StringIO()
    result = JobResult(
        len(job.done), 0, 0, 0, len(job.done), None, None, job.elapsed, stats=client.stats()
    )
    print_summary(Console(file=out, width=400), client, result, "closed", None)
    return out.getvalue()


async def test_the_cli_suggests_a_rate_only_from_evidence_held_to_the_end(anyio_backend):
    """A key whose real limit is half the configured one: the CLI names it and suggests
    ``--rate 20/2``."""
    server = StrictServer(20, SCALED.per)
    job = Job()
    async with client_for(server, "job", hc.LocalRateLimiter(SCALED)) as client:
        await run_job(client, range(1, 301), job)
        text = summary(client, job)

    assert "the key allows about 20 requests per 2 s, not the configured 40" in text
    assert "Set --rate 20/2 to match." in text


async def test_the_cli_suggests_no_rate_after_another_programs_burst(anyio_backend):
    """Another program's burst: the CLI says the key was busy, and suggests nothing."""
    server = StrictServer(SCALED.requests, SCALED.per)
    job = Job()
    async with client_for(server, "job", hc.LocalRateLimiter(SCALED)) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_job, client, range(1, 201), job)
            await anyio.sleep(2.0)
            server.burst(40)
        text = summary(client, job)

    assert "429 answers: 2;" in text  # the window looked ours, then clearly not
    assert "429 answers paused every call for 2.1s in all" in text  # an interval, a window
    assert "--rate needs no change." in text
    assert "Set --rate" not in text
