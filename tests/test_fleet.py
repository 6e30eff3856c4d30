"""A job bigger than one machine: worker processes sharing a Redis limiter and journal.

Three processes of ``examples/fleet_journal.py`` (two on asyncio, one on trio) are handed the
same 240 ids at 40 per 2 s, against the emulator with an audit of every update (tests/fleet.py).
Speed is judged from the emulator's first update to its last, so the workers' start-up does
not count; N/R is 12 s, a scale at which scheduling jitter of a loaded machine is small.
"""

from __future__ import annotations

import re
import signal

import anyio
import anyio.abc
import pytest

from tests.fleet import FIRST, IDS, PER, REQUESTS, SHARING_PROOF, WORKERS, Fleet, run_fleet

pytestmark = [
    pytest.mark.redis,
    pytest.mark.fleet,
    pytest.mark.emulator,
    # The workers pick their own backends; the test process only watches.
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),
    pytest.mark.anyio,
]


async def test_three_workers_on_the_same_ids_update_each_once(redis_url, audit):
    """Every chat updated, none twice, no 429 from a server at the fleet's count per half window."""
    codes, output, rejected = await run_fleet(redis_url, audit, server=SHARING_PROOF)

    assert ([0, 0, 0], 0) == (codes, rejected), output
    updated = audit.updated()
    assert set(range(FIRST, FIRST + IDS)) == set(updated)
    assert {1} == set(updated.values()), output
    assert 3 == output.count("done by others; Redis lost the job 0 times")


async def test_a_worker_killed_mid_run_has_its_ids_taken_over(redis_node, audit):
    """SIGKILL one worker: the two others update every chat, and still share the limit."""

    async def kill(fleet: Fleet) -> None:
        fleet.workers[0].send_signal(signal.SIGKILL)

    codes, output, rejected = await run_fleet(
        redis_node.url, audit, disrupt=kill, server=SHARING_PROOF
    )

    assert ([-signal.SIGKILL, 0, 0], 0) == (codes, rejected), output
    updated = audit.updated()
    assert set(range(FIRST, FIRST + IDS)) == set(updated)
    # Only an update the dead worker had sent, unrecorded, may be sent again.
    assert 10 >= sum(n - 1 for n in updated.values())


async def test_redis_restarted_empty_mid_run_loses_no_id(redis_node, audit):
    """Redis dies and comes back empty: every chat updated (some twice at worst), none lost.

    The limiter then holds the fleet back for one window, but a slot a worker had reserved
    before still goes (README, "When Redis misbehaves"): at most one request per worker
    over the limit, which the strict emulator may answer 429 (then retried).
    """

    async def restart(_: Fleet) -> None:
        await anyio.to_thread.run_sync(redis_node.kill)
        await anyio.to_thread.run_sync(redis_node.start)

    codes, output, _ = await run_fleet(redis_node.url, audit, disrupt=restart)

    assert [0, 0, 0] == codes, output
    assert set(range(FIRST, FIRST + IDS)) == set(audit.updated())
    assert REQUESTS + WORKERS >= audit.busiest(PER)
    lost = [int(n) for n in re.findall(r"Redis lost the job (\d+) times", output)]
    assert 3 == len(lost), output
    assert any(lost), output  # the workers noticed, and said so
