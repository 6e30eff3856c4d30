"""The send path: views (`with_options`), `max_wait`, the per-attempt deadline, the body cap,
and the one home of the 429 policy."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
import trio.testing

import helpcrunch_async as hc
from tests.conftest import API_KEY, BASE_URL, StubLimiter, chat_payload, status_echo

pytestmark = pytest.mark.anyio

VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
TOO_MANY = {"errors": [{"code": "too_many_requests", "message": "limit"}]}


class BlockedLimiter(StubLimiter):
    """Never grants; honours no deadline, so ``max_wait`` must not rely on it."""

    async def acquire(self, **_: object) -> None:
        await anyio.sleep_forever()


# --- views -------------------------------------------------------------------------------


async def test_a_view_shares_the_pool_limiter_and_stats(make_client, api):
    """A with_options view sends through the same client: one set of statistics."""
    api.put("/chats/status").mock(side_effect=status_echo)
    limiter = StubLimiter()
    async with make_client(rate_limit=limiter) as client:
        view = client.with_options(priority="background", max_retries=0)
        await view.chats.update_status(1, "closed")
        await client.chats.update_status(2, "closed")

        assert 2 == client.stats().requests == view.stats().requests
        assert limiter is view.limiter
        assert "background" == view.priority
        assert client.priority is None


async def test_a_view_keeps_what_it_does_not_change(make_client, api):
    """Options given as None keep the parent view's value."""
    async with make_client() as client:
        first = client.with_options(priority="background", max_wait=3)
        second = first.with_options(timeout=5)

        assert "background" == second.priority


async def test_a_view_is_closed_with_its_client_and_not_on_its_own(make_client, api):
    """Closing the client closes its views; a view refuses to be closed or entered."""
    api.put("/chats/status").mock(side_effect=status_echo)
    client = make_client()
    view = client.with_options(max_retries=1)

    with pytest.raises(TypeError, match="view"):
        await view.aclose()
    with pytest.raises(TypeError, match="view"):
        async with view:
            pass
    await client.aclose()
    with pytest.raises(hc.ClientClosedError):
        await view.chats.update_status(1, "closed")


async def test_a_closed_client_cannot_be_entered_again(make_client):
    """`async with` on a closed client is a clear error, not a client that fails later."""
    client = make_client()
    async with client:
        pass

    with pytest.raises(hc.ClientClosedError, match="closed"):
        async with client:
            pass
    assert issubclass(hc.ClientClosedError, RuntimeError)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"priority": "urgent"}, ValueError),
        ({"max_wait": -1}, ValueError),
        ({"max_wait": "2"}, TypeError),
        ({"max_wait": float("nan")}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"max_retries": True}, TypeError),
    ],
)
async def test_bad_view_options_fail_at_once(make_client, options, error):
    """with_options validates what it is given before any request."""
    async with make_client() as client:
        with pytest.raises(error):
            client.with_options(**options)


# --- max_wait ----------------------------------------------------------------------------


@VIRTUAL
async def test_max_wait_refuses_a_call_the_limiter_cannot_serve_in_time(make_client, api):
    """Past max_wait the call raises LimiterTimeoutError and nothing is sent."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    async with make_client(rate_limit=BlockedLimiter()) as client:
        started = anyio.current_time()
        with pytest.raises(hc.LimiterTimeoutError, match=r"^no rate-limit slot within max_wait$"):
            await client.with_options(max_wait=2).chats.update_status(1, "closed")

        assert pytest.approx(2.0) == anyio.current_time() - started
    assert 0 == route.call_count


@pytest.mark.parametrize("limited", [False, True])
async def test_max_wait_covers_the_connection_slots(make_client, api, limited):
    """With every slot busy, a call with max_wait gives up without sending, with or
    without a rate limiter."""
    release = anyio.Event()
    entered = anyio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        entered.set()
        await release.wait()
        return status_echo(request)

    route = api.put("/chats/status").mock(side_effect=slow)
    limiter = StubLimiter() if limited else None
    async with (
        make_client(max_connections=1, rate_limit=limiter) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.chats.update_status, 1, "closed")
        await entered.wait()
        with anyio.fail_after(30), pytest.raises(hc.LimiterTimeoutError, match="slot"):
            await client.with_options(max_wait=0.01).chats.update_status(2, "closed")
        release.set()

    assert 1 == route.call_count


@VIRTUAL
async def test_max_wait_is_one_deadline_for_the_slot_and_the_limiter(make_client, api):
    """The limiter gets the class and the deadline the view's max_wait set, once, at the start."""
    api.put("/chats/status").mock(side_effect=status_echo)
    limiter = StubLimiter()
    async with make_client(rate_limit=limiter) as client:
        started = anyio.current_time()
        await client.with_options(priority="background", max_wait=5).chats.update_status(
            1, "closed"
        )

    assert [("background", started + 5.0)] == limiter.acquired


