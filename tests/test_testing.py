"""The test kit's fixtures, used by this suite as a user's suite uses them.

How a user's project runs them (pytest-asyncio, anyio, no extra) is tests/test_testing_projects.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import helpcrunch_async as hc
from helpcrunch_async.emulator import Faults, ReceivedRequest, ServerLimit, serve
from helpcrunch_async.emulator._recording import MAX_RECORDED_BODY
from helpcrunch_async.emulator._server import serving
from helpcrunch_async.testing import EmulatorFixture
from helpcrunch_async.webhooks import (
    ChatEventData,
    MessageEventData,
    WebhookEndpoint,
    WebhookEvent,
)
from tests.webhook_receiver import webhook_receiver

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

pytestmark = [pytest.mark.anyio, pytest.mark.emulator]

FIRST = 5_215_700
HOOKS = "/helpcrunch/webhooks"


def webhook_app(emulator: EmulatorFixture, seen: list[WebhookEvent]) -> Starlette:
    """A user's app: a WebhookEndpoint that records what it is given."""

    async def handle(event: WebhookEvent) -> None:
        seen.append(event)

    endpoint = WebhookEndpoint(handle, signing_key=emulator.webhooks.signing_key)
    return Starlette(routes=[Route(HOOKS, endpoint, methods=["POST"])])


async def test_requests_are_recorded_in_order_as_sent(helpcrunch_client, helpcrunch_emulator):
    """Method, path relative to the API root, query and JSON body, with the status answered."""
    await helpcrunch_client.chats.update_status(FIRST, "closed")
    await helpcrunch_client.request("GET", "/agents", params={"offset": 0, "limit": 2})

    assert [
        ReceivedRequest("PUT", "/chats/status", {}, {"id": FIRST, "status": "closed"}, 200),
        ReceivedRequest("GET", "/agents", {"offset": "0", "limit": "2"}, None, 200),
    ] == helpcrunch_emulator.requests


async def test_refused_requests_are_recorded_with_their_status(helpcrunch_emulator):
    """A wrong key (401), a body that is not JSON (400), a path outside the API, a huge body."""
    wrong = helpcrunch_emulator.client(api_key="wrong-key", max_retries=0)
    with pytest.raises(hc.AuthenticationError):
        await wrong.chats.get(FIRST)
    headers = {"Authorization": f"Bearer {helpcrunch_emulator.api_key}"}
    async with httpx.AsyncClient(base_url=helpcrunch_emulator.base_url, headers=headers) as http:
        await http.put("/chats/status", content=b"{not json")
        await http.get(helpcrunch_emulator.base_url.removesuffix("/v1") + "/elsewhere")

        await http.put("/chats/status", json={"id": FIRST, "text": "x" * MAX_RECORDED_BODY})

    assert [
        ("GET", f"/chats/{FIRST}", None, 401),
        ("PUT", "/chats/status", None, 400),
        ("GET", "/elsewhere", None, 404),
        ("PUT", "/chats/status", None, 400),  # a body too large to keep
    ] == [(r.method, r.path, r.json, r.status) for r in helpcrunch_emulator.requests]


@pytest.mark.helpcrunch_emulator(rate_limit=ServerLimit(2, 60.0))
async def test_a_429_is_recorded_and_counted(helpcrunch_emulator):
    """Over the emulator's limit: the request is recorded, answered 429, and counted."""
    client = helpcrunch_emulator.client(rate_limit=None, max_retries=0)
    await client.chats.get(FIRST)
    await client.chats.get(FIRST)
    with pytest.raises(hc.RateLimitError):
        await client.chats.get(FIRST)

    assert [200, 200, 429] == [r.status for r in helpcrunch_emulator.requests]
    assert {"requests": 3, "rejected": 1, "max_in_window": 3} == helpcrunch_emulator.stats()


@pytest.mark.helpcrunch_emulator(rate_limit="3/60")
async def test_the_client_fixture_follows_the_emulators_limit(helpcrunch_client):
    """With a limit on the emulator, helpcrunch_client has the same one as its rate limit."""
    assert hc.RateLimit(3, 60.0) == helpcrunch_client.limiter.limit


async def test_the_client_fixture_has_no_limit_by_default(helpcrunch_client, helpcrunch_emulator):
    """No limit on the emulator, none on the client: tests do not wait."""
    assert helpcrunch_emulator.config.rate_limit is None
    assert helpcrunch_client.limiter is None


@pytest.mark.helpcrunch_emulator(chats=3, payload_style="legacy", error_style="newer")
async def test_reset_starts_afresh_with_changed_settings(helpcrunch_client, helpcrunch_emulator):
    """reset() forgets the test's changes and requests, and keeps the marker's other settings."""
    created = await helpcrunch_client.chats.create(customer=1, application=1)

    helpcrunch_emulator.reset(chats=2)

    assert created.id not in helpcrunch_emulator.state.chats
    assert [] == helpcrunch_emulator.requests
    assert 2 == len(helpcrunch_emulator.state.chats)
    assert ("legacy", "newer") == (
        helpcrunch_emulator.config.payload_style,
        helpcrunch_emulator.config.error_style,
    )
    again = await helpcrunch_client.chats.create(customer=1, application=1)
    assert created.id - 1 == again.id  # two seeded chats now, not three


