"""client.customers, client.events, client.applications, client.organization and the chat
marks, against a mocked API: what is sent, what is refused before sending, what is retried."""

from __future__ import annotations

import contextlib
import json
import types
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpcrunch_async as hc
from tests.conftest import chat_payload

pytestmark = pytest.mark.anyio

UTC = timezone.utc


def customer_payload(customer_id: int = 7, **extra: Any) -> dict[str, Any]:
    """A customer in the newer pages' style."""
    return {
        "id": customer_id,
        "name": "Ann",
        "email": "ann@example.com",
        "userId": f"u-{customer_id}",
        "firstSeen": "1603885746",
        "tags": [{"name": "vip", "color": "#ff0000"}],
        "customData": {"plan": "pro"},
        **extra,
    }


def echo_customer(request: httpx.Request) -> httpx.Response:
    """Answer any customer write with a customer of the id in the path."""
    customer_id = int(request.url.path.split("/")[3])
    return httpx.Response(200, json=customer_payload(customer_id))


def body(route: Any, index: int = -1) -> Any:
    """The JSON body of a request a route got."""
    return json.loads(route.calls[index].request.content)


async def test_get_list_and_search_build_customers(client, api):
    """get, list (total at the top level) and search give Customers with snake_case fields."""
    api.get("/customers/7").respond(200, json=customer_payload(7))
    api.get("/customers").respond(200, json={"data": [customer_payload(8)], "total": 1})
    search = api.post("/customers/search").respond(200, json={"data": [], "total": 0})

    one = await client.customers.get(7)
    listed = [c async for c in client.customers.list(sort="customers.lastSeen", order="desc")]
    found = [c async for c in client.customers.search(hc.Filter("customers.email", "~", "ann"))]

    assert ("u-7", datetime(2020, 10, 28, 11, 49, 6, tzinfo=UTC)) == (one.user_id, one.first_seen)
    assert [8] == [c.id for c in listed]
    assert {"sort": "customers.lastSeen", "order": "desc", "offset": "0", "limit": "100"} == dict(
        api.calls[1].request.url.params
    )
    assert [] == found
    assert {
        "filter": [{"field": "customers.email", "operator": "~", "value": "ann"}],
        "comparison": "AND",
        "offset": 0,
        "limit": 100,
    } == body(search)


async def test_search_by_tags_and_any_condition(client, api):
    """A tag list filter goes as [{name}]; OR is passed on."""
    route = api.post("/customers/search").respond(200, json={"data": [], "total": 0})

    found = client.customers.search(
        [
            hc.Filter("customers.tagsData", "=", ["vip", hc.Tag("lead")]),
            hc.Filter("customers.userId", "=", "u-1"),
        ],
        comparison="OR",
    )
    assert [] == [c async for c in found]

    assert [{"name": "vip"}, {"name": "lead"}] == body(route)["filter"][0]["value"]
    assert "OR" == body(route)["comparison"]


async def test_writes_use_their_documented_methods(client, api):
    """create POSTs, update PATCHes, replace PUTs, delete DELETEs, untag DELETEs with a body."""
    create = api.post("/customers").respond(200, json=customer_payload(9))
    patch = api.patch("/customers/9").mock(side_effect=echo_customer)
    put = api.put("/customers/9").mock(side_effect=echo_customer)
    delete = api.delete("/customers/9").respond(200, text="Ok")
    tag = api.put("/customers/9/tags").mock(side_effect=echo_customer)
    untag = api.delete("/customers/9/tags").mock(side_effect=echo_customer)

    made = await client.customers.create(name="Ann", last_seen=datetime(2020, 1, 1, tzinfo=UTC))
    await client.customers.update(9, phone=None, unsubscribed=True)
    await client.customers.replace(9, name="Ann")
    await client.customers.tag(9, ["vip", hc.Tag("lead", "#ccc"), "vip"])
    await client.customers.untag(9, hc.Tag("lead", "#ccc"))
    await client.customers.delete(9)

    assert 9 == made.id
    assert {"name": "Ann", "lastSeen": "1577836800"} == body(create)
    assert {"phone": None, "unsubscribed": True} == body(patch)
    assert {"name": "Ann"} == body(put)
    assert {"tags": [{"name": "vip"}, {"name": "lead", "color": "#ccc"}]} == body(tag)
    assert {"tags": [{"name": "lead"}]} == body(untag)
    assert 1 == delete.call_count


