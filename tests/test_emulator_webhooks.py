"""The emulator's new endpoints and webhooks, over real loopback sockets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import anyio
import httpx
import pytest
from click.testing import CliRunner

import helpcrunch_async as hc
from helpcrunch_async._cli._commands import cli
from helpcrunch_async.emulator import EmulatorConfig, create_app, serve
from helpcrunch_async.webhooks import ChatEventData, MessageEventData
from tests.webhook_receiver import WAIT_TIMEOUT, webhook_receiver

pytestmark = [pytest.mark.anyio, pytest.mark.emulator]

FIRST = 5_215_700
KEY = "emulator-webhook-key-DO-NOT-LEAK"


def connect(emulator) -> hc.HelpCrunch:
    return hc.HelpCrunch(
        emulator.api_key, base_url=emulator.base_url, rate_limit=None, retry=hc.Retry(backoff=0)
    )


def config(url: str, **kwargs) -> EmulatorConfig:
    kwargs.setdefault("webhook_backoff", 0.01)
    return EmulatorConfig(
        chats=5, rate_limit=None, webhook_url=url, webhook_signing_key=KEY, **kwargs
    )


async def wait_for(receiver, count: int, *, tried: bool = False):
    return await anyio.to_thread.run_sync(lambda: receiver.wait_for(count, tried=tried))


async def until(condition: Callable[[], object]) -> None:
    """Wait for a condition on the emulator's thread, where no anyio.Event can reach."""
    with anyio.fail_after(WAIT_TIMEOUT):
        while not condition():  # noqa: ASYNC110 - state of another thread's event loop
            await anyio.sleep(0.01)


async def test_every_applied_change_is_sent_signed_in_order(anyio_backend):
    """New chat, status, close, assignee, snooze, unsnooze and messages each POST their event."""
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    with webhook_receiver(KEY) as (url, receiver):
        async with serve(config(url)) as emulator, connect(emulator) as client:
            chat = await client.chats.create(customer=1001, application=1)
            await client.chats.update_status(chat.id, "pending")
            await client.chats.update_assignee(chat.id, 4)
            await client.chats.snooze(chat.id, later)
            await client.chats.snooze(chat.id, None)
            await client.messages.create(chat.id, "I need a refund")
            await client.messages.create(chat.id, "On it", agent_id=4)
            await client.messages.create(chat.id, "VIP customer", agent_id=4, private=True)
            await client.chats.update_department(chat.id, 2)  # no documented event for it
            await client.chats.update_status(chat.id, "closed")
            events = await wait_for(receiver, 10)

    assert [
        "chat.new",
        "chat.status_updated",
        "chat.assigned",
        "chat.snoozed",
        "chat.unsnoozed",
        "message.chat.customer",
        "message.chat.agent",
        "message.private",
        "chat.status_updated",
        "chat.closed",
    ] == [e.type for e in events]
    assert {chat.id} == {e.data.chat_id for e in events}
    assert len(events) == len({e.id for e in events})
    assert {0} == {e.attempts for e in events}  # first deliveries, as HelpCrunch counts
    status, assigned, snoozed = events[1].data, events[2].data, events[3].data
    assert isinstance(status, ChatEventData)
    assert isinstance(assigned, ChatEventData)
    assert isinstance(snoozed, ChatEventData)
    assert (hc.ChatStatus.PENDING, "status") == (status.chat.status, status.changed)
    assert (hc.AgentRole.SUPERVISER, "assignee") == (
        assigned.chat.assignee.role if assigned.chat.assignee else None,
        assigned.changed,
    )
    assert int(later.timestamp()) == int(snoozed.chat.snoozed_until.timestamp())  # type: ignore[union-attr]
    customer_says, agent_says = events[5].data, events[6].data
    assert isinstance(customer_says, MessageEventData)
    assert isinstance(agent_says, MessageEventData)
    assert ("I need a refund", None) == (
        customer_says.message.text if customer_says.message else None,
        customer_says.agent,
    )
    assert 4 == (agent_says.agent.id if agent_says.agent else None)


async def test_failed_deliveries_are_redelivered_with_the_same_id(anyio_backend):
    """A receiver that answers 500 twice gets the event a third time: same id, attempts 2."""
    with webhook_receiver(KEY, failures=2) as (url, receiver):
        async with serve(config(url)) as emulator, connect(emulator) as client:
            await client.chats.update_status(FIRST, "pending")
            [event] = await wait_for(receiver, 1)

    assert [(event.id, 0), (event.id, 1), (event.id, 2)] == receiver.tried
    assert 2 == event.attempts
    assert event.is_redelivery


async def test_redelivery_stops_after_the_configured_attempts(anyio_backend):
    """An event that never gets through is tried webhook_attempts times, then given up."""
    with webhook_receiver(KEY, failures=100) as (url, receiver):
        async with serve(config(url, webhook_attempts=3)) as emulator, connect(emulator) as client:
            await client.chats.update_status(FIRST, "pending")
            sender = emulator.state.webhooks
            assert sender is not None
            await until(lambda: sender.given_up)

    assert [0, 1, 2] == [attempts for _, attempts in receiver.tried]
    assert (0, 1) == (sender.delivered, sender.given_up)


async def test_wrongly_keyed_deliveries_are_refused_by_the_receiver(anyio_backend):
    """A receiver with another key refuses every delivery (401): none is handled."""
    with webhook_receiver("another-key") as (url, receiver):
        async with serve(config(url, webhook_attempts=2)) as emulator, connect(emulator) as client:
            await client.chats.update_status(FIRST, "pending")
            sender = emulator.state.webhooks
            assert sender is not None
            await until(lambda: sender.given_up)

    assert [] == receiver.tried


