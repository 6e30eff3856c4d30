"""The Redis-shared limiter, against real redis-servers (single, Cluster, Sentinel).

Fleets of processes sharing it are in tests/test_redis_fleet.py.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import redis.exceptions
import redis.sentinel
from redis.crc import key_slot

import helpcrunch_async as hc
import helpcrunch_async.redis._calls as redis_calls
from helpcrunch_async._limit._gcra import GCRA
from helpcrunch_async._limit._protocol import api_key_fingerprint
from helpcrunch_async.redis import (
    LimiterUnavailableError,
    RedisRateLimiter,
    client_from_url,
    key_for,
)
from helpcrunch_async.redis._urls import KEY_PREFIX
from tests.conftest import API_KEY, servers_or_skip, status_echo
from tests.redis_server import RedisNode, single_redis

pytestmark = pytest.mark.redis
EXAMPLES = Path(__file__).parent.parent / "examples"
FAST = hc.RateLimit(requests=1000, per=1.0)


@pytest.fixture
def flush(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's Redis, emptied first."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def node() -> Iterator[RedisNode]:
    """A redis-server of the test's own, which it may kill and start again."""
    yield from servers_or_skip(single_redis())


@pytest.fixture
def no_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis failures count at once (no retry for a moment), so tests stay short."""
    monkeypatch.setattr(redis_calls, "RETRY_FOR", 0.0)


# --- keys and settings ---------------------------------------------------------------


@pytest.mark.anyio
async def test_keys_are_a_hash_tagged_fingerprint_in_one_slot_and_expire(
    anyio_backend, redis_url, flush, make_client
):
    """Every key is the key's SHA-256 fingerprint in a hash tag, shares one slot, has a TTL:
    two windows, or a week for the sequence number that tells an expired schedule from a
    lost one."""
    limiter = RedisRateLimiter.from_url(redis_url)
    make_client(rate_limit=limiter)  # the client scopes the limiter to its key

    await limiter.acquire()

    keys = [k.decode() for k in flush.keys("*")]
    assert 4 == len(keys)
    assert all(k.startswith(key_for(API_KEY)) for k in keys)
    assert not any(API_KEY in k for k in keys)
    assert 1 == len({key_slot(k.encode()) for k in keys})
    schedule = [k for k in keys if not k.endswith(":seq")]
    assert all(0 < flush.pttl(k) <= (2 * 60.5 + 1) * 1000 for k in schedule)
    assert 6 * 86_400_000 < flush.pttl(f"{limiter.key}:seq") <= 7 * 86_400_000
    assert f"{KEY_PREFIX}{{{api_key_fingerprint(API_KEY)}}}" == limiter.key
    await limiter.aclose()


def test_keys_of_different_api_keys_spread_across_slots():
    """Different API keys hash to different slots (the tag is the fingerprint, not the prefix)."""
    slots = {key_slot(key_for(f"key-{n}").encode()) for n in range(20)}

    assert 15 < len(slots)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("t:1", "{t:1}"), ("app:{tenant}:rl", "app:{tenant}:rl"), ("a{}b", "{a{}b}")],
)
def test_a_given_key_gets_a_hash_tag_unless_it_has_one(redis_url, given, expected):
    """A key without a (non-empty) hash tag is wrapped in one, so its keys share a slot."""
    client = redis.Redis.from_url(redis_url)

    assert expected == RedisRateLimiter(client, key=given).key
    client.close()


@pytest.mark.anyio
async def test_one_limiter_serves_one_api_key(anyio_backend, redis_url, make_client):
    """Passing one limiter to clients of two different keys is refused."""
    limiter = RedisRateLimiter.from_url(redis_url)
    make_client(rate_limit=limiter)

    with pytest.raises(ValueError) as caught:
        make_client(rate_limit=limiter, api_key="another-key")
    make_client(rate_limit=limiter)  # the same key again is fine

    assert "this RedisRateLimiter already serves another API key; create one per key" == str(
        caught.value
    )
    await limiter.aclose()


@pytest.mark.anyio
async def test_a_given_key_is_kept_when_a_client_takes_the_limiter(
    anyio_backend, redis_url, flush, make_client
):
    """``key=`` names the schedule whatever the client's API key."""
    limiter = RedisRateLimiter.from_url(redis_url, key="given")
    make_client(rate_limit=limiter)

    await limiter.acquire()

    assert "{given}" == limiter.key
    assert [b"{given}:fleet", b"{given}:grants", b"{given}:seq", b"{given}:state"] == sorted(
        flush.keys("*")
    )
    await limiter.aclose()


