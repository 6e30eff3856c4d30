"""The client: configuration, update_status end to end over respx, and key hygiene."""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import attrs
import httpx
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

import helpcrunch_async as hc
from tests.conftest import API_KEY, BASE_URL, StubLimiter, chat_payload, status_echo

pytestmark = pytest.mark.anyio


# --- construction ------------------------------------------------------------------------


async def test_api_key_from_environment(monkeypatch, api):
    """HELPCRUNCH_API_KEY is used when no key is passed: it is the bearer token sent."""
    monkeypatch.setenv("HELPCRUNCH_API_KEY", API_KEY)
    route = api.put("/chats/status").mock(side_effect=status_echo)

    async with hc.HelpCrunch(base_url=BASE_URL, rate_limit=None) as client:
        await client.chats.update_status(1, "closed")

    assert "Bearer " + API_KEY == route.calls.last.request.headers["Authorization"]


@pytest.mark.parametrize("key", [None, ""])
def test_missing_or_empty_key_is_value_error(monkeypatch, key):
    """No key (argument or environment) fails at construction, saying how to fix it."""
    monkeypatch.delenv("HELPCRUNCH_API_KEY", raising=False)

    with pytest.raises(ValueError, match="HELPCRUNCH_API_KEY"):
        hc.HelpCrunch(key)


def test_key_with_whitespace_is_rejected_without_echoing_it():
    """The key must be sent exactly; the error does not repeat it."""
    with pytest.raises(ValueError, match="whitespace") as info:
        hc.HelpCrunch(" " + API_KEY)

    assert API_KEY not in str(info.value)


def test_key_of_wrong_type_is_type_error():
    """A non-string key is a TypeError."""
    with pytest.raises(TypeError):
        hc.HelpCrunch(12345)  # type: ignore[arg-type]


def test_base_url_resolution(monkeypatch):
    """base_url argument, then HELPCRUNCH_BASE_URL, then the public API."""
    monkeypatch.delenv("HELPCRUNCH_BASE_URL", raising=False)
    assert "https://api.helpcrunch.com/v1" == hc.HelpCrunch(API_KEY).base_url

    monkeypatch.setenv("HELPCRUNCH_BASE_URL", "http://127.0.0.1:8765/v1/")
    assert "http://127.0.0.1:8765/v1" == hc.HelpCrunch(API_KEY).base_url

    assert BASE_URL == hc.HelpCrunch(API_KEY, base_url=BASE_URL + "/").base_url


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000/v1", "http://127.0.0.1/v1", "http://[::1]:9/v1", "https://x.io/v1"],
)
def test_allowed_base_urls(url):
    """https anywhere; plain http only to loopback hosts."""
    assert url == hc.HelpCrunch(API_KEY, base_url=url).base_url


@pytest.mark.parametrize(
    "url",
    ["http://api.helpcrunch.com/v1", "ftp://127.0.0.1/v1", "api.helpcrunch.com", "https://", ""],
)
def test_rejected_base_urls(url):
    """Non-http(s) URLs, and plain http to a remote host, are ValueErrors."""
    with pytest.raises(ValueError, match="base_url"):
        hc.HelpCrunch(API_KEY, base_url=url)


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        (
            {"rate_limit": "fast"},
            TypeError,
            (
                "rate_limit must be a RateLimit, None, or a RateLimiter: str is not one "
                "(missing acquire, on_rate_limited, on_rate_limit_headers, bind_key, "
                "current_rate, learned_limit)"
            ),
        ),
        ({"max_retries": -1}, ValueError, "max_retries must be >= 0, got -1"),
        ({"max_retries": 1.5}, TypeError, "max_retries must be an int, not float"),
        ({"max_connections": 0}, ValueError, "max_connections must be >= 1, got 0"),
        ({"max_connections": True}, TypeError, "max_connections must be an int, not bool"),
        ({"max_response_bytes": 0}, ValueError, "max_response_bytes must be >= 1, got 0"),
        ({"max_response_bytes": "1"}, TypeError, "max_response_bytes must be an int, not str"),
    ],
)
def test_bad_settings(kwargs, exc, message):
    """Bad settings fail at construction with an error naming the argument."""
    with pytest.raises(exc) as info:
        hc.HelpCrunch(API_KEY, **kwargs)

    assert message == str(info.value)


