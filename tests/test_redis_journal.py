"""The shared bulk journal against real redis-servers: records, claims, leases, the report."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone

import anyio
import pytest
import redis
import redis.cluster
from redis.crc import key_slot

import helpcrunch_async as hc
import helpcrunch_async.redis._calls as redis_calls
from helpcrunch_async.redis import JournalError, JournalReport, RedisJournal
from helpcrunch_async.redis._report import parse_report
from tests.conftest import status_echo
from tests.redis_server import free_port

pytestmark = pytest.mark.redis

#: Long enough that a renewal can never be late by it, however loaded the machine.
LEASE = 5.0
#: Generous bound for what must happen "soon" (a renewal, a takeover): never reached.
SOON = 30.0


@pytest.fixture
def flush(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's Redis, emptied first."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def journal(flush: redis.Redis) -> RedisJournal:
    """A job of its own on the session's Redis."""
    return RedisJournal(flush, "job-1", lease=LEASE)


@pytest.fixture
def no_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis failures count at once (no retry for a moment), so tests stay short."""
    monkeypatch.setattr(redis_calls, "RETRY_FOR", 0.0)


async def eventually(check, what: str) -> None:
    """Poll ``check`` (async) until it holds; fail after SOON seconds."""
    with anyio.fail_after(SOON):
        while not await check():  # noqa: ASYNC110 - polling Redis, not an event of ours
            await anyio.sleep(0.05)


# --- the file journal's rules --------------------------------------------------------


@pytest.mark.anyio
async def test_done_ids_are_skipped_and_the_latest_record_wins(anyio_backend, journal):
    """Done with "closed": skipped; reopened since: "closed" sends it again."""
    async with journal.session("closed") as first:
        assert hc.Claim("send") == await first.claim(1)
        await first.record(1, ok=True)
    async with journal.session("closed") as again:
        assert hc.Claim("skip") == await again.claim(1)
    async with journal.session("opened") as other:
        assert hc.Claim("send") == await other.claim(1)
        await other.record(1, ok=True)
    async with journal.session("closed") as last:
        assert hc.Claim("send") == await last.claim(1)

    report = await journal.report()
    assert {"opened": 1} == report.succeeded
    assert 1 == report.ids


@pytest.mark.anyio
async def test_a_failure_is_settled_for_its_run_and_retried_by_a_later_one(anyio_backend, journal):
    """A peer of the same run skips an id that failed; a run started later sends it again."""
    async with journal.session("closed") as peer:
        async with journal.session("closed") as failing:
            assert hc.Claim("send") == await failing.claim(3)
            await failing.record(3, ok=False, error="NotFoundError: " + "x" * 1000)
        assert hc.Claim("skip") == await peer.claim(3)
    await anyio.sleep(0.01)  # the next session starts on a later millisecond
    async with journal.session("closed") as later:
        assert hc.Claim("send") == await later.claim(3)

    report = await journal.report()
    assert {"closed": 1} == report.failed
    op, reason = report.failures[3]
    assert "closed" == op
    assert 200 == len(reason)  # bounded: MAX_TEXT
    assert reason.startswith("NotFoundError: xxx")


@pytest.mark.anyio
async def test_an_invalid_ids_text_is_recorded_bounded(anyio_backend, journal):
    """The engine records an invalid id by its repr: kept, cut to 64 characters."""
    async with journal.session("closed") as session:
        await session.record("'" + "a" * 500 + "'", ok=False, error="TypeError: not an int")

    [(item, (op, reason))] = (await journal.report()).failures.items()
    assert ("'" + "a" * 63, "closed", "TypeError: not an int") == (item, op, reason)


# --- claims and leases ---------------------------------------------------------------


@pytest.mark.anyio
async def test_a_held_id_makes_others_wait_until_recorded(anyio_backend, journal):
    """Another session waits (at most the lease) while one holds an id; then it is done."""
    async with journal.session("closed") as one, journal.session("closed") as two:
        assert hc.Claim("send") == await one.claim(7)
        wait = await two.claim(7)
        assert "wait" == wait.action
        assert 0 < wait.retry_in <= LEASE
        await one.record(7, ok=True)
        assert hc.Claim("skip") == await two.claim(7)


@pytest.mark.anyio
async def test_claims_in_flight_are_renewed_and_given_back_at_the_end(anyio_backend, flush):
    """The holder pushes its lease back while it holds the id; leaving the session frees it."""
    journal = RedisJournal(flush, "job-2", lease=1.5)
    lease_key = "helpcrunch-async:journal:{job-2}:lease"
    async with journal.session("closed") as holder:
        await holder.claim(7)
        first = flush.zscore(lease_key, "7")

        async def renewed() -> bool:
            return bool(flush.zscore(lease_key, "7") != first)

        await eventually(renewed, "a renewal")
        assert first < flush.zscore(lease_key, "7")
    async with journal.session("closed") as next_one:
        assert hc.Claim("send") == await next_one.claim(7)


@pytest.mark.anyio
async def test_a_dead_workers_claim_is_taken_over_once_its_lease_lapses(anyio_backend, journal):
    """A claim nobody renews ends with its lease; the next to ask takes the id, counted."""
    # A worker that died: its claim made through the script, and nothing renewing it.
    await journal._call("claim", "dead", "", ["closed", 300, 0], [9], items=1)
    async with journal.session("closed") as survivor:
        first = await survivor.claim(9)
        assert "wait" == first.action
        assert first.retry_in <= 0.3

        async def taken() -> bool:
            return bool(hc.Claim("send") == await survivor.claim(9))

        await eventually(taken, "the takeover")
        await survivor.record(9, ok=True)

    report = await journal.report()
    assert (1, {"closed": 1}) == (report.takeovers, report.succeeded)


@pytest.mark.anyio
async def test_a_redis_that_lost_the_job_is_noticed_and_claims_kept(anyio_backend, flush, caplog):
    """State flushed mid-run: the holder's renewal re-takes its claim; the loss is logged."""
    journal = RedisJournal(flush, "job-3", lease=1.5)
    async with journal.session("closed") as holder:
        await holder.claim(5)
        flush.flushdb()  # Redis restarted empty

        async def held_again() -> bool:
            return bool(flush.hexists("helpcrunch-async:journal:{job-3}:owner", "5"))

        await eventually(held_again, "the renewal")
        async with RedisJournal(flush, "job-3").session("closed") as peer:
            assert "wait" == (await peer.claim(5)).action
        await holder.record(5, ok=True)

    assert 1 <= journal.lost_states
    assert "Redis lost the state of journal 'job-3'" in caplog.text
    assert 1 <= (await journal.report()).lost_states


