"""Every documented example of the customers, events, account, rating and read-mark pages,
of every doc version: each answer parses through the SDK, each request is what the SDK sends.

The examples are HelpCrunch's, collected into ``tests/data/helpcrunch_docs/`` (one file per
example: ``body``, ``status``, and ``raw`` where the page's text is not valid JSON).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import helpcrunch_async as hc

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).parent / "data" / "helpcrunch_docs"
UTC = timezone.utc


def example(name: str) -> dict[str, Any]:
    """One documented example file."""
    loaded: dict[str, Any] = json.loads((DOCS / name).read_text(encoding="utf-8"))
    return loaded


def examples(prefix: str) -> list[str]:
    """The names of the example files starting with ``prefix``."""
    return sorted(path.name for path in DOCS.glob(prefix + "*.json"))


def invalid_json(name: str) -> bool:
    """Whether the page's own text of the example is not JSON (a typo the docs carry)."""
    raw = example(name).get("raw")
    if raw is None:
        return False
    try:
        json.loads(raw)
    except ValueError:
        return True
    return False


Call = Callable[[hc.HelpCrunch], Awaitable[Any]]

#: Per answer page: the route the SDK calls, and the call.
ANSWERS: dict[str, tuple[str, str, Call]] = {
    "customers__model": ("GET", "/customers/1", lambda c: c.customers.get(1)),
    "customers__get": ("GET", "/customers/1", lambda c: c.customers.get(1)),
    "customers__tag": ("PUT", "/customers/1/tags", lambda c: c.customers.tag(1, "Lead")),
    "customers__untag": ("DELETE", "/customers/1/tags", lambda c: c.customers.untag(1, "Lead")),
    "customers__list": ("GET", "/customers", lambda c: _all(c.customers.list(page_size=100))),
    "customers__delete": ("DELETE", "/customers/1", lambda c: c.customers.delete(1)),
    "agents__unsubscribe": ("GET", "/agents/1/unsubscribe", lambda c: c.agents.unsubscribe(1)),
    "events__create": ("POST", "/events", lambda c: c.events.create(1, "Button Click")),
    "organization__get": ("GET", "/organization", lambda c: c.organization.get()),
    "chats__rate": ("PUT", "/chats/rate", lambda c: c.chats.rate(1, "poor")),
    "chats__readByAgent": (
        "PUT",
        "/chats/readByAgent",
        lambda c: c.chats.mark_read(1, by="agent"),
    ),
    "chats__readByCustomer": (
        "PUT",
        "/chats/readByCustomer",
        lambda c: c.chats.mark_read(1, by="customer"),
    ),
    # The older single endpoint's answer: the same chat as the two newer ones answer.
    "chats__read": ("PUT", "/chats/readByAgent", lambda c: c.chats.mark_read(1, by="agent")),
}


async def _all(items: Any) -> list[Any]:
    return [item async for item in items]


def _answer_files() -> list[str]:
    return [name for name in examples("") if "__response__" in name and "errors__" not in name]


def _page(name: str) -> str:
    return name.partition("__response__")[0]


def _documented_id(body: Any) -> Any:
    """The id the documented answer is about (``None`` for a plain ``Ok``)."""
    if isinstance(body, dict):
        inner = body if "id" in body else body["data"]
        return inner[0]["id"] if isinstance(inner, list) else inner["id"]
    return None


def _parsed_id(result: Any) -> Any:
    if isinstance(result, list):
        return result[0].id
    return None if result is None else result.id


def test_every_answer_page_is_covered():
    """Each documented answer page has its call here: none is left untested."""
    assert set() == {_page(name) for name in _answer_files()} - set(ANSWERS)


@pytest.mark.parametrize("name", _answer_files())
async def test_every_documented_answer_parses(name, client, api):
    """Each documented answer, of each doc version, becomes the SDK's model of it."""
    documented = example(name)
    method, path, call = ANSWERS[_page(name)]
    api.route(method=method, path=path).respond(
        documented.get("status") or 200, json=documented["body"]
    )

    result = await call(client)

    assert _documented_id(documented["body"]) == _parsed_id(result)


@pytest.mark.parametrize(
    "name", [n for n in _answer_files() if invalid_json(n) and example(n)["body"] != "Ok"]
)
async def test_an_answer_as_invalid_as_its_page_is_a_validation_error(name, make_client, api):
    """A server sending the page's invalid text verbatim gets a clean ResponseValidationError."""
    method, path, call = ANSWERS[_page(name)]
    api.route(method=method, path=path).respond(200, content=example(name)["raw"].encode())

    async with make_client(max_retries=0) as client:
        with pytest.raises(hc.ResponseValidationError, match="not JSON"):
            await call(client)


