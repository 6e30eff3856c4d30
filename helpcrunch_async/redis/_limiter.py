"""``RedisRateLimiter``: the local limiter's arithmetic, run for a whole fleet in Redis."""

from __future__ import annotations

import logging
import math
import secrets
from importlib import resources
from typing import TYPE_CHECKING, Literal

import anyio
import attrs

from .._config import RateLimit, finite_number
from .._errors import LimiterUnavailableError
from .._limit._gate import INTERACTIVE, Lanes, Priority
from .._limit._gcra import ADAPT_FLOOR, LEARN_HOLD_MAX, LEARN_HOLD_MIN
from .._limit._local import LocalRateLimiter
from .._limit._protocol import check_deadline, check_pause, refusal
from .._settings import Secret
from ._calls import CLIENTS, RedisUnavailable, Script, close_client
from ._reply import parse_reply
from ._urls import KEY_PREFIX, client_from_url, hash_tagged

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._limit._headers import RateLimitHeaders
    from ._calls import RedisClient

__all__ = [
    "BACKGROUND_LOOKAHEAD",
    "BACKGROUND_LOOKAHEAD_SHARE",
    "DEFAULT_LOCAL_SHARE",
    "RedisRateLimiter",
]

logger = logging.getLogger("helpcrunch_async")

#: Share of the rate a process allows itself when Redis is down and fallback is on, before
#: it has seen the fleet's size in Redis (afterwards: one over that size).
DEFAULT_LOCAL_SHARE = 0.25
#: Seconds ahead a background caller may reserve a slot, at most: enough to hide a round
#: trip, short enough that an interactive call from any process finds the next slot free...
BACKGROUND_LOOKAHEAD = 0.05
#: ...and never more than this share of an interval at the configured rate: a reservation is
#: then made after the 429 of the slot before it has come back (when Redis and the server
#: answer within half an interval), so one 429 episode costs one 429, not two.
BACKGROUND_LOOKAHEAD_SHARE = 0.5
#: Shortest sleep between two asks of a caller whose slot is not yet within reach.
MIN_POLL = 0.005
#: How long Redis keeps the schedule's sequence number after the last call (7 days): longer
#: than the schedule itself (two windows), so that a schedule that merely expired while the
#: key was idle is told from one lost in use. Idle longer, a process takes it for lost.
SEQUENCE_TTL_MS = 7 * 86_400_000

#: The script: the arithmetic of ``_limit/_gcra.py``, decision by decision, plus the guards.
SCRIPT = resources.files(__package__).joinpath("_script.lua").read_text(encoding="utf-8")


