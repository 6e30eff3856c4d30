"""Customers, events, the account, ratings and read marks end to end: the SDK against the
emulator over real loopback sockets, in both documented payload styles."""

from __future__ import annotations

import json

import anyio
import pytest

import helpcrunch_async as hc
from helpcrunch_async.emulator import EmulatorConfig, serve
from helpcrunch_async.webhooks import ChatEventData, CustomerEventData
from tests.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.anyio, pytest.mark.emulator]

FIRST = 5_215_700
KEY = "emulator-webhook-key-DO-NOT-LEAK"
STYLES = pytest.mark.parametrize("style", ["spec", "legacy"])


def connect(emulator) -> hc.HelpCrunch:
    return hc.HelpCrunch(
        emulator.api_key, base_url=emulator.base_url, rate_limit=None, retry=hc.Retry(backoff=0)
    )


def emulated(style: str = "spec", **kwargs) -> EmulatorConfig:
    kwargs.setdefault("chats", 12)
    return EmulatorConfig(rate_limit=None, payload_style=style, **kwargs)  # type: ignore[arg-type]


@STYLES
async def test_seeded_customers_are_the_seeded_chats_customers(anyio_backend, style):
    """Every chat's customer is a listed customer, with the same name, email and user id."""
    async with serve(emulated(style)) as emulator, connect(emulator) as client:
        customers = {c.id: c async for c in client.customers.list()}
        chats = [chat async for chat in client.chats.list()]

    assert 12 == len(customers)
    for chat in chats:
        assert chat.customer is not None
        full = customers[chat.customer.id]
        assert (chat.customer.name, chat.customer.email, chat.customer.user_id) == (
            full.name,
            full.email,
            full.user_id,
        )
        assert full.first_seen is not None
        assert full.location is not None
        assert "plan" in full.custom_data


@STYLES
async def test_every_customer_operation_end_to_end(anyio_backend, style):
    """Create, get, update, replace, search, tag, untag and delete, in either payload style."""
    async with serve(emulated(style)) as emulator, connect(emulator) as client:
        ann = await client.customers.create(
            name="Ann",
            email="ann@example.com",
            user_id="u-ann",
            first_seen=1603885746,
            city="London",
            tags=["lead"],
            custom_data={"plan": "free", "seats": 2},
        )
        got = await client.customers.get(ann.id)
        patched = await client.customers.update(ann.id, phone="+1555", custom_data={"plan": "pro"})
        found = await client.customers.find(email="ann@example.com")
        by_user_id = [
            c.id async for c in client.customers.search(hc.Filter("customers.userId", "=", "u-ann"))
        ]
        tagged = await client.customers.tag(ann.id, [hc.Tag("vip", "#ff0000"), "lead"])
        by_tags = [
            c.id
            async for c in client.customers.search(
                hc.Filter("customers.tagsData", "=", ["vip", "lead"])
            )
        ]
        untagged = await client.customers.untag(ann.id, "lead")
        replaced = await client.customers.replace(ann.id, name="Annie")
        await client.customers.delete(ann.id)
        with pytest.raises(hc.NotFoundError):
            await client.customers.get(ann.id)

    assert got == ann
    assert ("London", "1603885746") == (
        ann.location.city if ann.location else None,
        str(int(ann.first_seen.timestamp())) if ann.first_seen else None,
    )
    assert ("+1555", {"plan": "pro", "seats": 2}) == (patched.phone, dict(patched.custom_data))
    assert [ann.id] == by_user_id == by_tags == [found.id if found else None]
    assert ("lead", "vip") == tagged.tag_names
    assert ("vip",) == untagged.tag_names
    assert ("Annie", None, None, {}) == (
        replaced.name,
        replaced.email,
        replaced.phone,
        dict(replaced.custom_data),
    )  # PUT: what it leaves out becomes null


@STYLES
async def test_batch_update_splits_and_applies_every_item(anyio_backend, style):
    """Twelve customers in one call: two requests, every one updated."""
    async with serve(emulated(style)) as emulator, connect(emulator) as client:
        ids = [c.id async for c in client.customers.list()]
        updated = await client.customers.batch_update({i: {"notes": f"note {i}"} for i in ids})
        after = {c.id: c.notes async for c in client.customers.list()}
        requests = emulator.stats()["requests"]

    assert sorted(ids) == sorted(c.id for c in updated)
    assert {i: f"note {i}" for i in ids} == after
    assert 1 + 2 + 1 == requests


async def test_a_user_id_in_use_is_a_bad_request_naming_it(anyio_backend):
    """The undocumented but observed invalid_userId_value comes back as a BadRequestError."""
    async with serve(emulated()) as emulator, connect(emulator) as client:
        customers = [c async for c in client.customers.list()]
        taken = customers[0].user_id
        with pytest.raises(hc.BadRequestError) as caught:
            await client.customers.create(name="Copy", user_id=taken)

    assert "invalid_userId_value" in caught.value.codes


