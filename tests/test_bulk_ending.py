"""How a bulk run ends: one error, never a group; a journal that cannot record stops it;
failed outcomes keep facts, not frames; nothing leaves once the block is left."""

from __future__ import annotations

import errno
import gc
import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trio.testing

import helpcrunch_async as hc
from helpcrunch_async import OutcomeStream
from helpcrunch_async.emulator import EmulatorConfig, serve
from tests.conftest import API_KEY, BASE_URL, chat_payload

pytestmark = pytest.mark.anyio

VIRTUAL = pytest.mark.parametrize(
    "anyio_backend", [("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})]
)
#: A proxy's error page: 100 KB of HTML that no failed outcome may keep.
HTML_PAGE = b"<html><body>" + b"<p>Not Found</p>" * 6400 + b"</body></html>"


class Server:
    """A mock transport: answers every status PUT, and notes what the journal knew then."""

    def __init__(self, status: int = 200, journal_failures: list[int] | None = None) -> None:
        self.sent: list[int] = []
        self.status = status
        self.failed_writes_when_sent: list[int] = []
        self._journal_failures = journal_failures

    def __call__(self, request: httpx.Request) -> httpx.Response:
        chat_id = json.loads(request.content)["id"]
        self.sent.append(chat_id)
        if self._journal_failures is not None:
            self.failed_writes_when_sent.append(len(self._journal_failures))
        if self.status == 404:
            page = b"<!-- %d -->" % chat_id + HTML_PAGE  # a body of its own, as from a socket
            return httpx.Response(404, headers={"Content-Type": "text/html"}, content=page)
        return httpx.Response(200, json=chat_payload(chat_id))


def client_for(server: Server, **kwargs: Any) -> hc.HelpCrunch:
    kwargs.setdefault("rate_limit", None)
    kwargs.setdefault("retry", hc.Retry(backoff=0))
    transport = httpx.MockTransport(server)
    return hc.HelpCrunch(
        API_KEY, base_url=BASE_URL, http_client=httpx.AsyncClient(transport=transport), **kwargs
    )


def full_disk_after(
    monkeypatch: pytest.MonkeyPatch, path: Path, writes: int, failures: list[int]
) -> None:
    """Make writes to the file at ``path`` fail with ENOSPC after ``writes`` of them.

    ``/dev/full`` cannot stand in (the journal refuses what is not a regular file), so the
    disk fills up under the journal's own file; every other write goes through.
    """
    real_write = os.write
    done = 0

    def write(fd: int, data: Any) -> int:
        nonlocal done
        if path.exists() and os.path.samestat(os.fstat(fd), path.stat()):
            if done >= writes:
                failures.append(fd)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += 1
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


# --- a journal that cannot record ---------------------------------------------------------


async def test_a_full_disk_ends_the_run_with_one_journal_error(tmp_path, monkeypatch):
    """Disk full: the journaled outcomes, then one JournalError naming path and cause."""
    path = tmp_path / "close.jsonl"
    failures: list[int] = []
    server = Server(journal_failures=failures)
    full_disk_after(monkeypatch, path, 3, failures)
    yielded = []

    async with client_for(server) as client:
        with pytest.raises(hc.JournalError) as info:
            stream = client.chats.stream_update_status(range(1, 1000), "closed", journal=path)
            async with stream as outcomes:
                async for outcome in outcomes:
                    yielded.append(outcome.chat_id)

    error = info.value
    assert hc.JournalError is type(error)
    assert (path, errno.ENOSPC) == (error.path, error.errno)
    assert str(path) in str(error)
    assert os.strerror(errno.ENOSPC) in str(error)
    assert isinstance(error, OSError)  # `except OSError` still sees a disk problem
    assert set(yielded) == hc.Journal(path).done("closed")  # yielded: exactly the journaled
    assert 3 == len(yielded)
    assert 0 == max(server.failed_writes_when_sent)  # nothing sent once it could not record


async def test_a_journal_that_cannot_be_flushed_at_the_end_is_a_journal_error(
    tmp_path, monkeypatch
):
    """A run whose last flush fails raises JournalError as it ends, after its outcomes."""
    path = tmp_path / "close.jsonl"

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    async with client_for(Server()) as client:
        with pytest.raises(hc.JournalError, match="flushed") as info:
            await client.chats.bulk_update_status([1, 2], "closed", journal=path)

    assert errno.EIO == info.value.errno
    assert str(info.value).startswith(
        f"journal {path} cannot be flushed to disk: {os.strerror(errno.EIO)}; "
        "its last records may be lost: run again"
    )


def test_a_journal_write_refused_by_the_disk_is_a_journal_error(tmp_path, monkeypatch):
    """Journal.record on a full disk raises JournalError (an OSError), not a bare OSError."""
    path = tmp_path / "j.jsonl"
    journal = hc.Journal(path)
    journal.open()
    full_disk_after(monkeypatch, path, 0, [])

    with pytest.raises(hc.JournalError) as info:
        journal.record(1, "closed", ok=True)

    assert errno.ENOSPC == info.value.errno
    assert (
        f"journal {path} cannot be written: {os.strerror(errno.ENOSPC)}; the outcomes recorded "
        "before it stand: run again with the same journal to resume once the disk can be written"
    ) == str(info.value)
    monkeypatch.undo()
    journal.close()


def test_a_torn_line_that_cannot_be_repaired_refuses_the_journal(tmp_path, monkeypatch):
    """A full disk while ending a whole last entry: a ValueError, and the file is let go."""
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps({"id": 1, "op": "closed", "ok": True, "error": None}))
    full_disk_after(monkeypatch, path, 0, [])

    with pytest.raises(ValueError) as info:
        hc.Journal(path).open()

    assert f"journal {path} cannot be repaired: {os.strerror(errno.ENOSPC)}" == str(info.value)
    monkeypatch.undo()
    journal = hc.Journal(path)  # not left locked: the next run repairs it
    journal.open()
    journal.close()
    assert {1} == journal.done("closed")


# --- one error per run ----------------------------------------------------------------------


def engine(operation: Any, ids: Any, **kwargs: Any) -> OutcomeStream[hc.ChatOutcome]:
    kwargs.setdefault("concurrency", 4)
    journal = kwargs.pop("journal", None)
    return OutcomeStream(
        operation,
        ids,
        name="closed",
        outcome=hc.ChatOutcome,
        journal=journal,
        on_progress=None,
        **kwargs,
    )


async def update(chat_id: int) -> hc.Chat:
    await anyio.lowlevel.checkpoint()
    return hc.Chat.from_json(chat_payload(chat_id))


async def test_a_failing_outcome_hook_ends_the_run_with_its_error_alone():
    """Whatever fails inside a worker comes out once, as itself, not in an ExceptionGroup."""

    def on_outcome(outcome: hc.ChatOutcome) -> None:
        if outcome.chat_id == 3:
            raise LookupError("hook failed")

    with pytest.raises(LookupError, match="hook failed") as info:
        async with engine(update, range(1, 100), on_outcome=on_outcome) as outcomes:
            async for _ in outcomes:
                pass

    assert LookupError is type(info.value)


async def test_a_journal_raising_a_bare_os_error_ends_the_run_with_it_alone(tmp_path):
    """A journal of one's own that raises OSError: that one error, not a nested group."""

    class Broken(hc.Journal):
        def record(self, *_: Any, **__: Any) -> None:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    with pytest.raises(OSError, match="Read-only") as info:
        async with engine(update, range(1, 100), journal=Broken(tmp_path / "j")) as outcomes:
            async for _ in outcomes:
                pass  # pragma: no cover - nothing is recorded, so nothing is yielded

    assert OSError is type(info.value)


async def test_updates_that_complete_after_the_journal_failed_are_not_yielded(
    tmp_path, monkeypatch
):
    """Updates completing as a record fails cannot be journaled, so they are not yielded."""
    path = tmp_path / "j.jsonl"
    full_disk_after(monkeypatch, path, 0, [])
    both_waiting, release = anyio.Event(), anyio.Event()
    waiting = 0

    async def operation(chat_id: int) -> hc.Chat:
        nonlocal waiting
        if chat_id == 3:  # completes, and its record fails, as 1 and 2 complete
            await both_waiting.wait()
            release.set()
        else:
            waiting += 1
            if waiting == 2:  # ids 1 and 2
                both_waiting.set()
            await release.wait()
        return hc.Chat.from_json(chat_payload(chat_id))

    yielded = []
    with pytest.raises(hc.JournalError):
        async with engine(operation, [1, 2, 3], journal=path) as outcomes:
            async for outcome in outcomes:
                yielded.append(outcome.chat_id)  # pragma: no cover - nothing is journaled

    assert [] == yielded
    assert b"" == path.read_bytes()


# --- what a failure keeps ----------------------------------------------------------------------


async def test_500_failures_with_100_kb_bodies_hold_under_5_mb():
    """500 ids answered 404 with a 100 KB page: BulkResult.failed holds kilobytes each."""
    async with client_for(Server(status=404)) as client:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            result = await client.chats.bulk_update_status(range(1, 501), "closed")
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()

    assert 500 == len(result.failed)
    assert all(isinstance(error, hc.NotFoundError) for error in result.failed.values())
    assert held < 5 * 2**20, f"{held / 2**20:.1f} MiB held"


async def test_a_long_run_keeps_little_of_each_id_it_is_done_with():
    """Past outcomes dropped, a run holds about the id itself (to skip duplicates), no task."""
    held: dict[int, int] = {}
    tracemalloc.start()
    try:
        async with engine(update, range(1, 3_001)) as outcomes:
            async for _ in outcomes:
                if outcomes.done in (500, 3_000):
                    gc.collect()
                    held[outcomes.done] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()

    per_id = (held[3_000] - held[500]) / 2_500
    assert per_id < 150, f"{per_id:.0f} bytes held per id"


async def test_a_failed_outcome_keeps_no_frames_along_its_chain():
    """The error of a failed outcome, and every error chained to it, has no traceback."""

    async def broken(chat_id: int) -> hc.Chat:
        if chat_id == 1:
            raise hc.NotFoundError("HTTP 404", status_code=404)
        answer: dict[str, Any] = {}
        try:
            return hc.Chat.from_json(answer["chat"])  # a KeyError deep in the parsing
        except KeyError as exc:
            raise ValueError("no chat in the answer") from exc

    failed = {}
    async with engine(broken, [1, 2]) as outcomes:
        async for outcome in outcomes:
            failed[outcome.chat_id] = outcome.error

    chain: list[BaseException | None] = [failed[1], failed[2]]
    while chain[-1] is not None:
        chain.append(chain[-1].__cause__)
    assert [hc.NotFoundError, hc.ResponseValidationError, ValueError, KeyError, type(None)] == [
        type(error) for error in chain
    ]
    assert [None] * 4 == [error.__traceback__ for error in chain if error is not None]


# --- nothing leaves once the block is left -------------------------------------------------


@VIRTUAL
async def test_after_a_break_nothing_more_is_sent_under_trio():
    """Leaving the stream with break: not one request leaves afterwards, however long."""
    server = Server()
    async with client_for(server, rate_limit=hc.RateLimit(requests=120, per=60.0)) as client:
        async with client.chats.stream_update_status(range(1, 1000), "closed") as outcomes:
            async for _ in outcomes:
                break
        sent = len(server.sent)
        await anyio.sleep(60)

        assert sent == len(server.sent)


# httpx's request body is an async generator that trio reports when a cancel cuts a request
# short (encode/httpx#3686): a warning about httpx's own object, nothing of this SDK.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object ByteStream.__aiter__"
    ":pytest.PytestUnraisableExceptionWarning"
)
async def test_after_a_break_the_server_sees_no_request_the_client_had_not_started():
    """Over a real socket, every request the emulator saw was started inside the block."""
    started = 0

    class Counting(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal started
            started += 1
            return await super().handle_async_request(request)

    config = EmulatorConfig(chats=300, rate_limit=None)
    async with serve(config) as emulator:
        http = httpx.AsyncClient(transport=Counting())
        async with hc.HelpCrunch(
            emulator.api_key, base_url=emulator.base_url, rate_limit=None, http_client=http
        ) as client:
            first = 5_215_700
            ids = range(first, first + 300)
            async with client.chats.stream_update_status(ids, "closed") as outcomes:
                async for _ in outcomes:
                    break
            started_in_block = started
            await anyio.sleep(0.5)  # the server thread may still be reading what was sent
        await http.aclose()

        assert emulator.stats()["requests"] <= started_in_block
        assert started == started_in_block
