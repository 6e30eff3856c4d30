"""The Redis limiter against a fake Redis: what it sends the script, when it calls at all,
and its local fallback (its share of the rate, no race with a Redis that comes back, a
caller's deadline kept while Redis is away). Redis is a fake here, so time is trio's virtual
clock."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import redis.exceptions
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async._limit._gcra import ADAPT_FLOOR, LEARN_HOLD_MAX, LEARN_HOLD_MIN
from helpcrunch_async.redis import BACKGROUND_LOOKAHEAD, RedisRateLimiter
from helpcrunch_async.redis import _calls as redis_calls
from helpcrunch_async.redis._limiter import SEQUENCE_TTL_MS

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
        self.reply: Any = GRANTED
        #: The keys and arguments of every call, as redis-py was asked to send them.
        self.sent: list[tuple[list[str], list[Any]]] = []

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        self.calls += 1
        self.sent.append((list(keys), list(args)))
        await anyio.lowlevel.checkpoint()
        if not self.up:
            raise redis.exceptions.ConnectionError("Connection refused")
        return list(self.reply)

    def limiter(self, **options: Any) -> RedisRateLimiter:
        """A limiter (on ``LIMIT`` unless told) on this Redis (nothing listens on port 9)."""
        options.setdefault("key", "fallback")
        options.setdefault("limit", LIMIT)
        built = RedisRateLimiter.from_url("redis://127.0.0.1:9/0", **options)
        setattr(built._script, "_once", self)  # noqa: B010 - this instance's only
        return built


@pytest.fixture
def fake() -> FakeRedis:
    return FakeRedis()


@pytest.fixture
def limiter(fake: FakeRedis) -> RedisRateLimiter:
    """A limiter falling back locally, on the fake Redis."""
    return fake.limiter(on_unavailable="local")


@pytest.fixture
def no_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing Redis counts at once (no retry for a moment): no virtual time passes."""
    monkeypatch.setattr(redis_calls, "RETRY_FOR", 0.0)


@pytest.fixture
def down(fake: FakeRedis, no_retry: None) -> FakeRedis:
    """The fake Redis gone away, its failures counted at once."""
    fake.up = False
    return fake


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


#: A budget whose numbers all differ (4 per 2 s, a window of 2.5 s, a burst of 3).
WIRE = hc.RateLimit(requests=4, per=2.0, burst=3, margin=0.5)


@VIRTUAL
async def test_each_call_sends_the_script_its_keys_and_arguments(anyio_backend, fake):
    """As the script's header lists them: the budget, the pause (-1: none), a TTL of two
    windows and a second in ms, the learning constants, the last sequence number seen, no
    local grants, this process's id, Redis's clock (""), the reach (-1: any), the headers'
    fields (-1: absent), the traffic class and the refused request's age (-1: none)."""
    limiter, other = fake.limiter(key="wire", limit=WIRE), fake.limiter(key="wire", limit=WIRE)

    await limiter.acquire()
    await limiter.acquire(priority="background")
    await limiter.on_rate_limited(None)
    await limiter.on_rate_limited(2.5, sent_ago=0.0)
    await limiter.on_rate_limit_headers(
        hc.RateLimitHeaders(limit=3, window=2.0, remaining=0, reset=1.5)
    )
    await other.acquire()

    keys = ["{wire}:state", "{wire}:grants", "{wire}:fleet", "{wire}:seq"]
    member = fake.sent[0][1][11]
    none = [-1.0] * 4

    def call(mode: str, pause: float, seen: int, ahead: float, *rest: Any) -> Any:
        fixed = [4, 2.5, 3, pause, 6000, ADAPT_FLOOR, LEARN_HOLD_MIN, LEARN_HOLD_MAX]
        return (keys, [mode, *fixed, seen, "0", member, "", 2.0, ahead, *rest, SEQUENCE_TTL_MS])

    assert [
        call("acquire", -1.0, 0, 2.5 / 4 + BACKGROUND_LOOKAHEAD, *none, "interactive", -1.0),
        call("acquire", -1.0, 1, BACKGROUND_LOOKAHEAD, *none, "background", -1.0),
        call("penalize", -1.0, 1, -1.0, *none, "interactive", -1.0),
        call("penalize", 2.5, 1, -1.0, *none, "interactive", 0.0),
        call("observe", -1.0, 1, -1.0, 3.0, 2.0, 0.0, 1.5, "interactive", -1.0),
    ] == fake.sent[:5]
    assert re.fullmatch("[0-9a-f]{16}", member)
    assert member != fake.sent[5][1][11]  # each process is a member of the fleet


