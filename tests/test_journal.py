"""The journal: what a resume skips, torn lines, one writer, and paths that are no file."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpcrunch_async as hc
from helpcrunch_async._bulk._journal import MAX_LINE
from helpcrunch_async._models._json import MAX_TEXT
from tests.conftest import status_echo

needs_posix = pytest.mark.skipif(sys.platform == "win32", reason="POSIX files and locks")


def write_lines(path: Path, *entries: dict[str, object], tail: str = "") -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries) + tail)


def entry(chat_id: object, op: str, ok: bool = True) -> dict[str, object]:
    return {"id": chat_id, "op": op, "ok": ok, "error": None if ok else "ServerError: 503"}


# --- what done() counts -------------------------------------------------------------------


def test_latest_record_across_operations_decides():
    """An id is done for op only if its latest record, of any op, is a success of op."""
    records = [
        (1, "closed", True),
        (2, "closed", True),
        (1, "opened", True),  # reopened: no longer closed
        (3, "closed", True),
        (3, "opened", False),  # a failed reopen may have been applied: closed is not sure
        (4, "opened", True),
        (4, "closed", True),  # closed again: the latest counts
    ]

    assert ({2, 4}, {1}) == _done_after(records, "closed", "opened")


def _done_after(records: list[tuple[int, str, bool]], *ops: str) -> tuple[set[int], ...]:
    """Record ``records`` in a fresh journal (also per hypothesis example); done() per op."""
    with tempfile.TemporaryDirectory() as folder:
        journal = hc.Journal(Path(folder) / "j.jsonl")
        for chat_id, op, ok in records:
            journal.record(chat_id, op, ok=ok, error=None if ok else "failed")
        journal.close()
        return tuple(journal.done(op) for op in ops)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 5), st.sampled_from(["closed", "opened", "pending"]), st.booleans()
        ),
        max_size=30,
    )
)
def test_done_is_the_latest_success_whatever_the_history(records):
    """For any history of runs, done(op) is exactly the ids whose last record is op, ok."""
    latest = {chat_id: (op, ok) for chat_id, op, ok in records}
    expected = tuple(
        {i for i, (op, ok) in latest.items() if ok and op == wanted}
        for wanted in ("closed", "opened", "pending")
    )

    assert expected == _done_after(records, "closed", "opened", "pending")


def test_invalid_ids_are_recorded_but_never_done(tmp_path):
    """A bad id is recorded as text and never counts as done."""
    journal = hc.Journal(tmp_path / "j.jsonl")
    journal.record("'abc'", "closed", ok=False, error="TypeError: chat_id must be an int")
    journal.close()

    assert set() == journal.done("closed")


# --- torn and damaged lines ---------------------------------------------------------------


def test_torn_last_line_is_ignored_but_damage_elsewhere_is_loud(tmp_path):
    """A crash mid-write leaves a torn last line, which is ignored; damage elsewhere is loud."""
    path = tmp_path / "j.jsonl"
    write_lines(path, entry(1, "closed"), tail='{"id": 2, "op')

    assert {1} == hc.Journal(path).done("closed")

    path.write_text("garbage\n" + json.dumps(entry(1, "closed")) + "\n")
    with pytest.raises(ValueError, match=r"j\.jsonl:1"):
        hc.Journal(path).done("closed")


def test_torn_last_line_is_cut_before_appending(tmp_path):
    """The next record starts on a line of its own, so the resume after it still reads."""
    path = tmp_path / "j.jsonl"
    write_lines(path, entry(1, "closed"), tail='{"id": 2, "op": "clo')
    journal = hc.Journal(path)

    journal.record(3, "closed", ok=True)
    journal.close()

    assert {1, 3} == journal.done("closed")
    assert [1, 3] == [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_whole_last_entry_without_newline_is_kept(tmp_path):
    """A last entry that is whole but lost its newline is kept, and ended."""
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(entry(1, "closed")))
    journal = hc.Journal(path)

    journal.record(2, "closed", ok=True)
    journal.close()

    assert {1, 2} == journal.done("closed")


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(min_value=1, max_value=200))
def test_any_crash_point_is_repaired(tmp_path_factory, cut):
    """Whatever byte a crash stopped at, opening repairs it and later records read back."""
    path = tmp_path_factory.mktemp("j") / "j.jsonl"
    whole = json.dumps(entry(1, "closed")) + "\n"
    torn = json.dumps(entry(2, "closed", ok=False)) + "\n"
    path.write_text(whole + torn[: cut % len(torn)])
    journal = hc.Journal(path)

    journal.record(3, "closed", ok=True)
    journal.close()

    assert {1, 3} == journal.done("closed")


def test_overlong_line_is_refused_without_reading_it_whole(tmp_path):
    """A line longer than any record is damage: refused, naming the line."""
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"x" * (MAX_LINE * 4) + b"\n" + json.dumps(entry(1, "closed")).encode())

    with pytest.raises(ValueError, match=r"j\.jsonl:1: line longer"):
        hc.Journal(path).done("closed")


def test_records_are_bounded(tmp_path):
    """An error text of any size is cut, so every line stays far below the read limit."""
    journal = hc.Journal(tmp_path / "j.jsonl")

    journal.record("x" * 10**6, "closed", ok=False, error="\u2603" * 10**6)
    journal.close()

    line = (tmp_path / "j.jsonl").read_bytes()
    assert len(line) < MAX_LINE
    assert MAX_TEXT == len(json.loads(line)["error"])


@pytest.mark.parametrize(
    ("args", "kwargs", "exc"),
    [
        ((True, "closed"), {"ok": True}, TypeError),
        ((1.0, "closed"), {"ok": True}, TypeError),
        ((1, ""), {"ok": True}, ValueError),
        ((1, "x" * 201), {"ok": True}, ValueError),
        ((1, "closed"), {"ok": 1}, TypeError),
        ((1, "closed"), {"ok": False, "error": 42}, TypeError),
    ],
)
def test_bad_records_are_refused(tmp_path, args, kwargs, exc):
    """A record that could not be read back as written is refused."""
    with pytest.raises(exc):
        hc.Journal(tmp_path / "j.jsonl").record(*args, **kwargs)


# --- one writer at a time -----------------------------------------------------------------


@needs_posix
def test_second_writer_in_the_same_process_is_refused(tmp_path):
    """Two journals on one file: the second open is refused while the first holds it."""
    first, second = hc.Journal(tmp_path / "j.jsonl"), hc.Journal(tmp_path / "j.jsonl")
    first.open()

    with pytest.raises(ValueError, match="in use"):
        second.open()

    first.close()
    second.open()  # released on close
    second.close()


@needs_posix
def test_second_writer_process_is_refused(tmp_path):
    """Another process holding the journal: a run here is refused with a clear error."""
    path = tmp_path / "j.jsonl"
    holder = textwrap.dedent(
        f"""
        import sys
        import helpcrunch_async as hc
        journal = hc.Journal({str(path)!r})
        journal.open()
        print("locked", flush=True)
        sys.stdin.read()
        """
    )
    with subprocess.Popen(  # noqa: S603 - this interpreter, running our own script
        [sys.executable, "-c", holder],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=60), "the child never locked the journal"
        assert "locked" == child.stdout.readline().strip()

        with pytest.raises(ValueError, match="in use by another run"):
            hc.Journal(path).open()

        child.stdin.close()
        child.wait(timeout=60)


@pytest.mark.anyio
@needs_posix
async def test_locked_journal_stops_a_bulk_run_before_sending(client, api, tmp_path):
    """A bulk run on a journal in use sends nothing."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    holder = hc.Journal(tmp_path / "j.jsonl")
    holder.open()

    with pytest.raises(ValueError, match="in use"):
        await client.chats.bulk_update_status([1, 2], "closed", journal=tmp_path / "j.jsonl")

    holder.close()
    assert 0 == route.call_count