def test_max_connections_is_shown():
    """The client says its max_connections: 10 by default, else the one given."""
    assert (10, 7) == (
        hc.HelpCrunch(API_KEY).max_connections,
        hc.HelpCrunch(API_KEY, max_connections=7).max_connections,
    )


@pytest.mark.parametrize(("limited", "learned"), [(True, 90), (False, None)])
def test_stats_show_the_limit_the_limiter_learned(make_client, limited, learned):
    """stats().learned_limit is the limiter's learned_limit; None without a limiter."""
    limiter = StubLimiter()
    limiter.learned_limit = 90
    client = make_client(rate_limit=limiter if limited else None)

    assert learned == client.stats().learned_limit


def test_repr_shows_no_key():
    """repr() shows where the client points, never the key."""
    client = hc.HelpCrunch(API_KEY)

    assert API_KEY not in repr(client)
    assert API_KEY not in repr(vars(client))
    assert "api.helpcrunch.com" in repr(client)


async def test_every_resource_of_a_view_calls_with_the_views_options(make_client, api):
    """A ``with_options`` view binds its options to every resource: each call, whatever its
    resource, waits in the view's traffic class."""
    api.post("/events").respond(200, json={"id": 3, "name": "Paid", "createdAt": 1603885746})
    api.get("/applications").respond(200, json={"data": []})
    api.get("/organization").respond(200, json={"data": {"id": 2, "domain": "acme"}})
    api.get("/agents").respond(200, json={"data": []})
    api.get("/departments").respond(200, json={"data": []})
    api.get("/chats/5").respond(200, json=chat_payload(5))
    limiter = StubLimiter()
    client = make_client(rate_limit=limiter)
    view = client.with_options(priority="background")

    async with client:
        await view.events.create(7, "Paid")
        assert [] == [app async for app in view.applications.list()]
        await view.organization.get()
        assert [] == [agent async for agent in view.agents.list()]
        assert [] == [department async for department in view.departments.list()]
        await view.chats.get(5)

    assert ["background"] * 6 == [priority for priority, _ in limiter.acquired]


def test_repr_of_a_client_whose_constructor_failed():
    """A client half-built by a failing ``__init__`` (as a traceback's locals show it)
    still has a repr, saying so, instead of an AttributeError."""
    half_built = hc.HelpCrunch.__new__(hc.HelpCrunch)

    assert "HelpCrunch(<not constructed>)" == repr(half_built)


def rendered_with_locals(exc: BaseException) -> str:
    """The traceback as rich, ``pytest -l`` and friends show it: with every frame's locals."""
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": "30"},
        {"retry": 5},
        {"max_connections": 0},
        {"base_url": "ftp://x/v1"},
        {"rate_limit": "fast"},
        {"http_client": object()},
    ],
)
def test_key_absent_from_traceback_locals_of_a_failing_constructor(kwargs):
    """A bad argument's traceback, rendered with locals, never shows the key."""
    with pytest.raises((TypeError, ValueError)) as info:
        hc.HelpCrunch(API_KEY, **kwargs)

    rendered = rendered_with_locals(info.value)
    assert "api_key" not in rendered or API_KEY not in rendered
    assert API_KEY not in rendered
    assert "<redacted>" in rendered  # the locals were captured, the key shown as such
    assert "self = HelpCrunch(<not constructed>)" in rendered  # the half-built client


@pytest.mark.parametrize(
    ("before", "after"), [("", "\x00"), ("\x1b[2J", ""), ("", "\x7f"), ("", "\u00e9")]
)
def test_key_with_control_or_non_ascii_characters_is_refused_without_echo(before, after):
    """NUL, ESC, DEL or non-ASCII in the key: a ValueError that repeats no part of it."""
    with pytest.raises(ValueError, match="control or non-ASCII") as info:
        hc.HelpCrunch(before + API_KEY + after)  # no local of this test holds the key

    assert API_KEY not in str(info.value)
    assert API_KEY not in rendered_with_locals(info.value)


