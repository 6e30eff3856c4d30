"""A strict HelpCrunch stand-in on the event loop's clock, and jobs run through real clients.

For the limiter's scenarios on trio's virtual clock (``tests/test_limiter_scenarios.py``):
``StrictServer`` is a sliding window of ``per`` seconds that counts rejected requests too,
as the strictest reading of HelpCrunch's limit; its limit can change mid-run, and another
program can burst on the key. Clients talk to it through an ``httpx.MockTransport``: the
whole send path runs (turn, limiter, 429 feedback, retries), and a request counts on the
server the moment it leaves, so a killed process's requests on the wire still count.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import anyio
import attrs
import httpx
import redis

import helpcrunch_async as hc
from helpcrunch_async._limit._gate import Priority
from helpcrunch_async.redis import RedisRateLimiter

#: The key and base URL of the scenarios' clients (the server checks neither).
API_KEY = "strict-server-key"
BASE_URL = "https://api.helpcrunch.test/v1"
TOO_MANY = {"errors": [{"code": "too_many_requests", "message": "limit"}]}
#: The scaled limit of the scenarios: 40 per 2 s, the margin of the benchmarks.
SCALED = hc.RateLimit(requests=40, per=2.0, margin=0.02)
#: HelpCrunch's real limit with the SDK's defaults (burst 10, margin 0.5).
DEFAULTS = hc.RateLimit()
#: Round trip of an API request, seconds of virtual time.
RTT = 0.003
#: Attempts per call: a scenario must never run out (a 429 answered call is retried).
MAX_RETRIES = 20


@attrs.define
class Arrival:
    """One request the server saw."""

    at: float
    source: str
    admitted: bool


class StrictServer:
    """``requests`` per ``per`` s in any sliding window, rejected requests counted.

    ``retry_after``: ``None`` (no header, as HelpCrunch documents), a number of seconds, or
    ``"honest"`` (until the window has room for one more, rounded up to whole seconds).
    """

    def __init__(self, requests: int, per: float, retry_after: float | str | None = None) -> None:
        self.requests, self.per, self.retry_after = requests, per, retry_after
        self.window: deque[float] = deque()
        self.log: list[Arrival] = []

    def arrive(self, source: str) -> tuple[bool, float | None]:
        """Count one request now; whether it is admitted, and the Retry-After if not."""
        now = anyio.current_time()
        while self.window and now - self.window[0] >= self.per - 1e-9:
            self.window.popleft()
        admitted = len(self.window) < self.requests
        self.window.append(now)
        self.log.append(Arrival(now, source, admitted))
        if admitted or self.retry_after is None:
            return admitted, None
        if self.retry_after == "honest":
            excess = len(self.window) - self.requests
            return False, float(math.ceil(self.window[excess] + self.per - now))
        return False, float(self.retry_after)

    def burst(self, count: int, source: str = "other") -> None:
        """Another program on the key sends ``count`` requests at once."""
        for _ in range(count):
            self.arrive(source)

    def transport(self, source: str, rtt: float = RTT) -> httpx.MockTransport:
        """A transport for a client named ``source``: counted on sending, answered after ``rtt``."""

        async def handle(request: httpx.Request) -> httpx.Response:
            admitted, retry_after = self.arrive(source)
            await anyio.sleep(rtt)
            if admitted:  # the chat in its new status: all a status update needs back
                return httpx.Response(200, content=request.content)
            headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
            return httpx.Response(429, json=TOO_MANY, headers=headers)

        return httpx.MockTransport(handle)

    def sent(self, *sources: str) -> int:
        return sum(a.source in sources for a in self.log)

    def rejected(self, *sources: str) -> int:
        return sum(a.source in sources and not a.admitted for a in self.log)

    def most_in_any_window(self, *sources: str) -> int:
        """The most requests of ``sources`` the server saw in any window of ``per``."""
        return most_in_any_window([a.at for a in self.log if a.source in sources], self.per)


def most_in_any_window(times: Sequence[float], window: float) -> int:
    """The largest number of times inside any half-open window [t, t + window).

    Differences are compared with a nanosecond tolerance: float sums such as 0.2 + 1.0 - 0.2
    must not read as a window shorter than it is.
    """
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window - 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


@contextlib.asynccontextmanager
async def client_for(
    server: StrictServer,
    source: str,
    rate_limit: hc.RateLimit | hc.RateLimiter | None,
    *,
    rtt: float = RTT,
    **options: Any,
) -> AsyncIterator[hc.HelpCrunch]:
    """A client whose requests go to ``server`` as ``source``, retrying 429s as long as needed."""
    options.setdefault("max_retries", MAX_RETRIES)
    async with (
        httpx.AsyncClient(transport=server.transport(source, rtt)) as http,
        hc.HelpCrunch(
            API_KEY,
            base_url=BASE_URL,
            rate_limit=rate_limit,
            http_client=http,
            retry=hc.Retry(backoff=0),
            **options,
        ) as client,
    ):
        yield client


@attrs.define
class Job:
    """What a job did: the ids it finished, and when it started and last finished one."""

    done: list[int] = attrs.field(factory=list)
    started: float = math.nan
    finished: float = math.nan

    @property
    def elapsed(self) -> float:
        return self.finished - self.started


async def run_job(
    client: hc.HelpCrunch,
    ids: Iterable[int],
    job: Job,
    *,
    workers: int = 10,
    on_done: Callable[[], None] | None = None,
    priority: Priority = "background",
) -> None:
    """Close every chat of ``ids``, ``workers`` at a time: a bulk job (background work), or
    ``asyncio.gather`` over direct calls (``priority="interactive"``)."""
    view = client.with_options(priority=priority)
    todo = iter(ids)
    job.started = anyio.current_time()

    async def worker() -> None:
        for chat_id in todo:
            await view.chats.update_status(chat_id, "closed")
            job.done.append(chat_id)
            job.finished = anyio.current_time()
            if on_done is not None:
                on_done()

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)


async def saturate(client: hc.HelpCrunch, *, workers: int = 10) -> None:
    """A bulk job that never ends (cancel it): background calls, ``workers`` at a time."""
    await run_job(client, range(1, 10**9), Job(), workers=workers)


def on_virtual_time(limiter: RedisRateLimiter) -> RedisRateLimiter:
    """``limiter``, its script run on the event loop's clock, one call at a time, in the loop.

    The script dates everything on the clock it is given (``TIME`` by default), and a call
    made in a worker thread would let the virtual clock jump while Redis answers: called
    inline instead, a round trip to the real Redis takes no virtual time.
    """
    script = limiter._script._script

    async def inline(keys: list[str], args: list[Any]) -> Any:
        return script(keys=keys, args=args)

    setattr(limiter._script, "_once", inline)  # noqa: B010 - this instance's only
    limiter._script_clock = anyio.current_time
    return limiter


class RateLog:
    """The rate in force after each completion, to tell when the full rate was back for good."""

    def __init__(self, limiters: list[hc.LocalRateLimiter] | list[RedisRateLimiter]) -> None:
        self.limiters = limiters
        self.log: list[tuple[float, int]] = []

    def note(self) -> None:
        now = anyio.current_time()
        self.log += [(now, limiter.current_rate) for limiter in self.limiters]

    def full_since(self, since: float) -> float:
        """The first time after ``since`` from which every sample is the configured rate."""
        back = since
        for t, rate in self.log:
            if t >= since and rate < SCALED.requests:
                back = math.nan
            elif t >= since and math.isnan(back):
                back = t
        return back


async def run_fleet(
    limiters: list[hc.LocalRateLimiter] | list[RedisRateLimiter],
    server: StrictServer,
    total: int,
    on_done: Callable[[], None],
    *,
    rtt: float = RTT,
    priority: Priority = "background",
) -> tuple[float, list[hc.ClientStats]]:
    """``total`` updates split between one client per limiter; the time taken, their stats."""
    jobs = [Job() for _ in limiters]
    stats: list[hc.ClientStats] = []
    ids = list(range(1, total + 1))

    async def process(k: int) -> None:
        async with client_for(server, "fleet", limiters[k], rtt=rtt) as client:
            await run_job(
                client, ids[k :: len(limiters)], jobs[k], on_done=on_done, priority=priority
            )
            stats.append(client.stats())

    async with anyio.create_task_group() as tg:
        for k in range(len(limiters)):
            tg.start_soon(process, k)
    assert total == sum(len(job.done) for job in jobs)
    return max(job.finished for job in jobs) - min(job.started for job in jobs), stats


async def interactive_waits(
    bulk_limiter: hc.RateLimiter,
    web_limiter: hc.RateLimiter,
    limit: hc.RateLimit,
    asks: list[float],
) -> tuple[list[float], StrictServer]:
    """A bulk job saturates the key from t = 0; interactive calls are made at ``asks``.

    ``bulk_limiter is web_limiter``: one process (one client); else two processes. Returns
    each interactive call's wait for its turn (``LimiterWaited``), and the server.
    """
    server = StrictServer(limit.requests, limit.per)
    waits: list[float] = []

    def waited(event: hc.ClientEvent) -> None:
        if isinstance(event, hc.LimiterWaited) and event.priority == "interactive":
            waits.append(event.seconds)

    async with (
        client_for(server, "bulk", bulk_limiter, on_event=waited) as bulk,
        client_for(server, "web", web_limiter, on_event=waited) as web,
        anyio.create_task_group() as tg,
    ):
        start = anyio.current_time()
        tg.start_soon(saturate, bulk)
        for at in asks:
            await anyio.sleep_until(start + at)
            await (bulk if bulk_limiter is web_limiter else web).chats.update_status(1, "closed")
        tg.cancel_scope.cancel()
    assert len(asks) == len(waits)
    return waits, server


def fleet_of(redis_url: str, key: str, count: int, limit: hc.RateLimit) -> list[RedisRateLimiter]:
    """``count`` processes' limiters on one Redis key (emptied first), on the virtual clock."""
    with redis.Redis.from_url(redis_url) as connection:
        connection.flushdb()
    return [
        on_virtual_time(RedisRateLimiter.from_url(redis_url, limit=limit, key=key))
        for _ in range(count)
    ]