@VIRTUAL
@pytest.mark.parametrize(("after", "flags"), [(0.5, ["0", "1", "0"]), (1.0, ["0", "0", "0"])])
async def test_local_grants_of_the_last_window_are_told_to_redis_once(
    anyio_backend, down, limiter, after, flags
):
    """Back within a window of a local grant, the next call says so (the script then makes
    the fleet wait them out), and only that call; a window after it, none says so."""
    await anyio.sleep(10.0)
    await limiter.acquire()  # granted locally
    down.up = True

    await anyio.sleep(after)
    await limiter.acquire()
    await limiter.on_rate_limited(None)

    assert flags == [args[10] for _, args in down.sent]


@pytest.mark.parametrize(
    ("seen", "trips"),
    [
        ([hc.RateLimitHeaders(remaining=5, reset=3.0)], 0),
        ([hc.RateLimitHeaders(remaining=0)], 0),
        ([hc.RateLimitHeaders(remaining=0, reset=3.0)], 1),
        ([hc.RateLimitHeaders(limit=4), hc.RateLimitHeaders(limit=4)], 1),
        ([hc.RateLimitHeaders(limit=4), hc.RateLimitHeaders(limit=4, window=2.0)], 2),
        (
            [
                hc.RateLimitHeaders(limit=4),
                hc.RateLimitHeaders(limit=3),
                hc.RateLimitHeaders(limit=4),
            ],
            3,
        ),
        (
            [
                hc.RateLimitHeaders(limit=4),
                hc.RateLimitHeaders(remaining=0, reset=3.0),
                hc.RateLimitHeaders(limit=4),
            ],
            2,
        ),
    ],
    ids=["requests-left", "no-reset", "exhausted", "same-limit", "other-window", "changes", "kept"],
)
async def test_headers_cost_a_round_trip_only_when_they_say_something_new(
    anyio_backend, fake, seen, trips
):
    """A stated limit (and window) not shared yet, or no requests left until a reset, goes
    to Redis; the same limit again, or requests left, does not."""
    limiter = fake.limiter()

    for headers in seen:
        await limiter.on_rate_limit_headers(headers)

    assert trips == limiter.round_trips


@VIRTUAL
async def test_headers_seen_while_redis_is_away_reach_the_local_fallback(
    anyio_backend, down, limiter
):
    """No requests left for 0.5 s, seen while Redis is away: the fallback waits it out."""
    await limiter.on_rate_limit_headers(hc.RateLimitHeaders(remaining=0, reset=0.5))
    start = anyio.current_time()

    await limiter.acquire()

    assert pytest.approx(0.5) == anyio.current_time() - start


@VIRTUAL
async def test_the_fallback_starts_a_window_after_the_last_redis_grant(
    anyio_backend, fake, limiter, no_retry
):
    """A deadline before that is refused at once, with the time until then; a deadline at
    that very moment is granted then."""
    await anyio.sleep(10.0)
    start = anyio.current_time()
    await limiter.acquire()  # Redis's grant
    fake.up = False

    with pytest.raises(hc.LimiterTimeoutError) as caught:
        await limiter.acquire(deadline=start + LIMIT.window - 0.25)
    await limiter.acquire(deadline=start + LIMIT.window)

    assert LIMIT.window == caught.value.retry_after
    assert start + LIMIT.window == anyio.current_time()
    assert 1 == limiter.local_grants


