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
import pytest

import helpcrunch_async as hc
from helpcrunch_async.redis import RedisRateLimiter
from tests.conftest import API_KEY, BASE_URL, status_echo

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
            if admitted:
                return status_echo(request)
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
    **options: Any,
) -> AsyncIterator[hc.HelpCrunch]:
    """A client whose requests go to ``server`` as ``source``, retrying 429s as long as needed."""
    options.setdefault("max_retries", MAX_RETRIES)
    async with (
        httpx.AsyncClient(transport=server.transport(source)) as http,
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
) -> None:
    """Close every chat of ``ids`` as background work, ``workers`` at a time (a bulk job)."""
    view = client.with_options(priority="background")
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


def on_virtual_time(limiter: RedisRateLimiter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``limiter``'s script on the event loop's clock, one call at a time, in the loop.

    The script dates everything on the clock it is given (``TIME`` by default), and a call
    made in a worker thread would let the virtual clock jump while Redis answers: called
    inline instead, a round trip to the real Redis takes no virtual time.
    """
    script = limiter._script._script

    async def inline(keys: list[str], args: list[Any]) -> Any:
        return script(keys=keys, args=args)

    monkeypatch.setattr(limiter._script, "_once", inline)
    limiter._script_clock = anyio.current_time
