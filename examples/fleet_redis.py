"""Several processes close chats at once, sharing one rate limit through Redis.

Each worker process has its own HelpCrunch client; a RedisRateLimiter makes them keep the
API key's limit together, as a fleet of web workers or a job spread over machines would.

    python examples/fleet_redis.py --redis-url redis://127.0.0.1:6379/0 --processes 3 \
        --first-id 5215700 --count 90

The URL may also name a Redis Cluster (redis+cluster://host:port) or a Sentinel service
(redis+sentinel://host:port/service); see RedisRateLimiter.from_url.

HELPCRUNCH_API_KEY and HELPCRUNCH_BASE_URL say which API (or emulator) to talk to.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys

import anyio

import helpcrunch_async as hc
from helpcrunch_async.redis import RedisRateLimiter


async def close_chats(
    redis_url: str, ids: list[int], limit: hc.RateLimit, on_unavailable: str
) -> int:
    limiter = RedisRateLimiter.from_url(
        redis_url, limit=limit, on_unavailable="local" if on_unavailable == "local" else "fail"
    )
    async with hc.HelpCrunch(rate_limit=limiter) as client:
        result = await client.chats.bulk_update_status(ids, hc.ChatStatus.CLOSED)
        stats = client.stats()
    await limiter.aclose()
    print(
        f"worker: {result}; 429s: {stats.throttled}; Redis lost the schedule"
        f" {limiter.lost_states} times; {limiter.local_grants} grants made locally;"
        f" {limiter.round_trips} Redis round trips",
        flush=True,
    )
    return 0 if result.ok else 1


def worker(
    redis_url: str, ids: list[int], limit: hc.RateLimit, on_unavailable: str, backend: str
) -> None:
    sys.exit(anyio.run(close_chats, redis_url, ids, limit, on_unavailable, backend=backend))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--first-id", type=int, required=True)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--rate", default="120/60", help="the key's limit, N/S")
    parser.add_argument(
        "--on-unavailable",
        choices=["fail", "local"],
        default="fail",
        help="when Redis cannot be used: fail the request, or go on at this process's share",
    )
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    requests, per = args.rate.split("/")
    limit = hc.RateLimit(requests=int(requests), per=float(per), margin=0.1)
    ids = list(range(args.first_id, args.first_id + args.count))
    shares = [ids[i :: args.processes] for i in range(args.processes)]
    processes = [
        multiprocessing.Process(
            target=worker,
            args=(args.redis_url, share, limit, args.on_unavailable, args.backend),
        )
        for share in shares
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = sum(process.exitcode != 0 for process in processes)
    print(f"{args.processes} processes done, {failed} with failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
