"""Bulk updates: one outcome per distinct id, bounded work, early exits that leave things clean."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

import helpcrunch_async as hc
from helpcrunch_async import OutcomeStream
from tests.conftest import StubLimiter, chat_payload, status_echo

pytestmark = pytest.mark.anyio

NOT_FOUND = {"errors": [{"code": "chat_not_found", "message": "Chat not found"}]}
BAD_KEY = {"errors": [{"code": "invalid_token", "message": "Invalid token"}]}


def sent_ids(route) -> list[int]:
    return [json.loads(c.request.content)["id"] for c in route.calls]


def missing(*ids: int):
    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["id"] in ids:
            return httpx.Response(404, json=NOT_FOUND)
        return status_echo(request)

    return handler


async def test_one_outcome_per_distinct_id_bad_ids_fail_alone(client, api):
    """Valid ids update, bad ones fail with ValueError/TypeError, duplicates go once."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    ids = [1, 2, "3", 0, 2, True, 4, 2**64, 1]

    result = await client.chats.bulk_update_status(ids, "closed")

    assert [1, 2, 4] == sorted(sent_ids(route))
    assert [1, 2, 4] == sorted(c.id for c in result.succeeded)
    assert {"'3'": TypeError, 0: ValueError, "True": TypeError, 2**64: ValueError} == {
        k: type(v) for k, v in result.failed.items()
    }
    assert 2 == result.duplicates
    assert not result.ok
    assert "3 updated, 4 failed" in str(result)


async def test_a_bool_id_never_collides_with_the_int_it_equals(client, api):
    """`True` fails on its own, keyed by its repr, and never hides chat 1's failure."""
    api.put("/chats/status").mock(side_effect=missing(1))

    result = await client.chats.bulk_update_status([1, True], "closed")

    assert {1: hc.NotFoundError, "True": TypeError} == {
        k: type(v) for k, v in result.failed.items()
    }


async def test_failing_chats_never_abort_the_others(client, api):
    """404s and exhausted retries are failed outcomes; everything else still updates."""
    api.put("/chats/status").mock(side_effect=missing(3, 5))

    result = await client.chats.bulk_update_status(range(1, 8), hc.ChatStatus.CLOSED)

    assert [1, 2, 4, 6, 7] == sorted(c.id for c in result.succeeded)
    assert {3, 5} == set(result.failed)
    assert all(isinstance(e, hc.NotFoundError) for e in result.failed.values())


async def test_401_stops_the_run_early(client, api):
    """A wrong key stops everything with AuthenticationError instead of failing each id."""
    route = api.put("/chats/status").respond(401, json=BAD_KEY)

    with pytest.raises(hc.AuthenticationError):
        await client.chats.bulk_update_status(range(1, 10_001), "closed", concurrency=4)

    assert route.call_count <= 4


async def test_source_is_read_lazily(client, api):
    """Ids are pulled as workers free up: far fewer than the input when the consumer stops."""
    api.put("/chats/status").mock(side_effect=status_echo)
    pulled = 0

    def ids() -> Iterator[int]:
        nonlocal pulled
        for i in range(1, 1_000_000):
            pulled += 1
            yield i

    async with client.chats.stream_update_status(ids(), "closed", concurrency=3) as outcomes:
        async for _ in outcomes:
            break

    assert pulled <= 3 * 3  # workers + buffered outcomes + the ones in flight


async def test_async_iterable_input(client, api):
    """An async generator of ids works like a list."""
    api.put("/chats/status").mock(side_effect=status_echo)

    async def ids() -> AsyncIterator[int]:
        for i in range(1, 21):
            await anyio.lowlevel.checkpoint()
            yield i

    result = await client.chats.bulk_update_status(ids(), "pending", concurrency=5)

    assert list(range(1, 21)) == sorted(c.id for c in result.succeeded)


async def test_failing_id_source_is_raised_after_completed_outcomes(client, api):
    """If the caller's iterable raises, the run stops and the error comes out of the stream."""
    api.put("/chats/status").mock(side_effect=status_echo)

    def ids() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        async with client.chats.stream_update_status(ids(), "closed", concurrency=1) as outs:
            async for outcome in outs:
                seen.append(outcome.chat_id)

    assert [1, 2] == seen