@pytest.mark.anyio
async def test_one_journal_object_serves_one_run_at_a_time(client, api, tmp_path):
    """The same Journal given to a second run while the first is open is refused."""
    api.put("/chats/status").mock(side_effect=status_echo)
    journal = hc.Journal(tmp_path / "j.jsonl")

    async with client.chats.stream_update_status([1], "closed", journal=journal) as outcomes:
        with pytest.raises(ValueError, match="in use"):
            await client.chats.bulk_update_status([2], "closed", journal=journal)
        assert [1] == [outcome.chat_id async for outcome in outcomes]

    assert {1} == journal.done("closed")


@needs_posix
def test_cli_refuses_a_journal_that_is_no_file_before_sending(tmp_path):
    """`helpcrunch chats set-status --journal <fifo>`: a usage error, no traceback, no hang."""
    from click.testing import CliRunner  # noqa: PLC0415 - the CLI's extra is optional

    from helpcrunch_async._cli._commands import cli  # noqa: PLC0415

    env = {"HELPCRUNCH_API_KEY": "k", "HELPCRUNCH_BASE_URL": "http://127.0.0.1:9/v1"}
    result = CliRunner().invoke(
        cli, ["chats", "set-status", "closed", "1", "--journal", str(_fifo(tmp_path))], env=env
    )

    assert 2 == result.exit_code
    assert "not a regular file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- paths that are no regular file -------------------------------------------------------


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def _folder(tmp_path: Path) -> Path:
    return tmp_path


def _dev_full(tmp_path: Path) -> Path:
    return Path("/dev/full")


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "j.jsonl"


@pytest.mark.anyio
@needs_posix
@pytest.mark.parametrize("make", [_fifo, _folder, _dev_full, _under_a_file])
async def test_path_that_is_no_file_fails_before_sending(client, api, tmp_path, make):
    """A FIFO, a folder, /dev/full or a path under a file: a clear ValueError, nothing sent."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    path = make(tmp_path)

    with pytest.raises(ValueError, match="journal"):
        await client.chats.bulk_update_status([1, 2], "closed", journal=path)

    assert 0 == route.call_count


@needs_posix
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
@pytest.mark.parametrize("mode", [0o000, 0o400])
def test_unreadable_or_read_only_journal_is_refused(tmp_path, mode):
    """No permission to read, or to append: a clear ValueError when the journal opens."""
    path = tmp_path / "j.jsonl"
    write_lines(path, entry(1, "closed"))
    path.chmod(mode)

    with pytest.raises(ValueError, match="cannot be"):
        hc.Journal(path).open()


def test_fifo_is_refused_by_done_without_blocking(tmp_path):
    """Reading a FIFO would wait for a writer forever: it is refused at once."""
    if sys.platform == "win32":
        pytest.skip("no FIFOs")
    with pytest.raises(ValueError, match="not a regular file"):
        hc.Journal(_fifo(tmp_path)).done("closed")


def test_journal_path_type_and_repr(tmp_path):
    """A path of a wrong type is a TypeError; the repr names the file."""
    with pytest.raises(TypeError):
        hc.Journal(42)  # type: ignore[arg-type]
    assert "j.jsonl" in repr(hc.Journal(tmp_path / "j.jsonl"))