async def test_custom_data_is_written_as_the_documented_list(client, api):
    """custom_data goes as [{property, value}], dates as Unix seconds in a string."""
    route = api.patch("/customers/7").mock(side_effect=echo_customer)

    await client.customers.update(
        7,
        custom_data={
            "Plan": "pro",
            "Seats": 3,
            "Paid": True,
            "Renews": datetime(2020, 1, 1, tzinfo=UTC),
            "Gone": None,
        },
    )

    assert [
        {"property": "Plan", "value": "pro"},
        {"property": "Seats", "value": 3},
        {"property": "Paid", "value": True},
        {"property": "Renews", "value": "1577836800"},
        {"property": "Gone", "value": None},
    ] == body(route)["customData"]


async def test_batch_update_sends_ten_at_a_time_in_order(client, api):
    """25 customers go as three requests of 10, 10 and 5, in the order given."""
    route = api.put("/customers/batch").mock(
        side_effect=lambda request: httpx.Response(
            200, json=[customer_payload(item["customer"]) for item in json.loads(request.content)]
        )
    )

    updated = await client.customers.batch_update({i: {"notes": f"n{i}"} for i in range(1, 26)})

    assert [10, 10, 5] == [len(body(route, i)) for i in range(3)]
    assert list(range(1, 26)) == [item["customer"] for i in range(3) for item in body(route, i)]
    assert {"customer": 1, "notes": "n1"} == body(route, 0)[0]
    assert list(range(1, 26)) == [c.id for c in updated]


@pytest.mark.parametrize(
    "answer",
    [{"content": b"Ok"}, {"json": {"data": []}}, {"json": {}}, {"content": b""}],
    ids=["ok-text", "empty-data", "empty-object", "no-body"],
)
async def test_batch_update_takes_any_answer(client, api, answer):
    """The answer is undocumented: any 2xx is a success, with whatever customers it holds."""
    api.put("/customers/batch").respond(200, **answer)

    assert [] == await client.customers.batch_update({1: {"name": "A"}})


async def test_a_failed_batch_request_leaves_the_later_ones_unsent(client, api):
    """The error of the second request is raised; the third is never sent."""
    route = api.put("/customers/batch").mock(
        side_effect=[httpx.Response(200, json=[]), httpx.Response(400, json={"errors": []})]
    )

    with pytest.raises(hc.BadRequestError):
        await client.customers.batch_update({i: {"name": "x"} for i in range(1, 26)})

    assert 2 == route.call_count


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("POST", "/customers", lambda c: c.customers.create(name="A")),
        ("PUT", "/customers/batch", lambda c: c.customers.batch_update({1: {"name": "A"}})),
        ("POST", "/events", lambda c: c.events.create(1, "Signed up")),
        ("PUT", "/chats/rate", lambda c: c.chats.rate(1, "great")),
    ],
)
async def test_what_is_not_idempotent_is_never_sent_twice(client, api, method, path, call):
    """A 503 after create, batch, event or rating is raised, not retried: it may have landed."""
    route = api.route(method=method, path=path).respond(503)

    with pytest.raises(hc.ServerError):
        await call(client)

    assert 1 == route.call_count


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("PATCH", "/customers/1", lambda c: c.customers.update(1, name="A")),
        ("PUT", "/customers/1/tags", lambda c: c.customers.tag(1, "vip")),
        ("GET", "/organization", lambda c: c.organization.get()),
        ("PUT", "/chats/readByAgent", lambda c: c.chats.mark_read(1, by="agent")),
    ],
)
async def test_idempotent_calls_are_retried(client, api, method, path, call):
    """A 503 then a success: updating, tagging, reading and marking read go again."""
    answer = {"data": {"id": 1}} if path == "/organization" else {"id": 1}
    route = api.route(method=method, path=path).mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=answer)]
    )

    assert 1 == (await call(client)).id
    assert 2 == route.call_count


