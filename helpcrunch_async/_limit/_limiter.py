"""Client-side rate limiting: the limiter protocol, GCRA arithmetic, and the local limiter.

The schedule is GCRA (one "theoretical arrival time", ``tat``, per bucket) bounded by a
record of the last ``requests`` grant times:

- GCRA spaces requests ``interval = window / requests`` apart and lets ``burst`` leave at
  once on an idle key, so interactive callers below the rate never wait;
- the record makes the guarantee hard: a request is granted only when the request
  ``requests`` grants ago is at least ``window`` old, so no window ever holds more than
  ``requests``, bursts included.

A 429 pushes ``tat`` forward for everybody (all callers pause together, then resume at the
steady pace without a burst) and teaches the limiter the key's real limit, as TCP keeps its
slow-start threshold:

- the rate that was punished is what this client actually sent in the last ``per``
  seconds (never more than the rate in force); the limiter holds one request per window
  under it, so a limit lower than configured is learned in one or a few 429 episodes;
- it holds there for ``LEARN_PROBE_MIN`` quiet windows, then probes gently: one request
  more per window, then two, four... (a probe that survives a whole window means the limit
  went up, so the growth doubles until the configured rate: full recovery in bounded time);
- a probe punished at once puts the rate back under the punished one and doubles the hold
  before the next probe (up to ``LEARN_PROBE_MAX`` windows), so a client that found its
  limit spends almost all its time just under it and rarely pays a 429.

Rate-limit headers, when a server sends them (``rate_limit_info``), set the rate and the
pause directly; nothing depends on them.
"""

from __future__ import annotations

import bisect
import hashlib
import inspect
import itertools
import logging
import math
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio
import attrs

from .._config import RateLimit
from .._errors import LimiterTimeoutError, parse_retry_after
from ._gate import INTERACTIVE, Priority, PriorityGate, check_wait

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "GCRA",
    "LimiterSupport",
    "RateLimitInfo",
    "RateLimiter",
    "TokenBucketLimiter",
    "api_key_fingerprint",
    "limiter_support",
    "rate_limit_info",
]

logger = logging.getLogger("helpcrunch_async")

#: The learned rate never drops below this share of the configured rate.
ADAPT_FLOOR = 0.1
#: Quiet windows the learned rate is held before the first probe upward...
LEARN_PROBE_MIN = 3
#: ...and the longest hold, reached by doubling after each probe punished at once. It bounds
#: the time to full recovery when the real limit goes back up: this many windows plus the
#: doubling climb (log2 of the configured rate, in windows).
LEARN_PROBE_MAX = 6

#: Longest header value read; anything past it is ignored (a hostile server's bytes).
HEADER_MAX_CHARS = 256
#: Largest request count believed from a header.
HEADER_MAX_REQUESTS = 10**9
#: Longest reset or window believed from a header, in seconds (a day).
HEADER_MAX_SECONDS = 86_400.0
#: A reset value above this is a Unix time, not a number of seconds (some servers send one).
EPOCH_THRESHOLD = 1e9


@attrs.frozen
class RateLimitInfo:
    """What a server's rate-limit headers said (every field ``None`` when absent or garbled).

    Attributes:
        limit: Requests allowed per ``window``.
        remaining: Requests left in the current window.
        reset: Seconds until the window resets (or until ``remaining`` refills).
        window: The window of ``limit`` in seconds, when the server named it (``w=``).
        retry_after: Seconds to wait, from ``Retry-After``.
    """

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None
    window: float | None = None
    retry_after: float | None = None


_INT = re.compile(r"\s*(\d{1,12})(?=\s*(?:$|;))")
_NUMBER = re.compile(r"\s*(\d{1,15}(?:\.\d{1,9})?)\s*$")
_PARAM = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]{0,31})\s*=\s*\"?([0-9.]{1,32})\"?\s*$")


def _count(text: str | None) -> int | None:
    match = _INT.match(text.split(",", 1)[0]) if text is not None else None
    if match is None:
        return None
    value = int(match.group(1))
    return value if value <= HEADER_MAX_REQUESTS else None


def _seconds(text: str | None, *, now: float, epoch: bool = False) -> float | None:
    match = _NUMBER.match(text.split(",", 1)[0]) if text is not None else None
    if match is None:
        return None
    value = float(match.group(1))
    if epoch and value > EPOCH_THRESHOLD:
        value = max(0.0, value - now)
    return value if value <= HEADER_MAX_SECONDS else None