class RedisRateLimiter:
    """A ``RateLimiter`` shared through Redis by every client using the same API key.

    The arithmetic is the local limiter's (GCRA bounded by a record of recent grants, the
    same 429 pause and learning of the real limit), run in one atomic Lua script with
    Redis's clock, usually one round trip per grant. See ``helpcrunch_async.redis`` for the
    URLs, the traffic classes across processes, and what happens when Redis misbehaves.

    Args:
        client: A ``redis.Redis``, ``redis.cluster.RedisCluster`` or Sentinel
            ``master_for(...)`` client (used from a worker thread: works under asyncio and
            trio), or a ``redis.asyncio`` one of these (asyncio only).
        limit: The budget (``RateLimit()``, HelpCrunch's default, when omitted).
        key: The Redis key to keep the schedule under (wrapped in a hash tag unless it has
            one); by default derived from the API key of the client this limiter is given to.
        on_unavailable: ``"fail"`` (default) raises ``LimiterUnavailableError`` when Redis
            cannot be used; ``"local"`` falls back to a local limiter at this process's share.
        local_share: Share of the rate for the local fallback. By default one over the size
            of the fleet last seen in Redis (``DEFAULT_LOCAL_SHARE`` before any), which keeps
            the fleet within the limit; a fixed share lets ``n`` processes send up to
            ``n * local_share`` of the limit.

    Examples:
        >>> limiter = RedisRateLimiter.from_url("redis://localhost:6379/0")  # doctest: +SKIP
        >>> client = HelpCrunch(rate_limit=limiter)  # doctest: +SKIP
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        limit: RateLimit | None = None,
        key: str | None = None,
        on_unavailable: Literal["fail", "local"] = "fail",
        local_share: float | None = None,
    ) -> None:
        if not isinstance(client, CLIENTS):
            raise TypeError(
                "client must be a redis-py client (Redis, RedisCluster, a Sentinel's"
                f" master_for(), or their redis.asyncio twins), not {type(client).__name__}"
            )
        if limit is not None and not isinstance(limit, RateLimit):
            raise TypeError(f"limit must be a RateLimit, not {type(limit).__name__}")
        if on_unavailable not in ("fail", "local"):
            raise ValueError(f"on_unavailable must be 'fail' or 'local', got {on_unavailable!r}")
        if local_share is not None and finite_number(local_share, "local_share") > 1:
            raise ValueError(f"local_share must be a number in (0, 1], got {local_share!r}")
        given_key: object = key
        if given_key is not None and (not isinstance(given_key, str) or not given_key):
            raise ValueError("key must be a non-empty string")
        self.limit = RateLimit() if limit is None else limit
        self.key = None if key is None else hash_tagged(key)
        self._fingerprint: str | None = None
        self.on_unavailable = on_unavailable
        self.local_share = local_share
        self._script = Script(client, SCRIPT)
        self._owned: list[RedisClient] = []
        self._lanes = Lanes()
        #: When a background caller of this process asks Redis first: its next slot is at
        #: least an interval after this process's last (asking earlier only costs a trip).
        self._next_ask = -math.inf
        #: Tests only: the script's clock (``None``: Redis's ``TIME``, the fleet's).
        self._script_clock: Callable[[], float] | None = None
        self._member = secrets.token_hex(8)
        #: Highest schedule sequence number seen (0: never talked to Redis).
        self._seen_seq = 0
        #: Fleet size at the last reply (0: unknown).
        self.fleet_size = 0
        self._last_reply: float | None = None
        self._last_local: float | None = None
        self._fallback: LocalRateLimiter | None = None
        self._fallback_from = -math.inf
        self._degraded = False
        #: Script calls made (Redis round trips, before any NOSCRIPT reload or retry).
        self.round_trips = 0
        #: Times Redis was found to have lost the schedule (the fleet then paused a window).
        self.lost_states = 0
        #: Grants made by the local fallback while Redis could not be used.
        self.local_grants = 0
        #: What the last script call said: the shared rate in force and the learned limit.
        self._capacity = self.limit.requests
        self._learned: int | None = None
        self._info_seen: tuple[int, float | None] | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        limit: RateLimit | None = None,
        key: str | None = None,
        on_unavailable: Literal["fail", "local"] = "fail",
        local_share: float | None = None,
    ) -> RedisRateLimiter:
        """Connect to a Redis, a Redis Cluster or a Sentinel service named by ``url``.

        Schemes: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+cluster://``,
        ``redis+sentinel://host:port[,host:port]/service[/db]`` (and their ``rediss+``
        forms); see ``helpcrunch_async.redis``. Other options as the class; ``aclose()``
        closes the connections made here.

        Raises:
            TypeError, ValueError: the URL is not one of those (the message never quotes
                it: it may hold a password), or another argument is wrong.
            LimiterUnavailableError: a cluster could not be reached (redis-py asks a
                cluster for its slots at once; the other clients connect on first use).
        """
        given: Secret[object] = Secret(url)
        del url  # from here on the URL is in no local of this frame
        client = client_from_url(given.reveal())  # type: ignore[arg-type]
        limiter = cls(
            client, limit=limit, key=key, on_unavailable=on_unavailable, local_share=local_share
        )
        limiter._owned.append(client)
        return limiter

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self.limit!r}, on_unavailable={self.on_unavailable!r})"

    def bind_key(self, fingerprint: str) -> None:
        """Serve the API key of ``fingerprint`` (the client calls this), unless ``key`` was given.

        Raises:
            ValueError: the limiter already serves another API key.
        """
        if self._fingerprint not in (None, fingerprint):
            raise ValueError(
                "this RedisRateLimiter already serves another API key; create one per key"
            )
        self._fingerprint = fingerprint
        if self.key is None:
            self.key = f"{KEY_PREFIX}{{{fingerprint}}}"

    @property
    def current_rate(self) -> int:
        """Requests per window the fleet allows itself, as of this process's last round trip."""
        return self._capacity

    @property
    def learned_limit(self) -> int | None:
        """The key's limit the fleet learned (below the configured rate), or ``None``.

        As of this process's last round trip; see ``LocalRateLimiter.learned_limit``.
        """
        return self._learned

    async def acquire(
        self, *, priority: Priority = INTERACTIVE, deadline: float | None = None
    ) -> None:
        """Reserve a shared slot and wait for it; see ``RateLimiter.acquire``.

        Each traffic class waits in a lane of its own in this process. Background callers
        reserve only a slot at most ``BACKGROUND_LOOKAHEAD`` seconds away (and at most
        ``BACKGROUND_LOOKAHEAD_SHARE`` of an interval), interactive ones up to an interval
        further; a farther slot is not reserved: the caller sleeps until it comes within
        reach and asks again, so that an interactive call from any process goes first.

        Raises:
            LimiterTimeoutError: the slot would come after ``deadline``; raised as soon as
                Redis says so, having reserved nothing.
            LimiterUnavailableError: Redis could not be used (``on_unavailable="fail"``).
            TypeError, ValueError: ``deadline`` is not a number (or is too large for a float).
        """
        deadline = check_deadline(deadline)
        async with self._lanes.enter(priority, deadline):
            if priority != INTERACTIVE:  # not before its slot can be within reach
                until = math.inf if deadline is None else deadline
                await anyio.sleep_until(min(self._next_ask, until))
            while True:
                left = math.inf if deadline is None else deadline - anyio.current_time()
                ahead = max(0.0, min(left, self._lookahead(priority)))
                try:
                    delay = await self._run(
                        "acquire", -1.0, ahead=ahead, priority=priority, deadline=deadline
                    )
                except RedisUnavailable as exc:
                    if self.on_unavailable == "fail":
                        raise LimiterUnavailableError(
                            f"the shared rate limiter (Redis) is unavailable: {exc}"
                        ) from None
                    await self._acquire_locally(priority, deadline)
                    return
                if delay >= 0:
                    self._reserved(priority, delay)
                    if delay > 0:
                        await anyio.sleep(delay)
                    return
                last_delay = -delay
                if last_delay > left:
                    raise refusal(last_delay)
                # Nothing reserved: ask again when the slot is well within reach.
                await anyio.sleep(max(last_delay - self._lookahead(priority) / 2, MIN_POLL))

    def _reserved(self, priority: Priority, delay: float) -> None:
        """Note a slot reserved ``delay`` seconds away.

        The next background slot is at least an interval later: the next background caller
        asks when that can be within reach, not at once (a round trip that cannot succeed).
        """
        if priority != INTERACTIVE:
            interval = self.limit.window / self._capacity
            reach = self._lookahead(priority) / 2  # well within reach
            self._next_ask = anyio.current_time() + delay + interval - reach

    def _lookahead(self, priority: Priority) -> float:
        """How far ahead a caller of ``priority`` may reserve: the two thresholds."""
        # Half the configured rate's interval at most (the rate may be up since the last
        # reply); interactive callers an interval more, but not while a lesson holds: a
        # reservation made before a 429 came back would be refused too.
        shortest = self.limit.window / self.limit.requests
        background = min(BACKGROUND_LOOKAHEAD, BACKGROUND_LOOKAHEAD_SHARE * shortest)
        if priority == INTERACTIVE and self._learned is None:
            return self.limit.window / self._capacity + background
        return background

    async def on_rate_limited(self, pause: float | None, *, sent_ago: float | None = None) -> float:
        """Pause every process after a 429, and learn from evidence; see ``RateLimiter``.

        ``sent_ago`` goes to Redis as an age (the script dates it on Redis's clock). Returns
        the pause in force (Redis's, or the local fallback's while Redis is away).

        Raises:
            TypeError, ValueError: ``pause`` or ``sent_ago`` is not ``None`` or a finite
                number >= 0.
        """
        pause = check_pause(pause)
        if sent_ago is not None:
            sent_ago = finite_number(sent_ago, "sent_ago", zero=True)
        try:
            return await self._run("penalize", -1.0 if pause is None else pause, age=sent_ago)
        except RedisUnavailable:
            if self.on_unavailable == "fail":  # nobody is granted until Redis is back
                return 0.0 if pause is None else pause
            return await self._local_fallback().on_rate_limited(pause, sent_ago=sent_ago)

    async def on_rate_limit_headers(self, headers: RateLimitHeaders) -> None:
        """Share what an answer's rate-limit headers said (a round trip only when it matters)."""
        seen = None if headers.limit is None else (headers.limit, headers.window)
        exhausted = headers.remaining == 0 and headers.reset is not None
        if not exhausted and (seen is None or seen == self._info_seen):
            return
        self._info_seen = seen or self._info_seen
        try:
            await self._run("observe", -1.0, info=headers)
        except RedisUnavailable:
            if self.on_unavailable == "local":
                await self._local_fallback().on_rate_limit_headers(headers)

    def _local_fallback(self) -> LocalRateLimiter:
        """The local limiter used while Redis is away, made when first needed."""
        fallback = self._fallback
        if fallback is None:
            fallback = self._fallback = LocalRateLimiter(self._local_limit())
            # This process's Redis grants of the last window still count on the server:
            # start once they are a window old.
            if self._last_reply is not None:
                self._fallback_from = self._last_reply + self.limit.window
        return fallback

    async def _acquire_locally(self, priority: Priority, deadline: float | None) -> None:
        # The fallback is held in a local: a reply from Redis meanwhile (another caller's)
        # ends the fallback for later callers, not for this one.
        fallback = self._local_fallback()
        if deadline is not None and self._fallback_from > deadline:
            raise refusal(self._fallback_from - anyio.current_time())
        await anyio.sleep_until(self._fallback_from)
        await fallback.acquire(priority=priority, deadline=deadline)
        self.local_grants += 1
        self._last_local = anyio.current_time()

    def _local_limit(self) -> RateLimit:
        share = self.local_share
        if share is None:
            share = 1 / self.fleet_size if self.fleet_size else DEFAULT_LOCAL_SHARE
        return attrs.evolve(
            self.limit,
            requests=max(1, math.floor(self.limit.requests * share)),
            burst=max(1, math.floor(self.limit.effective_burst * share)),
        )

    async def _run(
        self,
        mode: str,
        pause: float,
        *,
        now: float | None = None,
        ahead: float = math.inf,
        info: RateLimitHeaders | None = None,
        priority: Priority = INTERACTIVE,
        age: float | None = None,
        deadline: float | None = None,
    ) -> float:
        if self.key is None:
            raise RuntimeError(
                "RedisRateLimiter has no key: pass it to a HelpCrunch client or give key=..."
            )
        # Grants made locally within the last window are unknown to Redis: say so, and the
        # script makes the fleet wait them out.
        suspect = (
            self._last_local is not None
            and anyio.current_time() - self._last_local < self.limit.window
        )
        if now is None and self._script_clock is not None:
            now = self._script_clock()
        keys = [self.key + suffix for suffix in (":state", ":grants", ":fleet", ":seq")]
        args = [*self._arithmetic_args(mode, pause)]
        args += [self._seen_seq, "1" if suspect else "0", self._member, "" if now is None else now]
        args += [*self._learning_args(ahead, info), priority, -1.0 if age is None else max(0, age)]
        args += [SEQUENCE_TTL_MS]
        self.round_trips += 1
        try:
            raw = await self._script(keys, args, deadline=deadline)
            delay, fleet, seq, lost, capacity, learned = parse_reply(raw, self.limit)
        except (RedisUnavailable, ValueError) as exc:
            self._note_unavailable(str(exc))
            raise RedisUnavailable(str(exc)) from None
        if lost:
            self.lost_states += 1
            logger.warning(
                "Redis lost the shared schedule (restart, failover or eviction): the fleet"
                " waits one window before sending again"
            )
        self._seen_seq = max(self._seen_seq, seq)
        self.fleet_size = fleet
        self._capacity, self._learned = capacity, learned
        self._last_reply = anyio.current_time()
        if suspect:
            self._last_local = None  # told: the script made the fleet wait them out
        self._fallback = None
        if self._degraded:
            self._degraded = False
            logger.warning("Redis rate limiter usable again; sharing the limit through it")
        return delay

    def _arithmetic_args(self, mode: str, pause: float) -> list[str | int | float]:
        limit = self.limit
        return [
            mode,
            limit.requests,
            limit.window,
            limit.effective_burst,
            pause,
            math.ceil(2 * limit.window * 1000) + 1000,
            ADAPT_FLOOR,
            LEARN_HOLD_MIN,
            LEARN_HOLD_MAX,
        ]

    def _learning_args(self, ahead: float, info: RateLimitHeaders | None) -> list[float]:
        """``per``, how far ahead to reserve (-1: any), the headers' fields (-1: absent)."""
        fields: tuple[float | None, ...] = (None,) * 4
        if info is not None:
            fields = (info.limit, info.window, info.remaining, info.reset)
        return [
            self.limit.per,
            -1.0 if math.isinf(ahead) else ahead,
            *(-1.0 if value is None else float(value) for value in fields),
        ]

    def _note_unavailable(self, problem: str) -> None:
        if not self._degraded:  # once per outage, not once per request
            self._degraded = True
            logger.warning(
                "Redis rate limiter unavailable (%s); %s",
                problem,
                "failing requests"
                if self.on_unavailable == "fail"
                else f"falling back to a local limit of {self._local_limit().requests}"
                f" per {self.limit.per:g} s",
            )

    async def aclose(self) -> None:
        """Close the connections of a client made by ``from_url``."""
        for client in self._owned:
            await close_client(client)
        self._owned.clear()
