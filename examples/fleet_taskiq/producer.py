"""The job's producer: splits the ids into chunks for the workers, then sees the job through.

    FLEET_REDIS_URL=redis://127.0.0.1:6379/0 python producer.py --job close-stale \
        --status closed --first-id 5215700 --count 240 [--chunk 20] [--stall 10]

It sends one task per chunk, inside a span of its own (the trace the workers' spans join),
then watches the journal. The broker may hold a chunk back or lose it (a dead worker's chunk
on a quiet stream, a stream gone with a Redis restarted empty): when no id was settled for
``--stall`` seconds and some are not, it sends those again. The journal makes a second
delivery harmless, so the producer, not the broker, owns the job's completion. It ends with
the job's report, and a JSON line for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from fleet_tasks import REDIS_URL, broker, update_status
from opentelemetry import trace

from helpcrunch_async.redis import RedisJournal

#: Seconds between two looks at the journal.
LOOK_EVERY = 0.5


async def send(job: str, status: str, ids: list[int], chunk: int) -> int:
    """One task per ``chunk`` ids; how many tasks were sent."""
    for start in range(0, len(ids), chunk):
        await update_status.kiq(job, status, ids[start : start + chunk])
    return -(-len(ids) // chunk)


async def see_through(args: argparse.Namespace, journal: RedisJournal) -> dict[str, object]:
    ids = list(range(args.first_id, args.first_id + args.count))
    since = await journal.clock()  # failures recorded from now on settle their ids
    with trace.get_tracer("fleet-producer").start_as_current_span(f"job {args.job}") as span:
        tasks = await send(args.job, args.status, ids, args.chunk)
        resent, left, progress_at = 0, len(ids), time.monotonic()
        while True:
            await asyncio.sleep(LOOK_EVERY)
            pending = await journal.pending(args.status, ids, since=since)
            if not pending:
                break
            if len(pending) < left:
                left, progress_at = len(pending), time.monotonic()
            elif time.monotonic() - progress_at > args.stall:
                print(f"no progress for {args.stall:g} s: sending {len(pending)} ids again")
                tasks += await send(args.job, args.status, pending, args.chunk)
                resent, progress_at = resent + len(pending), time.monotonic()
        trace_id = f"{span.get_span_context().trace_id:032x}"
    return {"job": args.job, "tasks": tasks, "resent": resent, "trace_id": trace_id}


async def main(args: argparse.Namespace) -> int:
    journal = RedisJournal.from_url(REDIS_URL, args.job)
    await broker.startup()
    try:
        summary = await see_through(args, journal)
        report = await journal.report()
    finally:
        await broker.shutdown()
        await journal.aclose()
    print(report)
    print(json.dumps(summary | {"failed": sum(report.failed.values())}), flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", required=True)
    parser.add_argument("--status", default="closed")
    parser.add_argument("--first-id", type=int, required=True)
    parser.add_argument("--count", type=int, default=240)
    parser.add_argument("--chunk", type=int, default=20)
    parser.add_argument("--stall", type=float, default=10.0, help="seconds without progress")
    sys.exit(asyncio.run(main(parser.parse_args())))
