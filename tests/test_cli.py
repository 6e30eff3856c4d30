"""The helpcrunch command, against the emulator: exit codes, files, resume, signals, demo."""

from __future__ import annotations

import functools
import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import anyio
import httpx
import pytest
import redis
from anyio.from_thread import start_blocking_portal
from click.testing import CliRunner

import helpcrunch_async as hc
from helpcrunch_async._cli import _bulk_command, _options, _watch
from helpcrunch_async._cli._commands import cli
from helpcrunch_async._cli._input import MAX_BAD_LINES_SHOWN, parse_timestamp
from helpcrunch_async._cli._output import (
    MIN_RATE_OUTCOMES,
    MIN_RATE_SECONDS,
    FailureSummary,
    RateEstimator,
)
from helpcrunch_async._cli._signals import exit_code_for, stop_on_signals
from helpcrunch_async.emulator import EmulatorConfig, RunningEmulator, serve
from tests.redis_server import RedisNode, free_port, nodes_in, wait_for

pytestmark = pytest.mark.emulator
FIRST = 5_215_700
#: Seconds any subprocess read or wait may take before the test fails instead of hanging.
DEADLINE = 60.0
#: A port nothing listens on: connections to it are refused at once.
CLOSED_URL = "http://127.0.0.1:1/v1"


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """An emulator on a free port for the duration of one test."""
    config = EmulatorConfig(chats=40, rate_limit=None)
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(serve(config)) as emu:
        yield emu


@pytest.fixture
def env(emulator) -> dict[str, str]:
    return {"HELPCRUNCH_API_KEY": emulator.api_key, "HELPCRUNCH_BASE_URL": emulator.base_url}


@pytest.fixture
def fast_retries(monkeypatch):
    """The CLI's client retries at once, so a down API is detected in milliseconds."""
    monkeypatch.setattr(
        _options, "HelpCrunch", functools.partial(hc.HelpCrunch, retry=hc.Retry(backoff=0))
    )


def invoke(args: list[str], env: dict[str, str], stdin: str | None = None):
    return CliRunner().invoke(cli, args, env=env, input=stdin, catch_exceptions=False)


def ids(*offsets: int) -> list[str]:
    return [str(FIRST + i) for i in offsets]


