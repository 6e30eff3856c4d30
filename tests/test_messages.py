"""client.messages.create: the request it sends, its validation, and that it never posts twice."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import helpcrunch_async as hc

pytestmark = pytest.mark.anyio

MESSAGE = {"id": 991, "text": "On it!", "from": "agent", "createdAt": 1597758468}


def sent(route) -> Any:
    return json.loads(route.calls.last.request.content)


async def test_create_posts_as_the_customer_by_default(client, api):
    """Without an agent the body has no agent field and type "message"; the answer is a Message."""
    route = api.post("/messages").respond(200, json=MESSAGE)

    message = await client.messages.create(5215752, "On it!")

    assert {"chat": 5215752, "text": "On it!", "type": "message"} == sent(route)
    assert hc.Message(991, "On it!", "agent", message.created_at) == message
    assert 1597758468 == (message.created_at.timestamp() if message.created_at else None)


async def test_create_as_an_agent_with_markdown_as_a_private_note(client, api):
    """agent_id, markdown and private map to agent, markdownText and type "private"."""
    route = api.post("/messages").respond(200, json={"data": MESSAGE})

    message = await client.messages.create(
        7, "see **this**", markdown="see **this**", agent_id=12, private=True
    )

    expected = {
        "chat": 7,
        "text": "see **this**",
        "markdownText": "see **this**",
        "agent": 12,
        "type": "private",
    }
    assert expected == sent(route)
    assert 991 == message.id  # the {"data": ...} envelope is accepted too


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((0, "hi"), {}, ValueError),
        (("7", "hi"), {}, TypeError),
        ((7, ""), {}, ValueError),
        ((7, "  "), {}, ValueError),
        ((7, None), {}, TypeError),
        ((7, "hi"), {"markdown": 5}, TypeError),
        ((7, "hi"), {"agent_id": -1}, ValueError),
        ((7, "hi"), {"agent_id": True}, TypeError),
        ((7, "hi"), {"private": "yes"}, TypeError),
    ],
)
async def test_bad_arguments_fail_before_any_request(client, api, args, kwargs, error):
    """Bad ids, empty text, non-bool private: TypeError/ValueError, nothing sent."""
    route = api.post("/messages").respond(200, json=MESSAGE)

    with pytest.raises(error):
        await client.messages.create(*args, **kwargs)
    assert 0 == route.call_count


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(500), httpx.Response(503), httpx.ReadTimeout("slow"), httpx.ReadError("cut")],
)
async def test_create_is_never_repeated_once_it_may_have_arrived(make_client, api, failure):
    """A 5xx or a lost answer is raised after one attempt: a message is never posted twice."""
    route = api.post("/messages").mock(side_effect=[failure, httpx.Response(200, json=MESSAGE)])

    async with make_client(max_retries=3) as client:
        with pytest.raises(hc.HelpCrunchError):
            await client.messages.create(7, "hi")
    assert 1 == route.call_count


@pytest.mark.parametrize("failure", [httpx.Response(429), httpx.ConnectError("refused")])
async def test_create_is_retried_when_it_surely_never_arrived(make_client, api, failure):
    """A 429 or a connection never made is retried: the server never saw the message."""
    route = api.post("/messages").mock(side_effect=[failure, httpx.Response(200, json=MESSAGE)])

    async with make_client(max_retries=3) as client:
        message = await client.messages.create(7, "hi")

    assert (991, 2) == (message.id, route.call_count)


@pytest.mark.parametrize(
    ("refusal", "error"),
    [
        ((400, "invalid_chat_value", "Invalid chat ID"), hc.BadRequestError),
        ((404, "chat_not_found", "Chat not found"), hc.NotFoundError),
        ((404, "entity_not_found", "Agent not found"), hc.NotFoundError),
    ],
)
async def test_documented_message_errors(client, api, refusal, error):
    """The documented refusals map to their classes, codes kept."""
    status, code, message = refusal
    api.post("/messages").respond(status, json={"errors": [{"code": code, "message": message}]})

    with pytest.raises(error, match=message) as info:
        await client.messages.create(7, "hi", agent_id=99)
    assert [code] == info.value.codes


async def test_answer_that_is_not_a_message_is_a_validation_error(client, api):
    """A 200 whose body is not a message object is ResponseValidationError."""
    api.post("/messages").respond(200, json=["not", "a", "message"])

    with pytest.raises(hc.ResponseValidationError):
        await client.messages.create(7, "hi")
