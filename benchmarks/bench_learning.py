"""When 429s come anyway: a busy key told from a lower limit, on the emulator over loopback.

A client configured for 40 per 2 s (margin 0.02 s) against the emulator's strict sliding
window, which counts rejected requests too, in the scenarios where 429s come anyway:

- a bulk job killed with SIGKILL 3 s after it started sending, and run again at once from
  its journal (the figures are the resumed run's, for the ids it had left);
- a bulk job of 400 that meets another program's burst of 40 on the key 5 s in;
- 600 updates (``asyncio.gather`` over direct calls) against a real limit of 100 %, 75 %,
  50 % and 25 % of the configured one, locally and through Redis with three processes;
- the real limit back from 20 to 40 per 2 s after 300 of 600 updates;
- last, on the virtual clock only, the trade-off of ``LEARN_HOLD_MAX``.

Side by side: the time as a multiple of N/R (the work's requests over the key's real rate),
the share of the job's requests answered 429, and the limit reported learned at the end.
The same scenarios then run on trio's virtual clock (``tests/strict_server.py``: whole
clients against a simulated strict server, Redis's script on the virtual clock), whose
figures are exact and reproducible: the emulator's differ by the machine's jitter.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import sys
import tempfile
import time
from pathlib import Path

import anyio
import attrs
import httpx
import trio
import trio.testing
from _common import heading, row

sys.path.insert(0, str(Path(__file__).parent.parent))
import helpcrunch_async as hc
from helpcrunch_async._limit import _gcra as gcra
from helpcrunch_async._limit._gate import Priority
from helpcrunch_async.emulator import EmulatorConfig, ServerLimit, serve
from tests.redis_server import redis_server
from tests.strict_server import (
    SCALED,
    Job,
    RateLog,
    StrictServer,
    client_for,
    fleet_of,
    run_fleet,
    run_job,
)

REQUESTS, PER = SCALED.requests, SCALED.per
RATE = REQUESTS / PER
N = 600
SHARES = (1.0, 0.75, 0.5, 0.25)
PROCESSES = 3
#: Updates sent at half the limit before the real limit goes back up.
RECOVERY_SWITCH = 300
#: The killed job: its ids, and how long after its first request it is killed.
KILLED_IDS, KILL_AFTER = 400, 3.0
#: Another program's burst: the job's ids, the burst, and when it comes.
BURST_JOB, BURST, BURST_AT = 400, 40, 5.0
#: The lower-limit runs are ``asyncio.gather`` over direct calls, as on the emulator: the
#: interactive class (the killed job and the burst's are bulk jobs: background).
DIRECT: Priority = "interactive"


def cells(time_ratio: float, rejected: int, sent: int, learned: int | None) -> tuple[str, ...]:
    share = 100 * rejected / max(sent, 1)
    return (
        f"{time_ratio:.3f}",
        f"{rejected}/{sent} ({share:.1f} %)",
        "-" if learned is None else str(learned),
    )


# --- on the emulator ---------------------------------------------------------------------


async def bulk_job(url: str, key: str, ids: list[int], journal: str) -> None:
    """One run of a bulk job (``bench_learning.py --job ...``): prints its figures as JSON."""
    done = hc.Journal(journal).done("closed")
    todo = [i for i in ids if i not in done]
    limiter = hc.LocalRateLimiter(SCALED)
    async with hc.HelpCrunch(key, base_url=url, rate_limit=limiter) as client:
        print("sending", flush=True)
        started = time.perf_counter()
        result = await client.chats.bulk_update_status(todo, "closed", journal=journal)
        seconds = time.perf_counter() - started
        stats = client.stats()
    figures = {
        "todo": len(todo),
        "failed": len(result.failed),
        "seconds": seconds,
        "requests": stats.requests,
        "throttled": stats.throttled,
        "learned": stats.learned_limit,
    }
    print(json.dumps(figures), flush=True)


async def start_job(url: str, key: str, ids: list[int], journal: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--job",
        url,
        key,
        journal,
        ",".join(map(str, ids)),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    await process.stdout.readline()  # "sending": imports and set-up are done
    return process


async def killed_and_resumed() -> tuple[str, ...]:
    config = EmulatorConfig(chats=KILLED_IDS, rate_limit=ServerLimit(REQUESTS, PER))
    async with serve(config) as emulator:
        ids = sorted(emulator.state.chats)
        with tempfile.TemporaryDirectory() as folder:
            journal = str(Path(folder) / "journal.jsonl")
            first = await start_job(emulator.base_url, emulator.api_key, ids, journal)
            await asyncio.sleep(KILL_AFTER)
            first.send_signal(signal.SIGKILL)
            await first.wait()
            resumed = await start_job(emulator.base_url, emulator.api_key, ids, journal)
            out, _ = await resumed.communicate()
    figures = json.loads(out.decode().strip().splitlines()[-1])
    assert figures["failed"] == 0
    ratio = figures["seconds"] / (figures["todo"] / RATE)
    return cells(ratio, figures["throttled"], figures["requests"], figures["learned"])


async def another_programs_burst() -> tuple[str, ...]:
    config = EmulatorConfig(chats=BURST_JOB, rate_limit=ServerLimit(REQUESTS, PER))
    async with serve(config) as emulator:
        ids = sorted(emulator.state.chats)
        limiter = hc.LocalRateLimiter(SCALED)
        headers = {"Authorization": f"Bearer {emulator.api_key}"}
        async with (
            hc.HelpCrunch(emulator.api_key, base_url=emulator.base_url, rate_limit=limiter) as c,
            httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as other,
        ):

            async def burst() -> None:
                await asyncio.sleep(BURST_AT)
                body = {"id": ids[0], "status": "closed"}
                await asyncio.gather(*(other.put("/chats/status", json=body) for _ in range(BURST)))

            started = time.perf_counter()
            result, _ = await asyncio.gather(c.chats.bulk_update_status(ids, "closed"), burst())
            seconds = time.perf_counter() - started
            stats = c.stats()
    assert not result.failed
    ratio = seconds / ((BURST_JOB + BURST) / RATE)
    return cells(ratio, stats.throttled, stats.requests, stats.learned_limit)


async def gather_updates(client: hc.HelpCrunch, ids: list[int]) -> None:
    await asyncio.gather(*(client.chats.update_status(i, "closed") for i in ids))


async def local(url: str, key: str, ids: list[int]) -> int | None:
    limiter = hc.LocalRateLimiter(SCALED)
    async with hc.HelpCrunch(key, base_url=url, rate_limit=limiter) as client:
        await gather_updates(client, ids)
    return limiter.learned_limit


async def worker(url: str, key: str, redis_url: str, ids: list[int]) -> None:
    """One process of the fleet (run as ``bench_learning.py --worker ...``)."""
    from helpcrunch_async.redis import RedisRateLimiter  # noqa: PLC0415 - the redis extra

    limiter = RedisRateLimiter.from_url(redis_url, limit=SCALED, key="bench:learning")
    async with hc.HelpCrunch(key, base_url=url, rate_limit=limiter) as client:
        await gather_updates(client, ids)
    print(json.dumps({"learned": limiter.learned_limit}), flush=True)
    await limiter.aclose()


async def fleet(url: str, key: str, ids: list[int], redis_url: str) -> int | None:
    import redis  # noqa: PLC0415 - the redis extra

    redis.Redis.from_url(redis_url).flushdb()
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--worker",
            url,
            key,
            redis_url,
            ",".join(map(str, ids[k::PROCESSES])),
            stdout=asyncio.subprocess.PIPE,
        )
        for k in range(PROCESSES)
    ]
    learned = []
    for process in processes:
        out, _ = await process.communicate()
        learned.append(json.loads(out.decode().strip().splitlines()[-1])["learned"])
    return None if learned[-1] is None else int(learned[-1])


async def lower_limit(real: int, job: object, *extra: object) -> tuple[str, ...]:
    config = EmulatorConfig(chats=N, rate_limit=ServerLimit(real, PER))
    async with serve(config) as emulator:
        ids = sorted(emulator.state.chats)
        started = time.perf_counter()
        learned = await job(emulator.base_url, emulator.api_key, ids, *extra)  # type: ignore[operator]
        elapsed = time.perf_counter() - started
        stats = emulator.stats()
    return cells(elapsed / (N * PER / real), stats["rejected"], stats["requests"], learned)


async def limit_returns() -> tuple[str, ...]:
    """Windows from the real limit's return until the full rate for good, on the emulator."""
    config = EmulatorConfig(chats=N, rate_limit=ServerLimit(REQUESTS // 2, PER))
    async with serve(config) as emulator:
        ids = sorted(emulator.state.chats)
        limiter = hc.LocalRateLimiter(SCALED)
        samples: list[tuple[float, int]] = []

        async def watch() -> None:
            while True:
                samples.append((time.perf_counter(), limiter.current_rate))
                await asyncio.sleep(0.01)

        async with hc.HelpCrunch(
            emulator.api_key, base_url=emulator.base_url, rate_limit=limiter
        ) as client:
            watcher = asyncio.ensure_future(watch())
            started = time.perf_counter()
            await gather_updates(client, ids[:RECOVERY_SWITCH])
            emulator.state.config = attrs.evolve(config, rate_limit=ServerLimit(REQUESTS, PER))
            raised = time.perf_counter()
            await gather_updates(client, ids[RECOVERY_SWITCH:])
            elapsed = time.perf_counter() - started
            watcher.cancel()
            learned = limiter.learned_limit
        stats = emulator.stats()
    below = [t for t, rate in samples if t >= raised and rate < REQUESTS]
    back = (max(below, default=raised) - raised) / SCALED.window
    ideal = RECOVERY_SWITCH * PER / (REQUESTS // 2) + (N - RECOVERY_SWITCH) / RATE
    return (f"{back:.2f}", *cells(elapsed / ideal, stats["rejected"], stats["requests"], learned))


# --- the same scenarios on trio's virtual clock ----------------------------------------------


async def virtual_killed_and_resumed() -> tuple[str, ...]:
    server = StrictServer(REQUESTS, PER)
    first = Job()
    async with client_for(server, "killed", SCALED) as client:
        with trio.move_on_after(KILL_AFTER):
            await run_job(client, range(1, KILLED_IDS + 1), first)
    remaining = sorted(set(range(1, KILLED_IDS + 1)) - set(first.done))
    resumed = Job()
    async with client_for(server, "resumed", SCALED) as client:
        await run_job(client, remaining, resumed)
        learned = client.stats().learned_limit
    ratio = resumed.elapsed / (len(remaining) / RATE)
    return cells(ratio, server.rejected("resumed"), server.sent("resumed"), learned)


async def virtual_burst() -> tuple[str, ...]:
    server = StrictServer(REQUESTS, PER)
    job = Job()
    async with client_for(server, "job", SCALED) as client, anyio.create_task_group() as tg:
        tg.start_soon(run_job, client, range(1, BURST_JOB + 1), job)
        await anyio.sleep(BURST_AT)
        server.burst(BURST)
    learned = client.stats().learned_limit
    ratio = job.elapsed / ((BURST_JOB + BURST) / RATE)
    return cells(ratio, server.rejected("job"), server.sent("job"), learned)


async def virtual_lower_limit(real: int, redis_url: str | None) -> tuple[str, ...]:
    server = StrictServer(real, PER)
    limiters = (
        [hc.LocalRateLimiter(SCALED)]
        if redis_url is None
        else fleet_of(redis_url, "bench:virtual", PROCESSES, SCALED)
    )
    elapsed, stats = await run_fleet(limiters, server, N, lambda: None, priority=DIRECT)
    learned = stats[-1].learned_limit
    return cells(
        elapsed / (N * PER / real), server.rejected("fleet"), server.sent("fleet"), learned
    )


async def virtual_limit_returns(redis_url: str | None) -> tuple[str, ...]:
    server = StrictServer(REQUESTS // 2, PER)
    limiters = (
        [hc.LocalRateLimiter(SCALED)]
        if redis_url is None
        else fleet_of(redis_url, "bench:virtual", PROCESSES, SCALED)
    )
    rates = RateLog(limiters)
    raised: list[float] = []

    def note() -> None:
        rates.note()
        if len(rates.log) == RECOVERY_SWITCH * len(limiters):
            server.requests = REQUESTS
            raised.append(anyio.current_time())

    elapsed, stats = await run_fleet(limiters, server, N, note, priority=DIRECT)
    back = (rates.full_since(raised[0]) - raised[0]) / SCALED.window
    ideal = RECOVERY_SWITCH * PER / (REQUESTS // 2) + (N - RECOVERY_SWITCH) / RATE
    learned = stats[-1].learned_limit
    return (
        f"{back:.2f}",
        *cells(elapsed / ideal, server.rejected("fleet"), server.sent("fleet"), learned),
    )


#: The longest holds compared in the trade-off table, and where the limit comes back.
HOLDS = (2, 3, 4, 6)
SWITCHES = range(100, 560, 23)


async def trade_off(hold: int) -> tuple[str, ...]:
    """With ``LEARN_HOLD_MAX = hold``: time and 429s at 75/50/25 %, and recovery windows."""
    gcra.LEARN_HOLD_MAX = hold
    cells_: list[str] = []
    for share in (0.75, 0.5, 0.25):
        real = round(REQUESTS * share)
        ratio, rejected, _ = (await virtual_lower_limit(real, None))[:3]
        cells_.append(f"{ratio}, {rejected.split(' (')[1].rstrip(')')}")
    backs = []
    for switch in SWITCHES:
        server = StrictServer(REQUESTS // 2, PER)
        limiters = [hc.LocalRateLimiter(SCALED)]
        rates = RateLog(limiters)
        raised: list[float] = []

        def note(
            switch: int = switch,
            rates: RateLog = rates,
            server: StrictServer = server,
            raised: list[float] = raised,
        ) -> None:
            rates.note()
            if len(rates.log) == switch:
                server.requests = REQUESTS
                raised.append(anyio.current_time())

        await run_fleet(limiters, server, N, note, priority=DIRECT)
        backs.append((rates.full_since(raised[0]) - raised[0]) / SCALED.window)
    back = [b for b in backs if not math.isnan(b)]
    late = len(backs) - len(back)
    note_ = f" ({late} of {len(backs)}: not before the job ended)" if late else ""
    return (*cells_, f"{max(back):.2f} / {sum(back) / len(back):.2f}{note_}")


def trade_off_table() -> None:
    heading(
        "The trade-off, on trio's virtual clock: the longest hold of a lesson (LEARN_HOLD_MAX,"
        f" windows) against the time / (N/R) and 429 share of {N} direct calls at a real limit of"
        " 75, 50 and 25 %, and the windows until the full rate when the limit comes back"
        f" (20 -> 40 per 2 s after {SWITCHES.start} to {SWITCHES[-1]} updates: worst / mean)"
    )
    row("LEARN_HOLD_MAX", "75 %", "50 %", "25 %", "back to the full rate")
    row(*["---"] * 5)
    chosen = gcra.LEARN_HOLD_MAX
    try:
        for hold in HOLDS:
            label = f"**{hold}** (chosen)" if hold == chosen else str(hold)
            row(label, *on_virtual_time(trade_off, hold))
    finally:
        gcra.LEARN_HOLD_MAX = chosen


def on_virtual_time(scenario: object, *args: object) -> tuple[str, ...]:
    """Run ``scenario(*args)`` under trio with a virtual clock that jumps when all wait."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    result: tuple[str, ...] = trio.run(scenario, *args, clock=clock)  # type: ignore[arg-type]
    return result


# --- the tables ------------------------------------------------------------------------------


def main() -> None:
    """Each scenario on the emulator (asyncio, real time), then on trio's virtual clock."""
    heading(
        f"When 429s come anyway: a client configured for {REQUESTS} per {PER:g} s (margin"
        f" {SCALED.margin:g} s), a strict window counting rejected requests; time / (N/R),"
        " 429s / requests, learned limit at the end"
    )
    columns = ("time", "429s", "learned")
    emulated = [f"emulator: {c}" for c in columns]
    virtual = [f"virtual clock: {c}" for c in columns]
    row("scenario", *emulated, *virtual)
    row(*["---"] * 7)
    with redis_server() as redis_url:
        row(
            f"job killed (SIGKILL) {KILL_AFTER:g} s in, resumed at once (N = remaining ids)",
            *asyncio.run(killed_and_resumed()),
            *on_virtual_time(virtual_killed_and_resumed),
        )
        row(
            f"{BURST_JOB} updates meet another program's burst of {BURST} at {BURST_AT:g} s"
            f" (N = {BURST_JOB + BURST})",
            *asyncio.run(another_programs_burst()),
            *on_virtual_time(virtual_burst),
        )
        for processes in (1, PROCESSES):
            through = None if processes == 1 else redis_url
            where = "local" if processes == 1 else f"Redis x{processes}"
            for share in SHARES:
                real = round(REQUESTS * share)
                job = (local,) if through is None else (fleet, through)
                row(
                    f"real limit {real} per {PER:g} s ({share:.0%}), {N} updates, {where}",
                    *asyncio.run(lower_limit(real, *job)),
                    *on_virtual_time(virtual_lower_limit, real, through),
                )
        heading(
            f"The real limit back from {REQUESTS // 2} to {REQUESTS} per {PER:g} s after"
            f" {RECOVERY_SWITCH} of {N} updates: windows until the full rate for good; time /"
            " what the limits allowed, 429s / requests, learned limit at the end"
        )
        row("where", "emulator: windows", *emulated, "virtual clock: windows", *virtual)
        row(*["---"] * 9)
        row(
            "local",
            *asyncio.run(limit_returns()),
            *on_virtual_time(virtual_limit_returns, None),
        )
        row(
            f"Redis x{PROCESSES}",
            *[""] * 4,
            *on_virtual_time(virtual_limit_returns, redis_url),
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        url, key, redis_url, ids = sys.argv[2:6]
        asyncio.run(worker(url, key, redis_url, [int(i) for i in ids.split(",")]))
    elif sys.argv[1:2] == ["--job"]:
        url, key, journal, ids = sys.argv[2:6]
        asyncio.run(bulk_job(url, key, [int(i) for i in ids.split(",")], journal))
    else:
        main()
        trade_off_table()