async def test_break_stops_workers_and_client_stays_usable(client, api):
    """Leaving the loop early stops the workers; no request is sent after the block."""
    route = api.put("/chats/status").mock(side_effect=status_echo)

    async with client.chats.stream_update_status(range(1, 10_000), "closed") as outcomes:
        async for outcome in outcomes:
            assert outcome.ok
            break
    sent = route.call_count
    await anyio.sleep(0.05)

    assert sent == route.call_count
    assert sent < 100
    assert 42 == (await client.chats.update_status(42, "opened")).id


async def test_exception_in_loop_body_propagates_unwrapped(client, api):
    """An error raised by the caller's loop body comes out as itself, not an ExceptionGroup."""
    api.put("/chats/status").mock(side_effect=status_echo)

    with pytest.raises(KeyError, match="boom"):
        async with client.chats.stream_update_status(range(1, 1000), "closed") as outcomes:
            async for _ in outcomes:
                raise KeyError("boom")

    assert 7 == (await client.chats.update_status(7, "closed")).id


async def test_cancelling_the_run_stops_promptly_and_keeps_outcomes(client, api):
    """A cancel scope around the run ends it; outcomes already yielded stand; client usable."""

    stuck = anyio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["id"] > 3:
            stuck.set()
            await anyio.sleep(3600)
        return status_echo(request)

    api.put("/chats/status").mock(side_effect=slow)
    yielded = []

    with anyio.CancelScope() as scope:
        async with client.chats.stream_update_status(range(1, 100), "closed", concurrency=1) as o:
            async for outcome in o:
                yielded.append(outcome)
                if len(yielded) == 3:
                    await stuck.wait()  # the fourth in flight: cancelled mid-request
                    scope.cancel()

    assert scope.cancelled_caught
    assert [1, 2, 3] == [x.chat_id for x in yielded]
    assert all(x.ok for x in yielded)
    api.put("/chats/status").mock(side_effect=status_echo)
    assert 5 == (await client.chats.update_status(5, "closed")).id


@pytest.mark.parametrize(
    ("make", "call"),
    [
        (lambda c: c.chats.stream_update_status([1], "closed"), "chats.stream_update_status"),
        (lambda c: c.customers.stream_tag([1], "vip"), "customers.stream_tag"),
        (lambda c: c.customers.stream_untag([1], "vip"), "customers.stream_untag"),
        (lambda c: c.customers.stream_update([1], {"name": "Bo"}), "customers.stream_update"),
    ],
)
async def test_bare_async_for_explains_the_context_manager(client, make, call):
    """Iterating without `async with` is refused with a message that shows the stream's own form."""
    with pytest.raises(TypeError) as info:
        async for _ in make(client):
            pass  # pragma: no cover

    assert (
        "iterate the stream inside its context: "
        f"`async with client.{call}(...) as outcomes: "
        "async for outcome in outcomes: ...`"
    ) == str(info.value)


async def test_the_engine_alone_shows_the_chat_stream_in_its_message():
    """An engine built without naming its call shows the chat stream's form."""

    async def never(chat_id: int) -> hc.Chat:
        raise AssertionError(chat_id)  # pragma: no cover - the stream is never entered

    with pytest.raises(TypeError) as info:
        async for _ in engine(never, [1]):
            pass  # pragma: no cover

    assert "`async with client.chats.stream_update_status(...) as outcomes:" in str(info.value)


async def test_stream_cannot_be_entered_twice(client, api):
    """A stream is one run."""
    api.put("/chats/status").mock(side_effect=status_echo)
    stream = client.chats.stream_update_status([1], "closed")
    async with stream:
        pass

    with pytest.raises(RuntimeError) as info:
        async with stream:
            pass  # pragma: no cover

    assert "an OutcomeStream can be entered only once" == str(info.value)