@VIRTUAL
async def test_time_waiting_for_a_slot_counts_against_max_wait(make_client):
    """A call that waits 3 s for the only slot reaches the limiter with 2 s of max_wait=5 left."""

    async def first_is_slow(request: httpx.Request) -> httpx.Response:
        if 1 == json.loads(request.content)["id"]:
            await anyio.sleep(3)
        return status_echo(request)

    limiter = StubLimiter()
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(first_is_slow)) as http,
        make_client(rate_limit=limiter, http_client=http, max_connections=1) as client,
        anyio.create_task_group() as tg,
    ):
        started = anyio.current_time()
        tg.start_soon(client.chats.update_status, 1, "closed")
        await anyio.sleep(0.1)
        await client.with_options(max_wait=5).chats.update_status(2, "closed")

        assert pytest.approx(3.0) == anyio.current_time() - started
    assert [("interactive", None), ("interactive", started + 0.1 + 5.0)] == limiter.acquired


@VIRTUAL
async def test_the_wait_for_a_slot_is_reported_with_the_limiters(make_client):
    """``LimiterWaited.seconds`` counts the time a call waited for the only slot (2 s), as
    well as the limiter's (none here)."""

    async def first_is_slow(request: httpx.Request) -> httpx.Response:
        if 1 == json.loads(request.content)["id"]:
            await anyio.sleep(3)
        return status_echo(request)

    waits: list[float] = []

    def on_event(event: hc.ClientEvent) -> None:
        if isinstance(event, hc.LimiterWaited):
            waits.append(event.seconds)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(first_is_slow)) as http,
        make_client(
            rate_limit=StubLimiter(), http_client=http, max_connections=1, on_event=on_event
        ) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.chats.update_status, 1, "closed")
        await anyio.sleep(1)
        await client.chats.update_status(2, "closed")

    assert pytest.approx([0.0, 2.0]) == waits


@VIRTUAL
@pytest.mark.parametrize(
    "failure",
    [httpx.Response(500), httpx.Response(400, json={}), httpx.ConnectError("refused")],
)
async def test_a_failed_attempt_gives_its_slot_back(make_client, api, failure):
    """With one slot, a call after a failed one (error status or no answer) is sent at once."""
    route = api.put("/chats/status").mock(side_effect=[failure, status_echo])
    async with make_client(max_connections=1, max_retries=0) as client:
        with pytest.raises(hc.HelpCrunchError):
            await client.chats.update_status(1, "closed")
        with anyio.fail_after(1):
            assert 2 == (await client.chats.update_status(2, "closed")).id

    assert 2 == route.call_count


class EagerLimiter(StubLimiter):
    """A limiter of one's own whose ``deadline`` defaults to something other than None."""

    async def acquire(self, *, priority: str = "interactive", deadline: float | None = 0.0) -> None:
        await super().acquire(priority=priority, deadline=deadline)