async def test_events_applications_and_organization(client, api):
    """events.create sends its data; applications come listed; the organization unwrapped."""
    event = api.post("/events").respond(
        200, json={"id": 3, "name": "Paid", "data": {"amount": 9.5}, "createdAt": 1603885746}
    )
    api.get("/applications").respond(
        200,
        json={
            "data": [
                {"id": 1, "name": "site", "displayName": "Site", "type": "widget", "active": True}
            ]
        },
    )
    api.get("/organization").respond(
        200, json={"data": {"id": 2, "domain": "acme", "teamOnline": False, "chatEnabled": True}}
    )

    made = await client.events.create(7, "Paid", data={"amount": 9.5, "items": [{"sku": "a"}]})
    apps = [app async for app in client.applications.list()]
    organization = await client.organization.get()

    assert {
        "customer": 7,
        "name": "Paid",
        "data": {"amount": 9.5, "items": [{"sku": "a"}]},
    } == body(event)
    assert types.MappingProxyType({"amount": 9.5}) == made.data
    assert [hc.Application(1, "site", "Site", "widget", active=True)] == apps
    assert (False, True) == (organization.team_online, organization.chat_enabled)


async def test_rate_and_mark_read_send_their_bodies(client, api):
    """rate sends the documented value; mark_read picks the endpoint by who read."""
    rate = api.put("/chats/rate").respond(200, json=chat_payload(5, rating="very poor"))
    customer = api.put("/chats/readByCustomer").respond(
        200, json=chat_payload(5, readByCustomer=False)
    )

    rated = await client.chats.rate(5, "Very_Poor")
    unread = await client.chats.mark_read(5, by="customer", read=False)

    assert {"id": 5, "rating": "very poor"} == body(rate)
    assert hc.ChatRating.VERY_POOR is rated.rating
    assert {"id": 5, "read": False} == body(customer)
    assert unread.read_by_customer is False


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda c: c.customers.create(nickname="A"),
            TypeError,
            "unknown customer field 'nickname'",
        ),
        (lambda c: c.customers.create(name=3), TypeError, "name must be a str or None"),
        (lambda c: c.customers.create(email="\ud800"), ValueError, "email is not valid text"),
        (lambda c: c.customers.create(blocked="no"), TypeError, "blocked must be a bool"),
        (
            lambda c: c.customers.create(first_seen=datetime(2020, 1, 1)),
            ValueError,
            "timezone-aware",
        ),
        (lambda c: c.customers.create(first_seen=-1), ValueError, "non-negative Unix seconds"),
        (
            lambda c: c.customers.create(last_seen="yesterday"),
            TypeError,
            "last_seen must be a datetime",
        ),
        (lambda c: c.customers.create(tags=[]), ValueError, "at least one tag"),
        (lambda c: c.customers.create(tags=[" "]), ValueError, "must not be empty"),
        (lambda c: c.customers.create(tags=[1]), TypeError, "tag names or Tags"),
        (
            lambda c: c.customers.create(custom_data=[("a", 1)]),
            TypeError,
            "custom_data must be a mapping",
        ),
        (
            lambda c: c.customers.create(custom_data={"a": [1]}),
            TypeError,
            "custom_data['a'] must be a str",
        ),
        (lambda c: c.customers.create(custom_data={"a": float("nan")}), ValueError, "finite"),
        (lambda c: c.customers.create(custom_data={"a": 2**64}), ValueError, "64-bit"),
        (lambda c: c.customers.create(custom_data={"": 1}), TypeError, "non-empty strings"),
        (lambda c: c.customers.update(1), ValueError, "needs at least one field"),
        (lambda c: c.customers.update(True, name="A"), TypeError, "customer_id must be an int"),  # noqa: FBT003 - a bool id is the point
        (lambda c: c.customers.replace(0, name="A"), ValueError, "customer_id must be a positive"),
        (lambda c: c.customers.get("7"), TypeError, "customer_id must be an int"),
        (lambda c: c.customers.delete(-7), ValueError, "customer_id must be a positive"),
        (lambda c: c.customers.batch_update({}), ValueError, "at least one customer"),
        (lambda c: c.customers.batch_update([(1, {"name": "A"})]), TypeError, "mapping of ids"),
        (lambda c: c.customers.batch_update({1: {}}), ValueError, "customer 1 needs at least"),
        (lambda c: c.customers.batch_update({1: {"name": "A"}, 2: {"x": 1}}), TypeError, "'x'"),
        (lambda c: c.customers.tag(1, None), TypeError, "tag names or Tags"),
        (lambda c: c.events.create(1, ""), ValueError, "name must not be empty"),
        (lambda c: c.events.create(1, "x", data=[1]), TypeError, "data must be a mapping"),
        (lambda c: c.events.create(1, "x", data={"a": {1: 2}}), TypeError, "keys must be strings"),
        (lambda c: c.events.create(1, "x", data={"a": object()}), TypeError, "data['a'] must be"),
        (lambda c: c.chats.rate(1, "excellent"), ValueError, "unknown chat rating 'excellent'"),
        (lambda c: c.chats.rate(1, 5), TypeError, "chat rating must be a ChatRating or str"),
        (lambda c: c.chats.mark_read(1, by="bot"), ValueError, "by must be 'agent' or 'customer'"),
        (lambda c: c.chats.mark_read(1, by="agent", read=1), TypeError, "read must be a bool"),
        (lambda c: c.agents.unsubscribe("1"), TypeError, "agent_id must be an int"),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_sent(client, api, call, error, message):
    """Each bad argument is a TypeError/ValueError saying what is wrong; nothing is sent."""
    with pytest.raises(error, match=message.replace("[", r"\[").replace("(", r"\(")):
        await call(client)

    assert 0 == len(api.calls)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.customers.list(sort="createdAt"),
        lambda c: c.customers.list(order="DESC"),
        lambda c: c.customers.search([]),
        lambda c: c.customers.search(hc.Filter("customers.id", "=", 1), comparison="XOR"),
        lambda c: c.customers.search(["customers.id = 1"]),
        lambda c: c.customers.list(page_size=101),
    ],
)
async def test_bad_listing_arguments_fail_when_called(client, api, call):
    """A bad sort, order, filter or page size fails at once, not at the first page."""
    with pytest.raises((TypeError, ValueError)):
        call(client)

    assert 0 == len(api.calls)


