"""The Redis-shared limiter, against a real redis-server (and the emulator, over sockets)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import anyio
import pytest
import redis
import redis.asyncio

import helpcrunch_async as hc
from helpcrunch_async._limiter import api_key_fingerprint
from helpcrunch_async.emulator import EmulatorConfig, ServerLimit, serve
from helpcrunch_async.redis import (
    KEY_PREFIX,
    RateLimiterUnavailableError,
    RedisRateLimiter,
    key_for,
)
from tests.conftest import API_KEY, status_echo

pytestmark = pytest.mark.redis
EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def flush(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.mark.anyio
async def test_key_is_a_hash_of_the_api_key_and_expires(
    anyio_backend, redis_url, flush, make_client
):
    """The schedule lives under a SHA-256 fingerprint of the key, with a TTL; never the key."""
    limiter = RedisRateLimiter.from_url(redis_url)
    make_client(rate_limit=limiter)  # the client scopes the limiter to its key

    await limiter.acquire()

    keys = [k.decode() for k in flush.keys("*")]
    assert keys
    assert all(k.startswith(key_for(API_KEY)) for k in keys)
    assert not any(API_KEY in k for k in keys)
    assert all(0 < flush.pttl(k) <= (2 * 60.5 + 1) * 1000 for k in keys)
    assert KEY_PREFIX + api_key_fingerprint(API_KEY) == limiter.key
    await limiter.aclose()


@pytest.mark.anyio
async def test_one_limiter_serves_one_api_key(anyio_backend, redis_url, make_client):
    """Passing one limiter to clients of two different keys is refused."""
    limiter = RedisRateLimiter.from_url(redis_url)
    make_client(rate_limit=limiter)

    with pytest.raises(ValueError, match="another API key"):
        make_client(rate_limit=limiter, api_key="another-key")
    await limiter.aclose()


@pytest.mark.anyio
async def test_burst_then_reservations_follow_the_schedule(anyio_backend, redis_url, flush):
    """Idle key: `burst` slots at once; after that each reservation is spaced by the interval."""
    limiter = RedisRateLimiter.from_url(redis_url, requests=10, per=10.0, burst=3, key="t:1")
    limiter.limit = hc.RateLimit(requests=10, per=10.0, burst=3, margin=0.0)

    delays = [await limiter._run("acquire", -1.0) for _ in range(5)]

    assert [0.0, 0.0, 0.0] == [round(d, 2) for d in delays[:3]]
    assert 0.9 < delays[3] <= 1.0
    assert 1.9 < delays[4] <= 2.0
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
    limiter = RedisRateLimiter.from_url(redis_url, requests=1000, per=1.0, key="t:4")
    before = flush.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)

    for _ in range(20):
        await limiter.acquire()

    after = flush.info("commandstats")["cmdstat_evalsha"]["calls"]
    assert 20 == after - before
    await limiter.aclose()


@pytest.mark.anyio
async def test_unreachable_redis_fails_clearly_and_sends_nothing(
    anyio_backend, make_client, api, caplog
):
    """By default an unreachable Redis is an SDK error before any HTTP request."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    limiter = RedisRateLimiter.from_url("redis://127.0.0.1:9/0")
    client = make_client(rate_limit=limiter, max_retries=0)

    with pytest.raises(RateLimiterUnavailableError, match="unreachable"):
        await client.chats.update_status(1, "closed")

    assert not route.called
    assert "Redis rate limiter unreachable" in caplog.text
    assert isinstance(RateLimiterUnavailableError("x"), hc.HelpCrunchError)


@pytest.mark.anyio
async def test_unreachable_redis_can_fall_back_to_a_reduced_local_rate(
    anyio_backend, make_client, api, caplog
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
    assert 30 == limiter._fallback.limit.requests


@pytest.mark.asyncio
async def test_asyncio_redis_client_is_used_directly(redis_url, flush):
    """A redis.asyncio client passed in is awaited directly (asyncio only)."""
    client = redis.asyncio.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, requests=100, per=1.0, key="t:5")

    for _ in range(3):
        await limiter.acquire()

    assert 3 == limiter.round_trips
    await limiter.aclose()


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [({"on_unavailable": "ignore"}, ValueError), ({"local_share": 0}, ValueError)],
)
def test_bad_settings(redis_url, kwargs, exc):
    """Settings are checked at construction."""
    with pytest.raises(exc):
        RedisRateLimiter(redis.Redis.from_url(redis_url), **kwargs)
    with pytest.raises(TypeError):
        RedisRateLimiter("redis://nope")  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.emulator
async def test_processes_share_one_limit_and_server_never_sees_more(
    anyio_backend, redis_url, flush
):
    """Three processes, one key, one Redis: the strict server sees at most its limit, no 429."""
    limit = ServerLimit(20, 1.0)
    async with serve(EmulatorConfig(chats=60, rate_limit=limit)) as emulator:
        env = os.environ | {
            "HELPCRUNCH_API_KEY": emulator.api_key,
            "HELPCRUNCH_BASE_URL": emulator.base_url,
        }
        command = [
            sys.executable,
            str(EXAMPLES / "fleet_redis.py"),
            "--redis-url",
            redis_url,
            "--processes",
            "3",
            "--first-id",
            "5215700",
            "--count",
            "60",
            "--rate",
            "20/1",
        ]
        done = await anyio.run_process(command, env=env, check=False)
        stats = emulator.stats()

    assert 0 == done.returncode, done.stdout.decode() + done.stderr.decode()
    assert 60 <= stats["requests"]
    assert 0 == stats["rejected"]
    assert limit.requests >= stats["max_in_window"]
    assert all(c["status"] == "closed" for c in emulator.state.chats.values())
