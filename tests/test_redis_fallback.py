"""The Redis limiter's local fallback: no race with a Redis that comes back, and a caller's
deadline kept while Redis is away. Redis is a fake here, so time is trio's virtual clock."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest
import redis.exceptions
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async.redis import RedisRateLimiter
from helpcrunch_async.redis import _calls as redis_calls

pytestmark = pytest.mark.anyio

VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
#: 4 per second, one at a time: a local grant every 0.25 s once the burst is spent.
LIMIT = hc.RateLimit(requests=4, per=1.0, burst=1, margin=0.0)
#: What the script answers: granted now, a fleet of one, nothing lost, the full rate.
GRANTED = [b"0", b"1", b"1", b"0", b"4", b"-1"]
MAX_WAIT = 0.1


class FakeRedis:
    """Answers the script as Redis would, or fails as a Redis that went away."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    async def __call__(self, _keys: list[str], _args: list[Any]) -> Any:
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        if not self.up:
            raise redis.exceptions.ConnectionError("Connection refused")
        return list(GRANTED)


@pytest.fixture
def fake() -> FakeRedis:
    return FakeRedis()


@pytest.fixture
def limiter(fake: FakeRedis, monkeypatch: pytest.MonkeyPatch) -> RedisRateLimiter:
    """A limiter falling back locally, on the fake Redis (nothing listens on port 9)."""
    built = RedisRateLimiter.from_url(
        "redis://127.0.0.1:9/0", key="fallback", limit=LIMIT, on_unavailable="local"
    )
    monkeypatch.setattr(built._script, "_once", fake)
    return built


@VIRTUAL
async def test_a_redis_back_while_a_caller_sleeps_towards_the_fallback_is_no_crash(
    anyio_backend, fake, limiter, monkeypatch
):
    """A reply from Redis resets the fallback while a caller waits for it to start: the
    caller keeps its own fallback and is granted by it."""
    await limiter.acquire()  # a Redis grant: the fallback may start only a window later
    fake.up = False
    monkeypatch.setattr(redis_calls, "RETRY_FOR", 0.0)  # falls back at once, not retrying
    granted: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        granted.append(anyio.current_time())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(caller)
        while limiter._fallback is None:  # the caller fell back and sleeps towards its start
            await anyio.lowlevel.checkpoint()
        fake.up = True
        await limiter.on_rate_limited(None)  # Redis answers another caller: fallback reset

        assert limiter._fallback is None
        assert [] == granted

    assert 1 == len(granted)
    assert 1 == limiter.local_grants


async def grant_or_refusal(limiter: RedisRateLimiter) -> tuple[str, float]:
    """``acquire`` with a deadline MAX_WAIT away: what it did, and how long it took."""
    started = anyio.current_time()
    try:
        await limiter.acquire(deadline=started + MAX_WAIT)
    except hc.LimiterTimeoutError:
        return "refused", anyio.current_time() - started
    return "granted", anyio.current_time() - started


@VIRTUAL
async def test_a_deadline_before_the_fallback_starts_is_refused_within_it(
    anyio_backend, fake, limiter
):
    """Redis just granted, then went away: the fallback starts a window later, past the
    deadline, so the caller is refused at once."""
    await limiter.acquire()
    fake.up = False

    outcome, took = await grant_or_refusal(limiter)

    assert "refused" == outcome
    assert took <= MAX_WAIT


@VIRTUAL
async def test_a_deadline_in_a_running_fallback_is_granted_within_it(anyio_backend, fake, limiter):
    """Once the fallback runs, a free local slot is granted within the deadline."""
    fake.up = False
    await limiter.acquire()  # Redis never answered: the fallback starts at once

    await anyio.sleep(LIMIT.window)
    outcome, took = await grant_or_refusal(limiter)

    assert ("granted", 2) == (outcome, limiter.local_grants)
    assert took <= MAX_WAIT


@VIRTUAL
async def test_a_deadline_before_the_next_local_slot_is_refused_within_it(
    anyio_backend, fake, limiter
):
    """The local slot after the one just granted is 0.25 s away: refused within 0.1 s."""
    fake.up = False
    await limiter.acquire()

    outcome, took = await grant_or_refusal(limiter)

    assert "refused" == outcome
    assert took <= MAX_WAIT


@VIRTUAL
async def test_retries_of_a_failing_redis_stop_at_the_callers_deadline(
    anyio_backend, fake, limiter
):
    """Redis retried for a moment (a failover) never takes a caller past its deadline."""
    fake.up = False

    outcome, took = await grant_or_refusal(limiter)

    assert "granted" == outcome  # the fallback started at once: Redis never granted
    assert took <= MAX_WAIT
    assert fake.calls >= 1