def report_rows(path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- set-status: outcomes, files, summaries ----------------------------------------------


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
    rows = report_rows(report)
    assert {FIRST, FIRST + 1, FIRST + 2} == {r["chat_id"] for r in rows}
    assert all(r["ok"] and r["status"] == "closed" and r["run"] == "this" for r in rows)
    assert "3 chats set to 'closed'" in result.stdout
    assert "429 answers: 0" in result.stdout


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
    assert "chat_id,status,ok,error,run" == lines[0]
    assert 3 == len(lines)


def test_failures_exit_1_with_a_summary_by_reason(emulator, env, tmp_path):
    """Failures are grouped by reason on stdout, with examples and where the full list is."""
    report = tmp_path / "r.jsonl"
    result = invoke(
        [
            "chats",
            "set-status",
            "closed",
            str(FIRST),
            "99",
            "98",
            "--rate",
            "none",
            "--report",
            str(report),
        ],
        env,
    )

    assert 1 == result.exit_code
    assert "1 chat set to 'closed', 2 failed" in result.stdout
    assert "Failures by reason (2 chats):" in result.stdout
    line = next(x for x in result.stdout.splitlines() if "NotFoundError" in x)
    assert "HTTP 404: chat_not_found" in line
    assert {"98", "99"} <= set(line.replace(",", " ").split())
    assert f"Every failed id, with its error: {report}" in result.stdout


def test_failure_summary_caps_examples_per_reason():
    """A reason with many ids shows a few examples and a count."""
    summary = FailureSummary()
    error = hc.ServerError("HTTP 502", status_code=502)
    for chat_id in range(1, 8):
        summary.add(hc.ChatOutcome(chat_id, error=error))

    lines = summary.lines(None)

    assert "7  ServerError (HTTP 502): 1, 2, 3, ..." == lines[1].strip()
    assert "--report" in lines[-1]
    assert {"ServerError (HTTP 502)": 7} == summary.as_dict()


def test_json_summary_for_scripts(emulator, env):
    """--json prints the summary as one JSON object on stdout."""
    result = invoke(
        ["chats", "set-status", "closed", str(FIRST), "99", "--json", "--rate", "none"], env
    )

    summary = json.loads(result.stdout)
    assert (1, 1, 1) == (summary["updated"], summary["failed"], summary["exit_code"])
    assert {"NotFoundError (HTTP 404: chat_not_found)": 1} == summary["failures_by_reason"]
    requests = summary["requests"]
    assert (2, 2, 0, None) == (
        requests["attempts"],
        requests["answered"],
        requests["could_not_connect"],
        requests["limiter_share"],
    )


def test_wrong_key_exits_3_early(emulator, env):
    """A wrong key stops the run with a clear message and its own exit code."""
    result = invoke(
        ["chats", "set-status", "closed", *ids(*range(30)), "--api-key", "nope", "--rate", "none"],
        env,
    )

    assert 3 == result.exit_code
    assert "Stopped: the API key was refused" in result.stderr
    assert "invalid_token" in result.stderr


@pytest.mark.parametrize("command", [["search", "--status", "new"], ["list"]])
def test_wrong_key_exits_3_in_search_and_list(emulator, env, command):
    """search and list end a refused key with the same exit code as set-status."""
    result = invoke(["chats", *command, "--api-key", "nope", "--rate", "none"], env)

    assert 3 == result.exit_code
    assert "--api-key or HELPCRUNCH_API_KEY" in result.stderr
    assert "" == result.stdout


def test_unreachable_api_trips_the_breaker_exit_4(env, tmp_path, fast_retries):
    """A down API stops the run after a few failures in a row, exit 4; the journal resumes."""
    journal = tmp_path / "j.jsonl"
    result = invoke(
        [
            "chats",
            "set-status",
            "closed",
            *ids(*range(40)),
            "--journal",
            str(journal),
            "--base-url",
            CLOSED_URL,
            "--stop-after",
            "3",
            "--concurrency",
            "1",
            "--rate",
            "none",
        ],
        env,
    )

    assert 4 == result.exit_code, result.output
    assert "Stopped: 3 chats in a row failed with APIConnectionError" in result.stderr
    assert "37 not started" in result.stderr
    assert "To resume" in result.stderr
    assert 3 == len(journal.read_text().splitlines())
    # 3 chats, 6 attempts each, none of which ever reached a server.
    assert "Requests: 18 (15 retries): 0 answered, 18 could not connect;" in result.stdout


def test_an_api_that_cannot_be_reached_stops_the_run_without_waiting_for_the_breaker(
    env, tmp_path, fast_retries, monkeypatch
):
    """No connection for UNREACHABLE_AFTER seconds stops the run (exit 4), on a virtual clock."""
    clock = itertools.count(0.0, 1.0)  # each failed attempt is one second later
    monkeypatch.setattr(
        _bulk_command, "JobWatch", functools.partial(_watch.JobWatch, clock=lambda: next(clock))
    )
    journal = tmp_path / "j.jsonl"
    result = invoke(
        [
            "chats",
            "set-status",
            "closed",
            *ids(*range(40)),
            "--journal",
            str(journal),
            "--base-url",
            CLOSED_URL,
            "--rate",
            "none",
            "--json",
        ],
        env,
    )

    assert 4 == result.exit_code, result.output
    summary = json.loads(result.stdout)
    assert ("unreachable", 0) == (summary["stopped_by"], summary["requests"]["answered"])
    # Stopped by the watch, after 10 (virtual) seconds and at least --stop-after (10)
    # attempts: the breaker would have needed 10 chats of 6 failed attempts each.
    assert 10 <= summary["requests"]["could_not_connect"] < 60
    assert f"Stopped: no connection to {CLOSED_URL} could be made for " in result.stderr
    assert "the API is unreachable from here" in result.stderr
    assert "To resume" in result.stderr


@pytest.mark.parametrize(
    "case",
    list(itertools.product(["refused key", "circuit breaker"], ["--api-key KEY", "--api-key=KEY"])),
    ids=" with ".join,
)
def test_the_resume_line_names_the_variable_never_the_key(
    emulator, env, tmp_path, monkeypatch, case
):
    """After a 401 or the breaker, "To resume" says $HELPCRUNCH_API_KEY where the key was."""
    stop, form = case
    journal = tmp_path / "j.jsonl"
    if stop == "refused key":
        key, base_url = "sk-live-0123456789abcdef", emulator.base_url
    else:  # the right key, but a root without /v1: every id a 404 that is not HelpCrunch's
        key, base_url = emulator.api_key, emulator.base_url.removesuffix("/v1")
    typed = ["--api-key", key] if form == "--api-key KEY" else [f"--api-key={key}"]
    args = ["chats", "set-status", "closed", *ids(*range(30)), *typed, "--base-url", base_url]
    args += ["--journal", str(journal), "--rate", "none"]
    monkeypatch.setattr(sys, "argv", ["helpcrunch", *args])  # what the hint repeats

    result = invoke(args, env)

    assert {"refused key": 3, "circuit breaker": 4}[stop] == result.exit_code, result.output
    assert key not in result.output
    assert "with the API key in HELPCRUNCH_API_KEY" in result.stderr
    hint = result.stderr.splitlines()[-1]
    assert '"$HELPCRUNCH_API_KEY"' in hint
    assert hint.strip().endswith(f"--journal {journal} --rate none")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["chats", "x", "--api-key", "k 1"],
            ('helpcrunch chats x --api-key "$HELPCRUNCH_API_KEY"', True),
        ),
        (
            ["chats", "x", "--api-key=k"],
            ('helpcrunch chats x --api-key="$HELPCRUNCH_API_KEY"', True),
        ),
        (["chats", "x", "a b"], ("helpcrunch chats x 'a b'", False)),
        (["chats", "x", "--", "--api-key"], ("helpcrunch chats x -- --api-key", False)),
        (["chats", "x", "--api-key"], ("helpcrunch chats x --api-key", False)),
    ],
)
def test_resume_command_quotes_arguments_and_replaces_the_key(argv, expected):
    """Every argument quoted for a shell, the key's value (and only it) replaced."""
    assert expected == _bulk_command.resume_command(argv)


def test_stop_after_0_never_stops(env, fast_retries):
    """--stop-after 0 turns the breaker off: every id gets its own failure."""
    result = invoke(
        [
            "chats",
            "set-status",
            "closed",
            *ids(*range(12)),
            "--base-url",
            CLOSED_URL,
            "--stop-after",
            "0",
            "--rate",
            "none",
        ],
        env,
    )

    assert 1 == result.exit_code
    assert "12 failed" in result.stdout