async def test_ids_that_cannot_be_iterated_fail_the_run_and_free_the_journal(client, api, tmp_path):
    """The id source's own error comes out as itself, and the journal is closed again."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    journal = hc.Journal(tmp_path / "j.jsonl")

    class Unreadable:
        def __iter__(self) -> Iterator[int]:
            raise OSError("the id file is gone")

    with pytest.raises(OSError, match="the id file is gone") as info:
        await client.chats.bulk_update_status(Unreadable(), "closed", journal=journal)

    assert OSError is type(info.value)
    assert 0 == route.call_count
    journal.open()  # not left in use
    journal.close()


async def test_a_stream_never_entered_cannot_be_left(client):
    """Leaving a stream that was never entered is a clear RuntimeError, not a crash."""
    stream = client.chats.stream_update_status([1], "closed")

    with pytest.raises(RuntimeError) as info:
        await stream.__aexit__(None, None, None)

    assert "__aexit__ without __aenter__" == str(info.value)


async def test_progress_reports_done_failed_and_total(client, api):
    """The progress hook sees every outcome; total is known for sized inputs only."""
    api.put("/chats/status").mock(side_effect=missing(2))
    seen: list[hc.Progress] = []

    await client.chats.bulk_update_status([1, 2, 3, 3], "closed", on_progress=seen.append)
    await client.chats.bulk_update_status(iter([1]), "closed", on_progress=seen.append)

    assert hc.Progress(done=3, failed=1, total=3) == seen[2]
    assert [1, 2, 3] == [p.done for p in seen[:3]]
    assert seen[-1].total is None


async def test_progress_total_leaves_out_skipped_ids_and_duplicates(client, api, tmp_path):
    """Resumed: the ids the journal had done are counted as skipped, not in the total."""
    api.put("/chats/status").mock(side_effect=status_echo)
    journal = tmp_path / "j.jsonl"
    await client.chats.bulk_update_status([1], "closed", journal=journal)
    seen: list[hc.Progress] = []

    await client.chats.bulk_update_status(
        [1, 3, 3, 2], "closed", journal=journal, on_progress=seen.append, concurrency=1
    )

    assert hc.Progress(done=2, failed=0, total=2, skipped=1) == seen[-1]


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"status": "bogus"}, ValueError),
        ({"status": "empty"}, ValueError),
        ({"concurrency": 0}, ValueError),
        ({"concurrency": 2.5}, TypeError),
        ({"chat_ids": "12345"}, TypeError),
        ({"chat_ids": 12345}, TypeError),
    ],
)
async def test_bad_arguments_fail_before_anything_is_sent(client, api, kwargs, exc):
    """A bad status, concurrency or id collection is an immediate TypeError/ValueError."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    args = {"chat_ids": [1], "status": "closed"} | kwargs

    with pytest.raises(exc):
        client.chats.stream_update_status(args.pop("chat_ids"), args.pop("status"), **args)

    assert not route.called


async def test_concurrency_bounds_requests_in_flight(make_client, api):
    """No more than `concurrency` updates are in flight at once."""
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.001)
        in_flight -= 1
        return status_echo(request)

    api.put("/chats/status").mock(side_effect=handler)
    client = make_client(max_connections=50)

    result = await client.chats.bulk_update_status(range(1, 301), "closed", concurrency=7)

    assert 300 == len(result.succeeded)
    assert 2 <= peak <= 7


# --- the journal -------------------------------------------------------------------------


async def test_journal_records_and_resume_skips_done(client, api, tmp_path):
    """Outcomes are journaled; a second run skips successes and retries failures."""
    journal = tmp_path / "run.jsonl"
    route = api.put("/chats/status").mock(side_effect=missing(3))

    first = await client.chats.bulk_update_status([1, 2, 3], "closed", journal=journal)
    api.put("/chats/status").mock(side_effect=status_echo)
    second = await client.chats.bulk_update_status([1, 2, 3, 4], "closed", journal=journal)

    assert {3} == set(first.failed)
    assert [1, 2, 3, 3, 4] == sorted(sent_ids(route))
    assert 2 == second.skipped
    assert [3, 4] == sorted(c.id for c in second.succeeded)
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert 5 == len(lines)  # three, then the two that were not done
    assert {"id", "op", "ok", "error", "at"} == set(lines[0])
    failure = "NotFoundError: HTTP 404 Not Found: chat_not_found: Chat not found"
    assert [(1, True, None), (2, True, None), (3, False, failure)] == sorted(
        (line["id"], line["ok"], line["error"]) for line in lines[:3]
    )


