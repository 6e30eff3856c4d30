"""The rest of the chats resource: reads, paging, search, the other updates, create, messages."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

import helpcrunch_async as hc
from tests.conftest import chat_payload

pytestmark = pytest.mark.anyio


def page_of(ids: list[int], *, style: str = "meta") -> dict[str, Any]:
    body: dict[str, Any] = {"data": [chat_payload(i, "opened") for i in ids]}
    if style == "meta":
        body["meta"] = {"total": 999}  # deliberately wrong: paging must not trust it
    return body


async def test_get_one_chat(client, api):
    """GET /chats/{id} returns a Chat; a 404 is NotFoundError."""
    api.get("/chats/5").respond(200, json=chat_payload(5, "pending"))
    api.get("/chats/6").respond(404, json={"errors": [{"code": "not_fount", "message": "?"}]})

    chat = await client.chats.get(5)

    assert (5, hc.ChatStatus.PENDING) == (chat.id, chat.status)
    with pytest.raises(hc.NotFoundError, match="not_fount"):
        await client.chats.get(6)


async def test_list_pages_until_a_short_page(client, api):
    """Offsets advance by page; a short page ends it, whatever meta.total says."""
    route = api.get("/chats").mock(
        side_effect=[
            httpx.Response(200, json=page_of([1, 2])),
            httpx.Response(200, json=page_of([3, 4])),
            httpx.Response(200, json=page_of([5])),
        ]
    )

    ids = [chat.id async for chat in client.chats.list(sort="createdAt", order="desc", page_size=2)]

    assert [1, 2, 3, 4, 5] == ids
    params = [dict(c.request.url.params) for c in route.calls]
    assert ["0", "2", "4"] == [p["offset"] for p in params]
    assert {"2"} == {p["limit"] for p in params}
    assert {"chats.createdAt"} == {p["sort"] for p in params}
    assert {"desc"} == {p["order"] for p in params}


async def test_list_stops_on_an_empty_page(client, api):
    """An exactly full last page is followed by an empty one, which ends the listing."""
    api.get("/chats").mock(
        side_effect=[
            httpx.Response(200, json=page_of([1, 2])),
            httpx.Response(200, json={"data": []}),
        ]
    )

    assert [1, 2] == [c.id async for c in client.chats.list(page_size=2)]


async def test_page_without_data_list_is_validation_error(client, api):
    """A page that is not the documented envelope is the SDK's error, never a KeyError."""
    api.get("/chats").respond(200, json={"chats": []})

    with pytest.raises(hc.ResponseValidationError, match="data"):
        [c async for c in client.chats.list()]


async def test_search_sends_filters_and_pages(client, api):
    """Filters, comparison, sort and paging go in the POST body; the results are Chats."""
    route = api.post("/chats/search").mock(
        side_effect=[
            httpx.Response(200, json=page_of([7, 8])),
            httpx.Response(200, json=page_of([9])),
        ]
    )
    week_ago = datetime(2026, 11, 17, tzinfo=timezone.utc)
    filters = [
        hc.Filter("chats.status", "=", hc.ChatStatus.ON_HOLD),
        hc.Filter("chats.lastMessageAt", "<", week_ago),
    ]

    found = [
        c.id
        async for c in client.chats.search(
            filters, comparison="OR", sort="chats.closedAt", page_size=2
        )
    ]

    assert [7, 8, 9] == found
    first = json.loads(route.calls[0].request.content)
    assert {
        "filter": [
            {"field": "chats.status", "operator": "=", "value": "on-hold"},
            {"field": "chats.lastMessageAt", "operator": "<", "value": int(week_ago.timestamp())},
        ],
        "comparison": "OR",
        "sort": "chats.closedAt",
        "offset": 0,
        "limit": 2,
    } == first
    assert 2 == json.loads(route.calls[1].request.content)["offset"]


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda c: c.chats.search([]), ValueError),
        (lambda c: c.chats.search(["chats.status"]), TypeError),
        (lambda c: c.chats.search(hc.Filter("a", "=", 1), comparison="XOR"), ValueError),
        (lambda c: c.chats.list(sort="name"), ValueError),
        (lambda c: c.chats.list(order="up"), ValueError),
        (lambda c: c.chats.list(page_size=101), ValueError),
        (lambda c: c.chats.list(page_size=0), ValueError),
        (lambda c: c.chats.messages(1, page_size=True), TypeError),
        (lambda c: c.chats.messages("1"), TypeError),
    ],
)
async def test_bad_read_arguments_fail_at_once(client, call, exc):
    """Bad paging, sorting or filters are errors before any request."""
    with pytest.raises(exc):
        call(client)


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        (("chats.status", "==", 1), ValueError),
        (("", "=", 1), ValueError),
        (("chats.status", "=", object()), TypeError),
        (("chats.createdAt", ">", datetime(2026, 1, 1)), ValueError),  # naive
    ],
)
def test_filter_validates_operator_field_and_value(args, exc):
    """Only the documented operators, a real field, and wire-safe values."""
    with pytest.raises(exc):
        hc.Filter(*args)


