"""The journal: what a resume skips, torn lines, one writer, and paths that are no file."""

from __future__ import annotations

import errno
import json
import os
import re
import selectors
import stat
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import example, given, settings
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


@pytest.mark.parametrize(
    "line",
    [
        b"garbage",
        b'["closed", 1, true]',
        b'{"id": 1.5, "op": "closed", "ok": true}',
        b'{"id": 1, "op": 5, "ok": true}',
        b'{"id": 1, "op": "closed", "ok": 1}',
        b'{"id": 1, "op": "closed", "ok": "true"}',
    ],
)
def test_a_line_that_is_no_entry_is_refused_naming_it(tmp_path, line):
    """Past blank lines, a line that is not a journal entry is refused by its number."""
    path = tmp_path / "j.jsonl"
    write_lines(path, entry(1, "closed"), tail="\n" + json.dumps(entry(2, "closed")) + "\n")
    path.write_bytes(path.read_bytes() + line + b"\n")

    with pytest.raises(ValueError) as info:
        hc.Journal(path).done("closed")

    assert f"{path}:4: not a journal entry: {line.decode()!r}" == str(info.value)


def test_blank_lines_are_skipped(tmp_path):
    """A blank line between entries is no damage: the entries after it count."""
    path = tmp_path / "j.jsonl"
    write_lines(path, entry(1, "closed"), tail="\n\n" + json.dumps(entry(2, "closed")) + "\n")

    assert {1, 2} == hc.Journal(path).done("closed")


def test_torn_last_line_is_cut_before_appending(tmp_path):
    """Only the torn line is cut: the next record starts on a line of its own."""
    path = tmp_path / "j.jsonl"
    write_lines(path, entry(1, "closed"), entry(2, "closed"), tail='{"id": 3, "op": "clo')
    journal = hc.Journal(path)

    journal.record(4, "closed", ok=True)
    journal.close()

    assert {1, 2, 4} == journal.done("closed")
    assert [1, 2, 4] == [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_whole_last_entry_without_newline_is_kept(tmp_path):
    """A last entry that is whole but lost its newline is kept, and ended."""
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(entry(1, "closed")))
    journal = hc.Journal(path)

    journal.record(2, "closed", ok=True)
    journal.close()

    assert {1, 2} == journal.done("closed")


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(min_value=1, max_value=200), before=st.integers(0, 2))
@example(cut=1, before=0)  # a journal of one byte
@example(cut=1, before=2)
def test_any_crash_point_is_repaired(tmp_path_factory, cut, before):
    """Whatever byte a crash stopped at, opening repairs it and later records read back."""
    path = tmp_path_factory.mktemp("j") / "j.jsonl"
    whole = "".join(json.dumps(entry(i, "closed")) + "\n" for i in range(1, before + 1))
    torn = json.dumps(entry(9, "closed", ok=False)) + "\n"
    path.write_text(whole + torn[: cut % len(torn)])
    journal = hc.Journal(path)

    journal.record(10, "closed", ok=True)
    journal.close()

    assert {*range(1, before + 1), 10} == journal.done("closed")


def _torn(size: int) -> bytes:
    """A last line a crash cut short, ``size`` bytes long."""
    return (b'{"id": 2, "op": "closed", "ok": false, "error": "' + b"x" * size)[:size]


@pytest.mark.parametrize(
    ("before", "size"),
    [(True, MAX_LINE + 1), (False, MAX_LINE + 2)],
)
def test_torn_last_line_longer_than_any_line_is_refused_untouched(tmp_path, before, size):
    """A torn line longer than the read limit is damage: refused, and the file kept as it was."""
    path = tmp_path / "j.jsonl"
    whole = (json.dumps(entry(1, "closed")) + "\n").encode() if before else b""
    path.write_bytes(whole + _torn(size))

    with pytest.raises(ValueError) as info:
        hc.Journal(path).open()

    assert f"journal {path}: the last line is longer than {MAX_LINE} bytes" == str(info.value)
    assert whole + _torn(size) == path.read_bytes()


def test_opening_a_long_journal_reads_only_its_end(tmp_path):
    """A journal of 16 MB from a long run: repairing its torn end reads its last line only."""
    path = tmp_path / "j.jsonl"
    whole = (json.dumps(entry(1, "closed")) + "\n").encode() * 200_000
    path.write_bytes(whole + _torn(100))
    journal = hc.Journal(path)
    tracemalloc.start()
    try:
        journal.open()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        journal.close()

    assert peak < 2**20, f"{peak / 2**20:.1f} MiB read"
    assert len(whole) == path.stat().st_size


