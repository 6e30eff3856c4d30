"""The SDK against the emulator over real loopback sockets (and once on a virtual clock)."""

from __future__ import annotations

import logging
import math

import anyio
import httpx
import pytest
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, Faults, ServerLimit, create_app, serve

pytestmark = [pytest.mark.anyio, pytest.mark.emulator]

FIRST = 5_215_700


def connect(emulator, **kwargs) -> hc.HelpCrunch:
    kwargs.setdefault("rate_limit", None)
    kwargs.setdefault("retry", hc.Retry(backoff=0))
    return hc.HelpCrunch(emulator.api_key, base_url=emulator.base_url, **kwargs)


async def test_update_status_over_a_real_socket(anyio_backend):
    """A status PUT crosses a real socket and comes back as a typed Chat."""
    async with serve(EmulatorConfig(chats=5, rate_limit=None)) as emulator:
        async with connect(emulator) as client:
            chat = await client.chats.update_status(FIRST, "closed")

    assert hc.ChatStatus.CLOSED is chat.status
    assert chat.closed_at is not None
    assert "agent" == chat.closed_by
    assert chat.customer is not None
    assert "@example.com" in (chat.customer.email or "")
    assert emulator.base_url.startswith("http://127.0.0.1:")


async def test_legacy_server_takes_only_its_on_hold_spelling(anyio_backend):
    """Against the legacy payload style the client falls back to "on hold" and parses strings."""
    config = EmulatorConfig(chats=5, rate_limit=None, payload_style="legacy", error_style="newer")
    async with serve(config) as emulator, connect(emulator) as client:
        first = await client.chats.update_status(FIRST, "on-hold")
        second = await client.chats.update_status(FIRST + 1, hc.ChatStatus.ON_HOLD)
        stats = client.stats()

    assert hc.ChatStatus.ON_HOLD is first.status is second.status
    assert 1 == len(first.agents)
    assert isinstance(first.raw["createdAt"], str)
    assert first.created_at is not None
    assert 3 == stats.requests  # "on-hold" rejected once, then "on hold" remembered


@pytest.mark.parametrize("style", ["older", "newer"])
async def test_documented_errors_over_the_wire(anyio_backend, style):
    """401 and 404 arrive in either error style and map to their classes."""
    async with serve(EmulatorConfig(chats=5, rate_limit=None, error_style=style)) as emulator:
        async with connect(emulator) as client:
            with pytest.raises(hc.NotFoundError, match=r"not_found|chat_not_found"):
                await client.chats.update_status(1, "closed")
        async with hc.HelpCrunch("wrong-key", base_url=emulator.base_url) as client:
            with pytest.raises(hc.AuthenticationError, match=r"invalid_token|unauthorized"):
                await client.chats.update_status(FIRST, "closed")


async def test_strict_server_limit_answers_429_and_counts_rejections(anyio_backend):
    """Unlimited clients are told 429 past the limit, and rejected requests still count."""
    async with serve(EmulatorConfig(chats=5, rate_limit=ServerLimit(3, 60.0))) as emulator:
        async with connect(emulator, max_retries=0) as client:
            for _ in range(3):
                await client.chats.update_status(FIRST, "closed")
            with pytest.raises(hc.RateLimitError, match="too_many_requests"):
                await client.chats.update_status(FIRST, "closed")

    assert {"requests": 4, "rejected": 1, "max_in_window": 4} == emulator.stats()


@pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
async def test_client_limiter_keeps_under_a_strict_server(anyio_backend):
    """With a matching RateLimit, a burst of concurrent calls never meets a 429.

    The emulator's own app (its front door and sliding window) runs in this event loop, through
    httpx's ASGI transport, on trio's virtual clock: the server stamps each request at the
    moment the limiter let it go. Over real sockets the emulator's thread stamps it when it
    gets to it, on a loaded machine tenths of a second later by amounts that vary: that would
    test the machine's load, not the limiter.
    """
    server = ServerLimit(10, 0.5)
    app, state = create_app(EmulatorConfig(chats=40, rate_limit=server))
    limit = hc.RateLimit(requests=10, per=0.5, burst=5, margin=0.25)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http,
        hc.HelpCrunch(
            state.config.api_key,
            base_url="http://127.0.0.1/v1",  # never dialled: the ASGI transport answers
            rate_limit=limit,
            retry=hc.Retry(backoff=0),
            http_client=http,
        ) as client,
    ):
        result = await client.chats.bulk_update_status(
            range(FIRST, FIRST + 30), "closed", concurrency=10
        )

    assert 30 == len(result.succeeded)
    assert 0 == state.stats()["rejected"]
    # Bulk work leaves the idle-key burst to interactive calls: at the steady pace (one
    # request per 0.075 s), a window of 0.5 s holds 7, under the server's 10.
    interval = (limit.per + limit.margin) / limit.requests
    assert math.floor(server.per / interval) + 1 == state.stats()["max_in_window"]


async def test_leaving_serve_ends_even_with_a_request_stuck_in_its_handler(anyio_backend):
    """A handler that would run for 10 minutes is cancelled when serve() ends: no hang."""
    with anyio.fail_after(120):  # a hang guard, far above the emulator's shutdown bound
        async with serve(EmulatorConfig(chats=5, faults=Faults(latency=600))) as emulator:
            headers = {"Authorization": f"Bearer {emulator.api_key}"}
            async with httpx.AsyncClient() as http:
                with anyio.move_on_after(0.5) as gave_up:  # the client leaves; the handler stays
                    await http.get(f"{emulator.base_url}/chats/{FIRST}", headers=headers)

    assert gave_up.cancelled_caught