async def test_journal_is_per_status(client, api, tmp_path):
    """Ids done for one status are not skipped when setting another; the last one counts."""
    journal = hc.Journal(tmp_path / "j.jsonl")
    route = api.put("/chats/status").mock(side_effect=status_echo)

    await client.chats.bulk_update_status([1, 2], "opened", journal=journal)
    await client.chats.bulk_update_status([1, 2], "closed", journal=journal)

    assert 4 == route.call_count
    assert {1, 2} == journal.done("closed")
    assert set() == journal.done("opened")


async def test_close_reopen_close_leaves_every_chat_closed(client, api, tmp_path):
    """One journal for close, reopen, close again: the third run closes them all again."""
    journal = tmp_path / "j.jsonl"
    route = api.put("/chats/status").mock(side_effect=status_echo)

    for status in ("closed", "opened", "closed"):
        result = await client.chats.bulk_update_status([1, 2, 3], status, journal=journal)
        assert 0 == result.skipped

    last_run = [json.loads(call.request.content) for call in route.calls][-3:]
    assert [("closed", i) for i in (1, 2, 3)] == sorted((c["status"], c["id"]) for c in last_run)
    assert {1, 2, 3} == hc.Journal(journal).done("closed")


async def test_interrupted_run_resumes(client, api, tmp_path):
    """A run cut short (break) resumes where it stopped, redoing nothing recorded as done."""
    journal = tmp_path / "j.jsonl"
    route = api.put("/chats/status").mock(side_effect=status_echo)
    async with client.chats.stream_update_status(
        range(1, 51), "closed", journal=journal, concurrency=2
    ) as outcomes:
        async for outcome in outcomes:
            if outcome.chat_id >= 10:
                break
    done_before = hc.Journal(journal).done("closed")

    result = await client.chats.bulk_update_status(range(1, 51), "closed", journal=journal)

    assert len(done_before) == result.skipped
    assert set(range(1, 51)) == done_before | {c.id for c in result.succeeded}
    assert len(sent_ids(route)) - 50 <= 4  # at most the updates cut off in flight, redone


# --- run-ending errors and odd answers ---------------------------------------------------


def engine(operation, ids, **kwargs) -> OutcomeStream[hc.ChatOutcome]:
    """The bulk engine over a plain per-id operation."""
    kwargs.setdefault("concurrency", 2)
    kwargs.setdefault("outcome", hc.ChatOutcome)
    return OutcomeStream(
        operation,
        ids,
        name="closed",
        journal=kwargs.pop("journal", None),
        on_progress=None,
        **kwargs,
    )


async def test_a_run_ending_error_comes_after_every_completed_outcome(tmp_path):
    """An update that completed while a 401 stopped the run is yielded and journaled."""
    failing = anyio.Event()

    async def operation(chat_id: int) -> hc.Chat:
        if chat_id == 2:
            failing.set()
            raise hc.AuthenticationError("HTTP 401", status_code=401)
        await failing.wait()
        return hc.Chat.from_json(chat_payload(chat_id))

    journal = hc.Journal(tmp_path / "j.jsonl")
    seen = []
    with pytest.raises(hc.AuthenticationError):
        async with engine(operation, [1, 2], journal=journal) as outcomes:
            await failing.wait()
            await anyio.lowlevel.checkpoint()
            async for outcome in outcomes:
                seen.append(outcome.chat_id)

    assert [1] == seen
    assert {1} == hc.Journal(tmp_path / "j.jsonl").done("closed")


async def test_an_unexpected_exception_is_that_ids_failed_outcome():
    """A non-SDK exception while handling one answer fails that id only."""

    async def operation(chat_id: int) -> hc.Chat:
        if chat_id == 2:
            raise RecursionError("maximum recursion depth exceeded")
        return hc.Chat.from_json(chat_payload(chat_id))

    outcomes = {}
    async with engine(operation, [1, 2, 3]) as stream:
        async for outcome in stream:
            outcomes[outcome.chat_id] = outcome.error

    assert {1: None, 3: None} == {k: v for k, v in outcomes.items() if v is None}
    assert isinstance(outcomes[2], hc.ResponseValidationError)
    assert isinstance(outcomes[2].__cause__, RecursionError)