@pytest.mark.parametrize("page", ["customers__delete", "agents__unsubscribe"])
@pytest.mark.parametrize("body", [b"Ok", b'"Ok"', b""], ids=["bare", "json", "empty"])
async def test_a_plain_ok_is_success_in_every_form(client, api, page, body):
    """The "Ok" the docs promise, bare or as a JSON string (the pages do not say), succeeds."""
    method, path, call = ANSWERS[page]
    route = api.route(method=method, path=path).respond(200, content=body)

    assert None is await call(client)
    assert 1 == route.call_count


# --- what the answers say, variant by variant -----------------------------------------------


def test_the_newer_customer_has_string_timestamps_and_an_object_of_custom_data():
    """New copy: "1603885746" strings, createdFrom, and custom data of every scalar type."""
    customer = hc.Customer.from_json(example("customers__model__response__new.json")["body"])

    assert datetime(2020, 10, 28, 11, 49, 6, tzinfo=UTC) == customer.first_seen
    assert ("telegram", "465847687") == (customer.created_from, customer.integration_id)
    assert hc.Location("Kyiv", "Kyyivs'ka Oblast", "UA") == customer.location
    assert "Europe/Kiev" == (customer.device.timezone if customer.device else None)
    assert (hc.Tag("vip", "#ff0000"),) == customer.tags
    assert {
        "subscription_status": "active",
        "number_of_payments": 15,
        "last_paid_amount": 15.99,
        "last_payment_date": 1603885746,
        "last_invoice_url": "https://example.com/invoice.html",
        "last_payment_was_successful": True,
    } == dict(customer.custom_data)


def test_the_older_customer_has_integer_timestamps_and_odd_values_kept():
    """Old copy: int timestamps, a null phone, a colour in Cyrillic, a zone with a space: kept."""
    customer = hc.Customer.from_json(example("customers__model__response__old.json")["body"])

    assert datetime(2020, 6, 30, 20, 0, tzinfo=UTC) == customer.first_seen
    assert customer.phone is None
    assert customer.created_from is None
    assert "#c\u0441\u0441" == customer.tags[0].color
    assert "America/Los Angeles" == (customer.device.timezone if customer.device else None)
    assert "2021-04-30 23:11:00" == customer.custom_data["last_payment_date"]


def test_custom_data_as_a_list_reads_as_the_object_does():
    """The old get page's [{property, value}] list and its object copy give one mapping."""
    as_list = hc.Customer.from_json(example("customers__get__response__old-list.json")["body"])
    as_object = hc.Customer.from_json(example("customers__get__response__old-dict.json")["body"])

    assert 621 == as_list.custom_data["Emails sent"]
    assert "USD" == as_list.custom_data["Currency"] == as_object.custom_data["Currency"]


def test_the_older_tag_answer_has_no_device_and_list_custom_data():
    """Old tag answer: device null, null source, and custom data as a list."""
    customer = hc.Customer.from_json(example("customers__tag__response__old.json")["body"])

    assert customer.device is None
    assert customer.source is None
    assert {"Subscription status": "Suspended", "Number of payments": 13} == dict(
        customer.custom_data
    )
    assert ("Paid", "Lead", "Black Friday", "PPC") == customer.tag_names


async def test_the_list_total_at_the_top_level_and_a_null_first_seen(client, api):
    """Old list: total before data, firstSeen null beside an int lastSeen."""
    body = example("customers__list__response__old.json")["body"]
    api.get("/customers").respond(200, json=body)

    [customer] = [c async for c in client.customers.list()]

    assert customer.first_seen is None
    assert datetime(2020, 5, 4, 14, 52, 32, tzinfo=UTC) == customer.last_seen


@pytest.mark.parametrize(
    ("name", "created_at", "customer_id"),
    [
        ("events__create__response__new.json", datetime(2020, 10, 28, 11, 49, 6, tzinfo=UTC), None),
        (
            "events__create__response__old.json",
            datetime(2020, 10, 28, 11, 49, 6, tzinfo=UTC),
            7830053,
        ),
    ],
)
def test_events_in_either_version(name, created_at, customer_id):
    """A string or an int createdAt; the customer only in the older answer."""
    event = hc.CustomerEvent.from_json(example(name)["body"])

    assert (created_at, customer_id) == (event.created_at, event.customer_id)
    assert {"button": "Start Free Trial", "clicks": 2} == dict(event.data)


def test_the_organization_envelope_holds_an_object():
    """GET /organization wraps one object in data: the two switches come through."""
    organization = hc.Organization.from_json(
        example("organization__get__response__new.json")["body"]
    )

    assert hc.Organization(542335, "string", team_online=True, chat_enabled=True) == organization