async def test_a_customer_change_shows_on_its_chats(anyio_backend):
    """Renaming a customer renames the customer the chat shows."""
    async with serve(emulated()) as emulator, connect(emulator) as client:
        chat = await client.chats.get(FIRST)
        assert chat.customer is not None
        await client.customers.update(chat.customer.id, name="Renamed")
        again = await client.chats.get(FIRST)

    assert "Renamed" == (again.customer.name if again.customer else None)


@pytest.mark.parametrize("style", ["older", "newer"])
async def test_a_missing_customer_is_not_found_in_either_error_style(anyio_backend, style):
    """404 for a customer, an event's customer and an agent: NotFoundError every time."""
    async with serve(emulated(error_style=style)) as emulator, connect(emulator) as client:
        for call in (
            client.customers.get(1),
            client.customers.tag(1, "vip"),
            client.events.create(1, "Clicked"),
            client.agents.unsubscribe(99),
        ):
            with pytest.raises(hc.NotFoundError):
                await call


@STYLES
async def test_events_applications_and_the_organization(anyio_backend, style):
    """An event is recorded; applications list; the team's switch is read as set."""
    async with serve(emulated(style)) as emulator, connect(emulator) as client:
        customer, *_ = [c async for c in client.customers.list()]
        event = await client.events.create(customer.id, "Button Click", data={"clicks": 2})
        apps = [app async for app in client.applications.list()]
        online = await client.organization.get()
        emulator.state.organization["teamOnline"] = False
        offline = await client.organization.get()
        await client.agents.unsubscribe(1)

    assert ("Button Click", {"clicks": 2}) == (event.name, dict(event.data))
    assert [customer.id] == [e["customer"] for e in emulator.state.customer_events]
    assert 1 in {app.id for app in apps}
    assert (True, False) == (online.team_online, offline.team_online)
    assert {1} == emulator.state.unsubscribed_agents


@STYLES
async def test_a_closed_chat_is_rated_once(anyio_backend, style):
    """Open: refused; closed: rated; rated again: refused. Every refusal a BadRequestError."""
    async with serve(emulated(style)) as emulator, connect(emulator) as client:
        emulator.state.chats[FIRST]["rating"] = None
        with pytest.raises(hc.BadRequestError, match="closed"):
            await client.chats.rate(FIRST, "great")
        await client.chats.update_status(FIRST, "closed")
        rated = await client.chats.rate(FIRST, hc.ChatRating.VERY_POOR)
        with pytest.raises(hc.BadRequestError, match="already rated"):
            await client.chats.rate(FIRST, "perfect")

    assert hc.ChatRating.VERY_POOR is rated.rating


async def test_read_marks_set_and_clear(anyio_backend):
    """mark_read sets each flag, and read=False clears it."""
    async with serve(emulated()) as emulator, connect(emulator) as client:
        by_agent = await client.chats.mark_read(FIRST, by="agent", read=False)
        by_customer = await client.chats.mark_read(FIRST, by="customer")

    assert (False, True) == (by_agent.read_by_agent, by_customer.read_by_customer)


async def test_customer_webhooks_and_chat_rated_are_delivered(anyio_backend):
    """Each customer change POSTs its documented event; a rating POSTs chat.rated."""
    with webhook_receiver(KEY) as (url, receiver):
        config = emulated(webhook_url=url, webhook_signing_key=KEY, webhook_backoff=0.01)
        async with serve(config) as emulator, connect(emulator) as client:
            ann = await client.customers.create(name="Ann", email="a@example.com")
            await client.customers.update(ann.id, email="ann@example.com")
            await client.customers.tag(ann.id, "vip")
            await client.customers.update(ann.id, unsubscribed=True)
            await client.customers.update(ann.id, unsubscribed=False, blocked=True)
            await client.customers.update(ann.id, blocked=False)
            await client.customers.delete(ann.id)
            emulator.state.chats[FIRST]["rating"] = None
            await client.chats.update_status(FIRST, "closed")
            await client.chats.rate(FIRST, "great")
            events = await anyio.to_thread.run_sync(lambda: receiver.wait_for(11))

    customer_events = [e for e in events if isinstance(e.data, CustomerEventData)]
    assert [
        "customer.new",
        "customer.email_updated",
        "customer.tags_changed",
        "customer.unsubscribed",
        "customer.subscribed",
        "customer.blocked",
        "customer.unblocked",
        "customer.deleted",
    ] == [e.type for e in customer_events]
    assert {ann.id} == {e.data.id for e in customer_events if isinstance(e.data, CustomerEventData)}
    assert "ann@example.com" == customer_events[1].data.email  # type: ignore[union-attr]
    [rated] = [e for e in events if e.type == "chat.rated"]
    assert isinstance(rated.data, ChatEventData)
    assert "great" == rated.data.chat.rating


