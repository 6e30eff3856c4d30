"""Raw responses: with_raw_response, and the headers and body excerpt errors carry."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

import anyio
import httpx
import pytest

import helpcrunch_async as hc
from tests.conftest import chat_payload, status_echo

pytestmark = pytest.mark.anyio


def echo_with_id(request: httpx.Request) -> httpx.Response:
    """status_echo, plus a request id header naming the chat."""
    answer = status_echo(request)
    chat_id = json.loads(request.content)["id"]
    return httpx.Response(
        200, json=json.loads(answer.content), headers={"X-Request-Id": str(chat_id)}
    )


async def test_update_status_with_raw_response(client, api):
    """Status, headers, elapsed and the parsed Chat of the call."""
    api.put("/chats/status").mock(side_effect=echo_with_id)

    raw = await client.chats.with_raw_response.update_status(5215752, "closed")

    assert isinstance(raw, hc.RawResponse)
    assert 200 == raw.status_code
    assert "5215752" == raw.headers["x-request-id"]
    assert raw.elapsed >= 0
    assert isinstance(raw.parsed, hc.Chat)
    assert hc.ChatStatus.CLOSED is raw.parsed.status
    assert raw.http_response.is_closed


async def test_raw_response_is_of_the_attempt_that_succeeded(client, api):
    """After a 500, the raw response is the 200 that followed."""
    api.put("/chats/status").mock(side_effect=[httpx.Response(500), echo_with_id])

    raw = await client.chats.with_raw_response.update_status(7, "closed")

    assert 200 == raw.status_code
    assert "7" == raw.headers["x-request-id"]


async def test_on_hold_raw_response_is_of_the_accepted_spelling(client, api):
    """The on-hold fallback: the response of the spelling the server accepted."""

    def reject_spec_spelling(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        if sent["status"] == "on-hold":
            return httpx.Response(400, json={"errors": [{"code": "invalid_chat_value"}]})
        return httpx.Response(
            200,
            json=chat_payload(sent["id"], sent["status"]),
            headers={"X-Spelling": sent["status"]},
        )

    api.put("/chats/status").mock(side_effect=reject_spec_spelling)

    raw = await client.chats.with_raw_response.update_status(1, "on hold")

    assert "on hold" == raw.headers["x-spelling"]


async def test_every_single_result_method_has_a_raw_twin(client, api):
    """get, update_assignee, update_department, snooze and create return RawResponses too."""
    api.get("/chats/3").mock(return_value=httpx.Response(200, json=chat_payload(3)))
    for path in ("/chats/assignee", "/chats/department", "/chats/snooze"):
        api.put(path).mock(return_value=httpx.Response(200, json=chat_payload(3)))
    api.post("/chats").mock(return_value=httpx.Response(201, json=chat_payload(3)))
    raw = client.chats.with_raw_response

    results = [
        await raw.get(3),
        await raw.update_assignee(3, 12),
        await raw.update_department(3, 4),
        await raw.snooze(3, datetime(2030, 1, 1, tzinfo=timezone.utc)),
        await raw.create(customer=77, application=1),
    ]

    assert [200, 200, 200, 200, 201] == [r.status_code for r in results]
    assert {3} == {r.parsed.id for r in results}


async def test_concurrent_raw_calls_keep_their_own_responses(client, api):
    """Raw calls in parallel tasks each get their own answer."""
    api.put("/chats/status").mock(side_effect=echo_with_id)
    seen: dict[int, str] = {}

    async def one(chat_id: int) -> None:
        raw = await client.chats.with_raw_response.update_status(chat_id, "closed")
        seen[chat_id] = raw.headers["x-request-id"]

    async with anyio.create_task_group() as tg:
        for chat_id in range(1, 21):
            tg.start_soon(one, chat_id)

    assert {i: str(i) for i in range(1, 21)} == seen


async def test_plain_calls_are_unchanged(client, api):
    """Without with_raw_response a method still returns the parsed model."""
    api.put("/chats/status").mock(side_effect=status_echo)

    await client.chats.with_raw_response.update_status(1, "closed")
    chat = await client.chats.update_status(2, "closed")

    assert isinstance(chat, hc.Chat)


async def test_a_compressed_raw_response_is_whole(client, api):
    """A gzip answer (read past httpx's own path): its headers as sent, its request, its
    decoded body."""
    body = json.dumps(chat_payload(3)).encode()
    api.get("/chats/3").mock(
        return_value=httpx.Response(
            200, content=gzip.compress(body), headers={"Content-Encoding": "gzip", "X-Id": "7"}
        )
    )

    raw = await client.chats.with_raw_response.get(3)

    assert ("gzip", "7") == (raw.headers["content-encoding"], raw.headers["x-id"])
    assert body == raw.http_response.content
    assert "/v1/chats/3" == raw.http_response.request.url.path
    assert 3 == raw.parsed.id


async def test_raw_call_errors_are_raised_as_usual(client, api):
    """A failing raw call raises the same error as the plain call."""
    api.get("/chats/9").mock(return_value=httpx.Response(404, json={"errors": []}))

    with pytest.raises(hc.NotFoundError):
        await client.chats.with_raw_response.get(9)


async def test_api_error_carries_headers_and_a_bounded_body_excerpt(client, api):
    """An APIError gives the answer's headers, and at most 200 characters of its body."""
    body = "<html>" + "x" * 5000 + "</html>"
    api.get("/chats/9").mock(
        return_value=httpx.Response(
            404, text=body, headers={"X-Request-Id": "req-9", "Content-Type": "text/html"}
        )
    )

    with pytest.raises(hc.NotFoundError) as info:
        await client.chats.get(9)

    assert "req-9" == info.value.headers["x-request-id"]
    assert body[:200] == info.value.body_excerpt


def test_api_error_without_a_response_has_empty_headers_and_excerpt():
    """An APIError built by hand has no headers and no excerpt."""
    error = hc.APIError("boom", status_code=418)

    assert 0 == len(error.headers)
    assert "" == error.body_excerpt


async def test_custom_transport_answers_built_already_read(make_client):
    """A transport returning pre-read answers (httpx leaves .elapsed unset) works with
    raw responses and events alike."""
    seen: list[hc.ClientEvent] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=chat_payload(1))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with http, make_client(http_client=http, on_event=seen.append) as client:
        raw = await client.chats.with_raw_response.get(1)

    assert raw.elapsed >= 0
    assert 1 == raw.parsed.id
    assert ["response_received"] == [e.kind for e in seen if isinstance(e, hc.ResponseReceived)]


async def test_messages_create_with_raw_response(client, api):
    """client.messages.with_raw_response.create returns the answer around the Message."""
    message = {"id": 991, "text": "On it!", "from": "agent", "createdAt": 1597758468}
    api.post("/messages").respond(201, json=message, headers={"X-Request-Id": "m-1"})

    raw = await client.messages.with_raw_response.create(5215752, "On it!")

    assert (201, "m-1", 991) == (raw.status_code, raw.headers["x-request-id"], raw.parsed.id)