def test_takes_a_rate_limit_and_defaults_to_helpcrunchs(redis_url):
    """``limit=RateLimit(...)`` is the budget; without it, ``RateLimit()``'s defaults."""
    client = redis.Redis.from_url(redis_url)

    assert hc.RateLimit() == RedisRateLimiter(client).limit
    assert FAST == RedisRateLimiter(client, limit=FAST).limit
    client.close()


@pytest.mark.parametrize("build", [RedisRateLimiter, RedisRateLimiter.from_url])
def test_settings_are_kept_and_shown(redis_url, build):
    """The constructor and ``from_url`` keep every setting; the repr shows the budget and
    what happens when Redis is away; a fresh limiter has seen nothing of Redis."""
    client = redis.Redis.from_url(redis_url)
    given = client if build is RedisRateLimiter else redis_url
    limiter = build(given, limit=FAST, key="kept", on_unavailable="local", local_share=1)
    default = build(given)

    assert (FAST, "{kept}", "local", 1) == (
        limiter.limit,
        limiter.key,
        limiter.on_unavailable,
        limiter.local_share,
    )
    assert f"RedisRateLimiter({FAST!r}, on_unavailable='local')" == repr(limiter)
    assert (
        "RedisRateLimiter(RateLimit(requests=120, per=60.0, burst=10, margin=0.5),"
        " on_unavailable='fail')"
    ) == repr(default)
    assert (None, None, 0, 0, 0, 0, 120, None) == (
        default.key,
        default.local_share,
        default.fleet_size,
        default.round_trips,
        default.lost_states,
        default.local_grants,
        default.current_rate,
        default.learned_limit,
    )
    client.close()


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        (
            {"on_unavailable": "ignore"},
            ValueError,
            "on_unavailable must be 'fail' or 'local', got 'ignore'",
        ),
        ({"local_share": 0}, ValueError, "local_share must be a positive finite number, got 0"),
        ({"local_share": 1.5}, ValueError, "local_share must be a number in (0, 1], got 1.5"),
        ({"local_share": True}, TypeError, "local_share must be a number, not bool"),
        ({"local_share": "half"}, TypeError, "local_share must be a number, not str"),
        ({"key": ""}, ValueError, "key must be a non-empty string"),
        ({"key": 7}, ValueError, "key must be a non-empty string"),
        ({"limit": "120/60"}, TypeError, "limit must be a RateLimit, not str"),
    ],
)
def test_bad_settings(redis_url, kwargs, exc, message):
    """Settings are checked at construction, with a message naming the setting."""
    client = redis.Redis.from_url(redis_url)
    with pytest.raises(exc) as caught:
        RedisRateLimiter(client, **kwargs)
    with pytest.raises(TypeError) as not_a_client:
        RedisRateLimiter("redis://nope")  # type: ignore[arg-type]

    assert message == str(caught.value)
    assert (
        "client must be a redis-py client (Redis, RedisCluster, a Sentinel's master_for(),"
        " or their redis.asyncio twins), not str"
    ) == str(not_a_client.value)
    client.close()


# --- URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "memcached://localhost",
        "localhost:6379",
        "redis+mesh://localhost",
        "unix+cluster:///tmp/x.sock",
        "redis+sentinel://localhost:26379",
        "redis+sentinel://localhost:26379/svc/zero",
        "redis+sentinel://localhost/svc",
        "redis+sentinel://localhost:26379/svc?ssl_cert_reqs=none",
    ],
)
def test_bad_urls_are_refused_without_echoing_them(url):
    """An unknown scheme or a Sentinel URL without host:port or service is a ValueError."""
    with pytest.raises(ValueError) as caught:
        client_from_url(url)

    assert "localhost" not in str(caught.value)


def test_a_cluster_url_with_a_database_is_refused():
    """A cluster has only database 0: another is a ValueError, before connecting."""
    with pytest.raises(ValueError, match="only database 0"):
        client_from_url("redis+cluster://127.0.0.1:9/3")


def test_an_unreachable_cluster_is_unavailable_at_construction(no_retry):
    """redis-py asks a cluster for its slots at once: unreachable is the SDK's error."""
    with pytest.raises(LimiterUnavailableError, match="unavailable"):
        RedisRateLimiter.from_url("redis+cluster://127.0.0.1:9")


def test_plain_urls_carry_auth_tls_and_database():
    """``redis://``/``rediss://`` are redis-py's: user, password, TLS and database kept."""
    client = client_from_url("rediss://ann:s3cret@db.example:6380/2")
    assert isinstance(client, redis.Redis)
    kwargs = client.connection_pool.connection_kwargs

    assert ("ann", "s3cret", 2, 6380) == (
        kwargs["username"],
        kwargs["password"],
        kwargs["db"],
        kwargs["port"],
    )
    assert client.connection_pool.connection_class is redis.SSLConnection
    client.close()