def test_key_from_environment_is_checked_without_echo(monkeypatch):
    """A bad key from HELPCRUNCH_API_KEY is refused the same way."""
    monkeypatch.setenv("HELPCRUNCH_API_KEY", API_KEY + "\x1b")

    with pytest.raises(ValueError) as info:
        hc.HelpCrunch()

    assert API_KEY not in rendered_with_locals(info.value)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("https://user:hunter2@api.helpcrunch.com/v1", "user name or password"),
        ("https://hunter2@api.helpcrunch.com/v1", "user name or password"),
        ("//user:hunter2@api.helpcrunch.com/v1", "user name or password"),
        ("https://api.helpcrunch.com/v1?x=1", "query or fragment"),
        ("https://api.helpcrunch.com/v1?", "query or fragment"),
        ("https://api.helpcrunch.com/v1#top", "query or fragment"),
        ("https://api.helpcrunch.com:99999/v1", "invalid port"),
        ("https://api.helpcrunch.com:0/v1", "invalid port"),
        ("https://api.helpcrunch.com:x/v1", "not a valid URL"),
    ],
)
def test_base_url_with_userinfo_query_fragment_or_bad_port_is_refused(url, match):
    """Each is a clear ValueError at construction; a password is never echoed."""
    with pytest.raises(ValueError, match=match) as info:
        hc.HelpCrunch(API_KEY, base_url=url)

    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"timeout": "30"}, TypeError),
        ({"timeout": None}, TypeError),
        ({"timeout": True}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": float("inf")}, ValueError),
        ({"retry": 5}, TypeError),
        ({"retry": {"backoff": 0}}, TypeError),
        ({"http_client": object()}, TypeError),
        ({"base_url": 42}, TypeError),
    ],
)
def test_constructor_arguments_are_validated_at_construction(kwargs, exc):
    """A wrong type or value fails at once, not at the first request."""
    with pytest.raises(exc):
        hc.HelpCrunch(API_KEY, **kwargs)


def test_sync_http_client_is_refused():
    """An httpx.Client (not async) is a TypeError naming what is needed."""
    with httpx.Client() as sync, pytest.raises(TypeError, match="AsyncClient"):
        hc.HelpCrunch(API_KEY, http_client=sync)  # type: ignore[arg-type]


async def test_non_callable_on_progress_fails_before_sending(client, api):
    """on_progress that cannot be called is a TypeError before any request."""
    route = api.put("/chats/status").mock(side_effect=status_echo)

    with pytest.raises(TypeError, match="on_progress"):
        await client.chats.bulk_update_status([1], "closed", on_progress="print")

    assert 0 == route.call_count


# --- update_status -----------------------------------------------------------------------


async def test_update_status_sends_documented_request(client, api):
    """PUT /chats/status with {"id", "status"} and the bearer key; returns a typed Chat."""
    route = api.put("/chats/status").mock(side_effect=status_echo)

    chat = await client.chats.update_status(5215752, hc.ChatStatus.CLOSED)

    request = route.calls.last.request
    assert {"id": 5215752, "status": "closed"} == json.loads(request.content)
    assert "Bearer " + API_KEY == request.headers["Authorization"]
    assert "application/json" == request.headers["Content-Type"]
    assert hc.ChatStatus.CLOSED is chat.status
    assert "bob@example.com" == chat.customer.email
    assert chat.closed_at is not None


@pytest.mark.parametrize(
    ("given", "sent"), [("open", "opened"), ("No Communication", "no communication")]
)
async def test_update_status_accepts_strings(client, api, given, sent):
    """Strings are normalised before sending."""
    route = api.put("/chats/status").mock(side_effect=status_echo)

    await client.chats.update_status(1, given)

    assert sent == json.loads(route.calls.last.request.content)["status"]


@pytest.mark.parametrize(
    ("chat_id", "exc"),
    [
        (True, TypeError),
        (1.0, TypeError),
        ("5215752", TypeError),
        (None, TypeError),
        (0, ValueError),
        (-4, ValueError),
        (2**63, ValueError),
    ],
)
async def test_bad_chat_id_fails_before_sending(client, api, chat_id, exc):
    """A chat id that is not a positive 64-bit int is rejected, naming the value."""
    route = api.put("/chats/status").mock(side_effect=status_echo)

    with pytest.raises(exc, match=repr(chat_id).replace("(", r"\(").replace(")", r"\)")):
        await client.chats.update_status(chat_id, "closed")

    assert not route.called