# --- keys, memory, reading ----------------------------------------------------------


@pytest.mark.anyio
async def test_keys_share_one_slot_and_expire(anyio_backend, flush):
    """Every key of a job is in the job's hash slot and expires ttl after its last write."""
    journal = RedisJournal(flush, "job-4", lease=1.0, ttl=100.0)
    async with journal.session("closed") as session:
        await session.claim(1)
        await session.record(1, ok=False, error="boom")
        await session.claim(12345)

    keys = flush.keys("helpcrunch-async:journal:*")
    parts = {key.decode().rpartition("}:")[2] for key in keys}
    assert {"meta", "ops", "counts", "errs", "sessions", "r:0"} == parts  # claims ended
    assert {key_slot(b"job-4")} == {key_slot(key) for key in keys}
    assert all(0 < flush.pttl(key) <= 100_000 for key in keys)


@pytest.mark.anyio
async def test_reading_writes_nothing(anyio_backend, journal, flush):
    """A report, a clock and a status query of a job nobody ran create no key."""
    report = await journal.report()
    pending = await journal.pending("closed", [1, 2])
    await journal.clock()

    assert (0, [1, 2]) == (report.ids, pending)
    assert [] == flush.keys("*")


@pytest.mark.anyio
async def test_pending_tells_what_a_run_started_then_would_send(anyio_backend, journal):
    """Done ids are settled; a failure is settled only if recorded since the given time."""
    async with journal.session("closed") as session:
        await session.record(1, ok=True)
        await session.record(2, ok=False, error="NotFoundError")
    await anyio.sleep(0.01)  # the clock's milliseconds move on
    now = await journal.clock()
    await anyio.sleep(0.01)
    async with journal.session("closed") as session:
        await session.record(3, ok=False, error="NotFoundError")

    assert [2, 3, 4] == await journal.pending("closed", [1, 2, 3, 4])
    assert [2, 4] == await journal.pending("closed", [1, 2, 3, 4], since=now)
    assert list(range(1001, 2500)) == await journal.pending("closed", range(1001, 2500))