def test_sentinel_url_names_the_sentinels_the_service_and_the_primarys_auth():
    """``redis+sentinel://u:p@h1:1,h2:2/service/db`` names sentinels, service, db and auth."""
    client = client_from_url("rediss+sentinel://ann:s%40cret@10.0.0.1:26379,[::1]:26380/svc/3")
    assert isinstance(client, redis.Redis)
    pool = client.connection_pool

    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert "svc" == pool.service_name
    assert [("10.0.0.1", 26379), ("::1", 26380)] == [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in pool.sentinel_manager.sentinels
    ]
    assert ("ann", "s@cret", 3) == (
        pool.connection_kwargs["username"],
        pool.connection_kwargs["password"],
        pool.connection_kwargs["db"],
    )
    assert pool.connection_class is redis.sentinel.SentinelManagedSSLConnection
    client.close()


# --- the schedule --------------------------------------------------------------------


@pytest.mark.anyio
async def test_burst_then_reservations_follow_the_schedule(anyio_backend, redis_url, flush):
    """Idle key: `burst` slots at once; after that each reservation is spaced by the interval."""
    limit = hc.RateLimit(requests=10, per=10.0, burst=3, margin=0.0)
    limiter = RedisRateLimiter.from_url(redis_url, limit=limit, key="t:1")

    delays = [await limiter._run("acquire", -1.0, now=1000.0) for _ in range(5)]

    assert [0.0, 0.0, 0.0, 1.0, 2.0] == [round(d, 6) for d in delays]
    await limiter.aclose()


@pytest.mark.anyio
async def test_a_429_seen_by_one_worker_pauses_all(anyio_backend, redis_url, flush):
    """A 429 reported by one process pushes the shared schedule back for another."""
    a = RedisRateLimiter.from_url(redis_url, key="t:2")
    b = RedisRateLimiter.from_url(redis_url, key="t:2")

    await a.on_rate_limited(5.0)
    delay = await b._run("acquire", -1.0)

    assert 4.5 < delay <= 5.0
    await a.aclose()
    await b.aclose()


@pytest.mark.anyio
async def test_script_reload_after_noscript(anyio_backend, redis_url, flush):
    """After SCRIPT FLUSH (a restart, a failover) the script is loaded again transparently."""
    limiter = RedisRateLimiter.from_url(redis_url, key="t:3")
    await limiter.acquire()
    flush.script_flush()

    await limiter.acquire()

    assert 2 == limiter.round_trips
    await limiter.aclose()


@pytest.mark.anyio
async def test_one_round_trip_per_grant(anyio_backend, redis_url, flush):
    """Redis itself counts one script call per grant."""
    limiter = RedisRateLimiter.from_url(redis_url, limit=FAST, key="t:4")
    # On a server that has not seen the script yet, the first call is refused (NOSCRIPT)
    # and counted too: count from a loaded script, whatever ran before this test.
    await limiter.acquire()
    before = flush.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)

    for _ in range(20):
        await limiter.acquire()

    after = flush.info("commandstats")["cmdstat_evalsha"]["calls"]
    assert 20 == after - before
    await limiter.aclose()


@pytest.mark.asyncio
async def test_asyncio_redis_client_is_used_directly(redis_url, flush):
    """A redis.asyncio client passed in is awaited directly (asyncio only)."""
    client = redis.asyncio.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, limit=FAST, key="t:5")

    for _ in range(3):
        await limiter.acquire()

    assert 3 == limiter.round_trips
    await client.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_an_asyncio_client_under_trio_says_so(anyio_backend, redis_url):
    """A redis.asyncio client cannot run under trio: a clear RuntimeError, not asyncio's."""
    client = redis.asyncio.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, key="t:trio")

    with pytest.raises(RuntimeError, match="asyncio only"):
        await limiter.acquire()