def test_reset_refuses_what_the_kit_does_not_take(helpcrunch_emulator):
    """Unknown settings, the key, webhooks to a URL and bad values: refused, nothing reset."""
    with pytest.raises(TypeError, match="not api_key, webhook_url"):
        helpcrunch_emulator.reset(api_key="other", webhook_url="http://127.0.0.1:9/")
    with pytest.raises(ValueError, match="payload_style must be 'spec' or 'legacy'"):
        helpcrunch_emulator.reset(payload_style="modern")
    with pytest.raises(TypeError, match="faults must be a Faults"):
        helpcrunch_emulator.reset(faults={"server_errors": 0.5})
    with pytest.raises(ValueError, match="N/S"):
        helpcrunch_emulator.reset(rate_limit="fast")

    assert "spec" == helpcrunch_emulator.config.payload_style


@pytest.mark.helpcrunch_emulator(faults=Faults(server_errors=1.0))
async def test_faults_reach_the_client(helpcrunch_emulator):
    """Every answer a 5xx: the client retries, then fails; each attempt is recorded."""
    client = helpcrunch_emulator.client(max_retries=2)

    with pytest.raises(hc.ServerError):
        await client.chats.get(FIRST)

    assert 3 == len(helpcrunch_emulator.requests)


async def test_clients_are_closed_after_the_test(helpcrunch_client, helpcrunch_emulator):
    """What close() does after each test: a client used afterwards says it is closed."""
    await helpcrunch_client.chats.get(FIRST)

    helpcrunch_emulator.close()

    with pytest.raises(hc.ClientClosedError):
        await helpcrunch_client.chats.get(FIRST)


async def test_the_events_a_change_causes_are_kept(helpcrunch_client, helpcrunch_emulator):
    """Each change's events, in order, as HelpCrunch's envelopes."""
    await helpcrunch_client.chats.update_status(FIRST, "closed")
    await helpcrunch_client.chats.update_assignee(FIRST + 1, 2)

    events = helpcrunch_emulator.webhooks.events

    assert ["chat.status_updated", "chat.closed", "chat.assigned"] == [e["event"] for e in events]
    assert [FIRST, FIRST, FIRST + 1] == [e["eventData"]["id"] for e in events]


async def test_deliver_gives_the_app_each_event_once_signed(helpcrunch_client, helpcrunch_emulator):
    """Deliveries go in order, verified by the app's endpoint; a second call has nothing new."""
    seen: list[WebhookEvent] = []
    app = webhook_app(helpcrunch_emulator, seen)
    await helpcrunch_client.chats.update_status(FIRST, "closed")

    answers = await helpcrunch_emulator.webhooks.deliver(HOOKS, app=app)
    again = await helpcrunch_emulator.webhooks.deliver(HOOKS, app=app)
    await helpcrunch_client.chats.update_status(FIRST, "opened")
    later = await helpcrunch_emulator.webhooks.deliver(HOOKS, app=app)

    assert [200, 200] == [answer.status_code for answer in answers]
    assert [] == again
    assert [200] == [answer.status_code for answer in later]
    assert ["chat.status_updated", "chat.closed", "chat.status_updated"] == [e.type for e in seen]
    assert [0, 0, 0] == [event.attempts for event in seen]  # first deliveries
    assert isinstance(seen[-1].data, ChatEventData)
    assert hc.ChatStatus.OPENED is seen[-1].data.chat.status


async def test_a_redelivery_counts_its_attempts(helpcrunch_client, helpcrunch_emulator):
    """An event delivered again keeps its id and says it was tried once before."""
    seen: list[WebhookEvent] = []
    app = webhook_app(helpcrunch_emulator, seen)
    await helpcrunch_client.chats.snooze(FIRST, None)
    await helpcrunch_emulator.webhooks.deliver(HOOKS, app=app)

    await helpcrunch_emulator.webhooks.deliver(
        HOOKS, app=app, events=helpcrunch_emulator.webhooks.events
    )

    assert [(seen[0].id, 0), (seen[0].id, 1)] == [(e.id, e.attempts) for e in seen]
    assert (False, True) == (seen[0].is_redelivery, seen[1].is_redelivery)


async def test_an_event_of_your_own_is_wrapped_and_signed(helpcrunch_emulator):
    """envelope() makes a HelpCrunch envelope of any data; it is not one the emulator caused."""
    seen: list[WebhookEvent] = []
    app = webhook_app(helpcrunch_emulator, seen)
    custom = helpcrunch_emulator.webhooks.envelope("survey.answered", {"score": 9})

    [answer] = await helpcrunch_emulator.webhooks.deliver(HOOKS, app=app, events=[custom])

    assert 200 == answer.status_code
    [event] = seen
    assert ("survey.answered", {"score": 9}) == (event.type, event.data)
    assert [] == helpcrunch_emulator.webhooks.events


