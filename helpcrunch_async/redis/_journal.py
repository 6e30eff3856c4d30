"""``RedisJournal``: the bulk journal shared by a fleet of workers, with claims on leases."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

import anyio
import tenacity

from .._bulk._journal import MAX_NAME
from .._config import finite_number, is_int
from .._errors import JournalError
from .._models import validate_id
from .._settings import Secret
from ._calls import CLIENTS, RedisUnavailable, Script, close_client
from ._report import MAX_OPS, JournalReport, parse_report
from ._session import RedisSession
from ._urls import connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from ._calls import RedisClient

__all__ = ["DEFAULT_LEASE", "DEFAULT_TTL", "DEFAULT_UNAVAILABLE_FOR", "RedisJournal"]

logger = logging.getLogger("helpcrunch_async")

#: Prefix of every Redis key the journal writes (then ``{job}:``, the hash tag).
KEY_PREFIX = "helpcrunch-async:journal:"
#: A job's name: readable in ``redis-cli``, no braces (it is the keys' hash tag).
JOB_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
#: Seconds a claim lives unless renewed; its holder renews it every third of that.
DEFAULT_LEASE = 10.0
#: Seconds a job's keys live after the last worker call that touched them (a finished job
#: expires then); every record lives this long after its bucket was last read or written.
DEFAULT_TTL = 30 * 86400.0
#: Seconds a worker waits for an unusable Redis (a restart, a failover) before the run
#: ends with ``JournalError``; claims and records wait meanwhile.
DEFAULT_UNAVAILABLE_FOR = 30.0
#: Seconds since its last call during which a session counts as live in the report.
LIVE_SESSION = 60.0
#: Ids per record bucket: a hash of at most 100 small fields stays compact in Redis.
BUCKET = 100
#: Most failed ids a report lists.
MAX_REPORT_LIMIT = 10_000
#: Ids per status call (``pending``), so that one call stays short on the server.
STATUS_BATCH = 1000
#: The longest item of a reply believed (a reason is at most ``MAX_TEXT`` characters).
MAX_REPLY_ITEM = 1024
#: The most items a report's reply may hold: its numbers, operations, counts, failures.
MAX_REPORT_ITEMS = 10 + 6 * MAX_OPS + 2 * MAX_REPORT_LIMIT

#: The script: every step of a session, atomic in Redis.
SCRIPT = resources.files(__package__).joinpath("_journal.lua").read_text(encoding="utf-8")
_FIXED_KEYS = ("meta", "ops", "counts", "errs", "owner", "lease", "sessions")


class RedisJournal:
    """A bulk journal in Redis, shared by every worker of a job: records, claims, a report.

    The file ``Journal``'s rules hold (the latest record of an id wins; ids done with an
    operation are skipped; failures are retried by a later run), plus claims: a worker
    claims an id before sending it, so workers handed the same ids never send one at the
    same time. A claim is a lease, renewed while the call is in flight and ended by the
    record; the ids of a worker that died are taken over once their lease lapses. A failure
    recorded in a run is not retried by the other workers of that run (a later run does).

    Every step is one atomic Lua script call with Redis's clock; every key of a job shares
    one Cluster hash slot (the job's name is the tag). Memory: about 9 bytes per finished
    id (hashes of 100 ids; 8.6 measured on Redis 7.0), plus the reason of each failing id;
    a job's keys expire ``ttl`` after the last call that touched them. If Redis loses the
    job (a restart without persistence, an eviction, a failover to a replica that was
    behind), the workers notice: ids done before may be sent again, none is lost.

    Args:
        client: A ``redis.Redis``, ``redis.cluster.RedisCluster`` or Sentinel
            ``master_for(...)`` client (used from a worker thread: asyncio and trio), or a
            ``redis.asyncio`` one of these (asyncio only).
        name: The job: 1 to 100 of ``A-Z a-z 0-9 _ . : -``. Workers of one job share it.
        lease: Seconds a claim lives unless renewed: how soon a dead worker's ids are taken
            over (longer than Redis can be late in answering a renewal).
        ttl: Seconds a job's keys live after their last write (make it longer than the job).
        unavailable_for: Seconds a call waits for an unusable Redis before the run ends
            with ``JournalError``.

    Example:
        >>> url = "redis://localhost:6379/0"
        >>> journal = RedisJournal.from_url(url, "close-stale")  # doctest: +SKIP
        >>> await client.chats.bulk_update_status(ids, "closed", journal=journal)  # doctest: +SKIP
    """

    def __init__(
        self,
        client: RedisClient,
        name: str,
        *,
        lease: float = DEFAULT_LEASE,
        ttl: float = DEFAULT_TTL,
        unavailable_for: float = DEFAULT_UNAVAILABLE_FOR,
    ) -> None:
        if not isinstance(client, CLIENTS):
            raise TypeError(
                "client must be a redis-py client (Redis, RedisCluster, a Sentinel's"
                f" master_for(), or their redis.asyncio twins), not {type(client).__name__}"
            )
        given: object = name  # checked whatever the annotation says: callers are untyped
        if not isinstance(given, str) or not JOB_NAME.fullmatch(given):
            raise ValueError("a job name is 1 to 100 of A-Z a-z 0-9 _ . : -")
        self.name = name
        self.lease = finite_number(lease, "lease")
        self.ttl = finite_number(ttl, "ttl")
        if self.ttl < 2 * self.lease:
            raise ValueError("ttl must be at least twice the lease")
        self.unavailable_for = finite_number(unavailable_for, "unavailable_for", zero=True)
        self._script = Script(client, SCRIPT)
        self._owned: list[RedisClient] = []
        self._base = f"{KEY_PREFIX}{{{name}}}:"
        self._keys = [self._base + part for part in _FIXED_KEYS]
        self._patience = tenacity.AsyncRetrying(
            sleep=anyio.sleep,
            stop=tenacity.stop_after_delay(self.unavailable_for),
            wait=tenacity.wait_exponential(multiplier=0.05, max=1.0),
            retry=tenacity.retry_if_exception_type(RedisUnavailable),
            reraise=True,
        )
        #: Script calls made (Redis round trips, before any retry).
        self.round_trips = 0
        #: Times a session of this object found that Redis had lost the job's state.
        self.lost_states = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        name: str,
        *,
        lease: float = DEFAULT_LEASE,
        ttl: float = DEFAULT_TTL,
        unavailable_for: float = DEFAULT_UNAVAILABLE_FOR,
    ) -> RedisJournal:
        """Connect to a Redis, a Redis Cluster or a Sentinel service named by ``url``.

        The URLs of ``RedisRateLimiter.from_url`` (see ``helpcrunch_async.redis``); other
        arguments as the class. ``aclose()`` closes the connections made here.

        Raises:
            ValueError: the URL or the name is not valid.
            JournalError: a cluster could not be reached (redis-py asks a cluster
                for its slots at once; the other clients connect on first use).
        """
        given: Secret[object] = Secret(url)
        del url  # from here on the URL is in no local of this frame (it may hold a password)
        try:
            client = connect(given)
        except RedisUnavailable as exc:
            problem = str(exc)
        else:
            try:
                journal = cls(client, name, lease=lease, ttl=ttl, unavailable_for=unavailable_for)
            except (TypeError, ValueError):
                client.close()
                raise
            journal._owned.append(client)
            return journal
        raise JournalError(f"the shared journal (Redis) is unavailable: {problem}")

    def __repr__(self) -> str:
        return f"RedisJournal({self.name!r}, lease={self.lease:g})"

    @contextlib.asynccontextmanager
    async def session(self, op: str) -> AsyncIterator[RedisSession]:
        """One worker's run of ``op``: claims renewed in the background, given back at the end.

        The bulk engine enters it (``BulkJournal``); so may your own code.

        Raises:
            ValueError: ``op`` is empty or longer than 200 characters.
            JournalError: Redis could not be used (on entering, or from a call).
        """
        given: object = op
        if not isinstance(given, str) or not 0 < len(given) <= MAX_NAME:
            raise ValueError(f"op must be a non-empty str of at most {MAX_NAME} characters")
        session = RedisSession(self, op)
        await session.open()
        raised: BaseException | None = None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(session.renew_forever)
            try:
                yield session
            except BaseException as exc:  # noqa: BLE001 - the caller's, raised again below
                raised = exc
            finally:
                tasks.cancel_scope.cancel()
                await session.release_all()
        if raised is not None:
            # Outside the task group: the caller gets its own exception, never a group.
            raise raised

    async def pending(
        self, op: str, ids: Iterable[int], *, since: float | None = None
    ) -> list[int]:
        """The ids among ``ids`` that a worker starting at ``since`` would still send, in order.

        An id is settled when its latest record is a success of ``op``, or a failure of it
        recorded at or after ``since`` (a time from ``clock()``; ``None``: every failure is
        pending). A producer watching its job uses it to find the ids nobody settled.

        Raises:
            TypeError, ValueError: an id that is not a valid id.
            JournalError: Redis could not be used.
        """
        wanted = [validate_id(item, name="id") for item in ids]
        since_ms = "" if since is None else str(int(finite_number(since, "since") * 1000))
        out: list[int] = []
        for start in range(0, len(wanted), STATUS_BATCH):
            batch = wanted[start : start + STATUS_BATCH]
            reply = await self._call("status", "", "", [op, since_ms], batch, items=1)
            flags = reply[3]
            if len(flags) != len(batch) or set(flags) - {"0", "1"}:
                raise self._unusable("a status reply of the wrong shape")
            out += [item for item, flag in zip(batch, flags, strict=True) if flag == "0"]
        return out

    async def clock(self) -> float:
        """Redis's time, in seconds since the epoch: the clock of ``pending(since=...)``.

        Raises:
            JournalError: Redis could not be used.
        """
        reply = await self._call("time", "", "", [], [], items=0)
        return int(reply[2]) / 1000

    async def report(self, *, limit: int = 100) -> JournalReport:
        """The job across the fleet: counts by outcome, claims, sessions, failed ids.

        ``limit`` bounds the failed ids listed (with their reasons); the counts are whole.
        Reading writes nothing (a dashboard does not keep a job alive).

        Raises:
            JournalError: Redis could not be used, or answered nonsense.
        """
        if not is_int(limit) or not 0 <= limit <= MAX_REPORT_LIMIT:
            raise ValueError(f"limit must be an int from 0 to {MAX_REPORT_LIMIT}, got {limit!r}")
        reply = await self._call("report", "", "", [limit], [], items=None)
        try:
            return parse_report(self.name, reply[2:], limit)
        except ValueError as exc:
            raise self._unusable(str(exc)) from None

    async def aclose(self) -> None:
        """Close the connections of a client made by ``from_url``."""
        for client in self._owned:
            await close_client(client)
        self._owned.clear()

    # --- plumbing, shared with its sessions (RedisSession) ----------------------------------

    def _key_of(self, item_id: int | str) -> str:
        """The record bucket of an id (invalid ids' texts share one)."""
        if is_int(item_id):
            return f"{self._base}r:{item_id // BUCKET}"
        return f"{self._base}r:s"

    async def _call(
        self,
        mode: str,
        token: str,
        seen: str,
        args: Sequence[object],
        ids: Sequence[int | str],
        *,
        items: int | None,
        patient: bool = True,
    ) -> list[str]:
        """One script call; its reply checked: epoch, lost flag, time (ms), the mode's own.

        ``items``: how many strings the mode answers after the time (``None``: a report's,
        bounded). Retried for ``unavailable_for`` while Redis cannot be used, unless not
        ``patient``.

        Raises:
            JournalError: Redis could not be used, or answered nonsense.
        """
        buckets: dict[str, int] = {}
        pairs: list[object] = []
        for item in ids:
            key = self._key_of(item)
            index = buckets.setdefault(key, len(self._keys) + len(buckets) + 1)
            pairs += [item, index]
        keys = [*self._keys, *buckets]
        argv = [mode, int(self.ttl * 1000), token, seen, secrets.token_hex(8)]
        argv += [int(LIVE_SESSION * 1000), *args, *pairs]
        self.round_trips += 1
        raw: Any
        try:
            if patient:
                raw = await self._patience.copy()(self._script, keys, argv)
            else:
                raw = await self._script(keys, argv)
        except RedisUnavailable as exc:
            raise self._unusable(str(exc)) from None
        most = MAX_REPORT_ITEMS if items is None else 3 + items
        reply = _strings(raw, most)
        if reply is None or (items is not None and len(reply) != most):
            raise self._unusable("a reply of the wrong shape")
        epoch, lost, now = reply[:3]
        if len(epoch) > 16 or lost not in ("0", "1") or not now.isdigit() or len(now) > 16:  # noqa: PLR2004
            raise self._unusable("a reply of the wrong shape")
        if lost == "1":
            self.lost_states += 1
            logger.warning(
                "Redis lost the state of journal %r (restart, failover or eviction): ids"
                " done before may be sent again, none is lost",
                self.name,
            )
        return reply

    def _unusable(self, problem: str) -> JournalError:
        """The error for a Redis that could not be used (or answered nonsense)."""
        return JournalError(f"the shared journal {self.name!r} (Redis) is unavailable: {problem}")


def _strings(raw: Any, most: int) -> list[str] | None:
    """A script reply as at most ``most`` short strings, or ``None`` if it is anything else."""
    if not isinstance(raw, list | tuple) or not 3 <= len(raw) <= most:  # noqa: PLR2004
        return None
    out = []
    for item in raw:
        if isinstance(item, bytes):
            if len(item) > MAX_REPLY_ITEM:
                return None
            item = item.decode("utf-8", "replace")  # noqa: PLW2901
        if not isinstance(item, str) or len(item) > MAX_REPLY_ITEM:
            return None
        out.append(item)
    return out
