"""A job bigger than one machine: three worker processes on one job, through Redis.

The fleet of tests/test_fleet.py (examples/fleet_journal.py, two workers on asyncio and one
on trio, a RedisJournal and a RedisRateLimiter on one redis-server) is handed the same 240
ids at 40 per 2 s, against the emulator, which counts rejected requests. The time is taken
from the server's first status update to its last (the workers' start-up does not count)
and compared with N/R, the time the key allows for 240 ids: 12 s. Goals: within 1.15 x N/R;
with one worker killed (SIGKILL) a third of the way through, within 1.25 x N/R plus the lease
(3 s), the dead worker's ids taken over by the two others.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
from _common import heading, row

sys.path.insert(0, str(Path(__file__).parent.parent))
from tests.fleet import IDS, LEASE, N_OVER_R, PER, REQUESTS, Fleet, audited_emulators, run_fleet
from tests.redis_server import redis_server

TRIALS = 3


async def kill_one(fleet: Fleet) -> None:
    fleet.workers[0].send_signal(signal.SIGKILL)


async def trial(name: str, goal: float, disrupt: object = None) -> None:
    with redis_server() as url, audited_emulators() as audit:
        codes, _, rejected = await run_fleet(url, audit, disrupt)  # type: ignore[arg-type]
    updated = audit.updated()
    twice = sum(n - 1 for n in updated.values())
    span = audit.span()
    row(
        name,
        f"{span:.2f} s",
        f"{span / N_OVER_R:.3f} x N/R",
        f"{goal:.2f} s",
        "yes" if span <= goal else "NO",
        len(updated),
        twice,
        rejected,
        audit.busiest(PER),
        codes,
    )


async def main() -> None:
    heading(f"{IDS} ids, 3 workers, {REQUESTS} per {PER:g} s; N/R = {N_OVER_R:g} s")
    row(
        "run",
        "first to last update",
        "ratio",
        "goal",
        "met",
        "ids",
        "sent twice",
        "429s",
        "busiest window",
        "exit codes",
    )
    row(*["---"] * 10)
    for _ in range(TRIALS):
        await trial("3 workers", 1.15 * N_OVER_R)
    for _ in range(TRIALS):
        await trial("one killed mid-run", 1.25 * N_OVER_R + LEASE, kill_one)


if __name__ == "__main__":
    anyio.run(main)