@pytest.mark.parametrize(("kwargs", "what"), [({}, "chat"), ({"what": "customer"}, "customer")])
async def test_failures_name_what_an_id_stands_for(kwargs, what):
    """A bad id and an answer that cannot be processed: both messages name the kind of id."""

    async def operation(item_id: int) -> hc.Chat:
        raise RecursionError("maximum recursion depth exceeded")

    errors = {}
    async with engine(operation, ["x", 2], **kwargs) as stream:
        async for outcome in stream:
            errors[outcome.chat_id] = str(outcome.error)

    assert {
        "x": f"{what}_id must be an int, not str: 'x'",
        2: f"{what} 2: the answer could not be processed: "
        "RecursionError: maximum recursion depth exceeded",
    } == errors


async def test_each_outcome_is_built_from_id_result_and_error():
    """The engine's outcome builder gets (id, result, None) or (id, None, error)."""
    built: list[tuple[Any, ...]] = []

    def outcome(*args: Any) -> hc.ChatOutcome:
        built.append(args)
        return hc.ChatOutcome(*args)

    async def operation(chat_id: int) -> hc.Chat:
        return hc.Chat.from_json(chat_payload(chat_id))

    async with engine(operation, [1, 0], outcome=outcome) as stream:
        errors = {o.chat_id: o.error for o in [o async for o in stream]}

    assert [(0, None, errors[0]), (1, hc.Chat.from_json(chat_payload(1)), None)] == sorted(
        built, key=lambda args: args[0]
    )


async def test_a_run_ending_error_does_not_wait_for_a_slow_id_source():
    """A 401 ends the run even while the id source has nothing more to give yet."""
    waiting_for_ids = anyio.Event()

    async def source() -> AsyncIterator[int]:
        yield 1
        waiting_for_ids.set()
        await anyio.sleep_forever()
        yield 2  # pragma: no cover - never reached

    async def operation(chat_id: int) -> hc.Chat:
        await waiting_for_ids.wait()  # the 401 comes while the run waits for the next id
        raise hc.AuthenticationError("HTTP 401", status_code=401)

    with pytest.raises(hc.AuthenticationError):
        async with engine(operation, source()) as outcomes:
            async for _ in outcomes:
                pass  # pragma: no cover - no outcome


@pytest.mark.parametrize("error", [hc.ClientClosedError, hc.LimiterUnavailableError])
async def test_a_closed_client_or_unusable_limiter_ends_the_run(error):
    """Errors that would fail every id end the run once, as themselves."""

    async def operation(chat_id: int) -> hc.Chat:
        raise error("stop")

    with pytest.raises(error):
        async with engine(operation, range(1, 100)) as outcomes:
            async for _ in outcomes:
                pass  # pragma: no cover - no outcome


async def test_tasks_never_outnumber_the_ids(client, api):
    """The largest concurrency over three ids starts three tasks, not a thousand."""
    api.put("/chats/status").mock(side_effect=status_echo)

    result = await client.chats.bulk_update_status([1, 2, 3], "closed", concurrency=1000)

    assert 3 == len(result.succeeded)
    with pytest.raises(ValueError, match="<= 1000"):
        client.chats.stream_update_status([1], "closed", concurrency=1001)


async def test_bulk_work_is_background_traffic(make_client, api):
    """The bulk helpers ask the limiter for background turns; a direct call is interactive."""
    api.put("/chats/status").mock(side_effect=status_echo)
    limiter = StubLimiter()

    async with make_client(rate_limit=limiter) as client:
        await client.chats.bulk_update_status([1, 2], "closed")
        await client.chats.update_status(3, "closed")
        await client.with_options(priority="interactive").chats.bulk_update_status([4], "closed")

    asked = [priority for priority, _ in limiter.acquired]
    assert ["background", "background", "interactive", "interactive"] == asked
    assert {None} == {deadline for _, deadline in limiter.acquired}


def test_an_outcome_is_either_a_chat_or_an_error():
    """ChatOutcome refuses the impossible states."""
    with pytest.raises(ValueError, match="exactly one"):
        hc.ChatOutcome(1)
    with pytest.raises(ValueError, match="exactly one"):
        hc.ChatOutcome(1, chat=hc.Chat.from_json(chat_payload(1)), error=ValueError("x"))