async def test_documented_requests_are_accepted_by_the_emulator(anyio_backend):
    """Every documented request body (ids swapped for seeded ones) is one the emulator takes."""
    from tests.test_documented_examples import example, examples  # noqa: PLC0415

    async with serve(emulated(error_style="newer")) as emulator, connect(emulator) as client:
        seeded = [c.id async for c in client.customers.list()]
        sent = 0
        for name in examples("customers__") + examples("events__create__request"):
            if "__request__" not in name:
                continue
            body = json.loads(json.dumps(example(name)["body"]))
            body = _with_ids(body, seeded, name)
            method, path = _route(name, seeded[0])
            await client.request(method, path, json_body=body)
            sent += 1

    assert 18 == sent


def _with_ids(body, seeded: list[int], name: str):
    """A documented body with its customer ids (and user ids, unique) swapped for seeded ones."""
    if isinstance(body, list):
        return [
            {**item, "customer": seeded[i], "userId": f"{name}-{i}"}
            if "userId" in item
            else {**item, "customer": seeded[i]}
            for i, item in enumerate(body)
        ]
    if "customer" in body:
        body["customer"] = seeded[0]
    if "userId" in body:
        body["userId"] = f"{name}-user"
    return body


def _route(name: str, customer_id: int) -> tuple[str, str]:
    page = name.partition("__request__")[0]
    return {
        "customers__create": ("POST", "/customers"),
        "customers__update": ("PATCH", f"/customers/{customer_id}"),
        "customers__batch": ("PUT", "/customers/batch"),
        "customers__search": ("POST", "/customers/search"),
        "customers__tag": ("PUT", f"/customers/{customer_id}/tags"),
        "customers__untag": ("DELETE", f"/customers/{customer_id}/tags"),
        "events__create": ("POST", "/events"),
    }[page]


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("POST", "/customers", {"nickname": "x"}, "nickname"),
        ("POST", "/customers", {"name": 5}, "name"),
        ("POST", "/customers", {"firstSeen": "soon"}, "firstSeen"),
        ("POST", "/customers", {"blocked": "no"}, "blocked"),
        ("POST", "/customers", {"city": 5}, "city"),
        ("POST", "/customers", {"tags": "vip"}, "tags"),
        ("POST", "/customers", {"tags": [{"color": "#fff"}]}, "tags"),
        ("POST", "/customers", {"customData": "x"}, "customData"),
        ("POST", "/customers", {"customData": [{"value": 1}]}, "customData"),
        ("PUT", "/customers/batch", [], "invalid_request"),
        ("PUT", "/customers/batch", [{"customer": 1}] * 11, "invalid_request"),
        ("PUT", "/customers/batch", [7], "invalid_request"),
        ("PUT", "/customers/batch", [{"name": "x"}], "customer"),
        ("POST", "/customers/search", {"filter": []}, "filter"),
        (
            "POST",
            "/customers/search",
            {"filter": [{"field": "customers.id", "operator": "=="}]},
            "filter[0].operator",
        ),
        (
            "POST",
            "/customers/search",
            {"filter": [{"field": "customers.shoe", "operator": "="}]},
            "filter[0].field",
        ),
        (
            "POST",
            "/customers/search",
            {"filter": [{"field": "customers.tagsData", "operator": ">", "value": []}]},
            "filter[0].value",
        ),
        (
            "POST",
            "/customers/search",
            {
                "filter": [{"field": "customers.id", "operator": ">", "value": 1}],
                "sort": "customers.name",
            },
            "sort",
        ),
        ("POST", "/events", {"customer": "7", "name": "x"}, "customer"),
        ("POST", "/events", {"customer": 7, "name": " "}, "name"),
        ("POST", "/events", {"customer": 7, "name": "x", "data": [1]}, "data"),
        ("PUT", "/chats/rate", {"id": FIRST, "rating": "excellent"}, "rating"),
        ("PUT", "/chats/readByAgent", {"id": FIRST, "read": "yes"}, "read"),
    ],
)
async def test_the_emulator_refuses_what_the_api_would(anyio_backend, method, path, body, code):
    """A body the API would refuse is a 400 naming the field, as the newer error style does."""
    async with serve(emulated(error_style="newer")) as emulator, connect(emulator) as client:
        with pytest.raises(hc.BadRequestError) as caught:
            await client.request(method, path, json_body=body, idempotent=False)

    assert code == caught.value.codes[-1]


async def test_tagging_needs_a_tag_and_a_refused_write_changes_nothing(anyio_backend):
    """An empty tag list is refused; a write refused half-way leaves the customer as it was."""
    async with serve(emulated()) as emulator, connect(emulator) as client:
        customer_id = next(iter(emulator.state.customers))
        before = json.loads(json.dumps(emulator.state.customers[customer_id]))
        with pytest.raises(hc.BadRequestError):
            await client.request("PUT", f"/customers/{customer_id}/tags", json_body={"tags": []})
        with pytest.raises(hc.BadRequestError):
            await client.request(
                "PATCH", f"/customers/{customer_id}", json_body={"name": "New", "phone": 5}
            )

    assert before == emulator.state.customers[customer_id]