@pytest.mark.parametrize(
    "status", ["clsoed", "empty", hc.ChatStatus.EMPTY, 3, "c l o s e d", "-_-closed-_-"]
)
async def test_bad_status_fails_before_sending(client, api, status):
    """An unknown or unsendable status is rejected before any request."""
    route = api.put("/chats/status").mock(side_effect=status_echo)

    with pytest.raises((ValueError, TypeError)):
        await client.chats.update_status(1, status)

    assert not route.called


def _reject_spellings(*rejected: str):
    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        if sent["status"] in rejected:
            return httpx.Response(
                400, json={"errors": [{"code": "invalid_chat_value", "message": "invalid"}]}
            )
        return httpx.Response(200, json=chat_payload(sent["id"], sent["status"]))

    return handler


async def test_on_hold_sends_spec_spelling_first(client, api):
    """On-hold goes out as "on-hold" when the server takes it: one request."""
    route = api.put("/chats/status").mock(side_effect=_reject_spellings())

    chat = await client.chats.update_status(1, "on hold")

    assert ["on-hold"] == [json.loads(c.request.content)["status"] for c in route.calls]
    assert hc.ChatStatus.ON_HOLD is chat.status


async def test_on_hold_falls_back_once_each_and_remembers(client, api):
    """Rejected "on-hold" is retried as "on hold" then "onhold"; the winner is used next time."""
    route = api.put("/chats/status").mock(side_effect=_reject_spellings("on-hold", "on hold"))

    first = await client.chats.update_status(1, hc.ChatStatus.ON_HOLD)
    await client.chats.update_status(2, "onhold")

    sent = [json.loads(c.request.content)["status"] for c in route.calls]
    assert ["on-hold", "on hold", "onhold", "onhold"] == sent
    assert hc.ChatStatus.ON_HOLD is first.status


async def test_on_hold_all_spellings_rejected_raises_last_error(client, api):
    """If the server takes no spelling, the caller gets the BadRequestError."""
    api.put("/chats/status").mock(side_effect=_reject_spellings("on-hold", "on hold", "onhold"))

    with pytest.raises(hc.BadRequestError, match="invalid_chat_value"):
        await client.chats.update_status(1, "on-hold")


async def test_on_hold_other_400_is_not_retried_with_other_spellings(client, api):
    """Only invalid_chat_value triggers the spelling fallback."""
    route = api.put("/chats/status").respond(
        400, json={"errors": [{"code": "invalid_request", "message": "id is required"}]}
    )

    with pytest.raises(hc.BadRequestError):
        await client.chats.update_status(1, "on-hold")

    assert 1 == route.call_count


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, {"errors": [{"code": "invalid_chat_value", "message": "bad"}]}, hc.BadRequestError),
        (
            401,
            {"errors": [{"code": "invalid_token", "message": "Invalid token"}]},
            hc.AuthenticationError,
        ),
        (
            404,
            {"errors": [{"code": "chat_not_found", "message": "Chat not found"}]},
            hc.NotFoundError,
        ),
        (403, {"errors": [{"code": "forbidden", "message": "no"}]}, hc.APIError),
    ],
)
async def test_client_errors_are_raised_once(client, api, status, body, cls):
    """4xx answers raise their class at once, without retries."""
    route = api.put("/chats/status").respond(status, json=body)

    with pytest.raises(cls) as info:
        await client.chats.update_status(1, "closed")

    assert 1 == route.call_count
    assert 1 == info.value.attempts
    assert status == info.value.status_code


async def test_success_with_wrong_shape_is_response_validation_error(client, api):
    """A 2xx that is JSON but not a chat raises ResponseValidationError (not retried)."""
    route = api.put("/chats/status").respond(200, json={"ok": True})

    with pytest.raises(hc.ResponseValidationError, match="id"):
        await client.chats.update_status(1, "closed")

    assert 1 == route.call_count