async def test_without_max_wait_the_limiter_is_told_there_is_no_deadline(make_client, api):
    """A call with no max_wait passes deadline=None itself, whatever the limiter's default."""
    api.put("/chats/status").mock(side_effect=status_echo)
    limiter = EagerLimiter()
    async with make_client(rate_limit=limiter) as client:
        await client.chats.update_status(1, "closed")

    assert [("interactive", None)] == limiter.acquired


@VIRTUAL
async def test_a_retry_is_not_cut_short_by_max_wait(make_client, api):
    """max_wait bounds the first attempt's turn: the retry after a 429 has no deadline."""
    api.put("/chats/status").mock(
        side_effect=[httpx.Response(429, json=TOO_MANY), httpx.Response(200, json=chat_payload(1))]
    )
    limiter = StubLimiter()
    async with make_client(rate_limit=limiter) as client:
        started = anyio.current_time()
        await client.with_options(max_wait=0.5).chats.update_status(1, "closed")

    assert [started + 0.5, None] == [deadline for _, deadline in limiter.acquired]


# --- one home for the 429 policy --------------------------------------------------------


async def test_retry_after_is_capped_once_and_given_to_the_limiter(make_client, api):
    """A long Retry-After is capped at retry_after_max before the limiter sees it."""
    api.put("/chats/status").mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "100"}),
            httpx.Response(200, json=chat_payload(1)),
        ]
    )
    limiter = StubLimiter()
    retry = hc.Retry(backoff=0, retry_after_max=5.0)
    async with make_client(rate_limit=limiter, retry=retry) as client:
        await client.chats.update_status(1, "closed")

    assert [5.0] == limiter.paused
    assert 2 == len(limiter.acquired)


@VIRTUAL
async def test_with_a_limiter_the_429_caller_waits_in_the_limiter_only(make_client, api):
    """The caller that got the 429 does not sleep on its own on top of the limiter's pause."""
    api.put("/chats/status").mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "30"}),
            httpx.Response(200, json=chat_payload(1)),
        ]
    )
    async with make_client(rate_limit=StubLimiter()) as client:
        started = anyio.current_time()
        await client.chats.update_status(1, "closed")

        assert 0.0 == anyio.current_time() - started


@VIRTUAL
async def test_without_a_limiter_the_retry_sleeps_the_capped_retry_after(make_client, api):
    """No limiter: the retry itself waits Retry-After, never past retry_after_max."""
    api.put("/chats/status").mock(
        side_effect=[
            httpx.Response(429, json=TOO_MANY, headers={"Retry-After": "100"}),
            httpx.Response(200, json=chat_payload(1)),
        ]
    )
    retry = hc.Retry(backoff=0, retry_after_max=7.0)
    async with make_client(retry=retry) as client:
        started = anyio.current_time()
        await client.chats.update_status(1, "closed")

        assert pytest.approx(7.0) == anyio.current_time() - started


@VIRTUAL
async def test_the_limiter_is_told_how_long_ago_a_refused_request_left(make_client):
    """A 429 that took 0.25 s to come back: the limiter hears ``sent_ago=0.25``, so it can
    tell a request sent before its pause began from one sent after."""

    async def slow_429(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(0.25)
        if len(limiter.paused) == 0:
            return httpx.Response(429, json=TOO_MANY)
        return httpx.Response(200, json=chat_payload(1))

    limiter = StubLimiter()
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(slow_429)) as http,
        make_client(rate_limit=limiter, http_client=http) as client,
    ):
        await client.chats.update_status(1, "closed")

    assert [None] == limiter.paused
    assert [0.25] == limiter.sent_ago


# --- the per-attempt deadline and the body cap, over a real socket ----------------------


async def trickle(stream: anyio.abc.SocketStream, body_bytes: int, gap: float) -> None:
    """Answer one request with headers at once, then the body one byte per ``gap``."""
    await stream.receive()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body_bytes}\r\n\r\n"
    )
    await stream.send(head.encode())
    for _ in range(body_bytes):
        await anyio.sleep(gap)
        await stream.send(b" ")


