"""Running a Lua script on Redis: bounded in time, retried briefly, every failure one error.

The rate limiter (and the journal) talk to Redis only through ``Script``: a call that
takes longer than ``CALL_TIMEOUT``, an error reply, a lost connection, a cluster or a
sentinel in the middle of a failover all become ``RedisUnavailable`` after a short retry
(tenacity, for ``RETRY_FOR`` seconds but never past the caller's deadline, on the failures
a failover causes), never a raw redis-py exception. The error keeps a bounded description,
not redis-py's exception (whose frames may hold a password).
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

import anyio
import redis as redis_sync
import redis.asyncio as redis_asyncio
import redis.asyncio.cluster as redis_asyncio_cluster
import redis.cluster as redis_cluster
import redis.exceptions
import tenacity

from .._models._json import cut

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.commands.core import AsyncScript
    from redis.commands.core import Script as SyncScript

__all__ = [
    "ASYNC_CLIENTS",
    "CALL_TIMEOUT",
    "CLIENTS",
    "FAILURES",
    "RETRY_FOR",
    "RedisClient",
    "RedisUnavailable",
    "Script",
    "close_client",
    "describe",
]

#: The clients the SDK takes (a Sentinel's ``master_for()`` is a ``Redis``).
CLIENTS = (
    redis_sync.Redis,
    redis_asyncio.Redis,
    redis_cluster.RedisCluster,
    redis_asyncio_cluster.RedisCluster,
)
#: Those of them that are awaited (asyncio only); the others run in a worker thread.
ASYNC_CLIENTS = (redis_asyncio.Redis, redis_asyncio_cluster.RedisCluster)
RedisClient = (
    redis_sync.Redis
    | redis_asyncio.Redis
    | redis_cluster.RedisCluster
    | redis_asyncio_cluster.RedisCluster
)

#: Seconds one script call may take, whatever the client's own timeouts (a stuck Redis
#: must not hold callers for ever); a call that takes longer counts as a failure.
CALL_TIMEOUT = 10.0
#: Seconds a failing Redis call is retried (a failover, a resharding) before it counts as
#: unavailable; the first retry waits ``RETRY_FIRST_WAIT``, each next one twice as long.
RETRY_FOR = 1.5
RETRY_FIRST_WAIT = 0.05

#: What a Redis client can raise: a connection problem, an error reply, a cluster problem.
FAILURES = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError)
#: Those of them that a failover or a resharding causes, and that a moment later may not:
#: retried for ``RETRY_FOR`` (an error reply such as WRONGTYPE or OOM is not).
_TRANSIENT_FAILURES = (
    redis.exceptions.ConnectionError,  # BusyLoadingError, a Sentinel's "no master" too
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterError,  # CLUSTERDOWN, MASTERDOWN
    redis.exceptions.AskError,  # MOVED too, when redis-py's own redirects run out
    redis.exceptions.SlotNotCoveredError,
    OSError,  # TimeoutError from CALL_TIMEOUT too
)


class RedisUnavailable(Exception):  # noqa: N818 - internal: becomes the public error or a fallback
    """Redis could not be used; the message is a bounded description of why."""


def describe(exc: BaseException) -> str:
    """A failure in a few words, bounded: an error reply is text from the server."""
    return cut(f"{type(exc).__name__}: {exc}")


class Script:
    """One Lua script registered on a redis-py client, called under the rules above.

    Synchronous clients run in a worker thread (so they work under asyncio and trio);
    ``redis.asyncio`` clients are awaited (asyncio only).
    """

    def __init__(self, client: RedisClient, source: str) -> None:
        self.client = client
        self._script: SyncScript | AsyncScript = client.register_script(source)
        self._retrying = tenacity.AsyncRetrying(
            sleep=anyio.sleep,
            wait=tenacity.wait_exponential(multiplier=RETRY_FIRST_WAIT, exp_base=2),
            retry=tenacity.retry_if_exception_type(_TRANSIENT_FAILURES),
            reraise=True,
        )

    async def __call__(
        self, keys: list[str], args: list[Any], *, deadline: float | None = None
    ) -> Any:
        """The script's reply.

        Failures a failover causes are retried for ``RETRY_FOR`` seconds, never past
        ``deadline`` (the caller's, on ``anyio.current_time()``'s clock): a caller that may
        wait 0.1 s is not held 1.5 s by retries.

        Raises:
            RedisUnavailable: Redis failed, after the retries; nothing of redis-py's
                exception is chained.
            RuntimeError: a ``redis.asyncio`` client called outside asyncio (under trio).
        """
        if isinstance(self.client, ASYNC_CLIENTS):
            _require_asyncio()
        until = anyio.current_time() + RETRY_FOR
        if deadline is not None:
            until = min(until, deadline)
        try:
            return await self._retrying.copy(stop=_StopAt(until))(self._once, keys, args)
        except FAILURES as exc:
            problem = describe(exc)
        raise RedisUnavailable(problem)

    async def _once(self, keys: list[str], args: list[Any]) -> Any:
        with anyio.fail_after(CALL_TIMEOUT):  # TimeoutError: an OSError, so transient
            if isinstance(self.client, ASYNC_CLIENTS):
                return await self._script(keys=keys, args=args)
            call: Callable[[], Any] = functools.partial(self._script, keys=keys, args=args)
            # A thread cannot be interrupted: on a timeout or a cancel, leave it behind.
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)


def _require_asyncio() -> None:
    """A ``redis.asyncio`` client needs asyncio's running loop: under trio, say so.

    Asked before the call, not read from redis-py's error: that error has changed between
    versions (a ``RuntimeError``, then a ``ConnectionError``, which would pass for an outage).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "a redis.asyncio client works under asyncio only; under trio pass"
            " redis.Redis or redis.cluster.RedisCluster"
        ) from None


class _StopAt(tenacity.stop.stop_base):
    """Stop when the next wait would end past ``at``, on the event loop's clock.

    tenacity's own time limits read ``time.monotonic``; this one reads the clock the sleeps
    run on, so a caller's deadline and a virtual test clock are both kept.
    """

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        return anyio.current_time() + (state.upcoming_sleep or 0.0) > self.at


async def close_client(client: RedisClient) -> None:
    """Close a client's connections (and a Sentinel client's sentinels)."""
    if isinstance(client, ASYNC_CLIENTS):
        await client.aclose()
    else:
        await anyio.to_thread.run_sync(client.close)
    pool = getattr(client, "connection_pool", None)  # a cluster has one per node
    manager = getattr(pool, "sentinel_manager", None)
    for sentinel in [] if manager is None else manager.sentinels:
        await anyio.to_thread.run_sync(sentinel.close)
