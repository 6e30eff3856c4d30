"""The helpcrunch command, against the emulator: exit codes, files, resume, Ctrl-C, demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from click.testing import CliRunner

from helpcrunch_async._cli._commands import cli
from helpcrunch_async.emulator import EmulatorConfig, RunningEmulator, serve

pytestmark = pytest.mark.emulator
FIRST = 5_215_700


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """An emulator on a free port for the duration of one test."""
    config = EmulatorConfig(chats=40, rate_limit=None)
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(serve(config)) as emu:
        yield emu


@pytest.fixture
def env(emulator) -> dict[str, str]:
    return {"HELPCRUNCH_API_KEY": emulator.api_key, "HELPCRUNCH_BASE_URL": emulator.base_url}


def invoke(args: list[str], env: dict[str, str], stdin: str | None = None):
    return CliRunner().invoke(cli, args, env=env, input=stdin, catch_exceptions=False)


def test_set_status_from_args_and_file_writes_report(emulator, env, tmp_path):
    """Ids from arguments and a file are closed; exit 0; the report has every outcome."""
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"# stale chats\n{FIRST + 1}\n\n{FIRST + 2}  # vip\n")
    report = tmp_path / "out.jsonl"

    result = invoke(
        [
            "chats",
            "set-status",
            "closed",
            str(FIRST),
            "--from-file",
            str(ids_file),
            "--report",
            str(report),
            "--rate",
            "none",
        ],
        env,
    )

    assert 0 == result.exit_code, result.output
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert {FIRST, FIRST + 1, FIRST + 2} == {r["chat_id"] for r in rows}
    assert all(r["ok"] and r["status"] == "closed" for r in rows)
    assert "3 chats set to 'closed'" in result.output
    assert "429 answers: 0" in result.output


def test_csv_report_and_stdin(emulator, env, tmp_path):
    """--from-file - reads stdin; a .csv report is CSV."""
    report = tmp_path / "out.csv"

    result = invoke(
        [
            "chats",
            "set-status",
            "pending",
            "--from-file",
            "-",
            "--report",
            str(report),
            "--rate",
            "none",
        ],
        env,
        stdin=f"{FIRST}\n{FIRST + 3}\n",
    )

    assert 0 == result.exit_code, result.output
    lines = report.read_text().splitlines()
    assert "chat_id,status,ok,error" == lines[0]
    assert 3 == len(lines)


def test_some_failures_exit_1(emulator, env):
    """An id the server does not know fails alone; the exit code says something failed."""
    result = invoke(["chats", "set-status", "closed", str(FIRST), "99", "--rate", "none"], env)

    assert 1 == result.exit_code
    assert "1 failed" in result.output


def test_wrong_key_exits_3_early(emulator, env):
    """A wrong key stops the run with a clear message and its own exit code."""
    ids = [str(FIRST + i) for i in range(30)]
    result = invoke(
        ["chats", "set-status", "closed", *ids, "--api-key", "nope", "--rate", "none"], env
    )

    assert 3 == result.exit_code
    assert "Stopped" in result.output
    assert "invalid_token" in result.output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["chats", "set-status", "clsd", "1"], None, "unknown chat status 'clsd'"),
        (
            ["chats", "set-status", "closed", "--from-file", "-"],
            "5\nabc\n",
            "<stdin>:2: not a chat id: 'abc'",
        ),
        (["chats", "set-status", "closed", "-4"], None, "-4"),  # read as an unknown option
        (["chats", "set-status", "closed"], None, "no chat ids"),
        (["chats", "set-status", "closed", "1", "--rate", "fast"], None, "N/S"),
        (["chats", "search"], None, "at least one"),
        (
            ["chats", "search", "--filter", "chats.status", "==", "x"],
            None,
            "unknown filter operator",
        ),
    ],
)
def test_bad_usage_exits_2_naming_the_problem(env, args, stdin, message):
    """Bad input is a usage error (exit 2) that names the line or value."""
    result = CliRunner().invoke(cli, args, env=env, input=stdin)

    assert 2 == result.exit_code, result.output
    assert message in result.output


def test_missing_key_is_usage_error(monkeypatch):
    """No key anywhere: exit 2 saying how to give one."""
    monkeypatch.delenv("HELPCRUNCH_API_KEY", raising=False)
    result = CliRunner().invoke(
        cli, ["chats", "set-status", "closed", "1"], env={"HELPCRUNCH_API_KEY": ""}
    )

    assert 2 == result.exit_code
    assert "HELPCRUNCH_API_KEY" in result.output


def test_dry_run_sends_nothing(emulator, env, tmp_path):
    """--dry-run checks input and counts, and leaves the server untouched."""
    result = invoke(["chats", "set-status", "closed", str(FIRST), str(FIRST), "--dry-run"], env)

    assert 0 == result.exit_code
    assert "would set 'closed' on 1 chats" in result.output
    assert 0 == emulator.stats()["requests"]


def test_journal_resumes_skipping_done_chats(emulator, env, tmp_path):
    """The same command again, with the same journal, skips what is done."""
    journal = tmp_path / "j.jsonl"
    args = [
        "chats",
        "set-status",
        "closed",
        str(FIRST),
        str(FIRST + 1),
        "--journal",
        str(journal),
        "--rate",
        "none",
    ]

    invoke(args[:4] + args[5:], env)  # only the first id
    result = invoke(args, env)

    assert "1 skipped (already done)" in result.output
    assert 2 == emulator.stats()["requests"]


def test_search_ids_feeds_set_status(emulator, env):
    """search --ids prints ids one per line, ready for set-status --from-file -."""
    found = invoke(["chats", "search", "--status", "pending", "--ids", "--rate", "none"], env)
    ids = found.output.split()
    pending = {str(i) for i, c in emulator.state.chats.items() if c["status"] == "pending"}

    assert set(ids) == pending
    closed = invoke(
        ["chats", "set-status", "closed", "--from-file", "-", "--rate", "none"],
        env,
        stdin=found.output,
    )
    assert 0 == closed.exit_code
    assert not [c for c in emulator.state.chats.values() if c["status"] == "pending"]


def test_search_prints_json_lines(emulator, env):
    """Without --ids, every chat is a JSON line."""
    result = invoke(
        ["chats", "search", "--filter", "chats.id", "=", str(FIRST), "--rate", "none"], env
    )

    assert [FIRST] == [json.loads(line)["id"] for line in result.output.splitlines()]


def _helpcrunch(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "helpcrunch_async", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=(os.environ | (env or {})),
    )


def test_ctrl_c_exits_130_without_traceback_and_resume_works(emulator, env, tmp_path):
    """Ctrl-C mid-run: exit 130, no traceback, finished work journaled; a rerun resumes."""
    journal = tmp_path / "j.jsonl"
    ids = [str(FIRST + i) for i in range(40)]
    args = ["chats", "set-status", "closed", *ids, "--journal", str(journal), "--rate", "10/1"]
    process = _helpcrunch(*args, env=env)
    while not journal.exists() or len(journal.read_text().splitlines()) < 3:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)

    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)

    assert 130 == process.returncode
    assert "Traceback" not in err
    assert "Interrupted" in err
    done = len(journal.read_text().splitlines())
    rerun = invoke([*args[:-2], "--rate", "none"], env)
    assert 0 == rerun.exit_code, rerun.output
    assert f"{done} skipped (already done)" in rerun.output


def test_plain_progress_lines_when_not_a_terminal(emulator, env):
    """Off a terminal the progress is plain lines, then the summary."""
    ids = [str(FIRST + i) for i in range(25)]
    process = _helpcrunch("chats", "set-status", "opened", *ids, "--rate", "10/1", env=env)
    _, err = process.communicate(timeout=60)

    assert 0 == process.returncode, err
    assert "progress: " in err
    assert "25 chats set to 'opened'" in err


def test_emulator_command_serves_and_stops_on_ctrl_c():
    """`helpcrunch emulator` prints its URL and key, serves, and stops cleanly on Ctrl-C."""
    process = _helpcrunch("emulator", "--port", "0", "--chats", "3")
    assert process.stdout is not None
    banner = [process.stdout.readline() for _ in range(4)]
    assert "HelpCrunch emulator on http://127.0.0.1:" in banner[0]
    assert "export HELPCRUNCH_API_KEY=emulator-key" in banner[2]
    base_url = banner[0].split()[3]
    answer = httpx.get(base_url + "/chats/5215700", timeout=30)  # queued until it serves
    assert 401 == answer.status_code  # served: no key, the documented error
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)

    assert 130 == process.returncode, err  # the shell's code for "stopped by Ctrl-C"
    assert "Shutting down" in err
    assert "Traceback" not in err


def test_demo_runs_offline_and_is_never_rejected():
    """`helpcrunch demo` closes every chat on its own emulator with zero 429s."""
    process = _helpcrunch("demo", "--chats", "60", "--rate", "30/1")
    _, err = process.communicate(timeout=120)

    assert 0 == process.returncode, err
    assert "60 chats set to 'closed'" in err
    assert "0 rejected with 429" in err
    assert "60/60 chats closed" in err