def differential_events(seed: int) -> list[tuple[float, str, dict[str, Any]]]:
    """A random run: acquires of both classes with and without lookahead, 429s with and
    without Retry-After and the refused request's age, now and then headers."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    now, events = 1000.0, []
    for _ in range(400):
        now = round(now + rng.choice([0.0, 0.0, rng.uniform(0, 0.4), rng.uniform(0, 3.0)]), 3)
        kind = rng.choices(["acquire", "penalize", "observe"], weights=[16, 3, 1])[0]
        if kind == "acquire":
            options: dict[str, Any] = {
                "priority": rng.choice(["interactive", "background"]),
                "ahead": rng.choice([math.inf, math.inf, 0.05, 0.6]),
            }
        elif kind == "penalize":
            options = {
                "pause": rng.choice([None, None, None, round(rng.uniform(0, 4.0), 3)]),
                "age": rng.choice([None, round(rng.uniform(0, 0.8), 3)]),
            }
        else:
            options = {
                "info": hc.RateLimitHeaders(
                    limit=rng.choice([None, 3, 6, 12]),
                    remaining=rng.choice([None, 0, 2]),
                    reset=rng.choice([None, round(rng.uniform(0, 3.0), 3)]),
                )
            }
        events.append((now, kind, options))
    return events


def gcra_decides(gcra: GCRA, now: float, kind: str, options: dict[str, Any]) -> float:
    """What ``GCRA`` decides for one event, as the script reports it."""
    if kind == "acquire":
        slot = gcra.next_time(now, options["priority"])
        if slot - now > options["ahead"]:
            return -(slot - now)  # out of reach: nothing reserved
        gcra.take(slot)
        return slot - now
    if kind == "penalize":
        age = options["age"]
        return gcra.penalize(now, options["pause"], None if age is None else now - age)
    return gcra.observe(now, options["info"])


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(6))
async def test_lua_script_decides_exactly_as_the_local_gcra(anyio_backend, redis_url, flush, seed):
    """Same acquires (both classes, with lookahead), 429s (with Retry-After and the refused
    request's age) and headers at the same times: the script and GCRA give the same waits,
    pauses, rate in force and learned limit, and the run does learn."""
    limit = hc.RateLimit(requests=6, per=2.0, burst=3, margin=0.5)
    limiter = RedisRateLimiter.from_url(redis_url, limit=limit, key=f"diff:{seed}")
    gcra = GCRA(limit)
    expected, actual = [], []

    for now, kind, options in differential_events(seed):
        decided = gcra_decides(gcra, now, kind, options)
        expected.append((round(decided, 6), gcra.capacity(now), gcra.learned_limit(now)))
        pause = options.get("pause")
        raw = await limiter._run(
            kind,
            -1.0 if pause is None else pause,
            now=now,
            ahead=options.get("ahead", math.inf),
            info=options.get("info"),
            priority=options.get("priority", "interactive"),
            age=options.get("age"),
        )
        actual.append((round(raw, 6), limiter.current_rate, limiter.learned_limit))

    assert expected == actual
    assert any(learned is not None for _, _, learned in expected)
    await limiter.aclose()


# --- Redis losing the schedule ---------------------------------------------------------


async def three_grants(limiter: RedisRateLimiter) -> None:
    """Take the burst of three at once (at t=1000 on the script's clock)."""
    for _ in range(3):
        assert 0.0 == await limiter._run("acquire", -1.0, now=1000.0)


LOST = hc.RateLimit(requests=10, per=10.0, burst=3, margin=0.0)


@pytest.mark.anyio
async def test_a_state_gone_empty_makes_the_fleet_wait_one_window(
    anyio_backend, redis_url, flush, caplog
):
    """Redis restarted empty or evicted the key: nothing is granted for one window, then
    background work resumes at the steady pace (it never spends the burst); one warning."""
    caplog.set_level(logging.WARNING, logger="helpcrunch_async")
    limiter = RedisRateLimiter.from_url(redis_url, limit=LOST, key="lost:1")
    await three_grants(limiter)
    flush.flushdb()

    delays = [
        await limiter._run("acquire", -1.0, now=1000.5, priority="background") for _ in range(2)
    ]

    assert [10.0, 11.0] == [round(d, 6) for d in delays]
    assert 1 == limiter.lost_states
    lost = (
        "Redis lost the shared schedule (restart, failover or eviction): the fleet waits one"
        " window before sending again"
    )
    assert [lost] == [record.getMessage() for record in caplog.records]
    await limiter.aclose()


@pytest.mark.anyio
async def test_a_fresh_key_still_bursts(anyio_backend, redis_url, flush):
    """A key nobody used is not taken for a lost one."""
    limiter = RedisRateLimiter.from_url(redis_url, limit=LOST, key="lost:2")

    await three_grants(limiter)

    assert 0 == limiter.lost_states
    await limiter.aclose()


@pytest.mark.anyio
async def test_a_schedule_that_expired_while_the_key_was_idle_is_no_loss(
    anyio_backend, redis_url, flush, caplog
):
    """Nobody called for the schedule's TTL (two windows), so Redis expired it: nothing it
    held is still counted, so the next call goes at once, burst and all, without a warning.
    Only the sequence number outlives it, and carries on."""
    caplog.set_level(logging.WARNING, logger="helpcrunch_async")
    limiter = RedisRateLimiter.from_url(redis_url, limit=LOST, key="lost:idle")
    newcomer = RedisRateLimiter.from_url(redis_url, limit=LOST, key="lost:idle")
    await three_grants(limiter)
    later = 1000.0 + 2 * LOST.window + 1  # past the TTL, as Redis expires it:
    assert 3 == flush.delete(*(f"{limiter.key}{k}" for k in (":state", ":grants", ":fleet")))

    delays = [await limiter._run("acquire", -1.0, now=later) for _ in range(2)]
    delays.append(await newcomer._run("acquire", -1.0, now=later))

    assert [0.0, 0.0, 0.0] == delays  # a fresh schedule: the burst of three
    assert 0 == limiter.lost_states + newcomer.lost_states
    assert [] == caplog.records
    assert 6 == int(flush.hget(f"{limiter.key}:seq", "seq"))
    await limiter.aclose()
    await newcomer.aclose()


@pytest.mark.anyio
async def test_a_state_evicted_within_a_window_of_the_last_call_is_lost(
    anyio_backend, redis_url, flush
):
    """The state is gone but the sequence says a call came less than a window ago: evicted
    (or deleted) in use, so grants the server still counts may be lost: one window's wait,
    for a caller that never talked to Redis too."""
    limiter = RedisRateLimiter.from_url(redis_url, limit=LOST, key="lost:evicted")
    newcomer = RedisRateLimiter.from_url(redis_url, limit=LOST, key="lost:evicted")
    await three_grants(limiter)
    flush.delete(f"{limiter.key}:state", f"{limiter.key}:grants")

    delay = await newcomer._run("acquire", -1.0, now=1005.0)

    assert 10.0 == round(delay, 6)
    assert 1 == newcomer.lost_states
    await limiter.aclose()
    await newcomer.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("garbage", ["9e99", "nan", "-3", "2.5", "seven", ""])
async def test_a_sequence_number_that_is_none_counts_as_lost_and_is_rewritten(
    anyio_backend, redis_url, flush, garbage
):
    """Someone else wrote the sequence: read as none (so the schedule counts as lost for a
    caller that saw one), never as an error, and written back as a number."""
    limiter = RedisRateLimiter.from_url(redis_url, limit=LOST, key="lost:garbage")
    await three_grants(limiter)
    flush.hset(f"{limiter.key}:seq", "seq", garbage)

    delay = await limiter._run("acquire", -1.0, now=1000.5)
    again = await limiter._run("acquire", -1.0, now=1011.0)

    assert (10.0, 1) == (round(delay, 6), limiter.lost_states)
    assert 0.0 == again  # told once
    assert 5 == int(flush.hget(f"{limiter.key}:seq", "seq"))
    await limiter.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r, k: r.hset(k + ":seq", "seq", "1"), id="state-went-back"),
        pytest.param(lambda r, k: r.hset(k + ":state", "replid", "0" * 40), id="other-replid"),
    ],
)
async def test_a_state_older_than_seen_or_from_another_server_is_lost(
    anyio_backend, redis_url, flush, tamper
):
    """A promoted replica behind the primary, or a restored old state, counts as lost."""
    limiter = RedisRateLimiter.from_url(redis_url, limit=LOST, key="lost:3")
    await three_grants(limiter)
    tamper(flush, limiter.key)

    delay = await limiter._run("acquire", -1.0, now=1000.5)

    assert 10.0 == round(delay, 6)
    assert 1 == limiter.lost_states
    await limiter.aclose()


