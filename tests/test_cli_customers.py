"""helpcrunch customers, against the emulator: listings, export, and tag/untag behaving as
chats set-status does on resume, signals, bad input and exit codes."""

from __future__ import annotations

import csv
import io
import json
import signal
from typing import Any

import pytest
from click.testing import CliRunner

from helpcrunch_async._cli._commands import cli
from helpcrunch_async._cli._input import MAX_BAD_LINES_SHOWN
from helpcrunch_async.emulator import RunningEmulator
from tests.test_cli import (  # the fixtures are the chats' ones: 40 chats, so 40 customers
    CLOSED_URL,
    DEADLINE,
    _helpcrunch,
    _no_leftover_processes,
    _wait_for_lines,
    emulator,
    env,
    fast_retries,
    report_rows,
)

pytestmark = pytest.mark.emulator
__all__ = ["_no_leftover_processes", "emulator", "env", "fast_retries"]  # fixtures, used


def invoke(args: list[str], env: dict[str, str], stdin: str | None = None):
    return CliRunner().invoke(
        cli, [*args, "--rate", "none"], env=env, input=stdin, catch_exceptions=False
    )


def customer_ids(emulator: RunningEmulator) -> list[int]:
    return sorted(emulator.state.customers)


def tags_of(emulator: RunningEmulator, customer_id: int) -> set[str]:
    return {t["name"] for t in emulator.state.customers[customer_id]["tags"]}


# --- list, search, get, export ------------------------------------------------------------


def test_list_prints_every_customer_as_json_lines_or_ids(emulator, env):
    """list: one JSON object a line, as the API sent it; --ids: one id a line."""
    lines = invoke(["customers", "list"], env).stdout.splitlines()
    ids = invoke(["customers", "list", "--ids", "--sort", "lastSeen", "--order", "desc"], env)

    assert customer_ids(emulator) == sorted(json.loads(line)["id"] for line in lines)
    last_seen = {i: c["lastSeen"] for i, c in emulator.state.customers.items()}
    assert sorted(last_seen, key=lambda i: -last_seen[i]) == [int(i) for i in ids.stdout.split()]


def test_search_by_tag_and_filter(emulator, env):
    """--tag matches the tagged; --filter reads text fields as text; --any ORs them."""
    vips = {i for i in customer_ids(emulator) if "vip" in tags_of(emulator, i)}
    someone = emulator.state.customers[customer_ids(emulator)[0]]

    by_tag = invoke(["customers", "search", "--tag", "vip", "--ids"], env)
    by_user_id = invoke(
        ["customers", "search", "--filter", "customers.userId", "=", someone["userId"], "--ids"],
        env,
    )
    either = invoke(
        [
            "customers",
            "search",
            "--tag",
            "vip",
            "--filter",
            "customers.email",
            "=",
            someone["email"],
            "--any",
            "--ids",
        ],
        env,
    )

    assert vips
    assert vips == {int(i) for i in by_tag.stdout.split()}
    assert [str(someone["id"])] == by_user_id.stdout.split()
    assert vips | {someone["id"]} == {int(i) for i in either.stdout.split()}


def test_search_needs_a_condition_and_a_valid_one(emulator, env):
    """No condition, or an unknown operator: exit 2, nothing printed."""
    nothing = invoke(["customers", "search"], env)
    bad_op = invoke(["customers", "search", "--filter", "customers.name", "==", "x"], env)

    assert (2, 2) == (nothing.exit_code, bad_op.exit_code)
    assert "customers list" in nothing.output
    assert "is no search operator" in bad_op.output


def test_get_prints_in_order_and_exits_1_for_a_missing_one(emulator, env):
    """get prints each customer in the order given; a missing one is named, exit 1."""
    first, second = customer_ids(emulator)[:2]

    result = invoke(["customers", "get", str(second), "7", str(first)], env)

    assert 1 == result.exit_code
    assert [second, first] == [json.loads(line)["id"] for line in result.stdout.splitlines()]
    assert "customer 7: not found" in result.stderr


def test_get_refuses_bad_ids_before_sending(emulator, env):
    """A bad id is a usage error naming it; nothing is sent."""
    result = invoke(["customers", "get", "12", "x"], env)

    assert 2 == result.exit_code
    assert "not a customer id: 'x'" in result.stderr
    assert 0 == emulator.stats()["requests"]


def test_export_csv_has_every_customer_and_field(emulator, env, tmp_path):
    """export --csv: a header and one row a customer, tags joined, custom data as JSON."""
    out = tmp_path / "customers.csv"

    result = invoke(["customers", "export", "--csv", "--output", str(out)], env)

    assert 0 == result.exit_code, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert customer_ids(emulator) == sorted(int(r["id"]) for r in rows)
    row = rows[0]
    stored = emulator.state.customers[int(row["id"])]
    assert stored["customData"] == json.loads(row["custom_data"])
    assert "; ".join(t["name"] for t in stored["tags"]) == row["tags"]
    assert row["first_seen"].endswith("+00:00")


