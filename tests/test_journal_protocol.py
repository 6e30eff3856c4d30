"""The bulk engine talks to any BulkJournal: claims before sending, records after, waits between."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator

import anyio
import pytest
import trio.testing

import helpcrunch_async as hc
from tests.conftest import StubLimiter, status_echo


class ScriptedJournal:
    """A journal whose claims follow a script: id -> answers in turn (then "send")."""

    def __init__(self, answers: dict[int, list[hc.Claim]]) -> None:
        self.answers = answers
        self.asked: list[tuple[float, int]] = []
        self.records: list[tuple[int | str, bool, str | None]] = []
        self.released: list[int] = []
        self.sessions: list[str] = []

    @contextlib.asynccontextmanager
    async def session(self, op: str) -> AsyncIterator[ScriptedJournal]:
        self.sessions.append(op)
        yield self

    async def claim(self, item_id: int) -> hc.Claim:
        self.asked.append((anyio.current_time(), item_id))
        queue = self.answers.get(item_id, [])
        return queue.pop(0) if queue else hc.Claim("send")

    async def record(self, item_id: int | str, *, ok: bool, error: str | None = None) -> None:
        self.records.append((item_id, ok, error))

    async def release(self, item_id: int) -> None:
        self.released.append(item_id)


def sent_ids(route) -> list[int]:
    return [json.loads(c.request.content)["id"] for c in route.calls]


def test_a_journal_of_ones_own_is_a_bulk_journal():
    """The protocol is checked whole: a session() makes a BulkJournal."""
    assert isinstance(ScriptedJournal({}), hc.BulkJournal)
    assert isinstance(ScriptedJournal({}), hc.JournalSession)
    assert not isinstance(object(), hc.BulkJournal)


@pytest.mark.anyio
async def test_anything_else_as_journal_is_refused_before_sending(anyio_backend, client, api):
    """journal= takes a path or a BulkJournal; anything else is a TypeError at once."""
    route = api.put("/chats/status").mock(side_effect=status_echo)

    with pytest.raises(TypeError) as info:
        client.chats.stream_update_status([1], "closed", journal=42)

    assert 0 == route.call_count
    assert (
        "journal must be a path, a Journal, a RedisJournal or another BulkJournal, not int"
    ) == str(info.value)


@pytest.mark.anyio
async def test_an_invalid_id_is_never_claimed_but_recorded_with_its_error(
    anyio_backend, client, api
):
    """Ids that cannot be sent fail without a claim, recorded by their text and error."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    journal = ScriptedJournal({})

    await client.chats.bulk_update_status(["x", 0, 1, True], "closed", journal=journal)

    assert ([1], [1]) == (sent_ids(route), [item for _, item in journal.asked])
    assert [
        ("'x'", False, "TypeError: chat_id must be an int, not str: 'x'"),
        ("True", False, "TypeError: chat_id must be an int, not bool: True"),
        (0, False, "ValueError: chat_id must be a positive 64-bit integer, got 0"),
        (1, True, None),
    ] == sorted(journal.records, key=repr)


VIRTUAL_CLOCK = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)


@pytest.mark.anyio
@VIRTUAL_CLOCK
async def test_an_id_another_worker_holds_is_asked_about_again_until_settled(client, api):
    """Held elsewhere (wait), then done there (skip): never sent, the run waits for it."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    held = [hc.Claim("wait", retry_in=30.0)] * 3 + [hc.Claim("skip")]
    journal = ScriptedJournal({2: list(held)})

    result = await client.chats.bulk_update_status([1, 2, 3], "closed", journal=journal)

    assert [1, 3] == sorted(sent_ids(route))
    assert (2, 1) == (len(result.succeeded), result.skipped)
    asked_2 = [at for at, item in journal.asked if item == 2]
    # Asked again each WAIT_POLL (1 s), never sooner, however long the holder's lease.
    assert [1.0, 1.0, 1.0] == [round(b - a, 3) for a, b in itertools.pairwise(asked_2)]
    assert [(1, True, None), (3, True, None)] == sorted(journal.records)
    assert ["closed"] == journal.sessions


@pytest.mark.anyio
@VIRTUAL_CLOCK
async def test_an_id_whose_holder_died_is_sent_once_its_lease_lapses(client, api):
    """Wait for the lease the journal names, then the claim succeeds and the id goes."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    journal = ScriptedJournal({5: [hc.Claim("wait", retry_in=0.25)]})

    result = await client.chats.bulk_update_status([5], "closed", journal=journal)

    assert [5] == sent_ids(route)
    assert [0.25] == [round(b[0] - a[0], 3) for a, b in itertools.pairwise(journal.asked)]
    assert 1 == len(result.succeeded)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "error",
    [hc.JournalError("Redis is gone"), LookupError("no such key")],
    ids=["journal-error", "a-bug-of-its-own"],
)
async def test_a_claim_that_fails_ends_the_run_with_its_error(anyio_backend, client, api, error):
    """A claim that raises (a JournalError, or a bug of a journal of one's own) ends the run
    with that very exception; the ids before it were sent, none after."""
    route = api.put("/chats/status").mock(side_effect=status_echo)

    class Broken(ScriptedJournal):
        async def claim(self, item_id: int) -> hc.Claim:
            if item_id == 3:
                raise error
            return await super().claim(item_id)

    with pytest.raises(type(error)) as info:
        await client.chats.bulk_update_status(
            [1, 2, 3, 4], "closed", concurrency=1, journal=Broken({})
        )

    assert error is info.value
    assert [1, 2] == sent_ids(route)


@pytest.mark.anyio
async def test_an_id_with_no_turn_is_released_not_recorded(
    anyio_backend, make_client, api, tmp_path
):
    """LimiterTimeoutError: nothing was sent; its claim is given back, the file gets no line."""

    class Refusing(StubLimiter):
        async def acquire(self, **_: object) -> None:
            raise hc.LimiterTimeoutError("no turn", retry_after=2.0)

    scripted = ScriptedJournal({})
    async with make_client(rate_limit=Refusing()) as client:
        result = await client.chats.bulk_update_status([1], "closed", journal=scripted)
        await client.chats.bulk_update_status([1], "closed", journal=tmp_path / "j.jsonl")

    assert hc.LimiterTimeoutError is type(result.failed[1])
    assert ([1], []) == (scripted.released, scripted.records)
    assert "" == (tmp_path / "j.jsonl").read_text()
