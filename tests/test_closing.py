"""Closing a client with work in progress: every call ends with `ClientClosedError`, nothing
more is sent, and a bulk run ends with that one error after its completed outcomes."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

import anyio
import httpx
import pytest

import helpcrunch_async as hc
from tests.conftest import API_KEY, BASE_URL, chat_payload

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Server:
    """A mock transport that counts what it was sent; ``hold`` ids are answered never."""

    def __init__(self, *, status: int = 200, hold: frozenset[int] = frozenset()) -> None:
        self.sent: list[int] = []
        self.status = status
        self.hold = hold

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        chat_id = json.loads(request.content)["id"]
        self.sent.append(chat_id)
        if chat_id in self.hold:
            await anyio.sleep_forever()
        if self.status != 200:
            return httpx.Response(
                self.status,
                headers={"Retry-After": "3600"},
                json={"errors": [{"code": "x", "message": "y"}]},
            )
        return httpx.Response(200, json=chat_payload(chat_id))


def client_for(server: Server, **kwargs: object) -> hc.HelpCrunch:
    kwargs.setdefault("rate_limit", None)
    kwargs.setdefault("retry", hc.Retry(backoff=0))
    return hc.HelpCrunch(
        API_KEY,
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
        **kwargs,  # type: ignore[arg-type]
    )


async def outcome_of(call: Awaitable[object], into: list[BaseException | None]) -> None:
    try:
        await call
    except Exception as exc:
        into.append(exc)
    else:
        into.append(None)


async def cancelled_by_its_caller(client: hc.HelpCrunch, *, closing: bool = False) -> bool:
    """Cancel a blocked call's own scope (closing the client at that moment if ``closing``);
    whether that scope caught the cancel, as a plain cancel does."""
    scopes: list[anyio.CancelScope] = []
    caught: list[bool] = []

    async def call() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await client.chats.update_status(1, "closed")
        caught.append(scope.cancelled_caught)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(call)
        await anyio.wait_all_tasks_blocked()
        scopes[0].cancel()
        if closing:
            await client.aclose()
    return caught == [True]


async def test_callers_waiting_for_the_limiter_get_client_closed_error():
    """Calls queued in the rate limiter end with ClientClosedError when the client closes."""
    server = Server()
    client = client_for(server, rate_limit=hc.RateLimit(requests=1, per=3600.0, burst=1))
    errors: list[BaseException | None] = []
    async with anyio.create_task_group() as tasks:
        for chat_id in range(1, 5):
            tasks.start_soon(outcome_of, client.chats.update_status(chat_id, "closed"), errors)
        await anyio.wait_all_tasks_blocked()
        await client.aclose()

    assert [None, hc.ClientClosedError, hc.ClientClosedError, hc.ClientClosedError] == [
        None if e is None else type(e) for e in errors
    ]
    assert 1 == len(server.sent)


async def test_callers_waiting_for_a_slot_and_in_flight_get_client_closed_error():
    """The call in flight and those waiting for its connection slot all end at the close."""
    server = Server(hold=frozenset({1}))
    client = client_for(server, max_connections=1)
    errors: list[BaseException | None] = []
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(outcome_of, client.chats.update_status(1, "closed"), errors)
        await anyio.wait_all_tasks_blocked()  # chat 1 holds the only slot, in flight
        for chat_id in (2, 3):
            tasks.start_soon(outcome_of, client.chats.update_status(chat_id, "closed"), errors)
        await anyio.wait_all_tasks_blocked()
        await client.aclose()

    assert 3 * [hc.ClientClosedError] == [type(e) for e in errors]
    assert "this HelpCrunch client was closed during the call" == str(errors[0])
    assert [1] == server.sent


async def test_a_call_between_two_attempts_sends_nothing_more():
    """A call sleeping before its retry ends with ClientClosedError, its retry never sent."""
    server = Server(status=429)  # Retry-After: 3600, capped to retry_after_max: 120 s
    client = client_for(server)
    errors: list[BaseException | None] = []
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(outcome_of, client.chats.update_status(1, "closed"), errors)
        await anyio.wait_all_tasks_blocked()
        await client.aclose()

    assert [hc.ClientClosedError] == [type(e) for e in errors]
    assert "this HelpCrunch client was closed during the call" == str(errors[0])
    assert [1] == server.sent


async def test_a_call_that_ended_leaves_nothing_for_close_to_cancel():
    """Every scope a call registers for close() (its attempts, its sleeps) goes when it ends."""
    server = Server(status=500)
    client = client_for(server, max_retries=2)

    with pytest.raises(hc.ServerError):
        await client.chats.update_status(1, "closed")

    assert [1, 1, 1] == server.sent
    assert set() == client._sender._calls
    await client.aclose()


async def test_a_closed_http_client_is_client_closed_error_not_runtime_error():
    """An http_client closed by its owner fails calls with the SDK's error, sending nothing."""
    server = Server()
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    client = hc.HelpCrunch(API_KEY, base_url=BASE_URL, rate_limit=None, http_client=http)
    await http.aclose()

    with pytest.raises(
        hc.ClientClosedError,
        match=f"^{re.escape('the httpx.AsyncClient of this HelpCrunch client is closed')}$",
    ):
        await client.chats.update_status(1, "closed")
    assert [] == server.sent