async def test_the_sdk_pool_sends_json_accept_and_its_user_agent(client, api):
    """Without an http_client of yours, every request goes out with "Accept: application/json"
    and "User-Agent: helpcrunch-async/<version>", spelled so on the wire."""
    route = api.get("/agents").respond(200, json={"data": []})

    await client.request("GET", "/agents")

    user_agent = f"helpcrunch-async/{hc.__version__}".encode()
    expected = {b"Accept": b"application/json", b"User-Agent": user_agent}
    raw = route.calls.last.request.headers.raw
    assert expected == {name: value for name, value in raw if name in expected}


@attrs.define
class LoopbackServer:
    """A plain HTTP/1.1 server on 127.0.0.1 that answers ``{}`` on keep-alive connections,
    holding every answer until ``burst`` requests are in (so that they are all in flight)."""

    base_url: str
    burst: int
    #: Connections accepted, and those still open.
    connections: int = 0
    open: int = 0
    requests: int = 0
    all_in: anyio.Event = attrs.Factory(anyio.Event)
    all_closed: anyio.Event = attrs.Factory(anyio.Event)

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        self.open += 1
        received = BufferedByteReceiveStream(stream)
        try:
            async with stream:
                await self.answer(stream, received)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
            pass  # the client closed the connection
        finally:
            self.open -= 1
            if not self.open:
                self.all_closed.set()

    async def answer(
        self, stream: anyio.abc.SocketStream, received: BufferedByteReceiveStream
    ) -> None:
        """Answer the connection's requests until it ends."""
        while True:
            head = await received.receive_until(b"\r\n\r\n", 65536)
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    await received.receive_exactly(int(line.split(b":")[1]))
            self.requests += 1
            if self.requests == self.burst:
                self.all_in.set()
            await self.all_in.wait()
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")


@contextlib.asynccontextmanager
async def loopback_server(burst: int = 1) -> AsyncIterator[LoopbackServer]:
    """A ``LoopbackServer`` on a free port for the block."""
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - anyio's, not Django's
        server = LoopbackServer(f"http://127.0.0.1:{port}/v1", burst)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, server.handle)
            yield server
            tg.cancel_scope.cancel()


async def test_max_connections_past_httpx_default_are_all_in_flight_at_once(make_client):
    """max_connections=101 (httpx's own pool stops at 100): 101 calls are in flight at once,
    each on a connection of its own."""
    answers: list[object] = []

    async def call(client: hc.HelpCrunch) -> None:
        answers.append(await client.request("GET", "/agents"))

    async with loopback_server(burst=101) as server:
        async with make_client(base_url=server.base_url, max_connections=101) as client:
            with anyio.fail_after(120):  # a guard against a hang, not a timing assertion
                async with anyio.create_task_group() as tg:
                    for _ in range(101):
                        tg.start_soon(call, client)

    assert ([{}] * 101, 101) == (answers, server.connections)


async def test_aclose_closes_the_connections_of_the_sdk_pool(make_client):
    """aclose() closes the pool the SDK made: the server sees its connection end."""
    async with loopback_server() as server:
        client = make_client(base_url=server.base_url)
        await client.request("GET", "/agents")
        assert 1 == server.open

        await client.aclose()
        with anyio.fail_after(60):  # a guard against a hang, not a timing assertion
            await server.all_closed.wait()

    assert (1, 0) == (server.connections, server.open)


async def test_a_view_refuses_to_be_closed_or_entered_saying_what_to_do(make_client):
    """aclose() or `async with` on a with_options() view: a TypeError naming the client."""
    view = make_client().with_options(max_retries=1)

    with pytest.raises(TypeError) as closing:
        await view.aclose()
    with pytest.raises(TypeError) as entering:
        async with view:
            pass

    entered = (
        "a with_options() view shares its client's resources and is not closed on its own: "
        "use the client it came from in `async with`"
    )
    closed = "close the client this view came from, not the view"
    assert [closed, entered] == [str(closing.value), str(entering.value)]


async def test_own_http_client_is_not_closed(make_client, api):
    """A caller's http_client is used and left open."""
    api.put("/chats/status").mock(side_effect=status_echo)
    async with httpx.AsyncClient() as http:
        async with make_client(http_client=http) as client:
            await client.chats.update_status(1, "closed")

        assert not http.is_closed