async def test_assignee_department_snooze_send_documented_bodies(client, api):
    """Each PUT sends its documented body and returns the Chat."""
    answer = httpx.Response(200, json=chat_payload(1))
    assignee = api.put("/chats/assignee").mock(return_value=answer)
    department = api.put("/chats/department").mock(return_value=answer)
    snooze = api.put("/chats/snooze").mock(return_value=answer)
    until = datetime(2030, 1, 1, tzinfo=timezone.utc)

    await client.chats.update_assignee(1, 12)
    await client.chats.update_assignee(1, None)
    await client.chats.update_department(1, 3)
    await client.chats.snooze(1, until)
    await client.chats.snooze(1, None)

    bodies = [json.loads(c.request.content) for c in assignee.calls]
    assert [{"id": 1, "assignee": 12}, {"id": 1, "assignee": None}] == bodies
    assert {"id": 1, "department": 3} == json.loads(department.calls.last.request.content)
    bodies = [json.loads(c.request.content) for c in snooze.calls]
    assert [{"id": 1, "snoozedUntil": 1893456000}, {"id": 1, "snoozedUntil": None}] == bodies


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda c: c.chats.snooze(1, datetime(2030, 1, 1)), ValueError),
        (lambda c: c.chats.snooze(1, 1893456000), TypeError),
        (lambda c: c.chats.update_assignee(1, "12"), TypeError),
        (lambda c: c.chats.update_department(1, None), TypeError),
        (lambda c: c.chats.create(customer=0, application=1), ValueError),
        (lambda c: c.chats.get(-1), ValueError),
    ],
)
async def test_bad_update_arguments_fail_before_sending(client, api, call, exc):
    """Naive datetimes, ids of the wrong type: errors before any request."""
    with pytest.raises(exc):
        await call(client)


@pytest.mark.parametrize("status", [201, 200])
async def test_create_accepts_201_or_200(client, api, status):
    """POST /chats with the documented body; 201 in most doc versions, 200 in one."""
    route = api.post("/chats").respond(status, json=chat_payload(77, "new"))

    chat = await client.chats.create(customer=5, application=2, assignee=12, department=3)

    assert 77 == chat.id
    expected = {"customer": 5, "application": 2, "assignee": 12, "department": 3}
    assert expected == json.loads(route.calls.last.request.content)


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (httpx.Response(500), False),
        (httpx.ReadTimeout("slow"), False),
        (httpx.RemoteProtocolError("dropped"), False),
        (httpx.Response(429, json={"errors": [{"code": "too_many_requests"}]}), True),
        (httpx.ConnectError("refused"), True),
    ],
)
async def test_create_is_never_repeated_once_it_may_have_landed(client, api, failure, retried):
    """A create is retried only when the server surely did not process it."""
    route = api.post("/chats").mock(
        side_effect=[failure, httpx.Response(201, json=chat_payload(1))]
    )

    if retried:
        assert 1 == (await client.chats.create(customer=5, application=2)).id
        assert 2 == route.call_count
    else:
        with pytest.raises(hc.HelpCrunchError):
            await client.chats.create(customer=5, application=2)
        assert 1 == route.call_count


async def test_messages_page_with_top_level_total(client, api):
    """Messages page with limit <= 100; `total` is at the top level and not trusted alone."""
    messages = [
        {"id": i, "text": f"m{i}", "from": "agent", "createdAt": "1597758468"} for i in range(3)
    ]
    route = api.get("/chats/9/messages").mock(
        side_effect=[
            httpx.Response(200, json={"data": messages[:2], "total": 3}),
            httpx.Response(200, json={"data": messages[2:], "total": 3}),
        ]
    )

    found = [m async for m in client.chats.messages(9, page_size=2)]

    assert [0, 1, 2] == [m.id for m in found]
    assert "agent" == found[0].sender
    assert datetime(2020, 8, 18, 13, 47, 48, tzinfo=timezone.utc) == found[0].created_at
    assert ["0", "2"] == [c.request.url.params["offset"] for c in route.calls]


def test_message_from_bad_payload():
    """A message that is not an object is the SDK's validation error."""
    with pytest.raises(hc.ResponseValidationError):
        hc.Message.from_json(["x"])