def test_torn_last_line_as_long_as_the_read_limit_is_cut(tmp_path):
    """A torn line of exactly MAX_LINE bytes is a torn line like any other: cut, then append."""
    path = tmp_path / "j.jsonl"
    write_lines(path, entry(1, "closed"))
    path.write_bytes(path.read_bytes() + _torn(MAX_LINE))
    journal = hc.Journal(path)

    journal.record(3, "closed", ok=True)
    journal.close()

    assert [1, 3] == [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_overlong_line_is_refused_without_reading_it_whole(tmp_path):
    """A line longer than any record is damage: refused, naming the line."""
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"x" * (MAX_LINE * 4) + b"\n" + json.dumps(entry(1, "closed")).encode())

    with pytest.raises(ValueError, match=r"j\.jsonl:1: line longer"):
        hc.Journal(path).done("closed")


@pytest.mark.parametrize(("padding", "ok"), [(0, True), (1, False)])
def test_a_line_of_up_to_max_line_bytes_is_read(tmp_path, padding, ok):
    """A line of MAX_LINE bytes, its newline included, reads; one byte more is refused."""
    path = tmp_path / "j.jsonl"
    line = json.dumps(entry(1, "closed"))
    path.write_text(line.ljust(MAX_LINE - 1 + padding) + "\n")

    if ok:
        assert {1} == hc.Journal(path).done("closed")
    else:
        with pytest.raises(ValueError) as info:
            hc.Journal(path).done("closed")
        assert f"{path}:1: line longer than {MAX_LINE} bytes" == str(info.value)


def test_a_huge_line_is_refused_with_little_memory(tmp_path):
    """A 64 MiB line (a sparse file here) is refused after reading just past the limit."""
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"")
    os.truncate(path, 64 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=re.escape(f"{path}:1: line longer")):
            hc.Journal(path).done("closed")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 2**20, f"{peak / 2**20:.1f} MiB read"


def test_records_are_bounded(tmp_path):
    """An error text of any size is cut, so every line stays far below the read limit."""
    journal = hc.Journal(tmp_path / "j.jsonl")

    journal.record("x" * 10**6, "closed", ok=False, error="\u2603" * 10**6)
    journal.close()

    line = (tmp_path / "j.jsonl").read_bytes()
    assert len(line) < MAX_LINE
    assert MAX_TEXT == len(json.loads(line)["error"])


OP_MESSAGE = "op must be a non-empty str of at most 200 characters"
ERROR_MESSAGE = "error must be a str or None, not int"


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "message"),
    [
        ((True, "closed"), {"ok": True}, TypeError, "chat_id must be an int or str, not bool"),
        ((1.0, "closed"), {"ok": True}, TypeError, "chat_id must be an int or str, not float"),
        ((1, ""), {"ok": True}, ValueError, OP_MESSAGE),
        ((1, "x" * 201), {"ok": True}, ValueError, OP_MESSAGE),
        ((1, "closed"), {"ok": 1}, TypeError, "ok must be a bool, not int"),
        ((1, "closed"), {"ok": False, "error": 4}, TypeError, ERROR_MESSAGE),
    ],
)
def test_bad_records_are_refused(tmp_path, args, kwargs, exc, message):
    """A record that could not be read back as written is refused, saying why, unwritten."""
    journal = hc.Journal(tmp_path / "j.jsonl")

    with pytest.raises(exc) as info:
        journal.record(*args, **kwargs)

    assert message == str(info.value)
    assert not (tmp_path / "j.jsonl").exists()  # refused before the journal is opened


@pytest.mark.parametrize("op", ["x", "x" * 200])
def test_ops_of_one_to_200_characters_are_recorded(tmp_path, op):
    """The shortest and the longest operation name are recorded and read back."""
    journal = hc.Journal(tmp_path / "j.jsonl")

    journal.record(1, op, ok=True)
    journal.close()

    assert {1} == journal.done(op)