async def test_own_http_client_with_mock_transport(make_client):
    """Any transport works, MockTransport included."""
    transport = httpx.MockTransport(status_echo)
    async with httpx.AsyncClient(transport=transport) as http:
        client = make_client(http_client=http)

        chat = await client.chats.update_status(3, "pending")

    assert hc.ChatStatus.PENDING is chat.status


async def test_closed_client_refuses_requests(make_client):
    """After aclose(), calls fail clearly instead of reaching a closed pool."""
    client = make_client()
    await client.aclose()

    with pytest.raises(RuntimeError, match=r"^this HelpCrunch client is closed$") as info:
        await client.chats.update_status(1, "closed")
    assert isinstance(info.value, hc.ClientClosedError)


async def test_a_closed_client_cannot_be_entered_again(make_client):
    """``async with`` on a closed client says to create a new one, instead of a pool error
    at the first call."""
    async with make_client() as client:
        pass

    with pytest.raises(hc.ClientClosedError) as info:
        async with client:
            pass
    assert "this HelpCrunch client is closed; create a new one" == str(info.value)


# --- request(): any endpoint ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "given"),
    [
        ("GET", "/chats", {"json_body": None, "params": {"offset": "0", "limit": "2"}}),
        ("POST", "/customers/search", {"json_body": {"filter": [{"f": "name"}]}, "params": None}),
        ("PUT", "/customers/7/tags", {"json_body": {"tags": ["vip"]}, "params": {"force": "yes"}}),
    ],
)
async def test_request_sends_method_path_body_and_params(client, api, method, path, given):
    """request() sends its method, path, JSON body and query as given, and returns the JSON."""
    route = api.route(method=method, path=path).respond(200, json={"data": [1, 2]})

    answer = await client.request(method, path, **given)

    sent = route.calls.last.request
    body = json.loads(sent.content) if sent.content else None
    assert (method, given["json_body"], given["params"] or {}) == (
        sent.method,
        body,
        dict(sent.url.params),
    )
    assert {"data": [1, 2]} == answer


@pytest.mark.parametrize(("kwargs", "attempts"), [({}, 2), ({"idempotent": False}, 1)])
async def test_request_retries_a_5xx_unless_not_idempotent(client, api, kwargs, attempts):
    """A call is idempotent by default (a 503 is sent again); idempotent=False sends it once."""
    route = api.post("/chats").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"id": 1})]
    )

    with contextlib.suppress(hc.ServerError):
        await client.request("POST", "/chats", json_body={"customer": 1}, **kwargs)

    assert attempts == route.call_count


async def test_request_operation_names_the_call_in_events(make_client, api):
    """operation= is the name every event of the call carries."""
    api.get("/chats/5").respond(200, json={"id": 5})
    events: list[hc.ClientEvent] = []

    async with make_client(on_event=events.append) as client:
        await client.request("GET", "/chats/5", operation="chats.peek")

    calls = [event for event in events if isinstance(event, hc.CallEvent)]

    assert events == calls  # each event is of the call
    assert {"chats.peek"} == {event.operation for event in calls}


# --- the key never leaks -----------------------------------------------------------------


async def test_key_absent_from_errors_tracebacks_and_debug_logs(client, api, caplog):
    """With every logger at DEBUG (httpx and httpcore included), the key appears nowhere."""
    caplog.set_level(logging.DEBUG)
    api.put("/chats/status").respond(
        401, json={"errors": [{"code": "invalid_token", "message": "Invalid token"}]}
    )

    with pytest.raises(hc.AuthenticationError) as info:
        await client.chats.update_status(1, "closed")

    error = info.value
    rendered = "".join(traceback.format_exception(error))
    assert API_KEY not in rendered
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert API_KEY not in repr(error.headers)
    assert API_KEY not in caplog.text
    assert caplog.records  # the test saw the debug logs it checks


async def test_key_absent_from_real_socket_debug_logs(make_client, caplog):
    """httpcore's DEBUG trace of a real connection attempt does not print the header."""
    caplog.set_level(logging.DEBUG)
    client = make_client(base_url="http://127.0.0.1:9/v1", max_retries=0)

    with pytest.raises(hc.APIConnectionError) as info:
        await client.chats.update_status(1, "closed")

    assert API_KEY not in caplog.text
    assert API_KEY not in "".join(traceback.format_exception(info.value))
    await client.aclose()