def test_export_json_lines_of_the_search(emulator, env):
    """export with --tag writes the matching customers as JSON lines on stdout."""
    vips = {i for i in customer_ids(emulator) if "vip" in tags_of(emulator, i)}

    result = invoke(["customers", "export", "--tag", "vip"], env)

    assert vips == {json.loads(line)["id"] for line in result.stdout.splitlines()}


@pytest.mark.parametrize(
    "command", [["list"], ["search", "--tag", "vip"], ["get", "1"], ["export"]]
)
def test_wrong_key_exits_3(emulator, env, command):
    """Every listing ends a refused key with exit 3, as the chats' do."""
    result = invoke(["customers", *command, "--api-key", "nope"], env)

    assert 3 == result.exit_code
    assert "--api-key or HELPCRUNCH_API_KEY" in result.stderr


def test_a_down_api_exits_4(env, fast_retries):
    """list against nothing: exit 4, saying the API is unreachable."""
    result = invoke(["customers", "list", "--base-url", CLOSED_URL], env)

    assert 4 == result.exit_code
    assert "unreachable or failing" in result.stderr


# --- tag and untag: the bulk jobs ------------------------------------------------------------


def test_tag_from_args_and_file_writes_report(emulator, env, tmp_path):
    """Ids from arguments and a file get the tags; the report names customers and the operation."""
    first, second, third = customer_ids(emulator)[:3]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"# lapsed\n{second}\n\n{third}  # big one\n")
    report = tmp_path / "out.jsonl"

    result = invoke(
        [
            "customers",
            "tag",
            "lapsed,churn-risk",
            str(first),
            "--from-file",
            str(ids_file),
            "--report",
            str(report),
        ],
        env,
    )

    assert 0 == result.exit_code, result.output
    assert all({"lapsed", "churn-risk"} <= tags_of(emulator, i) for i in (first, second, third))
    rows = report_rows(report)
    assert {first, second, third} == {r["customer_id"] for r in rows}
    assert {"tag lapsed, churn-risk"} == {r["operation"] for r in rows}
    assert "3 customers tagged 'lapsed, churn-risk'" in result.stdout


def test_untag_removes_and_a_csv_report_names_its_columns(emulator, env, tmp_path):
    """untag removes the tag; a .csv report's header is the customers' one."""
    vips = [i for i in customer_ids(emulator) if "vip" in tags_of(emulator, i)]
    report = tmp_path / "out.csv"

    result = invoke(
        ["customers", "untag", "vip", "--from-file", "-", "--report", str(report)],
        env,
        stdin="\n".join(map(str, vips)),
    )

    assert 0 == result.exit_code, result.output
    assert not any("vip" in tags_of(emulator, i) for i in vips)
    assert "customer_id,operation,ok,error,run" == report.read_text().splitlines()[0]


def test_failures_exit_1_with_a_summary_in_customers(emulator, env):
    """A missing customer fails alone: exit 1, counted in the customers' words."""
    first = customer_ids(emulator)[0]

    result = invoke(["customers", "tag", "vip", str(first), "7"], env)

    assert 1 == result.exit_code
    assert "1 customer tagged 'vip', 1 failed" in result.stdout
    assert "Failures by reason (1 customer):" in result.stdout
    assert "NotFoundError (HTTP 404: entity_not_found): 7" in result.stdout


def test_dry_run_and_json_summary(emulator, env, tmp_path):
    """--dry-run sends nothing; --json says the operation and the counts."""
    first, second = customer_ids(emulator)[:2]
    journal = tmp_path / "j.jsonl"
    invoke(["customers", "tag", "gold", str(first), "--journal", str(journal)], env)
    sent = emulator.stats()["requests"]

    dry = invoke(
        [
            "customers",
            "tag",
            "gold",
            str(first),
            str(second),
            "--journal",
            str(journal),
            "--dry-run",
        ],
        env,
    )
    summary = invoke(
        ["customers", "tag", "gold", str(first), str(second), "--journal", str(journal), "--json"],
        env,
    )

    assert "Dry run: would add 'gold' to 1 customer (1 already done, 0 repeated)" in dry.stdout
    assert sent + 1 == emulator.stats()["requests"]  # the dry run sent nothing
    document = json.loads(summary.stdout)
    assert ("tag gold", 1, 1, 0) == (
        document["operation"],
        document["updated"],
        document["skipped"],
        document["exit_code"],
    )


