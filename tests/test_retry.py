"""Retries: what is retried, how often, how long it waits, and what the caller gets at the end."""

from __future__ import annotations

import email.utils
import logging
import random
import time

import anyio
import httpx
import pytest
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async._send._retry import is_retryable
from tests.conftest import StubLimiter, chat_payload, status_echo

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
    limiter = StubLimiter()

    api.put("/chats/status").mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "0"}),
            httpx.Response(429, json=TOO_MANY),
            httpx.Response(200, json=chat_payload(1)),
        ]
    )
    client = make_client(rate_limit=limiter)

    await client.chats.update_status(1, "closed")

    assert [0.0, None] == limiter.paused
    assert 2 == client.stats().throttled


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
async def test_backoff_doubles_each_attempt_up_to_the_cap(
    make_client, api, anyio_backend, monkeypatch
):
    """With the jitter at its top, attempt n waits backoff * 2**(n-1), never past backoff_max."""
    monkeypatch.setattr(random, "uniform", lambda _low, high: high)  # tenacity's full jitter
    route = api.put("/chats/status").respond(500)
    client = make_client(max_retries=4, retry=hc.Retry(backoff=1.0, backoff_max=3.0))
    start = anyio.current_time()

    with pytest.raises(hc.ServerError):
        await client.chats.update_status(1, "closed")

    assert 5 == route.call_count
    assert pytest.approx(1.0 + 2.0 + 3.0 + 3.0) == anyio.current_time() - start


@VIRTUAL
@pytest.mark.parametrize(
    ("budget", "calls"),
    [
        (35.0, 4),  # waits of 10 + 10 + 10; a fourth would pass 35
        (20.0, 3),  # a wait that fills the budget exactly is still taken
    ],
)
async def test_budget_bounds_total_waiting(make_client, api, anyio_backend, budget, calls):
    """The retry budget stops retrying before waits would exceed it."""
    route = api.put("/chats/status").mock(
        side_effect=lambda _: httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "10"})
    )
    client = make_client(max_retries=50, retry=hc.Retry(budget=budget))
    start = anyio.current_time()

    with pytest.raises(hc.RateLimitError) as info:
        await client.chats.update_status(1, "closed")

    assert calls == route.call_count
    assert calls == info.value.attempts
    assert pytest.approx(10.0 * (calls - 1)) == anyio.current_time() - start


@VIRTUAL
async def test_retry_after_as_an_http_date_is_honoured_end_to_end(make_client, api, anyio_backend):
    """A Retry-After sent as an HTTP date is waited out like seconds (here capped at 100 s)."""
    in_an_hour = email.utils.formatdate(time.time() + 3600, usegmt=True)
    api.put("/chats/status").mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": in_an_hour}),
            httpx.Response(200, json=chat_payload(1)),
        ]
    )
    client = make_client(retry=hc.Retry(backoff=0, retry_after_max=100.0))
    start = anyio.current_time()

    await client.chats.update_status(1, "closed")

    assert pytest.approx(100.0) == anyio.current_time() - start


async def test_each_view_retries_its_own_number_of_times(make_client, api):
    """Views of one client with different max_retries each keep their own count."""
    route = api.put("/chats/status").respond(500)
    client = make_client(max_retries=3)

    with pytest.raises(hc.ServerError):
        await client.with_options(max_retries=0).chats.update_status(1, "closed")
    with pytest.raises(hc.ServerError):
        await client.chats.update_status(1, "closed")
    with pytest.raises(hc.ServerError):
        await client.with_options(max_retries=1).chats.update_status(1, "closed")

    assert 1 + 4 + 2 == route.call_count


async def test_a_create_and_a_status_update_retry_differently_on_one_client(client, api):
    """After a create (not idempotent) refused a 5xx retry, a status update still retries it."""
    created = api.post("/chats").respond(500)
    updated = api.put("/chats/status").mock(side_effect=[httpx.Response(500), status_echo])

    with pytest.raises(hc.ServerError):
        await client.chats.create(customer=5, application=2)
    chat = await client.chats.update_status(7, "closed")

    assert 1 == created.call_count
    assert 2 == updated.call_count
    assert 7 == chat.id


@pytest.mark.parametrize(
    ("endpoint", "call", "answers"),
    [
        (
            ("PUT", "/chats/status"),
            lambda client: client.chats.update_status(7, "closed"),
            [httpx.Response(500), httpx.Response(400)],
        ),
        (
            ("POST", "/chats"),
            lambda client: client.chats.create(customer=5, application=2),
            [httpx.Response(429, json=TOO_MANY), httpx.Response(500)],
        ),
    ],
    ids=["idempotent-then-400", "create-then-500"],
)
async def test_a_failure_not_to_retry_ends_the_call_after_a_retry(
    client, api, endpoint, call, answers
):
    """A retried call stops at the first failure its kind of call may not retry."""
    method, path = endpoint
    success = httpx.Response(200, json=chat_payload(7))
    route = api.route(method=method, path=path).mock(side_effect=[*answers, success])

    with pytest.raises(hc.APIError) as info:
        await call(client)

    assert answers[-1].status_code == info.value.status_code
    assert 2 == route.call_count
    assert 2 == info.value.attempts


async def test_each_retry_is_logged_with_attempt_error_and_wait(client, api, caplog):
    """A retry leaves one debug line saying which attempt failed, why, and the wait."""
    caplog.set_level(logging.DEBUG, logger="helpcrunch_async")
    api.put("/chats/status").mock(side_effect=[httpx.Response(503, text="down"), status_echo])

    await client.chats.update_status(7, "closed")

    retries = [r.getMessage() for r in caplog.records if "retry_scheduled" in r.getMessage()]
    assert 1 == len(retries)
    assert retries[0].startswith("retry_scheduled operation='chats.update_status' call_id=")
    assert retries[0].endswith("attempt=1 reason='server_error' error_type='ServerError' delay=0.0")


@VIRTUAL
async def test_limiter_waits_do_not_count_against_budget(make_client, api, anyio_backend):
    """Time queued in the limiter is not retry waiting: a slow queue never exhausts the budget."""
    api.put("/chats/status").mock(side_effect=[httpx.Response(500), status_echo])
    slow = hc.RateLimit(requests=1, per=60.0, burst=1, margin=0.0)
    client = make_client(rate_limit=slow, retry=hc.Retry(backoff=0, budget=1.0), max_retries=1)
    start = anyio.current_time()

    chat = await client.chats.update_status(1, "closed")

    assert 1 == chat.id
    # the retry did queue behind the limiter, one interval (compared as floats: the clock
    # does not start at 0, so start + 60 may round below 60 once subtracted)
    assert pytest.approx(60.0) == anyio.current_time() - start


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


def test_calls_are_idempotent_unless_said_otherwise():
    """is_retryable treats a call as idempotent by default: a 5xx is retried."""
    assert is_retryable(hc.ServerError("x", status_code=500)) is True
