"""Every example runs, end to end, against the emulator (`nox -s examples` runs just these)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.emulator
EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def triage_bot(monkeypatch) -> ModuleType:
    """examples/triage_bot.py, imported as a user's test imports their bot."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("triage_bot")


def run(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HELPCRUNCH_")}
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean | (env or {}),
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    return done.stdout


def test_close_with_gather():
    """asyncio.gather over every chat: all closed, and nothing but a 429 was sent twice.

    The example's client keeps the server's own limit with a 0.1 s margin, as a real program
    would: whether a 429 happens at all depends on the machine's load (the emulator stamps a
    request when its thread handles it, tenths of a second after the grant on a busy
    machine). What holds on any machine: every chat closed, and each 429 cost exactly one
    more request. The limit itself is tested on a virtual clock (test_limiter.py,
    test_emulator.py).
    """
    out = run("close_with_gather.py")

    found = re.search(r"closed 100, failed 0 in .* s; (\d+) requests, (\d+) answered 429", out)
    assert found, out
    assert int(found[1]) == 100 + int(found[2])


def test_web_backend_shares_one_client():
    """The Starlette backend answers each request through its one shared client."""
    out = run("web_backend.py")

    assert 5 == out.count("'status': 'on-hold'")
    assert "404 {'error': 'no such chat'}" in out


def test_asyncio_bot():
    """The bot applies its rules and reports the failure of an unknown chat."""
    out = run("asyncio_bot.py")

    assert 12 == out.count(": now ")
    assert "on 42: failed" in out


def test_trio_job():
    """The same bulk job under trio: every chat processed, none failed.

    (As in test_close_with_gather, a 429 the machine's load may cause is retried; how many the
    server answered is the load's business, not the SDK's.)
    """
    out = run("trio_job.py")

    assert re.search(
        r"^trio: 60 chats processed, 0 failed; server rejected \d+$", out, re.MULTILINE
    )


def test_triage_bot_reacts_to_webhooks():
    """Webhooks over loopback drive the bot: keyword chats answered, moved, closed; others kept."""
    out = run("triage_bot.py", "--quiet-after", "0.5")

    assert 2 == out.count(": replied and moved to Billing")
    assert 2 == out.count(": closed after going quiet")
    assert 2 == out.count(": closed, department Billing, keyword True")
    [untouched] = [line for line in out.splitlines() if line.endswith("keyword False")]
    assert untouched.endswith(": new, department None, keyword False")  # neither moved nor closed


def test_vip_bot_tags_vips_and_hands_over_only_while_the_team_is_online():
    """VIPs are tagged on their first message; handed to a person, then answered by the bot."""
    out = run("vip_bot.py")

    assert 2 == out.count(" tagged vip")
    assert 1 == out.count(": handed to ")
    assert 1 == out.count(": team away, the bot answered")
    assert "Eli Novak is not a VIP, the bot carries on" in out
    assert "VIPs tagged by the bot: Dana Okafor, Fatima Ali" in out
    lines = out.splitlines()
    handed = next(i for i, line in enumerate(lines) if ": handed to " in line)
    away = next(i for i, line in enumerate(lines) if "team away" in line)
    assert handed < away  # online first, away after the team left


@pytest.mark.anyio
async def test_the_triage_bots_rules_in_process(triage_bot, helpcrunch_client, helpcrunch_emulator):
    """With the test kit, in process: the keyword chat is answered and moved, the other not."""
    helpcrunch_emulator.reset(webhook_signing_key=triage_bot.SIGNING_KEY)
    billing = await triage_bot.find_department(helpcrunch_client, triage_bot.DEPARTMENT)
    app = triage_bot.webhook_app(triage_bot.TriageBot(helpcrunch_client, billing, quiet_after=60))
    keyword = await helpcrunch_client.chats.create(customer=1001, application=1)
    other = await helpcrunch_client.chats.create(customer=1002, application=1)
    await helpcrunch_client.messages.create(keyword.id, "I'd like a REFUND, please")
    await helpcrunch_client.messages.create(other.id, "How do I change my password?")

    answers = await helpcrunch_emulator.webhooks.deliver(triage_bot.WEBHOOK_PATH, app=app)

    assert [200] * 4 == [answer.status_code for answer in answers]  # 2 chat.new, 2 messages
    replies = [r.json for r in helpcrunch_emulator.requests if r.path == "/messages"][2:]
    assert [(keyword.id, triage_bot.REPLY)] == [(r["chat"], r["text"]) for r in replies]
    moved = (await helpcrunch_client.chats.get(keyword.id)).department
    assert moved is not None
    assert billing.id == moved.id
    assert (await helpcrunch_client.chats.get(other.id)).department is None


@pytest.mark.redis
@pytest.mark.fleet
@pytest.mark.helpcrunch_emulator(chats=30, rate_limit="15/1")
def test_fleet_through_redis(redis_url, helpcrunch_emulator):
    """Several processes share one limit through Redis; the strict server rejects nothing.

    The fleet keeps 15 per 2 s against the server's 15 per 1 s, so that only a fleet that
    does not share, never the machine's load, puts 16 requests in one of the server's
    windows (see FLEET_RATE in test_redis.py).
    """
    out = run(
        "fleet_redis.py",
        "--redis-url",
        redis_url,
        "--processes",
        "2",
        "--first-id",
        "5215700",
        "--count",
        "30",
        "--rate",
        "15/2",
        env=helpcrunch_emulator.env,
    )

    assert 0 == helpcrunch_emulator.stats()["rejected"]
    assert "2 processes done, 0 with failures" in out


@pytest.mark.redis
@pytest.mark.fleet
@pytest.mark.helpcrunch_emulator(chats=20, rate_limit="20/1")
def test_a_fleet_worker_with_a_journal_in_redis(redis_url, helpcrunch_emulator):
    """One worker of examples/fleet_journal.py: every chat updated, then the job's report."""
    args = ["--redis-url", redis_url, "--job", f"example-{os.getpid()}", "--rate", "20/1"]
    out = run(
        "fleet_journal.py",
        *args,
        "--first-id",
        "5215700",
        "--count",
        "20",
        env=helpcrunch_emulator.env,
    )

    assert "20 updated, 0 failed, 0 done by others" in out
    assert ": closed: 20 done, 0 failed; 0 in flight" in out
