"""asyncio itself: what users of ``asyncio.gather`` rely on (pytest-asyncio, strict mode)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

import helpcrunch_async as hc
from tests.conftest import chat_payload


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=chat_payload(json.loads(request.content)["id"]))


@pytest.mark.asyncio
async def test_gather_of_thousands_of_calls_all_return(make_client, api):
    """gather over 2,000 calls on one rate-limited client: every call gets its own Chat."""
    api.put("/chats/status").mock(side_effect=echo)
    client = make_client(
        rate_limit=hc.RateLimit(requests=400, per=0.05, burst=50, margin=0.0),
        timeout=0.5,  # waiting for the limiter must not count against it
    )

    chats = await asyncio.gather(*(client.chats.update_status(i, "closed") for i in range(1, 2001)))

    assert list(range(1, 2001)) == [c.id for c in chats]
    assert 2000 == client.stats().requests
    assert 0 < client.stats().limiter_wait
    await client.aclose()


@pytest.mark.asyncio
async def test_gather_with_return_exceptions_keeps_every_outcome(make_client, api):
    """Failures come back in place; nothing is dropped."""

    def handler(request: httpx.Request) -> httpx.Response:
        chat_id = json.loads(request.content)["id"]
        if chat_id % 10 == 0:
            return httpx.Response(404, json={"errors": [{"code": "chat_not_found"}]})
        return echo(request)

    api.put("/chats/status").mock(side_effect=handler)
    client = make_client()

    results = await asyncio.gather(
        *(client.chats.update_status(i, "closed") for i in range(1, 101)), return_exceptions=True
    )

    assert 10 == sum(isinstance(r, hc.NotFoundError) for r in results)
    assert 90 == sum(isinstance(r, hc.Chat) for r in results)
    await client.aclose()


@pytest.mark.asyncio
async def test_task_cancelled_while_queued_leaves_the_limiter_usable(make_client, api):
    """Cancelling asyncio tasks queued on the limiter does not wedge later calls."""
    api.put("/chats/status").mock(side_effect=echo)
    client = make_client(rate_limit=hc.RateLimit(requests=2, per=0.2, burst=1, margin=0.0))
    tasks = [asyncio.create_task(client.chats.update_status(i, "closed")) for i in range(1, 30)]
    await asyncio.sleep(0.05)
    for task in tasks[2:]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    chat = await client.chats.update_status(99, "closed")

    assert 99 == chat.id
    await client.aclose()