def test_a_report_reads_as_text_bounded():
    """str(report): counts per operation, the first failures, and how many more."""
    reply = ["1796292966000", "0", "1", "2", "1", "closed", "1", "2", "1", "230", "-1", "12"]
    reply += ["3", "11", "1\t1\tNotFoundError", "12", "1\t1\tServerError", "x", "1\t1\tboom"]

    report = parse_report("job", reply, 3)

    assert {"closed": 230} == report.succeeded
    assert {"closed": 12} == report.failed
    text = str(report)
    assert text.startswith("job job: closed: 230 done, 12 failed; 0 in flight, 1 lapsed")
    assert "  11: closed: NotFoundError" in text
    assert "... and 9 more failed" in text


@pytest.mark.parametrize(
    "reply",
    [
        [],
        ["x", "0", "0", "0", "0", "0", "0"],
        ["1", "0", "0", "0", "999999", "closed"],
        ["1", "0", "0", "0", "0", "1", "closed", "-5"],
        ["1", "0", "0", "0", "0", "0", "1", "", "1\t1\tboom"],
        ["1", "0", "0", "0", "0", "0", "0", "extra"],
    ],
)
def test_a_report_that_is_nonsense_is_refused(reply):
    """Hostile numbers, counts or ids are a ValueError, never a crash or a huge list."""
    with pytest.raises(ValueError, match="report"):
        parse_report("job", reply, 10)


# --- when Redis cannot be used ------------------------------------------------------


@pytest.mark.anyio
async def test_a_nonsense_reply_is_unavailable_not_a_crash(anyio_backend, journal, monkeypatch):
    """Every byte from Redis is checked: anything unexpected is JournalError."""
    for junk in (None, [b"x"] * 5000, [b"e", b"2", b"1", b"m"], [b"e", b"0", b"1", b"b" * 2000]):

        async def hostile(keys, args, junk=junk):
            return junk

        monkeypatch.setattr(journal, "_script", hostile)
        with pytest.raises(JournalError, match="unavailable"):
            async with journal.session("closed") as session:
                await session.claim(1)


@pytest.mark.anyio
async def test_a_hostile_key_is_unavailable(anyio_backend, flush, no_retry):
    """Another program's key of the wrong type: one clear error, after the journal's wait."""
    flush.set("helpcrunch-async:journal:{job-5}:ops", "not a hash")
    journal = RedisJournal(flush, "job-5", unavailable_for=0.2)

    with pytest.raises(JournalError, match="WRONGTYPE"):
        async with journal.session("closed") as session:
            await session.record(1, ok=True)


@pytest.mark.anyio
async def test_an_unreachable_redis_refuses_the_run_before_sending(anyio_backend, make_client, api):
    """No Redis: the bulk run ends with JournalError and nothing is sent."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    journal = RedisJournal.from_url(f"redis://127.0.0.1:{free_port()}/0", "job", unavailable_for=0)

    async with make_client() as client:
        with pytest.raises(JournalError, match="'job' \\(Redis\\) is unavailable"):
            await client.chats.bulk_update_status([1, 2], "closed", journal=journal)
    await journal.aclose()

    assert 0 == route.call_count


@pytest.mark.anyio
async def test_redis_lost_mid_run_ends_it_with_one_error(
    anyio_backend, make_client, api, redis_node
):
    """Redis dies mid-run: the outcomes recorded come first, then one JournalError."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    journal = RedisJournal.from_url(redis_node.url, "job", unavailable_for=0.5)
    outcomes = []

    async with make_client() as client:
        ids = range(1, 50)
        stream = client.chats.stream_update_status(ids, "closed", concurrency=1, journal=journal)
        with pytest.raises(JournalError):
            async with stream as running:
                async for outcome in running:
                    outcomes.append(outcome.chat_id)
                    if len(outcomes) == 5:
                        redis_node.kill()
    await journal.aclose()

    assert 5 <= len(outcomes) < 49
    assert len(outcomes) <= route.call_count <= len(outcomes) + 1