async def serve_once(handler) -> AsyncIterator[str]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - not Django
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        yield f"http://127.0.0.1:{port}/v1"
        tg.cancel_scope.cancel()


async def test_a_streamed_error_keeps_the_servers_reason_phrase(make_client):
    """A chunked 503 (read by the capped reader) says the server's own reason in the error."""

    async def handler(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(
                b"HTTP/1.1 503 Down For Maintenance\r\nTransfer-Encoding: chunked\r\n"
                b"\r\n5\r\nhello\r\n0\r\n\r\n"
            )

    async for url in serve_once(handler):
        async with make_client(base_url=url, max_retries=0) as client:
            with pytest.raises(hc.ServerError) as caught:
                await client.chats.update_status(1, "closed")

    assert "HTTP 503 Down For Maintenance: 'hello'" == str(caught.value)


async def test_a_trickling_server_cannot_hold_an_attempt_past_its_timeout(make_client):
    """One byte every 0.05 s never trips a socket timeout of 0.5 s; the attempt deadline does."""

    async def handler(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await trickle(stream, 1000, 0.05)

    async for url in serve_once(handler):
        async with make_client(base_url=url, timeout=0.5, max_retries=0) as client:
            with pytest.raises(hc.APITimeoutError, match=r"within 0\.5 s"):
                await client.chats.update_status(1, "closed")


# Leaving a body early finalizes httpx's own nested async generators only at GC time, which
# trio reports (httpx issue #3686, fix pending upstream); our own reader is closed with aclosing.
HTTPX_GENERATORS = pytest.mark.filterwarnings("ignore:Async generator 'httpx.:ResourceWarning")


@HTTPX_GENERATORS
async def test_a_success_larger_than_the_cap_is_refused(make_client, api):
    """A 2xx body past max_response_bytes is a ResponseValidationError, never read whole."""
    api.put("/chats/status").mock(return_value=httpx.Response(200, content=b"[" + b"0," * 5000))
    async with make_client(max_response_bytes=1024, max_retries=0) as client:
        with pytest.raises(hc.ResponseValidationError, match="max_response_bytes=1024"):
            await client.chats.update_status(1, "closed")


@HTTPX_GENERATORS
async def test_an_error_answer_larger_than_the_cap_keeps_its_status(make_client, api):
    """A huge 503 page is cut at the cap and still reads as a ServerError."""
    api.put("/chats/status").mock(return_value=httpx.Response(503, content=b"x" * 100_000))
    async with make_client(max_response_bytes=1024, max_retries=0) as client:
        with pytest.raises(hc.ServerError) as caught:
            await client.chats.update_status(1, "closed")

    assert 503 == caught.value.status_code


def chat_of_size(size: int) -> bytes:
    """A chat's JSON padded (in a field the model ignores) to exactly ``size`` bytes."""
    bare = json.dumps({**chat_payload(1), "pad": ""}).encode()
    return json.dumps({**chat_payload(1), "pad": "x" * (size - len(bare))}).encode()


def gzipped(body: bytes) -> httpx.Response:
    """A 200 whose gzip body declares (in Content-Length) far less than it decodes to."""
    return httpx.Response(200, content=gzip.compress(body), headers={"Content-Encoding": "gzip"})


@HTTPX_GENERATORS
@pytest.mark.parametrize("length", ["abc", "1e3", "-5", "0x10"])
async def test_a_content_length_that_is_no_number_is_not_trusted(make_client, api, length):
    """A Content-Length that is no plain number (a custom transport may pass one on): the
    body is still read under the cap, and one past it refused."""
    body = chat_of_size(2000)
    api.put("/chats/status").mock(
        return_value=httpx.Response(200, content=body, headers={"Content-Length": length})
    )
    async with make_client(max_response_bytes=1024, max_retries=0) as client:
        with pytest.raises(hc.ResponseValidationError, match="max_response_bytes=1024"):
            await client.chats.update_status(1, "closed")


@HTTPX_GENERATORS
async def test_a_compressed_success_is_capped_at_its_decoded_size(make_client, api):
    """A gzip body of a few hundred bytes that decodes past the cap is refused, not inflated."""
    bomb = gzipped(chat_of_size(100_000))
    assert int(bomb.headers["content-length"]) < 1024  # what it declares fits the cap
    api.put("/chats/status").mock(return_value=bomb)
    async with make_client(max_response_bytes=1024, max_retries=0) as client:
        with pytest.raises(hc.ResponseValidationError, match="max_response_bytes=1024"):
            await client.chats.update_status(1, "closed")


@pytest.mark.parametrize("respond", [gzipped, lambda body: httpx.Response(200, content=body)])
async def test_a_success_of_exactly_the_cap_is_read(make_client, api, respond):
    """A body of exactly max_response_bytes, compressed or not, is an answer like any other."""
    api.put("/chats/status").mock(return_value=respond(chat_of_size(1024)))
    async with make_client(max_response_bytes=1024, max_retries=0) as client:
        chat = await client.chats.update_status(1, "closed")

    assert 1 == chat.id


def chunked(status: int, body: bytes, size: int) -> httpx.Response:
    """An answer without Content-Length, its body streamed in chunks of ``size`` bytes."""

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]

    return httpx.Response(status, content=chunks())


@HTTPX_GENERATORS
@pytest.mark.parametrize(("cap", "refused"), [(1024, False), (1023, True)])
async def test_a_streamed_success_is_capped_over_all_its_chunks(make_client, api, cap, refused):
    """Chunks of 100 bytes: the cap counts their sum, a body of exactly the cap is read."""
    api.put("/chats/status").mock(side_effect=lambda _: chunked(200, chat_of_size(1024), 100))
    async with make_client(max_response_bytes=cap, max_retries=0) as client:
        if refused:
            with pytest.raises(hc.ResponseValidationError, match=f"max_response_bytes={cap}"):
                await client.chats.update_status(1, "closed")
        else:
            assert 1 == (await client.chats.update_status(1, "closed")).id


@HTTPX_GENERATORS
@pytest.mark.parametrize("size", [30, 500])
async def test_an_error_answer_is_kept_up_to_the_cap_exactly(make_client, api, size):
    """A 503 page streamed past the cap keeps its first max_response_bytes bytes, no more."""
    page = bytes(range(48, 58)) * 50
    api.put("/chats/status").mock(side_effect=lambda _: chunked(503, page, size))
    async with make_client(max_response_bytes=100, max_retries=0) as client:
        with pytest.raises(hc.ServerError) as caught:
            await client.chats.update_status(1, "closed")

    assert page[:100].decode() == caught.value.body_excerpt


async def test_a_success_that_is_not_json_shows_no_key(make_client, api):
    """A 200 page echoing the key (a proxy's) is refused as not JSON, the key redacted."""
    api.put("/chats/status").mock(return_value=httpx.Response(200, text=f"<p>{API_KEY}</p>"))
    async with make_client(max_retries=0) as client:
        with pytest.raises(hc.ResponseValidationError) as caught:
            await client.chats.update_status(1, "closed")

    assert API_KEY not in str(caught.value)
    assert "<redacted>" in str(caught.value)


# --- traffic classes through the client --------------------------------------------------


class ClassLimiter(StubLimiter):
    """Grants interactive turns at once and holds background ones until released."""

    def __init__(self) -> None:
        super().__init__()
        self.open = anyio.Event()

    async def acquire(
        self, *, priority: str = "interactive", deadline: float | None = None
    ) -> None:
        await super().acquire(priority=priority, deadline=deadline)
        if priority == "background":
            await self.open.wait()


async def test_an_interactive_call_never_waits_for_a_slot_held_by_bulk_work(make_client, api):
    """Background calls waiting at the limiter hold every slot but one; an interactive call
    takes that one and completes while they still wait."""
    api.put("/chats/status").mock(side_effect=status_echo)
    limiter = ClassLimiter()
    async with make_client(rate_limit=limiter, max_connections=3) as client:
        background = client.with_options(priority="background")
        async with anyio.create_task_group() as tg:
            for chat_id in range(1, 6):
                tg.start_soon(background.chats.update_status, chat_id, "closed")
            await anyio.wait_all_tasks_blocked()

            chat = await client.with_options(max_wait=0).chats.update_status(9, "closed")

            assert 9 == chat.id
            assert 1 == client.stats().requests
            limiter.open.set()
        assert 6 == client.stats().requests


async def test_rate_limit_headers_reach_a_limiter_that_takes_them(make_client, api):
    """X-RateLimit-* headers of any answer are read once and handed to the limiter."""
    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59", "X-RateLimit-Reset": "30"}
    api.put("/chats/status").mock(
        return_value=httpx.Response(200, json=chat_payload(1), headers=headers)
    )
    limiter = ClassLimiter()
    async with make_client(rate_limit=limiter) as client:
        await client.chats.update_status(1, "closed")

    assert 1 == len(limiter.headers)
    assert 60 == limiter.headers[0].limit


@VIRTUAL
async def test_stats_show_the_limit_the_limiter_learned(make_client, api):
    """After 429s show the key allows less, stats() says how much the limiter now holds to."""
    calls = 0

    def strict(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls % 3 == 0:
            return httpx.Response(429, json=TOO_MANY)
        return status_echo(request)

    api.put("/chats/status").mock(side_effect=strict)
    limit = hc.RateLimit(requests=20, per=2.0, burst=20, margin=0.0)
    async with make_client(rate_limit=limit) as client:
        assert client.stats().learned_limit is None
        for chat_id in range(1, 30):
            await client.chats.update_status(chat_id, "closed")
        learned = client.stats().learned_limit

    assert learned is not None
    assert learned < 20


# --- one exchange: the attempt's timeout, its errors, and the answer handed back ------------


def endless(status: int) -> httpx.Response:
    """An answer whose body never ends: 100 bytes a second, for ever (virtual time)."""

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            await anyio.sleep(1)
            yield b"x" * 100

    return httpx.Response(status, content=chunks())


@VIRTUAL
@HTTPX_GENERATORS
@pytest.mark.parametrize(
    ("status", "cls"), [(200, hc.ResponseValidationError), (503, hc.ServerError)]
)
async def test_an_endless_body_is_read_up_to_the_cap_not_until_the_deadline(
    make_client, api, anyio_backend, status, cls
):
    """A body that never ends is refused (or cut) at the cap, long before the timeout."""
    api.put("/chats/status").mock(side_effect=lambda _: endless(status))
    async with make_client(max_response_bytes=1000, timeout=60, max_retries=0) as client:
        start = anyio.current_time()
        with pytest.raises(cls):
            await client.chats.update_status(1, "closed")

    assert pytest.approx(11.0) == anyio.current_time() - start  # the 11th chunk passes the cap


@VIRTUAL
async def test_a_create_past_its_deadline_may_have_arrived_and_is_not_retried(
    make_client, api, anyio_backend
):
    """An answer still unfinished at the timeout: the request left, so a create is not resent."""

    sent: list[httpx.Request] = []

    async def late(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        await anyio.sleep(100)
        return httpx.Response(201, json=chat_payload(3))

    api.post("/chats").mock(side_effect=late)
    async with make_client(timeout=10, max_retries=2) as client:
        with pytest.raises(hc.APITimeoutError) as info:
            await client.chats.create(customer=5, application=2)

    assert "no complete answer within 10 s" == str(info.value)
    assert info.value.request_sent is True
    assert 1 == len(sent)


@VIRTUAL
async def test_the_timeout_bounds_the_exchange_not_what_follows_it(make_client, api):
    """Once the answer is in, the limiter's slow handling of its headers is no timeout."""

    class SlowToLearn(StubLimiter):
        async def on_rate_limit_headers(self, headers: hc.RateLimitHeaders) -> None:
            await anyio.sleep(100)  # ten timeouts
            await super().on_rate_limit_headers(headers)

    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59", "X-RateLimit-Reset": "30"}
    api.put("/chats/status").mock(
        return_value=httpx.Response(200, json=chat_payload(1), headers=headers)
    )
    limiter = SlowToLearn()
    async with make_client(rate_limit=limiter, timeout=10, max_retries=0) as client:
        assert 1 == (await client.chats.update_status(1, "closed")).id

    assert 1 == len(limiter.headers)


@VIRTUAL
async def test_the_timeout_starts_when_the_turn_is_granted(make_client, api):
    """A turn that took longer than the timeout leaves the whole timeout to the exchange."""

    class Slow(StubLimiter):
        async def acquire(
            self, *, priority: str = "interactive", deadline: float | None = None
        ) -> None:
            await anyio.sleep(100)  # ten timeouts
            await super().acquire(priority=priority, deadline=deadline)

    async def answer_in_9_s(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(9)
        return status_echo(request)

    api.put("/chats/status").mock(side_effect=answer_in_9_s)
    async with make_client(rate_limit=Slow(), timeout=10, max_retries=0) as client:
        start = anyio.current_time()
        assert 1 == (await client.chats.update_status(1, "closed")).id

    assert pytest.approx(109.0) == anyio.current_time() - start


async def test_httpx_is_given_no_timeout_of_its_own(make_client):
    """The attempt's deadline is the one timer: the request tells the transport no timeouts.

    Whatever the http_client's own timeout (a transport of your own reads the extension).
    """
    seen: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return status_echo(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), timeout=5)
    async with make_client(http_client=http, timeout=30) as client:
        await client.chats.update_status(1, "closed")
    await http.aclose()

    assert [{"connect": None, "read": None, "write": None, "pool": None}] == seen


async def test_a_transport_error_quoting_the_key_shows_it_nowhere(make_client, api):
    """A connection failure whose text quotes the Authorization header has the key redacted."""
    api.put("/chats/status").mock(
        side_effect=httpx.RemoteProtocolError(f"illegal header line: Bearer {API_KEY}")
    )
    async with make_client(max_retries=0) as client:
        with pytest.raises(hc.APIConnectionError) as info:
            await client.chats.update_status(1, "closed")

    assert "connection failed: illegal header line: Bearer <redacted>" == str(info.value)


async def test_the_sdk_timeout_rules_an_attempt_on_a_given_http_client(make_client):
    """A given httpx.AsyncClient's own (tiny) timeout does not cut the SDK's attempt short."""

    async def handler(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            body = json.dumps(chat_payload(1)).encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            await stream.send(head + body)

    async for url in serve_once(handler):
        async with httpx.AsyncClient(timeout=1e-9) as http:
            client = make_client(base_url=url, http_client=http, timeout=30, max_retries=0)
            chat = await client.chats.update_status(1, "closed")

    assert 1 == chat.id


@HTTPX_GENERATORS
@pytest.mark.parametrize(
    "answer",
    [
        lambda: chunked(200, chat_of_size(500), 100),
        lambda: httpx.Response(200, json=chat_payload(1)),
    ],
    ids=["streamed", "content-length"],
)
async def test_a_raw_answer_keeps_its_request_and_its_own_duration(make_client, api, answer):
    """The raw answer names the request it answers; its elapsed lies within the call's span."""
    api.put("/chats/status").mock(side_effect=lambda _: answer())
    async with make_client(max_retries=0) as client:
        before = time.perf_counter()
        raw = await client.chats.with_raw_response.update_status(1, "closed")
        span = time.perf_counter() - before

    assert f"{BASE_URL}/chats/status" == str(raw.http_response.request.url)
    assert 0 <= raw.elapsed <= span