# --- input and files ----------------------------------------------------------------------


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
            "'==' is no search operator",
        ),
        (
            ["chats", "search", "--filter", "chats.createdAt", "<", "last tuesday"],
            None,
            "ISO 8601",
        ),
        (["chats", "set-status", "closed", "1", "--base-url", "ftp://x"], None, "--base-url"),
    ],
)
def test_bad_usage_exits_2_naming_the_problem(env, args, stdin, message):
    """Bad input is a usage error (exit 2) that names the line or value."""
    result = CliRunner().invoke(cli, args, env=env, input=stdin)

    assert 2 == result.exit_code, result.output
    assert message in result.output


def test_every_bad_line_is_reported_at_once_and_nothing_sent(emulator, env, tmp_path):
    """All bad lines in one pass, the printing capped; exit 2 and no request."""
    bad = [f"x{n}" for n in range(MAX_BAD_LINES_SHOWN + 5)]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join([str(FIRST), *bad, "-3"]) + "\n")

    result = invoke(["chats", "set-status", "closed", "--from-file", str(ids_file)], env)

    assert 2 == result.exit_code
    assert f"{len(bad) + 1} bad chat ids, nothing was sent" in result.stderr
    assert f"{ids_file}:2: not a chat id: 'x0'" in result.stderr
    assert "... and 6 more" in result.stderr
    assert 0 == emulator.stats()["requests"]


def test_missing_key_says_how_to_give_one(monkeypatch):
    """No key anywhere: exit 2 in the CLI's words, not the SDK's."""
    monkeypatch.delenv("HELPCRUNCH_API_KEY", raising=False)
    result = CliRunner().invoke(
        cli, ["chats", "set-status", "closed", "1"], env={"HELPCRUNCH_API_KEY": ""}
    )

    assert 2 == result.exit_code
    assert "--api-key" in result.output
    assert "HELPCRUNCH_API_KEY" in result.output
    assert "api_key=" not in result.output


def test_same_file_for_journal_and_report_is_refused(emulator, env, tmp_path):
    """One file cannot be both: exit 2 before anything is sent."""
    path = tmp_path / "job.jsonl"
    result = invoke(
        [
            "chats",
            "set-status",
            "closed",
            str(FIRST),
            "--journal",
            str(path),
            "--report",
            str(tmp_path / "." / "job.jsonl"),
        ],
        env,
    )

    assert 2 == result.exit_code
    assert "--journal and --report are the same file" in result.stderr
    assert 0 == emulator.stats()["requests"]


def test_damaged_journal_is_one_line_exit_2(emulator, env, tmp_path):
    """A journal with a garbled line (not the last) is refused in one line, no traceback."""
    journal = tmp_path / "j.jsonl"
    journal.write_text('{"garbage\n{"id": 1, "status": "closed", "ok": true}\n')

    result = invoke(["chats", "set-status", "closed", str(FIRST), "--journal", str(journal)], env)

    assert 2 == result.exit_code
    assert "damaged" in result.stderr
    assert "Traceback" not in result.output
    assert 0 == emulator.stats()["requests"]