def _params(text: str | None) -> dict[str, str]:
    """``key=value`` pairs of a structured header's first item (``"default";q=100;w=60``)."""
    if text is None:
        return {}
    found: dict[str, str] = {}
    for part in re.split(r"[;,]", text)[:16]:
        match = _PARAM.match(part)
        if match is not None:
            found.setdefault(match.group(1).lower(), match.group(2))
        elif _INT.fullmatch(part.strip()) and "limit" not in found:
            found["limit"] = part.strip()  # the older draft's bare "100;w=60"
    return found


def rate_limit_info(
    headers: Mapping[str, Any], *, now: float | None = None
) -> RateLimitInfo | None:
    """Read rate-limit headers: ``Retry-After``, ``X-RateLimit-*``, IETF ``RateLimit-*``.

    Understands ``Retry-After`` (seconds or an HTTP date), ``X-RateLimit-Limit`` /
    ``-Remaining`` / ``-Reset`` (reset in seconds or as a Unix time), the IETF draft's
    ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset``, ``RateLimit-Policy`` (``100;w=60`` or
    ``"default";q=100;w=60``) and ``RateLimit`` (``limit=100, remaining=5, reset=3`` or
    ``"default";r=5;t=3``). The IETF headers win over the ``X-`` ones.

    Total and bounded: any value a server may send (garbled, huge, negative, not text)
    gives ``None`` for that field, never an exception; only the first
    ``HEADER_MAX_CHARS`` characters of a value are read.

    Args:
        headers: Response headers (an ``httpx.Headers`` or any mapping; names in any case).
        now: The current Unix time (for HTTP dates and Unix-time resets); ``time.time()``.

    Returns:
        What the headers said, or ``None`` when there were none of these headers.

    Example:
        >>> rate_limit_info({"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0"})
        RateLimitInfo(limit=60, remaining=0, reset=None, window=None, retry_after=None)
    """
    wanted = {
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    }
    found: dict[str, str] = {}
    try:
        items: Sequence[tuple[object, object]] = list(itertools.islice(headers.items(), 1000))
    except Exception:  # noqa: BLE001 - a hostile mapping is "no headers", never a crash
        return None
    for name, value in items:
        if isinstance(name, bytes):
            name = name.decode("latin-1")  # noqa: PLW2901
        if isinstance(value, bytes):
            value = value.decode("latin-1")  # noqa: PLW2901
        if isinstance(name, str) and isinstance(value, str) and name.lower() in wanted:
            found.setdefault(name.lower(), value[:HEADER_MAX_CHARS])
    if not found:
        return None
    current = time.time() if now is None else now
    structured = _params(found.get("ratelimit"))
    policy = _params(found.get("ratelimit-policy"))

    def first(*values: float | None) -> Any:
        return next((v for v in values if v is not None), None)

    limit = first(
        _count(found.get("ratelimit-limit")),
        _count(structured.get("limit")),
        _count(policy.get("q")),
        _count(policy.get("limit")),
        _count(found.get("x-ratelimit-limit")),
    )
    remaining = first(
        _count(found.get("ratelimit-remaining")),
        _count(structured.get("remaining")),
        _count(structured.get("r")),
        _count(found.get("x-ratelimit-remaining")),
    )
    reset = first(
        _seconds(found.get("ratelimit-reset"), now=current),
        _seconds(structured.get("reset"), now=current),
        _seconds(structured.get("t"), now=current),
        _seconds(found.get("x-ratelimit-reset"), now=current, epoch=True),
    )
    window = _seconds(policy.get("w"), now=current)
    retry_after = parse_retry_after(found.get("retry-after"), now=current)
    if retry_after is not None and retry_after > HEADER_MAX_SECONDS:
        retry_after = None
    return RateLimitInfo(
        limit=limit,
        remaining=remaining,
        reset=reset,
        window=window or None,
        retry_after=retry_after,
    )


def refusal(retry_after: float, max_wait: float | None) -> LimiterTimeoutError:
    """The error for a slot expected ``retry_after`` seconds from now, past ``max_wait``."""
    return LimiterTimeoutError(
        f"no rate-limit slot within max_wait={max_wait} s (one expected in {retry_after:.3f} s)",
        retry_after=retry_after,
    )