@pytest.mark.anyio
async def test_grants_made_locally_while_redis_was_away_are_waited_out(
    anyio_backend, redis_url, flush, no_retry, monkeypatch
):
    """Back from the local fallback, the process tells Redis; the fleet waits one window."""
    limit = hc.RateLimit(requests=10, per=0.2, burst=3, margin=0.0)
    limiter = RedisRateLimiter.from_url(
        redis_url, limit=limit, key="lost:4", on_unavailable="local"
    )
    await limiter.acquire()
    real_call = limiter._script._once

    async def refused(*args: Any) -> Any:
        raise redis.exceptions.ConnectionError("refused")

    monkeypatch.setattr(limiter._script, "_once", refused)
    await limiter.acquire()  # local
    monkeypatch.setattr(limiter._script, "_once", real_call)

    delay = await limiter._run("acquire", -1.0)
    await limiter._run("acquire", -1.0)

    assert 1 == limiter.lost_states  # told once, not at every call after
    assert delay > 0
    await limiter.aclose()


# --- Redis failing --------------------------------------------------------------------


@pytest.mark.anyio
async def test_unreachable_redis_fails_clearly_and_sends_nothing(
    anyio_backend, make_client, api, caplog, no_retry
):
    """By default an unreachable Redis is an SDK error before any HTTP request."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    limiter = RedisRateLimiter.from_url("redis://127.0.0.1:9/0")
    client = make_client(rate_limit=limiter, max_retries=0)

    for _ in range(2):
        with pytest.raises(LimiterUnavailableError, match="unavailable"):
            await client.chats.update_status(1, "closed")

    assert not route.called
    assert 1 == caplog.text.count("Redis rate limiter unavailable")
    assert isinstance(LimiterUnavailableError("x"), hc.HelpCrunchError)


@pytest.mark.anyio
async def test_unreachable_redis_can_fall_back_to_a_reduced_local_rate(
    anyio_backend, make_client, api, caplog, no_retry
):
    """With on_unavailable="local" calls go on, at a share of the rate, with a warning."""
    caplog.set_level(logging.WARNING)
    api.put("/chats/status").mock(side_effect=status_echo)
    limiter = RedisRateLimiter.from_url("redis://127.0.0.1:9/0", on_unavailable="local")
    client = make_client(rate_limit=limiter)

    chat = await client.chats.update_status(1, "closed")
    await limiter.on_rate_limited(None)

    assert 1 == chat.id
    assert "falling back to a local limit of 30 per 60 s" in caplog.text


@pytest.mark.anyio
async def test_a_fixed_local_share_is_kept(anyio_backend, caplog, no_retry):
    """``local_share=`` fixes the fallback's share, whatever the fleet."""
    caplog.set_level(logging.WARNING)
    limiter = RedisRateLimiter.from_url(
        "redis://127.0.0.1:9/0", key="share", on_unavailable="local", local_share=0.5
    )

    await limiter.acquire()

    assert "falling back to a local limit of 60 per 60 s" in caplog.text