@pytest.mark.parametrize("option", ["--journal", "--report"])
def test_unwritable_file_is_one_line_exit_2(emulator, env, tmp_path, option):
    """A journal or report that cannot be written is refused up front, in one line."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    result = invoke(
        ["chats", "set-status", "closed", str(FIRST), option, str(blocker / "x.jsonl")], env
    )

    assert 2 == result.exit_code
    assert f"{option} {blocker / 'x.jsonl'}: cannot write" in result.stderr
    assert 1 == len(result.stderr.strip().splitlines())
    assert 0 == emulator.stats()["requests"]


def test_journal_in_use_is_refused_without_touching_the_report(emulator, env, tmp_path):
    """A second run of a job whose journal another run holds: exit 2, its report intact."""
    journal, report = tmp_path / "j.jsonl", tmp_path / "r.jsonl"
    report.write_text("the first run's report\n")
    holder = hc.Journal(journal)
    holder.open()
    try:
        result = invoke(
            [
                "chats",
                "set-status",
                "closed",
                str(FIRST),
                "--journal",
                str(journal),
                "--report",
                str(report),
            ],
            env,
        )
    finally:
        holder.close()

    assert 2 == result.exit_code
    assert "in use by another run" in result.stderr
    assert "the first run's report\n" == report.read_text()
    assert 0 == emulator.stats()["requests"]


def test_journal_that_is_not_a_regular_file_is_refused(emulator, env):
    """A device as journal would be read whole on resume: refused up front."""
    result = invoke(["chats", "set-status", "closed", str(FIRST), "--journal", os.devnull], env)

    assert 2 == result.exit_code
    assert f"--journal {os.devnull}: not a regular file" in result.stderr
    assert 0 == emulator.stats()["requests"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_for_the_report_is_one_line_exit_2(emulator, env):
    """A report that fails to write mid-run: one line, exit 2, no traceback."""
    result = invoke(
        ["chats", "set-status", "closed", *ids(0, 1), "--report", "/dev/full", "--rate", "none"],
        env,
    )

    assert 2 == result.exit_code
    assert "cannot write the journal or report: [Errno 28]" in result.stderr
    assert "Traceback" not in result.output


def test_full_disk_for_the_journal_is_one_line_exit_2(emulator, env, tmp_path, monkeypatch):
    """A journal write failing in a worker is one line and exit 2, not a group traceback."""

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hc.Journal, "record", full)
    result = invoke(
        [
            "chats",
            "set-status",
            "closed",
            *ids(0, 1, 2),
            "--journal",
            str(tmp_path / "j"),
            "--rate",
            "none",
        ],
        env,
    )

    assert 2 == result.exit_code
    assert "No space left on device" in result.stderr
    assert 1 == len(result.stderr.strip().splitlines())


def test_dry_run_sends_nothing(emulator, env, tmp_path):
    """--dry-run checks input and counts, and leaves the server untouched."""
    result = invoke(["chats", "set-status", "closed", str(FIRST), str(FIRST), "--dry-run"], env)

    assert 0 == result.exit_code
    assert "would set 'closed' on 1 chat (0 already done, 1 repeated)" in result.stdout
    assert 0 == emulator.stats()["requests"]


def test_dry_run_json(emulator, env):
    """--dry-run --json: the counts as one JSON object."""
    result = invoke(["chats", "set-status", "closed", *ids(0, 1, 1), "--dry-run", "--json"], env)

    assert {"would_update": 2, "already_done": 0, "repeated": 1} == json.loads(result.stdout)


def test_empty_pipe_is_nothing_to_do_not_a_usage_error(emulator, env):
    """An empty --from-file - (the command before the pipe found nothing or failed)."""
    result = invoke(["chats", "set-status", "closed", "--from-file", "-"], env, stdin="")

    assert 0 == result.exit_code
    assert "No chat ids in <stdin>: nothing to do." in result.stderr
    assert "pass them as arguments" not in result.output


# --- resume -------------------------------------------------------------------------------


def test_journal_resumes_saying_so_up_front(emulator, env, tmp_path):
    """The same command again, with the same journal, says what is done and skips it."""
    journal = tmp_path / "j.jsonl"
    args = ["chats", "set-status", "closed", *ids(0, 1), "--journal", str(journal)]

    invoke([*args[:4], *args[5:], "--rate", "none"], env)  # only the first id
    result = invoke([*args, "--rate", "none"], env)

    assert f"Resuming from {journal}: 1 of 2 chats already done, 1 to go." in result.stderr
    assert "1 skipped (already done)" in result.stdout
    assert 2 == emulator.stats()["requests"]


def test_report_lists_every_id_once_across_resumes(emulator, env, tmp_path):
    """After resumes, the report holds each id once, with its final outcome."""
    journal, report = tmp_path / "j.jsonl", tmp_path / "r.jsonl"
    files = ["--journal", str(journal), "--report", str(report), "--rate", "none"]

    invoke(["chats", "set-status", "closed", *ids(0, 1), "99", *files], env)
    invoke(["chats", "set-status", "closed", *ids(0, 1, 2, 3), "99", "99", *files], env)

    rows = report_rows(report)
    assert sorted([FIRST, FIRST + 1, FIRST + 2, FIRST + 3, 99]) == sorted(
        r["chat_id"] for r in rows
    )
    by_id = {r["chat_id"]: r for r in rows}
    assert ["earlier", "earlier", "this", "this"] == [by_id[FIRST + i]["run"] for i in range(4)]
    assert not by_id[99]["ok"]
    assert "NotFoundError" in str(by_id[99]["error"])


# --- search and list ----------------------------------------------------------------------


def test_search_ids_feeds_set_status(emulator, env):
    """search --ids prints ids one per line, ready for set-status --from-file -."""
    found = invoke(["chats", "search", "--status", "pending", "--ids", "--rate", "none"], env)
    pending = {str(i) for i, c in emulator.state.chats.items() if c["status"] == "pending"}

    assert pending == set(found.stdout.split())
    closed = invoke(
        ["chats", "set-status", "closed", "--from-file", "-", "--rate", "none"],
        env,
        stdin=found.stdout,
    )
    assert 0 == closed.exit_code
    assert not [c for c in emulator.state.chats.values() if c["status"] == "pending"]


def test_several_statuses_or_ed_and_and_ed_with_filters(emulator, env):
    """(new OR pending) AND created before an ISO date: one search per status, merged."""
    chats = emulator.state.chats.values()
    middle = sorted(c["createdAt"] for c in chats)[len(chats) // 2]
    cutoff = datetime.fromtimestamp(middle, timezone.utc).isoformat()
    expected = {
        str(c["id"]) for c in chats if c["status"] in ("new", "pending") and c["createdAt"] < middle
    }

    found = invoke(
        [
            "chats",
            "search",
            "--status",
            "new",
            "--status",
            "pending",
            "--ids",
            "--rate",
            "none",
            "--filter",
            "chats.createdAt",
            "<",
            cutoff,
        ],
        env,
    )

    assert 0 == found.exit_code, found.output
    assert expected == set(found.stdout.split())
    assert len(expected) == len(found.stdout.split())  # no duplicates


@pytest.mark.parametrize("format_option", [[], ["--json"]])
def test_search_prints_json_lines(emulator, env, format_option):
    """Without --ids (or with --json), every chat is a JSON line."""
    customer = str(emulator.state.chats[FIRST]["customer"]["id"])
    result = invoke(
        ["chats", "search", "--filter", "chats.customer", "=", customer, *format_option],
        env,
    )

    assert [FIRST] == [json.loads(line)["id"] for line in result.stdout.splitlines()]


@pytest.mark.parametrize("command", [["search", "--status", "new"], ["list"]])
def test_json_and_ids_are_two_formats(env, command):
    """--json and --ids together are a usage error, before anything is sent."""
    result = CliRunner().invoke(cli, ["chats", *command, "--json", "--ids"], env=env)

    assert 2 == result.exit_code
    assert "--ids and --json are two formats: choose one" in result.stderr


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            ["chats.foo", "=", "1"],
            (
                "unknown search field 'chats.foo'; searchable fields: chats.agents, "
                "chats.assignee, chats.closedAt, chats.createdAt, chats.customer, "
                "chats.customer.email, chats.department, chats.rating, chats.status, "
                "chats.updatedAt"
            ),
        ),
        (
            ["chats.customer.tagsData", "=", "vip"],
            "its value is a list of tags, which --filter cannot express",
        ),
        (
            ["chats.status", "=", "bogus"],
            (
                "unknown chat status 'bogus'; valid values: new, opened, pending, on-hold, "
                "no communication, closed, empty"
            ),
        ),
        (
            ["chats.status", "like", "closed"],
            "'like' is no search operator; valid for chats.status (a chat status): use one of = !=",
        ),
        (
            ["chats.createdAt", "~", "2024"],
            "'~' does not apply to chats.createdAt (a timestamp): use one of = != < > <= >=",
        ),
        (
            ["chats.customer.email", ">", "a"],
            "'>' does not apply to chats.customer.email (text): use one of = != ~ !~",
        ),
        (["chats.assignee", "=", "bob"], "chats.assignee takes an id (an integer), got 'bob'"),
        (
            ["chats.rating", "=", "meh"],
            "unknown rating 'meh'; valid values: perfect, great, average, poor, very poor",
        ),
    ],
)
def test_filters_are_checked_against_the_documented_fields(emulator, env, condition, message):
    """A field, operator or value HelpCrunch does not document: exit 2 listing what is allowed."""
    result = invoke(["chats", "search", "--filter", *condition], env)

    assert 2 == result.exit_code
    assert message in result.stderr
    assert 0 == emulator.stats()["requests"]


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        (["chats.status", "!=", "ON_HOLD"], lambda chat: chat["status"] != "on-hold"),
        (["chats.rating", "=", "Great"], lambda chat: chat["rating"] == "great"),
        (["chats.customer.email", "~", "SMITH"], lambda chat: "smith" in chat["customer"]["email"]),
        (["chats.createdAt", ">=", "0"], lambda _: True),
    ],
)
def test_documented_filters_find_their_chats(emulator, env, condition, matches):
    """Documented fields take their values in the user's spelling and find what they say."""
    result = invoke(["chats", "search", "--filter", *condition, "--ids", "--rate", "none"], env)

    assert 0 == result.exit_code, result.output
    expected = {chat_id for chat_id, chat in emulator.state.chats.items() if matches(chat)}
    assert expected == {int(i) for i in result.stdout.split()}


