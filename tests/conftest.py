"""Shared fixtures: backends, fast clients, and canned HelpCrunch payloads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

import helpcrunch_async as hc

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


def status_echo(request: httpx.Request) -> httpx.Response:
    """A respx side effect: answer a status PUT with the chat in the requested status."""
    sent = json.loads(request.content)
    return httpx.Response(200, json=chat_payload(sent["id"], sent["status"]))


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


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a private redis-server on loopback for the session; yield its URL.

    Where redis-server is missing the Redis tests fail in CI (CI=true) and skip elsewhere:
    `nox -s tests` installs it.
    """
    import os  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import time  # noqa: PLC0415

    import redis  # noqa: PLC0415

    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (nox -s tests installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(  # noqa: S603 - our own argument list
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(500):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        else:
            pytest.fail("redis-server did not start")
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
