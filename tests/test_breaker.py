"""The circuit breaker: a bulk run stops when every recent id failed as in an outage."""

from __future__ import annotations

import json

import httpx
import pytest

import helpcrunch_async as hc
from helpcrunch_async._bulk._breaker import CircuitBreaker, is_outage
from tests.conftest import status_echo

UNAVAILABLE = {"errors": [{"code": "unavailable", "message": "try later"}]}
NOT_FOUND = {"errors": [{"code": "chat_not_found", "message": "Chat not found"}]}


def _server_error() -> hc.ServerError:
    return hc.ServerError("HTTP 503", status_code=503)


def _chat_not_found() -> hc.NotFoundError:
    return hc.NotFoundError(
        "HTTP 404 Not Found: chat_not_found: Chat is missing",
        status_code=404,
        errors=[hc.ErrorDetail("chat_not_found", "Chat is missing")],
    )


def test_trips_after_threshold_outage_failures_in_a_row():
    """Connection errors and 5xx count up to the threshold, which trips it."""
    breaker = CircuitBreaker(3)

    assert [False, False, True] == [
        breaker.record(hc.APIConnectionError("refused")),
        breaker.record(_server_error()),
        breaker.record(hc.APITimeoutError("slow")),
    ]
    assert breaker.tripped
    assert isinstance(breaker.last_error, hc.APITimeoutError)


def test_success_or_a_per_chat_error_resets_the_count():
    """A success or HelpCrunch's own 404 proves the API answers: the count starts again."""
    breaker = CircuitBreaker(2)

    breaker.record(_server_error())
    breaker.record(None)
    breaker.record(_server_error())
    breaker.record(_chat_not_found())

    assert not breaker.record(_server_error())
    assert 1 == breaker.consecutive


def test_error_carries_the_count_and_the_last_error():
    """The exception a tripped breaker ends a run with says how many failed and why."""
    breaker = CircuitBreaker(1)
    last = hc.APIConnectionError("connection failed: refused")
    breaker.record(last)

    error = breaker.error()

    assert isinstance(error, hc.HelpCrunchError)
    assert 1 == error.failures
    assert last is error.last_error
    assert "connection failed: refused" in str(error)
    assert str(error).startswith("stopped after 1 chats in a row failed")


def test_error_names_the_runs_ids():
    """A customer run's breaker counts customers, not chats."""
    breaker = CircuitBreaker(2, noun="customers")
    breaker.record(_server_error())
    breaker.record(_server_error())

    assert str(breaker.error()).startswith("stopped after 2 customers in a row failed")


def test_a_fresh_breaker_has_no_last_error():
    """Nothing failed yet: no count, no error, not tripped; a success keeps it so."""
    breaker = CircuitBreaker(1)

    assert not breaker.record(None)
    assert (0, None, False) == (breaker.consecutive, breaker.last_error, breaker.tripped)


@pytest.mark.parametrize(
    ("threshold", "exception"),
    [(0, ValueError), (-1, ValueError), (True, TypeError), (2.0, TypeError)],
)
def test_bad_threshold_is_rejected(threshold, exception):
    """The threshold is a positive int."""
    with pytest.raises(exception):
        CircuitBreaker(threshold)


def test_is_outage_only_for_errors_of_the_whole_api():
    """Connection errors, 5xx and a 404 that is not HelpCrunch's count; a missing chat does not."""
    assert [True, True, True, False, False, False] == [
        is_outage(hc.APIConnectionError("x")),
        is_outage(_server_error()),
        is_outage(hc.NotFoundError("HTTP 404 Not Found: '<html>'", status_code=404)),
        is_outage(_chat_not_found()),
        is_outage(ValueError("bad id")),
        is_outage(None),
    ]