async def test_a_wrongly_keyed_app_refuses_the_deliveries(helpcrunch_client, helpcrunch_emulator):
    """The signature is real: an app with another key answers 401."""

    async def handle(_: WebhookEvent) -> None:
        raise AssertionError("not verified, never handled")

    app = WebhookEndpoint(handle, signing_key="another-key")
    await helpcrunch_client.chats.update_assignee(FIRST, 3)

    [answer] = await helpcrunch_emulator.webhooks.deliver("/", app=app)

    assert 401 == answer.status_code


@pytest.mark.helpcrunch_emulator(webhook_signing_key="the-apps-own-key")
async def test_deliveries_are_signed_with_the_key_the_test_sets(
    helpcrunch_client, helpcrunch_emulator
):
    """An app with a key of its own: the test gives the emulator that key, never shown."""
    seen: list[WebhookEvent] = []
    app = webhook_app(helpcrunch_emulator, seen)
    await helpcrunch_client.chats.update_assignee(FIRST, 3)

    [answer] = await helpcrunch_emulator.webhooks.deliver(HOOKS, app=app)

    assert 200 == answer.status_code
    assert "the-apps-own-key" == helpcrunch_emulator.webhooks.signing_key
    assert "the-apps-own-key" not in repr(helpcrunch_emulator)


async def test_an_app_that_raises_fails_the_delivery_with_its_error(
    helpcrunch_client, helpcrunch_emulator
):
    """A bug in the app is the test's error, not a 500 to assert on."""

    async def broken(_: httpx.Request) -> PlainTextResponse:
        raise LookupError("the app's own bug")

    app = Starlette(routes=[Route(HOOKS, broken, methods=["POST"])])
    await helpcrunch_client.chats.update_status(FIRST, "closed")

    with pytest.raises(LookupError, match="the app's own bug"):
        await helpcrunch_emulator.webhooks.deliver(HOOKS, app=app)


async def test_deliveries_reach_a_url(helpcrunch_client, helpcrunch_emulator):
    """Without an app, events are POSTed to a URL, signed the same way."""
    with webhook_receiver(helpcrunch_emulator.webhooks.signing_key) as (url, receiver):
        await helpcrunch_client.messages.create(FIRST, "Where is my parcel?")

        [answer] = await helpcrunch_emulator.webhooks.deliver(url)

    assert 200 == answer.status_code
    [event] = receiver.events
    assert isinstance(event.data, MessageEventData)
    assert ("message.chat.customer", FIRST) == (event.type, event.data.chat_id)


async def test_deliver_refuses_bad_arguments_before_sending(helpcrunch_emulator):
    """A path without an app, an app that is not one, events that are not envelopes."""
    webhooks = helpcrunch_emulator.webhooks

    with pytest.raises(ValueError, match="http"):
        await webhooks.deliver(HOOKS)
    with pytest.raises(TypeError, match="ASGI app"):
        await webhooks.deliver(HOOKS, app="app")
    with pytest.raises(TypeError, match="envelopes"):
        await webhooks.deliver("http://127.0.0.1:9/", events=[{"event": "chat.new"}])
    with pytest.raises(TypeError, match="data must be a mapping"):
        webhooks.envelope("chat.new", [1])


async def test_env_points_a_client_of_your_own_at_the_emulator(helpcrunch_emulator, monkeypatch):
    """Code that makes its own client from the environment reaches the test's emulator."""
    for name, value in helpcrunch_emulator.env.items():
        monkeypatch.setenv(name, value)

    async with hc.HelpCrunch(rate_limit=None) as client:
        await client.chats.get(FIRST)

    assert [("GET", f"/chats/{FIRST}")] == [
        (r.method, r.path) for r in helpcrunch_emulator.requests
    ]


async def test_a_served_emulator_records_requests_too(anyio_backend):
    """RunningEmulator.requests: the recording is the emulator's, not only the kit's."""
    async with (
        serve() as emulator,
        hc.HelpCrunch(emulator.api_key, base_url=emulator.base_url, rate_limit=None) as client,
    ):
        [department async for department in client.departments.list()]

        assert [("GET", "/departments")] == [(r.method, r.path) for r in emulator.requests]


def test_a_server_that_cannot_start_is_reported():
    """An app whose startup fails stops the server: serving() says so instead of hanging."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "lifespan" == scope["type"]
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(RuntimeError, match="failed to start"), serving(app):
        pass


async def test_the_kit_answers_any_event_loop(helpcrunch_emulator, anyio_backend):
    """The session's server lives on its own loop: calls from a worker thread's loop work too."""

    async def elsewhere() -> int:
        async with hc.HelpCrunch(
            helpcrunch_emulator.api_key, base_url=helpcrunch_emulator.base_url, rate_limit=None
        ) as client:
            return (await client.chats.get(FIRST)).id

    assert FIRST == await anyio.to_thread.run_sync(anyio.run, elsewhere)