def test_list_ids_prints_every_chat(emulator, env):
    """chats list --ids: every chat id, once."""
    result = invoke(["chats", "list", "--ids", "--rate", "none"], env)

    assert 0 == result.exit_code
    assert sorted(emulator.state.chats) == sorted(int(i) for i in result.stdout.split())


def test_list_json_prints_every_chat_as_a_json_line(emulator, env):
    """chats list --json: the default format, spelled out for scripts."""
    result = invoke(["chats", "list", "--json", "--rate", "none"], env)

    assert 0 == result.exit_code
    assert sorted(emulator.state.chats) == sorted(
        json.loads(line)["id"] for line in result.stdout.splitlines()
    )


def test_a_base_url_without_v1_trips_the_breaker_with_a_hint(emulator, env, tmp_path):
    """404s that are not HelpCrunch's (no /v1): exit 4 after --stop-after, and the hint."""
    root = emulator.base_url.removesuffix("/v1")
    result = invoke(
        [
            "chats",
            "set-status",
            "closed",
            *ids(*range(40)),
            "--base-url",
            root,
            "--stop-after",
            "3",
            "--concurrency",
            "1",
            "--rate",
            "none",
        ],
        env,
    )

    assert 4 == result.exit_code, result.output
    assert "Stopped: 3 chats in a row failed with NotFoundError" in result.stderr
    assert f"Is --base-url missing /v1? (it is {root})" in result.stderr
    assert "NotFoundError (HTTP 404, not HelpCrunch's answer)" in result.stdout
    assert "3 chats failed with a 404 that says the URL is wrong" in result.stdout


def test_helpcrunchs_own_404s_get_no_hint(emulator, env):
    """A chat that does not exist is HelpCrunch's 404: no hint, and the breaker never trips."""
    result = invoke(
        [
            "chats",
            "set-status",
            "closed",
            *map(str, range(1, 13)),
            "--stop-after",
            "3",
            "--rate",
            "none",
        ],
        env,
    )

    assert 1 == result.exit_code, result.output
    assert "12 failed" in result.stdout
    assert "--base-url" not in result.output


@pytest.mark.parametrize("command", [["search", "--status", "new"], ["list"]])
def test_search_and_list_without_v1_say_so(emulator, env, command):
    """search and list against a root without /v1: exit 4 and the hint, not a bare 404."""
    root = emulator.base_url.removesuffix("/v1")
    result = invoke(["chats", *command, "--base-url", root, "--rate", "none"], env)

    assert 4 == result.exit_code
    assert "the URL, not a chat, was not found; is --base-url missing /v1?" in result.stderr


def test_search_against_a_down_api_exits_4(env, fast_retries):
    """An unreachable API is exit 4 for search too, with a message saying so."""
    result = invoke(
        ["chats", "search", "--status", "new", "--base-url", CLOSED_URL, "--rate", "none"], env
    )

    assert 4 == result.exit_code
    assert f"The API at {CLOSED_URL} is unreachable or failing" in result.stderr


