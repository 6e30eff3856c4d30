"""Bulk work on customers: the chats' engine, outcomes, journal, resume and circuit breaker."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import helpcrunch_async as hc
from tests.conftest import StubLimiter

pytestmark = pytest.mark.anyio


def tagged(request: httpx.Request) -> httpx.Response:
    """Answer a tag or update with the customer of the id in the path."""
    customer_id = int(request.url.path.split("/")[3])
    if customer_id == 404:
        return httpx.Response(404, json={"errors": [{"code": "entity_not_found"}]})
    return httpx.Response(200, json={"id": customer_id, "tags": [{"name": "vip", "color": "#f00"}]})


def customer_ids(route: Any) -> list[int]:
    return sorted(int(call.request.url.path.split("/")[3]) for call in route.calls)


async def test_bulk_tag_gives_one_outcome_per_distinct_id(client, api):
    """Good ids are tagged, bad and missing ones fail alone, duplicates go once."""
    route = api.put(url__regex=r"/customers/\d+/tags").mock(side_effect=tagged)

    result = await client.customers.bulk_tag([1, 2, 404, "3", 2, 0], ["vip"])

    assert [1, 2, 404] == customer_ids(route)
    assert [1, 2] == sorted(c.id for c in result.succeeded)
    assert {404: hc.NotFoundError, "'3'": TypeError, 0: ValueError} == {
        k: type(v) for k, v in result.failed.items()
    }
    assert 1 == result.duplicates
    assert {"tags": [{"name": "vip"}]} == json.loads(route.calls[0].request.content)


async def test_the_stream_yields_customer_outcomes_and_events(make_client, api):
    """stream_untag yields CustomerOutcomes; each one is a BulkItemDone event of its operation."""
    api.delete(url__regex=r"/customers/\d+/tags").mock(side_effect=tagged)
    events: list[hc.ClientEvent] = []

    async with make_client(on_event=events.append) as client:
        async with client.customers.stream_untag([5, 404], "vip") as outcomes:
            done = {outcome.customer_id: outcome async for outcome in outcomes}

    assert isinstance(done[5], hc.CustomerOutcome)
    assert (True, 5) == (done[5].ok, done[5].customer.id if done[5].customer else None)
    assert isinstance(done[404].error, hc.NotFoundError)
    items = [e for e in events if isinstance(e, hc.BulkItemDone)]
    assert [("customers.untag", False), ("customers.untag", True)] == sorted(
        (e.operation, e.ok) for e in items
    )


async def test_a_journal_resumes_the_same_tags_only(client, api, tmp_path):
    """A resume skips ids done with the same tags; other tags, or untagging, redo them."""
    route = api.route(url__regex=r"/customers/\d+/tags").mock(side_effect=tagged)
    journal = tmp_path / "tags.jsonl"

    first = await client.customers.bulk_tag([1, 2, 3], ["vip", "lead"], journal=journal)
    again = await client.customers.bulk_tag([1, 2, 3, 4], ["lead", "vip"], journal=journal)
    other = await client.customers.bulk_tag([1], ["gold"], journal=journal)
    untag = await client.customers.bulk_untag([2], ["vip", "lead"], journal=journal)
    after = await client.customers.bulk_tag([1, 2], ["vip", "lead"], journal=journal)

    assert (3, 0) == (len(first.succeeded), first.skipped)
    assert (1, 3) == (len(again.succeeded), again.skipped)  # the same set, in another order
    assert (1, 0) == (len(other.succeeded), other.skipped)
    assert 1 == len(untag.succeeded)
    assert [1, 2] == sorted(c.id for c in after.succeeded)  # 1 was re-tagged gold, 2 untagged
    assert 3 + 1 + 1 + 1 + 2 == route.call_count
    ops = {json.loads(line)["op"] for line in journal.read_text().splitlines()}
    assert {
        'customers.tag ["lead","vip"]',
        'customers.tag ["gold"]',
        'customers.untag ["lead","vip"]',
    } == ops


async def test_bulk_update_patches_each_with_the_same_fields(client, api, tmp_path):
    """bulk_update PATCHes every id; the journal names the fields, a long set by its digest."""
    route = api.patch(url__regex=r"/customers/\d+").mock(side_effect=tagged)
    journal = tmp_path / "update.jsonl"

    result = await client.customers.bulk_update(
        [1, 2], {"custom_data": {"plan": "pro"}}, journal=journal
    )
    await client.customers.bulk_update([1], {"notes": "x" * 300}, journal=journal)

    assert 2 == len(result.succeeded)
    assert {"customData": [{"property": "plan", "value": "pro"}]} == json.loads(
        route.calls[0].request.content
    )
    first, _, long = [json.loads(line)["op"] for line in journal.read_text().splitlines()]
    assert 'customers.update {"customData":[{"property":"plan","value":"pro"}]}' == first
    assert long.startswith("customers.update sha256:")


async def test_the_breaker_stops_a_run_against_a_dead_api(client, api):
    """Connection failures in a row stop the run with BulkAbortedError, worded for customers."""
    api.put(url__regex=r"/customers/\d+/tags").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(hc.BulkAbortedError, match="3 customers in a row"):
        await client.customers.bulk_tag(
            range(1, 1000), "vip", concurrency=1, stop_after_consecutive_failures=3
        )


async def test_a_wrong_key_ends_the_run(client, api):
    """A 401 ends a customer run as it ends a chat run."""
    api.put(url__regex=r"/customers/\d+/tags").respond(401, json={"errors": []})

    with pytest.raises(hc.AuthenticationError):
        await client.customers.bulk_tag(range(1, 100), "vip")


async def test_bulk_customers_are_background_traffic(make_client, api):
    """The bulk helpers ask for background turns, like the chats' ones."""
    api.put(url__regex=r"/customers/\d+/tags").mock(side_effect=tagged)
    limiter = StubLimiter()

    async with make_client(rate_limit=limiter) as client:
        await client.customers.bulk_tag([1], "vip")
        await client.customers.tag(2, "vip")

    assert ["background", "interactive"] == [priority for priority, _ in limiter.acquired]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.customers.stream_tag([1], []), ValueError),
        (lambda c: c.customers.stream_tag("123", "vip"), TypeError),
        (lambda c: c.customers.stream_tag([1], "vip", concurrency=0), ValueError),
        (lambda c: c.customers.stream_tag([1], "vip", on_progress=3), TypeError),
        (lambda c: c.customers.stream_tag([1], "vip", retries=3), TypeError),
        (lambda c: c.customers.stream_update([1], {}), ValueError),
        (lambda c: c.customers.stream_update([1], {"plan": "pro"}), TypeError),
    ],
)
async def test_bad_bulk_arguments_fail_at_once(client, api, call, error):
    """Bad tags, ids, fields or options fail when the stream is made, before anything is sent."""
    with pytest.raises(error):
        call(client)

    assert 0 == len(api.calls)


def test_a_customer_outcome_is_either_a_customer_or_an_error():
    """CustomerOutcome refuses the impossible states, as ChatOutcome does."""
    with pytest.raises(ValueError, match="exactly one of customer and error"):
        hc.CustomerOutcome(1)
    assert 1 == hc.CustomerOutcome(1, error=ValueError("x")).id


async def test_tags_given_as_an_iterator_serve_every_id(client, api):
    """A generator of tags is read once, and every id gets all of them."""
    route = api.put(url__regex=r"/customers/\d+/tags").mock(side_effect=tagged)

    result = await client.customers.bulk_tag([1, 2, 3], (name for name in ["vip", "lead"]))

    assert 3 == len(result.succeeded)
    sent = [json.loads(call.request.content) for call in route.calls]
    assert [{"tags": [{"name": "vip"}, {"name": "lead"}]}] * 3 == sent
