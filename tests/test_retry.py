"""Retries: what is retried, how often, how long it waits, and what the caller gets at the end."""

from __future__ import annotations

import anyio
import httpx
import pytest
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async._retry import is_retryable
from tests.conftest import chat_payload, status_echo

pytestmark = pytest.mark.anyio

TOO_MANY = {"errors": [{"code": "too_many_requests", "message": "You have exceeded"}]}
VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(429, json=TOO_MANY),
        httpx.Response(500, json={"errors": []}),
        httpx.Response(503, text="<html>unavailable</html>"),
        httpx.Response(200, text='{"id": 1, "stat'),  # truncated JSON
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
    ids=["429", "500", "503-html", "truncated-2xx", "connect", "timeout", "dropped"],
)
async def test_transient_failures_are_retried(client, api, failure):
    """429, 5xx, connection errors, timeouts and a non-JSON 2xx are retried, then succeed."""
    route = api.put("/chats/status").mock(side_effect=[failure, status_echo])

    chat = await client.chats.update_status(7, "closed")

    assert 7 == chat.id
    assert 2 == route.call_count
    assert 1 == client.stats().retries
    assert 2 == client.stats().requests


@pytest.mark.parametrize(
    ("failure", "cls"),
    [
        (httpx.Response(429, json=TOO_MANY), hc.RateLimitError),
        (httpx.Response(502, text="bad gateway"), hc.ServerError),
        (httpx.ConnectError("refused"), hc.APIConnectionError),
        (httpx.ConnectTimeout("slow"), hc.APITimeoutError),
    ],
)
async def test_exhausted_retries_raise_last_error_with_attempts(make_client, api, failure, cls):
    """After max_retries the caller gets the last error, saying how many attempts were made."""
    route = api.put("/chats/status").mock(side_effect=lambda _: failure)
    if isinstance(failure, Exception):
        route.mock(side_effect=failure)
    client = make_client(max_retries=3)

    with pytest.raises(cls) as info:
        await client.chats.update_status(1, "closed")

    assert 4 == route.call_count
    assert 4 == info.value.attempts
    assert "attempts: 4" in str(info.value)


async def test_max_retries_zero_sends_once(make_client, api):
    """max_retries=0 disables retrying."""
    route = api.put("/chats/status").respond(500)

    with pytest.raises(hc.ServerError):
        await make_client(max_retries=0).chats.update_status(1, "closed")

    assert 1 == route.call_count


async def test_failed_answer_is_not_kept_by_the_error(client, api):
    """The error keeps the status, headers and an excerpt, not the answer (nor its connection)."""
    api.put("/chats/status").respond(404, json={"errors": [{"code": "chat_not_found"}]})

    with pytest.raises(hc.NotFoundError) as info:
        await client.chats.update_status(1, "closed")

    assert not hasattr(info.value, "response")
    assert 404 == info.value.status_code
    assert '{"errors":[{"code":"chat_not_found"}]}' == info.value.body_excerpt


async def test_429_is_reported_to_the_limiter(make_client, api):
    """Every 429 is reported to the limiter with its Retry-After, before the retry."""
    reports: list[float | None] = []

    class Recorder:
        async def acquire(self) -> None:
            pass

        async def on_rate_limited(self, retry_after: float | None) -> None:
            reports.append(retry_after)

    api.put("/chats/status").mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "0"}),
            httpx.Response(429, json=TOO_MANY),
            httpx.Response(200, json=chat_payload(1)),
        ]
    )
    client = make_client(rate_limit=Recorder())

    await client.chats.update_status(1, "closed")

    assert [0.0, None] == reports
    assert 2 == client.stats().rate_limited


@VIRTUAL
async def test_retry_after_is_honoured_and_capped(make_client, api, anyio_backend):
    """Retry-After is waited out (virtual time), but never longer than retry_after_max."""
    api.put("/chats/status").mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "40"}),
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "9999"}),
            httpx.Response(200, json=chat_payload(1)),
        ]
    )
    client = make_client(retry=hc.Retry(backoff=0, retry_after_max=100.0))
    start = anyio.current_time()

    await client.chats.update_status(1, "closed")

    assert 140.0 == pytest.approx(anyio.current_time() - start)


@VIRTUAL
async def test_backoff_is_exponential_with_a_cap(make_client, api, anyio_backend):
    """Waits between 5xx attempts stay under backoff * 2**n and backoff_max."""
    api.put("/chats/status").respond(500)
    client = make_client(max_retries=4, retry=hc.Retry(backoff=1.0, backoff_max=3.0))
    start = anyio.current_time()

    with pytest.raises(hc.ServerError):
        await client.chats.update_status(1, "closed")

    assert anyio.current_time() - start <= 1 + 2 + 3 + 3


@VIRTUAL
async def test_budget_bounds_total_waiting(make_client, api, anyio_backend):
    """The retry budget stops retrying before waits would exceed it."""
    route = api.put("/chats/status").mock(
        side_effect=lambda _: httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "10"})
    )
    client = make_client(max_retries=50, retry=hc.Retry(budget=35.0))

    with pytest.raises(hc.RateLimitError) as info:
        await client.chats.update_status(1, "closed")

    assert 4 == route.call_count  # waits of 10 + 10 + 10; a fourth would pass 35
    assert 4 == info.value.attempts


@VIRTUAL
async def test_limiter_waits_do_not_count_against_budget(make_client, api, anyio_backend):
    """Time queued in the limiter is not retry waiting: a slow queue never exhausts the budget."""
    api.put("/chats/status").mock(side_effect=[httpx.Response(500), status_echo])
    slow = hc.RateLimit(requests=1, per=60.0, burst=1, margin=0.0)
    client = make_client(rate_limit=slow, retry=hc.Retry(backoff=0, budget=1.0), max_retries=1)
    start = anyio.current_time()

    chat = await client.chats.update_status(1, "closed")

    assert 1 == chat.id
    assert anyio.current_time() - start >= 60.0  # the retry did queue behind the limiter


@pytest.mark.parametrize(
    ("exc", "idempotent", "expected"),
    [
        (hc.RateLimitError("x"), False, True),
        (hc.ServerError("x", status_code=500), False, False),
        (hc.APIConnectionError("x", request_sent=False), False, True),
        (hc.APIConnectionError("x", request_sent=True), False, False),
        (hc.APITimeoutError("x", request_sent=True), False, False),
        (hc.ServerError("x", status_code=500), True, True),
        (hc.BadRequestError("x", status_code=400), True, False),
        (hc.NotFoundError("x", status_code=404), True, False),
        (hc.AuthenticationError("x", status_code=401), True, False),
        (hc.ResponseValidationError("x", retryable=False), True, False),
        (hc.ResponseValidationError("x", retryable=True), True, True),
        (ValueError("x"), True, False),
    ],
)
def test_what_is_retried(exc, idempotent, expected):
    """Idempotent calls retry transient failures; others only what never reached the server."""
    assert expected is is_retryable(exc, idempotent=idempotent)