async def test_a_cancel_of_the_callers_own_stays_a_cancel():
    """A caller's cancel scope around a call still just cancels it; the client stays open."""
    server = Server(hold=frozenset({1}))
    client = client_for(server)

    with anyio.move_on_after(0.01) as scope:
        await client.chats.update_status(1, "closed")

    assert scope.cancelled_caught
    assert 2 == (await client.chats.update_status(2, "closed")).id
    await client.aclose()


async def test_a_cancel_of_the_callers_own_between_two_attempts_stays_a_cancel():
    """Cancelled while sleeping before its retry, a call is just cancelled; nothing more sent."""
    server = Server(status=429)  # Retry-After: 3600, capped to retry_after_max: 120 s
    client = client_for(server)

    # Blocked once the 429 came: the call sleeps before its retry.
    assert await cancelled_by_its_caller(client)
    assert [1] == server.sent
    server.status = 200
    assert 2 == (await client.chats.update_status(2, "closed")).id
    await client.aclose()


async def test_a_limiter_shared_with_another_client_loses_nothing():
    """A call of a closed client gives its place back: the other client's call is served."""
    limiter = hc.LocalRateLimiter(hc.RateLimit(requests=2, per=3600.0, burst=1))
    server = Server()
    closing = client_for(server, rate_limit=limiter)
    staying = client_for(server, rate_limit=limiter)
    await closing.chats.update_status(1, "closed")  # the burst: the next grant is far away
    errors: list[BaseException | None] = []
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(outcome_of, closing.chats.update_status(2, "closed"), errors)
        await anyio.wait_all_tasks_blocked()
        await closing.aclose()

    interval = limiter.limit.window / limiter.limit.requests
    assert [hc.ClientClosedError] == [type(e) for e in errors]
    assert limiter.expected_wait() <= interval  # the next grant is still the next one
    await staying.aclose()


async def test_a_bulk_run_ends_with_one_client_closed_error_after_its_outcomes():
    """Closed mid-run: the completed outcomes, all successes, then one ClientClosedError."""
    server = Server()
    client = client_for(server)
    yielded: list[hc.ChatOutcome] = []

    with pytest.raises(hc.ClientClosedError):
        async with client.chats.stream_update_status(range(1, 1000), "closed") as outcomes:
            async for outcome in outcomes:
                yielded.append(outcome)
                if len(yielded) == 5:
                    await client.aclose()

    assert 5 <= len(yielded)
    assert all(outcome.ok for outcome in yielded)
    assert len(server.sent) < 1000


async def test_bulk_update_status_on_a_client_closed_mid_run_raises_it_alone():
    """The collecting helper raises the one ClientClosedError, not a group nor per-id errors."""
    server = Server(hold=frozenset(range(3, 1000)))
    client = client_for(server, max_connections=4)

    async def close_soon() -> None:
        await anyio.wait_all_tasks_blocked()
        await client.aclose()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(close_soon)
        with pytest.raises(hc.ClientClosedError) as info:
            await client.chats.bulk_update_status(range(1, 1000), "closed")

    assert hc.ClientClosedError is type(info.value)


@pytest.mark.parametrize("where", ["in flight", "between two attempts"])
async def test_a_close_at_the_moment_of_the_callers_own_cancel_leaves_a_cancel(where):
    """The caller cancels its call as the client closes: the call is just cancelled."""
    server = Server(hold=frozenset({1})) if where == "in flight" else Server(status=429)
    client = client_for(server)

    assert await cancelled_by_its_caller(client, closing=True)
    assert [1] == server.sent