@pytest.mark.anyio
async def test_bulk_run_stops_and_journals_what_completed(client, api, tmp_path):
    """A down API stops the run with BulkAbortedError; every yielded outcome is journaled."""
    route = api.put("/chats/status").respond(503, json=UNAVAILABLE)
    journal = tmp_path / "j.jsonl"
    seen = []

    with pytest.raises(hc.BulkAbortedError) as caught:
        stream = client.chats.stream_update_status(
            range(1, 10_001),
            "closed",
            concurrency=2,
            journal=journal,
            stop_after_consecutive_failures=5,
        )
        async with stream as outcomes:
            async for outcome in outcomes:
                seen.append(outcome.chat_id)

    assert 5 <= len(seen) < 100
    assert route.call_count < 1000
    journaled = [json.loads(line)["id"] for line in journal.read_text().splitlines()]
    assert set(seen) <= set(journaled)
    assert isinstance(caught.value.last_error, hc.ServerError)


@pytest.mark.anyio
async def test_per_chat_failures_never_trip_the_breaker(client, api):
    """Chats that fail alone (404) never stop the run, however many in a row."""

    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["id"] % 10:
            return httpx.Response(404, json=NOT_FOUND)
        return status_echo(request)

    api.put("/chats/status").mock(side_effect=handler)

    result = await client.chats.bulk_update_status(
        range(1, 51), "closed", stop_after_consecutive_failures=2
    )

    assert (5, 45) == (len(result.succeeded), len(result.failed))


@pytest.mark.anyio
async def test_a_404_that_is_not_helpcrunchs_trips_the_breaker(client, api):
    """A web server's 404 page for every id (a base_url without /v1) is an outage, not 404s."""
    route = api.put("/chats/status").respond(404, text="<html><h1>Not Found</h1></html>")

    with pytest.raises(hc.BulkAbortedError) as caught:
        await client.chats.bulk_update_status(
            range(1, 10_001), "closed", stop_after_consecutive_failures=3
        )

    assert route.call_count < 100
    assert isinstance(caught.value.last_error, hc.NotFoundError)
    assert caught.value.last_error.endpoint_not_found


@pytest.mark.anyio
async def test_bulk_update_status_without_breaker_fails_every_id(client, api):
    """The breaker is off by default: every id gets its own outcome."""
    api.put("/chats/status").respond(503, json=UNAVAILABLE)

    result = await client.chats.bulk_update_status(range(1, 21), "closed")

    assert 20 == len(result.failed)


@pytest.mark.anyio
async def test_bad_threshold_fails_before_anything_is_sent(client, api):
    """A bad stop_after_consecutive_failures is a ValueError at the call."""
    route = api.put("/chats/status").mock(side_effect=status_echo)

    with pytest.raises(ValueError, match="stop_after_consecutive_failures"):
        client.chats.stream_update_status([1], "closed", stop_after_consecutive_failures=0)

    assert 0 == route.call_count


@pytest.mark.anyio
async def test_stop_yields_completed_outcomes_then_ends(client, api, tmp_path):
    """OutcomeStream.stop(): no new updates, the completed ones still come, no exception."""
    api.put("/chats/status").mock(side_effect=status_echo)
    journal = tmp_path / "j.jsonl"
    seen = []

    stream = client.chats.stream_update_status(
        range(1, 10_001), "closed", concurrency=3, journal=journal
    )
    async with stream as outcomes:
        async for outcome in outcomes:
            seen.append(outcome.chat_id)
            if len(seen) == 5:
                outcomes.stop()

    journaled = [json.loads(line)["id"] for line in journal.read_text().splitlines()]
    assert 5 <= len(seen) < 100
    assert sorted(journaled) == sorted(seen)


@pytest.mark.anyio
async def test_stop_before_the_workers_start_sends_nothing(client, api):
    """stop() right after entering: the run ends at once, nothing sent."""
    route = api.put("/chats/status").mock(side_effect=status_echo)

    async with client.chats.stream_update_status(range(1, 100), "closed") as outcomes:
        outcomes.stop()
        seen = [outcome async for outcome in outcomes]

    assert ([], 0) == (seen, route.call_count)