@VIRTUAL
@pytest.mark.parametrize(("burst", "priority"), [(2, "interactive"), (8, "background")])
async def test_the_fallback_keeps_its_share_of_the_rate_and_of_the_burst(
    anyio_backend, down, burst, priority
):
    """Half of 8 per second with a burst of 2: 4 per second, one at once; with a burst of 8
    as many, a background caller never spending the burst."""
    limit = hc.RateLimit(requests=8, per=1.0, burst=burst, margin=0.0)
    limiter = down.limiter(limit=limit, on_unavailable="local", local_share=0.5)
    start = anyio.current_time()
    granted = []

    for _ in range(3):
        await limiter.acquire(priority=priority)
        granted.append(anyio.current_time() - start)

    assert [0.0, 0.25, 0.5] == granted


@VIRTUAL
@pytest.mark.parametrize(
    ("options", "then"),
    [
        ({}, "failing requests"),
        ({"on_unavailable": "local"}, "falling back to a local limit of 1 per 1 s"),
        (
            {"on_unavailable": "local", "local_share": 0.5, "limit": hc.RateLimit(4, 2.5)},
            "falling back to a local limit of 2 per 2.5 s",
        ),
    ],
    ids=["fail", "local", "local-share"],
)
async def test_an_outage_is_logged_once_with_its_cause_and_what_follows(
    anyio_backend, down, caplog, options, then
):
    """One warning when Redis goes away (its failure, and failing or the local rate: a
    quarter of the fleet's before its size is known), one when it is back."""
    caplog.set_level(logging.WARNING, logger="helpcrunch_async")
    limiter = down.limiter(**options)
    for _ in range(2):
        with contextlib.suppress(hc.LimiterUnavailableError):
            await limiter.acquire()
    down.up = True

    await limiter.acquire()
    await limiter.acquire()

    assert [
        f"Redis rate limiter unavailable (ConnectionError: Connection refused); {then}",
        "Redis rate limiter usable again; sharing the limit through it",
    ] == [record.getMessage() for record in caplog.records]


@pytest.mark.parametrize(("pause", "expected"), [(None, 0.0), (2.5, 2.5)])
async def test_a_429_while_redis_is_away_pauses_as_asked_when_failing(
    anyio_backend, down, pause, expected
):
    """Nobody is granted until Redis is back: the pause in force is the 429's (0 if none)."""
    limiter = down.limiter()

    assert expected == await limiter.on_rate_limited(pause)


@VIRTUAL
async def test_a_429_while_redis_is_away_goes_to_the_local_fallback(anyio_backend, down, limiter):
    """The fallback pauses a window after a first 429; a 429 for a request sent before that
    pause began adds nothing once it is over; a Retry-After is kept as given."""
    await anyio.sleep(10.0)

    first = await limiter.on_rate_limited(None)
    await anyio.sleep(1.5)
    late = await limiter.on_rate_limited(None, sent_ago=0.75)
    given = await limiter.on_rate_limited(3.0)

    assert (LIMIT.window, 0.0, 3.0) == (first, late, given)


@pytest.mark.parametrize(
    ("sent_ago", "exc", "message"),
    [
        (-1, ValueError, "sent_ago must be a finite number >= 0, got -1"),
        ("1", TypeError, "sent_ago must be a number, not str"),
    ],
)
async def test_a_bad_sent_ago_is_refused_before_asking_redis(
    anyio_backend, fake, sent_ago, exc, message
):
    """``sent_ago`` is checked, named in the message, before any round trip."""
    limiter = fake.limiter()

    with pytest.raises(exc) as caught:
        await limiter.on_rate_limited(1.0, sent_ago=sent_ago)

    assert message == str(caught.value)
    assert 0 == limiter.round_trips


async def test_a_limiter_without_a_key_says_how_to_give_it_one(anyio_backend, fake):
    """Neither given a key nor a client's: a RuntimeError naming both ways, nothing sent."""
    limiter = fake.limiter(key=None)

    with pytest.raises(RuntimeError) as caught:
        await limiter.acquire()

    assert ("RedisRateLimiter has no key: pass it to a HelpCrunch client or give key=...") == str(
        caught.value
    )
    assert [] == fake.sent