@pytest.mark.anyio
async def test_local_fallback_takes_one_over_the_fleet_and_waits_out_redis_grants(
    anyio_backend, node, no_retry, caplog
):
    """The fallback's share is one over the fleet seen in Redis; it starts a window later."""
    limit = hc.RateLimit(requests=30, per=0.3, burst=9, margin=0.0)
    fleet = [
        RedisRateLimiter.from_url(node.url, limit=limit, key="fleet", on_unavailable="local")
        for _ in range(3)
    ]
    for limiter in fleet:
        last_redis_grant_asked = anyio.current_time()
        await limiter.acquire()
    node.kill()

    await fleet[2].acquire()

    assert 3 == fleet[2].fleet_size
    assert 1 == fleet[2].local_grants
    assert "falling back to a local limit of 10 per 0.3 s" in caplog.text
    assert last_redis_grant_asked + limit.window <= anyio.current_time()
    for limiter in fleet:
        await limiter.aclose()


#: A reply the script could give under the default budget (120 per 60.5 s): granted now, a
#: fleet of one, sequence number 1, nothing lost, the full rate, nothing learned.
GOOD_REPLY = [b"0", b"1", b"1", b"0", b"120", b"-1"]


def but(index: int, item: bytes) -> list[bytes]:
    """``GOOD_REPLY`` with one item replaced."""
    return [item if n == index else good for n, good in enumerate(GOOD_REPLY)]


UNEXPECTED = "Redis gave an unexpected reply to the rate-limit script"
NON_NUMERIC = "Redis gave a non-numeric reply to the rate-limit script"
WAIT = "Redis asked for an implausible wait"
SCHEDULE = "Redis gave an implausible schedule"
RATE = "Redis gave an implausible rate"
#: Replies the script never gives, and what the caller is told. A wait may be at most 100
#: windows (6050 s) either way, a fleet 100000 processes, a sequence number 2**53; the rate
#: in force at least 1 and the learned limit -1 (none) or more, both at most 120.
HOSTILE_REPLIES = [
    (b"0.5", UNEXPECTED),
    (None, UNEXPECTED),
    ("001011", UNEXPECTED),  # six characters are not six items
    (GOOD_REPLY[:5], UNEXPECTED),
    ([*GOOD_REPLY, b"0"], UNEXPECTED),
    ([0, 1, 1, 0, 120, -1], UNEXPECTED),
    (but(0, b"0" * 65), UNEXPECTED),
    (but(0, b"abc"), NON_NUMERIC),
    (but(1, b"1.5"), NON_NUMERIC),
    (but(2, b"x"), NON_NUMERIC),
    (but(4, b"x"), NON_NUMERIC),
    (but(5, b"x"), NON_NUMERIC),
    (but(0, b"nan"), WAIT),
    (but(0, b"inf"), WAIT),
    (but(0, b"-inf"), WAIT),
    (but(0, b"1e300"), WAIT),
    (but(0, b"6050.5"), WAIT),
    (but(0, b"-6050.5"), WAIT),
    (but(1, b"-1"), SCHEDULE),
    (but(1, b"100001"), SCHEDULE),
    (but(2, b"-1"), SCHEDULE),
    (but(2, b"9007199254740993"), SCHEDULE),
    (but(4, b"0.5"), RATE),
    (but(4, b"121"), RATE),
    (but(5, b"-1.5"), RATE),
    (but(5, b"121"), RATE),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("reply", "problem"), HOSTILE_REPLIES, ids=range(len(HOSTILE_REPLIES)))