@pytest.mark.parametrize("name", [n for n in examples("chats__readBy") if "__response__" in n])
def test_read_marks_come_back_on_the_chat(name):
    """Both read endpoints answer with the chat and its two read flags."""
    chat = hc.Chat.from_json(example(name)["body"])

    assert (True, True) == (chat.read_by_agent, chat.read_by_customer)


def test_a_rated_chat_carries_a_rating_the_chat_pages_do_not_list():
    """The rating page's answer says "perfect": a ChatRating, not a stray string."""
    chat = hc.Chat.from_json(example("chats__rate__response__en.json")["body"])

    assert hc.ChatRating.PERFECT is chat.rating


# --- documented errors ------------------------------------------------------------------------

#: Per error page: the route and the call.
ERRORS: dict[str, tuple[str, str, Call]] = {
    "errors__delete-customer": ANSWERS["customers__delete"],
    "errors__get-customer": ANSWERS["customers__get"],
    "errors__events-create": ANSWERS["events__create"],
    "errors__organization-get": ANSWERS["organization__get"],
    "errors__chats-rate": ANSWERS["chats__rate"],
    "errors__chats-read": ANSWERS["chats__readByAgent"],
}
_CLASSES = {
    400: hc.BadRequestError,
    401: hc.AuthenticationError,
    404: hc.NotFoundError,
    429: hc.RateLimitError,
}


@pytest.mark.parametrize("name", examples("errors__"))
async def test_every_documented_error_is_its_class_with_its_codes(name, make_client, api):
    """Each documented error answer raises the class of its status, keeping every code."""
    documented = example(name)
    method, path, call = ERRORS[name.partition("__response__")[0]]
    api.route(method=method, path=path).respond(documented["status"], json=documented["body"])

    async with make_client(max_retries=0) as client:
        with pytest.raises(_CLASSES[documented["status"]]) as caught:
            await call(client)

    assert [e["code"] for e in documented["body"]["errors"]] == caught.value.codes


async def test_rating_an_open_chat_is_a_bad_request(client, api):
    """The "must be closed" 400 of the rating page surfaces as BadRequestError, not retried."""
    documented = example("errors__chats-rate__response__400.json")
    route = api.put("/chats/rate").respond(400, json=documented["body"])

    with pytest.raises(hc.BadRequestError, match="Chat must me closed"):
        await client.chats.rate(5208, "poor")

    assert 1 == route.call_count


# --- documented requests: the SDK sends them, given Python values -----------------------------

_SNAKE = {
    "userId": "user_id",
    "firstSeen": "first_seen",
    "lastSeen": "last_seen",
    "lastPage": "last_page",
    "createdFrom": "created_from",
    "integrationId": "integration_id",
    "regionCode": "region_code",
    "countryCode": "country_code",
    "customData": "custom_data",
}


def python_fields(body: dict[str, Any]) -> dict[str, Any]:
    """A documented write body as the Python caller gives it (snake_case, dates as ints)."""
    fields: dict[str, Any] = {}
    for key, value in body.items():
        if key == "customData":
            fields["custom_data"] = {e["property"]: e["value"] for e in value}
        elif key == "tags":
            fields["tags"] = [hc.Tag(t["name"], t.get("color")) for t in value]
        elif key in ("firstSeen", "lastSeen"):
            fields[_SNAKE[key]] = int(value)
        else:
            fields[_SNAKE.get(key, key)] = value
    return fields


def as_sent(body: Any) -> Any:
    """A documented body with dates as the SDK writes them: strings of Unix seconds."""
    if isinstance(body, list):
        return [as_sent(item) for item in body]
    return {
        k: str(v) if k in ("firstSeen", "lastSeen") and v is not None else v
        for k, v in body.items()
    }


def sent(route: Any) -> Any:
    """The JSON body of the last request a route got."""
    return json.loads(route.calls.last.request.content)


@pytest.mark.parametrize("name", examples("customers__create__request"))
async def test_documented_create_bodies_are_what_the_sdk_sends(name, client, api):
    """create(**fields) sends each documented body (dates as the newest pages write them)."""
    body = example(name)["body"]
    route = api.post("/customers").respond(200, json={"id": 1})

    await client.customers.create(**python_fields(body))

    assert as_sent(body) == sent(route)


@pytest.mark.parametrize("name", examples("customers__update__request"))
async def test_documented_update_bodies_are_what_the_sdk_sends(name, client, api):
    """update(id, **fields) PATCHes each documented body; replace PUTs the same body."""
    body = example(name)["body"]
    patch = api.patch("/customers/7").respond(200, json={"id": 7})
    put = api.put("/customers/7").respond(200, json={"id": 7})

    await client.customers.update(7, **python_fields(body))
    await client.customers.replace(7, **python_fields(body))

    assert as_sent(body) == sent(patch) == sent(put)


