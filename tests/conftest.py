"""Shared fixtures: backends, fast clients, and canned HelpCrunch payloads."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import respx

import helpcrunch_async as hc
from tests.fleet import Audit, audited_emulators
from tests.redis_server import Cluster, RedisNode, SentinelSetup, redis_server, single_redis
from tests.redis_server import redis_cluster as redis_cluster_servers
from tests.redis_server import redis_sentinel as redis_sentinel_servers

#: A hard deadline behind pytest-timeout's: a test that it cannot stop ends the run, named.
pytest_plugins = ["tests._deadline"]

T = TypeVar("T")

API_KEY = "test-key-DO-NOT-LEAK-5f3e"
BASE_URL = "https://api.helpcrunch.test/v1"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on both backends."""
    return str(request.param)


def chat_payload(chat_id: int = 5215752, status: str = "closed", **extra: Any) -> dict[str, Any]:
    """A full Chat object in the style of the docs' main example."""
    payload: dict[str, Any] = {
        "id": chat_id,
        "status": status,
        "closedBy": "agent",
        "closedAt": 1597758468,
        "createdAt": 1597758000,
        "lastMessageAt": 1597758400,
        "lastCustomerMessageAt": 1597758300,
        "snoozedUntil": None,
        "rating": "great",
        "lastMessageText": "Thanks!",
        "lastMessageId": 991,
        "lastCommunicatedAgentId": 12,
        "agents": [{"id": 12, "name": "Ann", "email": "ann@example.com", "role": "admin"}],
        "customer": {"id": 77, "name": "Bob", "email": "bob@example.com", "userId": "u-77"},
        "assignee": {"id": 12, "name": "Ann", "email": "ann@example.com", "role": "admin"},
        "department": {"id": 3, "name": "Support"},
    }
    payload.update(extra)
    return payload


class StubLimiter:
    """A whole ``RateLimiter`` that grants at once and records what the client told it."""

    current_rate = 120
    learned_limit: int | None = None

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.acquired: list[tuple[str, float | None]] = []
        self.paused: list[float | None] = []
        self.sent_ago: list[float | None] = []
        self.headers: list[hc.RateLimitHeaders] = []

    def bind_key(self, fingerprint: str) -> None:
        self.keys.append(fingerprint)

    async def acquire(
        self, *, priority: str = "interactive", deadline: float | None = None
    ) -> None:
        self.acquired.append((priority, deadline))

    async def on_rate_limited(self, pause: float | None, *, sent_ago: float | None = None) -> float:
        self.paused.append(pause)
        self.sent_ago.append(sent_ago)
        return 0.0 if pause is None else pause

    async def on_rate_limit_headers(self, headers: hc.RateLimitHeaders) -> None:
        self.headers.append(headers)


def status_echo(request: httpx.Request) -> httpx.Response:
    """A respx side effect: answer a status PUT with the chat in the requested status."""
    sent = json.loads(request.content)
    return httpx.Response(200, json=chat_payload(sent["id"], sent["status"]))


@pytest.fixture
def local_time_far_from_utc() -> Iterator[None]:
    """Run the test with the process's local time zone at UTC+05:30, so that a naive
    datetime taken for UTC (or the reverse) shows. A POSIX rule: no tz database needed."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "IST-05:30"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.fixture
def make_client() -> Callable[..., hc.HelpCrunch]:
    """Build clients that retry at once and do not rate-limit unless asked to."""

    def make(**kwargs: Any) -> hc.HelpCrunch:
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("base_url", BASE_URL)
        kwargs.setdefault("rate_limit", None)
        kwargs.setdefault("retry", hc.Retry(backoff=0))
        return hc.HelpCrunch(**kwargs)

    return make


@pytest.fixture
def api() -> Iterator[respx.Router]:
    """A respx router for BASE_URL, patched into httpx for the test's duration."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client(make_client: Callable[..., hc.HelpCrunch]) -> AsyncIterator[hc.HelpCrunch]:
    """A fast client against BASE_URL (mock it with the ``api`` fixture)."""
    async with make_client() as c:
        yield c


# --- a real redis-server for the shared-limit tests --------------------------------------


def servers_or_skip(servers: contextlib.AbstractContextManager[T]) -> Iterator[T]:
    """Enter ``servers`` for a fixture: where Redis is missing, fail in CI and skip elsewhere.

    `nox -s tests` installs redis-server (and redis-cli with it).
    """
    try:
        with servers as running:
            yield running
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server on loopback for the session."""
    yield from servers_or_skip(redis_server())


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Cluster]:
    """A private three-master Redis Cluster on loopback for the session."""
    yield from servers_or_skip(redis_cluster_servers())


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelSetup]:
    """A private primary, replica and sentinel on loopback for the session."""
    yield from servers_or_skip(redis_sentinel_servers())


@pytest.fixture
def redis_node() -> Iterator[RedisNode]:
    """A redis-server of the test's own, which it may kill and start again."""
    yield from servers_or_skip(single_redis())


@pytest.fixture
def audit() -> Iterator[Audit]:
    """An audit of every status update, in front of each emulator the test starts."""
    with audited_emulators() as audit:
        yield audit