async def test_a_nonsense_reply_is_unavailable_not_a_crash(
    anyio_backend, redis_url, monkeypatch, reply, problem
):
    """Whatever Redis answers, the caller gets LimiterUnavailableError saying what was wrong."""
    limiter = RedisRateLimiter.from_url(redis_url, key="hostile")
    monkeypatch.setattr(limiter._script, "_script", lambda **_: reply)

    with pytest.raises(LimiterUnavailableError) as caught:
        await limiter.acquire()

    assert f"the shared rate limiter (Redis) is unavailable: {problem}" == str(caught.value)
    await limiter.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reply", "believed"),
    [
        (GOOD_REPLY, (0.0, 1, 0, 120, None)),
        (
            [b"6050", b"100000", b"9007199254740992", b"0", b"120", b"120"],
            (6050.0, 100000, 0, 120, 120),
        ),
        ([b"-6050", b"0", b"0", b"1", b"1", b"1"], (-6050.0, 1, 1, 1, 1)),
        ([b"0" * 63 + b"2", b"1", b"1", b"0", b"1", b"0.5"], (2.0, 1, 0, 1, None)),
        (["2.5", "2", "7", "1", "30", "30"], (2.5, 2, 1, 30, 30)),
    ],
    ids=["granted", "largest", "smallest", "long-items", "decoded"],
)
async def test_a_plausible_reply_is_believed(
    anyio_backend, redis_url, monkeypatch, reply, believed
):
    """Up to the bounds, a reply is taken as said: the pause, the fleet's size (at least this
    process), a lost schedule, the rate in force and the learned limit (none below 1); a
    client that decodes replies to str is understood too."""
    limiter = RedisRateLimiter.from_url(redis_url, key="plausible")
    monkeypatch.setattr(limiter._script, "_script", lambda **_: reply)

    pause = await limiter.on_rate_limited(None)

    assert believed == (
        pause,
        limiter.fleet_size,
        limiter.lost_states,
        limiter.current_rate,
        limiter.learned_limit,
    )
    await limiter.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.NoScriptError("NOSCRIPT No matching script"),
        redis.exceptions.ResponseError("ERR something odd"),
        redis.exceptions.ReadOnlyError("READONLY You can't write against a read only replica."),
        redis.exceptions.TryAgainError("TRYAGAIN"),
        redis.exceptions.ClusterDownError("CLUSTERDOWN The cluster is down"),
        redis.exceptions.MovedError("3999 127.0.0.1:6381"),
        redis.exceptions.AskError("3999 127.0.0.1:6381"),
        redis.exceptions.SlotNotCoveredError("no node"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_every_redis_error_is_unavailable_and_follows_on_unavailable(
    anyio_backend, redis_url, monkeypatch, no_retry, error
):
    """Error replies and cluster errors: LimiterUnavailableError, or the local fallback."""

    def fails(**_: Any) -> Any:
        raise error

    failing = RedisRateLimiter.from_url(redis_url, key="errors")
    monkeypatch.setattr(failing._script, "_script", fails)
    falling_back = RedisRateLimiter.from_url(redis_url, key="errors", on_unavailable="local")
    monkeypatch.setattr(falling_back._script, "_script", fails)

    with pytest.raises(LimiterUnavailableError) as caught:
        await failing.acquire()
    await falling_back.acquire()
    await falling_back.on_rate_limited(1.0)

    # Described, never chained: redis-py's frames may hold a password.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert type(error).__name__ in str(caught.value)
    assert 1 == falling_back.local_grants
    await failing.aclose()
    await falling_back.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("error", "calls"),
    [
        (redis.exceptions.ConnectionError("Connection refused"), 3),
        (redis.exceptions.ReadOnlyError("READONLY"), 3),
        (redis.exceptions.ResponseError("WRONGTYPE"), 1),
    ],
    ids=["connection", "readonly", "wrongtype"],
)
async def test_a_passing_failure_is_retried_a_lasting_one_is_not(
    anyio_backend, redis_url, monkeypatch, error, calls
):
    """A failover's errors are retried for a moment (then all is well); WRONGTYPE is not."""
    limiter = RedisRateLimiter.from_url(redis_url, key="retry")
    real_call = limiter._script._once
    attempts: list[int] = []

    async def flaky(*args: Any) -> Any:
        attempts.append(1)
        if len(attempts) < 3:
            raise error
        return await real_call(*args)

    monkeypatch.setattr(limiter._script, "_once", flaky)

    if calls == 1:
        with pytest.raises(LimiterUnavailableError):
            await limiter.acquire()
    else:
        await limiter.acquire()

    assert calls == len(attempts)
    assert 0 == limiter.local_grants
    await limiter.aclose()