@VIRTUAL
async def test_a_caller_behind_another_in_its_lane_is_refused_at_its_deadline(anyio_backend, fake):
    """The head of the lane waits for a slot Redis reserved a second away; the caller behind
    it, with half a second to wait, is refused then, having asked Redis nothing (when the
    head leaves cannot be told: no retry_after)."""
    limiter = fake.limiter()
    fake.reply = [b"1", *GRANTED[1:]]

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(limiter.acquire)
        await anyio.wait_all_tasks_blocked()
        start = anyio.current_time()
        with pytest.raises(hc.LimiterTimeoutError) as caught:
            await limiter.acquire(deadline=start + 0.5)
        refused = anyio.current_time() - start

    assert (0.5, None, 1) == (refused, caught.value.retry_after, limiter.round_trips)


@VIRTUAL
async def test_a_refusal_by_the_fallback_tells_the_fallbacks_wait(
    anyio_backend, fake, limiter, no_retry
):
    """Redis said the slot was 0.5 s away, out of reach: the caller asks again 0.35 s later
    and Redis is gone; the fallback, starting a window after Redis's reply, refuses the
    0.75 s deadline with the time until it starts, not with Redis's old figure."""
    await anyio.sleep(10.0)
    fake.reply = [b"-0.5", *GRANTED[1:]]
    start = anyio.current_time()
    refused: list[float | None] = []

    async def caller() -> None:
        try:
            await limiter.acquire(deadline=start + 0.75)
        except hc.LimiterTimeoutError as exc:
            refused.extend([anyio.current_time() - start, exc.retry_after])

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        fake.up = False

    assert pytest.approx([0.35, 0.65]) == refused


@VIRTUAL
async def test_a_slot_out_of_reach_but_by_the_deadline_is_asked_for_again(anyio_backend, fake):
    """Redis said the slot was 0.5 s away, out of reach (0.3 s): with 0.5 s to wait the
    caller is not refused but asks again when it is well within reach, 0.35 s later, and
    takes the slot Redis then reserves, at its deadline."""
    limiter = fake.limiter()
    fake.reply = [b"-0.5", *GRANTED[1:]]
    start = anyio.current_time()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(functools.partial(limiter.acquire, deadline=start + 0.5))
        await anyio.wait_all_tasks_blocked()
        fake.reply = [b"0.15", *GRANTED[1:]]

    assert pytest.approx(0.5) == anyio.current_time() - start
    assert 2 == limiter.round_trips


async def test_every_reply_of_a_lost_schedule_is_counted(anyio_backend, fake):
    """Each reply saying the schedule was lost counts, not only the first."""
    limiter = fake.limiter()
    fake.reply = [*GRANTED[:3], b"1", *GRANTED[4:]]

    for _ in range(2):
        await limiter.acquire()

    assert 2 == limiter.lost_states


@VIRTUAL
async def test_a_background_caller_asks_when_its_slot_can_be_within_reach(anyio_backend, fake):
    """After an interactive grant a background caller asks at once; after a background grant
    the next asks an interval (0.25 s) later less half its reach (0.025 s), or at its
    deadline if that comes first (refused then, Redis saying the slot is out of reach)."""
    limiter = fake.limiter()
    start = anyio.current_time()
    asked = []

    await limiter.acquire()
    for _ in range(2):
        await limiter.acquire(priority="background")
        asked.append(anyio.current_time() - start)
    fake.reply = [b"-0.25", *GRANTED[1:]]
    with pytest.raises(hc.LimiterTimeoutError):
        await limiter.acquire(priority="background", deadline=anyio.current_time() + 0.1)
    asked.append(anyio.current_time() - start)

    assert pytest.approx([0.0, 0.225, 0.325]) == asked
    assert 4 == limiter.round_trips


async def test_a_slot_granted_now_is_not_undone_by_a_cancel_arriving_with_it(anyio_backend, fake):
    """A grant for now ends ``acquire()`` as Redis answers: a cancellation arriving with the
    reply (a caller's timeout running out meanwhile) finds the call returned, the slot its."""
    limiter = fake.limiter()
    returned = False

    with anyio.CancelScope() as scope:

        async def answer_then_cancel(keys: list[str], args: list[Any]) -> Any:
            reply = await fake(keys, args)
            scope.cancel()
            return reply

        setattr(limiter._script, "_once", answer_then_cancel)  # noqa: B010 - this instance's only
        await limiter.acquire()
        returned = True

    assert returned
    assert not scope.cancelled_caught
