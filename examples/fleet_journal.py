"""One worker of a job spread over several machines: run the same command on each of them.

Every worker is handed the same ids. They share the key's rate limit (RedisRateLimiter) and
the job's journal (RedisJournal) through one Redis: each id is claimed before it is sent, so
no two workers send it at once, and the ids of a worker that dies are taken over once its
lease lapses. Run it again after a crash: what is done is skipped.

    python examples/fleet_journal.py --redis-url redis://127.0.0.1:6379/0 \
        --job close-stale-2026-12 --first-id 5215700 --count 240

HELPCRUNCH_API_KEY and HELPCRUNCH_BASE_URL say which API (or emulator) to talk to. The URL
may also name a Redis Cluster (redis+cluster://host:port) or a Sentinel service
(redis+sentinel://host:port/service). Prints one line when done, and the job's report.
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio

import helpcrunch_async as hc
from helpcrunch_async.redis import RedisJournal, RedisRateLimiter


async def work(args: argparse.Namespace) -> int:
    requests, per = args.rate.split("/")
    limit = hc.RateLimit(requests=int(requests), per=float(per), margin=args.margin)
    # If Redis goes away for a moment, go on at this worker's share of the rate.
    limiter = RedisRateLimiter.from_url(args.redis_url, limit=limit, on_unavailable="local")
    journal = RedisJournal.from_url(args.redis_url, args.job, lease=args.lease)
    ids = range(args.first_id, args.first_id + args.count)
    try:
        async with hc.HelpCrunch(rate_limit=limiter) as client:
            result = await client.chats.bulk_update_status(ids, args.status, journal=journal)
        report = await journal.report()
    finally:
        await journal.aclose()
        await limiter.aclose()
    print(
        f"worker {os.getpid()}: {len(result.succeeded)} updated, {len(result.failed)} failed,"
        f" {result.skipped} done by others; Redis lost the job {journal.lost_states} times",
        flush=True,
    )
    print(report, flush=True)
    return 0 if result.ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--job", required=True, help="the job's name, the same on every worker")
    parser.add_argument("--first-id", type=int, required=True)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--status", default="closed")
    parser.add_argument("--rate", default="120/60", help="the key's limit, N/S")
    parser.add_argument("--margin", type=float, default=0.5, help="seconds added to the window")
    parser.add_argument("--lease", type=float, default=10.0, help="seconds a claim lives")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    return anyio.run(work, args, backend=args.backend)


if __name__ == "__main__":
    sys.exit(main())