@pytest.mark.parametrize("name", examples("customers__batch__request"))
async def test_documented_batch_bodies_are_what_the_sdk_sends(name, client, api):
    """batch_update({id: fields}) sends each documented array."""
    body = example(name)["body"]
    route = api.put("/customers/batch").respond(200, json=[])
    updates = {
        item["customer"]: python_fields({k: v for k, v in item.items() if k != "customer"})
        for item in body
    }

    await client.customers.batch_update(updates)

    assert as_sent(body) == sent(route)


def _filter(entry: dict[str, Any]) -> hc.Filter:
    value = entry["value"]
    if isinstance(value, list):
        value = [tag["name"] for tag in value]
    return hc.Filter(entry["field"], entry["operator"], value)


@pytest.mark.parametrize("name", examples("customers__search__request"))
async def test_documented_search_bodies_are_what_the_sdk_sends(name, client, api):
    """search(filters, ...) sends each documented body (order in lower case, as it accepts)."""
    body = example(name)["body"]
    route = api.post("/customers/search").respond(200, json={"data": [], "total": 0})

    found = client.customers.search(
        [_filter(entry) for entry in body["filter"]],
        comparison=body.get("comparison", "AND"),
        sort=body["sort"],
        order=body["order"].lower(),
        page_size=body["limit"],
    )
    assert [] == [c async for c in found]

    expected = body | {"order": body["order"].lower(), "comparison": body.get("comparison", "AND")}
    assert expected == sent(route)


@pytest.mark.parametrize(
    ("name", "call"),
    [
        *[(n, lambda c, t: c.customers.tag(1, t)) for n in examples("customers__tag__request")],
        *[(n, lambda c, t: c.customers.untag(1, t)) for n in examples("customers__untag__request")],
    ],
)
async def test_documented_tag_bodies_are_what_the_sdk_sends(name, call, client, api):
    """tag and untag send each documented body: colours only where given, names only to untag."""
    body = example(name)["body"]
    route = api.route(path="/customers/1/tags").respond(200, json={"id": 1})

    await call(client, [hc.Tag(t["name"], t.get("color")) for t in body["tags"]])

    assert body == sent(route)


@pytest.mark.parametrize("name", examples("events__create__request"))
async def test_documented_event_bodies_are_what_the_sdk_sends(name, client, api):
    """events.create(customer, name, data=) sends each documented body."""
    body = example(name)["body"]
    route = api.post("/events").respond(200, json={"id": 1})

    await client.events.create(body["customer"], body["name"], data=body["data"])

    assert body == sent(route)


@pytest.mark.parametrize(
    ("name", "path", "call"),
    [
        ("chats__rate__request__en.json", "/chats/rate", lambda c: c.chats.rate(5208, "poor")),
        (
            "chats__readByAgent__request__read-chat-rest-api-1.json",
            "/chats/readByAgent",
            lambda c: c.chats.mark_read(5208, by="agent"),
        ),
        (
            "chats__readByCustomer__request__read-chat-rest-api-1.json",
            "/chats/readByCustomer",
            lambda c: c.chats.mark_read(5208, by="customer"),
        ),
        # The older page's single endpoint took the same body the two newer ones take.
        (
            "chats__read__request__read-chat-rest-api.json",
            "/chats/readByAgent",
            lambda c: c.chats.mark_read(5208, by="agent"),
        ),
    ],
)
async def test_documented_chat_mark_bodies_are_what_the_sdk_sends(name, path, call, client, api):
    """rate and mark_read send the documented bodies."""
    route = api.put(path).respond(200, json={"id": 5208})

    await call(client)

    assert {**example(name)["body"], "id": 5208} == sent(route)


def test_no_documented_request_is_left_out():
    """Every request example in the folder is one of the pages above."""
    covered = (
        "customers__create",
        "customers__update",
        "customers__batch",
        "customers__search",
        "customers__tag",
        "customers__untag",
        "events__create",
        "chats__rate",
        "chats__readByAgent",
        "chats__readByCustomer",
        "chats__read",
    )
    requests = {n.partition("__request__")[0] for n in examples("") if "__request__" in n}
    assert set() == requests - set(covered)


async def test_the_answers_are_hostile_data_all_the_same(client, api):
    """A documented page's answer with an impossible field is refused by name."""
    body = example("customers__model__response__new.json")["body"] | {"firstSeen": "soon"}
    api.get("/customers/1").respond(200, json=body)

    with pytest.raises(hc.ResponseValidationError, match=r"customer\.firstSeen"):
        await client.customers.get(1)