@pytest.mark.anyio
async def test_a_redis_that_never_answers_is_unavailable(
    anyio_backend, redis_url, monkeypatch, no_retry
):
    """A call stuck past CALL_TIMEOUT, whatever the client's timeouts, is unavailable."""
    limiter = RedisRateLimiter.from_url(redis_url, key="stuck")
    monkeypatch.setattr(redis_calls, "CALL_TIMEOUT", 0.05)
    release = threading.Event()
    monkeypatch.setattr(limiter._script, "_script", lambda **_: release.wait(5))

    with pytest.raises(LimiterUnavailableError, match="TimeoutError"):
        await limiter.acquire()
    release.set()
    await limiter.aclose()


@pytest.mark.anyio
async def test_wrongtype_on_a_hostile_key_is_unavailable(anyio_backend, redis_url, flush):
    """Someone wrote a string where the state lives: WRONGTYPE is unavailable, not a crash."""
    limiter = RedisRateLimiter.from_url(redis_url, key="hostile:type")
    flush.set("{hostile:type}:state", "not a hash")

    with pytest.raises(LimiterUnavailableError, match="WRONGTYPE"):
        await limiter.acquire()
    await limiter.aclose()


@pytest.mark.anyio
async def test_a_user_without_info_still_gets_the_schedule(anyio_backend, node):
    """An ACL that refuses INFO (some managed services) costs only the replication-ID check."""
    with node.client() as admin:
        admin.acl_setuser(
            "limited", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-info"]
        )
    url = f"redis://limited:pw@127.0.0.1:{node.port}/0"
    limiter = RedisRateLimiter.from_url(url, limit=LOST, key="acl")

    await three_grants(limiter)

    assert 0 == limiter.lost_states
    await limiter.aclose()


@pytest.mark.anyio
async def test_out_of_memory_is_unavailable(anyio_backend, node):
    """A Redis over its maxmemory answers OOM: unavailable, nothing granted."""
    limiter = RedisRateLimiter.from_url(node.url, key="oom")
    with node.client() as client:
        client.config_set("maxmemory", "1")

    with pytest.raises(LimiterUnavailableError, match=r"OutOfMemory|OOM"):
        await limiter.acquire()
    await limiter.aclose()


@pytest.mark.anyio
async def test_a_read_only_replica_is_unavailable(anyio_backend, redis_sentinel, no_retry):
    """A client pointed at a replica gets READONLY: unavailable, never a raw error."""
    port = redis_sentinel.primary_port()
    replica = next(n for n in (redis_sentinel.primary, redis_sentinel.replica) if n.port != port)
    limiter = RedisRateLimiter.from_url(replica.url, key="readonly")

    with pytest.raises(LimiterUnavailableError, match=r"ReadOnly|READONLY"):
        await limiter.acquire()
    await limiter.aclose()


# --- Cluster and Sentinel clients -----------------------------------------------------


@pytest.mark.anyio
async def test_cluster_client_runs_the_script_on_the_keys_node(anyio_backend, redis_cluster):
    """A RedisCluster (from a redis+cluster:// URL) runs the script; all keys on one node."""
    limiter = RedisRateLimiter.from_url(redis_cluster.url, limit=FAST, key="cluster:1")

    for _ in range(3):
        await limiter.acquire()

    assert isinstance(limiter._script.client, redis.cluster.RedisCluster)
    node = redis_cluster.node_for("{cluster:1}")
    with node.client() as client:
        assert 3 == client.exists("{cluster:1}:state", "{cluster:1}:grants", "{cluster:1}:fleet")
    await limiter.aclose()


@pytest.mark.asyncio
async def test_asyncio_cluster_client_is_accepted(redis_cluster):
    """A redis.asyncio RedisCluster is awaited directly (asyncio only)."""
    client = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=redis_cluster.nodes[0].port)
    limiter = RedisRateLimiter(client, limit=FAST, key="cluster:2")

    for _ in range(3):
        await limiter.acquire()

    assert 3 == limiter.round_trips
    await client.aclose()


@pytest.mark.anyio
async def test_sentinel_client_talks_to_the_primary(anyio_backend, redis_sentinel):
    """A Sentinel's master_for() client (from a redis+sentinel:// URL) is accepted."""
    limiter = RedisRateLimiter.from_url(redis_sentinel.url, limit=FAST, key="sentinel:1")

    await limiter.acquire()

    port = redis_sentinel.primary_port()
    primary = next(n for n in (redis_sentinel.primary, redis_sentinel.replica) if n.port == port)
    with primary.client() as client:
        assert 1 == client.exists("{sentinel:1}:state")
    await limiter.aclose()