def test_iso_dates_and_datetimes_are_timestamps():
    """Epoch seconds stay; ISO dates are UTC midnight; offsets are respected."""
    assert 1700000000 == parse_timestamp("1700000000")
    assert datetime(2024, 1, 31, tzinfo=timezone.utc) == parse_timestamp("2024-01-31")
    assert 1706702400 == parse_timestamp("2024-01-31T14:00:00+02:00").timestamp()  # type: ignore[union-attr]
    assert 1706709600 == parse_timestamp("2024-01-31T14:00:00Z").timestamp()  # type: ignore[union-attr]


# --- output helpers -----------------------------------------------------------------------


def test_rate_is_not_shown_on_the_first_burst():
    """No rate before MIN_RATE_SECONDS and MIN_RATE_OUTCOMES; then outcomes per second."""
    now = [0.0]
    rate = RateEstimator(clock=lambda: now[0])

    now[0] = 0.05
    early = rate.add(MIN_RATE_OUTCOMES * 10)  # a burst leaves at once
    now[0] = MIN_RATE_SECONDS * 2
    later = rate.add(MIN_RATE_OUTCOMES * 10 + 10)

    assert early is None
    assert pytest.approx((MIN_RATE_OUTCOMES * 10 + 10) / (MIN_RATE_SECONDS * 2)) == later


@pytest.mark.anyio
async def test_first_signal_stops_gently_a_second_one_cancels():
    """stop_on_signals: the first SIGTERM calls on_signal, the second cancels the block."""
    gentle = anyio.Event()
    with anyio.fail_after(DEADLINE):
        async with stop_on_signals() as interrupt:
            interrupt.on_signal = gentle.set
            os.kill(os.getpid(), signal.SIGTERM)
            await gentle.wait()
            os.kill(os.getpid(), signal.SIGTERM)
            await anyio.sleep_forever()

    assert gentle.is_set()
    assert signal.SIGTERM == interrupt.signum
    assert 143 == exit_code_for(interrupt.signum)


# --- real processes: signals, progress, emulator, demo ------------------------------------


#: Every process a test started, killed at the end of the test if it still runs.
_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """A failing test must not leave a helpcrunch process behind."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=DEADLINE)


def _helpcrunch(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``helpcrunch ARGS`` in a process, with PYTHONUNBUFFERED unset: output must be flushed."""
    base = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "helpcrunch_async", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=base | (env or {}),
    )
    _started.append(process)
    return process


def _read_lines(stream: IO[str], count: int, timeout: float = DEADLINE) -> list[str]:
    """``count`` lines from a pipe, or a test failure once ``timeout`` has passed."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for _ in range(count):
            lines.put(stream.readline())

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        return [lines.get(timeout=max(deadline - time.monotonic(), 0)) for _ in range(count)]
    except queue.Empty:
        pytest.fail(f"no {count} lines within {timeout} s")


def _wait_for_lines(path, count: int, process: subprocess.Popen[str]) -> None:
    """Until ``path`` has ``count`` lines; fail if the process ends or the deadline passes."""
    deadline = time.monotonic() + DEADLINE
    while not path.exists() or len(path.read_text().splitlines()) < count:
        assert process.poll() is None, process.communicate(timeout=DEADLINE)
        assert time.monotonic() < deadline, f"{path} did not reach {count} lines"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "case", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")], ids=str
)
def test_signal_stops_cleanly_and_resume_works(emulator, env, tmp_path, case):
    """SIGINT/SIGTERM mid-run: exit 130/143, no traceback, files complete, a rerun resumes."""
    signum, code, name = case
    journal, report = tmp_path / "j.jsonl", tmp_path / "r.jsonl"
    args = ["chats", "set-status", "closed", *ids(*range(40))]
    files = ["--journal", str(journal), "--report", str(report)]
    key = ["--api-key", env["HELPCRUNCH_API_KEY"]]
    process = _helpcrunch(*args, *files, *key, "--rate", "10/1", env=env)
    _wait_for_lines(journal, 3, process)

    process.send_signal(signum)
    _out, err = process.communicate(timeout=DEADLINE)

    assert code == process.returncode, err
    assert "Traceback" not in err
    assert env["HELPCRUNCH_API_KEY"] not in err
    done = len(journal.read_text().splitlines())
    assert done == len(report_rows(report))  # the report was flushed and closed
    assert f"Interrupted by {name}: {done} chats processed ({done} updated, 0 failed)" in err
    assert f"{40 - done} not started" in err
    hint = err.splitlines()[-1].strip()  # the whole command on one line: no hard wrap
    assert hint.startswith("helpcrunch chats set-status closed 5215700 ")
    assert hint.endswith(f'--report {report} --api-key "$HELPCRUNCH_API_KEY" --rate 10/1')
    rerun = invoke([*args, *files, "--rate", "none"], env)
    assert 0 == rerun.exit_code, rerun.output
    assert f"{done} of 40 chats already done, {40 - done} to go" in rerun.stderr
    assert 40 == len(report_rows(report))


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("case", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=str)
def test_waiting_for_ids_on_a_terminal_says_so_and_stops_cleanly(env, case):
    """--from-file - on a terminal says it waits; a signal there: same exit codes, no traceback."""
    import pty  # noqa: PLC0415 - POSIX only

    signum, code = case
    base = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    controller, terminal = pty.openpty()
    args = ["chats", "set-status", "closed", "--from-file", "-"]
    try:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "helpcrunch_async", *args],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=base | env,
        )
        _started.append(process)
        assert process.stderr is not None
        waiting = _read_lines(process.stderr, 1)[0]

        process.send_signal(signum)
        _out, err = process.communicate(timeout=DEADLINE)
    finally:
        os.close(controller)
        os.close(terminal)

    assert "Reading chat ids from the terminal, one per line; end with Ctrl-D." in waiting
    assert code == process.returncode, err
    assert "Interrupted." in err
    assert "Traceback" not in err


def test_plain_progress_lines_when_not_a_terminal(emulator, env):
    """Off a terminal the progress is plain lines on stderr; the summary is on stdout."""
    process = _helpcrunch(
        "chats", "set-status", "opened", *ids(*range(25)), "--rate", "10/1", env=env
    )
    out, err = process.communicate(timeout=DEADLINE)

    assert 0 == process.returncode, err
    assert "progress: " in err
    assert " processed (" in err
    assert "25 chats set to 'opened'" in out


def test_emulator_command_banner_and_statistics(tmp_path):
    """`helpcrunch emulator` flushes its banner (ids, limit, faults), serves, prints statistics."""
    process = _helpcrunch(
        "emulator",
        "--port",
        "0",
        "--chats",
        "3",
        "--server-errors",
        "0.25",
        "--rate-limit",
        "50/10",
    )
    assert process.stdout is not None
    banner = _read_lines(process.stdout, 8)
    assert "HelpCrunch emulator on http://127.0.0.1:" in banner[0]
    assert "export HELPCRUNCH_API_KEY=emulator-key" in banner[2]
    assert "chat ids: 5215700 to 5215702" in banner[3]
    assert "rate limit: 50 requests per 10 s" in banner[4]
    assert "faults: 5xx 25.0%" in banner[5]
    assert "payload style: spec; error style: older" in banner[6]
    base_url = banner[0].split()[3]
    answer = httpx.get(base_url + "/chats/5215700", timeout=DEADLINE)
    assert 401 == answer.status_code  # served: no key, the documented error
    headers = {"Authorization": "Bearer emulator-key"}
    httpx.get(base_url + "/chats/5215700", headers=headers, timeout=DEADLINE)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=DEADLINE)

    assert 143 == process.returncode, err
    assert "Emulator stopped: 1 request with the key, 0 answered 429; busiest 10 s window: 1" in out
    assert "Traceback" not in err


def test_emulator_command_stops_on_ctrl_c():
    """Ctrl-C stops the emulator with the shell's code for it, and statistics."""
    process = _helpcrunch("emulator", "--port", "0", "--chats", "3")
    assert process.stdout is not None
    _read_lines(process.stdout, 8)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=DEADLINE)

    assert 130 == process.returncode, err
    assert "Emulator stopped: 0 requests" in out
    assert "Traceback" not in err