async def test_an_answer_without_a_customer_id_is_refused(client, api):
    """A customer answer with no id is no customer: ResponseValidationError."""
    api.get("/customers/7").respond(200, json={"name": "Ann"})

    with pytest.raises(hc.ResponseValidationError, match=r"customer\.id: missing"):
        await client.customers.get(7)


# --- the model -----------------------------------------------------------------------------


def test_one_customer_model_for_chats_webhooks_and_the_customers_api():
    """A chat's customer is a Customer with the other fields empty; equal to one built by hand."""
    chat = hc.Chat.from_json(chat_payload())

    assert hc.Customer(77, "Bob", "bob@example.com", "u-77") == chat.customer
    assert chat.customer is not None
    assert ((), {}) == (chat.customer.tags, dict(chat.customer.custom_data))


def test_custom_data_is_read_only_and_the_customer_hashable():
    """Custom data cannot be changed through the model, nested values neither; it hashes."""
    customer = hc.Customer.from_json(customer_payload(customData={"a": {"b": [1, 2]}}))

    with pytest.raises(TypeError):
        customer.custom_data["a"] = 1  # type: ignore[index]
    assert (1, 2) == customer.custom_data["a"]["b"]
    assert hash(customer) == hash(
        hc.Customer.from_json(customer_payload(customData={"a": {"b": [1, 2]}}))
    )