@runtime_checkable
class RateLimiter(Protocol):
    """What the client needs from a rate limiter; pass any implementation as ``rate_limit=``.

    The client calls ``acquire()`` before every attempt of every request (retries included:
    the server counts rejected requests too), and ``on_rate_limited()`` whenever the server
    answers 429, so that the limiter can hold back every caller, not only the one that got it.
    Implementations must be safe to cancel: a caller cancelled inside ``acquire()`` must not
    cost later callers more than a bounded wait.

    Optional, detected once per limiter (``limiter_support``), so a limiter written for the
    first version of this protocol keeps working unchanged:

    - ``acquire(*, priority=..., max_wait=...)``: when ``acquire`` accepts these keywords the
      client passes the call's traffic class (``"interactive"`` or ``"background"``:
      interactive callers go before every queued background one) and the seconds it may
      still wait (``None``: no limit); past it the limiter raises ``LimiterTimeoutError``
      having taken nothing. A limiter without them gets plain ``acquire()``.
    - ``on_rate_limit_info(info: RateLimitInfo)`` (async): the client passes what an answer's
      rate-limit headers said (``rate_limit_info(response.headers)``), for any answer that
      had some, before ``on_rate_limited`` when it is a 429.
    - ``scope(fingerprint: str)``: a limiter whose budget belongs to an API key (shared
      through Redis, say); the client calls it once with ``api_key_fingerprint(key)``, so
      the limiter can keep one schedule per key without ever seeing the key.
    """

    async def acquire(self) -> None:
        """Wait until one more request may be sent, and count it as sent."""
        ...

    async def on_rate_limited(self, retry_after: float | None) -> None:
        """Report a 429, with the server's ``Retry-After`` in seconds if it sent one."""
        ...


@attrs.frozen
class LimiterSupport:
    """Which optional parts of the ``RateLimiter`` protocol a limiter has."""

    priority: bool
    max_wait: bool
    rate_limit_info: bool


def limiter_support(limiter: object) -> LimiterSupport:
    """Find out once which optional protocol parts ``limiter`` implements (see ``RateLimiter``)."""
    try:
        parameters = inspect.signature(limiter.acquire).parameters  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return LimiterSupport(
        priority=takes_any or "priority" in parameters,
        max_wait=takes_any or "max_wait" in parameters,
        rate_limit_info=callable(getattr(limiter, "on_rate_limit_info", None)),
    )