def test_a_record_is_one_ascii_line_with_a_utc_time(tmp_path, local_time_far_from_utc):
    """Each record is a JSON line: id, op, ok, error, and when, in UTC to the millisecond."""
    path = tmp_path / "j.jsonl"
    journal = hc.Journal(path)

    journal.record(1, "closed", ok=True)
    journal.record("'x'", "closed", ok=False, error="TypeError: caf\u00e9")
    journal.close()

    lines = path.read_bytes().decode("ascii").splitlines(keepends=True)
    heads, stamps = zip(*(line.rsplit(', "at": ', 1) for line in lines), strict=True)
    assert (
        '{"id": 1, "op": "closed", "ok": true, "error": null',
        '{"id": "\'x\'", "op": "closed", "ok": false, "error": "TypeError: caf\\u00e9"',
    ) == heads
    utc_ms = r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"}\n'
    assert [True, True] == [bool(re.fullmatch(utc_ms, stamp)) for stamp in stamps]


# --- one writer at a time -----------------------------------------------------------------


@needs_posix
def test_second_writer_in_the_same_process_is_refused(tmp_path):
    """Two journals on one file: the second open is refused while the first holds it."""
    path = tmp_path / "j.jsonl"
    first, second = hc.Journal(path), hc.Journal(path)
    first.open()

    with pytest.raises(ValueError) as info:
        second.open()

    assert (
        f"journal {path} is in use by another run (it is locked); wait for that run to end, "
        "or give another journal"
    ) == str(info.value)

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


@needs_posix
def test_a_path_that_cannot_be_opened_is_refused_saying_why(tmp_path):
    """A symbolic link loop: reading and opening are both refused with the system's reason."""
    path = tmp_path / "j.jsonl"
    path.symlink_to(path)
    why = os.strerror(errno.ELOOP)

    with pytest.raises(ValueError) as read:
        hc.Journal(path).done("closed")
    with pytest.raises(ValueError) as opened:
        hc.Journal(path).open()

    assert f"journal {path} cannot be read: {why}" == str(read.value)
    assert f"journal {path} cannot be read and written: {why}" == str(opened.value)


@needs_posix
def test_a_link_into_a_missing_folder_has_no_records_but_cannot_be_opened(tmp_path):
    """Nothing there yet: done() is empty, and a run is refused since no file can be made."""
    path = tmp_path / "j.jsonl"
    path.symlink_to(tmp_path / "gone" / "j.jsonl")
    journal = hc.Journal(path)

    with pytest.raises(ValueError) as info:
        journal.open()

    assert set() == journal.done("closed")
    assert f"journal {path} cannot be read and written: {os.strerror(errno.ENOENT)}" == str(
        info.value
    )


@needs_posix
def test_a_new_journal_is_readable_and_writable_not_executable(tmp_path):
    """A journal is created as a data file: rw-r--r-- under the usual umask."""
    journal = hc.Journal(tmp_path / "j.jsonl")
    umask = os.umask(0o022)
    try:
        journal.record(1, "closed", ok=True)
    finally:
        os.umask(umask)
    journal.close()

    assert 0o644 == stat.S_IMODE((tmp_path / "j.jsonl").stat().st_mode)


def test_fifo_is_refused_by_done_without_blocking(tmp_path):
    """Reading a FIFO would wait for a writer forever: it is refused at once."""
    if sys.platform == "win32":
        pytest.skip("no FIFOs")
    path = _fifo(tmp_path)

    with pytest.raises(ValueError) as info:
        hc.Journal(path).done("closed")

    assert (
        f"journal {path} is not a regular file (a device, FIFO or folder); give the path of a file"
    ) == str(info.value)


def test_missing_folders_are_made(tmp_path):
    """A journal in folders that do not exist yet: they are made, then the file."""
    path = tmp_path / "jobs" / "2026" / "j.jsonl"
    journal = hc.Journal(path)

    journal.record(1, "closed", ok=True)
    journal.close()

    assert {1} == hc.Journal(path).done("closed")


def test_journal_path_type_and_repr(tmp_path):
    """A path of a wrong type is a TypeError; the repr names the file."""
    with pytest.raises(TypeError) as info:
        hc.Journal(42)  # type: ignore[arg-type]

    assert "journal path must be a str or a path, not int" == str(info.value)
    assert f"Journal({str(tmp_path / 'j.jsonl')!r})" == repr(hc.Journal(tmp_path / "j.jsonl"))