async def test_bulk_survives_every_kind_of_fault(anyio_backend):
    """5xx, cut connections and truncated bodies are retried: every chat ends up closed."""
    faults = Faults(server_errors=0.1, dropped=0.1, truncated=0.1)
    config = EmulatorConfig(chats=60, rate_limit=None, faults=faults, seed=7)
    async with serve(config) as emulator, connect(emulator, max_retries=10) as client:
        result = await client.chats.bulk_update_status(range(FIRST, FIRST + 60), "closed")
        retries = client.stats().retries

    assert result.ok, result.failed
    assert 60 == len(result.succeeded)
    assert retries > 0
    assert all(chat["status"] == "closed" for chat in emulator.state.chats.values())


async def test_latency_is_injected_without_breaking_calls(anyio_backend):
    """Latency and jitter slow answers down but every call still returns."""
    config = EmulatorConfig(chats=3, rate_limit=None, faults=Faults(latency=0.01, jitter=0.01))
    async with serve(config) as emulator, connect(emulator) as client:
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(client.chats.update_status, FIRST + i, "pending")

    assert all(c["status"] == "pending" for c in emulator.state.chats.values())


async def test_key_absent_from_debug_logs_of_a_real_exchange(anyio_backend, caplog):
    """httpx and httpcore DEBUG logs of a full real request never contain the key."""
    caplog.set_level(logging.DEBUG)
    config = EmulatorConfig(chats=3, rate_limit=None, api_key="SECRET-emulator-key-123")
    async with serve(config) as emulator, connect(emulator) as client:
        await client.chats.update_status(FIRST, "closed")

    assert "httpcore" in caplog.text  # the trace was on
    assert "SECRET-emulator-key-123" not in caplog.text


async def test_emulator_rejects_malformed_requests(anyio_backend):
    """The emulator answers bad bodies with the documented 400 shape, never a crash."""
    async with serve(EmulatorConfig(chats=3, rate_limit=None)) as emulator:
        headers = {"Authorization": f"Bearer {emulator.api_key}"}
        async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as http:
            not_json = await http.put("/chats/status", content=b"{")
            bad_status = await http.put("/chats/status", json={"id": FIRST, "status": "nope"})
            no_status = await http.put("/chats/status", json={"id": FIRST})

    assert 400 == not_json.status_code == bad_status.status_code == no_status.status_code
    assert "invalid_chat_value" == bad_status.json()["errors"][0]["code"]


def test_server_limit_parses_n_per_s():
    """--rate-limit N/S is parsed, and nonsense is refused clearly."""
    assert ServerLimit(40, 2.0) == ServerLimit.parse("40/2")
    with pytest.raises(ValueError, match="N/S"):
        ServerLimit.parse("fast")


@pytest.mark.parametrize("style", ["spec", "legacy"])
async def test_whole_chats_resource_over_the_wire(anyio_backend, style):
    """Every chats endpoint works against the emulator, in both payload styles."""
    from datetime import datetime, timezone  # noqa: PLC0415

    config = EmulatorConfig(chats=130, rate_limit=None, payload_style=style)
    async with serve(config) as emulator:
        async with connect(emulator) as client:
            listed = [c async for c in client.chats.list(sort="createdAt", order="asc")]
            pending = [
                c
                async for c in client.chats.search(
                    [hc.Filter("chats.status", "=", hc.ChatStatus.PENDING)], page_size=10
                )
            ]
            either = [
                c.id
                async for c in client.chats.search(
                    [hc.Filter("chats.id", "=", FIRST), hc.Filter("chats.id", "=", FIRST + 1)],
                    comparison="OR",
                )
            ]
            fetched = await client.chats.get(FIRST)
            assigned = await client.chats.update_assignee(FIRST, 2)
            unassigned = await client.chats.update_assignee(FIRST, None)
            moved = await client.chats.update_department(FIRST, 2)
            until = datetime(2030, 1, 1, tzinfo=timezone.utc)
            snoozed = await client.chats.snooze(FIRST, until)
            woken = await client.chats.snooze(FIRST, None)
            created = await client.chats.create(customer=7, application=1, department=1)
            messages = [m async for m in client.chats.messages(FIRST, page_size=3)]
            with pytest.raises(hc.BadRequestError, match="department"):
                await client.chats.update_department(FIRST, 99)

    assert 130 == len(listed)
    created_at = [c.created_at for c in listed]
    assert created_at == sorted(created_at)  # type: ignore[type-var]
    expected = sum(
        c["status"] == "pending" for c in emulator.state.chats.values() if c["id"] != created.id
    )
    assert expected == len(pending)
    assert all(c.status is hc.ChatStatus.PENDING for c in pending)
    assert [FIRST, FIRST + 1] == sorted(either)
    assert FIRST == fetched.id
    assert assigned.assignee is not None
    assert 2 == assigned.assignee.id
    assert unassigned.assignee is None
    assert hc.Department(2, "Billing") == moved.department
    assert until == snoozed.snoozed_until
    assert woken.snoozed_until is None
    assert (hc.ChatStatus.NEW, 7) == (
        created.status,
        created.customer.id if created.customer else None,
    )
    assert 4 == len(messages)
    assert all(m.created_at is not None for m in messages)