def api_key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for an API key (32 hex digits of a SHA-256)."""
    return hashlib.sha256(b"helpcrunch-async:" + api_key.encode()).hexdigest()[:32]


@attrs.define
class GCRA:
    """The limiter's arithmetic, free of any clock or I/O, so it can be tested with numbers.

    ``next_time(now)`` is the earliest time a request may go; ``take(t)`` records a grant at
    ``t``; ``penalize(now, pause)`` is a 429; ``observe(now, info)`` applies rate-limit
    headers. Times are seconds on any monotonic clock.
    """

    limit: RateLimit
    tat: float = -math.inf
    grants: deque[float] = attrs.field(factory=deque)
    #: Requests per window held since the last lesson (``limit.requests``: nothing learned).
    base: int = attrs.field()
    #: When the current hold began (the last 429 episode or header change).
    since: float = -math.inf
    #: Quiet windows to hold ``base`` before probing upward.
    probe_wait: int = LEARN_PROBE_MIN
    #: No second lesson before this time: the 429s of requests already in flight when the
    #: first one came are the same episode.
    hold_until: float = -math.inf
    #: The rate at which the last 429 came (requests per ``per``), ``None`` before any.
    punished: int | None = None
    #: Requests per window a server's headers stated, when below the configured rate.
    stated: int | None = None
    #: The last (limit, window) pair read from headers, to act on changes only.
    stated_seen: tuple[int, float | None] | None = None

    @base.default
    def _base(self) -> int:
        return self.limit.requests

    def top(self) -> int:
        """The most the limiter ever allows per window: configured, or less if headers say so."""
        return self.limit.requests if self.stated is None else min(self.limit.requests, self.stated)

    def floor(self) -> int:
        """The least the learned rate may fall to."""
        return max(1, math.floor(self.limit.requests * ADAPT_FLOOR))

    def probing_windows(self, now: float) -> int:
        """How many windows of probing have begun at ``now`` (0 while holding ``base``)."""
        windows = math.floor(max(0.0, now - self.since) / self.limit.window)
        return max(0, windows - self.probe_wait + 1)

    def capacity(self, now: float) -> int:
        """Requests allowed per window at ``now`` (lower than configured once one is learned)."""
        top = self.top()
        if self.base >= top:
            return top
        probes = self.probing_windows(now)
        if not probes:
            return self.base
        # One more request in the first probing window (gentle: it is the rate punished last
        # time); once that survives a whole window the limit has risen, so double each window.
        return min(top, (self.base + 1) << min(probes - 1, 40))

    def learned_limit(self, now: float) -> int | None:
        """Requests per window the limiter holds to below the configured rate, or ``None``."""
        if self.capacity(now) >= self.limit.requests:
            return None
        return min(self.base, self.top())

    def _tau(self, cap: int) -> float:
        return (min(self.limit.effective_burst, cap) - 1) * (self.limit.window / cap)

    def next_time(self, now: float) -> float:
        """Earliest time >= ``now`` at which a request may be granted."""
        cap = self.capacity(now)
        t = max(now, self.tat - self._tau(cap))
        if len(self.grants) >= cap:
            t = max(t, self.grants[-cap] + self.limit.window)
        return t

    def interval(self, now: float) -> float:
        """Seconds between two requests at the rate in force at ``now``."""
        return self.limit.window / self.capacity(now)

    def take(self, t: float) -> None:
        """Record a request granted at ``t``."""
        cap = self.capacity(t)
        self.tat = max(self.tat, t) + self.limit.window / cap
        # Kept in time order (as Redis's sorted set is): when the rate changes, a slot may
        # come before one reserved earlier.
        bisect.insort(self.grants, t)
        while len(self.grants) > self.limit.requests:
            self.grants.popleft()

    def sent_within(self, now: float, seconds: float) -> int:
        """Grants in the last ``seconds`` up to ``now`` (the server's window holds as many)."""
        count = 0
        for t in reversed(self.grants):
            if t <= now - seconds:
                break
            count += t <= now
        return count

    def _pause_all(self, now: float, pause: float) -> None:
        # Resume at the steady pace, without a burst, once the pause is over.
        self.tat = max(self.tat, now + pause + self._tau(self.capacity(now)))

    def penalize(self, now: float, pause: float | None) -> float:
        """Apply a 429 at ``now``; return the pause applied to every caller.

        Without a ``Retry-After``, the pause is one interval at the new rate. The first 429
        of an episode is a lesson: the rate that was punished (what was sent in the last
        ``per`` seconds, at most the rate in force) is remembered, the rate drops to one
        request per window under it and is held there (see the module docstring); later
        429s of requests already in flight teach nothing more.
        """
        if now >= self.hold_until:
            cap = self.capacity(now)
            punished = max(1, min(cap, self.sent_within(now, self.limit.per)))
            if self.punished is None or self.base >= self.top():
                self.probe_wait = LEARN_PROBE_MIN  # a first lesson
            elif cap > self.base:  # punished while probing
                if punished <= self.punished:  # at the rate punished before: wait longer
                    self.probe_wait = min(LEARN_PROBE_MAX, 2 * self.probe_wait)
                else:  # more got through than last time: the limit had risen
                    self.probe_wait = LEARN_PROBE_MIN
            self.punished = punished
            self.base = max(self.floor(), punished - 1)
            self.since = now
        cap = self.capacity(now)
        if pause is None:
            # One interval stops the callers queued right now; the grant record already
            # keeps the next window under the learned rate, rejected requests included.
            pause = self.limit.window / cap
        pause = min(pause, self.limit.window)
        self._pause_all(now, pause)
        if now >= self.hold_until:
            self.hold_until = max(now + pause, self.next_time(now))
        return pause

    def observe(self, now: float, info: RateLimitInfo) -> float:
        """Apply what rate-limit headers said at ``now``; return the pause applied (0: none).

        A stated limit (converted to this limiter's ``per``) caps the rate and replaces
        anything learned, when it changes; ``remaining == 0`` with a ``reset`` pauses every
        caller until the reset (at most a window), without lowering the rate.
        """
        if info.limit is not None and info.limit > 0:
            seen = (info.limit, info.window)
            if seen != self.stated_seen:
                self.stated_seen = seen
                per = self.limit.per if info.window is None else info.window
                stated = max(1, math.floor(info.limit * self.limit.per / per))
                self.stated = stated if stated < self.limit.requests else None
                self.base = self.top()
                self.since = now
                self.probe_wait = LEARN_PROBE_MIN
        if info.remaining is not None and info.remaining <= 0 and info.reset is not None:
            pause = min(info.reset, self.limit.window)
            self._pause_all(now, pause)
            return pause
        return 0.0


class TokenBucketLimiter:
    """The local limiter: GCRA on anyio primitives, for one process (asyncio or trio).

    Waiters line up in a ``PriorityGate``: interactive callers before every queued
    background caller, arrival order within a class. Only the head of the line watches the
    clock; the others wait their turn, so nothing polls. A waiter cancelled or timed out in
    the line never took a slot, so it costs later callers nothing.

    Share one instance between clients of the same process and event loop to share one
    budget; for several processes use ``helpcrunch_async.redis.RedisRateLimiter``.

    Args:
        limit: The budget to keep to.
        clock: Seconds on a monotonic clock; ``anyio.current_time`` (the event loop's
            clock, virtual under a trio ``MockClock``) by default.
    """

    def __init__(
        self, limit: RateLimit | None = None, *, clock: Callable[[], float] | None = None
    ) -> None:
        self.limit = RateLimit() if limit is None else limit
        self._gcra = GCRA(self.limit)
        self._clock = anyio.current_time if clock is None else clock
        self._line = PriorityGate(1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.limit!r})"

    @property
    def current_rate(self) -> int:
        """Requests per window allowed now (below the configured rate once a limit is learned)."""
        return self._gcra.capacity(self._clock())

    @property
    def learned_limit(self) -> int | None:
        """Requests per window the limiter learned the key allows, when below the configured rate.

        ``None`` while the limiter runs at the configured rate (nothing learned, or fully
        recovered since).
        """
        return self._gcra.learned_limit(self._clock())

    def expected_wait(self, priority: Priority = INTERACTIVE) -> float:
        """Seconds until a newcomer of ``priority`` would be granted, if nobody else came."""
        now = self._clock()
        ahead = self._line.ahead_of(priority) + (self._line.permits - self._line.free)
        return max(0.0, self._gcra.next_time(now) - now) + ahead * self._gcra.interval(now)

    async def acquire(
        self, *, priority: Priority = INTERACTIVE, max_wait: float | None = None
    ) -> None:
        """Wait for a slot in ``priority``'s line; see ``RateLimiter.acquire``.

        Raises:
            LimiterTimeoutError: the slot would come later than ``max_wait`` seconds from
                now; raised as soon as that is known, having taken nothing.
        """
        check_wait(priority, max_wait)
        now = self._clock()
        idle = not self._line.ahead_of(priority) and self._line.free
        if idle and self._gcra.next_time(now) <= now:
            self._gcra.take(now)
            return
        deadline = math.inf
        if max_wait is not None:
            expected = self.expected_wait(priority)
            if expected > max_wait:  # refuse at once rather than sleep to find out
                raise refusal(expected, max_wait)
            deadline = now + max_wait
        try:
            async with self._line.enter(priority, max_wait):
                while True:
                    now = self._clock()
                    due = self._gcra.next_time(now)
                    if due <= now:
                        break
                    if due > deadline:
                        raise refusal(due - now, max_wait)
                    logger.debug("rate limiter: waiting %.3f s for a slot", due - now)
                    # Re-read the schedule after sleeping: a 429 may have pushed it back.
                    await anyio.sleep(due - now)
                self._gcra.take(now)
        except LimiterTimeoutError as exc:
            if exc.retry_after is None:  # the line's own timeout: give the limiter's estimate
                raise refusal(self.expected_wait(priority), max_wait) from None
            raise

    async def on_rate_limited(self, retry_after: float | None) -> None:
        """Pause every caller and learn the key's limit; see ``RateLimiter.on_rate_limited``."""
        before = self.learned_limit
        pause = self._gcra.penalize(self._clock(), retry_after)
        after = self.learned_limit
        log = logger.info if after is not None and after != before else logger.debug
        log(
            "rate limiter: 429 received, pausing %.3f s; rate now %d per %g s",
            pause,
            self.current_rate,
            self.limit.per,
        )

    async def on_rate_limit_info(self, info: RateLimitInfo) -> None:
        """Apply a response's rate-limit headers (see ``rate_limit_info``)."""
        pause = self._gcra.observe(self._clock(), info)
        if pause:
            logger.debug("rate limiter: server says no requests left, pausing %.3f s", pause)