async def test_an_unreachable_receiver_never_blocks_the_api(anyio_backend):
    """With nobody listening at the webhook URL, every API call still answers."""
    with webhook_receiver(KEY) as (url, _):
        pass  # the receiver is gone: its port now refuses connections
    async with serve(config(url)) as emulator, connect(emulator) as client:
        for status in ("pending", "opened", "closed"):
            chat = await client.chats.update_status(FIRST, status)

    assert hc.ChatStatus.CLOSED is chat.status


@pytest.mark.parametrize("style", ["spec", "legacy"])
async def test_agents_departments_and_messages_endpoints(anyio_backend, style):
    """The new resources work against the emulator in both payload styles."""
    async with serve(EmulatorConfig(chats=3, rate_limit=None, payload_style=style)) as emulator:
        async with connect(emulator) as client:
            agents = [a async for a in client.agents.list(page_size=2)]
            departments = [d async for d in client.departments.list()]
            posted = await client.messages.create(FIRST, "Hello from the bot", agent_id=2)
            history = [m async for m in client.chats.messages(FIRST)]
            with pytest.raises(hc.NotFoundError, match="Agent not found"):
                await client.messages.create(FIRST, "hi", agent_id=99)
            with pytest.raises(hc.NotFoundError):
                await client.messages.create(1, "hi")

    assert [1, 2, 3, 4, 5] == [a.id for a in agents]
    assert set(hc.AgentRole) == {a.role for a in agents}
    assert {"Support": [1, 2, 3], "Billing": [1, 4, 5]} == {
        d.name: [a.id for a in d.agents] for d in departments
    }
    assert ("Hello from the bot", "agent") == (posted.text, posted.sender)
    assert posted.id == history[-1].id


async def test_refusals_keep_their_exact_bytes():
    """Errors raised deep in a handler render exactly as the API's error bodies."""
    app, _ = create_app(EmulatorConfig(chats=2, rate_limit=None))
    headers = {"Authorization": "Bearer emulator-key"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emu") as http:
        not_json = await http.put("/v1/chats/status", content=b"{", headers=headers)
        missing = await http.get("/v1/chats/1", headers=headers)
        bad_limit = await http.get("/v1/chats?limit=0", headers=headers)

    assert (400, b'{"errors":[{"code":"invalid_request","message":"Body is not valid JSON"}]}') == (
        not_json.status_code,
        not_json.content,
    )
    assert (404, b'{"errors":[{"code":"chat_not_found","message":"Chat not found"}]}') == (
        missing.status_code,
        missing.content,
    )
    assert (400, b'{"errors":[{"code":"limit","message":"limit must be between 1 and 100"}]}') == (
        bad_limit.status_code,
        bad_limit.content,
    )


def test_webhook_settings_are_validated_and_the_key_hidden():
    """A non-http URL or an empty key is refused; the key never shows in the config's repr."""
    assert KEY not in repr(config("http://127.0.0.1:9/hooks"))
    with pytest.raises(ValueError, match="webhook_url"):
        EmulatorConfig(webhook_url="ftp://example.com")
    with pytest.raises(ValueError, match="webhook_signing_key"):
        EmulatorConfig(webhook_signing_key=" ")
    with pytest.raises(ValueError):
        EmulatorConfig(webhook_attempts=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webhook-url", "ftp://127.0.0.1/hooks"], "webhook_url"),
        (["--webhook-url", "http://127.0.0.1:9/hooks", "--webhook-signing-key", " "], "key"),
    ],
)
def test_cli_emulator_refuses_bad_webhook_settings(args, message):
    """`helpcrunch emulator` reports bad webhook options as usage errors, key unechoed."""
    result = CliRunner().invoke(cli, ["emulator", *args])

    assert 2 == result.exit_code
    assert message in result.output


async def test_emulator_message_and_department_refusals():
    """Bad message bodies and unknown departments get the documented refusals."""
    app, state = create_app(EmulatorConfig(chats=2, rate_limit=None))
    headers = {"Authorization": "Bearer emulator-key"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emu/v1") as http:
        answers = [
            await http.post("/messages", json=body, headers=headers)
            for body in (
                {"chat": "x", "text": "hi"},
                {"chat": FIRST, "text": ""},
                {"chat": FIRST, "text": "hi", "type": "email"},
                {"chat": FIRST, "text": "hi", "agent": 99},
            )
        ]
        department = await http.get("/departments/2", headers=headers)
        missing = await http.get("/departments/99", headers=headers)

    assert [
        (400, "invalid_chat_value"),
        (400, "text"),
        (400, "type"),
        (404, "entity_not_found"),
    ] == [(a.status_code, a.json()["errors"][0]["code"]) for a in answers]
    assert {} == state.messages
    assert ("Billing", [1, 4, 5]) == (
        department.json()["name"],
        [a["id"] for a in department.json()["agents"]],
    )
    assert (404, "Department not found") == (
        missing.status_code,
        missing.json()["errors"][0]["message"],
    )


async def test_events_are_dropped_and_counted_when_the_sender_is_not_running():
    """Served without its lifespan, the app still answers; its events are dropped, counted."""
    app, state = create_app(config("http://127.0.0.1:9/hooks"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emu/v1") as http:
        answer = await http.put(
            "/chats/status",
            json={"id": FIRST, "status": "closed"},
            headers={"Authorization": "Bearer emulator-key"},
        )

    assert 200 == answer.status_code
    assert state.webhooks is not None
    assert (2, 0) == (state.webhooks.dropped, state.webhooks.delivered)