def test_emulator_on_a_port_in_use_is_one_line_exit_2():
    """A busy port: one line naming the address and what to do, exit 2, no traceback."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = CliRunner().invoke(cli, ["emulator", "--port", str(port)])

    assert 2 == result.exit_code, result.output
    expected = (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use: "
        "pick another --port (--port 0 picks a free one)"
    )
    assert [expected] == result.stderr.splitlines()
    assert "" == result.stdout


def test_emulator_json_banner_and_statistics():
    """`helpcrunch emulator --json`: the banner, then the statistics, one JSON object each."""
    process = _helpcrunch("emulator", "--port", "0", "--chats", "3", "--json")
    assert process.stdout is not None
    banner = json.loads(_read_lines(process.stdout, 1)[0])
    assert (3, 5215700, 5215702, "emulator-key") == (
        banner["chats"],
        banner["first_id"],
        banner["last_id"],
        banner["api_key"],
    )
    headers = {"Authorization": f"Bearer {banner['api_key']}"}
    httpx.get(banner["base_url"] + "/chats/5215700", headers=headers, timeout=DEADLINE)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=DEADLINE)

    assert 143 == process.returncode, err
    assert {"requests": 1, "rejected": 0, "max_in_window": 1} == json.loads(out)


def _closed_pipe() -> int:
    """The write end of a pipe whose reader is gone, as after `| head -1` has exited."""
    read, write = os.pipe()
    os.close(read)
    return write


@pytest.mark.parametrize(
    "command",
    [
        ["chats", "list", "--ids"],
        ["chats", "search", "--status", "new", "--json"],
        ["chats", "set-status", "opened", str(FIRST), "--rate", "none"],
        ["chats", "set-status", "opened", str(FIRST), "--rate", "none", "--json"],
        ["emulator", "--port", "0"],
    ],
    ids=" ".join,
)
def test_a_closed_output_ends_quietly_with_141(emulator, env, command):
    """stdout closed by its reader: no traceback, nothing on stderr, exit 141 (128 + SIGPIPE)."""
    base = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    closed = _closed_pipe()
    try:
        process = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "helpcrunch_async", *command],
            stdout=closed,
            stderr=subprocess.PIPE,
            text=True,
            env=base | env,
            timeout=DEADLINE,
            check=False,
        )
    finally:
        os.close(closed)

    assert (141, "") == (process.returncode, process.stderr)


def test_a_closed_progress_stops_the_run_with_journal_and_report_agreeing(emulator, env, tmp_path):
    """stderr closed mid-run: the run stops as for a signal, every journaled id is reported."""
    journal, report = tmp_path / "j.jsonl", tmp_path / "r.jsonl"
    base = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    closed = _closed_pipe()
    args = ["chats", "set-status", "closed", *ids(*range(40))]
    files = ["--journal", str(journal), "--report", str(report), "--rate", "10/1"]
    try:
        process = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "helpcrunch_async", *args, *files],
            stdout=subprocess.PIPE,
            stderr=closed,
            text=True,
            env=base | env,
            timeout=DEADLINE,
            check=False,
        )
    finally:
        os.close(closed)

    assert 141 == process.returncode
    journaled = sorted(json.loads(line)["id"] for line in journal.read_text().splitlines())
    assert journaled == sorted(row["chat_id"] for row in report_rows(report))


def test_demo_runs_offline_names_its_faults_and_is_never_rejected():
    """`helpcrunch demo` closes every chat on its own emulator, its faults named, no 429.

    25 chats and their retries stay under the 30 requests of one window: no 429 is possible
    whatever the machine's load. That the limiter paces a longer run across windows is
    shown on a virtual clock (tests/test_limiter.py).
    """
    process = _helpcrunch("demo", "--chats", "25", "--rate", "30/1")
    out, err = process.communicate(timeout=120)

    assert 0 == process.returncode, err
    assert "25 chats set to 'closed'" in out
    assert "0 rejected with 429" in out
    assert "25/25 chats closed" in out
    assert (
        "Faults injected, as on a real network: 5xx 1.0%, dropped connections 1.0%, "
        "latency 0.005 s (+ up to 0.02 s). The SDK retries the 5xx answers and the dropped "
        "connections: they are the summary's retries." in err
    )


def test_demo_json():
    """`helpcrunch demo --json`: the client's summary and the server's counts, one object."""
    process = _helpcrunch("demo", "--chats", "25", "--rate", "30/1", "--json")
    out, err = process.communicate(timeout=120)

    assert 0 == process.returncode, err
    summary = json.loads(out)
    assert (25, 0, 25, 0) == (
        summary["updated"],
        summary["failed"],
        summary["server"]["closed"],
        summary["server"]["rejected"],
    )
    assert summary["server"]["requests"] == summary["requests"]["attempts"]


# --- a journal in Redis ------------------------------------------------------------------


@pytest.mark.redis
def test_a_job_in_redis_resumes_like_a_file(emulator, env, redis_url):
    """--journal redis://...#job: a second run, on any machine, skips what the first did."""
    journal = f"{redis_url}#cli-{time.monotonic_ns()}"
    first = invoke(["chats", "set-status", "closed", *ids(0, 1), "--journal", journal], env)
    dry = invoke(
        ["chats", "set-status", "closed", *ids(0, 1, 2), "--journal", journal, "--dry-run"], env
    )
    again = invoke(["chats", "set-status", "closed", *ids(0, 1, 2), "--journal", journal], env)

    assert (0, 0, 0) == (first.exit_code, dry.exit_code, again.exit_code), again.stderr
    assert "would set 'closed' on 1 chat (2 already done" in dry.stdout
    assert "2 of 3 chats already done, 1 to go" in again.stderr
    assert "1 chat set to 'closed', 0 failed, 2 skipped" in again.stdout
    report = invoke(["job-report", journal, "--json"], env)
    assert 0 == report.exit_code, report.stderr
    assert {"closed": 3} == json.loads(report.stdout)["succeeded"]
    text = invoke(["job-report", journal], env).stdout
    assert ": closed: 3 done, 0 failed; 0 in flight" in text