def echo_authorization(request: httpx.Request) -> httpx.Response:
    """A misbehaving proxy: its error page quotes the request's Authorization header."""
    header = request.headers["Authorization"]
    return httpx.Response(
        502,
        headers={"X-Seen-Authorization": header},
        text=f"<html><pre>upstream failed for {header}</pre></html>",
    )


async def test_key_echoed_by_a_proxy_is_redacted_in_errors_and_journal(make_client, api, tmp_path):
    """The echoed key appears in no error text, header, excerpt or journal line."""
    api.put("/chats/status").mock(side_effect=echo_authorization)
    journal = tmp_path / "j.jsonl"

    async with make_client(max_retries=0) as client:
        result = await client.chats.bulk_update_status([1, 2], "closed", journal=journal)

    error = result.failed[1]
    assert isinstance(error, hc.ServerError)
    shown = [str(error), repr(error), error.body_excerpt, repr(error.headers)]
    assert "<redacted>" in error.body_excerpt
    assert all(API_KEY not in text for text in shown)
    assert API_KEY not in journal.read_text()


async def test_deeply_nested_answer_is_a_validation_error(client, api):
    """A 2xx nested 100,000 deep is a ResponseValidationError, not a RecursionError."""
    api.get("/chats/1").respond(200, content=b"[" * 100_000 + b"]" * 100_000)

    with pytest.raises(hc.ResponseValidationError, match="nested deeper"):
        await client.chats.get(1)


async def test_answer_with_a_huge_timestamp_exponent_is_refused_at_once(client, api):
    """A timestamp of "1e999999999" is refused, never made into a billion-digit integer."""
    api.get("/chats/1").respond(200, json=chat_payload(1, closedAt="1e999999999"))

    with pytest.raises(hc.ResponseValidationError, match=r"chat\.closedAt"):
        await client.chats.get(1)


@pytest.mark.parametrize(
    ("text", "expected"), [("120/60", (120, 60.0)), ("40/2.5", (40, 2.5)), ("1/0.1", (1, 0.1))]
)
def test_a_rate_reads_as_n_per_s(text, expected):
    """`N/S` is read the same way by the CLI and the emulator."""
    from helpcrunch_async._config import parse_rate  # noqa: PLC0415

    assert expected == parse_rate(text)


@pytest.mark.parametrize("text", ["120", "120/", "/60", "a/b", "0/60", "10/0", "10/nan", "1/2/3"])
def test_a_bad_rate_is_a_value_error_naming_the_form(text):
    """Anything but two positive numbers around one slash is refused, showing the form."""
    from helpcrunch_async._config import parse_rate  # noqa: PLC0415

    with pytest.raises(ValueError, match="N/S"):
        parse_rate(text)


def test_a_client_used_from_a_second_event_loop_says_so(api):
    """A second asyncio.run() with the same client is a clear RuntimeError, not a hang."""
    import asyncio  # noqa: PLC0415 - this test is about asyncio's loops

    api.put("/chats/status").mock(side_effect=status_echo)
    client = hc.HelpCrunch(API_KEY, base_url=BASE_URL, rate_limit=None)

    asyncio.run(client.chats.update_status(1, "closed"))
    with pytest.raises(RuntimeError) as info:
        asyncio.run(client.chats.update_status(2, "closed"))
    assert (
        "this HelpCrunch client was first used in another event loop (another asyncio.run() or"
        " thread): create one client per event loop"
    ) == str(info.value)
    assert 1 == client.stats().requests


def test_a_client_used_from_another_thread_says_so(api):
    """A thread running its own loop gets the same clear RuntimeError."""
    import asyncio  # noqa: PLC0415 - this test is about asyncio's loops
    import threading  # noqa: PLC0415

    api.put("/chats/status").mock(side_effect=status_echo)
    client = hc.HelpCrunch(API_KEY, base_url=BASE_URL, rate_limit=None)
    asyncio.run(client.chats.update_status(1, "closed"))
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            asyncio.run(client.chats.update_status(2, "closed"))
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(timeout=30)

    assert 1 == len(errors)
    assert "another event loop" in str(errors[0])