def test_the_journal_resumes_only_the_same_tags(emulator, env, tmp_path):
    """Rerun with the same tags: the done ids are skipped; other tags redo them."""
    ids = [str(i) for i in customer_ids(emulator)[:3]]
    journal = tmp_path / "j.jsonl"
    invoke(["customers", "tag", "gold", ids[0], "--journal", str(journal)], env)

    same = invoke(["customers", "tag", "gold", *ids, "--journal", str(journal)], env)
    other = invoke(["customers", "tag", "silver", *ids, "--journal", str(journal)], env)

    assert "Resuming from" in same.stderr
    assert "1 of 3 customers already done, 2 to go." in same.stderr
    assert "0 skipped" in other.stdout


def test_every_bad_line_is_reported_at_once_and_nothing_sent(emulator, env, tmp_path):
    """All bad lines in one pass, in the customers' words; exit 2 and no request."""
    bad = [f"x{n}" for n in range(MAX_BAD_LINES_SHOWN + 2)]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(["12", *bad]) + "\n")

    result = invoke(["customers", "tag", "vip", "--from-file", str(ids_file)], env)

    assert 2 == result.exit_code
    assert f"{len(bad)} bad customer ids, nothing was sent" in result.stderr
    assert f"{ids_file}:2: not a customer id: 'x0'" in result.stderr
    assert 0 == emulator.stats()["requests"]


@pytest.mark.parametrize("tags", ["", " , "])
def test_an_empty_tag_is_a_usage_error(emulator, env, tags):
    """TAGS must name a tag."""
    result = invoke(["customers", "tag", tags, "12"], env)

    assert 2 == result.exit_code
    assert 0 == emulator.stats()["requests"]


def test_wrong_key_stops_a_tag_job_with_3(emulator, env):
    """A refused key stops the job at once."""
    result = invoke(
        ["customers", "tag", "vip", *map(str, customer_ids(emulator)), "--api-key", "nope"], env
    )

    assert 3 == result.exit_code
    assert "Stopped: the API key was refused" in result.stderr


def test_a_down_api_trips_the_breaker_exit_4(env, tmp_path, fast_retries):
    """Connection failures in a row stop the job, exit 4, in the customers' words."""
    journal = tmp_path / "j.jsonl"
    result = invoke(
        [
            "customers",
            "tag",
            "vip",
            *map(str, range(1, 41)),
            "--journal",
            str(journal),
            "--base-url",
            CLOSED_URL,
            "--stop-after",
            "3",
            "--concurrency",
            "1",
        ],
        env,
    )

    assert 4 == result.exit_code, result.output
    assert "Stopped: 3 customers in a row failed with APIConnectionError" in result.stderr
    assert "37 not started" in result.stderr
    assert "To resume" in result.stderr


def test_search_ids_feed_tag(emulator, env):
    """search --ids | tag --from-file -: the pipeline tags exactly the found customers."""
    vips = {i for i in customer_ids(emulator) if "vip" in tags_of(emulator, i)}
    found = invoke(["customers", "search", "--tag", "vip", "--ids"], env)

    result = invoke(["customers", "tag", "reviewed", "--from-file", "-"], env, stdin=found.stdout)

    assert 0 == result.exit_code
    assert vips == {i for i in customer_ids(emulator) if "reviewed" in tags_of(emulator, i)}


@pytest.mark.parametrize(
    "case", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")], ids=str
)
def test_signal_stops_cleanly_and_resume_works(emulator, env, tmp_path, case):
    """SIGINT/SIGTERM mid-run: exit 130/143, no traceback, files complete, a rerun resumes."""
    signum, code, name = case
    journal, report = tmp_path / "j.jsonl", tmp_path / "r.jsonl"
    ids = [str(i) for i in customer_ids(emulator)]
    args = ["customers", "tag", "vip", *ids]
    files = ["--journal", str(journal), "--report", str(report)]
    process = _helpcrunch(*args, *files, "--rate", "10/1", env=env)
    _wait_for_lines(journal, 3, process)

    process.send_signal(signum)
    _out, err = process.communicate(timeout=DEADLINE)

    assert code == process.returncode, err
    assert "Traceback" not in err
    done = len(journal.read_text().splitlines())
    assert done == len(report_rows(report))
    assert f"Interrupted by {name}: {done} customers processed ({done} updated, 0 failed)" in err
    hint = err.splitlines()[-1].strip()
    assert hint.startswith(f"helpcrunch customers tag vip {ids[0]} ")
    assert hint.endswith(f"--report {report} --rate 10/1")
    rerun = invoke([*args, *files], env)
    assert 0 == rerun.exit_code, rerun.output
    assert f"{done} of 40 customers already done, {40 - done} to go" in rerun.stderr
    rows: list[dict[str, Any]] = report_rows(report)
    assert 40 == len(rows)