@pytest.mark.redis
def test_a_job_in_redis_shares_the_rate_limit_there_too(emulator, env, redis_url):
    """Machines on one job are on one key: the limit is kept in the journal's Redis."""
    db = redis_url.rpartition("/")[0] + "/3"  # a database of this test's own
    with redis.Redis.from_url(db) as server:
        server.flushdb()
        dry = ["chats", "set-status", "closed", *ids(0), "--journal", f"{db}#dry", "--dry-run"]
        assert 0 == invoke(dry, env).exit_code
        nothing_sent = server.keys("helpcrunch-async:ratelimit:*")
        args = ["chats", "set-status", "closed", *ids(0, 1), "--journal", f"{db}#shared"]
        result = invoke(args, env)
        limiter_keys = server.keys("helpcrunch-async:ratelimit:*")

    assert 0 == result.exit_code, result.stderr
    assert [] == nothing_sent
    assert limiter_keys, "the limiter's state is in the journal's Redis"


@pytest.mark.redis
def test_a_redis_journal_needs_a_job_name(env, redis_url):
    """A Redis URL without #job is a usage error, before anything is sent."""
    result = invoke(["chats", "set-status", "closed", *ids(0), "--journal", redis_url], env)

    assert 2 == result.exit_code
    assert "name the job after a #" in result.stderr
    assert 2 == invoke(["job-report", "journal.jsonl"], env).exit_code


@pytest.mark.redis
def test_the_resume_hint_never_shows_the_redis_password(emulator, env, tmp_path):
    """A refused key stops the run: the hint names the journal with its password masked."""
    with nodes_in(tmp_path) as nodes:
        nodes.append(RedisNode(tmp_path, free_port(), "--requirepass", "s3cret-pw"))
        nodes[0].start(wait=False)
        with redis.Redis(port=nodes[0].port, password="s3cret-pw") as client:
            wait_for(lambda: bool(client.ping()), "the server with a password")
        journal = f"redis://:s3cret-pw@127.0.0.1:{nodes[0].port}/0#cli"
        args = ["chats", "set-status", "closed", *ids(0), "--journal", journal]
        result = invoke(args, env | {"HELPCRUNCH_API_KEY": "wrong-key"})

    assert 3 == result.exit_code, result.stderr
    assert "To resume (the journal redis://***@127.0.0.1" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