def test_bad_arguments_are_refused(flush):
    """Names, leases and clients are checked when the journal is made."""
    with pytest.raises(ValueError, match="job name"):
        RedisJournal(flush, "a{b}")
    with pytest.raises(ValueError, match="twice the lease"):
        RedisJournal(flush, "job", lease=10, ttl=15)
    with pytest.raises(ValueError, match="lease"):
        RedisJournal(flush, "job", lease=float("nan"))
    with pytest.raises(TypeError, match="redis-py client"):
        RedisJournal("redis://localhost", "job")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Redis URL"):
        RedisJournal.from_url("localhost:6379", "job")


def test_repr_names_the_job_never_the_url(redis_url):
    """A password in the URL never reaches a repr."""
    url = redis_url.replace("redis://", "redis://user:s3cret-pw@")
    journal = RedisJournal.from_url(url, "close-stale")

    assert "RedisJournal('close-stale', lease=10)" == repr(journal)


# --- through the bulk engine, and through every topology --------------------------------


@pytest.mark.anyio
async def test_two_runs_on_the_same_ids_send_each_once(anyio_backend, journal, make_client, api):
    """Two bulk runs of one job at once: every id sent once, each run skips the other's."""
    route = api.put("/chats/status").mock(side_effect=status_echo)
    results = []

    async def run() -> None:
        async with make_client() as client:
            ids = range(1, 101)
            results.append(await client.chats.bulk_update_status(ids, "closed", journal=journal))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run)
        tasks.start_soon(run)

    sent = Counter(json.loads(call.request.content)["id"] for call in route.calls)
    assert set(range(1, 101)) == set(sent)
    assert {1} == set(sent.values())
    assert [100, 100] == [len(r.succeeded) + r.skipped for r in results]
    assert {"closed": 100} == (await journal.report()).succeeded


@pytest.mark.anyio
async def test_a_released_id_is_free_at_once_and_unrecorded(anyio_backend, journal):
    """release: nothing was sent, so nothing is recorded and another worker may send it."""
    async with journal.session("closed") as one, journal.session("closed") as two:
        await one.claim(1)
        await one.release(1)
        assert hc.Claim("send") == await two.claim(1)

    assert 0 == (await journal.report()).ids


@pytest.mark.anyio
@pytest.mark.parametrize("topology", ["cluster", "sentinel"])
async def test_every_topology_serves_a_job(anyio_backend, topology, request):
    """Through a Redis Cluster and a Sentinel-managed primary: claims, records, report."""
    servers = request.getfixturevalue(f"redis_{topology}")
    journal = RedisJournal.from_url(servers.url, f"job-{anyio_backend}", lease=LEASE)
    async with journal.session("closed") as one, journal.session("closed") as two:
        assert hc.Claim("send") == await one.claim(1)
        assert "wait" == (await two.claim(1)).action
        await one.record(1, ok=True)
        assert hc.Claim("skip") == await two.claim(1)
    report = await journal.report()
    await journal.aclose()

    assert {"closed": 1} == report.succeeded


def test_an_unreachable_cluster_is_unavailable_at_construction(no_retry):
    """redis-py asks a cluster for its slots at once: no cluster, one clear error."""
    with pytest.raises(JournalError, match="unavailable"):
        RedisJournal.from_url(f"redis+cluster://127.0.0.1:{free_port()}", "job")


@pytest.mark.parametrize(
    ("count", "said"),
    [(1, "1 lapsed claim, 1 live session, 1 takeover"), (2, "2 lapsed claims, 2 live sessions")],
)
def test_the_report_counts_in_words(count, said):
    """str(report) says "1 live session" and "2 live sessions"."""
    report = JournalReport(
        job="close",
        at=datetime.now(timezone.utc),
        succeeded={},
        failed={},
        failures={},
        in_flight=0,
        lapsed=count,
        sessions=count,
        takeovers=count,
        lost_states=0,
    )

    assert said in str(report)