@pytest.mark.parametrize(
    ("custom_data", "message"),
    [
        ("plan", "customer.customData: expected an object or a list, got str"),
        ([1], "customer.customData: expected {property, value} entries, got int"),
        ([{"value": 1}], "customer.customData: an entry has no property name"),
        ([{"property": []}], "customer.customData: expected a string, got list"),
    ],
)
def test_impossible_custom_data_is_refused_by_name(custom_data, message):
    """Custom data that is neither documented form is a ResponseValidationError naming it."""
    with pytest.raises(hc.ResponseValidationError) as caught:
        hc.Customer.from_json(customer_payload(customData=custom_data))

    assert message == str(caught.value)


def test_custom_data_nested_past_the_json_depth_is_refused():
    """A value nested deeper than any decoded answer can be is refused, not recursed into."""
    deep: Any = 1
    for _ in range(100):
        deep = {"x": deep}

    with pytest.raises(hc.ResponseValidationError, match="nested deeper"):
        hc.Customer.from_json(customer_payload(customData={"a": deep}))


CUSTOMER_FIELDS = (
    "id",
    "name",
    "userId",
    "firstSeen",
    "lastSeen",
    "location",
    "device",
    "unsubscribed",
    "tags",
    "customData",
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(CUSTOMER_FIELDS), value=json_values)
def test_customer_from_json_is_total(field, value):
    """Any value in any field: a Customer or ResponseValidationError, never another exception."""
    try:
        outcome: object = hc.Customer.from_json(customer_payload(**{field: value}))
    except hc.ResponseValidationError as exc:
        outcome = exc

    assert isinstance(outcome, hc.Customer | hc.ResponseValidationError)


@settings(max_examples=200, deadline=None)
@given(payload=json_values)
def test_the_account_models_and_events_are_total(payload):
    """Any payload: the model, or ResponseValidationError."""
    for model in (hc.CustomerEvent, hc.Organization, hc.Application, hc.Tag):
        with contextlib.suppress(hc.ResponseValidationError):
            model.from_json(payload)


def test_an_event_in_an_envelope_is_unwrapped_and_its_own_data_kept():
    """{"data": event} is an envelope; an event's own "data" object is not."""
    event = {"id": 1, "name": "x", "data": {"k": "v"}}

    assert hc.CustomerEvent.from_json({"data": event}) == hc.CustomerEvent.from_json(event)
    assert {"k": "v"} == dict(hc.CustomerEvent.from_json(event).data)


async def test_find_asks_for_one_customer_by_email_or_user_id(client, api):
    """find sends one search of one result; it gives the customer, or None."""
    route = api.post("/customers/search").mock(
        side_effect=[
            httpx.Response(200, json={"data": [customer_payload(7)], "total": 1}),
            httpx.Response(200, json={"data": [], "total": 0}),
        ]
    )

    found = await client.customers.find(user_id="u-7")
    missing = await client.customers.find(email="nobody@example.com")

    assert (7, None) == (found.id if found else None, missing)
    assert {
        "filter": [{"field": "customers.userId", "operator": "=", "value": "u-7"}],
        "comparison": "AND",
        "offset": 0,
        "limit": 1,
    } == body(route, 0)
    assert "customers.email" == body(route, 1)["filter"][0]["field"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({}, ValueError), ({"email": "a", "user_id": "b"}, ValueError), ({"user_id": 7}, TypeError)],
)
async def test_find_needs_one_text(client, api, kwargs, error):
    """Neither, both, or a number: refused before sending."""
    with pytest.raises(error):
        await client.customers.find(**kwargs)

    assert 0 == len(api.calls)


async def test_raw_responses_of_customer_calls(client, api):
    """with_raw_response gives the status and headers with the parsed customer, or None."""
    api.get("/customers/7").respond(200, json=customer_payload(7), headers={"x-request-id": "r1"})
    api.delete("/customers/7").respond(200, text="Ok")

    got = await client.customers.with_raw_response.get(7)
    deleted = await client.customers.with_raw_response.delete(7)

    assert (200, "r1", "u-7") == (got.status_code, got.headers["x-request-id"], got.parsed.user_id)
    assert (200, None) == (deleted.status_code, deleted.parsed)
